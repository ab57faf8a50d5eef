//! The `tollgate` command: run the gateway, check a config, or import an OpenAPI definition.
//!
//! Signals are blocked in every thread and taken synchronously by the main thread with
//! `sigwait`, so no handler runs on a worker and nothing async-signal-unsafe can happen:
//! SIGTERM/SIGINT drain and exit, SIGHUP reloads the config, SIGUSR1 reopens the access log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tollgate::config::{self, Config};
use tollgate::server;
use tollgate::server::reload::ConfigSource;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A self-hosted, thread-per-core API gateway and edge proxy.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Config file (TOML). Without it, the embedded demo config is served.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate a config: exit 0, or print each error with its key and line and exit 1.
    Check,
    /// Print API key usage (quota used, requests, throttled) from `server.state_dir`.
    Usage,
    /// Convert an OpenAPI definition (API Gateway's extensions) into an API file: the TOML on
    /// stdout, what tollgate cannot do as API Gateway would on stderr.
    Import {
        /// OpenAPI 3.0 / 3.1 or Swagger 2.0, YAML or JSON.
        file: PathBuf,
        /// Exit 1 when anything is unsupported.
        #[arg(long)]
        strict: bool,
    },
    /// Write an API of the config (`-c FILE`) as OpenAPI 3.0 with API Gateway's extensions,
    /// YAML on stdout (`--json`: JSON).
    Export {
        /// The `[[api]]`'s name.
        #[arg(long)]
        api: String,
        #[arg(long)]
        json: bool,
    },
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => config::load(p),
        None => {
            config::from_str(config::EMBEDDED_CONFIG).map_err(|e| e.render("<embedded config>"))
        }
    }
}

/// Transparent huge pages make RSS jump in 2 MiB steps when the allocator touches a new region
/// (seen as +2 MiB while streaming a body); a proxy's heap is small, so predictable memory per
/// connection is worth more than fewer TLB misses. Applies to the whole process from here on.
fn disable_transparent_huge_pages() {
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes plain integers and has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    if let Some(Command::Import { file, strict }) = &cli.command {
        return import(file, *strict);
    }
    if let Some(Command::Export { api, json }) = &cli.command {
        return export(cli.config.as_deref(), api, *json);
    }
    if matches!(cli.command, Some(Command::Usage)) && cli.config.is_none() {
        // the embedded demo config has no server.state_dir, so there is nothing to read
        eprintln!("tollgate: usage needs a config with server.state_dir: tollgate usage -c FILE");
        return ExitCode::from(2);
    }
    let cfg = match load(cli.config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(1);
        }
    };
    let origin = cli
        .config
        .as_ref()
        .map_or("<embedded config>".to_string(), |p| p.display().to_string());
    // what is valid but worth attention (certificates expiring, `verify = false`): printed
    // by `check` and at startup, never fatal
    eprint!("{}", config::render_warnings(&cfg.warnings, &origin));
    match cli.command.unwrap_or(Command::Run) {
        Command::Check => {
            // remote functions' hidden upstreams are counted as the functions they are
            let user_upstreams = cfg
                .upstreams
                .iter()
                .filter(|u| {
                    !u.name
                        .starts_with(config::functions::HIDDEN_UPSTREAM_PREFIX)
                })
                .count();
            println!(
                "{origin}: ok ({}, {}{})",
                plural(cfg.routes.len(), "route"),
                plural(user_upstreams, "upstream"),
                config::functions::summary(&cfg.functions)
            );
            ExitCode::SUCCESS
        }
        Command::Run => {
            let source = match cli.config {
                Some(p) => ConfigSource::File(p),
                None => ConfigSource::Embedded,
            };
            run(cfg, source)
        }
        Command::Usage => usage(&cfg),
        Command::Import { file, strict } => import(&file, strict),
        Command::Export { api, json } => export(cli.config.as_deref(), &api, json),
    }
}

