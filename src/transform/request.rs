//! The request-mapping phase: the body the integration gets (a request template, or an
//! XML ⇄ JSON transformation), then the route's `request_parameters` (headers, query, path).
//!
//! Owns: running them in that order against one [`Vars`] (the request head, the route's path
//! parameters, the exchange's `$context`, the held body as JSON), and recording the outcome:
//! the new body in [`ExchangeState::held_body`], what else changed in
//! [`ExchangeState::edits`]. Leaves out: the conversions (see [`super::xml`],
//! [`super::template`]) and the operations (see [`crate::mapping::request`]).

use bytes::Bytes;

use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::facts::ConnFacts;
use crate::http::RequestHead;
use crate::mapping::value::Vars;
use crate::mapping::RequestEdits;
use crate::worker::Cx;

/// A replaced request body and its media type (`None`: the client's `content-type` stays).
pub struct NewBody {
    pub body: Bytes,
    pub content_type: Option<Box<str>>,
}

/// The request-mapping phase (see the module doc). Costs four lookups on routes without
/// mappings, templates or transformations.
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
    let mapping = cfg.mapping.routes.get(route).filter(|m| m.has_request());
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
    if transform.is_none() && template.is_none() && mapping.is_none() {
        if reshapes_response && head.header("accept-encoding").is_some() {
            st.edits_mut().remove.push("accept-encoding".into());
        }
        return Ok(());
    }
    let _ = super::hold::json(st); // parsed once, for everything below that reads JSON
    let mut edits = st.edits.take().map(|b| *b).unwrap_or_default();
    let st_ref: &ExchangeState = st;
    let held = st_ref.held_body.clone().unwrap_or_default();
    let body_json = match &st_ref.body_json {
        super::hold::BodyJson::Parsed(j) => Some(&**j),
        _ => None,
    };
    let total = st_ref.started.elapsed();
    let outcome = crate::proxy::context::with_entry(
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
                body: body_json,
            };
            let new_body = match (template, transform) {
                (Some(t), _) => super::template::request(t, &vars, &held)?,
                (None, Some(t)) => super::xml::request(t, head, &held)?,
                (None, None) => None,
            };
            if let Some(m) = mapping {
                crate::mapping::request::apply(m, &vars, &mut edits);
            }
            Ok::<_, super::Refusal>(new_body)
        },
    );
    let new_body = outcome.map_err(|r| r.into_error(st))?;
    if reshapes_response && head.header("accept-encoding").is_some() {
        edits.remove.push("accept-encoding".into());
    }
    if let Some(nb) = new_body {
        st.held_body = Some(nb.body);
        edits.body_replaced = true;
        if nb.content_type.is_some() {
            edits.content_type = nb.content_type;
        }
    }
    st.set_edits(edits);
    Ok(())
}

/// Whether `edits` change anything.
pub fn is_empty(e: &RequestEdits) -> bool {
    e.path.is_none()
        && e.query.is_none()
        && e.remove.is_empty()
        && e.add.is_empty()
        && !e.body_replaced
        && e.content_type.is_none()
}
