//! The access log on both drivers: one JSON line per request with API Gateway's `$context`
//! names, custom formats, and nothing lost at shutdown.

mod common;

use std::time::Duration;

use common::*;

fn temp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("tollgate-log-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

both_drivers! {
    fn a_request_outliving_the_drain_does_not_hold_up_exit(d) {
        let o = Origin::start(|_| Reply::After(Duration::from_secs(4), Box::new(Reply::ok("late"))));
        let path = temp(&format!("late-{d}.log"));
        let text = server_toml(d, 1, "[server.timeouts]\nshutdown_ms = 200\n")
            + &format!("[access_log]\npath = \"{}\"\n", path.display())
            + &upstream_toml("u", &[o.addr], "response_timeout_ms = 10000")
            + "[[route]]\nkey = \"GET /slow\"\nupstream = \"u\"\n\n[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
        let g = Gateway::from_toml(&text);
        assert_eq!(get(g.addr, "/hello").status, 200);
        let addr = g.addr;
        let _slow = std::thread::spawn(move || {
            let mut c = Client::new(addr);
            c.send(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
            c.read(false)
        });
        while o.requests().is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
        // the slow request is still running when the 200 ms drain ends: exit must not wait
        // for it (nor for the access-log writer, which it would otherwise keep alive)
        let t = std::time::Instant::now();
        g.stop();
        assert!(t.elapsed() < Duration::from_secs(3), "exit took {:?}", t.elapsed());
        let log = std::fs::read_to_string(&path).unwrap();
        assert_eq!(log.lines().count(), 1, "the finished request was logged: {log}");
    }

    fn every_request_gets_one_json_line(d) {
        let o = Origin::echo();
        let path = temp(&format!("json-{d}.log"));
        let text = server_toml(d, 2, "")
            + &format!("[access_log]\npath = \"{}\"\nformat = \"json\"\n", path.display())
            + &upstream_toml("u", &[o.addr], "")
            + "[[route]]\nkey = \"GET /api/{proxy+}\"\nupstream = \"u\"\n\n[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
        let g = Gateway::from_toml(&text);
        let r = roundtrip(g.addr, b"GET /api/x?q=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: test-agent\r\n\r\n");
        let rid = r.header("x-request-id").unwrap().to_string();
        for _ in 0..49 {
            assert_eq!(get(g.addr, "/hello").status, 200);
        }
        assert_eq!(get(g.addr, "/missing").status, 404);
        g.stop(); // drains; the writer writes everything queued
        let log = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 51, "{log}");
        let proxied = lines.iter().find(|l| l.contains(&rid)).expect("the proxied request's line");
        for part in [
            "\"ip\":\"127.0.0.1\"", "\"httpMethod\":\"GET\"", "\"routeKey\":\"GET /api/{proxy+}\"",
            "\"path\":\"/api/x\"", "\"status\":200", "\"protocol\":\"HTTP/1.1\"",
            "\"integrationStatus\":200", "\"userAgent\":\"test-agent\"", "\"errorMessage\":\"-\"",
        ] {
            assert!(proxied.contains(part), "{part} in {proxied}");
        }
        let missing = lines.iter().find(|l| l.contains("\"status\":404")).unwrap();
        assert!(missing.contains("\"routeKey\":\"-\"") && missing.contains("\"errorMessage\":\"no route matched\""), "{missing}");
        let _ = std::fs::remove_file(&path);
    }

    fn custom_format(d) {
        let path = temp(&format!("custom-{d}.log"));
        let text = server_toml(d, 1, "")
            + &format!("[access_log]\npath = \"{}\"\nformat = '$context.httpMethod $context.path $context.status $context.routeKey'\n", path.display())
            + "[[route]]\nkey = \"GET /hello\"\nmock = { body = \"hi\" }\n";
        let g = Gateway::from_toml(&text);
        get(g.addr, "/hello");
        g.stop();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "GET /hello 200 GET /hello\n");
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn unknown_format_variable_is_a_config_error() {
    let e = tollgate::config::from_str(
        "[access_log]\npath = \"-\"\nformat = \"$context.bogus\"\n[[route]]\nkey = \"GET /\"\nmock = {}\n",
    )
    .unwrap_err();
    assert_eq!(e.0[0].key, "access_log.format");
    assert_eq!(e.0[0].line, 3);
}
