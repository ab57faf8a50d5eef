//! One API route deployed on one side of a stage: a copy of the route with the stage's
//! variables substituted and the API's and stage's settings applied (see [`super::apis`]).
//!
//! Owns: `$stageVariables.NAME` / `${stageVariables.NAME}` in `upstream`, `function`, `path`
//! and mock bodies and headers (an unknown name is an error naming it and the variables the
//! stage has); the stage's default `throttle`; the API's CORS; the API's own authorizers and
//! models (`API/NAME`); an upstream written as a URL and a function written as a Lambda ARN
//! (implicit `[[upstream]]` / `[[function]]` entries, made once and shared). Leaves out:
//! mapping values and templates (they read the route's variables where they are compiled) and
//! everything a plain route is checked for (the rest of [`super::compile`]).

use std::ops::Range;

use toml::Spanned;

use super::apis::Vars;
use super::compile::Ctx;
use super::raw::{
    RawApiFile, RawConfig, RawFunction, RawLimit, RawRoute, RawRouteCors, RawUpstream,
};

/// What a route is deployed with.
pub(super) struct Scope<'a> {
    pub api: &'a str,
    /// The `[[api]]`'s name in the config.
    pub at: Range<usize>,
    pub file: &'a RawApiFile,
    pub vars: &'a Vars,
    pub throttle: Option<&'a Spanned<RawLimit>>,
}

/// `r` deployed with `s`; it will be `raw.route[raw.route.len()]` (errors are keyed so).
pub(super) fn route(
    r: &RawRoute,
    s: &Scope<'_>,
    raw: &mut RawConfig,
    cx: &mut Ctx<'_>,
) -> RawRoute {
    let i = raw.route.len();
    let mut r = r.clone();
    for (field, name) in [
        (&mut r.upstream, "upstream"),
        (&mut r.function, "function"),
        (&mut r.path, "path"),
    ] {
        if let Some(f) = field {
            let key = format!("route[{i}].{name}");
            if let Some(v) = substitute_or_report(f, s.vars, &key, cx) {
                *f = Spanned::new(f.span(), v);
            }
        }
    }
    if let Some(m) = &mut r.mock {
        let span = m.span();
        let key = format!("route[{i}].mock");
        let mock = m.get_mut();
        let body = Spanned::new(span.clone(), std::mem::take(&mut mock.body));
        mock.body =
            substitute_or_report(&body, s.vars, &key, cx).unwrap_or_else(|| body.into_inner());
        for v in mock.headers.values_mut() {
            let sv = Spanned::new(span.clone(), std::mem::take(v));
            *v = substitute_or_report(&sv, s.vars, &key, cx).unwrap_or_else(|| sv.into_inner());
        }
    }
    if r.throttle.is_none() {
        r.throttle = s.throttle.cloned();
    }
    if let (None, Some(c)) = (&r.cors, &s.file.cors) {
        let policy = RawRouteCors::Policy(Box::new(c.clone()));
        r.cors = Some(Spanned::new(s.at.clone(), policy));
    }
    if let Some(a) = &mut r.authorizer {
        if s.file
            .authorizer
            .iter()
            .any(|x| x.name.get_ref() == a.get_ref())
        {
            *a = Spanned::new(a.span(), scoped(s.api, a.get_ref()));
        }
    }
    if let Some(v) = &mut r.validate {
        if let Some(b) = &mut v.get_mut().body {
            if s.file.model.iter().any(|x| x.name.get_ref() == b.get_ref()) {
                *b = Spanned::new(b.span(), scoped(s.api, b.get_ref()));
            }
        }
    }
    if let Some(u) = &r.upstream {
        implicit_upstream(u, i, raw, cx);
    }
    if let Some(f) = &mut r.function {
        if let Some(name) = implicit_function(f, raw) {
            *f = Spanned::new(f.span(), name);
        }
    }
    r
}

/// An API's own authorizer or model, as the config knows it.
fn scoped(api: &str, name: &str) -> String {
    format!("{api}/{name}")
}

/// Adds an API's authorizers and models to the config under their scoped names (once per
/// API, whatever its stages).
pub(super) fn scoped_entries(api: &str, file: &RawApiFile, raw: &mut RawConfig) {
    for a in &file.authorizer {
        let mut a = a.clone();
        a.name = Spanned::new(a.name.span(), scoped(api, a.name.get_ref()));
        // a request authorizer's Lambda by ARN, as a route's function
        if let Some(f) = &mut a.function {
            if let Some(name) = implicit_function(f, raw) {
                *f = Spanned::new(f.span(), name);
            }
        }
        raw.authorizer.push(a);
    }
    for m in &file.model {
        let mut m = m.clone();
        m.name = Spanned::new(m.name.span(), scoped(api, m.name.get_ref()));
        raw.model.push(m);
    }
}

/// `v` with its stage variables substituted (`None`: it has none); an unknown variable is
/// an error naming it.
fn substitute_or_report(
    v: &Spanned<String>,
    vars: &Vars,
    key: &str,
    cx: &mut Ctx<'_>,
) -> Option<String> {
    match substitute(v.get_ref(), vars) {
        Ok(s) => s,
        Err(name) => {
            let known: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
            let m = if known.is_empty() {
                format!("unknown stage variable {name:?} (the stage has no variables)")
            } else {
                format!(
                    "unknown stage variable {name:?} (the stage has {})",
                    known.join(", ")
                )
            };
            cx.err(v, key.to_string(), m);
            None
        }
    }
}

