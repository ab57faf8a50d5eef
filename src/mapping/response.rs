//! A route's `response_parameters` applied to one response: the operations for its status
//! (`overwrite:statuscode`, header operations), rendered into a status and
//! [`ResponseEdits`] the serialisers apply in their one pass over the fields.
//!
//! Owns: choosing the rule (the status's exact code, else its class), the status overwrite
//! (never across the line between statuses with and without content, RFC 9110 §6.4.1: the
//! framing already chosen for the body would lie), and the header edits: `remove` leaves the
//! producer's fields of the name out, `overwrite` leaves them out and adds one, `append` adds
//! one after them; a static value is borrowed from the config, a value with variables
//! rendered (the only allocation); one that renders empty adds nothing. Leaves out: gateway
//! errors (their `[[gateway_response]]` customises them, see [`crate::gateway_response`]) and
//! writing the fields (the sessions' serialisers).

use std::borrow::Cow;

use super::value::Vars;
use super::{Op, ResponseEdits, ResponseRule, RouteMapping, Target};

/// The operations for `status`: the new status, if overwritten, and the header edits.
pub fn apply<'a>(
    m: &'a RouteMapping,
    status: u16,
    vars: &Vars<'_>,
) -> (Option<u16>, Option<ResponseEdits<'a>>) {
    let Some(rule) = m.rule_for(status) else {
        return (None, None);
    };
    (new_status(rule, status), edits(rule, Some(vars)))
}

/// The rule's status for a response of `status`, if it changes it.
fn new_status(rule: &ResponseRule, status: u16) -> Option<u16> {
    let s = rule.status?;
    let same_kind = crate::http::status_has_content(s) == crate::http::status_has_content(status);
    (s != status && same_kind).then_some(s)
}

/// The rule's header edits (`vars`: `None` when every value is static).
fn edits<'a>(rule: &'a ResponseRule, vars: Option<&Vars<'_>>) -> Option<ResponseEdits<'a>> {
    if rule.headers.is_empty() {
        return None;
    }
    let mut e = ResponseEdits {
        remove: Vec::with_capacity(rule.headers.len()),
        add: Vec::with_capacity(rule.headers.len()),
    };
    for o in &rule.headers {
        let Target::Header(name) = &o.target else {
            continue;
        };
        if o.op != Op::Append {
            e.remove.push(&**name);
        }
        if o.op == Op::Remove {
            continue;
        }
        let value: Cow<'a, [u8]> = match (&o.fixed, vars) {
            (Some(f), _) => Cow::Borrowed(&f[..]),
            (None, Some(v)) => {
                let mut out = Vec::with_capacity(super::request::VALUE_CAPACITY);
                o.value.render_field(v, &mut out);
                Cow::Owned(out)
            }
            (None, None) => continue,
        };
        if !value.is_empty() {
            e.add.push((&**name, value));
        }
    }
    Some(e)
}

/// The response filter's part (see `crate::proxy::lifecycle::response_filter`): when `r`'s
/// route maps responses of its status, overwrite the status and set the header edits the
/// serialisers apply. Gateway errors are not mapped (see [`crate::gateway_response`]).
pub fn filter<'a>(
    w: &crate::worker::Cx<'a>,
    facts: &crate::facts::ConnFacts,
    head: &'a crate::http::RequestHead,
    st: &crate::exchange::ExchangeState,
    r: &mut crate::response::Response<'a>,
) {
    if st.error.is_some() || matches!(r.source, crate::response::Source::Error(_)) {
        return;
    }
    let Some(route) = st.route else {
        return;
    };
    let g: &'a crate::worker::Generation = w.g;
    let Some(m) = g.config.mapping.routes.get(route) else {
        return;
    };
    let Some(rule) = m.rule_for(r.status) else {
        return;
    };
    if let Some(s) = new_status(rule, r.status) {
        r.status = s;
    }
    let dynamic = rule.headers.iter().any(|o| o.fixed.is_none());
    let e = if dynamic {
        let params = match rule.headers.iter().any(|o| o.value.reads_params()) {
            true => route_params(w, head, st.served, route),
            false => Vec::new(),
        };
        let params: Vec<&[u8]> = params.iter().map(|p| &p[..]).collect();
        let total = st.started.elapsed();
        crate::exchange::context::with_entry(w, facts, head, st, Some(route), total, |entry| {
            let vars = Vars {
                head,
                params: &params,
                entry,
                body: None,
            };
            edits(rule, Some(&vars))
        })
    } else {
        edits(rule, None)
    };
    r.added.edits = e.map(Box::new);
}

/// The matched route's path parameters, found again (the match is gone by the time a
/// response is filtered); only for a value that reads one.
fn route_params(
    w: &crate::worker::Cx<'_>,
    head: &crate::http::RequestHead,
    served: crate::exchange::served::Served,
    route: usize,
) -> Vec<Vec<u8>> {
    match crate::exchange::served::lookup(&w.g.config, head, served) {
        Some(m) if m.route == route => m.params.iter().map(|p| p.to_vec()).collect(),
        _ => Vec::new(),
    }
}
