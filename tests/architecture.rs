//! The module dependency rules of the architecture, checked over the source text: runtime code
//! does not import the TOML schema (`config::raw`), nothing below `server` reaches back into it
//! or into `proxy`, `config` does not import the modules it configures, the outbound client
//! stands alone (no session, integration or proxy), integrations do not know the client's
//! protocol, the lifecycle knows neither its transport nor its protocol (nor the outbound
//! client), a connection's facts are a neutral leaf, sessions relay response bodies without
//! the outbound client, WebSocket rules live in the integration (sessions only tunnel bytes
//! after a 101), the HTTP/2 protocol is sans-IO (bytes only), the HTTP/2 session reaches
//! the lifecycle only through the stream task the server gives it, the Lambda formats
//! (events, replies, Invoke API classification) are sans-IO, and the local functions service
//! imports no gateway layer above it and its scheduler is sans-IO; the access log, Lambda
//! formats and throttle read an authorizer's principal without reaching into the authorizers,
//! and the admin token check stands apart from the data plane's auth. Comments (doc links
//! included) are not imports and are skipped. See README.md, "Architecture".

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir` (or `dir` itself when it is a file), recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!("cannot read {}", dir.display());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(file:line, text)` of every non-comment line under `parts` (paths below `src/`) that
/// contains one of `needles`.
fn code_lines_naming(parts: &[&str], needles: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for part in parts {
        rust_files(&src.join(part), &mut files);
    }
    assert!(!files.is_empty(), "no sources found under {parts:?}");
    let mut hits = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            panic!("cannot read {}", file.display());
        };
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if needles.iter().any(|needle| line.contains(needle)) {
                hits.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    hits
}

/// Fails, listing them, when lines under `parts` name one of `needles`; `what` names the
/// broken rule.
/// What a sans-IO module never names: the IO layers, the runtime, sockets, files, threads and
/// locks (rules add what else their module must not see, e.g. request state).
const SANS_IO: &[&str] = &[
    "crate::proxy",
    "crate::server",
    "crate::session",
    "crate::client",
    "crate::integration",
    "crate::worker",
    "crate::transport",
    "monoio",
    "std::net",
    "std::fs",
    "std::thread",
    "Mutex",
];

fn assert_none_naming(parts: &[&str], needles: &[&str], what: &str) {
    let hits = code_lines_naming(parts, needles);
    assert!(hits.is_empty(), "{what}:\n{}", hits.join("\n"));
}

/// Every top-level module of the library except `config` (which owns the schema).
const OUTSIDE_CONFIG: &[&str] = &[
    "accesslog.rs",
    "functions",
    "accesslog",
    "admin",
    "client",
    "integration",
    "response.rs",
    "session",
    "tls",
    "transport",
    "error.rs",
    "facts.rs",
    "fmt.rs",
    "health.rs",
    "http",
    "http2",
    "lib.rs",
    "main.rs",
    "metrics",
    "proxy",
    "router",
    "runtime.rs",
    "server",
    "throttle",
];

/// The modules below `proxy` and `server` in the dependency order.
const BELOW_PROXY: &[&str] = &[
    "accesslog.rs",
    "accesslog",
    "config",
    "error.rs",
    "facts.rs",
    "fmt.rs",
    "health.rs",
    "http",
    "http2",
    "metrics",
    "router",
    "runtime.rs",
    "throttle",
    "tls",
    "transport",
    "worker",
    "exchange.rs",
];

/// The layers the lifecycle drives: they run below it and never import it (nor `server`).
const BELOW_LIFECYCLE: &[&str] = &[
    "integration",
    "session",
    "client",
    "transport",
    "response.rs",
    "worker",
    "exchange.rs",
];

#[test]
fn the_layers_below_the_lifecycle_import_neither_proxy_nor_server() {
    assert_none_naming(
        BELOW_LIFECYCLE,
        &[
            "crate::proxy",
            "crate::server",
            "tollgate::proxy",
            "tollgate::server",
        ],
        "a layer below the lifecycle imports proxy or server",
    );
}

