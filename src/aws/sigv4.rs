//! AWS Signature Version 4: signing outgoing requests and verifying incoming ones.
//!
//! Owns: the SigV4 header scheme (`Authorization: AWS4-HMAC-SHA256 ...` with `x-amz-date`) for
//! services other than S3: the canonical request (method, normalised and twice-encoded path,
//! sorted query, canonical headers, signed header list, body hash), the string to sign, the
//! signing key derived from the secret and the credential scope, [`sign`] (the fields to add to
//! an outgoing request: the Lambda integration signs its Invoke calls with it) and [`verify`]
//! (recompute the signature of an incoming request over exactly the headers its
//! `SignedHeaders` names, for the authorizers), and the payload hash: the SHA-256 of the body,
//! or the value of `x-amz-content-sha256` when the request sends one (a hex digest the body
//! must then hash to, checked after the signature: [`SigV4Error::PayloadHash`]; or
//! `UNSIGNED-PAYLOAD`), see [`payload_hash`]. Leaves out: reading presigned queries (see
//! [`super::presigned`], which reuses [`verify_signature`]), S3's single encoding, SigV4a,
//! where credentials come from (see [`super::Credentials`]) and sending anything. The parsing
//! half (`Authorization`, dates, hex) is in `sigv4_parse.rs`, re-exported here. Data flows
//! one way: a request as bytes in, text out (or a verdict); nothing here keeps state, reads a
//! clock or does I/O. (`aws-sigv4`, below, is a dev-dependency only: tests sign with it.)
//!
//! Built on `ring` (HMAC-SHA256 and SHA-256, already in the build for rustls) rather than AWS's
//! `aws-sigv4` crate. That crate was evaluated (1.6.4, `default-features = false`, features
//! `sign-http` + `http1`): it adds 24 packages to Cargo.lock, among them tokio, tracing,
//! futures-util, the `time` crate and a second sha2/hmac/digest generation, into the server's
//! normal dependency graph (tokio is a test-only dependency here by design); it keeps the
//! canonical request and string to sign private, so AWS's published vectors could only be
//! checked on the final signature; it decides the signed header set itself (it always adds and
//! signs `x-amz-date` from its clock argument and signs every header given minus its own
//! exclusion list), which makes recomputing a signature over an incoming request's
//! `SignedHeaders` a matter of working around it; and it takes `http::Uri`/`HeaderMap`, with an
//! `expect` on a URI without authority when no `host` is given. The scheme itself is a few
//! hashes over text, checked here against AWS's published test suite.
//!
//! Canonical form (AWS "Create a canonical request for Signature Version 4"): the path is the
//! one sent on the wire (already percent-encoded once), normalised (RFC 3986 §5.2.4 dot
//! segments removed, empty segments collapsed) and then percent-encoded again, every byte but
//! the unreserved set (RFC 3986 §2.3) and `/`, so `%3A` in a Lambda ARN becomes `%253A`, as
//! AWS's SDKs sign for every service but S3. Query parameters are decoded and re-encoded the
//! same way (so a client's lower-case hex or unencoded byte still canonicalises as AWS's), then
//! sorted by name and value. Header names are lower-cased (field names are case-insensitive,
//! RFC 9110 §5.1), values trimmed with inner whitespace runs folded to one space, repeated
//! fields joined with `,` in order (RFC 9110 §5.3), the whole sorted by name.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::{digest, hmac};

use super::Credentials;

pub(crate) use super::sigv4_canonical::percent_decode;
use super::sigv4_canonical::{canonical_path, canonical_query, canonical_value};
#[cfg(test)]
use super::sigv4_parse::days_from_civil;
pub use super::sigv4_parse::{
    body_matches, format_amz_date, parse_amz_date, parse_authorization, payload_hash,
    Authorization, PayloadHash,
};
pub(crate) use super::sigv4_parse::{check_signed_headers, decode_hex32, parse_credential};

/// The algorithm named in `Authorization` and on the first line of the string to sign.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a signed request's `x-amz-date` may be from now, either way: AWS's 15 minutes.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The last element of every credential scope.
pub(crate) const TERMINATOR: &str = "aws4_request";
/// Length of `x-amz-date` (`YYYYMMDDTHHMMSSZ`, ISO 8601 basic format, UTC).
pub(crate) const AMZ_DATE_LEN: usize = 16;
/// Length of a signature in hex (HMAC-SHA256).
pub(crate) const SIGNATURE_HEX_LEN: usize = 64;

