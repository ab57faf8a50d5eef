//! What `tollgate check` reports: every error of a file in one run (structural and semantic),
//! sorted by line, each with its dotted key; numeric ranges; route conflicts; target ports;
//! duplicate API key secrets.

use super::*;

/// The errors (shared by the other config test modules) of `text` as `(line, key, message)`.
pub(super) fn errors(text: &str) -> Vec<(usize, String, String)> {
    match from_str(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.line, e.key, e.message))
                .collect()
        }
    }
}

pub(super) fn keys_and_lines(text: &str) -> Vec<(usize, String)> {
    errors(text).into_iter().map(|(l, k, _)| (l, k)).collect()
}

const ROUTE: &str = "[[route]]\nkey = \"GET /x\"\nmock = {}\n";

#[test]
fn three_type_errors_and_a_semantic_one_in_one_run_sorted_by_line() {
    let text = r#"[[route]]
key = "GET /a"
upstream = "nowhere"

[server]
workers = "two"
pin_cores = 3

[[upstream]]
name = "u"
targets = ["127.0.0.1:1"]
connect_timeout_ms = "slow"
"#;
    let e = errors(text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (3, "route[0].upstream"),
            (6, "server.workers"),
            (7, "server.pin_cores"),
            (12, "upstream[0].connect_timeout_ms"),
        ],
        "{e:?}"
    );
    assert!(e[0].2.contains("unknown upstream"), "{e:?}");
    assert!(e[1].2.contains("expected a whole number"), "{e:?}");
    assert!(e[2].2.contains("expected true or false"), "{e:?}");
}

#[test]
fn unknown_keys_anywhere_are_all_reported() {
    let text =
        "[server]\nworkerz = 2\n[[route]]\nkey = \"GET /x\"\nmock = { stat = 1 }\nhots = \"a\"\n";
    assert_eq!(
        keys_and_lines(text),
        vec![
            (2, "server.workerz".to_string()),
            (5, "route[0].mock.stat".to_string()),
            (6, "route[0].hots".to_string()),
        ]
    );
}

#[test]
fn a_required_key_is_reported_missing_once() {
    // wrong type of a required key: one error, not also "missing"; the route is left out, so
    // cross-checks (which would see index-shifted routes) are skipped
    let text =
        "[[route]]\nkey = 5\nmock = {}\n[[route]]\nkey = \"GET /y\"\nmock = { status = \"x\" }\n";
    assert_eq!(
        keys_and_lines(text),
        vec![
            (2, "route[0].key".to_string()),
            (6, "route[1].mock.status".to_string()),
        ]
    );
    // really missing: named with its table
    let text = format!("{ROUTE}[[upstream]]\nname = \"a\"\n");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (4, "upstream[0].targets"));
    assert!(e[0].2.contains("missing"), "{e:?}");
}

#[test]
fn inline_tables_arrays_and_dotted_keys_recover() {
    let text = r#"[server]
timeouts.write_ms = "x"
listen = "127.0.0.1:0"

[[upstream]]
name = "u"
targets = ["127.0.0.1:1", 5]

[[route]]
key = "GET /x"
mock = { body = "b", status = "x" }
throttle = { rate = 1, burst = "x" }
"#;
    assert_eq!(
        keys_and_lines(text),
        vec![
            (2, "server.timeouts.write_ms".to_string()),
            (3, "server.listen".to_string()),
            (7, "upstream[0].targets[1]".to_string()),
            (11, "route[0].mock.status".to_string()),
            (12, "route[0].throttle.burst".to_string()),
        ]
    );
}

#[test]
fn semantic_errors_caused_by_a_set_aside_entry_are_not_reported() {
    // `mock = 5` is a type error; without it the route has no integration, which must not be
    // reported again. The unrelated semantic error on route[1] still is.
    let text =
        "[[route]]\nkey = \"GET /x\"\nmock = 5\n[[route]]\nkey = \"GET /y\"\nupstream = \"no\"\n";
    assert_eq!(
        keys_and_lines(text),
        vec![
            (3, "route[0].mock".to_string()),
            (6, "route[1].upstream".to_string()),
        ]
    );
}

