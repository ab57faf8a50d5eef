//! A mock integration's values: its body and header values may hold the value vocabulary
//! (`{"id": "$request.path.id"}` echoes the path parameter), compiled at load and rendered
//! per request into a held response.
//!
//! Owns: rendering a mock whose body or headers hold variables ([`MockValues::render`]): the
//! fields in the order configured, a header value made a field value (RFC 9110 §5.5, see
//! [`Value::render_field`]; one that renders empty is left out), the body with what each
//! `$request.*` variable renders JSON-escaped when the body is JSON (RFC 8259 §7; `$context`
//! values are escaped by the access log's vocabulary already), so `"$request.path.id"` stays
//! one string whatever the client sent. Leaves out: validating the mock (see
//! [`crate::config::mock`]) and a mock without variables, which is answered from the bytes
//! rendered at load.

use bytes::Bytes;

use super::value::{Value, Vars};
use crate::config::MockResponse;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::RequestHead;
use crate::worker::Cx;

/// The mock response of `route` rendered for this request, when its mock has values (`None`:
/// the mock is answered from the bytes rendered at load). Builds the exchange's `$context`
/// (see `crate::exchange::context::with_entry`) for the values to read.
pub fn respond(
    w: &Cx<'_>,
    facts: &ConnFacts,
    head: &RequestHead,
    params: &[&[u8]],
    st: &ExchangeState,
    route: usize,
) -> Option<MockResponse> {
    let values = w.g.config.mapping.routes.get(route)?.mock.as_ref()?;
    let total = st.started.elapsed();
    Some(crate::exchange::context::with_entry(
        w,
        facts,
        head,
        st,
        Some(route),
        total,
        |entry| {
            values.render(&Vars {
                head,
                params,
                entry,
                body: None,
            })
        },
    ))
}

/// A mock's compiled values.
#[derive(Debug)]
pub struct MockValues {
    pub status: u16,
    /// Header names (as written) and values, in order (`content-type` among them, defaulted
    /// at load from the body as for a static mock).
    pub headers: Vec<(Box<str>, Value)>,
    /// The body, part by part (a run of text or one variable, see [`Value::split`]).
    pub body: Vec<Value>,
    /// The body is JSON: variables' output is JSON-escaped.
    pub json: bool,
}

impl MockValues {
    /// Whether rendering reads `$context` (the caller then builds the entry).
    pub fn reads_context(&self) -> bool {
        self.headers.iter().any(|(_, v)| v.reads_context())
            || self.body.iter().any(Value::reads_context)
    }

    /// The response for this request.
    pub fn render(&self, vars: &Vars<'_>) -> MockResponse {
        let mut values: Vec<Vec<u8>> = Vec::with_capacity(self.headers.len());
        for (_, v) in &self.headers {
            let mut out = Vec::with_capacity(32);
            v.render_field(vars, &mut out);
            values.push(out);
        }
        let mut body = Vec::with_capacity(128);
        for part in &self.body {
            if self.json && !part.is_static() && !part.reads_context() {
                let mut raw = Vec::with_capacity(32);
                part.render(vars, &mut raw);
                crate::gateway_response::template::push_json_escaped(&mut body, &raw);
            } else {
                part.render(vars, &mut body);
            }
        }
        let fields = self
            .headers
            .iter()
            .zip(&values)
            .filter(|(_, v)| !v.is_empty())
            .map(|((n, _), v)| (n.as_bytes(), &v[..]));
        MockResponse::build(self.status, fields, Bytes::from(body))
    }
}
