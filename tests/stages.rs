//! APIs, stages, canaries and mappings on the wire, both drivers, recording origins asserting
//! what they got: the issue's config as written (a routes file, stage variables in upstream
//! names and paths, a sticky canary on another API, a host + base path mapping); the canary
//! split over 5,000 requests and sticky clients never switching; two versions side by side by
//! base path and by header; the top-level routes as the implicit `$default` stage; stage
//! variables in parameter mapping; stage and canary in the access log and metrics; promoting a
//! canary by reload; load-time errors naming the file, key and line.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::PathBuf;

use common::*;

/// A directory of its own for a test's API files.
fn api_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tollgate-stages-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(d.join("apis")).unwrap();
    d
}

/// An origin answering `NAME METHOD TARGET` (so a response tells who served it).
fn named(name: &'static str) -> Origin {
    Origin::start(move |r| Reply::ok(&format!("{name} {} {}", r.method, r.target)))
}

fn req(c: &mut Client, host: &str, path: &str, extra: &str) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n{extra}\r\n").as_bytes());
    c.read(false).expect("a response")
}

/// The issue's config, with `pets-v1`'s routes in a file and `pets-v2`'s inline.
fn issue_config(dir: &std::path::Path, blue: &Origin, green: &Origin, percent: f64) -> String {
    issue_config_limit(dir, blue, green, percent, "rate = 5000, burst = 2000")
}