#[test]
fn type_errors_speak_toml_not_rust() {
    let e = errors("route = [1]\nupstream = { name = \"x\" }\n[server]\nlisten = \"a\"\n");
    let msgs: Vec<&str> = e.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(
        msgs,
        vec![
            "invalid type: integer `1`, expected a table",
            "invalid type: table, expected an array",
            "invalid type: string \"a\", expected an array",
        ]
    );
}

#[test]
fn a_syntax_error_is_one_error_with_its_line() {
    let e = errors("[server]\nworkers = 2\nlisten = [\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].1, "toml");
    assert!(e[0].0 >= 3, "{e:?}");
}

#[test]
fn empty_file_and_file_without_routes_say_no_routes() {
    for text in ["", "\n# nothing\n", "[server]\nworkers = 1\n"] {
        let e = errors(text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].1, "route");
        assert!(e[0].2.contains("no routes"), "{e:?}");
        let r = from_str(text).unwrap_err().render("t.toml");
        assert!(r.starts_with("t.toml:1:1: route: no routes"), "{r}");
    }
    assert!(from_str(EMBEDDED_CONFIG).is_ok());
}

#[test]
fn route_conflict_names_both_routes_and_lines() {
    let text = "[[route]]\nkey = \"GET /p/{id}\"\nmock = {}\n\n[[route]]\nkey = \"GET /q\"\nmock = {}\n[[route]]\nkey = \"GET /p/{x}\"\nmock = {}\n";
    let r = from_str(text).unwrap_err().render("t.toml");
    assert_eq!(
        r.trim_end(),
        "t.toml:9:7: route[2].key: route \"GET /p/{x}\" conflicts with route \"GET /p/{id}\" \
         (same method and path shape); route[0] is at line 2"
    );
}

#[test]
fn target_without_port_says_so() {
    let cases = [
        (
            "localhost",
            "\"localhost\" has no port; write \"localhost:80\"",
        ),
        ("[::1]", "\"[::1]\" has no port; write \"[::1]:80\""),
        ("::1", "an IPv6 address needs brackets"),
        ("localhost:http", "port \"http\" is not a number"),
        ("localhost:0", "port 0"),
        (":80", "has no host"),
    ];
    for (target, want) in cases {
        let text = format!(
            "{ROUTE}[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:1\", \"{target}\"]\n"
        );
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{target}: {e:?}");
        assert_eq!((e[0].0, e[0].1.as_str()), (6, "upstream[0].targets[1]"));
        assert!(e[0].2.contains(want), "{target}: {e:?}");
    }
    let ok =
        format!("{ROUTE}[[upstream]]\nname = \"u\"\ntargets = [\"localhost:80\", \"[::1]:80\"]\n");
    from_str(&ok).unwrap();
}

#[test]
fn listen_address_without_port_says_so() {
    // a listen address without a port said only "cannot resolve"
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1\", \"[::1]\", \"nowhere.invalid:0\"]\n\
         [admin]\nlisten = \"localhost\"\n{ROUTE}"
    );
    let e = errors(&text);
    let got: Vec<(usize, &str, &str)> = e
        .iter()
        .map(|(l, k, m)| (*l, k.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                2,
                "server.listen[0]",
                "\"127.0.0.1\" has no port; write \"127.0.0.1:8080\""
            ),
            (
                2,
                "server.listen[1]",
                "\"[::1]\" has no port; write \"[::1]:8080\""
            ),
            (
                2,
                "server.listen[2]",
                "cannot resolve \"nowhere.invalid:0\" as host:port"
            ),
            (
                4,
                "admin.listen",
                "\"localhost\" has no port; write \"localhost:8080\""
            ),
        ],
        "{e:?}"
    );
}

