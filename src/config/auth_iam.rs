//! `type = "aws_iam"` authorizers, compiled (see [`super::auth`]).
//!
//! Owns: checking an IAM authorizer's keys (`region`, `service`, at least one credential,
//! access key ids of AWS's shape and unique within the authorizer, each secret — and session
//! token, when named — present in the environment at load, the principal an IAM ARN, `allow`
//! patterns) and reading the secrets from the environment (never from the file, so `GET
//! /config` has none to show). Leaves out: verifying signatures (see `crate::auth::iam`).
//! Runs on the control thread (start and reload): reading the environment is fine there.

use toml::Spanned;

use super::auth::{
    refuse, IamAuthorizer, IamCredential, ACCESS_KEY_ID_LEN, DEFAULT_IAM_MAX_BODY_BYTES,
    DEFAULT_IAM_SERVICE, DEFAULT_IAM_UNVERIFIED_BODY_BUDGET, IAM_MAX_BODY_BYTES,
    IAM_UNVERIFIED_BODY_BUDGET, UNVERIFIED_BODY_DEADLINE, UNVERIFIED_BODY_TIMEOUT_MS,
};
use super::compile::Ctx;
use super::raw::{RawAuthorizer, RawCredential};

/// Partitions an IAM ARN may name.
const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

/// Compiles authorizer `i` (its `type` is `aws_iam`).
pub(super) fn compile(i: usize, a: &RawAuthorizer, cx: &mut Ctx<'_>) -> Option<IamAuthorizer> {
    const KIND: &str = "aws_iam";
    refuse(&a.issuer, i, "issuer", KIND, cx);
    refuse(&a.audience, i, "audience", KIND, cx);
    refuse(&a.jwks_uri, i, "jwks_uri", KIND, cx);
    refuse(&a.identity_source, i, "identity_source", KIND, cx);
    refuse(&a.leeway_s, i, "leeway_s", KIND, cx);
    refuse(&a.jwks_refresh_s, i, "jwks_refresh_s", KIND, cx);
    refuse(&a.token_cache_entries, i, "token_cache_entries", KIND, cx);
    refuse(&a.token_cache_bytes, i, "token_cache_bytes", KIND, cx);
    refuse(&a.function, i, "function", KIND, cx);
    refuse(&a.url, i, "url", KIND, cx);
    refuse(&a.payload_format, i, "payload_format", KIND, cx);
    refuse(&a.simple_responses, i, "simple_responses", KIND, cx);
    refuse(&a.identity_sources, i, "identity_sources", KIND, cx);
    refuse(&a.ttl_s, i, "ttl_s", KIND, cx);
    refuse(&a.timeout_ms, i, "timeout_ms", KIND, cx);
    refuse(&a.cache_entries, i, "cache_entries", KIND, cx);

    let region = match &a.region {
        Some(r) => scope_part(r, format!("authorizer[{i}].region"), cx),
        None => {
            cx.err(
                &a.name,
                format!("authorizer[{i}].region"),
                "an aws_iam authorizer needs region (the SigV4 credential scope's)",
            );
            None
        }
    };
    let service = match &a.service {
        Some(s) => scope_part(s, format!("authorizer[{i}].service"), cx),
        None => Some(DEFAULT_IAM_SERVICE.to_string()),
    };
    if a.credential.is_empty() {
        cx.err(
            &a.name,
            format!("authorizer[{i}].credential"),
            "an aws_iam authorizer needs at least one [[authorizer.credential]]",
        );
    }
    let mut credentials = Vec::with_capacity(a.credential.len());
    let mut ok = true;
    for (j, c) in a.credential.iter().enumerate() {
        let key = format!("authorizer[{i}].credential[{j}]");
        let dup = a.credential[..j]
            .iter()
            .any(|o| o.access_key_id.get_ref() == c.access_key_id.get_ref());
        if dup {
            let m = "duplicate access key id within this authorizer";
            cx.err(&c.access_key_id, format!("{key}.access_key_id"), m);
            ok = false;
            continue;
        }
        match credential(&key, c, cx) {
            Some(c) => credentials.push(c),
            None => ok = false,
        }
    }
    let max_body = match &a.max_body_bytes {
        Some(v) => cx.range(
            v,
            format!("authorizer[{i}].max_body_bytes"),
            &IAM_MAX_BODY_BYTES,
        ),
        None => DEFAULT_IAM_MAX_BODY_BYTES,
    };
    let unverified_budget = match &a.unverified_body_budget_bytes {
        Some(v) => cx.range(
            v,
            format!("authorizer[{i}].unverified_body_budget_bytes"),
            &IAM_UNVERIFIED_BODY_BUDGET,
        ),
        None => DEFAULT_IAM_UNVERIFIED_BODY_BUDGET,
    };
    let in_range = |v: &Option<Spanned<usize>>, r: &std::ops::RangeInclusive<usize>| {
        v.as_ref().is_none_or(|v| r.contains(v.get_ref()))
    };
    let both_valid = in_range(&a.max_body_bytes, &IAM_MAX_BODY_BYTES)
        && in_range(&a.unverified_body_budget_bytes, &IAM_UNVERIFIED_BODY_BUDGET);
    if both_valid && unverified_budget < max_body {
        // the budget is shared by every body read at once: it must hold one whole body
        let m = format!(
            "{unverified_budget} is below max_body_bytes ({max_body}): one body of that size \
             could never be read"
        );
        let key = format!("authorizer[{i}].unverified_body_budget_bytes");
        match &a.unverified_body_budget_bytes {
            Some(v) => cx.err(v, key, m),
            None => match &a.max_body_bytes {
                Some(v) => cx.err(v, format!("authorizer[{i}].max_body_bytes"), m),
                None => cx.err(&a.name, key, m),
            },
        }
    }
    let unverified_timeout = match &a.unverified_body_timeout_ms {
        Some(v) => cx.millis(
            v,
            format!("authorizer[{i}].unverified_body_timeout_ms"),
            &UNVERIFIED_BODY_TIMEOUT_MS,
        ),
        None => UNVERIFIED_BODY_DEADLINE,
    };
    let (Some(region), Some(service), true, false) = (region, service, ok, credentials.is_empty())
    else {
        return None;
    };
    Some(IamAuthorizer {
        region,
        service,
        max_body,
        unverified_budget,
        unverified_timeout,
        credentials,
    })
}

