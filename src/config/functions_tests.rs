//! Tests of `[[function]]` and function routes: every error with its key and line, the issue's
//! block as written (and with its commented keys uncommented), defaults, the hidden upstream of
//! a remote function, the effective config, and warnings.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::functions::{self, parse_arn, parse_endpoint, Endpoint, AS_ROOT, MAX_PAYLOAD_BYTES};
use super::resolve::{with_resolver, Resolver};
use super::{in_dir, ConfigErrors, FunctionKind, Integration, PayloadFormat};
use crate::config::Config;

/// A directory of its own under the system's temp dir, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("tollgate-fnconf-{}-{name}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Answers every name with 10.0.0.9 (no DNS in tests), or fails every lookup.
struct Fixed(bool);

impl Resolver for Fixed {
    fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if self.0 {
            Ok(vec![SocketAddr::from(([10, 0, 0, 9], port))])
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host}: no such name"),
            ))
        }
    }
}

fn compile_in(dir: &Path, text: &str, resolves: bool) -> Result<Config, ConfigErrors> {
    with_resolver(Arc::new(Fixed(resolves)), || {
        in_dir(Some(dir), || super::from_str(text))
    })
}

fn ok(dir: &Path, text: &str) -> Config {
    compile_in(dir, text, true).unwrap_or_else(|e| panic!("{}", e.render("t.toml")))
}

/// (key, line) of every error, in file order.
fn errors(dir: &Path, text: &str) -> Vec<(String, usize)> {
    let e = compile_in(dir, text, true).expect_err("must be refused");
    e.0.iter().map(|e| (e.key.clone(), e.line)).collect()
}

/// The issue's config block, exactly as written.
const ISSUE: &str = r#"[[function]]                       # a function that tollgate runs itself
name = "hello"
command = ["python3", "-m", "awslambdaric", "app.handler"]
cwd = "functions/hello"
env = { TABLE = "pets" }           # the function's environment: only this plus the Lambda variables
timeout_ms = 3000                  # per invocation; the process is killed and replaced at the deadline
concurrency = 4                    # at most this many processes (one invocation each at a time)
idle_ms = 300000                   # a process idle this long is stopped (scale to zero); min_warm = 0
queue = 64                         # invocations waiting for a free process; beyond it: 429
# user = "nobody"                  # drop privileges for the function's processes when running as root

[[function]]                       # a function in AWS Lambda (or anything speaking its Invoke API)
name = "orders"
arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders"
# endpoint = "http://127.0.0.1:9001"   # default: https://lambda.REGION.amazonaws.com
timeout_ms = 29000
# credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN from the environment

[[route]]
key = "ANY /hello/{proxy+}"
function = "hello"
payload_format = "2.0"             # "2.0" (default, HTTP APIs) or "1.0" (REST API proxy format)
"#;

fn issue_dir() -> Dir {
    let d = Dir::new("issue");
    std::fs::create_dir_all(d.0.join("functions/hello")).unwrap();
    d
}