#[test]
fn the_outbound_client_stands_alone() {
    // authorizers, JWKS fetches and Lambda calls reuse it without the proxy or a session
    assert_none_naming(
        &["client"],
        &[
            "crate::session",
            "crate::integration",
            "crate::proxy",
            "crate::server",
        ],
        "the client imports session, integration or proxy",
    );
}

#[test]
fn integrations_do_not_know_the_clients_protocol() {
    // they reach the client through the `Session` trait only, never the HTTP/1 session
    assert_none_naming(
        &["integration"],
        &["session::h1", "Downstream"],
        "an integration names the HTTP/1 session",
    );
    assert_none_naming(
        &["session"],
        &["crate::integration"],
        "a session imports an integration",
    );
}

#[test]
fn the_lifecycle_knows_neither_transport_nor_protocol() {
    // the phases (and the https rules they apply) see a `Session`, a `ResponseBody` and the
    // connection's `facts`: no stream, no TLS type, no HTTP/1 session, no outbound client
    assert_none_naming(
        &["proxy/lifecycle.rs", "proxy/filtered.rs", "proxy/https.rs"],
        &[
            "session::h1",
            "Downstream",
            "crate::transport",
            "TcpStream",
            "TlsStream",
            "crate::client",
            "BodyReader",
            "UpstreamConn",
        ],
        "the lifecycle names a transport or a protocol",
    );
}

#[test]
fn a_connections_facts_are_a_neutral_leaf() {
    // transport, sessions, server and the lifecycle all read them: they import none of those
    assert_none_naming(
        &["facts.rs"],
        &[
            "crate::transport",
            "crate::session",
            "crate::client",
            "crate::integration",
            "crate::proxy",
            "crate::server",
        ],
        "facts imports a layer above it",
    );
}

#[test]
fn sessions_relay_bodies_without_the_outbound_client() {
    // a relayed body is a `response::ResponseBody`: an HTTP/2 session or a Lambda stream reuses
    // the relay without the client's connection, buffer or decoder
    assert_none_naming(
        &["session"],
        &["crate::client", "BodyReader", "UpstreamConn"],
        "a session depends on the outbound client",
    );
}

#[test]
fn only_config_imports_the_toml_schema() {
    assert_none_naming(
        OUTSIDE_CONFIG,
        &["config::raw", "raw::Raw"],
        "runtime code imports config::raw",
    );
}

#[test]
fn proxy_does_not_reach_back_into_server() {
    assert_none_naming(
        &["proxy", "client", "integration", "session", "response.rs"],
        &["crate::server", "tollgate::server"],
        "proxy imports server",
    );
}

#[test]
fn modules_below_proxy_import_neither_proxy_nor_server() {
    assert_none_naming(
        BELOW_PROXY,
        &["crate::proxy", "crate::server"],
        "a lower module imports proxy or server",
    );
}

#[test]
fn the_functions_service_stands_below_the_gateway() {
    // the functions thread serves workers over loopback like an origin does: it imports
    // neither the lifecycle, nor the server that starts it, nor the integration that calls it
    assert_none_naming(
        &["functions"],
        &[
            "crate::proxy",
            "crate::server",
            "crate::integration",
            "crate::session",
            "crate::client",
        ],
        "the functions service imports proxy, server, integration, session or client",
    );
}

#[test]
fn the_functions_scheduler_is_sans_io() {
    // admission, queue and deadlines are a state machine driven with a fake clock in tests
    assert_none_naming(
        &["functions/scheduler.rs", "functions/actions.rs"],
        &[
            "monoio",
            "std::net",
            "std::process",
            "Instant::now",
            "sandbox::",
        ],
        "the scheduler does I/O or reads the clock",
    );
}

