//! Shared syntax rules for both message directions (crate-private).
//!
//! Owns the RFC 9110 character classes (tchar, field-value octets, pchar,
//! quoted-string), the pre-scan that finds the end of a head while rejecting
//! bare CR / bare LF / control characters / obs-fold, the classification of
//! field names, and the accumulation of the framing and connection fields
//! (Content-Length, Transfer-Encoding, Connection). It leaves out everything
//! direction-specific: request.rs and response.rs decide which outcome of these
//! rules is an error and which status it maps to. Data flows in as borrowed
//! byte slices of a head and out as spans, flags and small summary structs;
//! nothing here allocates or copies.

use super::{Header, HeaderKind, HttpError, Span};

/// Error constructor of the caller's direction: `HttpError::BadRequest` or
/// `HttpError::BadResponse`.
pub(crate) type ErrFn = fn(&'static str) -> HttpError;

/// `tchar` (RFC 9110 5.6.2): any VCHAR except delimiters.
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// `token = 1*tchar` (RFC 9110 5.6.2).
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Octets allowed in a field value: VCHAR / obs-text / SP / HTAB (RFC 9110 5.5).
pub(crate) const fn is_field_octet(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=0x7e | 0x80..=0xff)
}

/// The value of a hex digit (RFC 5234 HEXDIG, case-insensitive).
pub(crate) const fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Strip OWS (`*( SP / HTAB )`, RFC 9110 5.6.3) from both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Elements of a `#rule` list (RFC 9110 5.6.1): split on commas, OWS
/// trimmed, empty elements ignored as the RFC requires of recipients.
pub(crate) fn list_elements(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Length of the `quoted-string` at the start of `s` including both DQUOTEs
/// (RFC 9110 5.6.4), or `None` if `s` does not start with a valid one.
pub(crate) fn quoted_string_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    loop {
        match *s.get(i)? {
            b'"' => return Some(i + 1),
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            b'\\' => {
                if !is_field_octet(*s.get(i + 1)?) {
                    return None;
                }
                i += 2;
            }
            // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
            c if is_field_octet(c) => i += 1,
            _ => return None,
        }
    }
}

/// `1*DIGIT` as a u64 (Content-Length, RFC 9110 8.6); `None` if empty, not
/// all digits, or overflowing.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The span of `part` inside `base`, computed from pointer offsets; `None`
/// if `part` does not lie inside `base` or the offsets exceed u32.
pub(crate) fn span_in(base: &[u8], part: &[u8]) -> Option<Span> {
    let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    if end > base.len() {
        return None;
    }
    Some(Span {
        start: u32::try_from(start).ok()?,
        end: u32::try_from(end).ok()?,
    })
}

/// httparse in its strictest configuration. These are the defaults; they
/// are spelled out so that a future default change cannot loosen us.
pub(crate) fn strict_httparse() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_spaces_after_header_name_in_responses(false)
        .allow_multiple_spaces_in_request_line_delimiters(false)
        .allow_multiple_spaces_in_response_status_delimiters(false)
        .allow_obsolete_multiline_headers_in_responses(false)
        .allow_space_before_first_header_name(false)
        .ignore_invalid_headers_in_responses(false)
        .ignore_invalid_headers_in_requests(false);
    c
}

/// Map an httparse error to the caller's direction.
pub(crate) fn map_httparse_error(e: httparse::Error, bad: ErrFn) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::HeadTooLarge,
        // RFC 9112 2.3: only HTTP/1.0 and HTTP/1.1 are accepted.
        httparse::Error::Version => bad("unsupported HTTP version"),
        // RFC 9112 5.1: no whitespace between field name and colon;
        // RFC 9110 5.1: field-name = token.
        httparse::Error::HeaderName => bad("invalid header name"),
        httparse::Error::HeaderValue => bad("invalid header value"),
        httparse::Error::Token => bad("invalid request line"),
        httparse::Error::NewLine => bad("invalid line ending"),
        httparse::Error::Status => bad("invalid status line"),
    }
}