/// A region or service: one credential-scope element (printable, no `/`, `,` or space).
fn scope_part(v: &Spanned<String>, key: String, cx: &mut Ctx<'_>) -> Option<String> {
    let s = v.get_ref();
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        let m = format!("{s:?} is not a region or service name (a-z, 0-9 and '-')");
        cx.err(v, key, m);
        return None;
    }
    Some(s.clone())
}

/// One `[[authorizer.credential]]`, its secret (and token) read from the environment.
fn credential(key: &str, c: &RawCredential, cx: &mut Ctx<'_>) -> Option<IamCredential> {
    let id = c.access_key_id.get_ref();
    let id_ok = ACCESS_KEY_ID_LEN.contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !id_ok {
        let m = format!(
            "{id:?} is not an AWS access key id ({}..={} characters of A-Z and 0-9)",
            ACCESS_KEY_ID_LEN.start(),
            ACCESS_KEY_ID_LEN.end()
        );
        cx.err(&c.access_key_id, format!("{key}.access_key_id"), m);
    }
    let secret = env_value(&c.secret_env, format!("{key}.secret_env"), cx);
    let token = c
        .session_token_env
        .as_ref()
        .map(|v| env_value(v, format!("{key}.session_token_env"), cx));
    let arn = match parse_principal(c.principal.get_ref()) {
        Ok(p) => Some(p),
        Err(m) => {
            cx.err(&c.principal, format!("{key}.principal"), m);
            None
        }
    };
    let mut allow = Vec::with_capacity(c.allow.get_ref().len());
    if c.allow.get_ref().is_empty() {
        let m = "must name at least one route key pattern (\"GET /pets/*\", \"*\")";
        cx.err(&c.allow, format!("{key}.allow"), m);
    }
    let mut allow_ok = true;
    for (k, p) in c.allow.get_ref().iter().enumerate() {
        match check_pattern(p.get_ref()) {
            Ok(()) => allow.push(p.get_ref().clone()),
            Err(m) => {
                cx.err(p, format!("{key}.allow[{k}]"), m);
                allow_ok = false;
            }
        }
    }
    let (true, Some(secret), Some((partition, account_id)), true, false) =
        (id_ok, secret, arn, allow_ok, allow.is_empty())
    else {
        return None;
    };
    let session_token = match token {
        Some(Some(t)) => Some(t),
        Some(None) => return None,
        None => None,
    };
    Some(IamCredential {
        access_key_id: id.clone(),
        secret_access_key: secret,
        session_token,
        principal: c.principal.get_ref().clone(),
        partition,
        account_id,
        allow,
    })
}

