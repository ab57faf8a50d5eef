//! A request authorizer's identity sources read from a request: each header's fields joined
//! with `,` (RFC 9110 §5.3), a query parameter's values joined with `,`, a `$context`
//! variable; the first missing or empty one named as written.
//!
//! Owns only that reading (no I/O, no cache). Leaves out: what the values are for (the cache
//! key and the payload's `identitySource`, see `super`).

use crate::config::auth::{IdentitySource, RequestAuthorizer};
use crate::config::Config;
use crate::exchange::ExchangeState;
use crate::http::RequestHead;
use crate::session::Session;

/// The identity-source values in order, or the source that is missing or empty.
pub(super) fn identity_values<S: Session>(
    cfg: &Config,
    config: &RequestAuthorizer,
    sess: &S,
    head: &RequestHead,
    st: &ExchangeState,
    route: usize,
) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(config.identity_sources.len());
    let mut query = None;
    for src in &config.identity_sources {
        let v = match src {
            IdentitySource::Header(name) => {
                // RFC 9110 §5.3: repeated fields are one list, joined with ","
                let mut joined = String::new();
                for h in head.headers.iter() {
                    if head.slice(h.name).eq_ignore_ascii_case(name.as_bytes()) {
                        if !joined.is_empty() {
                            joined.push(',');
                        }
                        joined.push_str(&String::from_utf8_lossy(head.slice(h.value)));
                    }
                }
                joined
            }
            IdentitySource::Query(name) => {
                let q = query.get_or_insert_with(|| {
                    head.query_bytes()
                        .map(crate::lambda::parse_query)
                        .unwrap_or_default()
                });
                q.iter()
                    .find(|(n, _)| **n == **name)
                    .map(|(_, v)| v.join(","))
                    .unwrap_or_default()
            }
            IdentitySource::Context(name) => context_var(cfg, sess, head, st, route, name),
            // no stages yet: no stage variables
            IdentitySource::StageVariable(_) => String::new(),
        };
        if v.is_empty() {
            return Err(source_text(src));
        }
        out.push(v);
    }
    Ok(out)
}

/// `$context.NAME` for an identity source (empty when unknown).
fn context_var<S: Session>(
    cfg: &Config,
    sess: &S,
    head: &RequestHead,
    st: &ExchangeState,
    route: usize,
    name: &str,
) -> String {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match name {
        "identity.sourceIp" => {
            let ip = st.client_ip.unwrap_or(sess.facts().peer().ip());
            lossy(crate::facts::PeerIp::of(ip).as_bytes())
        }
        "identity.userAgent" => head.header("user-agent").map(lossy).unwrap_or_default(),
        "requestId" => lossy(st.request_id.bytes(head)),
        "routeKey" => cfg
            .routes
            .get(route)
            .map(|r| r.key.clone())
            .unwrap_or_default(),
        "httpMethod" => lossy(head.method_bytes()),
        "path" => lossy(head.path_bytes()),
        "domainName" => head.host_bytes().map(lossy).unwrap_or_default(),
        "stage" => crate::lambda::DEFAULT_STAGE.to_string(),
        "apiId" => crate::lambda::DEFAULT_API_ID.to_string(),
        _ => String::new(),
    }
}

/// An identity source as written.
fn source_text(src: &IdentitySource) -> String {
    match src {
        IdentitySource::Header(n) => format!("$request.header.{n}"),
        IdentitySource::Query(n) => format!("$request.querystring.{n}"),
        IdentitySource::Context(n) => format!("$context.{n}"),
        IdentitySource::StageVariable(n) => format!("$stageVariables.{n}"),
    }
}