/// A request as SigV4 sees it. `path` is the absolute path as sent on the wire (already
/// percent-encoded), `query` the raw query without `?` (empty when none). `headers` are every
/// field to sign besides those the signer adds (`host` must be among them); names in any case.
pub struct SigningRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

/// Where a signature is valid: region and service (`lambda`).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// The fields a signature adds to the request: `authorization`, `x-amz-date`, and
/// `x-amz-security-token` with a session token, each (lower-case name, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub fields: Vec<(&'static str, String)>,
}

/// Who signed a request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
}

/// Why a request could not be signed or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("cannot sign: {0}")]
    Sign(String),
    #[error("malformed authorization: {0}")]
    Malformed(&'static str),
    #[error("unknown access key")]
    UnknownKey,
    #[error("request time too far from now")]
    Expired,
    #[error("signature does not match")]
    Mismatch,
    /// The credential names another region or service than the one verifying.
    #[error("credential scope does not match")]
    WrongScope,
    /// The signature verifies over an `x-amz-content-sha256` digest the body does not hash
    /// to (the body was changed after signing).
    #[error("body does not match x-amz-content-sha256")]
    PayloadHash,
}

/// Signs `req` for `scope` at `time` with `creds`.
pub fn sign(
    req: &SigningRequest<'_>,
    creds: &Credentials,
    scope: Scope<'_>,
    time: SystemTime,
) -> Result<Signed, SigV4Error> {
    check_scope_part(&creds.access_key_id, "access key id")?;
    check_scope_part(scope.region, "region")?;
    check_scope_part(scope.service, "service")?;
    if !is_token(req.method) {
        return Err(SigV4Error::Sign("method is not a token".into()));
    }
    let mut has_host = false;
    for (name, value) in req.headers {
        // RFC 9110 §5.1: a field name is a token
        if !is_token(name) {
            return Err(SigV4Error::Sign(format!(
                "field name {name:?} is not a token"
            )));
        }
        if !is_field_value(value) {
            return Err(SigV4Error::Sign(format!(
                "field {name} has a control character"
            )));
        }
        for added in ["authorization", "x-amz-date", "x-amz-security-token"] {
            if name.eq_ignore_ascii_case(added) {
                return Err(SigV4Error::Sign(format!("{added} is added by the signer")));
            }
        }
        has_host |= name.eq_ignore_ascii_case("host");
    }
    if !has_host {
        return Err(SigV4Error::Sign("host must be signed".into()));
    }
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| SigV4Error::Sign("time before 1970".into()))?
        .as_secs();
    let amz_date = format_amz_date(secs);
    let mut extra: Vec<(&str, &[u8])> = vec![("x-amz-date", amz_date.as_bytes())];
    if let Some(token) = &creds.session_token {
        if !is_field_value(token.as_bytes()) {
            return Err(SigV4Error::Sign(
                "session token has a control character".into(),
            ));
        }
        extra.push(("x-amz-security-token", token.as_bytes()));
    }
    // a request that says how its payload is hashed is signed over that (see [`payload_hash`])
    let given = field(req.headers, CONTENT_SHA256);
    if let Some(v) = given {
        check_payload_hash_value(v)?;
    }
    let opts = Opts {
        payload_hash: given,
        ..Opts::default()
    };
    let canonical = canonical_request_with(req, &extra, None, opts)?;
    let date = amz_date.get(..8).unwrap_or_default();
    let scope_text = credential_scope(date, scope.region, scope.service);
    let to_sign = string_to_sign(&amz_date, &scope_text, &canonical.request);
    let key = signing_key(&creds.secret_access_key, date, scope.region, scope.service);
    let signature = hex(hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope_text}, SignedHeaders={}, Signature={signature}",
        creds.access_key_id, canonical.signed_headers
    );
    let mut fields = vec![("authorization", authorization), ("x-amz-date", amz_date)];
    if let Some(token) = &creds.session_token {
        fields.push(("x-amz-security-token", token.clone()));
    }
    Ok(Signed { fields })
}