#[test]
fn same_secret_as_value_and_as_value_sha256_is_a_duplicate() {
    use sha2::Digest;
    let secret = "s3cret-key-0123456789";
    let hex: String = sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let text = format!(
        "{ROUTE}[[api_key]]\nname = \"alice\"\nvalue_sha256 = \"{hex}\"\n\n[[api_key]]\nname = \"bob\"\nvalue = \"{secret}\"\n"
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (10, "api_key[1].value"));
    assert!(e[0].2.contains("api_key[0] \"alice\" (line 5)"), "{e:?}");
    // and the other way round, and two plain values
    let text = format!(
        "{ROUTE}[[api_key]]\nname = \"a\"\nvalue = \"{secret}\"\n[[api_key]]\nname = \"b\"\nvalue_sha256 = \"{hex}\"\n[[api_key]]\nname = \"c\"\nvalue = \"{secret}\"\n"
    );
    assert_eq!(
        keys_and_lines(&text),
        vec![
            (9, "api_key[1].value_sha256".to_string()),
            (12, "api_key[2].value".to_string()),
        ]
    );
}

/// Every numeric setting: a value outside its range is refused with its key, its line and
/// the range; nothing is clamped silently.
#[test]
fn every_bound_is_refused_with_key_and_line() {
    let up = "[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:1\"]\n";
    let cases: Vec<(String, &str)> = vec![
        ("[server]\nworkers = 100000".into(), "server.workers"),
        ("[server]\nring_entries = 4".into(), "server.ring_entries"),
        (
            "[server]\nmax_connections = 0".into(),
            "server.max_connections",
        ),
        (
            "[server]\nread_buffer_bytes = 10".into(),
            "server.read_buffer_bytes",
        ),
        ("[server]\nbacklog = 1".into(), "server.backlog"),
        (
            "[server.limits]\nmax_head_bytes = 10".into(),
            "server.limits.max_head_bytes",
        ),
        (
            "[server.limits]\nmax_uri_bytes = 8".into(),
            "server.limits.max_uri_bytes",
        ),
        (
            "[server.limits]\nmax_headers = 0".into(),
            "server.limits.max_headers",
        ),
        (
            "[server.limits]\nmax_body_bytes = 2199023255552".into(),
            "server.limits.max_body_bytes",
        ),
        (
            "[server.timeouts]\nheader_read_ms = 0".into(),
            "server.timeouts.header_read_ms",
        ),
        (
            "[server.timeouts]\nbody_read_ms = 0".into(),
            "server.timeouts.body_read_ms",
        ),
        (
            "[server.timeouts]\nkeepalive_idle_ms = 0".into(),
            "server.timeouts.keepalive_idle_ms",
        ),
        (
            "[server.timeouts]\nwrite_ms = 0".into(),
            "server.timeouts.write_ms",
        ),
        (
            "[server.timeouts]\nshutdown_ms = 3600001".into(),
            "server.timeouts.shutdown_ms",
        ),
        (
            format!("{up}connect_timeout_ms = 0"),
            "upstream[0].connect_timeout_ms",
        ),
        (
            format!("{up}response_timeout_ms = 0"),
            "upstream[0].response_timeout_ms",
        ),
        (
            format!("{up}idle_timeout_ms = 0"),
            "upstream[0].idle_timeout_ms",
        ),
        (
            format!("{up}max_idle_per_worker = 100000"),
            "upstream[0].max_idle_per_worker",
        ),
        (
            format!("{up}passive_failures = 1001"),
            "upstream[0].passive_failures",
        ),
        (
            format!("{up}passive_cooldown_ms = 0"),
            "upstream[0].passive_cooldown_ms",
        ),
        (
            format!("{up}health = {{ path = \"/h\", interval_ms = 5 }}"),
            "upstream[0].health.interval_ms",
        ),
        (
            format!("{up}health = {{ path = \"/h\", timeout_ms = 0 }}"),
            "upstream[0].health.timeout_ms",
        ),
        (
            format!("{up}health = {{ path = \"/h\", healthy = 0 }}"),
            "upstream[0].health.healthy",
        ),
        (
            format!("{up}health = {{ path = \"/h\", unhealthy = 101 }}"),
            "upstream[0].health.unhealthy",
        ),
        (
            "[throttle]\nsync_interval_ms = 0".into(),
            "throttle.sync_interval_ms",
        ),
        ("[api_keys]\nflush_ms = 5".into(), "api_keys.flush_ms"),
        (
            "[access_log]\npath = \"-\"\nbuffer_bytes = 10".into(),
            "access_log.buffer_bytes",
        ),
        (
            "[access_log]\npath = \"-\"\nflush_ms = 0".into(),
            "access_log.flush_ms",
        ),
        (
            "[[usage_plan]]\nname = \"p\"\nthrottle = { rate = 1, burst = 1, max_clients = 1 }"
                .into(),
            "usage_plan[0].throttle.max_clients",
        ),
        (
            "[[usage_plan]]\nname = \"p\"\nquota = { limit = 0, period = \"day\" }".into(),
            "usage_plan[0].quota.limit",
        ),
        (
            "[[usage_plan]]\nname = \"p\"\nthrottle = { rate = 0, burst = 1 }".into(),
            "usage_plan[0].throttle.rate",
        ),
        (
            "[[usage_plan]]\nname = \"p\"\nthrottle = { rate = 1, burst = 0 }".into(),
            "usage_plan[0].throttle.burst",
        ),
        (
            "[[usage_plan]]\nname = \"p\"\nquota = { limit = 5, period = \"week\", offset = 7 }"
                .into(),
            "usage_plan[0].quota.offset",
        ),
    ];
    for (section, key) in cases {
        let text = format!("{ROUTE}{section}\n");
        let line = text.lines().count();
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{key}: {e:?}");
        assert_eq!((e[0].0, e[0].1.as_str()), (line, key), "{e:?}");
        assert!(
            e[0].2.contains("must be") && (e[0].2.contains("..") || e[0].2.contains("]")),
            "{key}: no range in {:?}",
            e[0].2
        );
    }
}

