use super::*;

fn scope<'a>(params: &'a [&'a str]) -> Scope<'a> {
    Scope {
        params,
        body: true,
        stage: None,
    }
}

#[test]
fn text_and_variables_compile() {
    let v = Value::compile("/v2/orders/$request.path.id", &scope(&["id"])).unwrap();
    assert!(!v.is_static());
    assert!(Value::compile("''", &scope(&[])).unwrap().is_empty());
    let s = Value::compile("US$5", &scope(&[])).unwrap();
    assert_eq!(s.static_text().unwrap(), b"US$5");
    let b = Value::compile("x-${request.body.a.b[0]}-y", &scope(&[])).unwrap();
    assert!(b.reads_body());
    let c = Value::compile("$context.authorizer.claims.sub", &scope(&[])).unwrap();
    assert!(c.reads_context());
}

#[test]
fn unknown_variables_are_errors_naming_them() {
    let e = |t: &str| Value::compile(t, &scope(&["id"])).unwrap_err();
    assert!(e("$request.path.nope").contains("nope"));
    assert!(e("$context.nope").contains("$context.nope"));
    assert!(e("$request.cookie.a").contains("$request.cookie.a"));
    assert!(e("$stageVariables.backend").contains("backend"));
    assert!(e("${request.header.x").contains("unterminated"));
    let no_body = Scope {
        params: &[],
        body: false,
        stage: None,
    };
    assert!(Value::compile("$request.body.a", &no_body).is_err());
}

#[test]
fn query_parameters_by_name() {
    let q = Some(&b"a=1&debug&b=x%20y"[..]);
    assert_eq!(query_param(q, "b"), Some(&b"x%20y"[..]));
    assert_eq!(query_param(q, "debug"), Some(&b""[..]));
    assert_eq!(query_param(q, "c"), None);
}
