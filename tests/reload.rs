//! Hot reload on both drivers: the new config takes effect on every worker, requests in flight
//! finish on the old one, invalid configs change nothing, listeners follow the config, pools,
//! tokens, quotas and metrics carry over by name, and 20 reloads under load fail no request.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;

fn mock_route(key: &str, body: &str) -> String {
    format!("[[route]]\nkey = \"{key}\"\nmock = {{ status = 200, body = \"{body}\" }}\n")
}

fn keyed(path: &str, key: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\nx-api-key: {key}\r\n\r\n").into_bytes()
}

fn post_reload(admin: SocketAddr) -> Response {
    roundtrip(
        admin,
        format!("POST /reload HTTP/1.1\r\nHost: {admin}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    )
}

/// The sum of every `tollgate_requests_total` sample for `route`.
fn requests_total(admin: SocketAddr, route: &str) -> u64 {
    let text = get(admin, "/metrics").text();
    text.lines()
        .filter(|l| l.starts_with("tollgate_requests_total{"))
        .filter(|l| l.contains(&format!("route=\"{route}\"")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

const ADMIN: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

all_transports! {
    fn reload_swaps_routes_on_every_worker(d) {
        let text = |body: &str, extra: &str| {
            server_toml(d, 2, "") + &mock_route("GET /v", body) + extra
        };
        let g = Gateway::from_toml(&text("one", &mock_route("GET /old", "o")));
        assert_eq!(get(g.addr, "/v").text(), "one");
        g.write_config(&text("two", &mock_route("GET /new", "n")));
        let r = g.reload().expect("reload applies");
        assert_eq!(r.generation, 1);
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        // fresh connections land on either worker: all of them must serve the new config
        for _ in 0..20 {
            assert_eq!(get(g.addr, "/v").text(), "two");
        }
        assert_eq!(get(g.addr, "/new").text(), "n");
        let gone = get(g.addr, "/old");
        assert_eq!(gone.status, 404);
        assert_eq!(gone.text(), r#"{"message":"Not Found"}"#);
    }

    fn keep_alive_connection_moves_to_the_new_config_between_requests(d) {
        let text = |body: &str| server_toml(d, 1, "") + &mock_route("GET /v", body);
        let g = Gateway::from_toml(&text("one"));
        let mut c = Client::new(g.addr);
        c.send(b"GET /v HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "one");
        g.write_config(&text("two"));
        g.reload().expect("reload applies");
        c.send(b"GET /v HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.read(false).unwrap().text(), "two", "same connection, new config");
    }

    fn in_flight_request_finishes_on_the_old_config(d) {
        let origin = Origin::start(|_| Reply::After(Duration::from_millis(700), Box::new(Reply::ok("from origin"))));
        let old = server_toml(d, 1, "")
            + &upstream_toml("slow", &[origin.addr], "response_timeout_ms = 5000")
            + "[[route]]\nkey = \"GET /slow\"\nupstream = \"slow\"\n";
        let g = Gateway::from_toml(&old);
        let addr = g.addr;
        let pending = thread::spawn(move || get(addr, "/slow"));
        // wait until the origin has the request, so it is truly in flight
        for _ in 0..200 {
            if !origin.requests().is_empty() {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(origin.requests().len(), 1);
        g.write_config(&(server_toml(d, 1, "") + &mock_route("GET /slow", "mocked now")));
        g.reload().expect("reload applies");
        assert_eq!(get(g.addr, "/slow").text(), "mocked now");
        let r = pending.join().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "from origin"));
        assert_eq!(origin.requests().len(), 1, "the new config no longer proxies");
    }

    fn invalid_config_is_rejected_and_the_old_one_keeps_serving(d) {
        let good = server_toml(d, 2, "") + ADMIN + &mock_route("GET /v", "one");
        let g = Gateway::from_toml(&good);
        let admin = g.handle().admin_addr().unwrap();
        g.write_config(&(good.clone() + "[[route]]\nkey = \"GET /bad\"\nmock = { status = 200 }\nbogus = 1\n"));
        let e = g.reload().expect_err("an unknown key is rejected");
        assert!(e.contains("bogus"), "{e}");
        let path = g.config_path.display().to_string();
        assert!(e.contains(&format!("{path}:")), "the error names the file and line: {e}");
        assert_eq!(get(g.addr, "/v").text(), "one");
        // the same through the admin API, with a semantic error this time
        g.write_config(&(good.clone() + &mock_route("GET /v", "dup")));
        let r = post_reload(admin);
        assert_eq!(r.status, 400);
        assert!(r.text().starts_with(r#"{"message":""#), "{}", r.text());
        assert!(r.text().contains("GET /v"), "{}", r.text());
        let status = get(admin, "/status").text();
        assert!(status.contains(r#""last_reload":{"result":"error""#), "{status}");
        assert!(status.contains(r#""generation":0"#), "{status}");
        assert_eq!(get(g.addr, "/v").text(), "one");
        // a file that cannot be read
        std::fs::remove_file(&g.config_path).unwrap();
        assert!(g.reload().is_err());
        assert_eq!(get(g.addr, "/v").text(), "one");
        // and a good one again, through the admin API
        g.write_config(&(server_toml(d, 2, "") + ADMIN + &mock_route("GET /v", "two")));
        // a page on another site cannot make a browser reload the gateway
        let cross = roundtrip(
            admin,
            format!("POST /reload HTTP/1.1\r\nHost: {admin}\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        );
        assert_eq!(cross.status, 403);
        // nor one that rebinds its own name to the admin address (Host is that name)
        let rebound = roundtrip(
            admin,
            format!("POST /reload HTTP/1.1\r\nHost: evil.example:{}\r\nContent-Length: 0\r\n\r\n", admin.port()).as_bytes(),
        );
        assert_eq!(rebound.status, 403);
        assert_eq!(get(g.addr, "/v").text(), "one");
        let same = format!("POST /reload HTTP/1.1\r\nHost: {admin}\r\nOrigin: http://{admin}\r\nContent-Length: 0\r\n\r\n");
        let r = roundtrip(admin, same.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains(r#""generation":1"#), "{}", r.text());
        assert_eq!(get(g.addr, "/v").text(), "two");
        let status = get(admin, "/status").text();
        assert!(status.contains(r#""last_reload":{"result":"ok""#), "{status}");
        let m = get(admin, "/metrics").text();
        assert!(m.contains("tollgate_reloads_total{result=\"ok\"} 1"), "{m}");
        assert!(m.contains("tollgate_reloads_total{result=\"error\"} 3"), "{m}");
        assert!(m.contains("tollgate_config_generation 1"), "{m}");
        assert!(get(admin, "/config").text().contains("two"));
    }

    fn listeners_follow_the_config(d) {
        let extra = SocketAddr::from(([127, 0, 0, 1], common::unephemeral_port()));
        let base = |listen: &str| {
            format!("[server]\nlisten = [{listen}]\nworkers = 2\ndriver = \"{d}\"\n")
                + &mock_route("GET /v", "v")
        };
        let g = Gateway::from_toml(&base("\"127.0.0.1:0\""));
        assert!(TcpStream::connect(extra).is_err(), "not listening yet");
        g.write_config(&base(&format!("\"127.0.0.1:0\", \"{extra}\"")));
        g.reload().expect("reload applies");
        for _ in 0..10 {
            assert_eq!(get(extra, "/v").text(), "v");
        }
        assert_eq!(get(g.addr, "/v").text(), "v", "the kept address still serves");
        // a connection open on the address that goes away keeps being served
        let mut kept = Client::new(extra);
        kept.send(b"GET /v HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(kept.read(false).unwrap().status, 200);
        g.write_config(&base("\"127.0.0.1:0\""));
        g.reload().expect("reload applies");
        assert!(TcpStream::connect(extra).is_err(), "the removed address is closed");
        assert_eq!(get(g.addr, "/v").text(), "v");
        // a connection accepted on the removed address finishes its next request and closes
        kept.send(b"GET /v HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = kept.read(false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(kept.is_closed());
    }

    fn an_address_removed_and_added_back_is_bound_again_at_once(d) {
        // the process's own sockets of a removed address must be closed by the time the
        // reload returns, or the next reload adding it back is refused as another process's
        let extra = SocketAddr::from(([127, 0, 0, 1], common::unephemeral_port()));
        let base = |listen: &str, body: &str| {
            format!("[server]\nlisten = [{listen}]\nworkers = 2\ndriver = \"{d}\"\n")
                + &mock_route("GET /v", body)
        };
        let both = |body: &str| base(&format!("\"127.0.0.1:0\", \"{extra}\""), body);
        let g = Gateway::from_toml(&both("0"));
        assert_eq!(get(extra, "/v").text(), "0");
        for round in 1..=5 {
            g.write_config(&base("\"127.0.0.1:0\"", "gone"));
            g.reload().expect("removing applies");
            assert!(TcpStream::connect(extra).is_err(), "round {round}: the removed address is closed");
            let body = round.to_string();
            g.write_config(&both(&body));
            if let Err(e) = g.reload() {
                panic!("round {round}: adding the address back is refused: {e}");
            }
            for _ in 0..4 {
                assert_eq!(get(extra, "/v").text(), body, "round {round}");
            }
        }
    }

    fn a_reload_widening_the_address_on_the_same_port_is_not_refused_as_another_process(d) {
        // 127.0.0.1:P → 0.0.0.0:P (opening the gateway to the network): the only listener on
        // the port is the gateway's own, so the probe's "in use" must not refuse the reload
        let port = common::unephemeral_port();
        let conf = |listen: &str, body: &str| {
            format!("[server]\nlisten = [\"{listen}:{port}\"]\nworkers = 2\ndriver = \"{d}\"\n")
                + &mock_route("GET /v", body)
        };
        let g = Gateway::from_toml(&conf("127.0.0.1", "narrow"));
        let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert_eq!(get(local, "/v").text(), "narrow");
        g.write_config(&conf("0.0.0.0", "wide"));
        if let Err(e) = g.reload() {
            panic!("the gateway's own socket refused the reload: {e}");
        }
        for _ in 0..10 {
            assert_eq!(get(local, "/v").text(), "wide");
        }
        // and back: the wildcard is the gateway's own too
        g.write_config(&conf("127.0.0.1", "narrow again"));
        g.reload().expect("narrowing applies");
        for _ in 0..10 {
            assert_eq!(get(local, "/v").text(), "narrow again");
        }
    }

    fn a_config_listing_an_ip_and_the_wildcard_of_one_port_starts(d) {
        // the second address's probe finds the first one's sockets: the gateway's own
        let port = common::unephemeral_port();
        let text = format!("[server]\nlisten = [\"127.0.0.1:{port}\", \"0.0.0.0:{port}\"]\nworkers = 2\ndriver = \"{d}\"\n")
            + &mock_route("GET /v", "both");
        let g = Gateway::from_toml(&text);
        assert_eq!(g.handle().local_addrs().len(), 2);
        let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert_eq!(get(local, "/v").text(), "both");
    }

    fn a_taken_port_fails_the_reload_and_changes_nothing(d) {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let g = Gateway::from_toml(&(server_toml(d, 1, "") + &mock_route("GET /v", "one")));
        g.write_config(
            &(format!("[server]\nlisten = [\"127.0.0.1:0\", \"{addr}\"]\nworkers = 1\ndriver = \"{d}\"\n")
                + &mock_route("GET /v", "two")),
        );
        let e = g.reload().expect_err("bind fails");
        assert!(e.contains(&addr.to_string()), "{e}");
        assert_eq!(get(g.addr, "/v").text(), "one");
    }

    fn a_reload_refuses_an_address_another_process_listens_on(d) {
        // another tollgate (another process of the same user) listening with SO_REUSEPORT:
        // joining its group would split the traffic between the two
        let other = tollgate::server::listener::bind_reuseport("127.0.0.1:0".parse().unwrap(), 1, 128)
            .unwrap();
        let addr = other[0].local_addr().unwrap();
        let g = Gateway::from_toml(&(server_toml(d, 2, "") + &mock_route("GET /v", "one")));
        g.write_config(
            &(format!("[server]\nlisten = [\"127.0.0.1:0\", \"{addr}\"]\nworkers = 2\ndriver = \"{d}\"\n")
                + &mock_route("GET /v", "two")),
        );
        let e = g.reload().expect_err("the address is another process's");
        assert!(e.contains("address in use by another process"), "{e}");
        assert!(e.contains(&addr.to_string()), "{e}");
        assert_eq!(get(g.addr, "/v").text(), "one", "nothing changed");
        // once it is free, the same reload applies, and the gateway's workers share it
        drop(other);
        g.reload().expect("reload applies");
        for _ in 0..10 {
            assert_eq!(get(addr, "/v").text(), "two");
        }
        // a reload keeping the address reuses its sockets (no probe against itself)
        g.write_config(
            &(format!("[server]\nlisten = [\"127.0.0.1:0\", \"{addr}\"]\nworkers = 2\ndriver = \"{d}\"\n")
                + &mock_route("GET /v", "three")),
        );
        g.reload().expect("a kept address is not probed");
        assert_eq!(get(addr, "/v").text(), "three");
    }

    fn restart_only_notes_compare_against_the_running_process(d) {
        let conf = |workers: usize| server_toml(d, workers, "") + &mock_route("GET /v", "v");
        let g = Gateway::from_toml(&conf(2));
        let noted = |r: &tollgate::server::reload::ReloadReport| {
            r.notes.iter().any(|n| n.contains("server.workers: the file has 1, the process runs 2"))
        };
        g.write_config(&conf(1));
        let r = g.reload().unwrap();
        assert!(noted(&r), "{:?}", r.notes);
        // the same file again: the process still runs 2 workers, so it is noted again
        let r = g.reload().unwrap();
        assert!(noted(&r), "{:?}", r.notes);
        assert!(r.changes.is_empty(), "{:?}", r.changes);
        // back to what runs: no note, though the previous file differed
        g.write_config(&conf(2));
        let r = g.reload().unwrap();
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        for _ in 0..10 {
            assert_eq!(get(g.addr, "/v").text(), "v", "both workers still serve");
        }
    }

    fn a_reload_reports_what_changed_or_that_nothing_did(d) {
        let origin = Origin::echo();
        let base = server_toml(d, 2, "")
            + ADMIN
            + &upstream_toml("a", &[origin.addr], "")
            + &upstream_toml("b", &[origin.addr], "")
            + "[[route]]\nkey = \"GET /p\"\nupstream = \"a\"\nthrottle = { rate = 100, burst = 100 }\n"
            + &mock_route("GET /gone", "g")
            + "[[usage_plan]]\nname = \"basic\"\nquota = { limit = 10, period = \"day\" }\n"
            + "[[api_key]]\nname = \"old\"\nvalue = \"old-secret-0123456789\"\nplan = \"basic\"\n";
        let g = Gateway::from_toml(&base);
        let admin = g.handle().admin_addr().unwrap();
        // the same file: nothing changed, and it says so
        let r = post_reload(admin);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains(r#""changes":{"summary":"no changes","routes":{"added":[],"removed":[],"changed":[]},"upstreams":{"added":[],"removed":[],"changed":[]},"api_keys":{"added":[],"removed":[],"changed":[]},"limits":{"added":[],"removed":[],"changed":[]},"functions":{"added":[],"removed":[],"changed":[]},"settings":[]}"#), "{}", r.text());
        let status = get(admin, "/status").text();
        assert!(status.contains(r#""generation":1"#), "{status}");
        // spelling out a default is no change either
        g.write_config(&base.replace("name = \"b\"", "name = \"b\"\nconnect_timeout_ms = 2000"));
        assert!(g.reload().unwrap().changes.is_empty());
        let changed = server_toml(d, 2, "")
            + ADMIN
            + &upstream_toml("a", &[origin.addr], "response_timeout_ms = 900")
            + &upstream_toml("c", &[origin.addr], "")
            + "[[route]]\nkey = \"GET /p\"\nupstream = \"a\"\nthrottle = { rate = 50, burst = 100 }\n"
            + &mock_route("GET /new", "n")
            + "[[usage_plan]]\nname = \"basic\"\nquota = { limit = 20, period = \"day\" }\n"
            + "[[api_key]]\nname = \"new\"\nvalue = \"new-secret-0123456789\"\nplan = \"basic\"\n"
            + "[server.timeouts]\nwrite_ms = 5000\n";
        g.write_config(&changed);
        let r = post_reload(admin);
        assert_eq!(r.status, 200, "{}", r.text());
        let t = r.text();
        for want in [
            r#""routes":{"added":["GET /new"],"removed":["GET /gone"],"changed":["GET /p"]}"#,
            r#""upstreams":{"added":["c"],"removed":["b"],"changed":["a"]}"#,
            r#""api_keys":{"added":["new"],"removed":["old"],"changed":[]}"#,
            r#""limits":{"added":[],"removed":[],"changed":["usage_plan basic","route GET /p"]}"#,
            r#""settings":["server.timeouts.write_ms"]"#,
        ] {
            assert!(t.contains(want), "{want} missing from {t}");
        }
        assert!(!t.contains("secret"), "{t}");
        assert_eq!(get(g.addr, "/new").text(), "n");
    }

    fn get_config_is_the_effective_config_as_the_process_runs_it(d) {
        let conf = |workers: usize| {
            server_toml(d, workers, "")
                + ADMIN
                + &mock_route("GET /v", "v")
                // a body whose lines read like the config's own: remarks must not land in it
                + &mock_route("GET /ini", "[server]\\nworkers = 1\\n")
                + "[[api_key]]\nname = \"k\"\nvalue = \"very-secret-key-0123\"\n"
                + "[[api_key]]\nname = \"h\"\nvalue_sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n"
        };
        let g = Gateway::from_toml(&conf(2));
        let admin = g.handle().admin_addr().unwrap();
        let text = get(admin, "/config").text();
        // defaults the file did not set are filled in
        for want in ["keepalive_idle_ms = 75000", "header_read_ms = 10000", "ring_entries = 1024", "header = \"x-api-key\"", "workers = 2\n"] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
        assert!(!text.contains("very-secret") && !text.contains("9f86d08"), "{text}");
        // a restart-only change: the running value, marked
        g.write_config(&conf(1));
        g.reload().unwrap();
        let text = get(admin, "/config").text();
        assert!(
            text.contains("workers = 2  # running; the file has 1, applies after restart\n"),
            "{text}"
        );
        // valid TOML that compiles as a config, the redacted secrets aside
        let again = text
            .replace("value_sha256 = \"<redacted>\"", "value = \"another-secret-0123456789\"")
            .replace("value = \"<redacted>\"", "value = \"some-secret-0123456789\"");
        match tollgate::config::from_str(&again) {
            Err(e) => panic!("{}\n{again}", e.render("GET /config")),
            Ok(c) => {
                let ini = c.routes.iter().find(|r| r.id == "GET /ini").map(|r| format!("{:?}", r));
                assert!(ini.is_some_and(|r| r.contains("workers = 1\\n") && !r.contains("# running")), "{again}");
            }
        }
        assert_eq!(get(g.addr, "/ini").text(), "[server]\nworkers = 1\n");
    }

    fn pooled_upstream_connections_carry_over(d) {
        let origin = Origin::echo();
        let conf = |timeout: u64, extra: &str| {
            server_toml(d, 1, "")
                + &upstream_toml("o", &[origin.addr], &format!("response_timeout_ms = {timeout}"))
                + "[[route]]\nkey = \"GET /a\"\nupstream = \"o\"\n"
                + extra
        };
        let g = Gateway::from_toml(&conf(3000, ""));
        assert_eq!(get(g.addr, "/a").status, 200);
        assert_eq!(get(g.addr, "/a").status, 200);
        assert_eq!(origin.connections(), 1);
        // unrelated change: the upstream is the same object, pool and all
        g.write_config(&conf(3000, &mock_route("GET /m", "m")));
        g.reload().unwrap();
        assert_eq!(get(g.addr, "/a").status, 200);
        assert_eq!(origin.connections(), 1, "the pooled connection was reused");
        // a changed upstream setting: same target address, so idle connections are adopted
        g.write_config(&conf(4000, ""));
        g.reload().unwrap();
        assert_eq!(get(g.addr, "/a").status, 200);
        assert_eq!(origin.connections(), 1, "idle connections of an unchanged target are adopted");
        let reqs = origin.requests();
        assert_eq!(reqs.len(), 4);
        assert!(reqs.iter().all(|r| r.conn == 0));
    }

    fn tokens_quotas_and_metrics_carry_over(d) {
        let conf = |quota: u64, extra: &str| {
            server_toml(d, 2, "")
                + ADMIN
                + "[[route]]\nkey = \"GET /limited\"\nmock = { status = 200, body = \"ok\" }\nthrottle = { rate = 1, burst = 5 }\n"
                + "[[route]]\nkey = \"GET /q\"\nmock = { status = 200, body = \"q\" }\napi_key_required = true\n"
                + &format!("[[usage_plan]]\nname = \"p\"\nquota = {{ limit = {quota}, period = \"day\" }}\n")
                + "[[api_key]]\nname = \"k\"\nvalue = \"key-0123456789abcdef0123\"\nplan = \"p\"\n"
                + extra
        };
        let key = "key-0123456789abcdef0123";
        let g = Gateway::from_toml(&conf(10, ""));
        let admin = g.handle().admin_addr().unwrap();
        let mut c = Client::new(g.addr);
        let statuses = |c: &mut Client, raw: &[u8], n: usize| -> Vec<u16> {
            (0..n).map(|_| { c.send(raw); c.read(false).unwrap().status }).collect()
        };
        let limited = b"GET /limited HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(statuses(&mut c, limited, 5), vec![200; 5]);
        assert_eq!(statuses(&mut c, &keyed("/q", key), 6), vec![200; 6]);
        g.write_config(&conf(10, &mock_route("GET /other", "x")));
        g.reload().unwrap();
        // the spent burst stays spent (rate 1/s: at most one token came back meanwhile)
        let after = statuses(&mut c, limited, 3);
        assert!(after.iter().filter(|&&s| s == 200).count() <= 1, "{after:?}");
        assert!(after.contains(&429), "{after:?}");
        // the quota's usage stays: 4 left of 10
        let q = statuses(&mut c, &keyed("/q", key), 6);
        assert_eq!(q, vec![200, 200, 200, 200, 429, 429], "{q:?}");
        // raising the limit keeps the usage of the period: 2 more of 12
        g.write_config(&conf(12, ""));
        g.reload().unwrap();
        let q = statuses(&mut c, &keyed("/q", key), 3);
        assert_eq!(q, vec![200, 200, 429], "{q:?}");
        // metrics of unchanged routes carry over: 5 + 3 on /limited, across the reloads
        assert_eq!(requests_total(admin, "GET /limited"), 8);
        assert_eq!(requests_total(admin, "GET /q"), 15);
    }

    fn twenty_reloads_under_load_fail_no_request(d) {
        let origin = Origin::echo();
        let conf = |i: usize| {
            server_toml(d, 2, "")
                + ADMIN
                + &upstream_toml("o", &[origin.addr], "")
                + "[[route]]\nkey = \"GET /p/{proxy+}\"\nupstream = \"o\"\n"
                + &mock_route("GET /m", if i.is_multiple_of(2) { "even" } else { "odd" })
                + &format!("[[route]]\nkey = \"GET /gen{i}\"\nmock = {{ status = 200, body = \"g\" }}\n")
        };
        let g = Gateway::from_toml(&conf(0));
        let admin = g.handle().admin_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let clients: Vec<_> = (0..6)
            .map(|t| {
                let (stop, ok, bad, addr) = (stop.clone(), ok.clone(), bad.clone(), g.addr);
                thread::spawn(move || {
                    let mut c = Client::new(addr);
                    let mut i = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        let path = if (i + t).is_multiple_of(2) { "/m".to_string() } else { format!("/p/{t}/{i}") };
                        c.send(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
                        match c.read(false) {
                            Some(r) if r.status == 200 && (path != "/m" || r.text() == "even" || r.text() == "odd") => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => {
                                bad.fetch_add(1, Ordering::Relaxed);
                                eprintln!("failed {path}: {other:?}");
                                c = Client::new(addr);
                            }
                        }
                        i += 1;
                        // every 50 requests a new connection, so accepts run across reloads too
                        if i.is_multiple_of(50) {
                            c = Client::new(addr);
                        }
                    }
                })
            })
            .collect();
        for i in 1..=20 {
            thread::sleep(Duration::from_millis(40));
            g.write_config(&conf(i));
            let r = g.reload().unwrap_or_else(|e| panic!("reload {i}: {e}"));
            assert_eq!(r.generation, i as u64);
        }
        thread::sleep(Duration::from_millis(40));
        stop.store(true, Ordering::Release);
        for c in clients {
            c.join().unwrap();
        }
        assert_eq!(bad.load(Ordering::Relaxed), 0, "no request may fail across reloads");
        let served = ok.load(Ordering::Relaxed);
        assert!(served > 200, "load ran throughout ({served} requests)");
        assert_eq!(get(g.addr, "/m").text(), "even", "the last config (20) is served");
        // every request was counted exactly once, whichever generation served it
        let counted = requests_total(admin, "GET /m") + requests_total(admin, "GET /p/{proxy+}");
        assert_eq!(counted, served + 1);
    }

    fn same_key_on_two_hosts_keeps_two_identities(d) {
        let conf = |extra: &str| {
            server_toml(d, 1, "")
                + ADMIN
                + "[[route]]\nkey = \"GET /a\"\nhost = \"x.test\"\nmock = { status = 200, body = \"x\" }\nthrottle = { rate = 1, burst = 2 }\n"
                + "[[route]]\nkey = \"GET /a\"\nmock = { status = 200, body = \"any\" }\nthrottle = { rate = 1, burst = 3 }\n"
                + extra
        };
        let g = Gateway::from_toml(&conf(""));
        let admin = g.handle().admin_addr().unwrap();
        let on = |host: &str| roundtrip(g.addr, format!("GET /a HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).status;
        let x: Vec<u16> = (0..2).map(|_| on("x.test")).collect();
        let any: Vec<u16> = (0..3).map(|_| on("other.test")).collect();
        assert_eq!((x, any), (vec![200; 2], vec![200; 3]));
        g.write_config(&conf(&mock_route("GET /b", "b")));
        g.reload().unwrap();
        // each route keeps its own spent bucket: neither refilled, neither shared
        assert_eq!(on("x.test"), 429);
        assert_eq!(on("other.test"), 429);
        let m = get(admin, "/metrics").text();
        let total = |route: &str| -> u64 {
            m.lines()
                .filter(|l| l.starts_with("tollgate_requests_total{") && l.contains(&format!("route=\"{route}\"")))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
                .sum()
        };
        assert_eq!(total("GET /a @x.test"), 3);
        assert_eq!(total("GET /a"), 4);
    }

    fn removing_a_health_check_brings_its_targets_back(d) {
        let origin = Origin::start(|r| {
            if r.target == "/health" {
                Reply::Raw(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n".to_vec())
            } else {
                Reply::ok("up")
            }
        });
        let conf = |health: &str| {
            server_toml(d, 2, "")
                + &upstream_toml("o", &[origin.addr], health)
                + "[[route]]\nkey = \"GET /a\"\nupstream = \"o\"\n"
        };
        let g = Gateway::from_toml(&conf(
            "health = { path = \"/health\", interval_ms = 20, timeout_ms = 500, healthy = 1, unhealthy = 1 }",
        ));
        let t = std::time::Instant::now();
        while get(g.addr, "/a").status != 503 {
            assert!(t.elapsed() < Duration::from_secs(5), "the failing check never marked the target down");
            thread::sleep(Duration::from_millis(20));
        }
        g.write_config(&conf(""));
        g.reload().unwrap();
        for _ in 0..4 {
            assert_eq!(get(g.addr, "/a").text(), "up");
        }
    }
}
