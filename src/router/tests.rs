use super::*;

fn specs<'a>(keys: &[(&'a str, Option<&'a str>)]) -> Vec<RouteSpec<'a>> {
    keys.iter()
        .map(|&(key, host)| RouteSpec { key, host })
        .collect()
}

fn router(keys: &[&str]) -> Router {
    let specs: Vec<_> = keys
        .iter()
        .map(|&key| RouteSpec { key, host: None })
        .collect();
    Router::build(&specs).unwrap_or_else(|e| panic!("build failed: {e:?}"))
}

fn hosted(keys: &[(&str, Option<&str>)]) -> Router {
    Router::build(&specs(keys)).unwrap_or_else(|e| panic!("build failed: {e:?}"))
}

/// Route index and params as strings, for compact assertions.
fn hit(r: &Router, method: &str, host: Option<&str>, path: &str) -> Option<(usize, Vec<String>)> {
    r.lookup(method.as_bytes(), host.map(str::as_bytes), path.as_bytes())
        .map(|m| {
            let params = m
                .params
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            (m.route, params)
        })
}

fn route_of(r: &Router, method: &str, path: &str) -> Option<usize> {
    hit(r, method, None, path).map(|(i, _)| i)
}

fn errors(keys: &[(&str, Option<&str>)]) -> Vec<RouteError> {
    match Router::build(&specs(keys)) {
        Ok(_) => panic!("expected errors for {keys:?}"),
        Err(e) => e,
    }
}

fn key_error(key: &str) -> String {
    let e = errors(&[(key, None)]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].index, 0);
    assert_eq!(e[0].other, None);
    e[0].message.clone()
}

#[test]
fn literal_beats_param_beats_greedy() {
    let r = router(&["GET /pets/{proxy+}", "GET /pets/{id}", "GET /pets/dog"]);
    assert_eq!(hit(&r, "GET", None, "/pets/dog"), Some((2, vec![])));
    assert_eq!(
        hit(&r, "GET", None, "/pets/cat"),
        Some((1, vec!["cat".into()]))
    );
    assert_eq!(
        hit(&r, "GET", None, "/pets/cat/x"),
        Some((0, vec!["cat/x".into()]))
    );
    assert_eq!(route_of(&r, "GET", "/pets"), None);
}

#[test]
fn leftmost_segment_decides_first() {
    // literal in segment 1 wins even though the other route is literal later
    let r = router(&["GET /{a}/b", "GET /a/{b}"]);
    assert_eq!(hit(&r, "GET", None, "/a/b"), Some((1, vec!["b".into()])));
    assert_eq!(hit(&r, "GET", None, "/x/b"), Some((0, vec!["x".into()])));
    // path before method: ANY with a better path beats GET with a worse one
    let r = router(&["GET /pets/{id}", "ANY /pets/dog"]);
    assert_eq!(route_of(&r, "GET", "/pets/dog"), Some(1));
}

#[test]
fn backtracks_to_param_branch() {
    let r = router(&["GET /pets/{id}", "POST /pets/dog"]);
    assert_eq!(
        hit(&r, "GET", None, "/pets/dog"),
        Some((0, vec!["dog".into()]))
    );
    assert_eq!(route_of(&r, "POST", "/pets/dog"), Some(1));
    assert_eq!(route_of(&r, "POST", "/pets/cat"), None);
}

#[test]
fn backtracks_deeply_and_restores_params() {
    let r = router(&[
        "GET /a/{x}/c/{y}/e",
        "POST /a/b/c/d/e",
        "GET /a/b/{z}/d/f",
        "GET /{p+}",
    ]);
    assert_eq!(
        hit(&r, "GET", None, "/a/b/c/d/e"),
        Some((0, vec!["b".into(), "d".into()]))
    );
    assert_eq!(
        hit(&r, "GET", None, "/a/b/c/d/g"),
        Some((3, vec!["a/b/c/d/g".into()]))
    );
    assert_eq!(
        hit(&r, "GET", None, "/a/b/q/d/f"),
        Some((2, vec!["q".into()]))
    );
}

