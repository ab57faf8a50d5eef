//! The event a function receives: payload format 2.0 (HTTP APIs) and 1.0 (REST API proxy
//! format), as AWS documents them ("Create AWS Lambda proxy integrations for HTTP APIs", "Set
//! up Lambda proxy integrations in API Gateway").
//!
//! Owns reading a request once into [`Request`] (fields grouped by lower-cased name, cookies,
//! query parameters and path parameters decoded, the body as text or base64, the request
//! context's values) and serialising it as 2.0 (1.0's shapes are in `event_v1.rs`). Leaves out reading the body and
//! matching the route (the caller hands both in through [`EventInput`]).
//!
//! Rules, per field (AWS's where AWS documents or shows them, tollgate's choice otherwise):
//! - Field names are lower-cased in both formats ("All header names are lowercased"). 2.0
//!   joins repeated fields with `,`; 1.0 puts the LAST value in `headers` and all of them in
//!   `multiValueHeaders`. 2.0 moves `cookie` fields to `cookies` (each split on `;`, trimmed);
//!   1.0 keeps `cookie` among the headers (several `cookie` fields, as HTTP/2 clients send
//!   them, joined with `; `: RFC 9113 §8.2.3). Hop-by-hop and framing fields (RFC 9110 §7.6.1,
//!   RFC 9112 §6) are not shown, as the HTTP integration does not forward them; instead, as
//!   API Gateway does, `content-length` (of the decoded body, when the request has one),
//!   `x-request-id` (the gateway's request id, as an origin receives it),
//!   `x-forwarded-for` (the client's list, then the peer), `x-forwarded-proto` and
//!   `x-forwarded-port` (the listener's) are set.
//! - 2.0's `rawPath` and `requestContext.http.path` are the path percent-decoded (RFC 3986
//!   §2.1; `+` stays; lossy UTF-8), as AWS's HTTP APIs deliver it despite the name. AWS's
//!   documentation does not say so (its examples show only `/my/path`); captured HTTP API
//!   events do: "HTTP API decodes `rawPath`" while REST APIs, Function URLs and ALB keep the
//!   encoding (github.com/middleapi/standard-server pull 93, citing live captures in
//!   github.com/hotsock/voker pull 8; also github.com/Worklytics/psoxy pull 827: "API gateway
//!   v2 seems to decode paths"). So `/a%2Fb` and `/a/b` look alike there, as on AWS
//!   (`pathParameters` are decoded too). AWS's cut of the path at a decoded `?` is not
//!   copied. 1.0's `path` and `requestContext.path` are the path as received
//!   (percent-encoded), as REST APIs deliver it.
//! - `rawQueryString` is the query as received (without `?`; `""` without one).
//!   `queryStringParameters` has decoded names and values (`%XX` and `+` as space, as the
//!   form-urlencoded syntax says; AWS decodes them so too), repeated names joined with `,` in
//!   2.0; in 1.0 the last value, with all of them in `multiValueQueryStringParameters`.
//! - `pathParameters` values are percent-decoded (as API Gateway delivers them; `+` stays);
//!   a greedy `{proxy+}` is named `proxy`.
//! - Absent maps: 2.0 omits `cookies`, `queryStringParameters`, `pathParameters`,
//!   `stageVariables` and `body` (an empty body); 1.0 sets them to `null`.
//! - The body is text (`isBase64Encoded: false`) when the content type is text-like (see
//!   [`is_text_like`]) and the bytes are UTF-8; otherwise (no content type too) base64.
//! - Bytes that are not UTF-8 (obs-text in a field value, a decoded `%FF`) become U+FFFD:
//!   JSON strings are Unicode, and a lossy value is better than a refused request. Nothing here
//!   panics on any input.
//! - `requestContext.authentication.clientCert` (2.0) and `requestContext.identity.clientCert`
//!   (1.0) appear when the connection's facts hold a verified client certificate; tollgate
//!   does not keep the certificate's PEM, so `clientCertPem` is omitted.
//! - 1.0's `resource` and `resourcePath` are the route key's path (`/hello/{proxy+}`), or the
//!   whole key for `$default`; `resourceId` is `null` and `extendedRequestId` the request id.

use std::borrow::Cow;
use std::time::UNIX_EPOCH;

use base64::Engine as _;
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::EventInput;
use crate::facts::{Protocol, Scheme};
use crate::http::{trim_ows, BodyKind, HeaderKind};

