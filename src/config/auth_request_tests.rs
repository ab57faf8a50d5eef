//! What `tollgate check` says of request authorizers: each refusal names the key and its line;
//! what compiles has the documented defaults.

use std::time::Duration;

use crate::config::auth::{IdentitySource, RequestTarget, DEFAULT_AUTHORIZER_TTL_S};
use crate::config::check_tests::errors;
use crate::config::{from_str, AuthorizerKind, PayloadFormat};

const FUNCTION: &str = "[[function]]\nname = \"authz\"\ncommand = [\"true\"]\n\n";
const ROUTE: &str = "[[route]]\nkey = \"GET /x\"\nmock = {}\nauthorizer = \"a\"\n\n";

/// The errors of an authorizer table `body` (after `FUNCTION`: its first line is line 5).
fn authorizer_errors(body: &str) -> Vec<(usize, String, String)> {
    errors(&format!(
        "{FUNCTION}[[authorizer]]\nname = \"a\"\ntype = \"request\"\n{body}\n{ROUTE}"
    ))
}

fn assert_one(e: &[(usize, String, String)], line: usize, key: &str, words: &str) {
    assert!(
        e.iter()
            .any(|(l, k, m)| *l == line && k == key && m.contains(words)),
        "no {line} {key} {words:?} in {e:?}"
    );
}

#[test]
fn a_function_authorizer_compiles_with_defaults() {
    let text = format!(
        "{FUNCTION}[[authorizer]]\nname = \"a\"\ntype = \"request\"\nfunction = \"authz\"\n\
         identity_sources = [\"$request.header.Authorization\", \"$request.querystring.k\", \
         \"$context.identity.sourceIp\"]\n\n{ROUTE}"
    );
    let c = from_str(&text).unwrap_or_else(|e| panic!("{}", e.render("t")));
    let AuthorizerKind::Request(r) = &c.authorizers[0].kind else {
        panic!("{:?}", c.authorizers);
    };
    assert!(matches!(r.target, RequestTarget::Function(0)));
    assert_eq!(r.payload, PayloadFormat::V2);
    assert!(!r.simple_responses);
    assert_eq!(
        r.identity_sources,
        vec![
            IdentitySource::Header("authorization".into()),
            IdentitySource::Query("k".into()),
            IdentitySource::Context("identity.sourceIp".into()),
        ]
    );
    assert_eq!(r.ttl, Duration::from_secs(DEFAULT_AUTHORIZER_TTL_S));
    assert_eq!(r.timeout, Duration::from_millis(10_000));
    assert_eq!(r.cache_entries, 10_000);
    assert_eq!(r.cache_bytes, 16 * 1024 * 1024);
    assert_eq!(c.access.routes[0].auth.authorizer, Some(0));
}

#[test]
fn without_identity_sources_the_default_is_no_cache() {
    let text = format!(
        "{FUNCTION}[[authorizer]]\nname = \"a\"\ntype = \"request\"\nfunction = \"authz\"\n\n{ROUTE}"
    );
    let c = from_str(&text).unwrap_or_else(|e| panic!("{}", e.render("t")));
    let AuthorizerKind::Request(r) = &c.authorizers[0].kind else {
        panic!();
    };
    assert_eq!(r.ttl, Duration::ZERO);
    assert!(r.identity_sources.is_empty());
}

#[test]
fn a_url_authorizer_gets_a_hidden_upstream() {
    let text = format!(
        "[[authorizer]]\nname = \"a\"\ntype = \"request\"\nurl = \"http://127.0.0.1:9200/authorize?x=1\"\n\
         timeout_ms = 250\n\n{ROUTE}"
    );
    let c = from_str(&text).unwrap_or_else(|e| panic!("{}", e.render("t")));
    let AuthorizerKind::Request(r) = &c.authorizers[0].kind else {
        panic!();
    };
    let RequestTarget::Url(t) = &r.target else {
        panic!("{r:?}");
    };
    assert_eq!(t.path, "/authorize?x=1");
    assert_eq!(t.authority, "127.0.0.1:9200");
    let up = &c.upstreams[t.upstream];
    assert_eq!(up.name, "authorizer:a");
    assert_eq!(r.timeout, Duration::from_millis(250));
}