#[test]
fn config_does_not_import_the_modules_it_configures() {
    assert_none_naming(
        &["config"],
        &["crate::admin", "crate::health"],
        "config imports admin or health",
    );
}

#[test]
fn a_function_process_is_started_off_the_runtime() {
    // functions::sandbox is blocking std code (fork/exec, getpwnam_r) run by the functions
    // thread and the config load: no runtime, no worker, and nothing of the request path
    assert_none_naming(
        &["functions/sandbox.rs"],
        &[
            "monoio",
            "crate::worker",
            "crate::proxy",
            "crate::server",
            "crate::session",
            "crate::integration",
            "crate::client",
            "config::raw",
        ],
        "the sandbox imports the runtime or the request path",
    );
}

#[test]
fn formatting_is_not_borrowed_from_proxy() {
    // the access log and the quota clock format through crate::fmt, not proxy's writers
    assert_none_naming(
        &["accesslog.rs", "accesslog", "throttle", "fmt.rs"],
        &["proxy::"],
        "formatting borrowed from proxy",
    );
}

#[test]
fn websocket_rules_live_in_the_integration() {
    // the handshake (RFC 6455) is the integration's; a session only tunnels bytes after a 101
    // (any protocol switch), and the lifecycle has no `if websocket` of its own: it wraps
    // `Session::tunnel` with the response filter like every other response
    assert_none_naming(
        &["session", "proxy", "client"],
        &[
            "ws_handshake",
            "integration::websocket",
            "Sec-WebSocket",
            "sec-websocket-accept",
            "WebSocket::",
        ],
        "WebSocket knowledge outside the integration",
    );
}

#[test]
fn the_http2_session_reaches_the_lifecycle_only_through_its_stream_task() {
    // the connection task and its streams run the lifecycle through the `StreamTask` the server
    // hands them (proxy::h2): no proxy, integration or outbound client in the session's files
    assert_none_naming(
        &[
            "session/h2.rs",
            "session/h2_conn.rs",
            "session/h2_head.rs",
            "session/h2_response.rs",
            "session/h2_stream.rs",
        ],
        &[
            "crate::proxy",
            "crate::integration",
            "crate::client",
            "crate::server",
        ],
        "the HTTP/2 session imports proxy, integration, client or server",
    );
}

#[test]
fn http2_is_sans_io() {
    // the HTTP/2 protocol is bytes in, events and bytes out: no socket, runtime, session,
    // proxy, worker or config (the session drives it and maps config onto its Limits)
    assert_none_naming(
        &["http2"],
        &[
            "crate::session",
            "crate::proxy",
            "crate::transport",
            "crate::worker",
            "crate::config",
            "crate::server",
            "crate::client",
            "crate::integration",
            "monoio",
            "std::net",
            "TcpStream",
        ],
        "the HTTP/2 protocol imports an IO layer",
    );
}

#[test]
fn lambda_formats_are_sans_io() {
    // events, replies and Invoke API classification are pure functions over bytes and
    // structs: the Lambda integration, the functions service and the admin relay all call
    // them, so they import no layer with sockets, runtimes or request state
    assert_none_naming(
        &["lambda"],
        &[
            "crate::proxy",
            "crate::server",
            "crate::session",
            "crate::client",
            "crate::integration",
            "crate::functions",
            "crate::transport",
            "crate::worker",
            "monoio",
            "std::net",
            "TcpStream",
        ],
        "the Lambda formats import an IO layer",
    );
}

#[test]
fn aws_signing_imports_nothing_of_the_server_side() {
    // the Lambda integration signs its Invoke calls and the authorizers verify incoming
    // requests with `aws`: it is text in, text out, without the server, the outbound client,
    // the functions service, config or the runtime
    assert_none_naming(
        &["aws"],
        &[
            "crate::proxy",
            "crate::server",
            "crate::session",
            "crate::client",
            "crate::integration",
            "crate::functions",
            "crate::lambda",
            "crate::worker",
            "crate::config",
            "crate::runtime",
            "tollgate::",
            "monoio",
        ],
        "aws imports a server-side module, config or the runtime",
    );
}