/// Media types sent as text besides `text/*` (compared without parameters, ASCII
/// case-insensitively: RFC 9110 §8.3.1).
pub const TEXT_MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/javascript",
    "application/ecmascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/yaml",
    "application/x-yaml",
    "application/graphql",
];
/// Structured-syntax suffixes (RFC 6838 §4.2.8) that make any media type text: `+json`
/// (`application/problem+json`), `+xml` (`image/svg+xml`), `+yaml`.
pub const TEXT_SUFFIXES: &[&str] = &["+json", "+xml", "+yaml"];

/// Whether a body of content type `ct` is sent as text (see the module docs).
pub fn is_text_like(ct: &[u8]) -> bool {
    let media = ct.split(|&b| b == b';').next().unwrap_or_default();
    let media = trim_ows(media).to_ascii_lowercase();
    let Ok(media) = std::str::from_utf8(&media) else {
        return false;
    };
    media.starts_with("text/")
        || TEXT_MEDIA_TYPES.contains(&media)
        || TEXT_SUFFIXES.iter().any(|s| media.ends_with(s))
}

/// Fields grouped by lower-cased name, in first-seen order, each with its values in order.
type Grouped<'a> = Vec<(String, Vec<Cow<'a, str>>)>;

/// The request, read once, as both formats need it.
pub(super) struct Request<'a> {
    pub(super) headers: Grouped<'a>,
    /// 2.0's `cookies`; empty when `cookie` fields stay among the headers (1.0).
    pub(super) cookies: Vec<Cow<'a, str>>,
    pub(super) query: Vec<(String, Vec<String>)>,
    pub(super) path_params: Vec<(&'a str, String)>,
    pub(super) raw_path: Cow<'a, str>,
    /// 2.0's `rawPath`: the path percent-decoded (see the module doc).
    pub(super) decoded_path: String,
    pub(super) raw_query: Cow<'a, str>,
    pub(super) method: Cow<'a, str>,
    pub(super) domain_name: String,
    pub(super) protocol: &'static str,
    pub(super) source_ip: String,
    pub(super) user_agent: String,
    pub(super) request_id: Cow<'a, str>,
    pub(super) time: String,
    pub(super) time_epoch: u64,
    pub(super) body: Option<Cow<'a, str>>,
    pub(super) base64: bool,
}

