//! The access log's authorizer variables: who the route's authorizer admitted and, when it
//! refused, why, under API Gateway's names.
//!
//! Owns: [`AuthField`] (the fixed names: `$context.authorizer.principalId`,
//! `$context.authorizer.error`, `$context.identity.userArn` / `accessKey` / `accountId` /
//! `caller` / `user`), parsing the open-ended `$context.authorizer.NAME` and
//! `$context.authorizer.claims.NAME` ([`authorizer_path`]) and the text each variable logs from
//! the request's [`Principal`] (`-` when there is none, or it does not carry the value).
//! Leaves out: the values themselves (`Principal::authorizer_var` / `identity_var` in
//! `crate::auth`), the line formats and escaping (the parent module).

use std::borrow::Cow;

use crate::auth::Principal;

/// An authorizer `$context` variable with a fixed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthField {
    /// `authorizer.principalId`: the principal's id (a JWT's `sub`, a request authorizer's
    /// `principalId`, an IAM caller's ARN).
    PrincipalId,
    /// `authorizer.error`: the authorizer's words when it refused the request.
    Error,
    /// `identity.userArn` / `accessKey` / `accountId` / `caller` / `user` of an IAM caller.
    Identity(&'static str),
}

/// The fixed names, longest match first is not needed: none is a prefix of another followed by
/// a name character.
pub const AUTH_FIELDS: [(&str, AuthField); 7] = [
    ("authorizer.principalId", AuthField::PrincipalId),
    ("authorizer.error", AuthField::Error),
    ("identity.userArn", AuthField::Identity("userArn")),
    ("identity.accessKey", AuthField::Identity("accessKey")),
    ("identity.accountId", AuthField::Identity("accountId")),
    ("identity.caller", AuthField::Identity("caller")),
    ("identity.user", AuthField::Identity("user")),
];

/// The prefix of the open-ended variables.
const AUTHORIZER: &str = "authorizer.";

/// A name character of `$context.authorizer.NAME`: letters, digits, `_`, and `:` (claim names
/// such as `cognito:groups`); `.` separates `claims` from the claim's name.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.'
}

/// `after` (the text after `$context.`) starts with `authorizer.NAME` or
/// `authorizer.claims.NAME`: the length it spans and the path `Principal::authorizer_var`
/// reads (`NAME` or `claims.NAME`). A trailing `.` ends the variable (`...principal.` is the
/// variable and a dot); an empty name, or `claims.` without one, is no variable.
pub fn authorizer_path(after: &str) -> Option<(usize, Box<str>)> {
    let rest = after.strip_prefix(AUTHORIZER)?;
    let end = rest.find(|c: char| !name_char(c)).unwrap_or(rest.len());
    let path = rest.get(..end)?.trim_end_matches('.');
    if path.is_empty() || path == "claims" || path.starts_with('.') || path.contains("..") {
        return None;
    }
    Some((AUTHORIZER.len() + path.len(), path.into()))
}

/// The text of a fixed-name variable; `-` when absent.
pub fn text<'a>(
    f: AuthField,
    principal: Option<&'a Principal>,
    error: Option<&'a str>,
) -> Cow<'a, [u8]> {
    let v: Option<Cow<'a, str>> = match f {
        AuthField::PrincipalId => principal
            .map(|p| Cow::Borrowed(&*p.id))
            .filter(|s| !s.is_empty()),
        AuthField::Error => error.map(Cow::Borrowed),
        AuthField::Identity(name) => principal
            .and_then(|p| p.identity_var(name))
            .map(Cow::Borrowed),
    };
    dash(v)
}

/// The text of `$context.authorizer.PATH`; `-` when absent.
pub fn path_text<'a>(path: &str, principal: Option<&'a Principal>) -> Cow<'a, [u8]> {
    dash(principal.and_then(|p| p.authorizer_var(path)))
}