/// Find the end of a head at the front of `buf` (leading CRLFs already
/// removed by the caller). Returns the head length including the final
/// CRLFCRLF, `None` if more bytes are needed.
///
/// Rejects, before any other parsing:
/// - a LF not preceded by CR and a CR not followed by LF (RFC 9112 2.2 lets
///   a recipient accept bare LF; we do not, to avoid desync with peers that
///   parse differently);
/// - NUL and other control characters except HTAB (RFC 9110 5.5; RFC 9112 3);
/// - obs-fold, a field line starting with SP/HTAB (RFC 9112 5.2: a server
///   MUST reject it; for responses we choose to reject too).
///
/// `max_head` bounds the head (-> HeadTooLarge); `max_first_line` bounds
/// the start line even while it is still incomplete (-> UriTooLong).
pub(crate) fn scan_head(
    buf: &[u8],
    max_head: usize,
    max_first_line: usize,
    bad: ErrFn,
) -> Result<Option<usize>, HttpError> {
    let limit = buf.len().min(max_head);
    let mut i = 0usize;
    let mut line_start = 0usize;
    let mut first_line = true;
    loop {
        let end = if first_line {
            limit.min(max_first_line)
        } else {
            limit
        };
        i += plain_prefix_len(buf.get(i..end).unwrap_or_default());
        if i >= end {
            if first_line && i >= max_first_line {
                return Err(HttpError::UriTooLong);
            }
            break;
        }
        // Only CTLs (incl. CR, LF, HTAB) and DEL stop the fast skip.
        match buf.get(i) {
            Some(b'\r') => match buf.get(i + 1) {
                Some(b'\n') => {
                    if first_line && i + 2 > max_first_line {
                        return Err(HttpError::UriTooLong);
                    }
                    if i + 2 > max_head {
                        return Err(HttpError::HeadTooLarge);
                    }
                    if i == line_start {
                        if first_line {
                            return Err(bad("empty start line"));
                        }
                        return Ok(Some(i + 2));
                    }
                    i += 2;
                    line_start = i;
                    first_line = false;
                    // RFC 9112 5.2: obs-fold, a line starting with SP/HTAB.
                    if matches!(buf.get(i), Some(b' ' | b'\t')) {
                        return Err(bad("obsolete line folding is not allowed"));
                    }
                }
                Some(_) => return Err(bad("bare CR in message head")),
                None => break,
            },
            Some(b'\n') => return Err(bad("bare LF in message head")),
            Some(b'\t') => i += 1,
            Some(_) => return Err(bad("control character in message head")),
            None => break,
        }
    }
    if first_line && buf.len() >= max_first_line {
        return Err(HttpError::UriTooLong);
    }
    if buf.len() >= max_head {
        return Err(HttpError::HeadTooLarge);
    }
    Ok(None)
}

/// Length of the prefix of `s` that holds no byte below 0x20 (CTLs incl.
/// CR, LF, HTAB) and no DEL, i.e. the bytes `scan_head` can skip.
///
/// SWAR over 8-byte words: `(x - 0x01..*n) & !x & 0x80..` flags bytes below
/// `n` (n <= 0x80) and DEL shows as a zero byte of `x ^ 0x7f..`. Borrows can
/// only create false flags *above* a true one, so the lowest flagged byte
/// (little-endian: trailing zeros / 8) is exactly the first special byte.
fn plain_prefix_len(s: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut n = 0;
    let mut words = s.chunks_exact(8);
    for w in words.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        let x = u64::from_le_bytes(word);
        let below_space = x.wrapping_sub(LO * 0x20) & !x & HI;
        let y = x ^ (LO * 0x7f);
        let del = y.wrapping_sub(LO) & !y & HI;
        let special = below_space | del;
        if special != 0 {
            return n + (special.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + words
        .remainder()
        .iter()
        .take_while(|&&b| b >= 0x20 && b != 0x7f)
        .count()
}

/// Whether `line` (without its CRLF) is a valid `field-line`:
/// `field-name ":" OWS field-value OWS` (RFC 9112 5, RFC 9110 5.1/5.5).
/// A leading SP/HTAB (obs-fold) fails the token check.
pub(crate) fn is_valid_field_line(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            let (name, rest) = line.split_at(colon);
            is_token(name)
                && rest
                    .get(1..)
                    .unwrap_or_default()
                    .iter()
                    .all(|&b| is_field_octet(b))
        }
        None => false,
    }
}