/// The value of the environment variable named by `v`: set and non-empty, else an error.
fn env_value(v: &Spanned<String>, key: String, cx: &mut Ctx<'_>) -> Option<String> {
    let name = v.get_ref();
    if name.is_empty() || name.contains(['=', '\0']) {
        cx.err(v, key, "must name an environment variable");
        return None;
    }
    match std::env::var(name) {
        Ok(s) if !s.is_empty() => Some(s),
        Ok(_) => {
            cx.err(v, key, format!("environment variable {name} is empty"));
            None
        }
        Err(std::env::VarError::NotPresent) => {
            cx.err(v, key, format!("environment variable {name} is not set"));
            None
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            cx.err(v, key, format!("environment variable {name} is not UTF-8"));
            None
        }
    }
}

/// `arn:PARTITION:iam::ACCOUNT:user/[PATH/]NAME` or `role/[PATH/]NAME`, or
/// `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION`: (partition, account).
pub fn parse_principal(arn: &str) -> Result<(String, String), String> {
    let form = "an IAM principal ARN: arn:aws:iam::ACCOUNT:user/NAME, \
                arn:aws:iam::ACCOUNT:role/NAME or arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION";
    let bad = || format!("{arn:?} is not {form}");
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    if !PARTITIONS.contains(&partition)
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let (kind, rest) = resource.split_once('/').ok_or_else(bad)?;
    let segments: Vec<&str> = rest.split('/').collect();
    // IAM names: alphanumerics and +=,.@_- (paths are names separated by '/')
    let name_ok = |s: &&str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    };
    let ok = match (service, kind) {
        ("iam", "user" | "role") => segments.iter().all(name_ok),
        ("sts", "assumed-role") => segments.len() == 2 && segments.iter().all(name_ok),
        _ => false,
    };
    if !ok {
        return Err(bad());
    }
    Ok((partition.to_string(), account.to_string()))
}

/// A route-key pattern: `*`, `$default`, or `METHOD /PATH` where the method is a token (or
/// `*`) and the path starts with `/` (or is `*`); `*` anywhere matches any run of characters.
fn check_pattern(p: &str) -> Result<(), String> {
    if p == "*" || p == "$default" {
        return Ok(());
    }
    let bad = || {
        format!(
            "{p:?} is not a route key pattern: \"METHOD /PATH\" (with '*' for any run of \
             characters), \"*\" or \"$default\""
        )
    };
    let (method, path) = p.split_once(' ').ok_or_else(bad)?;
    let method_ok =
        method == "*" || (!method.is_empty() && method.bytes().all(crate::http::is_tchar));
    let path_ok = (path.starts_with('/') || path.starts_with('*'))
        && path.bytes().all(|b| b.is_ascii_graphic());
    if method_ok && path_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
#[path = "auth_iam_tests.rs"]
mod tests;