#[test]
fn edge_values_that_mean_something_are_accepted() {
    let up = "[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:1\"]\n";
    let text = format!(
        "{ROUTE}[server]\nworkers = 0\n[server.timeouts]\nshutdown_ms = 0\n[server.limits]\nmax_body_bytes = 0\n{up}max_idle_per_worker = 0\npassive_failures = 0\n"
    );
    let c = from_str(&text).unwrap();
    assert!(c.server.workers >= 1);
    assert_eq!(c.server.timeouts.shutdown, std::time::Duration::ZERO);
    let text = format!("{ROUTE}[server]\nworkers = {}\n", raw::MAX_WORKERS);
    assert_eq!(from_str(&text).unwrap().server.workers, raw::MAX_WORKERS);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Values and keys that break the schema in different ways.
    const NOISE: &[&str] = &[
        "\"x\"",
        "0",
        "-1",
        "true",
        "[1, \"a\"]",
        "{ a = 1 }",
        "bogus = 1\n",
        "[[route]]\n",
        "[x]\n",
        "1.5",
        "\"\"",
        "{}",
        "[]",
        "\n[servr]\nx = 1\n",
        "\n[[rout]]\nkey = 1\n",
        "\nmock.status = \"x\"\n",
        "\nthrottle.rate = 1\n",
        "\na.b.\"c d\" = 1\n",
        "[{ key = 5 }, { mock = {} }]",
        "\u{ff}\u{1}",
        "99999999999999999999",
        "[-99999999999999999999, 1]",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]

        /// Recovery never panics, always terminates, and whatever it reports is sorted by line
        /// and located in the file.
        #[test]
        fn recovery_never_panics_and_reports_in_order(
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0..NOISE.len(), 0usize..12), 1..6)
        ) {
            let mut text = EMBEDDED_CONFIG.to_string();
            for (at, noise, cut) in edits {
                // replace a value (from after a `=` to the end of its line) or splice noise in
                let mut i = at.index(text.len().max(1));
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                if let Some(eq) = text[i..].find("= ") {
                    let start = i + eq + 2;
                    let end = text[start..].find('\n').map_or(text.len(), |n| start + n);
                    text.replace_range(start..end, NOISE[noise]);
                } else {
                    let end = (i + cut).min(text.len());
                    let end = (end..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap_or(text.len());
                    text.replace_range(i..end, NOISE[noise]);
                }
            }
            let lines = text.lines().count().max(1) + 1;
            if let Err(e) = from_str(&text) {
                prop_assert!(!e.0.is_empty());
                let pos: Vec<(usize, usize)> = e.0.iter().map(|e| (e.line, e.column)).collect();
                let mut sorted = pos.clone();
                sorted.sort();
                prop_assert_eq!(&pos, &sorted);
                for err in &e.0 {
                    prop_assert!(err.line >= 1 && err.line <= lines, "{:?}", err);
                    prop_assert!(!err.key.is_empty() && !err.message.is_empty(), "{:?}", err);
                }
            }
        }
    }
}