/// `tollgate export --api NAME`: the API (its routes file, OpenAPI definition or inline
/// routes) as OpenAPI 3.0 on stdout; exit 1 when the config or the API cannot be read.
fn export(config_path: Option<&std::path::Path>, name: &str, json: bool) -> ExitCode {
    let (text, dir) = match config_path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (t, p.parent().map(std::path::Path::to_path_buf)),
            Err(e) => {
                eprintln!("tollgate: cannot read {}: {e}", p.display());
                return ExitCode::from(1);
            }
        },
        None => (config::EMBEDDED_CONFIG.to_string(), None),
    };
    match config::api_sources::api_file(&text, dir.as_deref(), name) {
        Ok(file) => {
            let doc = tollgate::openapi::export(&file, name);
            if json {
                println!("{doc:#}");
            } else {
                print!("{}", tollgate::openapi::to_yaml(&doc));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: export --api {name}: {e}");
            ExitCode::from(1)
        }
    }
}

/// `tollgate import FILE`: the API file on stdout, each unsupported part (with its JSON
/// pointer) on stderr; exit 1 on an unreadable definition, or with `--strict` when anything
/// is unsupported.
fn import(file: &std::path::Path, strict: bool) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tollgate: cannot read {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let imported = match tollgate::openapi::import(&text) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    println!(
        "# API file imported by `tollgate import` from {}: {}, {} unsupported (see its stderr).",
        file.display(),
        plural(imported.routes.len(), "route"),
        imported.unsupported.len()
    );
    print!("{}", imported.toml);
    for u in &imported.unsupported {
        eprintln!("{}: unsupported: {}: {}", file.display(), u.pointer, u.what);
    }
    if strict && !imported.unsupported.is_empty() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `1 worker`, `2 workers`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn usage(cfg: &Config) -> ExitCode {
    let Some(dir) = &cfg.throttle.state_dir else {
        eprintln!("tollgate: usage needs server.state_dir in the config");
        return ExitCode::from(1);
    };
    match tollgate::throttle::store::read(dir) {
        Ok(lines) => {
            print!("{}", tollgate::throttle::store::report(&lines));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: cannot read {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn run(cfg: Config, source: ConfigSource) -> ExitCode {
    let set = signal_set();
    // SAFETY: blocks the signals in this thread before any worker exists; workers inherit the
    // mask, so only `sigwait` below ever takes them.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let cfg = Arc::new(cfg);
    let handle = match server::start(cfg.clone(), source) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::from(1);
        }
    };
    let drivers: Vec<&str> = handle.drivers().iter().map(|d| d.name()).collect();
    let addrs: Vec<String> = handle.local_addrs().iter().map(|a| a.to_string()).collect();
    eprintln!(
        "tollgate {}: {}, drivers [{}], listening on {}",
        env!("CARGO_PKG_VERSION"),
        plural(drivers.len(), "worker"),
        drivers.join(", "),
        addrs.join(", ")
    );
    if let Some(a) = handle.admin_addr() {
        eprintln!("tollgate: admin (metrics, status, dashboard) on http://{a}/");
    }
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is initialised and `sig` is a valid out pointer.
        let rc = unsafe { libc::sigwait(&set, &mut sig) };
        if rc != 0 {
            continue;
        }
        if sig == libc::SIGTERM || sig == libc::SIGINT {
            break;
        }
        if sig == libc::SIGUSR1 {
            handle.reopen_logs(); // logrotate moved the file: the writer reopens the path
        }
        if sig == libc::SIGHUP {
            // read, validate and apply the config file again, off this thread so SIGTERM is
            // never held up by a reload; the outcome is logged either way
            let control = handle.controller();
            let _ = std::thread::Builder::new()
                .name("tollgate-reload".into())
                .spawn(move || {
                    let _ = control.reload();
                });
        }
    }
    eprintln!(
        "tollgate: draining (up to {} ms)",
        cfg.server.timeouts.shutdown.as_millis()
    );
    handle.shutdown();
    handle.join();
    eprintln!("tollgate: stopped");
    ExitCode::SUCCESS
}
