//! The WebSocket opening handshake (RFC 6455 §4) as a gateway checks it: which requests are
//! WebSocket openings, whether one is well formed, and whether the origin's `101` accepted it.
//!
//! Owns: [`classify`] (a request head → plain HTTP, a WebSocket opening with its key, or the
//! error that refuses it), [`accept_value`] (`Sec-WebSocket-Accept` for a key, RFC 6455
//! §4.2.2 item 5.4) and [`check_switch`] (the origin's 101 as RFC 6455 §4.1 has a client
//! validate it). Pure functions over parsed heads, no I/O. Leaves out: forwarding the request
//! and relaying the tunnel ([`super::websocket`]), and framing (the gateway never reads a
//! WebSocket frame: it relays bytes).
//!
//! Data flow: the lifecycle's routed request head → [`classify`] (only on routes with
//! `websocket = true`) → the forwarded head keeps the Sec-WebSocket-* fields as sent → the
//! origin's response head → [`check_switch`] with the client's key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::GatewayError;
use crate::http::{list_elements, trim_ows, BodyKind, Method, RequestHead, ResponseHead};

/// The GUID appended to the key before hashing (RFC 6455 §1.3, §4.2.2 item 5.4).
pub const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this gateway speaks (RFC 6455 §4.1 item 9, §11.6).
pub const WEBSOCKET_VERSION: &[u8] = b"13";

/// Length of a valid `Sec-WebSocket-Key`: base64 of 16 bytes (RFC 6455 §4.1 item 7).
pub const KEY_LEN: usize = 24;

/// Length of `Sec-WebSocket-Accept`: base64 of a 20-byte SHA-1 digest.
pub const ACCEPT_LEN: usize = 28;

/// A client's `Sec-WebSocket-Key`, as sent (OWS trimmed): the accept value is computed over
/// these characters, not over the decoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub [u8; KEY_LEN]);

/// What a request is, for a route that honours WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Not a WebSocket opening (no `websocket` in `Upgrade`, or HTTP/1.0): served as plain
    /// HTTP, any upgrade fields stripped as hop-by-hop (RFC 9110 §7.6.1).
    Plain,
    /// A well-formed opening handshake (RFC 6455 §4.2.1).
    WebSocket(Key),
}

/// Field lines of `name` (lowercase) in a head, as `(name, value)` pairs.
fn values<'h>(
    fields: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    name: &'static [u8],
) -> impl Iterator<Item = &'h [u8]> {
    fields.filter_map(move |(n, v)| n.eq_ignore_ascii_case(name).then_some(v))
}

/// Whether some line of the list field `name` has `token` as an element (case-insensitive,
/// RFC 9110 §5.6.1; `Connection` options and `Upgrade` protocol names are case-insensitive,
/// RFC 9110 §7.6.1, §7.8).
fn has_token<'h>(
    fields: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    name: &'static [u8],
    token: &[u8],
) -> bool {
    values(fields, name).any(|v| list_elements(v).any(|e| e.eq_ignore_ascii_case(token)))
}

/// The only line of `name`, OWS-trimmed: `Ok(None)` when absent, `Err` when repeated.
fn single<'h>(
    fields: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    name: &'static [u8],
) -> Result<Option<&'h [u8]>, ()> {
    let mut it = values(fields, name);
    let first = it.next().map(trim_ows);
    match it.next() {
        Some(_) => Err(()),
        None => Ok(first),
    }
}

fn request_fields(head: &RequestHead) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.headers
        .iter()
        .map(|h| (head.slice(h.name), head.slice(h.value)))
}

fn response_fields(rh: &ResponseHead) -> impl Iterator<Item = (&[u8], &[u8])> {
    rh.headers
        .iter()
        .map(|h| (rh.slice(h.name), rh.slice(h.value)))
}