/// Whether `t` is a sequence of valid field lines each ending in CRLF (a
/// trailer section without its final empty line); empty is valid.
pub(crate) fn is_valid_trailer_section(mut t: &[u8]) -> bool {
    while !t.is_empty() {
        let Some(lf) = t.iter().position(|&b| b == b'\n') else {
            return false;
        };
        let (line, rest) = t.split_at(lf);
        match line.strip_suffix(b"\r") {
            Some(l) if !l.is_empty() && is_valid_field_line(l) => {}
            _ => return false,
        }
        t = rest.get(1..).unwrap_or_default();
    }
    true
}

/// Fields that must not be taken from a trailer section, so a proxy drops them (RFC 9110
/// §6.5.1: a sender MUST NOT generate, and a recipient MUST NOT merge, fields needed for
/// framing, routing, request modifiers, authentication, response control data or for
/// processing the content). Names starting with `content-` or `proxy-`, and those starting
/// with `if-` (conditionals, RFC 9110 §13.1), are matched by prefix.
const NOT_IN_TRAILERS: &[&[u8]] = &[
    // message framing (RFC 9110 §6.1, RFC 9112 §6) and the trailer's own declaration
    b"transfer-encoding",
    b"trailer",
    // routing (RFC 9110 §7.2) and what a proxy sets about it itself
    b"host",
    b"forwarded",
    b"via",
    b"x-forwarded-for",
    b"x-forwarded-host",
    b"x-forwarded-proto",
    b"x-request-id",
    // connection management, hop-by-hop (RFC 9110 §7.6.1)
    b"connection",
    b"keep-alive",
    b"te",
    b"upgrade",
    // request modifiers: controls (RFC 9110 §10.1)
    b"expect",
    b"max-forwards",
    b"range",
    b"cache-control",
    b"pragma",
    // authentication and state (RFC 9110 §11, RFC 6265)
    b"authorization",
    b"www-authenticate",
    b"cookie",
    b"set-cookie",
    // response control data (RFC 9110 §10.2, RFC 9111)
    b"age",
    b"date",
    b"expires",
    b"location",
    b"retry-after",
    b"vary",
    b"warning",
];

/// Whether a trailer field named `name` may be forwarded (see [`NOT_IN_TRAILERS`]).
pub(crate) fn allowed_in_trailer(name: &[u8]) -> bool {
    let prefixed = |p: &[u8]| {
        name.len() > p.len()
            && name
                .get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    if prefixed(b"content-") || prefixed(b"proxy-") || prefixed(b"if-") {
        return false;
    }
    !NOT_IN_TRAILERS
        .iter()
        .any(|n| n.len() == name.len() && n.eq_ignore_ascii_case(name))
}

/// Field names the codec treats specially.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Other,
    Host,
    XForwardedFor,
    RequestId,
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
    /// Keep-Alive, TE, Trailer, Upgrade, Proxy-* (RFC 9110 7.6.1).
    HopByHop,
    /// X-Forwarded-Proto / X-Forwarded-Host: set by the proxy itself.
    ProxyManaged,
}

impl Field {
    /// Classify a field name (case-insensitive, RFC 9110 5.1).
    pub(crate) fn classify(name: &[u8]) -> Field {
        let is = |lower: &[u8]| name.eq_ignore_ascii_case(lower);
        match name.len() {
            2 if is(b"te") => Field::HopByHop,
            4 if is(b"host") => Field::Host,
            6 if is(b"expect") => Field::Expect,
            7 if is(b"trailer") || is(b"upgrade") => Field::HopByHop,
            10 if is(b"connection") => Field::Connection,
            10 if is(b"keep-alive") => Field::HopByHop,
            12 if is(b"x-request-id") => Field::RequestId,
            14 if is(b"content-length") => Field::ContentLength,
            15 if is(b"x-forwarded-for") => Field::XForwardedFor,
            16 if is(b"x-forwarded-host") => Field::ProxyManaged,
            17 if is(b"transfer-encoding") => Field::TransferEncoding,
            17 if is(b"x-forwarded-proto") => Field::ProxyManaged,
            _ if name.len() > 6
                && name
                    .get(..6)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"proxy-")) =>
            {
                Field::HopByHop
            }
            _ => Field::Other,
        }
    }

    /// Forwarding kind of this field in a request.
    pub(crate) fn request_kind(self) -> HeaderKind {
        match self {
            Field::Other => HeaderKind::Regular,
            Field::Host => HeaderKind::Host,
            Field::XForwardedFor => HeaderKind::XForwardedFor,
            Field::RequestId => HeaderKind::RequestId,
            _ => HeaderKind::Skip,
        }
    }

    /// Forwarding kind of this field in a response: hop-by-hop and framing
    /// fields are skipped, everything else is forwarded.
    pub(crate) fn response_kind(self) -> HeaderKind {
        match self {
            Field::ContentLength
            | Field::TransferEncoding
            | Field::Connection
            | Field::HopByHop => HeaderKind::Skip,
            _ => HeaderKind::Regular,
        }
    }
}