#[test]
fn a_held_body_is_served_only_through_the_session() {
    // the lifecycle's held body (an aws_iam route hashing the payload) replays bytes already
    // read through the client's session: it neither reads the transport nor knows an
    // integration or the outbound client, and the IAM authorizer reads the body only through
    // the session (no transport, no outbound client: it fetches nothing)
    assert_none_naming(
        &["proxy/held_body.rs"],
        &[
            "crate::transport",
            "crate::client",
            "crate::integration",
            "monoio",
        ],
        "the held body reaches past the session",
    );
    // the IAM authorizer bounds its read of an unverified body with monoio's timer, and uses
    // none of monoio's I/O
    assert_none_naming(
        &["auth/iam.rs"],
        &[
            "crate::transport",
            "crate::client",
            "crate::integration",
            "monoio::net",
            "monoio::io",
            "monoio::fs",
            "monoio::spawn",
            "monoio::buf",
        ],
        "the IAM authorizer reaches past the session",
    );
}

#[test]
fn workers_reach_the_functions_service_only_over_loopback() {
    // the process pools live on the functions thread; the request path (proxy, sessions,
    // integrations, the worker's state, the outbound client) sends the Invoke API through its
    // own per-core pool and never touches the service's scheduler, sandboxes or handle: no
    // lock is shared with it (see crate::functions)
    assert_none_naming(
        &["proxy", "session", "integration", "worker", "client"],
        &[
            "functions::service",
            "functions::scheduler",
            "functions::sandbox",
            "functions::runtime_api",
            "FunctionsHandle",
        ],
        "the request path reaches into the functions service",
    );
}

#[test]
fn what_an_authorizer_said_is_read_never_asked() {
    // the access log, the Lambda formats and the throttle read a request's `Principal` (a
    // value the authorizer phase left in the exchange state); they never run an authorizer,
    // reach its per-worker state or its outbound calls
    assert_none_naming(
        &["accesslog.rs", "accesslog", "lambda", "throttle"],
        &[
            "auth::authorize",
            "auth::WorkerAuth",
            "auth::AuthorizerState",
            "auth::jwt",
            "auth::jwks",
            "auth::keys",
            "auth::token_cache",
            "auth::request",
            "auth::iam",
            "crate::client",
        ],
        "a reader of the principal reaches into the authorizers",
    );
}

#[test]
fn the_admin_token_check_stands_alone() {
    // the admin listener's bearer token is its own (std threads, the compiled AdminAuth): it
    // shares nothing with the data plane's authorizers or runtime
    assert_none_naming(
        &["admin"],
        &["crate::auth", "crate::policy", "crate::worker", "monoio"],
        "the admin listener borrows the data plane's auth or runtime",
    );
}

#[test]
fn jwt_verification_key_sets_and_the_token_cache_are_sans_io() {
    // a token is verified against a key set with the time passed in, and a verified token is
    // kept per worker: bytes and structs only, so the authorizer phase, the key store's
    // refresher and the benches drive them alike, and nothing in them can block a core
    // (fetching keys is `auth::keys`, the phase `auth::jwt_authorizer`)
    assert_none_naming(
        &["auth/jwt.rs", "auth/jwks.rs", "auth/token_cache.rs"],
        &[
            "crate::proxy",
            "crate::server",
            "crate::session",
            "crate::client",
            "crate::integration",
            "crate::transport",
            "crate::worker",
            "crate::config",
            "super::keys",
            "super::jwt_authorizer",
            "monoio",
            "std::net",
            "std::fs",
            "std::thread",
            "std::process",
            "SystemTime",
            "Instant",
            "TcpStream",
        ],
        "auth::jwt, auth::jwks or auth::token_cache reach an IO layer or read the clock",
    );
}

