//! The functions service as the server wires it, end to end through the admin listener's
//! Invoke API relay (`POST /2015-03-31/functions/NAME/invocations`, what `aws lambda invoke
//! --endpoint-url` sends): a real process (the standard-library Python runtime client of the
//! service's tests, tests/fixtures/lambda/fake_runtime.py) started by the service the server starts before
//! its workers; function errors, unknown functions, the admin's host rules, body framing and
//! limits; reloads adding and removing functions; and the service stopping with the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::lambda::fake_function;
use common::{Client, Gateway, Response};

fn config(driver: &str, functions: &[&str]) -> String {
    let mut text = common::server_toml(driver, 1, "");
    text.push_str("[admin]\nlisten = \"127.0.0.1:0\"\n");
    for f in functions {
        text.push_str(&fake_function(f, "TABLE = \"pets\"", 5000));
    }
    text.push_str("[[route]]\nkey = \"GET /m\"\nmock = {}\n");
    text
}

fn invoke_raw(admin: SocketAddr, host: &str, name: &str, body: &str) -> Response {
    let raw = format!(
        "POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: {host}\r\n\
         X-Amz-Invocation-Type: RequestResponse\r\nX-Amz-Log-Type: Tail\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    common::roundtrip(admin, raw.as_bytes())
}

fn invoke(admin: SocketAddr, name: &str, body: &str) -> Response {
    invoke_raw(admin, "localhost", name, body)
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

both_drivers! {
    fn the_admin_listener_invokes_local_functions(d) {
        let gw = Gateway::from_toml(&config(d, &["echo"]));
        let admin = gw.handle().admin_addr().expect("admin listener");
        let names = r#"{"op":"env","names":["_HANDLER","TABLE","AWS_LAMBDA_FUNCTION_NAME"]}"#;
        let r = invoke(admin, "echo", names);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = json(&r);
        assert_eq!(v["event"]["op"], "env");
        assert_eq!(v["env"]["_HANDLER"], "app.handler");
        assert_eq!(v["env"]["TABLE"], "pets");
        assert_eq!(v["env"]["AWS_LAMBDA_FUNCTION_NAME"], "echo");
        let pid = v["pid"].clone();
        assert!(r.header("x-amzn-RequestId").is_some_and(|id| id.len() >= 32), "{}", r.head);
        assert!(r.header("X-Amz-Function-Error").is_none(), "{}", r.head);
        assert_eq!(r.header("content-type"), Some("application/json"));
        // warm: the same process answers again, on a kept-alive admin connection too
        let mut c = Client::new(admin);
        for i in 0..3 {
            let body = format!("{{\"n\":{i}}}");
            c.send(
                format!(
                    "POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            let r = c.read(false).expect("an answer");
            assert_eq!(r.status, 200, "{}", r.text());
            let v = json(&r);
            assert_eq!(v["event"]["n"], i);
            assert_eq!(v["pid"], pid, "the warm process answers");
        }
        // an error the function reports: 200 with X-Amz-Function-Error, as the Invoke API
        let r = invoke(admin, "echo", r#"{"op":"raise"}"#);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("X-Amz-Function-Error"), Some("Unhandled"), "{}", r.head);
        assert!(r.text().contains("boom on purpose"), "{}", r.text());
        // the function by its ARN, percent-encoded as the SDKs send it
        let arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Aecho";
        let r = invoke(admin, arn, "{}");
        assert_eq!(r.status, 200, "{}", r.text());
        gw.stop();
    }

    fn unknown_functions_and_bad_requests_are_refused(d) {
        let gw = Gateway::from_toml(&config(d, &["echo"]));
        let admin = gw.handle().admin_addr().expect("admin listener");
        let r = invoke(admin, "nope", "{}");
        assert_eq!(r.status, 404, "{}", r.text());
        assert_eq!(r.header("x-amzn-ErrorType"), Some("ResourceNotFoundException"));
        assert_eq!(
            json(&r),
            serde_json::json!({"Type": "User", "message": "Function not found: nope"})
        );
        // the admin listener's host rule holds for invocations too
        let r = invoke_raw(admin, "evil.example", "echo", "{}");
        assert_eq!(r.status, 403, "{}", r.text());
        let r = common::roundtrip(
            admin,
            b"POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: localhost\r\n\
              Origin: http://evil.example\r\nContent-Length: 2\r\n\r\n{}",
        );
        assert_eq!(r.status, 403, "{}", r.text());
        // the body's length must be known (no chunked bodies), and within the payload limit
        let r = common::roundtrip(
            admin,
            b"POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: localhost\r\n\
              Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        );
        assert_eq!(r.status, 411, "{}", r.text());
        let r = common::roundtrip(
            admin,
            b"POST /2015-03-31/functions/echo/invocations HTTP/1.1\r\nHost: localhost\r\n\
              Content-Length: 6291457\r\n\r\n",
        );
        assert_eq!(r.status, 413, "{}", r.text());
        assert_eq!(r.header("x-amzn-ErrorType"), Some("RequestEntityTooLargeException"));
        let r = common::get(admin, "/2015-03-31/functions/echo/invocations");
        assert_eq!(r.status, 405, "{}", r.text());
        gw.stop();
    }

    fn reloads_add_and_remove_functions(d) {
        let gw = Gateway::from_toml(&config(d, &["echo"]));
        let admin = gw.handle().admin_addr().expect("admin listener");
        assert_eq!(invoke(admin, "echo", "{}").status, 200);
        assert_eq!(invoke(admin, "later", "{}").status, 404);
        gw.write_config(&config(d, &["later"]));
        gw.reload().expect("reload applies");
        // the service takes the new config on its next tick
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let r = loop {
            let r = invoke(admin, "later", "{}");
            if r.status == 200 || std::time::Instant::now() >= deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(r.status, 200, "{}", r.text());
        let v = json(&r);
        let arn = v["fields"]["Lambda-Runtime-Invoked-Function-Arn"].as_str();
        assert!(arn.is_some_and(|a| a.ends_with(":function:later")), "{v}");
        let r = invoke(admin, "echo", "{}");
        assert_eq!(r.status, 404, "{}", r.text());
        gw.stop();
    }
}

/// `tollgate check` on a config with functions: the summary counts them (a remote function's
/// hidden upstream is not an `[[upstream]]`), a remote function without credentials in the
/// environment is a warning (requests go unsigned), and a bad `cwd` fails with its key and
/// line.
#[test]
fn check_counts_functions_and_warns_about_unsigned_requests() {
    let dir = std::env::temp_dir().join(format!("tollgate-fn-check-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("fn")).unwrap();
    let text = "[[function]]\nname = \"here\"\ncommand = [\"x\"]\ncwd = \"fn\"\n\
                [[function]]\nname = \"there\"\n\
                arn = \"arn:aws:lambda:eu-west-1:123456789012:function:there\"\n\
                endpoint = \"http://127.0.0.1:9\"\n\
                [[route]]\nkey = \"GET /a\"\nfunction = \"here\"\n\
                [[route]]\nkey = \"GET /b\"\nfunction = \"there\"\npayload_format = \"1.0\"\n";
    let file = dir.join("tollgate.toml");
    std::fs::write(&file, text).unwrap();
    let check = |creds: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.arg("check").arg("-c").arg(&file);
        cmd.current_dir(std::env::temp_dir());
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            cmd.env_remove(k);
        }
        if creds {
            cmd.env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
            cmd.env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            );
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    };
    let f = file.display();
    let (ok, stdout, stderr) = check(false);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(": ok (2 routes, 0 upstreams, 2 functions (1 local, 1 remote))"),
        "{stdout}"
    );
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [format!(
            "{f}:7:7: warning: function[1].arn: no AWS credentials in the environment \
             (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): requests will be unsigned"
        )],
        "{stderr}"
    );
    let (ok, stdout, stderr) = check(true);
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    std::fs::write(&file, text.replace("cwd = \"fn\"", "cwd = \"nope\"")).unwrap();
    let (ok, stdout, stderr) = check(false);
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains(&format!("{f}:4:7: function[0].cwd: ")) && stderr.contains("nope"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