/// All Content-Length field lines of a head (RFC 9110 8.6).
#[derive(Debug, Default)]
pub(crate) struct ContentLength {
    /// Number of Content-Length field lines.
    pub fields: usize,
    /// Number of comma-separated elements over all of them.
    pub elements: usize,
    /// The first value.
    pub value: Option<u64>,
    /// Some element was not `1*DIGIT` or overflowed u64.
    pub invalid: bool,
    /// Two elements had different values.
    pub conflicting: bool,
}

impl ContentLength {
    pub(crate) fn add(&mut self, v: &[u8]) {
        self.fields = self.fields.saturating_add(1);
        // Empty elements are not skipped here: "5," is not a valid length.
        for e in v.split(|&b| b == b',').map(trim_ows) {
            self.elements = self.elements.saturating_add(1);
            match (parse_decimal(e), self.value) {
                (None, _) => self.invalid = true,
                (Some(n), None) => self.value = Some(n),
                (Some(n), Some(first)) => self.conflicting |= n != first,
            }
        }
    }
}

/// Outcome of the Transfer-Encoding list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// Only `chunked`, once, last.
    Chunked,
    /// A coding other than chunked was listed (chunked last, once).
    Unsupported,
    /// Malformed: the message framing cannot be determined.
    Invalid(&'static str),
}

/// All Transfer-Encoding field lines of a head, combined as one list
/// (RFC 9110 5.3, RFC 9112 6.1).
#[derive(Debug, Default)]
pub(crate) struct TransferCodings {
    pub present: bool,
    any: bool,
    chunked: bool,
    after_chunked: bool,
    unknown: bool,
    invalid: bool,
}

impl TransferCodings {
    pub(crate) fn add(&mut self, v: &[u8]) {
        self.present = true;
        for e in list_elements(v) {
            self.any = true;
            // RFC 9112 6.1: chunked MUST NOT be applied more than once and
            // MUST be the final coding; anything after it is an error.
            self.after_chunked |= self.chunked;
            if e.eq_ignore_ascii_case(b"chunked") {
                self.chunked = true;
            } else {
                // transfer-coding = token *( OWS ";" OWS transfer-parameter )
                let name = e.split(|&b| b == b';').next().unwrap_or_default();
                if is_token(trim_ows(name)) {
                    self.unknown = true;
                } else {
                    self.invalid = true;
                }
            }
        }
    }

    pub(crate) fn outcome(&self) -> Coding {
        if self.invalid {
            Coding::Invalid("invalid Transfer-Encoding")
        } else if !self.any {
            Coding::Invalid("empty Transfer-Encoding")
        } else if self.after_chunked {
            // RFC 9112 6.1: chunked applied more than once or not last.
            Coding::Invalid("chunked must be the final transfer coding, applied once")
        } else if !self.chunked {
            // RFC 9112 6.3 item 4: final coding is not chunked.
            Coding::Invalid("final transfer coding is not chunked")
        } else if self.unknown {
            Coding::Unsupported
        } else {
            Coding::Chunked
        }
    }
}

/// The connection options of all Connection field lines (RFC 9110 7.6.1).
#[derive(Debug, Default)]
pub(crate) struct ConnectionOpts {
    pub close: bool,
    pub keep_alive: bool,
    /// Some other token names a hop-by-hop field to remove.
    pub listed: bool,
    /// Some element is not a token.
    pub invalid: bool,
}

impl ConnectionOpts {
    pub(crate) fn add(&mut self, v: &[u8]) {
        for e in list_elements(v) {
            if !is_token(e) {
                self.invalid = true;
            } else if e.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if e.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else {
                self.listed = true;
            }
        }
    }
}