#[test]
fn the_shared_key_set_is_plain_std() {
    // auth::key_share is what every worker's key store shares: std locks and atomics only; it
    // neither fetches nor waits (that is auth::keys, on a worker), so nothing in it can park a
    // core or run on a runtime
    assert_none_naming(
        &["auth/key_share.rs"],
        &[
            "crate::proxy",
            "crate::server",
            "crate::session",
            "crate::client",
            "crate::integration",
            "crate::transport",
            "crate::worker",
            "super::keys",
            "super::jwt_authorizer",
            "monoio",
            "Rc<",
            "RefCell",
            "TcpStream",
        ],
        "auth::key_share reaches an IO layer, the runtime or per-core state",
    );
}

#[test]
fn what_a_generation_keeps_of_authorizers_is_decided_from_configs_alone() {
    // auth::carry compares compiled settings and hands over existing Rc/Arc state: it runs on
    // the control thread (process-wide state) and in a worker's generation switch (its own
    // state), so it reaches no IO layer, runtime or lock of its own
    assert_none_naming(
        &["auth/carry.rs"],
        &[
            "crate::proxy",
            "crate::server",
            "crate::session",
            "crate::client",
            "crate::integration",
            "crate::transport",
            "crate::worker",
            "monoio",
            "Mutex",
            "std::thread",
            "std::fs",
        ],
        "auth::carry reaches an IO layer, the runtime or a lock",
    );
}

#[test]
fn request_authorizer_formats_are_sans_io() {
    // the payload a request authorizer gets, its answers and the IAM policies it returns are
    // pure functions over bytes and JSON: `auth::request` does the calling, caching and
    // coalescing, so these import no layer with sockets, runtimes or request state
    assert_none_naming(
        &["auth/request_payload.rs", "auth/iam_policy.rs"],
        &[
            "crate::proxy",
            "crate::server",
            "crate::session",
            "crate::client",
            "crate::integration",
            "crate::functions",
            "crate::transport",
            "crate::worker",
            "crate::exchange",
            "monoio",
            "std::net",
            "TcpStream",
        ],
        "a request authorizer format imports an IO layer",
    );
}

#[test]
fn access_policies_are_sans_io() {
    // CORS, IP rules and client-certificate rules decide on the request head, the
    // connection's facts and the compiled config alone: no socket, runtime, session, outbound
    // call or authorizer (they run before the authorizers and call out to nothing)
    assert_none_naming(
        &["policy"],
        &[
            "crate::proxy",
            "crate::server",
            "crate::session",
            "crate::client",
            "crate::integration",
            "crate::auth",
            "crate::transport",
            "crate::worker",
            "crate::config::raw",
            "monoio",
            "TcpStream",
        ],
        "an access policy imports an IO layer or an authorizer",
    );
}

#[test]
fn jwt_key_fetching_goes_through_the_outbound_client_without_blocking_a_core() {
    // a worker's key store and the JWT phase reach the identity provider only through
    // `crate::client` on the worker's own pools (no session, integration, proxy or server,
    // no socket of their own), and never block the core: no threads, files, blocking DNS
    // or locks (per-core state is Rc/Cell/RefCell)
    assert_none_naming(
        &["auth/keys.rs", "auth/jwt_authorizer.rs"],
        &[
            "crate::session",
            "crate::integration",
            "crate::proxy",
            "crate::server",
            "std::net",
            "std::thread",
            "std::fs",
            "ToSocketAddrs",
            "Mutex",
            "RwLock",
        ],
        "the JWT key store or phase imports a layer above the client, or blocks",
    );
}