#[test]
fn greedy_matches_one_or_more_segments() {
    let r = router(&["GET /{proxy+}", "GET /files/{path+}"]);
    assert_eq!(route_of(&r, "GET", "/"), None);
    assert_eq!(hit(&r, "GET", None, "/a"), Some((0, vec!["a".into()])));
    assert_eq!(
        hit(&r, "GET", None, "/a/b/"),
        Some((0, vec!["a/b/".into()]))
    );
    assert_eq!(
        hit(&r, "GET", None, "/files"),
        Some((0, vec!["files".into()]))
    );
    assert_eq!(
        hit(&r, "GET", None, "/files/"),
        Some((0, vec!["files/".into()]))
    );
    assert_eq!(
        hit(&r, "GET", None, "/files/x"),
        Some((1, vec!["x".into()]))
    );
    assert_eq!(
        hit(&r, "GET", None, "/files//"),
        Some((1, vec!["/".into()]))
    );
    assert_eq!(
        hit(&r, "GET", None, "/files/a//b"),
        Some((1, vec!["a//b".into()]))
    );
    assert_eq!(r.param_names(1), &["path".into()]);
}

#[test]
fn trailing_slash_and_root_are_significant() {
    let r = router(&["GET /pets", "GET /pets/", "GET /", "GET /pets/{id}"]);
    assert_eq!(route_of(&r, "GET", "/pets"), Some(0));
    assert_eq!(route_of(&r, "GET", "/pets/"), Some(1));
    assert_eq!(route_of(&r, "GET", "/"), Some(2));
    assert_eq!(route_of(&r, "GET", "/pets/x"), Some(3));
    assert_eq!(route_of(&r, "GET", "/pets/x/"), None);
    assert_eq!(route_of(&r, "GET", ""), None);
    let r = router(&["GET /pets"]);
    assert_eq!(route_of(&r, "GET", "/pets/"), None);
    assert_eq!(route_of(&r, "GET", "/"), None);
}

#[test]
fn empty_segments_match_only_empty_literals() {
    let r = router(&["GET /a//b", "GET /a/{x}/b", "GET //"]);
    assert_eq!(route_of(&r, "GET", "/a//b"), Some(0));
    assert_eq!(route_of(&r, "GET", "/a/q/b"), Some(1));
    assert_eq!(route_of(&r, "GET", "//"), Some(2));
    let r = router(&["GET /a/{x}/b", "GET /{x}"]);
    assert_eq!(route_of(&r, "GET", "/a//b"), None);
    assert_eq!(route_of(&r, "GET", "/"), None);
    assert_eq!(route_of(&r, "GET", "//"), None);
}

#[test]
fn specific_method_beats_any() {
    let r = router(&["ANY /x", "GET /x", "POST /x"]);
    assert_eq!(route_of(&r, "GET", "/x"), Some(1));
    assert_eq!(route_of(&r, "POST", "/x"), Some(2));
    assert_eq!(route_of(&r, "DELETE", "/x"), Some(0));
    assert_eq!(route_of(&r, "PURGE", "/x"), Some(0));
    assert_eq!(route_of(&r, "", "/x"), Some(0));
}

#[test]
fn head_does_not_fall_back_to_get_and_methods_are_case_sensitive() {
    let r = router(&["GET /x", "HEAD /y", "ANY /z", "PURGE /p"]);
    assert_eq!(route_of(&r, "HEAD", "/x"), None);
    assert_eq!(route_of(&r, "HEAD", "/y"), Some(1));
    assert_eq!(route_of(&r, "HEAD", "/z"), Some(2));
    assert_eq!(route_of(&r, "get", "/x"), None);
    assert_eq!(route_of(&r, "PURGE", "/p"), Some(3));
    let r = router(&["GET /x", "$default"]);
    assert_eq!(route_of(&r, "HEAD", "/x"), Some(1));
}

#[test]
fn a_standard_method_in_lower_case_is_refused() {
    // "get /x" was accepted and then matched no client (methods are case-sensitive)
    assert_eq!(
        key_error("get /x"),
        "route \"get /x\": method \"get\" never matches GET: methods are case-sensitive; \
         write \"GET\""
    );
    assert!(key_error("Any /x").contains("write \"ANY\""));
    assert!(key_error("Patch /x").contains("write \"PATCH\""));
    // custom methods keep their case
    let r = router(&["purge /p", "PURGE /p"]);
    assert_eq!(route_of(&r, "purge", "/p"), Some(0));
    assert_eq!(route_of(&r, "PURGE", "/p"), Some(1));
}

