//! `[[authorizer]]` of `type = "aws_iam"`: what compiles, and every refusal naming its key
//! and line.

use super::super::{from_str, AuthorizerKind};
use super::parse_principal;

/// Environment variables these tests set: unique names, so parallel tests never race on one.
const SECRET_VAR: &str = "TOLLGATE_TEST_AUTH_IAM_SECRET";
const TOKEN_VAR: &str = "TOLLGATE_TEST_AUTH_IAM_TOKEN";
const EMPTY_VAR: &str = "TOLLGATE_TEST_AUTH_IAM_EMPTY";

fn set_env() {
    std::env::set_var(SECRET_VAR, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    std::env::set_var(TOKEN_VAR, "session-token");
    std::env::set_var(EMPTY_VAR, "");
}

fn config(authorizer: &str) -> String {
    format!(
        "[[authorizer]]\nname = \"iam\"\ntype = \"aws_iam\"\n{authorizer}\n\
         [[route]]\nkey = \"GET /pets/{{id}}\"\nmock = {{}}\nauthorizer = \"iam\"\n"
    )
}

fn credential(extra: &str) -> String {
    format!(
        "[[authorizer.credential]]\naccess_key_id = \"AKIAIOSFODNN7EXAMPLE\"\n\
         secret_env = \"{SECRET_VAR}\"\nprincipal = \"arn:aws:iam::123456789012:user/alice\"\n\
         allow = [\"GET /pets/*\"]\n{extra}"
    )
}

/// The errors of `text` as `(line, key, message)`.
fn errors(text: &str) -> Vec<(usize, String, String)> {
    set_env();
    match from_str(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            e.0.into_iter()
                .map(|e| (e.line, e.key, e.message))
                .collect()
        }
    }
}

#[test]
fn a_credential_compiles_with_its_secret_token_and_account() {
    set_env();
    let text = config(&format!(
        "region = \"eu-west-1\"\n{}",
        credential(&format!("session_token_env = \"{TOKEN_VAR}\"\n"))
    ));
    let cfg = from_str(&text).unwrap_or_else(|e| panic!("{}", e.render("t")));
    let AuthorizerKind::Iam(a) = &cfg.authorizers[0].kind else {
        panic!("not iam")
    };
    assert_eq!(
        (a.region.as_str(), a.service.as_str()),
        ("eu-west-1", "execute-api")
    );
    let c = &a.credentials[0];
    assert_eq!(
        c.secret_access_key,
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    );
    assert_eq!(c.session_token.as_deref(), Some("session-token"));
    assert_eq!(
        (c.partition.as_str(), c.account_id.as_str()),
        ("aws", "123456789012")
    );
    assert_eq!(c.allow, ["GET /pets/*"]);
    // never the secret in Debug
    let dbg = format!("{a:?}");
    assert!(
        !dbg.contains("wJalr") && !dbg.contains("session-token"),
        "{dbg}"
    );
}

#[test]
fn missing_region_and_credential_are_refused() {
    let e = errors(&config(""));
    let keys: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        keys,
        [(2, "authorizer[0].region"), (2, "authorizer[0].credential")],
        "{e:?}"
    );
}

#[test]
fn secret_env_must_be_set_and_non_empty() {
    let unset = config(&format!(
        "region = \"eu-west-1\"\n{}",
        credential("").replace(SECRET_VAR, "TOLLGATE_TEST_AUTH_IAM_NEVER_SET")
    ));
    let e = errors(&unset);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        (7, "authorizer[0].credential[0].secret_env")
    );
    assert!(
        e[0].2
            .contains("TOLLGATE_TEST_AUTH_IAM_NEVER_SET is not set"),
        "{e:?}"
    );
    let empty = config(&format!(
        "region = \"eu-west-1\"\n{}",
        credential(&format!("session_token_env = \"{EMPTY_VAR}\"\n"))
    ));
    let e = errors(&empty);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        (10, "authorizer[0].credential[0].session_token_env")
    );
    assert!(e[0].2.contains("is empty"), "{e:?}");
}