#[test]
fn gateway_response_types_and_templates_are_sans_io() {
    // which type a failure is, and a gateway response template's compiling and rendering,
    // are decided on the error, the request head and the `$context` entry alone: no socket,
    // runtime, session, outbound call, lifecycle or worker (only `customise`, in the module's
    // root, builds the entry), and no TOML schema
    assert_none_naming(
        &["gateway_response/kind.rs", "gateway_response/template.rs"],
        &[
            "crate::proxy",
            "crate::server",
            "crate::session",
            "crate::client",
            "crate::integration",
            "crate::transport",
            "crate::worker",
            "crate::config::raw",
            "monoio",
            "TcpStream",
        ],
        "a gateway response type or template imports an IO layer",
    );
}

#[test]
fn errors_become_responses_in_one_place() {
    // the lifecycle's error mapping (`finish`) is the only caller of the gateway responses'
    // `customise`: no phase, session or integration customises an error on its own
    let hits = code_lines_naming(&[""], &["gateway_response::customise"]);
    let outside: Vec<&String> = hits
        .iter()
        .filter(|h| !h.contains("proxy/lifecycle.rs:"))
        .collect();
    assert!(
        outside.is_empty() && hits.len() == 1,
        "customise is called outside the error mapping, or more than once:\n{}",
        hits.join("\n")
    );
}

#[test]
fn mapping_templates_are_sans_io() {
    // templates are compiled at load and rendered over bytes already in memory (the held
    // request body, a response read whole): no sockets, runtime, files, threads or locks,
    // and no request state beyond the variables the caller hands them
    assert_none_naming(
        &[
            "transform/template.rs",
            "transform/template_parse.rs",
            "transform/template_util.rs",
        ],
        &[SANS_IO, &["crate::exchange", "TcpStream"]].concat(),
        "the mapping templates import an IO layer or request state",
    );
}

#[test]
fn xml_conversions_are_sans_io() {
    // XML ⇄ JSON runs over bytes already in memory (the held request body, a response read
    // whole): no sockets, runtime, files, threads, locks or request state
    assert_none_naming(
        &[
            "transform/xml.rs",
            "transform/xml_to_json.rs",
            "transform/json_to_xml.rs",
        ],
        &[SANS_IO, &["crate::exchange", "TcpStream"]].concat(),
        "the XML conversions import an IO layer or request state",
    );
}

#[test]
fn compression_is_decided_once_and_encoded_without_io() {
    // the response filter is the one place a response's coding is chosen; each session wraps
    // a relayed body in the encoder at one place (its relay); the encoders and decoders work
    // over bytes in memory, with no IO layer
    let chosen = code_lines_naming(&[""], &["compress::apply("]);
    assert!(
        chosen.len() == 1 && chosen.iter().all(|h| h.contains("proxy/lifecycle.rs:")),
        "compression is chosen outside the response filter, or more than once:\n{}",
        chosen.join("\n")
    );
    let wrapped = code_lines_naming(&["session"], &["encode::relayed("]);
    assert!(
        wrapped.len() == 2
            && wrapped.iter().any(|h| h.contains("session/h1_relay.rs:"))
            && wrapped.iter().any(|h| h.contains("session/h2_stream.rs:")),
        "a session compresses a relayed body elsewhere than its relay:\n{}",
        wrapped.join("\n")
    );
    assert_none_naming(
        &[
            "compress/accept.rs",
            "compress/types.rs",
            "compress/encode.rs",
            "compress/decode.rs",
        ],
        SANS_IO,
        "the encoders or decoders import an IO layer",
    );
}

#[test]
fn validation_models_and_parameter_checks_are_sans_io() {
    // models are compiled at load (files read by config/validation.rs) and checked over a
    // body already parsed in memory; required parameters are read off the parsed head: no
    // sockets, runtime, files, threads or locks, and nothing that fetches a `$ref`
    assert_none_naming(
        &[
            "validate/model.rs",
            "validate/params.rs",
            "validate/body.rs",
        ],
        &[SANS_IO, &["RwLock", "TcpStream", "HttpRetriever"]].concat(),
        "request validation's models or checks import an IO layer",
    );
}