/// Verifies an incoming request signed with SigV4 in its headers. `req.headers` holds every
/// field of the request (the ones `SignedHeaders` names are looked up there, in any case);
/// `authorization`, `amz_date` and `security_token` are the values of the `authorization`,
/// `x-amz-date` and `x-amz-security-token` fields. `lookup` finds the credentials of an access
/// key id; a key with a session token verifies only requests carrying that token (signed or
/// not: AWS lets a client add it after signing), else [`SigV4Error::UnknownKey`]. The request
/// time must be within `max_skew` of `now` (AWS: [`MAX_SKEW`]), the credential scope must be
/// `scope` on the request's date. The payload hash is `x-amz-content-sha256` when the request
/// has one (`req.body` is then only checked against a hex digest, after the signature), else
/// the SHA-256 of `req.body`. The signature is compared in constant time.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    req: &SigningRequest<'_>,
    authorization: &str,
    amz_date: &str,
    security_token: Option<&str>,
    lookup: impl Fn(&str) -> Option<Credentials>,
    scope: Scope<'_>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<Verified, SigV4Error> {
    let check = BodyCheck::Now;
    verify_with(
        req,
        authorization,
        amz_date,
        security_token,
        lookup,
        scope,
        (now, max_skew),
        check,
    )
}

/// When a verifier compares the body with the `x-amz-content-sha256` digest it signed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BodyCheck {
    /// Right after the signature, against `req.body`.
    #[default]
    Now,
    /// Not here: the caller verified the signature before reading the body and compares the
    /// digest itself once it has the body ([`body_matches`]).
    Deferred,
}

/// [`verify`] with the time as `(now, max_skew)` and the body comparison's moment `check`.
#[allow(clippy::too_many_arguments)]
pub fn verify_with(
    req: &SigningRequest<'_>,
    authorization: &str,
    amz_date: &str,
    security_token: Option<&str>,
    lookup: impl Fn(&str) -> Option<Credentials>,
    scope: Scope<'_>,
    (now, max_skew): (SystemTime, Duration),
    check: BodyCheck,
) -> Result<Verified, SigV4Error> {
    let auth = parse_authorization(authorization)?;
    let names: Vec<&str> = auth.signed_headers.split(';').collect();
    // AWS: a request dated by x-amz-date must sign it
    if !names.contains(&"x-amz-date") {
        return Err(SigV4Error::Malformed(
            "SignedHeaders must include x-amz-date",
        ));
    }
    if auth.region != scope.region || auth.service != scope.service {
        return Err(SigV4Error::WrongScope);
    }
    let Some(time) = parse_amz_date(amz_date) else {
        return Err(SigV4Error::Malformed("x-amz-date is not YYYYMMDDTHHMMSSZ"));
    };
    if amz_date.get(..8) != Some(auth.date) {
        return Err(SigV4Error::Malformed(
            "credential date is not the day of x-amz-date",
        ));
    }
    // the payload hash the client put in the canonical request: x-amz-content-sha256 when
    // it sent one (a hex digest, or UNSIGNED-PAYLOAD), else the body's (see [`payload_hash`])
    let given = field(req.headers, CONTENT_SHA256);
    if let Some(v) = given {
        check_payload_hash_value(v)?;
    }
    let now = unix_secs(now);
    if now.abs_diff(time) > max_skew.as_secs() {
        return Err(SigV4Error::Expired);
    }
    let opts = Opts {
        payload_hash: given,
        body_check: check,
        ..Opts::default()
    };
    verify_signature(req, &auth, amz_date, security_token, lookup, &names, opts)
}

/// The name of the field (and, presigned, of the query parameter's signed header) carrying
/// the payload hash: a lower-case hex SHA-256, or [`UNSIGNED_PAYLOAD`].
pub const CONTENT_SHA256: &str = "x-amz-content-sha256";
/// The payload hash of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

fn check_payload_hash_value(v: &str) -> Result<(), SigV4Error> {
    payload_hash(Some(v.as_bytes())).map(|_| ())
}

/// The value of field `name` among `fields` (the first; names in any case), as text.
pub(crate) fn field<'a>(fields: &[(&str, &'a [u8])], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// Seconds since 1970 (0 before it).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Options of a canonical request beyond the signer's: the payload hash to put in it as given
/// (else the body's SHA-256), a query parameter left out (a presigned request's
/// `X-Amz-Signature`), how `+` in the query reads, and (verifiers only) the fallbacks tried
/// on a mismatch and when the body is compared with a signed digest.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Opts<'a> {
    pub(crate) payload_hash: Option<&'a str>,
    pub(crate) skip_query: Option<&'a str>,
    pub(crate) plus: Plus,
    /// A verifier's second payload hash: [`UNSIGNED_PAYLOAD`] for a presigned request that
    /// did not sign `x-amz-content-sha256` (S3 signs that, other services the body's hash).
    pub(crate) or_unsigned: bool,
    pub(crate) body_check: BodyCheck,
}