impl<'a> Request<'a> {
    pub(super) fn read(input: &EventInput<'a>, split_cookies: bool) -> Request<'a> {
        let head = input.head;
        let facts = input.facts;
        let mut headers: Grouped<'a> = Vec::new();
        let mut cookies = Vec::new();
        for h in &head.headers {
            // framing, hop-by-hop, `expect` and the forwarding fields tollgate sets itself
            if h.kind == HeaderKind::Skip {
                continue;
            }
            let name = String::from_utf8_lossy(head.slice(h.name)).to_ascii_lowercase();
            let value = String::from_utf8_lossy(head.slice(h.value));
            if split_cookies && name == "cookie" {
                for c in value.split(';') {
                    let c = c.trim_matches([' ', '\t']);
                    if !c.is_empty() {
                        cookies.push(Cow::Owned(c.to_owned()));
                    }
                }
                continue;
            }
            if name == "cookie" {
                // RFC 9113 §8.2.3: an HTTP/2 client's cookie fields are one list again for an
                // HTTP/1.1 reader, joined with "; " (an HTTP/1.1 client sends one: RFC 6265 §5.4)
                if let Some((_, values)) = headers.iter_mut().find(|(n, _)| n == "cookie") {
                    if let Some(joined) = values.first_mut() {
                        *joined = Cow::Owned(format!("{joined}; {value}"));
                        continue;
                    }
                }
            }
            push(&mut headers, name, value);
        }
        // the gateway's request id, as the HTTP integration forwards it to an origin
        let id = String::from_utf8_lossy(input.request_id).into_owned();
        set(&mut headers, "x-request-id", id);
        if !matches!(head.body, BodyKind::Empty) {
            let len = input.body.len().to_string();
            set(&mut headers, "content-length", len);
        }
        // `x-forwarded-for`, the de-facto field RFC 7239 §1 describes: the client's list, then
        // the peer, as the HTTP integration appends it
        let peer = String::from_utf8_lossy(facts.peer_ip().as_bytes()).into_owned();
        match headers.iter_mut().find(|(n, _)| n == "x-forwarded-for") {
            Some((_, values)) => values.push(Cow::Owned(peer.clone())),
            None => push(
                &mut headers,
                "x-forwarded-for".into(),
                Cow::Owned(peer.clone()),
            ),
        }
        let proto = match facts.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        set(&mut headers, "x-forwarded-proto", proto.to_owned());
        set(
            &mut headers,
            "x-forwarded-port",
            facts.local().port().to_string(),
        );

        let content_type = head.header("content-type");
        let (body, base64) = body_text(content_type, input.body);
        let user_agent = head
            .header("user-agent")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        let millis = input
            .now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let time = String::from_utf8_lossy(&crate::fmt::clf_time(millis / 1000)).into_owned();
        let protocol = match facts.protocol {
            Protocol::Http2 => "HTTP/2.0",
            Protocol::Http1 => match head.version {
                crate::http::Version::Http10 => "HTTP/1.0",
                crate::http::Version::Http11 => "HTTP/1.1",
            },
        };
        let domain_name = match head.host_bytes() {
            Some(h) => String::from_utf8_lossy(strip_port(h)).into_owned(),
            None => facts.local().ip().to_string(),
        };
        Request {
            headers,
            cookies,
            query: head.query_bytes().map(parse_query).unwrap_or_default(),
            path_params: input
                .params
                .iter()
                .map(|&(name, raw)| {
                    let name = name.strip_suffix('+').unwrap_or(name);
                    (name, decode(raw, false))
                })
                .collect(),
            raw_path: String::from_utf8_lossy(head.path_bytes()),
            decoded_path: decode(head.path_bytes(), false),
            raw_query: String::from_utf8_lossy(head.query_bytes().unwrap_or_default()),
            method: String::from_utf8_lossy(head.method_bytes()),
            domain_name,
            protocol,
            // the client behind trusted proxies when the request filter found one
            source_ip: match &input.client_ip {
                Some(ip) => String::from_utf8_lossy(ip.as_bytes()).into_owned(),
                None => peer,
            },
            user_agent,
            request_id: String::from_utf8_lossy(input.request_id),
            time,
            time_epoch: millis,
            body,
            base64,
        }
    }

    /// `pathParameters` as borrowed pairs (both formats: one value a name).
    pub(super) fn path_param_pairs(&self) -> Vec<(&str, &str)> {
        self.path_params
            .iter()
            .map(|(n, v)| (*n, v.as_str()))
            .collect()
    }

    /// `domainPrefix`: the first label of `domainName`, or all of it without a dot.
    pub(super) fn domain_prefix(&self) -> &str {
        self.domain_name
            .split('.')
            .next()
            .unwrap_or(&self.domain_name)
    }
}

/// Appends `value` to the group `name`.
fn push<'a>(groups: &mut Grouped<'a>, name: String, value: Cow<'a, str>) {
    match groups.iter_mut().find(|(n, _)| *n == name) {
        Some((_, values)) => values.push(value),
        None => groups.push((name, vec![value])),
    }
}

/// Replaces the group `name` with the single `value`.
fn set(groups: &mut Grouped<'_>, name: &str, value: String) {
    groups.retain(|(n, _)| n != name);
    groups.push((name.to_owned(), vec![Cow::Owned(value)]));
}

/// The host without its port (RFC 9110 §7.2: `uri-host [ ":" port ]`; an IPv6 literal keeps
/// its brackets).
fn strip_port(host: &[u8]) -> &[u8] {
    if host.starts_with(b"[") {
        let end = host
            .iter()
            .position(|&b| b == b']')
            .map_or(host.len(), |i| i + 1);
        return host.get(..end).unwrap_or(host);
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(i) => host.get(..i).unwrap_or(host),
        None => host,
    }
}

/// The body field and `isBase64Encoded` (see the module docs).
fn body_text<'a>(content_type: Option<&[u8]>, body: &'a [u8]) -> (Option<Cow<'a, str>>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    if content_type.is_some_and(is_text_like) {
        if let Ok(text) = std::str::from_utf8(body) {
            return (Some(Cow::Borrowed(text)), false);
        }
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    (Some(Cow::Owned(encoded)), true)
}

/// Percent-decodes `raw` (RFC 3986 §2.1; a `%` without two hex digits stays as it is), `+` as
/// a space when `plus_is_space` (the form-urlencoded query syntax), then UTF-8, lossily.
fn decode(raw: &[u8], plus_is_space: bool) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let hex = |j: usize| raw.get(j).and_then(|&c| (c as char).to_digit(16));
        match b {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// `name=value` pairs split on `&`, decoded, grouped by name in first-seen order. A pair
/// without `=` has the value `""`; an empty name is dropped.
pub(crate) fn parse_query(raw: &[u8]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for pair in raw.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (
                pair.get(..i).unwrap_or_default(),
                pair.get(i + 1..).unwrap_or_default(),
            ),
            None => (pair, &[][..]),
        };
        let name = decode(name, true);
        if name.is_empty() {
            continue;
        }
        let value = decode(value, true);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => out.push((name, vec![value])),
        }
    }
    out
}

