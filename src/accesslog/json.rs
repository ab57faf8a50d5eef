//! The access log's JSON line, written out field by field: the hot path of a JSON access log.
//!
//! Owns: [`json_line`]. Leaves out: the field names and values it must agree with (the parent
//! module's `FIELDS` and its generic formatter, against which a test compares it) and escaping
//! (the parent's `push_escaped`).

use std::time::Duration;

use super::tls_fields::{self, TLS_FIELDS};
use super::{endpoint, or_dash, push_escaped, push_ms, push_u64, Entry};

/// The JSON line, written out field by field (in [`super::FIELDS`] order, as the generic
/// formatter would, which a test checks): each name with its surrounding quotes and separators
/// is one copy, and text we formatted ourselves (time, protocol) skips the escaping scan. This
/// runs once per request on the worker, so it is kept lean.
pub(super) fn json_line(e: &Entry<'_>, clf: &[u8; 26], out: &mut Vec<u8>) {
    let query = e.raw_query.map_or(0, <[u8]>::len);
    out.reserve(512 + e.path.len() + e.user_agent.len() + e.domain_name.len() + query);
    let opt_ms = |out: &mut Vec<u8>, d: Option<Duration>| match d {
        Some(d) => push_ms(out, d),
        None => out.extend_from_slice(b"\"-\""),
    };
    out.extend_from_slice(b"{\"requestId\":\"");
    push_escaped(out, e.request_id);
    out.extend_from_slice(b"\",\"ip\":\"");
    push_escaped(out, e.ip);
    out.extend_from_slice(b"\",\"requestTime\":\"");
    out.extend_from_slice(clf);
    out.extend_from_slice(b"\",\"httpMethod\":\"");
    push_escaped(out, e.method);
    out.extend_from_slice(b"\",\"routeKey\":\"");
    push_escaped(out, e.route_key.as_bytes());
    out.extend_from_slice(b"\",\"path\":\"");
    push_escaped(out, e.path);
    out.extend_from_slice(b"\",\"status\":");
    push_u64(out, u64::from(e.status));
    out.extend_from_slice(b",\"protocol\":\"");
    out.extend_from_slice(e.protocol.as_bytes());
    out.extend_from_slice(b"\",\"responseLength\":");
    push_u64(out, e.response_length);
    out.extend_from_slice(b",\"responseLatency\":");
    push_ms(out, e.latency);
    out.extend_from_slice(b",\"integrationLatency\":");
    opt_ms(out, e.integration_latency);
    out.extend_from_slice(b",\"integrationStatus\":");
    match e.integration_status {
        Some(st) => push_u64(out, u64::from(st)),
        None => out.extend_from_slice(b"\"-\""),
    }
    out.extend_from_slice(b",\"errorMessage\":\"");
    push_escaped(out, e.error.as_deref().unwrap_or("-").as_bytes());
    out.extend_from_slice(b"\",\"userAgent\":\"");
    push_escaped(
        out,
        if e.user_agent.is_empty() {
            b"-"
        } else {
            e.user_agent
        },
    );
    out.extend_from_slice(b"\",\"apiKeyName\":\"");
    push_escaped(out, e.api_key.unwrap_or("-").as_bytes());
    out.extend_from_slice(b"\",\"domainName\":\"");
    push_escaped(out, or_dash(e.domain_name));
    out.extend_from_slice(b"\",\"requestLength\":");
    push_u64(out, e.request_length);
    out.extend_from_slice(b",\"rawQueryString\":\"");
    push_escaped(out, e.raw_query.unwrap_or(b"-"));
    out.extend_from_slice(b"\",\"integration.endpoint\":\"");
    out.extend_from_slice(endpoint(e.endpoint, &mut [0; 64]));
    for (name, f) in TLS_FIELDS {
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":\"");
        push_escaped(out, tls_fields::text(f, e.tls));
    }
    // not a `FIELDS` name: API Gateway's JSON examples call `$context.authorizer.principalId`
    // `principalId`
    out.extend_from_slice(b"\",\"principalId\":\"");
    let id = e.principal.map_or("", |p| &*p.id);
    push_escaped(out, if id.is_empty() { b"-" } else { id.as_bytes() });
    out.extend_from_slice(b"\",\"stage\":\"");
    push_escaped(out, e.stage.as_bytes());
    out.extend_from_slice(b"\",\"canary\":");
    out.extend_from_slice(match e.canary {
        Some(true) => b"true",
        Some(false) => b"false",
        None => b"null",
    });
    out.extend_from_slice(b"}");
}
