//! The effective configuration as TOML: what `GET /config` serves and what reloads diff.
//!
//! Owns: turning config text into the table the process actually runs, with every default
//! filled in (the text is parsed into the [`super::raw`] structs, where serde has applied each
//! default, and serialised back), redacting secrets, and rendering it with remarks: a value the
//! process runs that differs from the file (restart-only settings a reload could not apply) is
//! shown as running, marked with a comment, and other remarks (resolved upstream addresses) are
//! comments on their key's line. Leaves out: deciding what runs (see [`crate::server`]); this
//! module only renders what it is given. The output is valid TOML that `tollgate check` accepts,
//! apart from the redacted secrets.

use toml::{Table, Value};

use super::raw;

/// What replaces a secret (`[[api_key]]` `value` and `value_sha256`, a function's `env`
/// values).
pub const REDACTED: &str = "<redacted>";

/// Top-level sections in rendering order.
const ORDER: [&str; 11] = [
    "server",
    "tls",
    "admin",
    "access_log",
    "throttle",
    "api_keys",
    "usage_plan",
    "api_key",
    "upstream",
    "function",
    "route",
];

/// A remark on one key of the rendered config.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// The top-level table (`"server"`, `"admin"`) or array of tables (`"upstream"`).
    pub section: &'static str,
    /// For an array of tables, the element (file order); `None` for a table.
    pub index: Option<usize>,
    pub key: &'static str,
    /// The value shown instead of the file's (the running one), if any.
    pub value: Option<Value>,
    /// A comment put at the end of the key's line.
    pub comment: String,
}

/// The effective table of config `source` (defaults filled, secrets kept: for comparisons).
/// `source` is text that compiled, so it parses; an error is reported, never a panic.
pub fn table(source: &str) -> Result<Table, String> {
    let raw = raw::parse(source).map_err(|e| e.message().to_string())?;
    let mut t = Table::try_from(&raw).map_err(|e| e.to_string())?;
    // the one default compile fills rather than serde: no `listen` listens on DEFAULT_LISTEN
    if let Some(Value::Table(server)) = t.get_mut("server") {
        let empty = server
            .get("listen")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty());
        if empty {
            let default = Value::String(raw::DEFAULT_LISTEN.to_string());
            server.insert("listen".to_string(), Value::Array(vec![default]));
        }
    }
    // `throttle.sync_interval_ms` paces every limit (route and plan limits too), so it runs
    // also in a file without a `[throttle]` table
    if !t.contains_key("throttle") {
        let mut g = Table::new();
        g.insert("enforce".to_string(), Value::Boolean(true));
        let sync = raw::DEFAULT_SYNC_INTERVAL_MS as i64;
        g.insert("sync_interval_ms".to_string(), Value::Integer(sync));
        t.insert("throttle".to_string(), Value::Table(g));
    }
    // `strip_api_key` is optional in the raw route only because mock routes refuse it; an
    // HTTP integration without it forwards the key (false)
    if let Some(Value::Array(routes)) = t.get_mut("route") {
        for r in routes.iter_mut().filter_map(Value::as_table_mut) {
            if r.contains_key("upstream") && !r.contains_key("strip_api_key") {
                r.insert("strip_api_key".to_string(), Value::Boolean(false));
            }
            // likewise `websocket` (mock routes refuse it): off unless set
            if r.contains_key("upstream") && !r.contains_key("websocket") {
                r.insert("websocket".to_string(), Value::Boolean(false));
            }
            // a function route's format (other routes refuse the key)
            if r.contains_key("function") && !r.contains_key("payload_format") {
                r.insert("payload_format".to_string(), Value::String("2.0".into()));
            }
        }
    }
    super::functions::fill_defaults(&mut t);
    Ok(t)
}

