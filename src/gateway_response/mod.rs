//! Gateway responses: API Gateway's customisation of its own errors (`[[gateway_response]]`
//! with `type`, `status`, `headers` and a body template), with AWS's response type names and
//! fallbacks (a specific type, else `DEFAULT_4XX` / `DEFAULT_5XX`, else tollgate's standard
//! response).
//!
//! Owns: the compiled [`GatewayResponses`], the lookup with its fallback, and rendering a
//! customised response for one failure ([`customise`], which the lifecycle's error mapping
//! calls, and which stays the one place errors become responses): the status (the
//! configured one, else the failure's own), the standard response's own fields (a 401's
//! `www-authenticate`, a 426's `upgrade`; the throttled 429's rate-limit fields) unless the
//! configured headers name them, the configured headers, and the body (the template, else the
//! standard body). The types themselves are in [`kind`], templates in [`template`]. Leaves
//! out: the status of a failure (see [`crate::error::GatewayError::status`]), compiling the
//! TOML (see `crate::config::gateway_responses`), and what the response filter adds after
//! (`date`, `x-request-id`, CORS, compression).
//!
//! Requests refused at their head (a malformed or too large head, a slow one: 400, 408, 414,
//! 431 before anything is parsed) are not customised: they have no request to render a
//! template for, and are answered before routing.

pub mod kind;
pub mod template;

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value as Json;

pub use kind::{response_type, ResponseType, TYPE_COUNT};
pub use template::{ErrorVars, Template};

use crate::config::MockResponse;
use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::RequestHead;
use crate::mapping::value::Vars;
use crate::response::{Response, Source};
use crate::worker::Cx;

/// The fields a throttled 429 carries (see `crate::session::h1::rate_limit_fields`): a
/// response that sets one of them gets none of tollgate's.
const RATE_LIMIT_FIELDS: [&[u8]; 3] = [b"retry-after", b"ratelimit", b"ratelimit-policy"];

/// One `[[gateway_response]]`, compiled.
#[derive(Debug)]
pub struct GatewayResponse {
    /// The status sent; `None`: the failure's own.
    pub status: Option<u16>,
    /// Header fields (names as configured, values as templates), in order; a value that
    /// renders empty is left out.
    pub headers: Vec<(Box<str>, Template)>,
    /// The body template; `None`: the standard body (`{"message": ...}`) and its
    /// `content-type`.
    pub body: Option<Template>,
    /// The body's `content-type` (when `body` is set).
    pub content_type: Box<str>,
    /// `content_type` is JSON: variables are escaped in the body.
    pub json: bool,
}

impl GatewayResponse {
    /// Whether the configured headers name `name` (case-insensitive, RFC 9110 §5.1).
    pub fn sets(&self, name: &[u8]) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
    }

    fn reads_message(&self) -> bool {
        self.body.as_ref().is_some_and(Template::reads_message)
            || self.headers.iter().any(|(_, t)| t.reads_message())
    }

    fn reads_request(&self) -> bool {
        self.body.as_ref().is_some_and(Template::reads_request)
            || self.headers.iter().any(|(_, t)| t.reads_request())
    }
}

/// Every configured gateway response, by type.
#[derive(Debug, Default)]
pub struct GatewayResponses {
    /// Indexed by [`ResponseType::index`]; empty when none is configured.
    by_type: Vec<Option<GatewayResponse>>,
}

impl GatewayResponses {
    /// Whether no gateway response is configured (errors keep their standard answers).
    pub fn is_empty(&self) -> bool {
        self.by_type.iter().all(Option::is_none)
    }

    /// The response configured for type `t`.
    pub fn get(&self, t: ResponseType) -> Option<&GatewayResponse> {
        self.by_type.get(t.index()).and_then(Option::as_ref)
    }

    /// Configures `r` for type `t` (replacing any before).
    pub fn insert(&mut self, t: ResponseType, r: GatewayResponse) {
        if self.by_type.len() < TYPE_COUNT {
            self.by_type.resize_with(TYPE_COUNT, || None);
        }
        if let Some(slot) = self.by_type.get_mut(t.index()) {
            *slot = Some(r);
        }
    }

    /// The response for a failure of type `t` sent with `status`: the type's own, else the
    /// fallback for the status (`DEFAULT_4XX` / `DEFAULT_5XX`); `None`: the standard answer.
    pub fn find(&self, t: ResponseType, status: u16) -> Option<&GatewayResponse> {
        self.get(t)
            .or_else(|| self.get(ResponseType::fallback(status)))
    }
}