#[test]
fn the_issue_block_compiles_as_written() {
    let d = issue_dir();
    let c = ok(&d.0, ISSUE);
    assert_eq!(c.functions.len(), 2);
    let hello = &c.functions[0];
    assert_eq!(hello.name, "hello");
    assert_eq!(hello.timeout, Duration::from_millis(3000));
    let FunctionKind::Local(l) = &hello.kind else {
        panic!("hello is local")
    };
    assert_eq!(l.command, ["python3", "-m", "awslambdaric", "app.handler"]);
    assert_eq!(
        l.cwd,
        std::path::absolute(d.0.join("functions/hello")).unwrap()
    );
    assert!(l.cwd.is_absolute());
    assert_eq!(l.env, [("TABLE".to_string(), "pets".to_string())]);
    assert_eq!(l.handler, "app.handler");
    assert_eq!((l.concurrency, l.queue, l.memory_mb), (4, 64, 128));
    assert_eq!(l.idle, Duration::from_millis(300_000));
    assert_eq!(l.user, None);

    let orders = &c.functions[1];
    assert_eq!(orders.timeout, Duration::from_millis(29_000));
    let FunctionKind::Remote(r) = &orders.kind else {
        panic!("orders is remote")
    };
    assert_eq!(
        r.arn,
        "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    );
    assert_eq!(
        (r.region.as_str(), r.account.as_str()),
        ("eu-west-1", "123456789012")
    );
    assert_eq!(
        r.function_path,
        "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Aorders"
    );
    assert_eq!(r.host, "lambda.eu-west-1.amazonaws.com");
    // the hidden upstream comes after the user's (none here)
    assert_eq!(r.upstream, 0);
    assert_eq!(c.upstreams.len(), 1);
    let up = &c.upstreams[r.upstream];
    assert_eq!(up.name, "function:orders");
    assert_eq!(up.names[0].target, "lambda.eu-west-1.amazonaws.com:443");
    assert_eq!(up.targets, ["10.0.0.9:443".parse::<SocketAddr>().unwrap()]);
    assert_eq!(up.response_timeout, Duration::from_millis(30_000));
    assert_eq!(up.connect_timeout, Duration::from_millis(2_000));
    assert_eq!((up.passive_failures, up.health.is_none()), (0, true));
    assert_eq!(up.max_idle_per_worker, 64);
    let tls = up.tls.as_ref().expect("https endpoint speaks TLS");
    assert_eq!(tls.server_name, crate::tls::ServerNameChoice::TargetHost);
    let (_, sni) = up.tls_for(0).expect("a server name for the target");
    assert_eq!(
        sni,
        rustls::pki_types::ServerName::try_from("lambda.eu-west-1.amazonaws.com").unwrap()
    );
    assert_eq!(r.credentials, crate::aws::Credentials::from_env());

    let Integration::Lambda(route) = &c.routes[0].integration else {
        panic!("the route invokes a function")
    };
    assert_eq!(route.function, 0);
    assert_eq!(route.payload, PayloadFormat::V2);
    assert_eq!(route.body.buffer_bytes, MAX_PAYLOAD_BYTES);
    assert_eq!(route.body.min_rate, 500);
    assert_eq!(route.timeout, None);
    // a reload of the same text compares equal function by function
    assert_eq!(ok(&d.0, ISSUE).functions, c.functions);
}

#[test]
fn the_issue_block_with_its_commented_keys_uncommented() {
    let d = issue_dir();
    let text = ISSUE
        .replace("# user = \"nobody\"", "user = \"nobody\"  ")
        .replace("# endpoint = ", "endpoint = ");
    let nobody = functions::lookup_user("nobody")
        .unwrap()
        .expect("nobody exists");
    for root in [true, false] {
        AS_ROOT.with(|r| r.set(Some(root)));
        let c = ok(&d.0, &text);
        AS_ROOT.with(|r| r.set(None));
        let FunctionKind::Local(l) = &c.functions[0].kind else {
            panic!("local")
        };
        let warned: Vec<_> = c
            .warnings
            .iter()
            .filter(|w| w.key == "function[0].user")
            .map(|w| (w.line, w.message.clone()))
            .collect();
        if root {
            assert_eq!(l.user, Some(nobody));
            assert!(warned.is_empty(), "{warned:?}");
        } else {
            // not root: the key is ignored at run, and `check` says so
            assert_eq!(l.user, None);
            assert_eq!(warned.len(), 1, "{warned:?}");
            assert_eq!(warned[0].0, 10);
            assert!(warned[0].1.contains("not run as root"), "{warned:?}");
        }
        let FunctionKind::Remote(r) = &c.functions[1].kind else {
            panic!("remote")
        };
        assert_eq!(r.host, "127.0.0.1:9001");
        let up = &c.upstreams[r.upstream];
        assert_eq!(
            up.targets,
            ["127.0.0.1:9001".parse::<SocketAddr>().unwrap()]
        );
        assert!(up.tls.is_none(), "http:// is plain");
    }
}

#[test]
fn defaults_of_a_minimal_local_function() {
    let d = Dir::new("defaults");
    let text = "[[function]]\nname = \"f\"\ncommand = [\"./bootstrap\"]\n\
                [[route]]\nkey = \"GET /f\"\nfunction = \"f\"\npayload_format = \"1.0\"\n\
                timeout_ms = 50\nmin_body_rate = 0\n";
    let c = ok(&d.0, text);
    let f = &c.functions[0];
    assert_eq!(f.timeout, Duration::from_millis(3_000));
    let FunctionKind::Local(l) = &f.kind else {
        panic!("local")
    };
    // cwd: the config file's directory; handler: the command's last word
    assert_eq!(l.cwd, std::path::absolute(&d.0).unwrap());
    assert_eq!(l.handler, "./bootstrap");
    assert_eq!((l.concurrency, l.queue, l.memory_mb), (4, 64, 128));
    assert_eq!(l.idle, Duration::from_millis(300_000));
    assert!(l.env.is_empty() && l.user.is_none());
    assert!(c.upstreams.is_empty(), "a local function has no upstream");
    let Integration::Lambda(r) = &c.routes[0].integration else {
        panic!("lambda")
    };
    assert_eq!(r.payload, PayloadFormat::V1);
    assert_eq!(r.timeout, Some(Duration::from_millis(50)));
    assert_eq!(r.body.min_rate, 0);
    // explicit values, and the bounds of every range
    let text = "[[function]]\nname = \"f\"\ncommand = [\"x\", \"y\"]\nhandler = \"h.main\"\n\
                timeout_ms = 900000\nconcurrency = 1024\nidle_ms = 1000\nqueue = 0\n\
                memory_mb = 10240\nenv = { B = \"2\", A = \"1\" }\ncwd = \".\"\n\
                [[function]]\nname = \"g_-9\"\ncommand = [\"x\"]\ntimeout_ms = 1\n\
                concurrency = 1\nidle_ms = 86400000\nqueue = 100000\nmemory_mb = 128\n\
                [[route]]\nkey = \"GET /f\"\nfunction = \"g_-9\"\n";
    let c = ok(&d.0, text);
    let FunctionKind::Local(l) = &c.functions[0].kind else {
        panic!("local")
    };
    assert_eq!(l.handler, "h.main");
    assert_eq!(l.env, [("A".into(), "1".into()), ("B".into(), "2".into())]);
    assert_eq!(c.functions[0].timeout, Duration::from_secs(900));
    let Integration::Lambda(r) = &c.routes[0].integration else {
        panic!("lambda")
    };
    assert_eq!(r.function, 1);
}

#[test]
fn every_function_error_names_its_key_and_line() {
    let d = Dir::new("errors");
    std::fs::write(d.0.join("a-file"), "x").unwrap();
    let text = r#"[[function]]
name = "bad name!"
command = ["x"]
[[function]]
name = "dup"
command = []
timeout_ms = 0
concurrency = 0
idle_ms = 999
queue = 100001
memory_mb = 127
cwd = "missing"
endpoint = "http://127.0.0.1:1"
[[function]]
name = "dup"
command = ["x", "y"]
cwd = "a-file"
env = { AWS_LAMBDA_RUNTIME_API = "1.2.3.4:1" }
user = "no-such-user-tollgate"
timeout_ms = 900001
concurrency = 1025
memory_mb = 10241
[[function]]
name = "both"
command = ["x"]
arn = "arn:aws:lambda:eu-west-1:123456789012:function:both"
[[function]]
name = "neither"
[[function]]
name = "remote"
arn = "arn:aws:lambda:eu-west-1:123456789012:function:remote"
cwd = "."
env = { A = "1" }
concurrency = 2
idle_ms = 2000
queue = 1
handler = "h"
memory_mb = 256
user = "root"
[[function]]
name = "badarn"
arn = "arn:aws:lambda:eu-west-1:12345:function:x"
[[function]]
name = "badendpoint"
arn = "arn:aws:lambda:eu-west-1:123456789012:function:x"
endpoint = "ftp://example.com"
[[upstream]]
name = "function:mine"
targets = ["127.0.0.1:1"]
[[route]]
key = "GET /a"
function = "nope"
[[route]]
key = "GET /b"
function = "remote"
payload_format = "3.0"
[[route]]
key = "GET /c"
mock = {}
payload_format = "2.0"
[[route]]
key = "GET /d"
upstream = "function:mine"
function = "remote"
[[route]]
key = "GET /e/{x}"
function = "remote"
request_buffer_bytes = 10
strip_api_key = true
websocket = true
websocket_idle_ms = 1000
path = "/{x}"
timeout_ms = 29001
min_body_rate = 1073741825
[[route]]
key = "GET /f"
"#;
    let got = errors(&d.0, text);
    let want: Vec<(&str, usize)> = vec![
        ("function[0].name", 2),
        ("function[1].command", 6),
        ("function[1].timeout_ms", 7),
        ("function[1].concurrency", 8),
        ("function[1].idle_ms", 9),
        ("function[1].queue", 10),
        ("function[1].memory_mb", 11),
        ("function[1].cwd", 12),
        ("function[1].endpoint", 13),
        ("function[2].name", 15),
        ("function[2].cwd", 17),
        ("function[2].env", 18),
        ("function[2].user", 19),
        ("function[2].timeout_ms", 20),
        ("function[2].concurrency", 21),
        ("function[2].memory_mb", 22),
        ("function[3]", 26),
        ("function[4]", 28),
        ("function[5].cwd", 32),
        ("function[5].env", 33),
        ("function[5].concurrency", 34),
        ("function[5].idle_ms", 35),
        ("function[5].queue", 36),
        ("function[5].handler", 37),
        ("function[5].memory_mb", 38),
        ("function[5].user", 39),
        ("function[6].arn", 42),
        ("function[7].endpoint", 46),
        ("upstream[0].name", 48),
        ("route[0].function", 52),
        ("route[1].payload_format", 56),
        ("route[2].payload_format", 60),
        ("route[3]", 62),
        ("route[4].request_buffer_bytes", 68),
        ("route[4].strip_api_key", 69),
        ("route[4].websocket", 70),
        ("route[4].websocket_idle_ms", 71),
        ("route[4].path", 72),
        ("route[4].timeout_ms", 73),
        ("route[4].min_body_rate", 74),
        ("route[5]", 76),
    ];
    let want: Vec<(String, usize)> = want.into_iter().map(|(k, l)| (k.to_string(), l)).collect();
    assert_eq!(got, want);
    let e = compile_in(&d.0, text, true).unwrap_err().render("gw.toml");
    for needle in [
        "gw.toml:2:8: function[0].name: \"bad name!\" must be 1 to 64 of A-Z a-z 0-9 - _",
        "function[2].name: duplicate function \"dup\"",
        "function[1].timeout_ms: must be in 1..=900000 (got 0)",
        "function[1].idle_ms: must be in 1000..=86400000 (got 999)",
        "missing: No such file",
        "a-file is not a directory",
        "AWS_LAMBDA_RUNTIME_API is set by tollgate",
        "unknown user \"no-such-user-tollgate\"",
        "function[3]: set either command (a function tollgate runs) or arn",
        "function[4]: needs command (a function tollgate runs) or arn",
        "function[5].cwd: only a local function (command) has this key",
        "function[1].endpoint: only a remote function (arn) has an endpoint",
        "the account must be 12 digits",
        "must be an http:// or https:// URL",
        "reserved for functions",
        "route[0].function: unknown function \"nope\"",
        "must be \"2.0\" (HTTP API format) or \"1.0\" (REST API proxy format), got \"3.0\"",
        "route[2].payload_format: only function routes have a payload format",
        "route[3]: set one of upstream, mock or function, not several (this route sets upstream and function)",
        "route[4].websocket: WebSocket proxying needs an HTTP integration (upstream), not a function",
        "route[5]: needs an integration: upstream, mock or function",
    ] {
        assert!(e.contains(needle), "{needle:?} not in:\n{e}");
    }
}

#[test]
fn structural_errors_in_a_function_name_key_and_line() {
    let d = Dir::new("structural");
    let text = "[[function]]\nname = \"f\"\ncommand = \"python3 app.py\"\nmemory = 512\n\
                env = { A = 1 }\n[[route]]\nkey = \"GET /f\"\nfunction = \"f\"\n";
    let got = errors(&d.0, text);
    let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        got.contains(&("function[0].command".to_string(), 3)),
        "{got:?}"
    );
    assert!(
        got.contains(&("function[0].memory".to_string(), 4)),
        "{got:?}"
    );
    assert!(
        keys.iter().any(|k| k.starts_with("function[0].env")),
        "{got:?}"
    );
}