/// Replaces `${stageVariables.NAME}` and `$stageVariables.NAME` (NAME: letters, digits, `_`)
/// in `s` with the variable's value. `Ok(None)`: nothing to replace; `Err(NAME)`: unknown.
pub fn substitute(s: &str, vars: &[(String, String)]) -> Result<Option<String>, String> {
    const PLAIN: &str = "$stageVariables.";
    const BRACED: &str = "${stageVariables.";
    if !s.contains("stageVariables.") {
        return Ok(None);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let next = [rest.find(BRACED), rest.find(PLAIN)]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = next else {
            out.push_str(rest);
            return Ok(Some(out));
        };
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let (braced, tail) = match after.strip_prefix(BRACED) {
            Some(t) => (true, t),
            None => (false, after.get(PLAIN.len()..).unwrap_or_default()),
        };
        let n = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..n];
        let mut consumed = n;
        if braced {
            if !tail[n..].starts_with('}') {
                return Err(format!("${{stageVariables.{name}"));
            }
            consumed += 1;
        }
        let value = vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| name.to_string())?;
        out.push_str(value);
        rest = &tail[consumed..];
    }
}

/// `upstream = "https://host[:port]"`: an upstream of that name unless one is declared.
fn implicit_upstream(u: &Spanned<String>, i: usize, raw: &mut RawConfig, cx: &mut Ctx<'_>) {
    let url = u.get_ref();
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => return,
    };
    if raw.upstream.iter().any(|x| x.name.get_ref() == url) {
        return;
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        let m = format!(
            "{url:?}: an upstream URL is a scheme and a host (and port) only; the path goes in `path`"
        );
        cx.err(u, format!("route[{i}].upstream"), m);
        return;
    }
    let has_port = match authority.rsplit_once(':') {
        Some((h, p)) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':'),
        None => false,
    } && !(authority.starts_with('[') && authority.ends_with(']'));
    let target = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let text = format!(
        "name = {}\ntargets = [{}]\n{}",
        toml::Value::from(url.as_str()),
        toml::Value::from(target.as_str()),
        if tls { "tls = {}\n" } else { "" }
    );
    match toml::from_str::<RawUpstream>(&text) {
        Ok(mut up) => {
            up.name = Spanned::new(u.span(), url.clone());
            let target = super::raw_targets::RawTarget {
                address: Spanned::new(u.span(), target),
                weight: Spanned::new(u.span(), super::raw_targets::DEFAULT_WEIGHT),
                table: false,
            };
            up.targets = Spanned::new(u.span(), vec![Spanned::new(u.span(), target)]);
            raw.upstream.push(up);
        }
        Err(e) => cx.err(u, format!("route[{i}].upstream"), e.message().to_string()),
    }
}

/// `function = "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]"` (or API Gateway's
/// integration URI around it): the `[[function]]` of that name or ARN (a local function of the
/// same name serves it), else a remote function of its own, named `NAME` (`NAME-REGION-ACCOUNT`
/// when another ARN took that name). Returns the name to use when it differs from what is
/// written.
fn implicit_function(f: &Spanned<String>, raw: &mut RawConfig) -> Option<String> {
    let written = f.get_ref();
    let arn = match written.strip_prefix("arn:aws:apigateway:") {
        Some(_) => {
            let inner = written.split_once("/functions/")?.1;
            inner.strip_suffix("/invocations").unwrap_or(inner)
        }
        None if written.starts_with("arn:aws:lambda:") => written.as_str(),
        None => return None,
    };
    let parts: Vec<&str> = arn.split(':').collect();
    let name = parts
        .get(6)
        .copied()
        .filter(|_| parts.get(5) == Some(&"function"))?;
    if let Some(d) = raw.function.iter().find(|d| {
        d.name.get_ref() == name && d.arn.as_ref().is_none_or(|a| a.get_ref() == arn)
            || d.name.get_ref() == arn
            || d.arn.as_ref().is_some_and(|a| a.get_ref() == arn)
    }) {
        let n = d.name.get_ref().clone();
        return (&n != written).then_some(n);
    }
    let taken = raw.function.iter().any(|d| d.name.get_ref() == name);
    let own = match taken {
        false => name.to_string(),
        true => {
            let long = format!(
                "{name}-{}-{}",
                parts.get(3).unwrap_or(&""),
                parts.get(4).unwrap_or(&"")
            );
            long.chars().take(64).collect()
        }
    };
    let text = format!(
        "name = {}\narn = {}\n",
        toml::Value::from(own.as_str()),
        toml::Value::from(arn)
    );
    let mut rf: RawFunction = toml::from_str(&text).ok()?;
    rf.name = Spanned::new(f.span(), own.clone());
    rf.arn = Some(Spanned::new(f.span(), arn.to_string()));
    raw.function.push(rf);
    (&own != written).then_some(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![
            ("backend".into(), "pets-blue".into()),
            ("fn".into(), "pets-live".into()),
        ]
    }

    #[test]
    fn both_forms_are_substituted() {
        let v = vars();
        assert_eq!(substitute("plain", &v), Ok(None));
        assert_eq!(
            substitute("$stageVariables.backend", &v),
            Ok(Some("pets-blue".into()))
        );
        assert_eq!(
            substitute(
                "http://${stageVariables.backend}:8080/x/$stageVariables.fn/y",
                &v
            ),
            Ok(Some("http://pets-blue:8080/x/pets-live/y".into()))
        );
        assert_eq!(substitute("${stageVariables.nope}", &v), Err("nope".into()));
        assert!(substitute("${stageVariables.backend", &v).is_err());
    }
}