/// How a canonical query reads a `+`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Plus {
    /// As the byte `+` (RFC 3986: a sub-delimiter, data in a query), canonically `%2B`.
    #[default]
    Literal,
    /// As a space, canonically `%20`: signers that form-decode the query first
    /// (application/x-www-form-urlencoded, as aws-sigv4 does) sign this.
    Space,
}

/// At most this many HMACs per verification: the payload hash (the body's, then
/// `UNSIGNED-PAYLOAD` for a presigned request) times the reading of `+` (literal, then as a
/// space when the query has one).
pub(crate) const MAX_ATTEMPTS: usize = 4;

/// The common end of both verifications, once the time is checked: the key (its session
/// token too), the canonical request over `names`, the signature compared in constant time.
pub(crate) fn verify_signature(
    req: &SigningRequest<'_>,
    auth: &Authorization<'_>,
    amz_date: &str,
    security_token: Option<&str>,
    lookup: impl Fn(&str) -> Option<Credentials>,
    names: &[&str],
    opts: Opts<'_>,
) -> Result<Verified, SigV4Error> {
    let Some(creds) = lookup(auth.access_key_id) else {
        return Err(SigV4Error::UnknownKey);
    };
    // AWS: "The security token included in the request is invalid" for a temporary key's
    // missing or wrong token, or a token sent with a long-term key
    match (&creds.session_token, security_token) {
        (None, None) => {}
        (Some(expected), Some(given)) if ct_eq(expected.as_bytes(), given.as_bytes()) => {}
        _ => return Err(SigV4Error::UnknownKey),
    }
    let scope_text = credential_scope(auth.date, auth.region, auth.service);
    let key = signing_key(
        &creds.secret_access_key,
        auth.date,
        auth.region,
        auth.service,
    );
    // the forms a client may have signed, the common first; a fallback only on a mismatch,
    // at most MAX_ATTEMPTS HMACs in all
    // the body's own hash, when it is the payload hash, is computed once for every attempt
    let body_hex;
    let own = match opts.payload_hash {
        Some(given) => given,
        None => {
            body_hex = body_hash(req.body);
            body_hex.as_str()
        }
    };
    let mut payloads = [Some(own), None];
    if opts.or_unsigned && opts.payload_hash.is_none() {
        payloads[1] = Some(UNSIGNED_PAYLOAD);
    }
    let mut pluses = [Some(Plus::Literal), None];
    if req.query.contains('+') {
        pluses[1] = Some(Plus::Space);
    }
    let mut verified = false;
    let mut attempts = 0;
    'forms: for payload in payloads.iter().flatten() {
        for plus in pluses.iter().flatten() {
            let o = Opts {
                payload_hash: Some(*payload),
                plus: *plus,
                ..opts
            };
            let canonical = canonical_request_with(req, &[], Some(names), o)?;
            let to_sign = string_to_sign(amz_date, &scope_text, &canonical.request);
            attempts += 1;
            debug_assert!(attempts <= MAX_ATTEMPTS);
            // constant time: ring's HMAC verification compares the tags without an early exit
            if hmac::verify(&key, to_sign.as_bytes(), &auth.signature).is_ok() {
                verified = true;
                break 'forms;
            }
        }
    }
    if !verified {
        return Err(SigV4Error::Mismatch);
    }
    // the signature covers the digest the client named; the body must be what it hashed
    if let Some(PayloadHash::Digest(d)) = opts
        .payload_hash
        .map(|v| payload_hash(Some(v.as_bytes())))
        .transpose()?
    {
        if opts.body_check == BodyCheck::Now && !body_matches(&d, req.body) {
            return Err(SigV4Error::PayloadHash);
        }
    }
    Ok(Verified {
        access_key_id: creds.access_key_id,
    })
}