#[test]
fn target_refusals() {
    let e = authorizer_errors("function = \"authz\"\nurl = \"http://127.0.0.1:1/\"");
    assert_one(&e, 9, "authorizer[0].url", "either function or url");
    let e = authorizer_errors("");
    assert_one(&e, 6, "authorizer[0]", "needs function");
    let e = authorizer_errors("function = \"nope\"");
    assert_one(
        &e,
        8,
        "authorizer[0].function",
        "no [[function]] named \"nope\"",
    );
    let e = authorizer_errors("url = \"ftp://x/\"");
    assert!(
        e.iter()
            .any(|(l, k, _)| *l == 8 && k == "authorizer[0].url"),
        "{e:?}"
    );
}

#[test]
fn format_and_response_refusals() {
    let e = authorizer_errors("function = \"authz\"\npayload_format = \"3.0\"");
    assert_one(&e, 9, "authorizer[0].payload_format", "\"2.0\" or \"1.0\"");
    let e = authorizer_errors(
        "function = \"authz\"\npayload_format = \"1.0\"\nsimple_responses = true",
    );
    assert_one(
        &e,
        10,
        "authorizer[0].simple_responses",
        "payload_format \"2.0\"",
    );
}

#[test]
fn identity_source_and_cache_refusals() {
    let e = authorizer_errors("function = \"authz\"\nidentity_sources = [\"Authorization\"]");
    assert_one(
        &e,
        9,
        "authorizer[0].identity_sources[0]",
        "is not an identity source",
    );
    let e = authorizer_errors(
        "function = \"authz\"\nidentity_sources = [\"$request.header.a\", \"$request.header.A\"]",
    );
    assert_one(&e, 9, "authorizer[0].identity_sources[1]", "listed twice");
    let e = authorizer_errors("function = \"authz\"\nidentity_sources = [\"$context.nope\"]");
    assert_one(
        &e,
        9,
        "authorizer[0].identity_sources[0]",
        "not known at the authorizer phase",
    );
    let e = authorizer_errors("function = \"authz\"\nidentity_sources = [\"$stageVariables.v\"]");
    assert_one(
        &e,
        9,
        "authorizer[0].identity_sources[0]",
        "no stage variables",
    );
    // a cache needs identity sources to key it
    let e = authorizer_errors("function = \"authz\"\nttl_s = 60");
    assert_one(
        &e,
        9,
        "authorizer[0].ttl_s",
        "needs at least one identity source",
    );
    let e = authorizer_errors("function = \"authz\"\nidentity_sources = []\nttl_s = 60");
    assert_one(
        &e,
        10,
        "authorizer[0].ttl_s",
        "needs at least one identity source",
    );
}

#[test]
fn range_refusals() {
    let e = authorizer_errors(
        "function = \"authz\"\nidentity_sources = [\"$request.header.a\"]\nttl_s = 3601\n\
         timeout_ms = 0\ncache_entries = 0\ncache_bytes = 1",
    );
    assert_one(&e, 13, "authorizer[0].cache_bytes", "65536..=1073741824");
    assert_one(&e, 10, "authorizer[0].ttl_s", "0..=3600");
    assert_one(&e, 11, "authorizer[0].timeout_ms", "1..=29000");
    assert_one(&e, 12, "authorizer[0].cache_entries", "1..=1000000");
}

#[test]
fn keys_of_other_types_are_refused() {
    let e = authorizer_errors(
        "function = \"authz\"\nissuer = \"https://i/\"\njwks_uri = \"https://i/k\"\nregion = \"eu-west-1\"\n\
         unverified_body_budget_bytes = 5",
    );
    assert_one(
        &e,
        12,
        "authorizer[0].unverified_body_budget_bytes",
        "has no unverified_body_budget_bytes",
    );
    assert_one(
        &e,
        9,
        "authorizer[0].issuer",
        "a request authorizer has no issuer",
    );
    assert_one(&e, 10, "authorizer[0].jwks_uri", "has no jwks_uri");
    assert_one(&e, 11, "authorizer[0].region", "has no region");
}

#[test]
fn user_upstreams_may_not_take_the_hidden_prefix() {
    let e = errors(
        "[[upstream]]\nname = \"authorizer:x\"\ntargets = [\"127.0.0.1:1\"]\n\n\
         [[route]]\nkey = \"GET /x\"\nmock = {}\n",
    );
    assert_one(
        &e,
        2,
        "upstream[0].name",
        "reserved for request authorizers",
    );
}