#[test]
fn arns_are_parsed_strictly() {
    let a = parse_arn("arn:aws:lambda:eu-west-1:123456789012:function:orders").unwrap();
    assert_eq!(
        (a.partition, a.region, a.account, a.name, a.qualifier),
        ("aws", "eu-west-1", "123456789012", "orders", None)
    );
    for (arn, q) in [
        (
            "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
            "$LATEST",
        ),
        ("arn:aws:lambda:us-east-1:000000000000:function:f:7", "7"),
        (
            "arn:aws:lambda:us-east-1:000000000000:function:f:live_2-b",
            "live_2-b",
        ),
    ] {
        assert_eq!(parse_arn(arn).unwrap().qualifier, Some(q), "{arn}");
    }
    let cn = parse_arn("arn:aws-cn:lambda:cn-north-1:123456789012:function:f").unwrap();
    assert_eq!(
        Endpoint::aws(&cn).host,
        "lambda.cn-north-1.amazonaws.com.cn"
    );
    let gov = parse_arn("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f").unwrap();
    assert_eq!(
        Endpoint::aws(&gov).host,
        "lambda.us-gov-west-1.amazonaws.com"
    );
    for bad in [
        "",
        "orders",
        "arn:aws:lambda:eu-west-1:123456789012:function",
        "arx:aws:lambda:eu-west-1:123456789012:function:f",
        "arn:azure:lambda:eu-west-1:123456789012:function:f",
        "arn:aws:s3:eu-west-1:123456789012:function:f",
        "arn:aws:lambda:EU-west-1:123456789012:function:f",
        "arn:aws:lambda:euwest1:123456789012:function:f",
        "arn:aws:lambda:eu-west-x:123456789012:function:f",
        "arn:aws:lambda:cn-north-1:123456789012:function:f",
        "arn:aws-cn:lambda:eu-west-1:123456789012:function:f",
        "arn:aws:lambda:eu-west-1:12345678901a:function:f",
        "arn:aws:lambda:eu-west-1:1234567890123:function:f",
        "arn:aws:lambda:eu-west-1:123456789012:layer:f",
        "arn:aws:lambda:eu-west-1:123456789012:function:",
        "arn:aws:lambda:eu-west-1:123456789012:function:a.b",
        "arn:aws:lambda:eu-west-1:123456789012:function:f:",
        "arn:aws:lambda:eu-west-1:123456789012:function:f:$PREV",
        "arn:aws:lambda:eu-west-1:123456789012:function:f:1:2",
    ] {
        assert!(parse_arn(bad).is_err(), "{bad:?} accepted");
    }
    let long = format!(
        "arn:aws:lambda:eu-west-1:123456789012:function:{}",
        "a".repeat(65)
    );
    assert!(parse_arn(&long).is_err());
    let max = format!(
        "arn:aws:lambda:eu-west-1:123456789012:function:{}",
        "a".repeat(64)
    );
    assert!(parse_arn(&max).is_ok());
}

