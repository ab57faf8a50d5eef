//! The body phase: a route that needs its request body whole (a body transformation, a
//! request template, a model to validate, a mapping reading `$request.body`: see
//! [`crate::config::bodies`]) reads it here, once, before validation and mapping; every later
//! phase and the integration read it from [`ExchangeState::held_body`].
//!
//! Owns: reading the body (the session's `read_body`, 413 beyond the route's
//! `max_body_bytes`), decoding a compressed one (`Content-Encoding: gzip`, `br`, `deflate`,
//! see [`crate::compress::decode`], with its bomb limits; the origin then gets the decoded
//! body), and parsing it as JSON once for everything that reads JSON ([`json`]). Leaves out:
//! what is done with it (validation, transformations, mapping).

use serde_json::Value as Json;

use crate::error::GatewayError;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::session::Session;
use crate::worker::Cx;

/// The held body parsed as JSON, once.
#[derive(Debug, Default)]
pub enum BodyJson {
    /// Not parsed yet (or no body is held).
    #[default]
    Unparsed,
    Parsed(Box<Json>),
    /// The held body is not JSON (or is empty).
    NotJson,
}

/// The body phase (see the module doc). Costs one lookup on routes that hold nothing.
pub async fn hold<S: Session>(
    w: &Cx<'_>,
    sess: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
) -> Result<(), GatewayError> {
    let cfg = &w.g.config;
    let Some(max) = cfg.bodies.routes.get(route).copied().flatten() else {
        return Ok(());
    };
    let body = match &st.held_body {
        // an `aws_iam` route already read it to hash it
        Some(b) => b.clone(),
        None => {
            let policy = cfg
                .routes
                .get(route)
                .map(|r| r.body_policy())
                .unwrap_or_default();
            let b = sess.read_body(w, head, st, &policy, max).await?;
            if b.len() > max {
                return Err(GatewayError::Http(crate::http::HttpError::BodyTooLarge));
            }
            b
        }
    };
    let decoded = match head.header("content-encoding") {
        Some(coding) if !body.is_empty() => {
            let policy = cfg.compression.decode_limits(route);
            let d = crate::compress::decode::request_body(coding, &body, max, &policy)
                .map_err(|r| r.into_error(st))?;
            st.edits_mut().body_replaced = true;
            d
        }
        _ => body,
    };
    st.held_body = Some(decoded);
    Ok(())
}

/// The held body as JSON, parsed on first use (`None`: no body held, empty, or not JSON).
pub fn json(st: &mut ExchangeState) -> Option<&Json> {
    if matches!(st.body_json, BodyJson::Unparsed) {
        st.body_json = match st.held_body.as_deref() {
            Some(b) if !b.is_empty() => match serde_json::from_slice::<Json>(b) {
                Ok(j) => BodyJson::Parsed(Box::new(j)),
                Err(_) => BodyJson::NotJson,
            },
            _ => BodyJson::NotJson,
        };
    }
    match &st.body_json {
        BodyJson::Parsed(j) => Some(j),
        BodyJson::Unparsed | BodyJson::NotJson => None,
    }
}