#[test]
fn default_is_last_and_matches_anything() {
    let r = router(&["$default", "GET /{proxy+}", "ANY /"]);
    assert_eq!(route_of(&r, "GET", "/a/b"), Some(1));
    assert_eq!(route_of(&r, "POST", "/a/b"), Some(0));
    assert_eq!(route_of(&r, "POST", "/"), Some(2));
    assert_eq!(hit(&r, "OPTIONS", None, "*"), Some((0, vec![])));
    assert_eq!(route_of(&r, "GET", ""), Some(0));
    assert!(r.param_names(0).is_empty());
    let r = router(&["GET /a"]);
    assert_eq!(route_of(&r, "OPTIONS", "*"), None);
}

#[test]
fn host_groups_in_order() {
    let r = hosted(&[
        ("GET /a", Some("api.example.com")),   // 0
        ("GET /a", Some("*.example.com")),     // 1
        ("GET /b", Some("*.example.com")),     // 2
        ("GET /a", None),                      // 3
        ("GET /c", None),                      // 4
        ("GET /b", Some("*.eu.example.com")),  // 5
        ("GET /{x}", Some("API.Example.COM")), // 6
    ]);
    let h = |host: &str, path: &str| route_of_host(&r, host, path);
    assert_eq!(h("api.example.com", "/a"), Some(0));
    assert_eq!(h("API.EXAMPLE.com:8443", "/a"), Some(0));
    // exact group has /{x}: it wins over wildcard /b and host-less /c
    assert_eq!(h("api.example.com", "/b"), Some(6));
    assert_eq!(h("api.example.com", "/c"), Some(6));
    // falls through the exact group when nothing there matches
    assert_eq!(h("api.example.com", "/c/d"), None);
    assert_eq!(h("web.example.com", "/a"), Some(1));
    assert_eq!(h("web.example.com", "/c"), Some(4));
    assert_eq!(h("a.b.example.com", "/b"), Some(2));
    // longest wildcard suffix first, then shorter
    assert_eq!(h("x.eu.example.com", "/b"), Some(5));
    assert_eq!(h("x.eu.example.com", "/a"), Some(1));
    assert_eq!(h("eu.example.com", "/b"), Some(2));
    // the wildcard does not match the apex or look-alikes
    assert_eq!(h("example.com", "/b"), None);
    assert_eq!(h("example.com", "/a"), Some(3));
    assert_eq!(h("badexample.com", "/b"), None);
    assert_eq!(h(".example.com", "/b"), None);
    assert_eq!(route_of(&r, "GET", "/a"), Some(3));
    assert_eq!(route_of(&r, "GET", "/b"), None);
}

fn route_of_host(r: &Router, host: &str, path: &str) -> Option<usize> {
    hit(r, "GET", Some(host), path).map(|(i, _)| i)
}

#[test]
fn host_default_beats_hostless_routes_for_that_host() {
    let r = hosted(&[
        ("$default", Some("api.example.com")),
        ("GET /a", None),
        ("$default", None),
        ("$default", Some("*.example.com")),
    ]);
    assert_eq!(route_of_host(&r, "api.example.com", "/a"), Some(0));
    assert_eq!(route_of_host(&r, "www.example.com", "/a"), Some(3));
    assert_eq!(route_of_host(&r, "other.org", "/a"), Some(1));
    assert_eq!(route_of_host(&r, "other.org", "/b"), Some(2));
    assert_eq!(route_of(&r, "GET", "/b"), Some(2));
}

#[test]
fn long_and_odd_request_hosts() {
    let r = hosted(&[
        ("GET /a", Some("*.example.com")),
        ("GET /a", None),
        ("GET /v6", Some("[::1]")),
    ]);
    let long = format!("{}.example.com", "a".repeat(250));
    assert_eq!(route_of_host(&r, &long, "/a"), Some(1));
    let ok = format!("{}.example.com", "a".repeat(243));
    assert_eq!(ok.len(), 255);
    assert_eq!(route_of_host(&r, &ok, "/a"), Some(0));
    assert_eq!(route_of_host(&r, "[::1]:8080", "/v6"), Some(2));
    assert_eq!(route_of_host(&r, "[::1", "/v6"), None);
    assert_eq!(route_of_host(&r, "", "/a"), Some(1));
    assert_eq!(route_of_host(&r, ":", "/a"), Some(1));
    let r2 = router(&["GET /a"]);
    assert_eq!(route_of_host(&r2, "anything", "/a"), Some(0));
}