/// [`issue_config`] with another stage limit (5,000 requests back to back exceed the issue's).
fn issue_config_limit(
    dir: &std::path::Path,
    blue: &Origin,
    green: &Origin,
    percent: f64,
    limit: &str,
) -> String {
    std::fs::write(
        dir.join("apis/pets-v1.toml"),
        "[[route]]\nkey = \"GET /pets/{id}\"\nupstream = \"${stageVariables.backend}\"\npath = \"/v1/pets/{id}\"\n\n\
         [[route]]\nkey = \"GET /fn\"\nmock = { status = 200, body = \"fn=$stageVariables.fn\" }\n",
    )
    .unwrap();
    format!(
        "{}{}\
[[api]]
name = \"pets-v1\"
routes = \"{}\"

[[api]]
name = \"pets-v2\"

[[api.route]]
key = \"GET /pets/{{id}}\"
upstream = \"$stageVariables.backend\"
path = \"/v2/pets/{{id}}\"

[[stage]]
api = \"pets-v1\"
name = \"prod\"
variables = {{ backend = \"pets-blue\", fn = \"pets-live\" }}
throttle = {{ {limit} }}
canary = {{ percent = {percent:.1}, api = \"pets-v2\", variables = {{ backend = \"pets-green\" }}, sticky = \"cookie:tg-canary\" }}

[[mapping]]
host = \"api.example.com\"
base_path = \"/v1\"
stage = \"pets-v1/prod\"

[[route]]
key = \"GET /health\"
mock = {{ status = 200, body = \"top\" }}
",
        upstream_toml("pets-blue", &[blue.addr], ""),
        upstream_toml("pets-green", &[green.addr], ""),
        dir.join("apis/pets-v1.toml").display(),
    )
}

both_drivers! {
    fn issue_config_canary_split_and_stage_variables(d) {
        let (blue, green) = (named("blue"), named("green"));
        let dir = api_dir(&format!("issue-{d}"));
        let limit = "rate = 100000, burst = 100000";
        let g = Gateway::start(d, 2, &issue_config_limit(&dir, &blue, &green, 10.0, limit));
        let mut c = Client::new(g.addr);
        let (mut on, n) = (0, 5_000);
        for _ in 0..n {
            let r = req(&mut c, "api.example.com", "/v1/pets/7", "");
            assert_eq!(r.status, 200, "{}", r.text());
            // the side header tells the truth about who served
            match r.header("x-tollgate-canary") {
                Some("1") => {
                    assert_eq!(r.text(), "green GET /v2/pets/7");
                    on += 1;
                }
                Some("0") => assert_eq!(r.text(), "blue GET /v1/pets/7"),
                other => panic!("x-tollgate-canary: {other:?}"),
            }
        }
        // 10 % of 5,000 is 500 (±2 points is ±100); the binomial standard deviation is 21
        assert!((400..=600).contains(&on), "canary served {on} of {n}");
        // the stage's variables in a mock body; the stage side is labelled on every response
        let r = req(&mut c, "API.example.com:8080", "/v1/fn", "cookie: tg-canary=zz\r\n");
        assert!(r.text() == "fn=pets-live" || r.status == 404, "{}", r.text());
        // the top-level routes: the implicit $default stage at `/`, any host
        let r = req(&mut c, "other.example", "/health", "");
        assert_eq!((r.status, r.text().as_str()), (200, "top"));
        assert_eq!(r.header("x-tollgate-canary"), None);
        // another host is not mapped: the stage's routes are not there
        let r = req(&mut c, "other.example", "/v1/pets/7", "");
        assert_eq!(r.status, 404);
        // nor is a path outside the base path's segments
        let r = req(&mut c, "api.example.com", "/v10/pets/7", "");
        assert_eq!(r.status, 404);
    }

    fn sticky_clients_never_switch(d) {
        let (blue, green) = (named("blue"), named("green"));
        let dir = api_dir(&format!("sticky-{d}"));
        let g = Gateway::start(d, 2, &issue_config(&dir, &blue, &green, 30.0));
        let mut on_canary = 0;
        for client in 0..200 {
            let mut c = Client::new(g.addr);
            let cookie = format!("cookie: a=1; tg-canary=user-{client}; b=2\r\n");
            let first = req(&mut c, "api.example.com", "/v1/pets/1", &cookie)
                .header("x-tollgate-canary")
                .map(str::to_string);
            for _ in 0..5 {
                let r = req(&mut c, "api.example.com", "/v1/pets/1", &cookie);
                assert_eq!(r.header("x-tollgate-canary").map(str::to_string), first);
            }
            // a new connection, the same client: the same side
            let mut c2 = Client::new(g.addr);
            let r = req(&mut c2, "api.example.com", "/v1/pets/1", &cookie);
            assert_eq!(r.header("x-tollgate-canary").map(str::to_string), first);
            on_canary += usize::from(first.as_deref() == Some("1"));
        }
        // 30 % of 200 clients is 60; the standard deviation is 6.5
        assert!((30..=90).contains(&on_canary), "{on_canary} of 200 clients");
    }

    fn versions_side_by_side_by_base_path_and_header(d) {
        let (v1, v2) = (named("v1"), named("v2"));
        let text = format!(
            "{}{}\
[[api]]
name = \"v1\"
[[api.route]]
key = \"ANY /{{proxy+}}\"
upstream = \"one\"
[[api.route]]
key = \"GET /\"
upstream = \"one\"
[[api]]
name = \"v2\"
[[api.route]]
key = \"GET /orders/{{id}}\"
upstream = \"two\"
[[stage]]
api = \"v1\"
name = \"live\"
[[stage]]
api = \"v2\"
name = \"live\"
[[mapping]]
host = \"shop.example\"
base_path = \"/v1\"
stage = \"v1/live\"
[[mapping]]
host = \"shop.example\"
base_path = \"/v2\"
stage = \"v2/live\"
[[mapping]]
host = \"*.example\"
stage = \"v1/live\"
[[mapping]]
host = \"*.example\"
header = {{ name = \"Accept-Version\", value = \"2\" }}
stage = \"v2/live\"
[[route]]
key = \"$default\"
mock = {{ status = 418 }}
",
            upstream_toml("one", &[v1.addr], ""),
            upstream_toml("two", &[v2.addr], ""),
        );
        let g = Gateway::start(d, 1, &text);
        let mut c = Client::new(g.addr);
        // base paths: stripped before routing, the origin gets the path the route saw
        let r = req(&mut c, "shop.example", "/v1/orders/9?x=1", "");
        assert_eq!(r.text(), "v1 GET /orders/9?x=1");
        let r = req(&mut c, "shop.example", "/v2/orders/9", "");
        assert_eq!(r.text(), "v2 GET /orders/9");
        let r = req(&mut c, "shop.example", "/v1", "");
        assert_eq!(r.text(), "v1 GET /");
        // v2 has no such route: a 404 of the v2 stage, not a fall back to v1
        let r = req(&mut c, "shop.example", "/v2/carts/1", "");
        assert_eq!(r.status, 404);
        // by header, on another host of the wildcard
        let r = req(&mut c, "eu.example", "/orders/3", "accept-version: 2\r\n");
        assert_eq!(r.text(), "v2 GET /orders/3");
        let r = req(&mut c, "eu.example", "/orders/3", "accept-version: 1\r\n");
        assert_eq!(r.text(), "v1 GET /orders/3");
        // no mapping for this host: the top-level routes
        let r = req(&mut c, "elsewhere.test", "/orders/3", "");
        assert_eq!(r.status, 418);
        let paths: Vec<String> = v1.requests().iter().map(|r| r.target.clone()).collect();
        assert_eq!(paths, ["/orders/9?x=1", "/", "/orders/3"]);
    }

    fn stage_variables_in_mappings_and_the_access_log(d) {
        let o = Origin::echo();
        let log = std::env::temp_dir().join(format!("tollgate-stages-log-{}-{d}", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let text = format!(
            "{}\
[access_log]
path = \"{}\"
format = \"$context.stage $context.apiId $context.isCanaryRequest $context.routeKey\"
flush_ms = 10
[[api]]
name = \"shop\"
[[api.route]]
key = \"GET /items\"
upstream = \"$stageVariables.up\"
request_parameters = {{ \"append:header.x-env\" = \"env-$stageVariables.env\" }}
[[stage]]
api = \"shop\"
name = \"beta\"
variables = {{ up = \"items\", env = \"b\" }}
canary = {{ percent = 100.0, variables = {{ env = \"c\" }}, header = \"x-side\" }}
[[mapping]]
base_path = \"/shop\"
stage = \"shop/beta\"
[[route]]
key = \"GET /top\"
upstream = \"items\"
",
            upstream_toml("items", &[o.addr], ""),
            log.display(),
        );
        let g = Gateway::start(d, 1, &text);
        let r = get(g.addr, "/shop/items");
        assert_eq!((r.status, r.header("x-side")), (200, Some("1")));
        assert_eq!(o.requests()[0].header("x-env"), Some("env-c"));
        assert_eq!(get(g.addr, "/top").status, 200);
        drop(g);
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["beta shop true GET /items", "$default tollgate - GET /top"]);
    }

    fn stage_limit_is_each_routes_default(d) {
        let text = "[[api]]\nname = \"a\"\n\
[[api.route]]\nkey = \"GET /one\"\nmock = {}\n\
[[api.route]]\nkey = \"GET /two\"\nmock = {}\n\
[[api.route]]\nkey = \"GET /own\"\nmock = {}\nthrottle = { rate = 1000, burst = 1000 }\n\
[[stage]]\napi = \"a\"\nname = \"s\"\nthrottle = { rate = 0.001, burst = 3 }\n\
[[mapping]]\nstage = \"a/s\"\n";
        let g = Gateway::start(d, 1, text);
        let statuses = |path: &str| -> Vec<u16> { (0..5).map(|_| get(g.addr, path).status).collect() };
        // each route its own bucket of the stage's size; a route's own limit wins
        assert_eq!(statuses("/one"), [200, 200, 200, 429, 429]);
        assert_eq!(statuses("/two"), [200, 200, 200, 429, 429]);
        assert_eq!(statuses("/own"), [200, 200, 200, 200, 200]);
    }

    fn promote_by_reload(d) {
        let (blue, green) = (named("blue"), named("green"));
        let dir = api_dir(&format!("promote-{d}"));
        let g = Gateway::start(d, 1, &issue_config(&dir, &blue, &green, 0.0));
        let mut c = Client::new(g.addr);
        let r = req(&mut c, "api.example.com", "/v1/pets/2", "");
        assert_eq!((r.text().as_str(), r.header("x-tollgate-canary")), ("blue GET /v1/pets/2", Some("0")));
        // promote: the canary's API and variables become the stage's, the canary goes
        let text = issue_config(&dir, &blue, &green, 0.0)
            .replace("api = \"pets-v1\"\nname = \"prod\"", "api = \"pets-v2\"\nname = \"prod\"")
            .replace("variables = { backend = \"pets-blue\", fn = \"pets-live\" }", "variables = { backend = \"pets-green\", fn = \"pets-live\" }")
            .replace("stage = \"pets-v1/prod\"", "stage = \"pets-v2/prod\"")
            .lines()
            .filter(|l| !l.starts_with("canary"))
            .collect::<Vec<_>>()
            .join("\n");
        g.write_config(&(server_toml(d, 1, "") + &text));
        g.reload().unwrap();
        let mut c = Client::new(g.addr);
        let r = req(&mut c, "api.example.com", "/v1/pets/2", "");
        assert_eq!((r.text().as_str(), r.header("x-tollgate-canary")), ("green GET /v2/pets/2", None));
    }
}

/// Load-time errors name the file (an API's routes file, relative as the config names it),
/// the key and the line; an unknown stage variable names itself and the stage's variables.
#[test]
fn errors_name_file_key_and_line() {
    let dir = api_dir("errors");
    std::fs::write(
        dir.join("apis/a.toml"),
        "# routes of a\n[[route]]\nkey = \"GET /x\"\nupstream = \"${stageVariables.nope}\"\n",
    )
    .unwrap();
    let text = "[[api]]\nname = \"a\"\nroutes = \"apis/a.toml\"\n\n[[stage]]\napi = \"a\"\nname = \"s\"\nvariables = { up = \"u\" }\n\n[[mapping]]\nbase_path = \"/a\"\nstage = \"a/t\"\n";
    let e = tollgate::config::from_str_in(text, &dir).unwrap_err();
    let out = e.render("tollgate.toml");
    assert!(
        out.contains("apis/a.toml:4:12: api[a] (stage a/s).route[0].upstream: unknown stage variable \"nope\" (the stage has up)"),
        "{out}"
    );
    assert!(
        out.contains("tollgate.toml:12:9: mapping[0].stage: unknown stage \"a/t\""),
        "{out}"
    );
    // a file that is not there, and a syntax error in one
    let text = "[[api]]\nname = \"b\"\nroutes = \"apis/none.toml\"\n";
    let out = tollgate::config::from_str_in(text, &dir)
        .unwrap_err()
        .render("t.toml");
    assert!(
        out.starts_with("t.toml:3:10: api[0].routes: cannot read"),
        "{out}"
    );
    std::fs::write(
        dir.join("apis/bad.toml"),
        "[[route]]\nkey = \"GET /x\"\nmock = {}\nnope = 1\n",
    )
    .unwrap();
    let text = "[[api]]\nname = \"b\"\nroutes = \"apis/bad.toml\"\n";
    let out = tollgate::config::from_str_in(text, &dir)
        .unwrap_err()
        .render("t.toml");
    assert!(
        out.starts_with("apis/bad.toml:4:1: toml: unknown field `nope`"),
        "{out}"
    );
}