#[test]
fn unknown_tables_and_arrays_of_tables_are_named_and_recovery_goes_on() {
    // a misspelt section, sub-section or array of tables is one error each, under its own
    // name, and the rest of the file is still checked (these used to stop at the first one,
    // reported under `toml`)
    let text = "[servr]\nworkers = 1\n[servr.sub]\nx = 1\n\
                [server.limitz]\nx = 1\n[server]\nworkerz = 2\n\
                [[rout]]\nkey = \"GET /a\"\n[[rout]]\nkey = \"GET /b\"\n\
                nested.dotted = 1\n\
                [[route]]\nkey = \"GET /x\"\nmock = { status = \"x\" }\n";
    let e = errors(text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (1, "servr"),
            (5, "server.limitz"),
            (8, "server.workerz"),
            (9, "rout"),
            (16, "route[0].mock.status"),
        ],
        "{e:?}"
    );
    assert!(e[0].2.contains("unknown field `servr`"), "{e:?}");
    // a dotted key at the top level is the same
    assert_eq!(
        keys_and_lines(&format!("servr.a.b = 1\n{ROUTE}[[upstream]]\nname = 5\n")),
        vec![
            (1, "servr".to_string()),
            (6, "upstream[0].name".to_string())
        ]
    );
}

#[test]
fn spanned_inline_header_and_dotted_tables() {
    // dotted keys are TOML like any other way of writing a table: a valid file is accepted
    // (it used to fail with "expected a borrowed string")
    let text = "[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:1\"]\n\
                health.path = \"/h\"\nhealth.interval_ms = 1000\n\
                [[route]]\nkey = \"GET /a\"\nmock.status = 201\nmock.headers.x-a = \"1\"\n\
                throttle.rate = 5\nthrottle.burst = 10\n\
                [[route]]\nkey = \"GET /b\"\nupstream = \"u\"\n\
                [[usage_plan]]\nname = \"p\"\nthrottle.rate = 1\nthrottle.burst = 1\n\
                quota.limit = 10\nquota.period = \"day\"\nroutes.\"GET /a\".rate = 1\n\
                routes.\"GET /a\".burst = 2\n";
    let c = from_str(text).unwrap_or_else(|e| panic!("{}", e.render("t")));
    match c.routes.first().map(|r| &r.integration) {
        Some(Integration::Mock(m)) => assert_eq!(m.status, 201),
        _ => panic!("route 0 is a mock"),
    }
    // errors inside a dotted table name their key and line: structural (the value's span) and
    // semantic (the table has no span of its own: the error is placed at its key)
    let text = "[[route]]\nkey = \"GET /a\"\nmock.status = \"x\"\n\
                [[route]]\nkey = \"GET /b\"\nmock = {}\nthrottle.rate = 5\nthrottle.burst = 0\n";
    assert_eq!(
        keys_and_lines(text),
        vec![
            (3, "route[0].mock.status".to_string()),
            (8, "route[1].throttle.burst".to_string()),
        ]
    );
    // inline and header tables keep their own span
    let text = "[[route]]\nkey = \"GET /a\"\nmock = {}\nthrottle = { rate = 5, burst = 0 }\n\
                [[route]]\nkey = \"GET /b\"\nmock = {}\n[route.throttle]\nrate = 5\nburst = 0\n";
    assert_eq!(
        keys_and_lines(text),
        vec![
            (4, "route[0].throttle.burst".to_string()),
            (8, "route[1].throttle.burst".to_string()),
        ]
    );
}