#[cfg(test)]
thread_local! {
    /// How many bodies [`body_hash`] hashed on this thread: tests count the hashes of one
    /// verification.
    pub(crate) static BODY_HASHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The payload hash of `body`: its SHA-256 in lower-case hex.
fn body_hash(body: &[u8]) -> String {
    #[cfg(test)]
    BODY_HASHES.with(|n| n.set(n.get() + 1));
    hex(digest::digest(&digest::SHA256, body).as_ref())
}

/// A canonical request and the `SignedHeaders` list it covers.
pub(crate) struct Canonical {
    pub(crate) request: Vec<u8>,
    pub(crate) signed_headers: String,
}

/// The canonical request of `req` with `extra` fields added (the signer's `x-amz-date` and
/// token). `only`: sign just these lower-case names (a verifier's `SignedHeaders`; each must be
/// present), else every field.
#[cfg(test)] // the signer and verifiers pass options (canonical_request_with)
pub(crate) fn canonical_request(
    req: &SigningRequest<'_>,
    extra: &[(&str, &[u8])],
    only: Option<&[&str]>,
) -> Result<Canonical, SigV4Error> {
    canonical_request_with(req, extra, only, Opts::default())
}

/// [`canonical_request`] with a given payload hash and a query parameter left out.
pub(crate) fn canonical_request_with(
    req: &SigningRequest<'_>,
    extra: &[(&str, &[u8])],
    only: Option<&[&str]>,
    opts: Opts<'_>,
) -> Result<Canonical, SigV4Error> {
    let mut fields: Vec<(String, &[u8])> = req
        .headers
        .iter()
        .chain(extra)
        .map(|(name, value)| (name.to_ascii_lowercase(), *value))
        .filter(|(name, _)| only.is_none_or(|only| only.contains(&name.as_str())))
        .collect();
    // stable: repeated fields keep their order (RFC 9110 §5.3)
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(256 + req.path.len() + req.query.len());
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    canonical_path(req.path, &mut out);
    out.push(b'\n');
    canonical_query(req.query, opts.skip_query, opts.plus, &mut out);
    out.push(b'\n');
    let mut signed_headers = String::new();
    let mut i = 0;
    while let Some((name, _)) = fields.get(i) {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        while let Some((_, value)) = fields.get(i).filter(|(n, _)| n == name) {
            if !first {
                out.push(b',');
            }
            first = false;
            canonical_value(value, &mut out);
            i += 1;
        }
        out.push(b'\n');
        if !signed_headers.is_empty() {
            signed_headers.push(';');
        }
        signed_headers.push_str(name);
    }
    if let Some(only) = only {
        if only.len() != signed_headers.split(';').count() || signed_headers.is_empty() {
            return Err(SigV4Error::Malformed("a signed header is missing"));
        }
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    match opts.payload_hash {
        Some(given) => out.extend_from_slice(given.as_bytes()),
        None => out.extend_from_slice(body_hash(req.body).as_bytes()),
    }
    Ok(Canonical {
        request: out,
        signed_headers,
    })
}

/// The string to sign: algorithm, request time, credential scope, hash of the canonical
/// request, one per line.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    let hash = hex(digest::digest(&digest::SHA256, canonical_request).as_ref());
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{hash}")
}

/// `DATE/REGION/SERVICE/aws4_request`.
fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{TERMINATOR}")
}

/// The signing key: HMAC chain of `"AWS4" + secret` over date, region, service, terminator.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut key = Vec::with_capacity(4 + secret.len());
    key.extend_from_slice(b"AWS4");
    key.extend_from_slice(secret.as_bytes());
    let mut k = hmac::Key::new(hmac::HMAC_SHA256, &key);
    for part in [date, region, service, TERMINATOR] {
        let tag = hmac::sign(&k, part.as_bytes());
        k = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
    }
    k
}

/// RFC 9110 §5.6.2 token: one or more tchar (alphanumerics and ``!#$%&'*+-.^_`|~``).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 §5.5: a field value is VCHAR, obs-text, SP and HTAB (no CR, LF, NUL or other
/// controls).
fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| matches!(b, b'\t' | b' '..=0x7e | 0x80..=0xff))
}

/// An element of `Credential=` must be printable and free of `/`, `,` and spaces.
fn check_scope_part(s: &str, what: &str) -> Result<(), SigV4Error> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b',')
    {
        return Err(SigV4Error::Sign(format!(
            "{what} is empty or has a character outside printable ASCII, '/' or ','"
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Equality without an early exit (the length is not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y))) == 0
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