/// Classifies a request on a route with `websocket = true`.
///
/// A request is a WebSocket opening when `Upgrade` lists `websocket` (RFC 6455 §4.1 item 5,
/// case-insensitive) in an HTTP/1.1 request: an HTTP/1.0 request's `Upgrade` MUST be ignored
/// (RFC 9110 §7.8), and any other protocol (`h2c`, RFC 9113 §3.1 deprecates it) is not ours
/// to honour. An opening must then be exactly what RFC 6455 §4.2.1 describes, else it is
/// refused without reaching the origin (§4.2.2: "return an HTTP response with an appropriate
/// error code (such as 400 Bad Request)"): GET (item 1), `Connection` with the `upgrade`
/// option (item 4), one `Sec-WebSocket-Key` that is base64 of 16 bytes (item 5, §11.3.1: not
/// repeated), one `Sec-WebSocket-Version` (item 6), and no content (§4.1 item 1 sends none; a
/// body would be taken for frames). A version other than 13 is a 426 naming 13 (§4.2.2 item
/// 4, §4.4).
pub fn classify(head: &RequestHead) -> Result<Opening, GatewayError> {
    use crate::http::Version;
    let bad = GatewayError::WebSocketHandshake;
    if head.version != Version::Http11 || !has_token(request_fields(head), b"upgrade", b"websocket")
    {
        return Ok(Opening::Plain);
    }
    if head.method_kind != Method::Get {
        return Err(bad("method must be GET"));
    }
    if !matches!(head.body, BodyKind::Empty | BodyKind::Length(0)) {
        return Err(bad("an opening handshake has no content"));
    }
    if !has_token(request_fields(head), b"connection", b"upgrade") {
        return Err(bad("Connection must include upgrade"));
    }
    match single(request_fields(head), b"sec-websocket-version") {
        Ok(Some(v)) if v == WEBSOCKET_VERSION => {}
        Ok(Some(_)) => return Err(GatewayError::WebSocketVersion),
        Ok(None) => return Err(bad("Sec-WebSocket-Version is missing")),
        Err(()) => return Err(bad("Sec-WebSocket-Version is repeated")),
    }
    let key = match single(request_fields(head), b"sec-websocket-key") {
        Ok(Some(k)) => k,
        Ok(None) => return Err(bad("Sec-WebSocket-Key is missing")),
        Err(()) => return Err(bad("Sec-WebSocket-Key is repeated")),
    };
    let mut decoded = [0u8; 18]; // room for the decoder to report a longer value
    let key: [u8; KEY_LEN] = key
        .try_into()
        .map_err(|_| bad("Sec-WebSocket-Key must be 24 base64 characters"))?;
    match STANDARD.decode_slice(key, &mut decoded) {
        Ok(16) => Ok(Opening::WebSocket(Key(key))),
        _ => Err(bad("Sec-WebSocket-Key must be base64 of 16 bytes")),
    }
}

/// `Sec-WebSocket-Accept` for `key`: base64 of the SHA-1 of the key's characters followed by
/// [`WEBSOCKET_GUID`] (RFC 6455 §4.2.2 item 5.4). SHA-1 is what the protocol names; it proves
/// only that the server read this key, nothing cryptographic.
pub fn accept_value(key: &Key) -> [u8; ACCEPT_LEN] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&key.0);
    ctx.update(WEBSOCKET_GUID);
    let digest = ctx.finish();
    let mut out = [0u8; ACCEPT_LEN];
    // 20 bytes always encode to exactly 28 characters; a failure leaves `out` zeroed, which
    // matches no origin's value
    let _ = STANDARD.encode_slice(digest.as_ref(), &mut out);
    out
}

