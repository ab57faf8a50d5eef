//! IAM policy documents a request authorizer answers with: `Allow` / `Deny` statements on
//! `execute-api:Invoke` resources (ARNs with `*` and `?` wildcards), evaluated against the
//! route's ARN as IAM does (an explicit Deny wins, else an Allow is needed): sans-IO.
//!
//! Owns: reading a `policyDocument` ([`Policy::parse`]: `Statement` an object or an array;
//! `Action` and `Resource` a string or an array of strings; `Effect` `Allow` or `Deny`) and
//! deciding ([`Policy::allows`]). Leaves out: the rest of the answer (`principalId`,
//! `context`: see [`super::request_payload`]) and anything of IAM beyond what API Gateway
//! evaluates for an authorizer's policy (conditions, principals and `Not*` elements are
//! refused as malformed rather than ignored, so a policy never means more than it says).
//!
//! Rules (IAM's "Policy evaluation logic" and "IAM JSON policy elements"): an explicit `Deny`
//! whose action and resource match overrides any `Allow`; without a matching `Allow` the
//! request is denied (implicit deny). Action names compare case-insensitively
//! (`execute-api:invoke` is `execute-api:Invoke`), resources case-sensitively; in both, `*`
//! matches any run of characters (`/` included) and `?` any one character.

use serde_json::Value;

/// The action an authorizer's policy must allow for a request to pass.
pub const INVOKE_ACTION: &str = "execute-api:Invoke";
/// The most statements read from one policy (a larger one is malformed).
pub const MAX_STATEMENTS: usize = 1_000;

/// A statement's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement: its effect on the actions and resources it names (patterns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// A policy document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Reads a `policyDocument`; `Err` says what is wrong (for the access log).
    pub fn parse(doc: &Value) -> Result<Policy, String> {
        let Value::Object(doc) = doc else {
            return Err("policyDocument is not an object".into());
        };
        if let Some(v) = doc.get("Version") {
            if !v.is_string() {
                return Err("policyDocument.Version is not a string".into());
            }
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err("policyDocument.Statement is not an object or array".into()),
            None => return Err("policyDocument has no Statement".into()),
        };
        if statements.len() > MAX_STATEMENTS {
            return Err(format!(
                "policyDocument has over {MAX_STATEMENTS} statements"
            ));
        }
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| statement(s).map_err(|m| format!("Statement[{i}]: {m}")))
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    /// Whether the policy lets the caller invoke `resource` (the route's ARN).
    pub fn allows(&self, resource: &str) -> bool {
        let matching = |effect: Effect| {
            self.statements.iter().any(|s| {
                s.effect == effect
                    && s.actions.iter().any(|a| glob(a, INVOKE_ACTION, true))
                    && s.resources.iter().any(|r| glob(r, resource, false))
            })
        };
        !matching(Effect::Deny) && matching(Effect::Allow)
    }
}

/// One statement object.
fn statement(s: &Value) -> Result<Statement, String> {
    let Value::Object(s) = s else {
        return Err("not an object".into());
    };
    for key in s.keys() {
        match key.as_str() {
            "Effect" | "Action" | "Resource" | "Sid" => {}
            other => return Err(format!("{other} is not supported")),
        }
    }
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err("Effect must be \"Allow\" or \"Deny\"".into()),
    };
    Ok(Statement {
        effect,
        actions: strings(s.get("Action"), "Action")?,
        resources: strings(s.get("Resource"), "Resource")?,
    })
}

/// A string, or a non-empty array of strings.
fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    let bad = || format!("{what} must be a string or an array of strings");
    match v {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// Whether `text` matches `pattern` (`*`: any run, `?`: any one character), optionally
/// ignoring ASCII case. Iterative with one backtracking point: linear in practice, never
/// exponential on hostile patterns.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let same = |a: char, b: char| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    // where the last `*` was, and the text position it is matching up to
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some('*'), _) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(&pc), Some(&tc)) if pc == '?' || same(pc, tc) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:tollgate/$default/GET/pets/7";

    fn policy(v: Value) -> Policy {
        Policy::parse(&v).unwrap_or_else(|e| panic!("{e}: {v}"))
    }

    fn stmt(effect: &str, action: Value, resource: Value) -> Value {
        json!({"Effect": effect, "Action": action, "Resource": resource})
    }

    #[test]
    fn globs() {
        assert!(glob("*", "", false));
        assert!(glob("a*c", "abbbc", false));
        assert!(glob("a?c", "abc", false));
        assert!(!glob("a?c", "ac", false));
        assert!(!glob("a*d", "abc", false));
        assert!(glob("*/GET/*", ARN, false));
        assert!(!glob("*/POST/*", ARN, false));
        assert!(glob("EXECUTE-API:*", "execute-api:Invoke", true));
        assert!(!glob("EXECUTE-API:*", "execute-api:Invoke", false));
        // hostile patterns stay linear-ish and answer
        let long = "a".repeat(2_000);
        assert!(!glob(
            &"*a".repeat(200),
            &format!("{}b", &long[..1_000]),
            false
        ));
        assert!(!glob("*a*a*a*a*a*b", &long, false));
    }

    #[test]
    fn an_allow_on_the_arn_allows() {
        let p = policy(
            json!({"Version": "2012-10-17", "Statement": [stmt("Allow", json!("execute-api:Invoke"), json!(ARN))]}),
        );
        assert!(p.allows(ARN));
        assert!(!p.allows(&ARN.replace("/7", "/8")));
        // Statement as one object, Action and Resource as arrays and wildcards
        let p = policy(
            json!({"Statement": stmt("Allow", json!(["s3:GetObject", "execute-api:*"]), json!(["arn:aws:execute-api:*:*:tollgate/*/GET/pets/*"]))}),
        );
        assert!(p.allows(ARN));
        assert!(!p.allows(&ARN.replace("/GET/", "/DELETE/")));
        // `*` as the action; `?` in the resource
        let p = policy(
            json!({"Statement": stmt("Allow", json!("*"), json!("arn:aws:execute-api:us-east-1:000000000000:tollgate/$default/GET/pets/?"))}),
        );
        assert!(p.allows(ARN));
        assert!(!p.allows(&format!("{ARN}7")));
    }

    #[test]
    fn another_action_allows_nothing() {
        let p = policy(
            json!({"Statement": [stmt("Allow", json!("execute-api:ManageConnections"), json!("*"))]}),
        );
        assert!(!p.allows(ARN));
    }

    #[test]
    fn an_explicit_deny_wins_and_no_allow_denies() {
        let p = policy(json!({"Statement": [
            stmt("Allow", json!("execute-api:Invoke"), json!("*")),
            stmt("Deny", json!("execute-api:Invoke"), json!("*/GET/pets/7")),
        ]}));
        assert!(!p.allows(ARN));
        assert!(p.allows(&ARN.replace("/7", "/8")));
        let only_deny = policy(json!({"Statement": [stmt("Deny", json!("*"), json!("arn:none"))]}));
        assert!(!only_deny.allows(ARN));
        let empty = policy(json!({"Statement": []}));
        assert!(!empty.allows(ARN));
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            json!("x"),
            json!({}),
            json!({"Statement": 3}),
            json!({"Version": 1, "Statement": []}),
            json!({"Statement": [{"Effect": "allow", "Action": "*", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": [1], "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {}}]}),
            json!({"Statement": [{"Effect": "Allow", "NotAction": "*", "Resource": "*"}]}),
        ] {
            assert!(Policy::parse(&bad).is_err(), "accepted {bad}");
        }
    }
}