/// Mark every `Regular` field named by a Connection option as `Skip`
/// (RFC 9110 7.6.1: a proxy MUST remove them). Fields the proxy manages
/// itself (Host, X-Forwarded-For, X-Request-Id) keep their kind, so a
/// client cannot make the proxy drop them ("hop-by-hop header abuse"); the
/// proxy re-emits those anyway. Cost is bounded by connection tokens x
/// fields, both bounded by the head limits.
pub(crate) fn mark_connection_listed(buf: &[u8], headers: &mut [Header]) {
    for i in 0..headers.len() {
        let Some(&conn) = headers.get(i) else { break };
        if Field::classify(conn.name.get(buf)) != Field::Connection {
            continue;
        }
        for token in list_elements(conn.value.get(buf)) {
            if token.eq_ignore_ascii_case(b"close") || token.eq_ignore_ascii_case(b"keep-alive") {
                continue;
            }
            for h in headers.iter_mut() {
                if h.kind == HeaderKind::Regular
                    && h.name.len() == token.len()
                    && h.name.get(buf).eq_ignore_ascii_case(token)
                {
                    h.kind = HeaderKind::Skip;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(m: &'static str) -> HttpError {
        HttpError::BadRequest(m)
    }

    #[test]
    fn token_and_ows() {
        assert!(is_token(b"Content-Type"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert_eq!(trim_ows(b" \t x y \t"), b"x y");
        assert_eq!(trim_ows(b"   "), b"");
        let v: Vec<&[u8]> = list_elements(b" a ,, b,\t,c ").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn decimal() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"007"), Some(7));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b"1 "), None);
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_string_len(b"\"abc\"rest"), Some(5));
        assert_eq!(quoted_string_len(b"\"a\\\"b\""), Some(6));
        assert_eq!(quoted_string_len(b"\"a b\""), Some(5));
        assert_eq!(quoted_string_len(b"\"abc"), None);
        assert_eq!(quoted_string_len(b"\"a\\"), None);
        assert_eq!(quoted_string_len(b"\"a\rb\""), None);
        assert_eq!(quoted_string_len(b"abc"), None);
    }

    #[test]
    fn span_of_parts() {
        let base = b"hello world";
        assert_eq!(span_in(base, &base[6..]), Some(Span { start: 6, end: 11 }));
        assert_eq!(span_in(base, b"elsewhere"), None);
    }

    #[test]
    fn scan_finds_end_and_rejects() {
        let max = 1000;
        assert_eq!(
            scan_head(b"A\r\nB: c\r\n\r\nrest", max, max, bad),
            Ok(Some(11))
        );
        assert_eq!(scan_head(b"A\r\nB: c\r\n\r", max, max, bad), Ok(None));
        assert_eq!(scan_head(b"A\r\nB: c\r", max, max, bad), Ok(None));
        assert_eq!(
            scan_head(b"A\nB: c\r\n\r\n", max, max, bad),
            Err(bad("bare LF in message head"))
        );
        assert_eq!(
            scan_head(b"A\r\nB: c\rx\r\n\r\n", max, max, bad),
            Err(bad("bare CR in message head"))
        );
        assert_eq!(
            scan_head(b"A\r\nB: \0\r\n\r\n", max, max, bad),
            Err(bad("control character in message head"))
        );
        assert_eq!(
            scan_head(b"A\r\nB: c\r\n d\r\n\r\n", max, max, bad),
            Err(bad("obsolete line folding is not allowed"))
        );
        assert_eq!(scan_head(b"A\r\n\r\n", 5, max, bad), Ok(Some(5)));
        assert_eq!(
            scan_head(b"A\r\n\r\n", 4, max, bad),
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(
            scan_head(b"A\r\nB", 4, max, bad),
            Err(HttpError::HeadTooLarge)
        );
        assert_eq!(scan_head(b"AAAA", max, 4, bad), Err(HttpError::UriTooLong));
        assert_eq!(scan_head(b"AAA", max, 4, bad), Ok(None));
        assert_eq!(
            scan_head(&[b'A'; 40], max, 33, bad),
            Err(HttpError::UriTooLong)
        );
        assert_eq!(
            scan_head(&[b'A'; 30], 20, 33, bad),
            Err(HttpError::HeadTooLarge)
        );
        let long =
            b"GET /aaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: aaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        assert_eq!(scan_head(long, max, max, bad), Ok(Some(long.len())));
        assert_eq!(scan_head(long, long.len(), max, bad), Ok(Some(long.len())));
        assert_eq!(
            scan_head(long, long.len() - 1, max, bad),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn swar_matches_bytewise() {
        let special = |b: u8| b < 0x20 || b == 0x7f;
        let bytewise = |s: &[u8]| s.iter().take_while(|&&b| !special(b)).count();
        for b in 0..=255u8 {
            for pos in 0..19 {
                for filler in [b'a', 0x80, 0xff, 0x20, 0x7e] {
                    let mut w = [filler; 19];
                    w[pos] = b;
                    assert_eq!(plain_prefix_len(&w), bytewise(&w), "byte {b:#x} at {pos}");
                    // A second special byte after the first.
                    if pos + 1 < w.len() {
                        w[pos + 1] = 0x7f;
                        assert_eq!(
                            plain_prefix_len(&w),
                            bytewise(&w),
                            "byte {b:#x} at {pos} + DEL"
                        );
                    }
                }
            }
        }
        assert_eq!(plain_prefix_len(b"abcdefg"), 7);
        assert_eq!(plain_prefix_len(b""), 0);
    }

    #[test]
    fn field_lines() {
        assert!(is_valid_field_line(b"X-A: b c"));
        assert!(is_valid_field_line(b"X-A:"));
        assert!(!is_valid_field_line(b" X-A: b"));
        assert!(!is_valid_field_line(b"X-A : b"));
        assert!(!is_valid_field_line(b"X-A: b\rc"));
        assert!(!is_valid_field_line(b"no colon"));
        assert!(is_valid_trailer_section(b""));
        assert!(is_valid_trailer_section(b"A: 1\r\nB: 2\r\n"));
        assert!(!is_valid_trailer_section(b"A: 1\r\n\r\n"));
        assert!(!is_valid_trailer_section(b"A: 1\nB: 2\r\n"));
        assert!(!is_valid_trailer_section(b"A: 1"));
    }

    #[test]
    fn classify_fields() {
        assert_eq!(Field::classify(b"HOST"), Field::Host);
        assert_eq!(
            Field::classify(b"Transfer-Encoding"),
            Field::TransferEncoding
        );
        assert_eq!(Field::classify(b"Proxy-Authorization"), Field::HopByHop);
        assert_eq!(Field::classify(b"proxy-"), Field::Other);
        assert_eq!(Field::classify(b"TE"), Field::HopByHop);
        assert_eq!(Field::classify(b"X-Forwarded-Proto"), Field::ProxyManaged);
        assert_eq!(Field::classify(b"Content-Type"), Field::Other);
        assert_eq!(Field::Expect.request_kind(), HeaderKind::Skip);
        assert_eq!(Field::Expect.response_kind(), HeaderKind::Regular);
        assert_eq!(Field::HopByHop.response_kind(), HeaderKind::Skip);
    }

    #[test]
    fn transfer_codings() {
        let out = |vals: &[&[u8]]| {
            let mut t = TransferCodings::default();
            for v in vals {
                t.add(v);
            }
            t.outcome()
        };
        assert_eq!(out(&[b"chunked"]), Coding::Chunked);
        assert_eq!(out(&[b"CHUNKED"]), Coding::Chunked);
        assert_eq!(out(&[b"gzip, chunked"]), Coding::Unsupported);
        assert_eq!(out(&[b"gzip", b"chunked"]), Coding::Unsupported);
        assert!(matches!(out(&[b"chunked, gzip"]), Coding::Invalid(_)));
        assert!(matches!(out(&[b"chunked", b"chunked"]), Coding::Invalid(_)));
        assert!(matches!(out(&[b"gzip"]), Coding::Invalid(_)));
        assert!(matches!(out(&[b""]), Coding::Invalid(_)));
        assert!(matches!(out(&[b"chu nked"]), Coding::Invalid(_)));
    }

    #[test]
    fn content_lengths() {
        let mut c = ContentLength::default();
        c.add(b"5, 5");
        assert_eq!(
            (c.fields, c.elements, c.value, c.invalid, c.conflicting),
            (1, 2, Some(5), false, false)
        );
        c.add(b"6");
        assert!(c.conflicting);
        let mut c = ContentLength::default();
        c.add(b"5,");
        assert!(c.invalid);
    }
}
