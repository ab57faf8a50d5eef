//! Response bodies reshaped for the client: a route's `transform.response` (XML ⇄ JSON) or
//! `response_template`.
//!
//! Owns: deciding whether a response is reshaped ([`applies`]: the route has a response
//! transformation or template and the response is an integration's, not a gateway error),
//! reading a relayed body whole ([`collect`], at most [`MAX_RESPONSE_BYTES`]: a larger one is
//! a 502 naming the limit), and reshaping it into a response held in memory ([`reshape`]:
//! the producer's fields kept but for `content-type`, the new body framed by its length).
//! Leaves out: the conversions (see [`super::xml`], [`super::template`]); the lifecycle calls
//! this in front of the session (its `Filtered` relay, and `send` for held responses).

use bytes::{Bytes, BytesMut};

use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::{BodyChunk, RequestHead};
use crate::mapping::value::Vars;
use crate::response::{Response, ResponseBody, Source};
use crate::worker::Cx;

/// The largest response body read whole to be reshaped (API Gateway's 10 MB payload limit).
pub const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;

/// Whether `r`, answering a request to `route`, is reshaped.
pub fn applies(w: &Cx<'_>, route: Option<usize>, r: &Response<'_>) -> bool {
    let Some(route) = route else { return false };
    if matches!(r.source, Source::Error(_)) {
        return false;
    }
    let cfg = &w.g.config;
    cfg.transforms
        .routes
        .get(route)
        .and_then(Option::as_ref)
        .is_some_and(|t| t.response.is_some())
        || cfg
            .templates
            .routes
            .get(route)
            .is_some_and(|t| t.response.is_some())
}

/// Reads a relayed body to its end (trailers dropped: the reshaped body is framed by length).
pub async fn collect(body: &mut impl ResponseBody) -> Result<Bytes, GatewayError> {
    let mut out = BytesMut::new();
    loop {
        match body.next_chunk().await? {
            BodyChunk::Data(d) => {
                if out.len() + d.len() > MAX_RESPONSE_BYTES {
                    return Err(GatewayError::UpstreamProtocol(
                        "response body larger than the transformation limit (MAX_RESPONSE_BYTES, 10485760 bytes)",
                    ));
                }
                out.extend_from_slice(&d);
            }
            BodyChunk::End { .. } => return Ok(out.freeze()),
        }
    }
}

/// A response as its producer made it, to be reshaped: its status, its fields (in order),
/// its whole body.
pub struct Produced<'f> {
    pub status: u16,
    pub fields: Vec<(&'f [u8], &'f [u8])>,
    pub body: &'f [u8],
}

/// The response with its body reshaped (`params`: the route's path parameters).
pub fn reshape(
    w: &Cx<'_>,
    facts: &ConnFacts,
    (head, params): (&RequestHead, &[&[u8]]),
    st: &mut ExchangeState,
    produced: Produced<'_>,
) -> Result<MockResponse, GatewayError> {
    let Produced {
        status,
        fields,
        body,
    } = produced;
    let Some(route) = st.route else {
        return Err(GatewayError::NoRoute);
    };
    let cfg = &w.g.config;
    let content_type = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"content-type"))
        .map(|&(_, v)| v);
    let template = cfg
        .templates
        .routes
        .get(route)
        .and_then(|t| t.response.as_ref());
    let transform = cfg.transforms.routes.get(route).and_then(Option::as_ref);
    let total = st.started.elapsed();
    let st_ref: &ExchangeState = st;
    let reshaped = crate::exchange::context::with_entry(
        w,
        facts,
        head,
        st_ref,
        Some(route),
        total,
        |entry: &crate::accesslog::Entry<'_>| {
            let vars = Vars {
                head,
                params,
                entry,
                body: None,
            };
            match (template, transform) {
                (Some(t), _) => super::template::response(t, &vars, status, content_type, body),
                (None, Some(t)) => super::xml::response(t, head, status, &fields, body),
                (None, None) => Ok((Bytes::copy_from_slice(body), None)),
            }
        },
    );
    let (new_body, new_type) = reshaped.map_err(|r| r.into_error(st))?;
    // the producer's fields but those describing the old body
    // (a body passed as it is, a 304's validators: kept)
    let replaced = |n: &[u8]| {
        new_type.is_some()
            && (n.eq_ignore_ascii_case(b"content-type")
                || n.eq_ignore_ascii_case(b"content-encoding")
                || n.eq_ignore_ascii_case(b"etag")
                || n.eq_ignore_ascii_case(b"content-md5"))
    };
    let mut out: Vec<(&[u8], &[u8])> = fields.into_iter().filter(|(n, _)| !replaced(n)).collect();
    if let Some(t) = new_type.as_deref() {
        out.push((b"content-type", t.as_bytes()));
    }
    let mut m = MockResponse::build(status, out, new_body);
    if head.method_kind == crate::http::Method::Head {
        m.head = without_length(&m.head);
    }
    Ok(m)
}

/// A HEAD response's `content-length` must be the length GET would get (RFC 9110 §8.6),
/// which a reshaped response cannot know without the body: the field is left out (§9.3.2
/// lets a HEAD response omit it). `head` is [`MockResponse::build`]'s, the length last.
fn without_length(head: &Bytes) -> Bytes {
    let body = head.strip_suffix(b"\r\n").unwrap_or(head);
    match body.iter().rposition(|&b| b == b'\n') {
        Some(i)
            if head
                .get(i + 1..)
                .is_some_and(|l| l.starts_with(b"content-length: ")) =>
        {
            head.slice(..i + 1)
        }
        _ => head.clone(),
    }
}