#[test]
fn many_params_and_deep_paths() {
    let key = format!(
        "GET /{}/{{p+}}",
        (0..20)
            .map(|i| format!("{{p{i}}}"))
            .collect::<Vec<_>>()
            .join("/")
    );
    let r = router(&[
        &key,
        "GET /{a}/{b}/{c}/{d}/{e}/x",
        "GET /{a}/{b}/{c}/{d}/{e}/y",
    ]);
    let path = format!(
        "/{}/rest/of/it",
        (0..20).map(|i| i.to_string()).collect::<Vec<_>>().join("/")
    );
    let (route, params) = hit(&r, "GET", None, &path).unwrap();
    assert_eq!(route, 0);
    assert_eq!(params.len(), 21);
    assert_eq!(params[20], "rest/of/it");
    assert_eq!(r.param_names(0).len(), 21);
    assert_eq!(&*r.param_names(0)[20], "p");
    assert_eq!(route_of(&r, "GET", "/1/2/3/4/5/y"), Some(2));
    // a very long request path against a shallow trie
    let long = "/a".repeat(100_000);
    assert_eq!(route_of(&r, "GET", &long), Some(0));
    assert_eq!(r.param_names(99), &[] as &[Box<str>]);
}

#[test]
fn wide_nodes_use_the_hashed_edge_index() {
    let mut keys: Vec<String> = (0..200).map(|i| format!("GET /s{i}/x")).collect();
    keys.extend((0..20).map(|i| format!("GET /s7/w{i}")));
    keys.push("GET /{p}/y".into()); // 220
    keys.push("GET /s5/{q}".into()); // 221
    keys.push("POST /s9/x".into()); // 222
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let r = router(&refs);
    for i in 0..200 {
        assert_eq!(route_of(&r, "GET", &format!("/s{i}/x")), Some(i));
    }
    for i in 0..20 {
        assert_eq!(route_of(&r, "GET", &format!("/s7/w{i}")), Some(200 + i));
    }
    assert_eq!(route_of(&r, "GET", "/s7/w20"), None);
    assert_eq!(route_of(&r, "GET", "/s200/x"), None);
    assert_eq!(route_of(&r, "GET", "/s"), None);
    assert_eq!(
        hit(&r, "GET", None, "/s3/y"),
        Some((220, vec!["s3".into()]))
    );
    assert_eq!(hit(&r, "GET", None, "/s5/z"), Some((221, vec!["z".into()])));
    assert_eq!(route_of(&r, "POST", "/s9/x"), Some(222));
    assert_eq!(route_of(&r, "PUT", "/s9/x"), None);
}

#[test]
fn conflicts_name_both_routes() {
    let e = errors(&[("GET /pets/{id}", None), ("GET /pets/{petId}", None)]);
    assert_eq!(
        e,
        vec![RouteError {
            index: 1,
            other: Some(0),
            message: "route \"GET /pets/{petId}\" conflicts with route \"GET /pets/{id}\" (same method and path shape)".into(),
        }]
    );
    assert_eq!(e[0].to_string(), e[0].message);
    let e = errors(&[
        ("ANY /{proxy+}", None),
        ("GET /x", None),
        ("ANY /{rest+}", None),
    ]);
    assert_eq!((e[0].index, e[0].other), (2, Some(0)));
    let e = errors(&[("$default", Some("a.com")), ("$default", Some("A.COM"))]);
    assert_eq!((e[0].index, e[0].other), (1, Some(0)));
    assert!(e[0].message.contains("$default"), "{}", e[0].message);
    assert!(e[0].message.contains("\"A.COM\""), "{}", e[0].message);
    let e = errors(&[("GET /a", Some("*.x.com")), ("GET /a", Some("*.X.com"))]);
    assert_eq!((e[0].index, e[0].other), (1, Some(0)));
    // three in a class: both later ones point at the first
    let e = errors(&[("GET /a", None), ("GET /a", None), ("GET /a", None)]);
    assert_eq!(
        e.iter().map(|e| (e.index, e.other)).collect::<Vec<_>>(),
        vec![(1, Some(0)), (2, Some(0))]
    );
}