#[test]
fn a_file_that_is_not_utf8_is_located() {
    let path = std::env::temp_dir().join(format!("tollgate-check-{}.toml", std::process::id()));
    std::fs::write(&path, b"[[route]]\nkey = \"GET /\xff\"\nmock = {}\n").unwrap();
    let e = load(&path).err().unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    let want = format!(
        "{}:2:13: file: not UTF-8 text (byte 0xff); TOML files are UTF-8\n",
        path.display()
    );
    assert_eq!(e, want);
}

#[test]
fn inline_tables_inside_arrays_recover_entry_by_entry() {
    // an array of inline tables: each wrong entry is reported under its own key (it used to be
    // one error for the whole array, `route[0]`, and nothing else)
    let text = "route = [\n  { key = \"GET /a\", mock = { status = \"x\" } },\n  \
                { key = 5, mock = {} },\n  { key = \"GET /c\", mock = {}, hots = 1 },\n  { mock = {} },\n]\n";
    assert_eq!(
        keys_and_lines(text),
        vec![
            (2, "route[0].mock.status".to_string()),
            (3, "route[1].key".to_string()),
            (4, "route[2].hots".to_string()),
            (5, "route[3].key".to_string()),
        ]
    );
}

#[test]
fn a_duplicate_key_is_named() {
    let e = errors(&format!("[server]\nworkers = 1\nworkers = 2\n{ROUTE}"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (3, "server.workers"), "{e:?}");
    assert!(e[0].2.contains("duplicate key"), "{e:?}");
    let e = errors(&format!("a = 1\na = 2\n{ROUTE}"));
    assert_eq!((e[0].0, e[0].1.as_str()), (2, "a"), "{e:?}");
}

#[test]
fn every_message_is_one_line_and_says_the_real_range() {
    // a syntax error whose parser message has two lines is one line
    let e = errors("[server]\nworkers = \n[[route]]\nkey = \"GET /a\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(!e[0].2.contains('\n') && e[0].2.contains("; "), "{e:?}");
    // a number too large for a small field says how large it may be, not ">= 0"
    let e = errors("[[route]]\nkey = \"GET /a\"\nmock = { status = 9223372036854775807 }\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].2.ends_with("expected a whole number in 0..=65535"),
        "{e:?}"
    );
}

#[test]
fn value_sha256_takes_hex_digits_only() {
    // 32 pairs of "+f" are 64 characters that `u8::from_str_radix` would each read as 0x0f
    let signed = "+f".repeat(32);
    let text = format!("{ROUTE}[[api_key]]\nname = \"a\"\nvalue_sha256 = \"{signed}\"\n");
    assert_eq!(
        keys_and_lines(&text),
        vec![(6, "api_key[0].value_sha256".to_string())]
    );
}

#[test]
fn a_syntax_error_always_says_something() {
    // a control character in a comment: the parser's own message is empty
    let e = errors(&format!("# a = \u{ff}\u{1}\n{ROUTE}"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (1, "toml"), "{e:?}");
    assert_eq!(e[0].2, "not valid TOML here ('\\u{1}')", "{e:?}");
}

#[test]
fn a_table_element_missing_a_required_key_does_not_hide_the_others_errors() {
    // route[1] has no key and upstream[0] no targets: both are reported, and the semantic
    // errors of the rest still are, with the file's indices (they used to be skipped); the
    // route naming the set-aside upstream gets no follow-on "unknown upstream"
    let text = "[[upstream]]\nname = \"u\"\n\
                [[route]]\nkey = \"GET /a\"\nupstream = \"u\"\n\
                [[route]]\nupstream = \"u\"\n\
                [[route]]\nkey = \"GET /c\"\nupstream = \"nope\"\n\
                [[route]]\nkey = \"GET /a\"\nmock = {}\n";
    let e = errors(text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (1, "upstream[0].targets"),
            (6, "route[1].key"),
            (10, "route[2].upstream"),
            (12, "route[3].key"),
        ],
        "{e:?}"
    );
    assert!(e[2].2.contains("unknown upstream \"nope\""), "{e:?}");
    // the conflict names the other route by its index in the file
    assert!(e[3].2.contains("route[0] is at line 4"), "{e:?}");
    // a set-aside element's sub-table goes with it (it must not become the previous
    // element's: route[0] would then have two integrations)
    let text = "[[route]]\nkey = \"GET /a\"\nupstream = \"nope\"\n\
                [[route]]\n[route.mock]\nstatus = 200\n";
    assert_eq!(
        keys_and_lines(text),
        vec![
            (3, "route[0].upstream".to_string()),
            (4, "route[1].key".to_string())
        ]
    );
}

#[test]
fn the_api_key_header_is_not_a_field_tollgate_interprets() {
    // x-request-id would be logged and echoed, x-forwarded-for kept in the chain sent to the
    // origin, host forwarded: strip_api_key could not keep the key to the gateway
    for name in [
        "X-Request-Id",
        "x-forwarded-for",
        "host",
        "content-length",
        "proxy-x",
    ] {
        let text = format!("{ROUTE}[api_keys]\nheader = \"{name}\"\n");
        assert_eq!(
            keys_and_lines(&text),
            vec![(5, "api_keys.header".to_string())],
            "{name}"
        );
    }
    from_str(&format!("{ROUTE}[api_keys]\nheader = \"X-Tenant-Key\"\n")).unwrap();
}

#[test]
fn integers_beyond_64_bits_are_reported_and_the_rest_still_checked() {
    // not representable in TOML, so a parse error: it used to be the only error of the run
    let text = "[server]\nworkers = 99999999999999999999\nlisten = [\"127.0.0.1:1\", -99_999_999_999_999_999_999]\n\
                [[route]]\nkey = \"GET /a\"\nmock = { status = 0x1ffffffffffffffff }\n\
                [[route]]\nkey = \"GET /b\"\nupstream = \"nope\"\n";
    let e = errors(text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2, "server.workers"),
            (3, "server.listen[1]"),
            (6, "route[0].mock.status"),
            (9, "route[1].upstream"),
        ],
        "{e:?}"
    );
    assert_eq!(e[0].2, "99999999999999999999: TOML integers are 64-bit");
    assert_eq!(
        e[1].2,
        "-99_999_999_999_999_999_999: TOML integers are 64-bit"
    );
}