/// Checks the origin's `101 Switching Protocols` for the client's `key` and its handshake
/// `req` as RFC 6455 §4.1 has a client check it (the server's response, items 2-6):
/// `Upgrade` is exactly `websocket` (item 2: "a value that is not an ASCII case-insensitive
/// match for the value 'websocket'" fails, so a list with other protocols does), `Connection`
/// has `upgrade` (item 3), `Sec-WebSocket-Accept` is the value for THIS key (item 4), every
/// extension in `Sec-WebSocket-Extensions` was offered by the client (item 5), and a
/// `Sec-WebSocket-Protocol` names one subprotocol the client offered (item 6; §4.2.2 item
/// 5.5.4 has the server select one). A gateway must not connect its client to an origin that
/// did not accept the client's handshake as offered.
pub fn check_switch(rh: &ResponseHead, req: &RequestHead, key: &Key) -> Result<(), &'static str> {
    let mut upgrade = values(response_fields(rh), b"upgrade").flat_map(list_elements);
    match (upgrade.next(), upgrade.next()) {
        (Some(p), None) if p.eq_ignore_ascii_case(b"websocket") => {}
        _ => return Err("origin's 101 does not upgrade to websocket alone"),
    }
    if !has_token(response_fields(rh), b"connection", b"upgrade") {
        return Err("origin's 101 lacks Connection: upgrade");
    }
    match single(response_fields(rh), b"sec-websocket-accept") {
        Ok(Some(v)) if v == accept_value(key) => {}
        _ => return Err("origin's Sec-WebSocket-Accept does not match the key"),
    }
    // an extension is its name, then `;` parameters (RFC 6455 §9.1); names are tokens,
    // compared case-insensitively as other HTTP tokens are (RFC 9110 §5.6.2)
    let name = |e: &'_ [u8]| -> Vec<u8> {
        let n = e.split(|&b| b == b';').next().unwrap_or_default();
        trim_ows(n).to_ascii_lowercase()
    };
    let offered: Vec<Vec<u8>> = values(request_fields(req), b"sec-websocket-extensions")
        .flat_map(list_elements)
        .map(name)
        .collect();
    let mut used = values(response_fields(rh), b"sec-websocket-extensions").flat_map(list_elements);
    if used.any(|e| !offered.contains(&name(e))) {
        return Err("origin's 101 uses a WebSocket extension the client did not offer");
    }
    let mut chosen = values(response_fields(rh), b"sec-websocket-protocol").flat_map(list_elements);
    match (chosen.next(), chosen.next()) {
        (None, _) => Ok(()),
        // the subprotocol as the client wrote it: the server echoes one of its values
        (Some(p), None)
            if values(request_fields(req), b"sec-websocket-protocol")
                .flat_map(list_elements)
                .any(|o| o == p) =>
        {
            Ok(())
        }
        _ => Err("origin's 101 selects a subprotocol the client did not offer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, parse_response, Limits};
    use bytes::BytesMut;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn req(raw: &str) -> RequestHead {
        let mut b = BytesMut::from(raw.as_bytes());
        parse_request(&mut b, &Limits::default()).unwrap().unwrap()
    }

    fn opening(extra: &str) -> String {
        format!("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n")
    }

    fn good() -> String {
        opening(&format!(
            "Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        ))
    }

    /// RFC 6455 §1.3's worked example.
    #[test]
    fn accept_value_matches_the_rfc_example() {
        let key = Key(KEY.as_bytes().try_into().unwrap());
        assert_eq!(&accept_value(&key), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn well_formed_openings_are_recognised() {
        let want = Opening::WebSocket(Key(KEY.as_bytes().try_into().unwrap()));
        assert_eq!(classify(&req(&good())), Ok(want));
        // tokens are case-insensitive and may be in lists (RFC 9110 §5.6.1)
        let listed = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: foo/2, WebSocket\r\nConnection: keep-alive, UPGRADE\r\n\
             Sec-WebSocket-Key:  {KEY} \r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(classify(&req(&listed)), Ok(want));
    }

    #[test]
    fn other_upgrades_and_http10_are_plain() {
        let h2c = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n";
        assert_eq!(classify(&req(h2c)), Ok(Opening::Plain));
        assert_eq!(
            classify(&req(&good().replace("HTTP/1.1", "HTTP/1.0"))),
            Ok(Opening::Plain)
        );
        assert_eq!(
            classify(&req("GET / HTTP/1.1\r\nHost: h\r\n\r\n")),
            Ok(Opening::Plain)
        );
    }

    #[test]
    fn malformed_openings_are_refused() {
        let status = |raw: &str| classify(&req(raw)).map_err(|e| e.status());
        assert_eq!(status(&good().replace("GET", "POST")), Err(400));
        assert_eq!(
            status(&good().replace("\r\n\r\n", "\r\nContent-Length: 2\r\n\r\n")),
            Err(400)
        );
        assert_eq!(
            status(&good().replace("Connection: Upgrade", "Connection: keep-alive")),
            Err(400)
        );
        assert_eq!(
            status(&good().replace("Version: 13", "Version: 8")),
            Err(426)
        );
        assert_eq!(
            status(&good().replace("Sec-WebSocket-Version: 13\r\n", "")),
            Err(400)
        );
        assert_eq!(
            status(&good().replace("Version: 13", "Version: 13\r\nSec-WebSocket-Version: 13")),
            Err(400)
        );
        for key in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZQ=!",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
            "dGhlIHNhbXBsZSBub25jZQ==x",
        ] {
            assert_eq!(status(&good().replace(KEY, key)), Err(400), "{key:?}");
        }
        let twice = good().replace(
            "Version: 13",
            &format!("Version: 13\r\nSec-WebSocket-Key: {KEY}"),
        );
        assert_eq!(status(&twice), Err(400));
        assert_eq!(
            GatewayError::WebSocketVersion.fields(),
            b"sec-websocket-version: 13\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
        );
    }

    #[test]
    fn the_origins_switch_must_accept_this_key() {
        let key = Key(KEY.as_bytes().try_into().unwrap());
        let client = req(&good());
        let resp = |fields: &str| {
            let mut b = BytesMut::from(
                format!("HTTP/1.1 101 Switching Protocols\r\n{fields}\r\n").as_bytes(),
            );
            parse_response(&mut b, false, &Limits::default())
                .unwrap()
                .unwrap()
        };
        let ok = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        assert_eq!(check_switch(&resp(ok), &client, &key), Ok(()));
        assert!(check_switch(&resp(&ok.replace("s3pP", "s3pQ")), &client, &key).is_err());
        assert!(check_switch(&resp(&ok.replace("websocket", "h2c")), &client, &key).is_err());
        assert!(check_switch(
            &resp(&ok.replace("Connection: Upgrade\r\n", "")),
            &client,
            &key
        )
        .is_err());
        let twice = format!("{ok}Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
        assert!(check_switch(&resp(&twice), &client, &key).is_err());
    }

    /// RFC 6455 §4.1, the server's response, item 2: `Upgrade` matches `websocket` alone.
    #[test]
    fn the_switch_upgrades_to_websocket_alone() {
        let key = Key(KEY.as_bytes().try_into().unwrap());
        let client = req(&good());
        let resp = |upgrade: &str| {
            let mut b = BytesMut::from(
                format!(
                    "HTTP/1.1 101 Switching Protocols\r\n{upgrade}Connection: Upgrade\r\n\
                     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
                )
                .as_bytes(),
            );
            parse_response(&mut b, false, &Limits::default())
                .unwrap()
                .unwrap()
        };
        assert_eq!(
            check_switch(&resp("Upgrade: WebSocket\r\n"), &client, &key),
            Ok(())
        );
        for bad in [
            "Upgrade: websocket, h2c\r\n",
            "Upgrade: h2c, websocket\r\n",
            "Upgrade: websocket\r\nUpgrade: foo\r\n",
            "Upgrade: websocket/13\r\n",
            "",
        ] {
            assert!(check_switch(&resp(bad), &client, &key).is_err(), "{bad:?}");
        }
    }

    /// RFC 6455 §4.1, the server's response, items 5-6: the origin may only select what the
    /// client offered.
    #[test]
    fn the_switch_selects_only_what_the_client_offered() {
        let key = Key(KEY.as_bytes().try_into().unwrap());
        let check = |offer: &str, answer: &str| {
            let client = req(&good().replace("\r\n\r\n", &format!("\r\n{offer}\r\n")));
            let mut b = BytesMut::from(
                format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{answer}\r\n"
                )
                .as_bytes(),
            );
            let rh = parse_response(&mut b, false, &Limits::default())
                .unwrap()
                .unwrap();
            check_switch(&rh, &client, &key)
        };
        let chat = "Sec-WebSocket-Protocol: chat, superchat\r\n";
        assert_eq!(check(chat, "Sec-WebSocket-Protocol: superchat\r\n"), Ok(()));
        assert_eq!(check(chat, ""), Ok(()));
        assert!(check(chat, "Sec-WebSocket-Protocol: mqtt\r\n").is_err());
        assert!(check(chat, "Sec-WebSocket-Protocol: chat, superchat\r\n").is_err());
        assert!(check("", "Sec-WebSocket-Protocol: chat\r\n").is_err());
        let deflate = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
        assert_eq!(
            check(
                deflate,
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"
            ),
            Ok(())
        );
        assert!(check(
            deflate,
            "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"
        )
        .is_err());
        assert!(check("", "Sec-WebSocket-Extensions: permessage-deflate\r\n").is_err());
    }
}