#[test]
fn non_conflicts() {
    hosted(&[
        ("GET /x", None),
        ("ANY /x", None),
        ("GET /x", Some("a.com")),
        ("GET /x", Some("*.a.com")),
        ("GET /x/", None),
        ("GET /{x}", None),
        ("GET /{x+}", None),
        ("POST /{x}", None),
        ("$default", None),
        ("$default", Some("a.com")),
        ("$default", Some("*.a.com")),
        ("purge /x", None),
        ("PURGE /x", None),
    ]);
}

#[test]
fn malformed_keys_are_explained() {
    let cases: &[(&str, &str)] = &[
        ("", "expected \"METHOD /path\""),
        ("GET", "expected \"METHOD /path\""),
        ("$default ", "must start with '/'"),
        ("/pets", "expected \"METHOD /path\""),
        (" /pets", "missing method"),
        ("GE(T /x", "not a valid HTTP token"),
        ("GET pets", "must start with '/'"),
        ("GET  /pets", "must start with '/'"),
        ("GET /a b", "invalid character ' '"),
        ("GET /a?b", "invalid character '?'"),
        ("GET /a#", "invalid character '#'"),
        ("GET /a\t", "invalid character '\\t'"),
        ("GET /a{b}", "must span a whole segment"),
        ("GET /{a}.json", "must span a whole segment"),
        ("GET /{a", "must span a whole segment"),
        ("GET /a}", "must span a whole segment"),
        ("GET /{}", "empty parameter name"),
        ("GET /{+}", "empty parameter name"),
        ("GET /{a-b}", "invalid parameter name"),
        ("GET /{a{b}}", "invalid parameter name"),
        ("GET /{a+b}", "invalid parameter name"),
        ("GET /{a+}/b", "must be the last segment"),
        ("GET /{a}/{a}", "duplicate parameter name \"a\""),
        ("GET /{a}/{a+}", "duplicate parameter name \"a\""),
    ];
    for (key, want) in cases {
        let msg = key_error(key);
        assert!(msg.contains(want), "{key:?}: {msg}");
        assert!(msg.starts_with(&format!("route {key:?}")), "{key:?}: {msg}");
    }
}

#[test]
fn malformed_hosts_are_explained() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("*.", "nothing after"),
        ("*example.com", "'*'"),
        ("a.*.com", "'*'"),
        ("*.*.com", "'*'"),
        ("a.com:80", "port"),
        ("a..com", "empty label"),
        ("a com", "invalid character"),
        ("[zz]", "IPv6"),
    ];
    for (host, want) in cases {
        let e = errors(&[("GET /", Some(host))]);
        assert!(e[0].message.contains(want), "{host:?}: {}", e[0].message);
        assert!(
            e[0].message.contains("(host "),
            "{host:?}: {}",
            e[0].message
        );
    }
    let long = "a".repeat(256);
    assert!(errors(&[("GET /", Some(&long))])[0].message.contains("255"));
}

#[test]
fn reports_all_errors_sorted() {
    let e = errors(&[
        ("GET /a", None),
        ("BAD KEY", None),
        ("GET /a", None),
        ("$default", None),
        ("$default", None),
        ("GET /{x+}/y", None),
    ]);
    let got: Vec<_> = e.iter().map(|e| (e.index, e.other)).collect();
    assert_eq!(got, vec![(1, None), (2, Some(0)), (4, Some(3)), (5, None)]);
}

#[test]
fn empty_router_matches_nothing() {
    let r = router(&[]);
    assert_eq!(hit(&r, "GET", Some("a.com"), "/"), None);
    assert_eq!(r.route_count(), 0);
    assert!(format!("{r:?}").contains("Router"));
}

#[test]
fn router_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Router>();
    check::<PathTemplate>();
}