#[test]
fn every_error_of_one_limit_or_quota_is_reported_in_one_run() {
    // a bad rate used to hide the burst and max_clients errors beside it (three runs for one
    // line), and a bad quota limit the offset error
    let text = "[[usage_plan]]\nname = \"p\"\n\
        throttle = { rate = 0, burst = 0, max_clients = 1, throttle_by = \"cookie\" }\n\
        quota = { limit = 0, period = \"day\", offset = 1, utc_offset = \"UTC\" }\n\
        [[route]]\nkey = \"GET /x\"\nmock = { status = 199 }\n";
    let e = errors(text);
    let got: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (3, "usage_plan[0].throttle.rate"),
            (3, "usage_plan[0].throttle.burst"),
            (3, "usage_plan[0].throttle.throttle_by"),
            (3, "usage_plan[0].throttle.max_clients"),
            (4, "usage_plan[0].quota.limit"),
            (4, "usage_plan[0].quota.offset"),
            (4, "usage_plan[0].quota.utc_offset"),
            (7, "route[0].mock.status"),
        ],
        "{e:?}"
    );
    // each range error says the range and the value it got
    assert_eq!(
        e[5].2, "must be in 0..=0 for period = \"day\" (got 1)",
        "{e:?}"
    );
    assert_eq!(e[7].2, "must be in 200..=599 (got 199)", "{e:?}");
}