/// The response error mapping sends for failure `e`: `r` (the standard one), or the
/// `[[gateway_response]]` configured for the failure's type (or its fallback), rendered for
/// this request (see the module doc).
pub fn customise<'a>(
    w: &Cx<'_>,
    facts: &ConnFacts,
    head: &RequestHead,
    st: &ExchangeState,
    e: &GatewayError,
    r: Response<'a>,
) -> Response<'a> {
    let cfg = &w.g.config;
    // the serving API's own gateway responses first, then the config's
    let own = cfg
        .apis
        .gateway_responses
        .get(st.served.deployment as usize)
        .and_then(Option::as_ref);
    let table = &cfg.gateway_responses;
    if table.is_empty() && own.is_none() {
        return r;
    }
    let kind = response_type(e);
    let found = own.and_then(|t| t.find(kind, r.status));
    let Some(gr) = found.or_else(|| table.find(kind, r.status)) else {
        return r;
    };
    let (message, validation) = match gr.reads_message() {
        true => message_of(e, st, r.static_body()),
        false => (String::new(), String::new()),
    };
    let err = ErrorVars {
        message: &message,
        response_type: kind.name(),
        validation: &validation,
    };
    let m = match gr.reads_request() {
        true => {
            let total = st.started.elapsed();
            crate::exchange::context::with_entry(w, facts, head, st, st.route, total, |entry| {
                let vars = Vars {
                    head,
                    params: &[],
                    entry,
                    body: None,
                };
                render(gr, &err, Some(&vars), &r)
            })
        }
        false => render(gr, &err, None, &r),
    };
    let mut out = Response::held(m);
    if let GatewayError::Throttled(t) = e {
        // the response filter adds them to a standard 429 only: kept unless the user's
        // headers replace them
        if !RATE_LIMIT_FIELDS.iter().any(|n| gr.sets(n)) {
            out.added.rate_limit = Some(*t);
        }
    }
    out
}

/// The customised response: status, the standard response's fields the configured ones do not
/// replace, the configured fields, the body.
fn render(
    gr: &GatewayResponse,
    err: &ErrorVars<'_>,
    vars: Option<&Vars<'_>>,
    r: &Response<'_>,
) -> MockResponse {
    let status = gr.status.unwrap_or(r.status);
    let replaced = gr.body.is_some();
    let mut fields: Vec<(&[u8], Cow<'_, [u8]>)> = standard_fields(r)
        .into_iter()
        .filter(|(n, _)| !(gr.sets(n) || (replaced && n.eq_ignore_ascii_case(b"content-type"))))
        .map(|(n, v)| (n, Cow::Borrowed(v)))
        .collect();
    if replaced {
        fields.push((b"content-type", Cow::Borrowed(gr.content_type.as_bytes())));
    }
    for (name, t) in &gr.headers {
        let mut v = Vec::new();
        t.render_field(err, vars, &mut v);
        if !v.is_empty() {
            fields.push((name.as_bytes(), Cow::Owned(v)));
        }
    }
    let body = match (&gr.body, &r.source) {
        (Some(t), _) => {
            let mut b = Vec::new();
            t.render(err, vars, gr.json, &mut b);
            Bytes::from(b)
        }
        (None, Source::Held(m)) => m.body.clone(),
        (None, _) => Bytes::copy_from_slice(r.static_body()),
    };
    MockResponse::build(status, fields.iter().map(|(n, v)| (*n, &v[..])), body)
}

/// The fields of the standard response besides its framing: an error's `content-type` and
/// its own fields (see [`GatewayError::fields`]), or those of a refusal prepared in memory.
fn standard_fields<'r>(r: &'r Response<'_>) -> Vec<(&'r [u8], &'r [u8])> {
    match &r.source {
        Source::Error(e) => {
            let mut f: Vec<(&[u8], &[u8])> = vec![(b"content-type", b"application/json")];
            f.extend(e.fields().split(|&b| b == b'\n').filter_map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let colon = line.iter().position(|&b| b == b':')?;
                let (name, value) = line.split_at(colon);
                Some((name, value.get(1..).unwrap_or_default().trim_ascii()))
            }));
            f
        }
        _ => r
            .rendered()
            .map(|m| m.fields().collect())
            .unwrap_or_default(),
    }
}

/// `$context.error.message` and `$context.error.validationErrorString` for failure `e`: the
/// standard body's `message` (the failure's words: `st.detail` where they name the request,
/// see [`GatewayError::detail_is_message`]; else API Gateway's, e.g. "Too Many Requests"),
/// and what request validation found (a refused body's `details`, as `[first, second]`; the
/// missing parameters' message).
fn message_of(e: &GatewayError, st: &ExchangeState, body: &[u8]) -> (String, String) {
    let doc: Option<Json> = serde_json::from_slice(body).ok();
    let standard = || {
        serde_json::from_str::<Json>(e.body())
            .ok()
            .and_then(|d| d.get("message").and_then(Json::as_str).map(str::to_owned))
    };
    let message = doc
        .as_ref()
        .and_then(|d| d.get("message"))
        .and_then(Json::as_str)
        .map(str::to_owned)
        .or_else(|| match (&st.detail, e.detail_is_message()) {
            (Some(d), true) => Some(d.to_string()),
            _ => None,
        })
        .or_else(standard)
        .unwrap_or_default();
    let validation = match (doc.as_ref().and_then(|d| d.get("details")), e) {
        (Some(Json::Array(items)), _) => {
            let items: Vec<Cow<'_, str>> = items
                .iter()
                .map(|i| match i {
                    Json::String(s) => Cow::Borrowed(s.as_str()),
                    other => Cow::Owned(other.to_string()),
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
        (Some(Json::String(s)), _) => s.clone(),
        (Some(other), _) => other.to_string(),
        (None, GatewayError::MissingParameters) => message.clone(),
        (None, _) => String::new(),
    };
    (message, validation)
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