#[test]
fn access_key_ids_have_aws_shape_and_are_unique() {
    for bad in ["AKIA", "akiaiosfodnn7example", "AKIAIOSFODNN7EXAMP-E"] {
        let text = config(&format!(
            "region = \"eu-west-1\"\n{}",
            credential("").replace("AKIAIOSFODNN7EXAMPLE", bad)
        ));
        let e = errors(&text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].0, e[0].1.as_str()),
            (6, "authorizer[0].credential[0].access_key_id")
        );
        assert!(e[0].2.contains("not an AWS access key id"), "{e:?}");
    }
    let twice = config(&format!(
        "region = \"eu-west-1\"\n{}{}",
        credential(""),
        credential("")
    ));
    let e = errors(&twice);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        (11, "authorizer[0].credential[1].access_key_id")
    );
    assert!(e[0].2.contains("duplicate"), "{e:?}");
}

#[test]
fn principal_and_allow_are_checked() {
    let text = config(&format!(
        "region = \"eu-west-1\"\n{}",
        credential("")
            .replace(
                "arn:aws:iam::123456789012:user/alice",
                "arn:aws:iam::12345:user/alice"
            )
            .replace("[\"GET /pets/*\"]", "[\"GET pets\", \"\"]")
    ));
    let e = errors(&text);
    let keys: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        keys,
        [
            (8, "authorizer[0].credential[0].principal"),
            (9, "authorizer[0].credential[0].allow[0]"),
            (9, "authorizer[0].credential[0].allow[1]"),
        ],
        "{e:?}"
    );
    let none = config(&format!(
        "region = \"eu-west-1\"\n{}",
        credential("").replace("[\"GET /pets/*\"]", "[]")
    ));
    let e = errors(&none);
    assert_eq!(e[0].1, "authorizer[0].credential[0].allow", "{e:?}");
}

#[test]
fn keys_of_other_types_are_refused() {
    let text = config(&format!(
        "region = \"eu-west-1\"\nissuer = \"https://x\"\nttl_s = 5\n{}",
        credential("")
    ));
    let e = errors(&text);
    let keys: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        keys,
        [(5, "authorizer[0].issuer"), (6, "authorizer[0].ttl_s")],
        "{e:?}"
    );
    assert!(e[0].2.contains("aws_iam authorizer has no issuer"), "{e:?}");
}

#[test]
fn principal_arns() {
    for ok in [
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:iam::123456789012:user/division/team/alice",
        "arn:aws-cn:iam::123456789012:role/deploy",
        "arn:aws:sts::123456789012:assumed-role/deploy/session-1",
    ] {
        assert!(parse_principal(ok).is_ok(), "{ok}");
    }
    for bad in [
        "arn:aws:iam::123456789012:group/admins",
        "arn:aws:iam:eu-west-1:123456789012:user/alice",
        "arn:aws:sts::123456789012:assumed-role/deploy",
        "arn:other:iam::123456789012:user/alice",
        "arn:aws:iam::123456789012:user/",
        "arn:aws:iam::123456789012:user/a b",
        "arn:aws:iam::1234567890123:user/alice",
    ] {
        assert!(parse_principal(bad).is_err(), "{bad}");
    }
}

#[test]
fn max_body_bytes_is_ranged_and_only_for_aws_iam() {
    set_env();
    let ok = config(&format!(
        "region = \"eu-west-1\"\nmax_body_bytes = 1024\n{}",
        credential("")
    ));
    let cfg = from_str(&ok).unwrap_or_else(|e| panic!("{}", e.render("t")));
    let AuthorizerKind::Iam(a) = &cfg.authorizers[0].kind else {
        panic!("not iam")
    };
    assert_eq!(a.max_body, 1024);
    let zero = ok.replace("max_body_bytes = 1024", "max_body_bytes = 0");
    let e = errors(&zero);
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        (5, "authorizer[0].max_body_bytes"),
        "{e:?}"
    );
    let jwt = "[[authorizer]]\nname = \"j\"\ntype = \"jwt\"\nmax_body_bytes = 5\n\
               [[route]]\nkey = \"GET /x\"\nmock = {}\n";
    let e = errors(jwt);
    assert!(
        e.iter().any(|(l, k, m)| *l == 4
            && k == "authorizer[0].max_body_bytes"
            && m.contains("a jwt authorizer has no max_body_bytes")),
        "{e:?}"
    );
}
