//! An `[[api]]` from an OpenAPI definition, served on both drivers through a stage: an
//! `http_proxy` integration whose `uri` names its host by a stage variable, a mock with its
//! response, CORS from `x-amazon-apigateway-cors`; the definition edited and reloaded; the
//! unsupported-part report (a warning with its JSON pointer, an error under
//! `strict_openapi`); export → import giving the same compiled routes; every test definition
//! in tests/data/openapi loading as an API.

// Test helpers outside #[test] functions (servers, clients, fixtures) panic to fail the
// test; the crate-wide deny of unwrap/expect (Cargo.toml [lints]) is for runtime code.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::{Path, PathBuf};

use common::*;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tollgate-openapi-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A definition with an HTTP proxy to `${stageVariables.host}`, a mock and CORS; `suffix`
/// names the origin path (changed to test a reload).
fn definition(suffix: &str) -> String {
    format!(
        r#"openapi: "3.0.1"
info: {{ title: pets, version: "1" }}
x-amazon-apigateway-cors:
  allowOrigins: ["https://app.example"]
  allowMethods: ["GET"]
paths:
  /pets/{{id}}:
    get:
      parameters:
        - {{ name: id, in: path, required: true, schema: {{ type: string }} }}
      x-amazon-apigateway-integration:
        type: http_proxy
        httpMethod: GET
        uri: "http://${{stageVariables.host}}/{suffix}/{{id}}"
        payloadFormatVersion: "1.0"
        timeoutInMillis: 5000
  /ping:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {{ application/json: '{{"statusCode": 200}}' }}
        responses:
          default:
            statusCode: "200"
            responseTemplates: {{ application/json: '{{"pong": true}}' }}
"#
    )
}

fn config(d: &Path, origin: &Origin) -> String {
    format!(
        "[[api]]\nname = \"pets\"\nopenapi = \"{}\"\n\n[[stage]]\napi = \"pets\"\nname = \"prod\"\nvariables = {{ host = \"{}\" }}\n\n[[mapping]]\nbase_path = \"/v1\"\nstage = \"pets/prod\"\n",
        d.join("pets.yaml").display(),
        origin.addr
    )
}

both_drivers! {
    fn served_through_a_stage_and_reloaded(d) {
        let o = Origin::echo();
        let dd = dir(&format!("serve-{d}"));
        std::fs::write(dd.join("pets.yaml"), definition("petstore/pets")).unwrap();
        let g = Gateway::start(d, 1, &config(&dd, &o));
        let r = get(g.addr, "/v1/pets/42");
        assert_eq!((r.status, r.text().as_str()), (200, "GET /petstore/pets/42"));
        let r = get(g.addr, "/v1/ping");
        assert_eq!((r.status, r.text().as_str()), (200, "{\"pong\": true}"));
        // the definition's CORS answers a preflight under the base path
        let r = roundtrip(
            g.addr,
            b"OPTIONS /v1/pets/1 HTTP/1.1\r\nhost: x\r\norigin: https://app.example\r\naccess-control-request-method: GET\r\n\r\n",
        );
        assert_eq!(r.status, 204);
        assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
        // edit the definition and reload: the new integration serves
        std::fs::write(dd.join("pets.yaml"), definition("v2/animals")).unwrap();
        g.write_config(&(server_toml(d, 1, "") + &config(&dd, &o)));
        g.reload().unwrap();
        let r = get(g.addr, "/v1/pets/42");
        assert_eq!((r.status, r.text().as_str()), (200, "GET /v2/animals/42"));
        let seen: Vec<String> = o.requests().iter().map(|r| r.target.clone()).collect();
        assert_eq!(seen, ["/petstore/pets/42", "/v2/animals/42"]);
    }
}