/// A JSON object from pairs (names unique by construction).
pub(super) struct Map<'x, K, V>(pub(super) &'x [(K, V)]);

impl<K: AsRef<str>, V: Serialize> Serialize for Map<'_, K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k.as_ref(), v)?;
        }
        m.end()
    }
}

/// `Some(Map)` unless there are no pairs.
pub(super) fn map_or_none<K, V>(pairs: &[(K, V)]) -> Option<Map<'_, K, V>> {
    (!pairs.is_empty()).then_some(Map(pairs))
}

/// `clientCert` as API Gateway shows it (`clientCertPem` omitted: see the module docs).
#[derive(serde::Serialize)]
pub(super) struct CertJson<'a> {
    #[serde(rename = "subjectDN")]
    subject_dn: &'a str,
    #[serde(rename = "issuerDN")]
    issuer_dn: &'a str,
    #[serde(rename = "serialNumber")]
    serial_number: &'a str,
    validity: Validity<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Validity<'a> {
    not_before: &'a str,
    not_after: &'a str,
}

pub(super) fn client_cert<'a>(input: &EventInput<'a>) -> Option<CertJson<'a>> {
    let c = input.facts.tls.as_ref()?.client_cert.as_ref()?;
    Some(CertJson {
        subject_dn: &c.subject_dn,
        issuer_dn: &c.issuer_dn,
        serial_number: &c.serial_number,
        validity: Validity {
            not_before: &c.not_before,
            not_after: &c.not_after,
        },
    })
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EventV2<'x> {
    version: &'static str,
    route_key: &'x str,
    raw_path: &'x str,
    raw_query_string: &'x str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cookies: &'x [Cow<'x, str>],
    headers: Map<'x, &'x str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<Map<'x, &'x str, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<Map<'x, &'x str, &'x str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage_variables: Option<Map<'x, &'x str, &'x str>>,
    request_context: ContextV2<'x>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'x str>,
    is_base64_encoded: bool,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextV2<'x> {
    account_id: &'x str,
    api_id: &'x str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authentication: Option<Authentication<'x>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<serde_json::Value>,
    domain_name: &'x str,
    domain_prefix: &'x str,
    http: HttpV2<'x>,
    request_id: &'x str,
    route_key: &'x str,
    stage: &'x str,
    time: &'x str,
    time_epoch: u64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Authentication<'x> {
    client_cert: CertJson<'x>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpV2<'x> {
    method: &'x str,
    path: &'x str,
    protocol: &'x str,
    source_ip: &'x str,
    user_agent: &'x str,
}

/// Payload format 2.0.
pub(super) fn v2(input: &EventInput<'_>) -> Vec<u8> {
    let r = Request::read(input, true);
    let headers: Vec<(&str, String)> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.join(",")))
        .collect();
    let query: Vec<(&str, String)> = r
        .query
        .iter()
        .map(|(n, v)| (n.as_str(), v.join(",")))
        .collect();
    let params = r.path_param_pairs();
    let event = EventV2 {
        version: "2.0",
        route_key: input.route_key,
        raw_path: &r.decoded_path,
        raw_query_string: &r.raw_query,
        cookies: &r.cookies,
        headers: Map(&headers),
        query_string_parameters: map_or_none(&query),
        path_parameters: map_or_none(&params),
        stage_variables: map_or_none(input.stage_variables),
        request_context: ContextV2 {
            account_id: input.account_id,
            api_id: input.api_id,
            authentication: client_cert(input).map(|client_cert| Authentication { client_cert }),
            authorizer: super::event_auth::v2(input.principal),
            domain_name: &r.domain_name,
            domain_prefix: r.domain_prefix(),
            http: HttpV2 {
                method: &r.method,
                path: &r.decoded_path,
                protocol: r.protocol,
                source_ip: &r.source_ip,
                user_agent: &r.user_agent,
            },
            request_id: &r.request_id,
            route_key: input.route_key,
            stage: input.stage,
            time: &r.time,
            time_epoch: r.time_epoch,
        },
        body: r.body.as_deref(),
        is_base64_encoded: r.base64,
    };
    serde_json::to_vec(&event).unwrap_or_default()
}