#[test]
fn endpoints_are_scheme_host_and_port_only() {
    let e = parse_endpoint("http://127.0.0.1:9001").unwrap();
    assert_eq!((e.tls, e.host.as_str(), e.port), (false, "127.0.0.1", 9001));
    assert_eq!(e.authority(), "127.0.0.1:9001");
    let e = parse_endpoint("HTTPS://Lambda.Example.com/").unwrap();
    assert_eq!(
        (e.tls, e.host.as_str(), e.port),
        (true, "lambda.example.com", 443)
    );
    assert_eq!(e.authority(), "lambda.example.com");
    let e = parse_endpoint("http://[::1]:8080").unwrap();
    assert_eq!(
        (e.host.as_str(), e.target()),
        ("[::1]", "[::1]:8080".to_string())
    );
    let e = parse_endpoint("https://h:443").unwrap();
    assert_eq!(
        e.authority(),
        "h",
        "the default port is left out (RFC 9110 §4.2.3)"
    );
    assert_eq!(parse_endpoint("http://h").unwrap().port, 80);
    for bad in [
        "127.0.0.1:9001",
        "ftp://h",
        "http://",
        "http://h/path",
        "http://h?q",
        "http://h#f",
        "http://u@h",
        "http://h:0",
        "http://h:65536",
        "http://h:x",
        "http://[::1",
        "http://[nope]:1",
        "http://h h",
    ] {
        assert!(parse_endpoint(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn an_endpoint_that_does_not_resolve_is_a_warning() {
    let d = Dir::new("noresolve");
    let text = "[[function]]\nname = \"o\"\n\
                arn = \"arn:aws:lambda:eu-west-1:123456789012:function:o:live\"\n\
                endpoint = \"https://lambda.invalid:8443\"\ntimeout_ms = 500\n\
                [[route]]\nkey = \"GET /o\"\nfunction = \"o\"\n";
    let c = compile_in(&d.0, text, false).unwrap_or_else(|e| panic!("{}", e.render("t")));
    let w: Vec<_> = c
        .warnings
        .iter()
        .filter(|w| w.key == "function[0].endpoint")
        .collect();
    assert_eq!(w.len(), 1, "{:?}", c.warnings);
    assert_eq!(w[0].line, 4);
    assert!(
        w[0].message.contains("cannot resolve lambda.invalid:8443"),
        "{w:?}"
    );
    let FunctionKind::Remote(r) = &c.functions[0].kind else {
        panic!("remote")
    };
    assert_eq!(r.host, "lambda.invalid:8443");
    assert_eq!(
        r.function_path,
        "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Ao%3Alive"
    );
    let up = &c.upstreams[r.upstream];
    // no address yet: the pool has no target (invocations fail) until the resolver finds one
    assert!(up.targets.is_empty());
    assert_eq!(up.names.len(), 1);
    assert_eq!(up.response_timeout, Duration::from_millis(1_500));
    // without credentials in the environment, requests go unsigned: `check` says so
    let unsigned = c
        .warnings
        .iter()
        .any(|w| w.key == "function[0].arn" && w.message.contains("unsigned"));
    assert_eq!(unsigned, crate::aws::Credentials::from_env().is_none());
}

#[test]
fn hidden_upstreams_follow_the_users_and_keep_their_indices() {
    let d = Dir::new("order");
    let text = "[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:1\"]\n\
                [[function]]\nname = \"a\"\narn = \"arn:aws:lambda:eu-west-1:123456789012:function:a\"\n\
                endpoint = \"http://127.0.0.1:2\"\n\
                [[function]]\nname = \"l\"\ncommand = [\"x\"]\n\
                [[function]]\nname = \"b\"\narn = \"arn:aws:lambda:eu-west-1:123456789012:function:b\"\n\
                endpoint = \"http://127.0.0.1:3\"\n\
                [[route]]\nkey = \"GET /u\"\nupstream = \"u\"\n\
                [[route]]\nkey = \"GET /b\"\nfunction = \"b\"\n";
    let c = ok(&d.0, text);
    let names: Vec<&str> = c.upstreams.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["u", "function:a", "function:b"]);
    let remote = |i: usize| match &c.functions[i].kind {
        FunctionKind::Remote(r) => r.upstream,
        FunctionKind::Local(_) => panic!("remote"),
    };
    assert_eq!((remote(0), remote(2)), (1, 2));
    assert!(matches!(
        c.routes[0].integration,
        Integration::Http { upstream: 0, .. }
    ));
    assert!(matches!(
        &c.routes[1].integration,
        Integration::Lambda(l) if l.function == 2
    ));
    assert_eq!(
        functions::summary(&c.functions),
        ", 3 functions (1 local, 2 remote)"
    );
}

#[test]
fn the_service_upstream_is_plain_loopback_without_ejection() {
    let addr: SocketAddr = "127.0.0.1:4567".parse().unwrap();
    let u = functions::service_upstream(addr);
    assert_eq!(u.name, "functions");
    assert_eq!(u.targets, [addr]);
    assert!(u.tls.is_none() && u.health.is_none());
    assert_eq!(u.passive_failures, 0);
    assert_eq!(u.connect_timeout, Duration::from_secs(1));
    assert!(u.response_timeout >= Duration::from_secs(2 * 900 + 10));
}

#[test]
fn the_effective_config_fills_function_defaults_and_redacts_env() {
    let d = issue_dir();
    let text = format!(
        "{ISSUE}[[route]]\nkey = \"GET /o\"\nfunction = \"orders\"\n\
         [[function]]\nname = \"min\"\ncommand = [\"x\"]\nenv = {{ DB_PASSWORD = \"hunter2\" }}\n"
    );
    ok(&d.0, &text);
    let t = super::effective::table(&text).unwrap();
    let fs = t["function"].as_array().unwrap();
    let min = fs[2].as_table().unwrap();
    assert_eq!(min["timeout_ms"].as_integer(), Some(3000));
    assert_eq!(min["concurrency"].as_integer(), Some(4));
    assert_eq!(min["idle_ms"].as_integer(), Some(300_000));
    assert_eq!(min["queue"].as_integer(), Some(64));
    assert_eq!(min["memory_mb"].as_integer(), Some(128));
    // a remote function shows no local key (check would refuse them)
    let orders = fs[1].as_table().unwrap();
    assert!(!orders.contains_key("concurrency") && !orders.contains_key("cwd"));
    let routes = t["route"].as_array().unwrap();
    assert_eq!(routes[1]["payload_format"].as_str(), Some("2.0"));
    let shown = super::effective::render(&text, &[]);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("DB_PASSWORD = \"<redacted>\""), "{shown}");
    // what GET /config shows compiles again (the secrets aside)
    ok(&d.0, &shown);
}
