//! `throttle_by = "principal"`: accepted on a route's limit (and a plan's limit on a route)
//! only where the route has an `authorizer`; refused with the key and the line elsewhere.

use super::*;

/// The errors of `text` as `(line, key, message)` (empty when accepted).
fn errors(text: &str) -> Vec<(usize, String, String)> {
    match from_str(text) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.line, e.key, e.message))
                .collect()
        }
    }
}

const AUTHORIZER: &str = r#"[[authorizer]]
name = "users"
type = "jwt"
issuer = "https://issuer.example"
jwks_uri = "https://issuer.example/jwks.json"
"#;

#[test]
fn principal_on_a_route_without_an_authorizer_is_refused_with_key_and_line() {
    let text = r#"[[route]]
key = "GET /open"
mock = {}
throttle = { rate = 1.0, burst = 1, throttle_by = "principal" }
"#;
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    let (line, key, msg) = &e[0];
    assert_eq!((*line, key.as_str()), (4, "route[0].throttle.throttle_by"));
    assert!(msg.contains("authorizer"), "{msg}");
}

#[test]
fn principal_on_a_route_with_an_authorizer_is_no_throttle_error() {
    let text = format!(
        "{AUTHORIZER}\n[[route]]\nkey = \"GET /me\"\nmock = {{}}\nauthorizer = \"users\"\nthrottle = {{ rate = 1.0, burst = 1, throttle_by = \"principal\" }}\n"
    );
    // (whatever the authorizer's own compile says, no error is about throttle_by)
    let e = errors(&text);
    assert!(e.iter().all(|(_, k, _)| !k.contains("throttle")), "{e:?}");
}

#[test]
fn principal_in_usage_plans_needs_a_route_with_an_authorizer() {
    let text = format!(
        r#"{AUTHORIZER}
[[route]]
key = "GET /me"
mock = {{}}
authorizer = "users"

[[route]]
key = "GET /open"
mock = {{}}

[[usage_plan]]
name = "p"
throttle = {{ rate = 1.0, burst = 1, throttle_by = "principal" }}
routes = {{ "GET /me" = {{ rate = 1.0, burst = 1, throttle_by = "principal" }}, "GET /open" = {{ rate = 1.0, burst = 1, throttle_by = "principal" }} }}
"#
    );
    let e = errors(&text);
    let throttle: Vec<_> = e
        .iter()
        .filter(|(_, k, _)| k.contains("throttle"))
        .collect();
    assert_eq!(throttle.len(), 2, "{e:?}");
    assert_eq!(throttle[0].0, 18);
    assert_eq!(throttle[0].1, "usage_plan[0].throttle.throttle_by");
    assert_eq!(throttle[1].0, 19);
    assert_eq!(
        throttle[1].1,
        "usage_plan[0].routes.\"GET /open\".throttle_by"
    );
}

#[test]
fn unknown_throttle_by_names_principal_among_the_choices() {
    let text = "[[route]]\nkey = \"GET /x\"\nmock = {}\nthrottle = { rate = 1.0, burst = 1, throttle_by = \"user\" }\n";
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].2.contains("\"principal\""), "{e:?}");
}