fn dash(v: Option<Cow<'_, str>>) -> Cow<'_, [u8]> {
    match v {
        Some(Cow::Borrowed(s)) if !s.is_empty() => Cow::Borrowed(s.as_bytes()),
        Some(Cow::Owned(s)) if !s.is_empty() => Cow::Owned(s.into_bytes()),
        _ => Cow::Borrowed(b"-"),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests::entry;
    use super::super::{format_line, Format};
    use crate::auth::{Identity, Principal};
    use crate::fmt::clf_time;

    pub(in crate::accesslog) fn jwt_principal() -> Principal {
        let claims = serde_json::json!({
            "sub": "alice \"A\"",
            "email": "alice@example.com",
            "cognito:groups": ["admin", "ops"],
            "exp": 1_900_000_000u64,
            "nothing": null,
        });
        Principal {
            authorizer: 0,
            id: "alice \"A\"".into(),
            identity: Identity::Jwt {
                claims: claims.as_object().cloned().unwrap_or_default(),
                scopes: vec!["read".into()],
            },
            throttle: None,
        }
    }

    fn lambda_principal() -> Principal {
        let context = serde_json::json!({ "tenant": "t-42", "tier": 3, "admin": true });
        Principal {
            authorizer: 1,
            id: "user-7".into(),
            identity: Identity::Lambda {
                context: context.as_object().cloned().unwrap_or_default(),
            },
            throttle: None,
        }
    }

    fn iam_principal() -> Principal {
        Principal {
            authorizer: 2,
            id: "arn:aws:iam::123456789012:user/bob".into(),
            identity: Identity::Iam {
                access_key: "AKIDEXAMPLE".into(),
                user_arn: "arn:aws:iam::123456789012:user/bob".into(),
                account_id: "123456789012".into(),
            },
            throttle: None,
        }
    }

    fn line(fmt: &str, principal: Option<&Principal>, error: Option<&str>) -> String {
        let f = Format::parse(fmt).unwrap();
        let mut e = entry();
        e.principal = principal;
        e.authorizer_error = error;
        let mut out = Vec::new();
        format_line(&f, &e, &clf_time(e.time), &mut out);
        String::from_utf8(out).unwrap()
    }

    const ALL: &str = "$context.authorizer.principalId|$context.authorizer.claims.email|$context.authorizer.claims.cognito:groups|$context.authorizer.claims.exp|$context.authorizer.claims.nothing|$context.authorizer.tenant|$context.authorizer.tier|$context.identity.userArn|$context.identity.accessKey|$context.identity.accountId|$context.identity.caller|$context.identity.user|$context.authorizer.error";

    #[test]
    fn jwt_claims_by_name() {
        let p = jwt_principal();
        assert_eq!(
            line(ALL, Some(&p), None),
            "alice \\\"A\\\"|alice@example.com|[\\\"admin\\\",\\\"ops\\\"]|1900000000|-|-|-|-|-|-|-|-|-\n"
        );
    }

    #[test]
    fn request_authorizer_context_by_name() {
        let p = lambda_principal();
        assert_eq!(
            line(ALL, Some(&p), None),
            "user-7|-|-|-|-|t-42|3|-|-|-|-|-|-\n"
        );
        assert_eq!(
            line("$context.authorizer.admin.", Some(&p), None),
            "true.\n"
        );
    }

    #[test]
    fn iam_identity() {
        let p = iam_principal();
        let arn = "arn:aws:iam::123456789012:user/bob";
        assert_eq!(
            line(ALL, Some(&p), None),
            format!("{arn}|-|-|-|-|-|-|{arn}|AKIDEXAMPLE|123456789012|{arn}|{arn}|-\n")
        );
    }

    #[test]
    fn no_principal_logs_dashes_and_the_refusal() {
        assert_eq!(
            line(ALL, None, Some("token expired")),
            "-|-|-|-|-|-|-|-|-|-|-|-|token expired\n"
        );
    }

    #[test]
    fn names_parse_and_unknown_identity_names_are_refused() {
        assert_eq!(
            Format::parse("$context.identity.nope"),
            Err("unknown variable $context.identity.nope".into())
        );
        for bad in [
            "$context.authorizer.",
            "$context.authorizer.claims",
            "$context.authorizer.claims.",
        ] {
            assert!(Format::parse(bad).is_err(), "{bad}");
        }
        // a fixed name followed by more name characters is an open-ended one
        let p = lambda_principal();
        let mut q = lambda_principal();
        if let crate::auth::Identity::Lambda { context } = &mut q.identity {
            context.insert("principalIdX".into(), "x".into());
            context.insert("error".into(), "ctx-error".into());
        }
        assert_eq!(
            line("$context.authorizer.principalIdX", Some(&q), None),
            "x\n"
        );
        // `error` is the refusal, not a context key
        assert_eq!(line("$context.authorizer.error", Some(&q), None), "-\n");
        assert_eq!(
            line(
                "[$context.authorizer.principalId] $context.authorizer.tenant-$context.status",
                Some(&p),
                None
            ),
            "[user-7] t-42-200\n"
        );
    }

    #[test]
    fn json_line_carries_the_principal_id() {
        let p = iam_principal();
        let mut e = entry();
        e.principal = Some(&p);
        let mut out = Vec::new();
        format_line(&Format::Json, &e, &clf_time(e.time), &mut out);
        let line = String::from_utf8(out).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["principalId"], "arn:aws:iam::123456789012:user/bob");
        e.principal = None;
        let mut out = Vec::new();
        format_line(&Format::Json, &e, &clf_time(e.time), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["principalId"], "-");
    }
}