fn render(t: &PathTemplate, params: &[&str]) -> String {
    let params: Vec<&[u8]> = params.iter().map(|p| p.as_bytes()).collect();
    let mut out = b"prefix:".to_vec();
    t.render(&params, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn templates_render_params_verbatim() {
    let r = router(&["ANY /pets/{id}/{proxy+}"]);
    let names = r.param_names(0);
    assert_eq!(names, &["id".into(), "proxy".into()]);
    let t = PathTemplate::parse("/v1/{proxy}/pets/{id}.json", names).unwrap();
    assert_eq!(t.as_str(), "/v1/{proxy}/pets/{id}.json");
    let m = r.lookup(b"GET", None, b"/pets/7/a%20b//c").unwrap();
    let mut out = Vec::new();
    t.render(&m.params, &mut out);
    assert_eq!(out, b"/v1/a%20b//c/pets/7.json");
    let t = PathTemplate::parse("/{id}{id}", names).unwrap();
    assert_eq!(render(&t, &["x", "y"]), "prefix:/xx");
    let t = PathTemplate::parse("/static", &[]).unwrap();
    assert_eq!(render(&t, &[]), "prefix:/static");
    let t = PathTemplate::parse("/", &[]).unwrap();
    assert_eq!(render(&t, &[]), "prefix:/");
    // missing values render as empty rather than panicking
    let t = PathTemplate::parse("/a/{proxy}/b", names).unwrap();
    assert_eq!(render(&t, &["only-id"]), "prefix:/a//b");
}

#[test]
fn template_errors() {
    let names: Vec<Box<str>> = vec!["id".into(), "proxy".into()];
    let cases: &[(&str, &str)] = &[
        (
            "/v1/{petId}",
            "unknown parameter \"petId\" (route parameters: [id, proxy])",
        ),
        ("v1/{id}", "must start with '/'"),
        ("", "must start with '/'"),
        ("/{proxy+}", "as {proxy}"),
        ("/{id", "unclosed"),
        ("/id}", "invalid character '}'"),
        ("/{}", "invalid parameter reference"),
        ("/{a b}", "invalid parameter reference"),
        ("/a?x=1", "invalid character '?'"),
        ("/a b", "invalid character ' '"),
    ];
    for (t, want) in cases {
        let e = PathTemplate::parse(t, &names).unwrap_err();
        assert!(e.contains(want), "{t:?}: {e}");
    }
    let e = PathTemplate::parse("/{id}", &[]).unwrap_err();
    assert!(e.contains("unknown parameter \"id\""), "{e}");
}

mod prop {
    use super::super::*;
    use proptest::prelude::*;

    const LITS: &[&str] = &["a", "b", "pets", ""];
    const ROUTE_HOSTS: &[Option<&str>] = &[
        None,
        None,
        Some("a.com"),
        Some("A.com"),
        Some("*.a.com"),
        Some("*.x.a.com"),
        Some("b.com"),
    ];
    const REQ_HOSTS: &[Option<&str>] = &[
        None,
        Some("a.com"),
        Some("A.COM:8080"),
        Some("x.a.com"),
        Some("y.x.a.com"),
        Some("x.A.com"),
        Some("b.com"),
        Some("c.com"),
        Some(""),
    ];
    const METHODS: &[&str] = &["GET", "POST", "ANY"];
    const REQ_METHODS: &[&str] = &["GET", "POST", "HEAD", "ANY", "get"];

    #[derive(Debug, Clone, PartialEq)]
    enum TSeg {
        Lit(&'static str),
        Param(u8),
        Greedy(u8),
    }

    #[derive(Debug, Clone)]
    struct TRoute {
        /// None = $default
        method: Option<&'static str>,
        segs: Vec<TSeg>,
        host: Option<&'static str>,
    }

    impl TRoute {
        fn key(&self) -> String {
            let Some(m) = self.method else {
                return "$default".into();
            };
            let segs: Vec<String> = self
                .segs
                .iter()
                .enumerate()
                .map(|(i, s)| match s {
                    TSeg::Lit(l) => l.to_string(),
                    TSeg::Param(n) => format!("{{p{i}_{n}}}"),
                    TSeg::Greedy(n) => format!("{{g{n}+}}"),
                })
                .collect();
            format!("{m} /{}", segs.join("/"))
        }

        /// (host class, default?, method, shape without names)
        fn class(&self) -> (Option<String>, Option<&'static str>, Vec<u8>) {
            if self.method.is_none() {
                return (self.host.map(str::to_ascii_lowercase), None, vec![]);
            }
            let shape = self
                .segs
                .iter()
                .flat_map(|s| match s {
                    TSeg::Lit(l) => [b"L".as_slice(), l.as_bytes(), b"/"].concat(),
                    TSeg::Param(_) => b"P/".to_vec(),
                    TSeg::Greedy(_) => b"G/".to_vec(),
                })
                .collect();
            (self.host.map(str::to_ascii_lowercase), self.method, shape)
        }
    }

    fn seg() -> impl Strategy<Value = TSeg> {
        prop_oneof![
            3 => prop::sample::select(LITS).prop_map(TSeg::Lit),
            2 => (0u8..2).prop_map(TSeg::Param),
        ]
    }

    fn troute() -> impl Strategy<Value = TRoute> {
        (
            prop::collection::vec(seg(), 1..4),
            prop::option::weighted(0.25, 0u8..2),
            prop::option::weighted(0.93, prop::sample::select(METHODS)),
            prop::sample::select(ROUTE_HOSTS),
        )
            .prop_map(|(mut segs, greedy, method, host)| {
                if let Some(g) = greedy {
                    *segs.last_mut().unwrap() = TSeg::Greedy(g);
                }
                TRoute { method, segs, host }
            })
    }

    fn req_path() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => prop::collection::vec(prop::sample::select(&["a", "b", "pets", "", "zz"][..]), 1..5)
                .prop_map(|s| format!("/{}", s.join("/")).into_bytes()),
            1 => prop::collection::vec(prop::sample::select(&b"/ab{}+*"[..]), 0..8),
        ]
    }

    fn request() -> impl Strategy<Value = (&'static str, Option<&'static str>, Vec<u8>)> {
        (
            prop::sample::select(REQ_METHODS),
            prop::sample::select(REQ_HOSTS),
            req_path(),
        )
    }

    /// Params if `route` matches the request, by direct definition.
    fn naive_params<'p>(r: &TRoute, method: &str, path: &'p [u8]) -> Option<Vec<&'p [u8]>> {
        let m = r.method?;
        if m != "ANY" && m != method {
            return None;
        }
        let rest = path.strip_prefix(b"/")?;
        let req: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
        let mut params = Vec::new();
        for (i, s) in r.segs.iter().enumerate() {
            match s {
                TSeg::Lit(l) => {
                    if req.get(i)? != &l.as_bytes() {
                        return None;
                    }
                }
                TSeg::Param(_) => {
                    let v = *req.get(i)?;
                    if v.is_empty() {
                        return None;
                    }
                    params.push(v);
                }
                TSeg::Greedy(_) => {
                    // byte offset of segment i in `rest`
                    let off: usize = req[..i.min(req.len())].iter().map(|s| s.len() + 1).sum();
                    let v = rest.get(off..)?;
                    if i >= req.len() || v.is_empty() {
                        return None;
                    }
                    params.push(v);
                    return Some(params);
                }
            }
        }
        (req.len() == r.segs.len()).then_some(params)
    }

    /// Group rank of a route for a request host (smaller first), if eligible.
    fn group_rank(route_host: Option<&str>, req_host: Option<&str>) -> Option<(u8, usize)> {
        let Some(rh) = route_host else {
            return Some((2, 0));
        };
        let req = req_host?;
        let req = req.split(':').next().unwrap_or("").to_ascii_lowercase();
        let rh = rh.to_ascii_lowercase();
        if let Some(suffix) = rh.strip_prefix('*') {
            (req.len() > suffix.len() && req.ends_with(suffix))
                .then_some((1, usize::MAX - suffix.len()))
        } else {
            (req == rh).then_some((0, 0))
        }
    }

    type Rank = ((u8, usize), u8, Vec<u8>, u8);

    fn naive_lookup<'p>(
        routes: &[TRoute],
        method: &str,
        host: Option<&str>,
        path: &'p [u8],
    ) -> Option<(usize, Vec<&'p [u8]>)> {
        let mut best: Option<(Rank, usize, Vec<&'p [u8]>)> = None;
        for (i, r) in routes.iter().enumerate() {
            let Some(g) = group_rank(r.host, host) else {
                continue;
            };
            let (rank, params) = if r.method.is_none() {
                ((g, 1, vec![], 0), vec![])
            } else {
                let Some(params) = naive_params(r, method, path) else {
                    continue;
                };
                let kinds = r
                    .segs
                    .iter()
                    .map(|s| match s {
                        TSeg::Lit(_) => 0,
                        TSeg::Param(_) => 1,
                        TSeg::Greedy(_) => 2,
                    })
                    .collect();
                ((g, 0, kinds, u8::from(r.method == Some("ANY"))), params)
            };
            if best.as_ref().is_none_or(|(b, _, _)| rank < *b) {
                best = Some((rank, i, params));
            }
        }
        best.map(|(_, i, p)| (i, p))
    }

    fn build(routes: &[TRoute]) -> (Vec<String>, Result<Router, Vec<RouteError>>) {
        let keys: Vec<String> = routes.iter().map(TRoute::key).collect();
        let specs: Vec<RouteSpec> = keys
            .iter()
            .zip(routes)
            .map(|(k, r)| RouteSpec {
                key: k,
                host: r.host,
            })
            .collect();
        let res = Router::build(&specs);
        (keys, res)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn trie_agrees_with_naive_matcher(
            routes in prop::collection::vec(troute(), 0..14),
            requests in prop::collection::vec(request(), 1..40),
        ) {
            // Naive conflict check: a route conflicts iff an earlier one has the same class;
            // the error points at the first route of that class.
            let mut first_of_class = std::collections::HashMap::new();
            let mut expected = Vec::new();
            let mut kept = Vec::new();
            for (i, r) in routes.iter().enumerate() {
                match first_of_class.get(&r.class()) {
                    Some(&first) => expected.push((i, Some(first))),
                    None => {
                        first_of_class.insert(r.class(), i);
                        kept.push(r.clone());
                    }
                }
            }
            let (_, res) = build(&routes);
            match res {
                Ok(_) => prop_assert!(expected.is_empty(), "expected conflicts {:?}", expected),
                Err(e) => {
                    let got: Vec<_> = e.iter().map(|e| (e.index, e.other)).collect();
                    prop_assert_eq!(got, expected);
                }
            }
            let (keys, res) = build(&kept);
            let router = res.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            for (i, k) in keys.iter().enumerate() {
                let n = kept[i].segs.iter().filter(|s| !matches!(s, TSeg::Lit(_))).count();
                prop_assert_eq!(router.param_names(i).len(), if k == "$default" { 0 } else { n });
            }
            for (method, host, path) in &requests {
                let got = router
                    .lookup(method.as_bytes(), host.map(str::as_bytes), path)
                    .map(|m| (m.route, m.params.to_vec()));
                let want = naive_lookup(&kept, method, *host, path);
                prop_assert_eq!(
                    &got, &want,
                    "request {} {:?} {:?}; routes {:?}",
                    method, host, String::from_utf8_lossy(path), keys
                );
            }
        }

        #[test]
        fn arbitrary_input_never_panics(
            method in prop::collection::vec(any::<u8>(), 0..8),
            host in prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
            path in prop::collection::vec(prop::sample::select(&b"/a{}+:.*\0\xff"[..]), 0..64),
            key in "[A-Z$ /{}+a-c.]{0,16}",
            rhost in prop::option::of("[*a-c.:\\[\\]]{0,8}"),
            template in "[/{}a-c+? ]{0,12}",
        ) {
            let routes = [
                RouteSpec { key: &key, host: rhost.as_deref() },
                RouteSpec { key: "ANY /{a}/{b+}", host: Some("*.a") },
                RouteSpec { key: "GET /a//{x}", host: None },
                RouteSpec { key: "$default", host: Some("a") },
            ];
            if let Ok(r) = Router::build(&routes) {
                if let Some(m) = r.lookup(&method, host.as_deref(), &path) {
                    prop_assert_eq!(m.params.len(), r.param_names(m.route).len());
                }
                if let Ok(t) = PathTemplate::parse(&template, r.param_names(0)) {
                    let mut out = Vec::new();
                    t.render(&[b"x"], &mut out);
                    prop_assert!(out.starts_with(b"/"));
                }
            }
        }
    }
}

#[test]
fn greedy_needs_a_segment_as_api_gateway() {
    // README: `/orders` does not match `ANY /orders/{proxy+}`; an `ANY /orders` route catches it
    let r = router(&["ANY /orders/{proxy+}"]);
    assert_eq!(route_of(&r, "GET", "/orders"), None);
    assert_eq!(
        hit(&r, "POST", None, "/orders/7/items"),
        Some((0, vec!["7/items".into()]))
    );
    let r = router(&["ANY /orders/{proxy+}", "ANY /orders"]);
    assert_eq!(route_of(&r, "GET", "/orders"), Some(1));
}