#[test]
fn every_bad_header_of_a_mock_is_reported_in_one_run() {
    // the first refused header used to hide the others (and a 204 body the headers)
    let text = "[[route]]\nkey = \"GET /a\"\n\
        mock = { status = 204, body = \"x\", headers = { \"Content-Length\" = \"3\", \
        \"x-request-id\" = \"a\", \"bad name\" = \"v\", \"x-ok\" = \"1\" } }\n";
    let e = errors(text);
    let got: Vec<(&str, &str)> = e.iter().map(|(_, k, m)| (k.as_str(), m.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (
                "route[0].mock.body",
                "must be empty: status 204 has no content"
            ),
            (
                "route[0].mock.headers",
                "header \"Content-Length\" is set by tollgate (framing, hop-by-hop, date, \
                 x-request-id)"
            ),
            (
                "route[0].mock.headers",
                "header \"bad name\" is not a valid field name or value"
            ),
            (
                "route[0].mock.headers",
                "header \"x-request-id\" is set by tollgate (framing, hop-by-hop, date, \
                 x-request-id)"
            ),
        ],
        "{e:?}"
    );
}

#[test]
fn a_bad_health_path_does_not_hide_the_health_numbers() {
    let text = format!(
        "{ROUTE}[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:1\"]\n\
         health = {{ path = \"health\", interval_ms = 1, healthy = 0 }}\n"
    );
    let keys: Vec<String> = errors(&text).into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "upstream[0].health.path",
            "upstream[0].health.interval_ms",
            "upstream[0].health.healthy"
        ],
    );
}

#[test]
fn an_unknown_upstream_does_not_hide_the_path_rewrite_error() {
    let text = "[[route]]\nkey = \"GET /a/{id}\"\nupstream = \"nope\"\npath = \"/b/{other}\"\n";
    let got = keys_and_lines(text);
    assert_eq!(
        got,
        [
            (3, "route[0].upstream".to_string()),
            (4, "route[0].path".to_string())
        ]
    );
}

/// A mock's own `strict-transport-security` is noted at load, so the response filter sends it
/// instead of `tls.hsts`, not beside it; a mock without one reports nothing present.
#[test]
fn a_mocks_own_hsts_is_noted_for_the_response_filter() {
    let text = "[[route]]\nkey = \"GET /a\"\n\
                mock = { headers = { Strict-Transport-Security = \"max-age=5\" } }\n\
                [[route]]\nkey = \"GET /b\"\nmock = { body = \"b\" }\n";
    let c = from_str(text).unwrap_or_else(|e| panic!("{}", e.render("t")));
    let present: Vec<crate::http::Present> = c
        .routes
        .iter()
        .map(|r| match &r.integration {
            Integration::Mock(m) => m.present,
            _ => panic!("a mock"),
        })
        .collect();
    let hsts = crate::http::Present {
        hsts: true,
        ..Default::default()
    };
    assert_eq!(present, [hsts, crate::http::Present::default()]);
}