/// Replaces every API key secret in `t`: the value, and its hash too (a hash of a short key
/// can be searched for).
pub fn redact(t: &mut Table) {
    // a function's environment often carries credentials (database passwords, tokens)
    if let Some(Value::Array(fs)) = t.get_mut("function") {
        for f in fs.iter_mut().filter_map(Value::as_table_mut) {
            if let Some(Value::Table(env)) = f.get_mut("env") {
                for (_, v) in env.iter_mut() {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
    }
    if let Some(Value::Array(keys)) = t.get_mut("api_key") {
        for k in keys.iter_mut().filter_map(Value::as_table_mut) {
            for field in ["value", "value_sha256"] {
                if let Some(v) = k.get_mut(field) {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
    }
}

/// The effective configuration of `source` as TOML text: defaults filled in, secrets redacted,
/// `notes` applied (running values shown, comments added).
pub fn render(source: &str, notes: &[Annotation]) -> String {
    let mut t = match table(source) {
        Ok(t) => t,
        Err(e) => return format!("# the config text could not be re-read: {e}\n"),
    };
    redact(&mut t);
    for n in notes {
        if let (Some(v), Some(slot)) = (&n.value, section_mut(&mut t, n.section, n.index)) {
            slot.insert(n.key.to_string(), v.clone());
        }
    }
    // sections in the order the README documents them (a table sorts its keys)
    let mut body = String::new();
    let mut names: Vec<String> = ORDER.iter().map(|s| s.to_string()).collect();
    names.extend(t.keys().filter(|k| !ORDER.contains(&k.as_str())).cloned());
    for name in names {
        let Some(v) = t.remove(&name) else { continue };
        if v.as_array().is_some_and(|a| a.is_empty()) {
            continue; // no `[[usage_plan]]` at all: `usage_plan = []` would read as a key of the
                      // table above it
        }
        let mut one = Table::new();
        one.insert(name, v);
        match toml::to_string_pretty(&one) {
            Ok(b) => {
                body.push_str(&b);
                body.push('\n');
            }
            Err(e) => return format!("# the config could not be rendered: {e}\n"),
        }
    }
    let mut out = String::from(
        "# effective configuration: every default filled in, as this process runs it;\n\
         # API key secrets redacted\n",
    );
    out.push_str(&annotate(&body, notes));
    out
}

/// The table `section` (element `index` of an array of tables), created for a table that the
/// file does not have.
fn section_mut<'a>(t: &'a mut Table, section: &str, index: Option<usize>) -> Option<&'a mut Table> {
    match index {
        None => t
            .entry(section.to_string())
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut(),
        Some(i) => t
            .get_mut(section)?
            .as_array_mut()?
            .get_mut(i)?
            .as_table_mut(),
    }
}

/// Puts each note's comment at the end of its key's value in rendered `body`, found through the
/// parsed document (a line-by-line scan would take a line inside a multi-line string, such as
/// a mock body, for a key or a table header).
fn annotate(body: &str, notes: &[Annotation]) -> String {
    let Ok(mut doc) = body.parse::<toml_edit::DocumentMut>() else {
        return body.to_string(); // rendered by `toml`, so it parses; remarks are optional
    };
    for n in notes.iter().filter(|n| !n.comment.is_empty()) {
        let Some(section) = doc.get_mut(n.section) else {
            continue;
        };
        let table: Option<&mut dyn toml_edit::TableLike> = match n.index {
            None => section.as_table_like_mut(),
            Some(i) => section
                .as_array_of_tables_mut()
                .and_then(|a| a.get_mut(i))
                .map(|t| t as &mut dyn toml_edit::TableLike),
        };
        let value = table
            .and_then(|t| t.get_mut(n.key))
            .and_then(|v| v.as_value_mut());
        if let Some(v) = value {
            let comment = n.comment.replace(['\n', '\r'], " ");
            v.decor_mut().set_suffix(format!("  # {comment}"));
        }
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[server]\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n\n[[upstream]]\nname = \"u\"\ntargets = [\"127.0.0.1:9\"]\n\n[[route]]\nkey = \"GET /x\"\nupstream = \"u\"\n\n[[api_key]]\nname = \"a\"\nvalue = \"secret-0123456789abcdef\"\n[[api_key]]\nname = \"b\"\nvalue_sha256 = \"00ff\"\n";

    /// The remark a reload leaves on `workers` (restart-only): 2 running, 1 in the file.
    fn workers_running_2() -> Annotation {
        Annotation {
            section: "server",
            index: None,
            key: "workers",
            value: Some(Value::Integer(2)),
            comment: "running; the file has 1, applies after restart".into(),
        }
    }

    /// The remark on upstream `index`'s `targets`: the address it resolved to.
    fn resolved(index: usize, address: &str) -> Annotation {
        Annotation {
            section: "upstream",
            index: Some(index),
            key: "targets",
            value: None,
            comment: format!("resolved: {address}"),
        }
    }

    #[test]
    fn defaults_are_filled_and_secrets_redacted() {
        let r = render(TEXT, &[]);
        for want in [
            "keepalive_idle_ms = 75000",
            "connect_timeout_ms = 2000",
            "max_idle_per_worker = 64",
            "header = \"x-api-key\"",
            "strip_api_key = false",
            "[throttle]\nenforce = true\nsync_interval_ms = 10\n",
            "value = \"<redacted>\"",
            "value_sha256 = \"<redacted>\"",
        ] {
            assert!(r.contains(want), "{want} missing from:\n{r}");
        }
        assert!(!r.contains("secret-0123") && !r.contains("00ff"), "{r}");
        // valid TOML that compiles again (the redacted secrets aside)
        let again = r
            .replace(
                "value_sha256 = \"<redacted>\"",
                "value = \"another-secret-0123456789\"",
            )
            .replace(
                "value = \"<redacted>\"",
                "value = \"some-secret-0123456789\"",
            );
        if let Err(e) = crate::config::from_str(&again) {
            panic!("{}\n{again}", e.render("effective"));
        }
    }

    #[test]
    fn the_demo_config_renders_to_an_equivalent_config() {
        let text = crate::config::EMBEDDED_CONFIG;
        let r = render(text, &[]);
        assert!(!r.contains("demo-key-0123456789abcdef"), "{r}");
        let again = r.replace(
            "value = \"<redacted>\"",
            "value = \"demo-key-0123456789abcdef\"",
        );
        let a = crate::config::from_str(text).unwrap();
        let b = crate::config::from_str(&again)
            .unwrap_or_else(|e| panic!("{}\n{again}", e.render("effective")));
        // the same routes and upstreams, and the same effective table
        assert_eq!(a.upstreams, b.upstreams);
        let ids =
            |c: &crate::config::Config| c.routes.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(table(text).unwrap(), table(&again).unwrap());
    }

    #[test]
    fn remarks_never_land_inside_a_multi_line_string() {
        // a mock body whose lines look like the config's own sections and keys
        let body = "a\n[server]\nworkers = 1\n[[upstream]]\ntargets = 3\n";
        let text = TEXT.replace(
            "key = \"GET /x\"\nupstream = \"u\"\n",
            &format!("key = \"GET /x\"\nmock = {{ body = {body:?} }}\n"),
        ) + "[[upstream]]\nname = \"v\"\ntargets = [\"127.0.0.1:10\"]\n";
        let notes = [workers_running_2(), resolved(1, "127.0.0.1:10")];
        let r = render(&text, &notes);
        let t = r.parse::<Table>().unwrap_or_else(|e| panic!("{e}\n{r}"));
        assert_eq!(t["route"][0]["mock"]["body"].as_str(), Some(body), "{r}");
        assert_eq!(t["server"]["workers"].as_integer(), Some(2), "{r}");
        assert!(
            r.contains("workers = 2  # running; the file has 1, applies after restart\n"),
            "{r}"
        );
        // the remark is on the second upstream's line, not on the first's
        assert!(
            r.contains("targets = [\"127.0.0.1:10\"]  # resolved: 127.0.0.1:10\n"),
            "{r}"
        );
        assert!(!r.contains("targets = [\"127.0.0.1:9\"]  #"), "{r}");
    }

    #[test]
    fn the_default_listen_address_is_shown() {
        let text = "[[route]]\nkey = \"GET /x\"\nmock = {}\n";
        let t = render(text, &[]).parse::<Table>().unwrap();
        let listen = t["server"]["listen"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(listen, [Value::String(raw::DEFAULT_LISTEN.into())]);
        // and spelling it out is no different
        let spelled = format!("[server]\nlisten = [\"{}\"]\n{text}", raw::DEFAULT_LISTEN);
        assert_eq!(table(text).unwrap(), table(&spelled).unwrap());
    }

    #[test]
    fn running_values_replace_the_file_and_are_marked() {
        let notes = [workers_running_2(), resolved(0, "127.0.0.1:9")];
        let r = render(TEXT, &notes);
        assert!(
            r.contains("workers = 2  # running; the file has 1, applies after restart\n"),
            "{r}"
        );
        assert!(r.contains("  # resolved: 127.0.0.1:9\n"), "{r}");
        assert!(r.parse::<Table>().is_ok(), "{r}");
        // a key whose array spans lines (pretty output) takes the comment on its first line
        let two = TEXT.replace("[\"127.0.0.1:9\"]", "[\"127.0.0.1:9\", \"127.0.0.1:10\"]");
        let r = render(&two, &notes);
        assert!(r.contains("# resolved: 127.0.0.1:9"), "{r}");
        let t = r.parse::<Table>().unwrap_or_else(|e| panic!("{e}\n{r}"));
        let targets = t["upstream"][0]["targets"].as_array().map(Vec::len);
        assert_eq!(targets, Some(2), "{r}");
    }
}