/// What a definition has that tollgate does not do is reported with its JSON pointer: a
/// warning, or under `strict_openapi` an error.
#[test]
fn unsupported_parts_are_reported_by_pointer() {
    let dd = dir("strict");
    let text = definition("p").replace(
        "        timeoutInMillis: 5000\n",
        "        timeoutInMillis: 5000\n        connectionType: VPC_LINK\n        connectionId: abc\n",
    );
    std::fs::write(dd.join("pets.yaml"), text).unwrap();
    let o = Origin::echo();
    let cfg = config(&dd, &o);
    let loaded = tollgate::config::from_str_in(&cfg, &dd).unwrap_or_else(|e| panic!("{e}"));
    let warnings = tollgate::config::render_warnings(&loaded.warnings, "t.toml");
    assert!(
        warnings.contains(
            "api[0].openapi /paths/~1pets~1{id}/get/x-amazon-apigateway-integration/connectionType"
        ),
        "{warnings}"
    );
    let strict = format!("strict_openapi = true\n{cfg}");
    let e = tollgate::config::from_str_in(&strict, &dd)
        .unwrap_err()
        .render("t.toml");
    assert!(
        e.contains("/x-amazon-apigateway-integration/connectionType"),
        "{e}"
    );
    assert!(e.contains("strict_openapi = true"), "{e}");
    // the API's own setting wins over the top-level one
    let lenient = strict.replace("openapi = \"", "strict_openapi = false\nopenapi = \"");
    assert!(tollgate::config::from_str_in(&lenient, &dd).is_ok());
}

/// Every name is this host (the definitions name AWS's demo endpoints; there is no DNS here).
struct Loopback;

impl tollgate::config::resolve::Resolver for Loopback {
    fn lookup(&self, _host: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
    }
}

fn load(text: &str, dir: &Path) -> Result<tollgate::config::Config, String> {
    tollgate::config::in_dir(Some(dir), || {
        tollgate::config::from_str_with(text, std::sync::Arc::new(Loopback))
    })
    .map_err(|e| e.render("t"))
}

/// Every test definition loads as an API (stage variables given for the ones that use them),
/// and export → import → compile gives the same routes as the definition itself.
#[test]
fn test_definitions_load_and_export_round_trips() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openapi");
    let dd = dir("roundtrip");
    let mut count = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let vars = "variables = { fallbackHost = \"127.0.0.1:9\", siteHost = \"127.0.0.1:9\", function = \"f\", tenant = \"t\", vpcLinkId = \"v\" }";
        let cfg = |openapi: &Path| {
            format!(
                "[[api]]\nname = \"a\"\nopenapi = \"{}\"\n[[stage]]\napi = \"a\"\nname = \"s\"\n{vars}\n[[mapping]]\nstage = \"a/s\"\n",
                openapi.display()
            )
        };
        if path.ends_with("console-export.yaml") {
            // a Cognito authorizer (no audience in the definition) and an IAM one (no
            // credentials) need the operator's settings before anything is served: refused,
            // naming what is missing, never served open
            let e = load(&cfg(&path), &dd).unwrap_err();
            assert!(
                e.contains("authorizer[0].audience: a jwt authorizer needs an audience"),
                "{e}"
            );
            assert!(
                e.contains("authorizer[1].credential: an aws_iam authorizer needs"),
                "{e}"
            );
            continue;
        }
        let first = load(&cfg(&path), &dd).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = tollgate::config::api_sources::api_file(&cfg(&path), Some(&dd), "a").unwrap();
        let exported = tollgate::openapi::to_yaml(&tollgate::openapi::export(&file, "a"));
        let again = dd.join(format!("exported-{count}.yaml"));
        std::fs::write(&again, exported).unwrap();
        let second =
            load(&cfg(&again), &dd).unwrap_or_else(|e| panic!("{} exported: {e}", path.display()));
        let routes = |c: &tollgate::config::Config| -> Vec<(String, String)> {
            c.routes
                .iter()
                .map(|r| (r.id.clone(), format!("{:?}", r.integration)))
                .collect()
        };
        assert!(!first.routes.is_empty(), "{}", path.display());
        assert_eq!(routes(&first), routes(&second), "{}", path.display());
        count += 1;
    }
    assert!(count >= 6, "{count} definitions");
}
