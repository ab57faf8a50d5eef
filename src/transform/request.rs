//! The request-mapping phase: the body the integration gets (a request template, or an
//! XML ⇄ JSON transformation). The route's `request_parameters` (headers, query, path) are
//! rendered later, straight into the head the origin gets (see
//! [`crate::mapping::request::Mapped`]): nothing of them is kept in between.
//!
//! Owns: running the template or transformation against one [`Vars`] (the request head, the
//! route's path parameters, the exchange's `$context`, the held body as JSON), and recording
//! the outcome: the new body in [`ExchangeState::held_body`], what else changed in
//! [`ExchangeState::edits`]. Leaves out: the conversions (see [`super::xml`],
//! [`super::template`]).

use bytes::Bytes;

use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::RequestHead;
use crate::mapping::value::Vars;
use crate::worker::Cx;

/// A replaced request body and its media type (`None`: the client's `content-type` stays).
pub struct NewBody {
    pub body: Bytes,
    pub content_type: Option<Box<str>>,
}

/// The request-mapping phase (see the module doc). Costs four lookups on routes without
/// templates or transformations.
pub fn apply(
    w: &Cx<'_>,
    facts: &ConnFacts,
    head: &RequestHead,
    params: &[&[u8]],
    st: &mut ExchangeState,
    route: usize,
) -> Result<(), GatewayError> {
    let cfg = &w.g.config;
    let transform = cfg
        .transforms
        .routes
        .get(route)
        .and_then(Option::as_ref)
        .filter(|t| t.request.is_some());
    let template = cfg
        .templates
        .routes
        .get(route)
        .and_then(|t| t.request.as_ref());
    // A response reshaped here (a template, an XML ⇄ JSON transformation) must reach us as
    // the origin wrote it, not content-coded: the client's `accept-encoding` is not
    // forwarded (RFC 9110 §12.5.3: without it the origin sends identity). Compression, if
    // the route has it, then applies to the reshaped body.
    let reshapes_response = cfg
        .transforms
        .routes
        .get(route)
        .and_then(Option::as_ref)
        .is_some_and(|t| t.response.is_some())
        || cfg
            .templates
            .routes
            .get(route)
            .is_some_and(|t| t.response.is_some());
    if reshapes_response && head.header("accept-encoding").is_some() {
        st.edits_mut().remove("accept-encoding");
    }
    if cfg
        .mapping
        .routes
        .get(route)
        .is_some_and(|m| m.reads_body())
    {
        // parsed here, once: the head rewrite renders `$request.body` values from it
        let _ = super::hold::json(st);
    }
    if transform.is_none() && template.is_none() {
        return Ok(());
    }
    let _ = super::hold::json(st); // parsed once, for everything below that reads JSON
    let st_ref: &ExchangeState = st;
    let held = st_ref.held_body.clone().unwrap_or_default();
    let body_json = match &st_ref.body_json {
        super::hold::BodyJson::Parsed(j) => Some(&**j),
        _ => None,
    };
    let outcome = crate::exchange::context::with_entry(
        w,
        facts,
        head,
        st_ref,
        Some(route),
        st_ref.started.elapsed(),
        |entry: &crate::accesslog::Entry<'_>| {
            let vars = Vars {
                head,
                params,
                entry,
                body: body_json,
            };
            match (template, transform) {
                (Some(t), _) => super::template::request(t, &vars, &held),
                (None, Some(t)) => super::xml::request(t, head, &held),
                (None, None) => Ok(None),
            }
        },
    );
    let new_body = outcome.map_err(|r| r.into_error(st))?;
    if let Some(nb) = new_body {
        st.held_body = Some(nb.body);
        let edits = st.edits_mut();
        edits.body_replaced = true;
        if nb.content_type.is_some() {
            edits.content_type = nb.content_type;
        }
    }
    Ok(())
}
