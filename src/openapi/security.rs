//! Security schemes → `[[authorizer]]`s, and each operation's `security` → the route's
//! `authorizer`, `scopes` and `api_key_required`.
//!
//! `x-amazon-apigateway-authorizer` of `type: jwt` → a `jwt` authorizer (`issuer`,
//! `audience`, `identity_source`); `request` / `token` → a `request` authorizer on the Lambda
//! function of `authorizerUri` (`payload_format` from `authorizerPayloadFormatVersion`, else
//! 1.0, the REST shape a token authorizer also reads: `authorizationToken`, `methodArn`;
//! `simple_responses`, `identity_sources` in tollgate's `$request.*` form, `ttl_s`);
//! `cognito_user_pools` → a `jwt` authorizer on the pool's issuer (its app client ids must be
//! added as `audience`: until then the config does not load, so nothing is served open);
//! `awsSigv4` (`AWS_IAM`) → an `aws_iam` authorizer (its credentials must be added, likewise).
//! An `apiKey` scheme without an authorizer is API Gateway's API key: `api_key_required`.
//! A scheme without an API Gateway authorizer is not enforced by API Gateway, nor here.
//!
//! A route names one authorizer: the schemes of every requirement in `security` are taken
//! together (API Gateway's reading); a second authorizer is reported. An operation whose
//! requirement names an unknown scheme, or one that could not be mapped, is left out rather
//! than imported open.

use serde_json::{Map, Value};

use super::integration::lambda_function;
use super::parse::{self, object, scalar_text, string, Version};
use super::paths::{Cx, Operation};
use super::{child, ImportError};

/// What a security scheme is to tollgate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Scheme {
    /// An `[[authorizer]]` of this name; `scopes`: a JWT one (routes may require scopes).
    Authorizer { scopes: bool },
    /// API Gateway's API key.
    ApiKey,
    /// Not enforced by API Gateway (no authorizer extension): nothing to do.
    Ignored,
    /// An authorizer tollgate could not map (reported): its routes are left out.
    Broken,
}

/// Reads every security scheme (`components.securitySchemes`, `securityDefinitions`).
pub(super) fn schemes(cx: &mut Cx<'_>) -> Result<(), ImportError> {
    let root = cx.root;
    let (holder, ptr) = match cx.version {
        Version::Swagger2 => (
            root.get("securityDefinitions"),
            "/securityDefinitions".to_string(),
        ),
        _ => (
            root.get("components")
                .and_then(|c| c.get("securitySchemes")),
            "/components/securitySchemes".to_string(),
        ),
    };
    let Some(holder) = holder else { return Ok(()) };
    for (name, scheme) in object(holder, &ptr)? {
        let (scheme, at) = parse::deref(root, scheme, &child(&ptr, name))?;
        let scheme = object(scheme, &at)?;
        let kind = classify(cx, name, scheme, &at)?;
        if let (Some(extra), Some(i)) = (scheme.get("x-tollgate"), authorizer_index(cx, name)) {
            // tollgate's own keys, from its export
            let mut table = cx
                .authorizers
                .get_mut(i)
                .map(std::mem::take)
                .unwrap_or_default();
            let xptr = child(&at, "x-tollgate");
            let keys = super::export::AUTHORIZER_KEYS;
            let merged = super::export::merge_extra(cx, extra, &xptr, &mut table, &keys);
            if let Some(slot) = cx.authorizers.get_mut(i) {
                *slot = table;
            }
            merged?;
        }
        cx.schemes.insert(name.clone(), kind);
    }
    Ok(())
}

/// The index of the `[[authorizer]]` named `name`.
fn authorizer_index(cx: &Cx<'_>, name: &str) -> Option<usize> {
    cx.authorizers
        .iter()
        .position(|a| a.get("name").and_then(Value::as_str) == Some(name))
}

fn classify(
    cx: &mut Cx<'_>,
    name: &str,
    scheme: &Map<String, Value>,
    ptr: &str,
) -> Result<Scheme, ImportError> {
    cx.unknown_extensions(
        scheme,
        ptr,
        &[
            "x-amazon-apigateway-authorizer",
            "x-amazon-apigateway-authtype",
        ],
    );
    let authtype = scheme
        .get("x-amazon-apigateway-authtype")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if let Some(a) = scheme.get("x-amazon-apigateway-authorizer") {
        let at = child(ptr, "x-amazon-apigateway-authorizer");
        return authorizer(cx, name, object(a, &at)?, &at);
    }
    if authtype == "awssigv4" {
        iam(cx, name, ptr);
        return Ok(Scheme::Authorizer { scopes: false });
    }
    let is_key = scheme.get("type").and_then(Value::as_str) == Some("apiKey");
    if is_key {
        let header = scheme.get("in").and_then(Value::as_str) == Some("header");
        let key_name = scheme
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !header || !key_name.eq_ignore_ascii_case("x-api-key") {
            cx.report(ptr, format!("API key in {key_name:?}: tollgate reads keys from api_keys.header (default x-api-key)"));
        }
        return Ok(Scheme::ApiKey);
    }
    Ok(Scheme::Ignored)
}

/// An `aws_iam` authorizer named `name` (the region from the definition's ARNs, if any).
fn iam(cx: &mut Cx<'_>, name: &str, ptr: &str) {
    let mut table = Map::new();
    table.insert("name".into(), Value::String(name.to_string()));
    table.insert("type".into(), Value::String("aws_iam".into()));
    if let Some(region) = region(cx.root) {
        table.insert("region".into(), Value::String(region));
    }
    cx.authorizers.push(table);
    cx.report(ptr, "IAM authorization (SigV4): tollgate has no IAM; add the callers to the aws_iam authorizer as [[authorizer.credential]] (access key, secret's environment variable, principal, allowed routes) and check its region");
}

/// The region of the first `arn:aws:SERVICE:REGION:` string in the document.
fn region(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let mut parts = s.split(':');
            let arn =
                parts.next() == Some("arn") && parts.next().is_some_and(|p| p.starts_with("aws"));
            let region = parts.nth(1)?;
            (arn && !region.is_empty() && !region.contains('$')).then(|| region.to_string())
        }
        Value::Array(items) => items.iter().find_map(region),
        Value::Object(m) => m.values().find_map(region),
        _ => None,
    }
}

/// `x-amazon-apigateway-authorizer`.
fn authorizer(
    cx: &mut Cx<'_>,
    name: &str,
    a: &Map<String, Value>,
    ptr: &str,
) -> Result<Scheme, ImportError> {
    let kind = a
        .get("type")
        .map(|t| string(t, &child(ptr, "type")))
        .transpose()?
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut table = Map::new();
    table.insert("name".into(), Value::String(name.to_string()));
    let scopes = match kind.as_str() {
        "jwt" => {
            jwt(cx, a, ptr, &mut table)?;
            true
        }
        "request" | "token" => {
            if !request(cx, a, ptr, &kind, &mut table)? {
                return Ok(Scheme::Broken);
            }
            false
        }
        "cognito_user_pools" => {
            if !cognito(cx, a, ptr, &mut table)? {
                return Ok(Scheme::Broken);
            }
            true
        }
        other => {
            cx.report(
                &child(ptr, "type"),
                format!("authorizer type {other:?}: not supported; its routes are not imported"),
            );
            return Ok(Scheme::Broken);
        }
    };
    cx.authorizers.push(table);
    Ok(Scheme::Authorizer { scopes })
}

fn jwt(
    cx: &mut Cx<'_>,
    a: &Map<String, Value>,
    ptr: &str,
    table: &mut Map<String, Value>,
) -> Result<(), ImportError> {
    table.insert("type".into(), Value::String("jwt".into()));
    for (k, v) in a {
        let at = child(ptr, k);
        match k.as_str() {
            "type" => {}
            "jwtConfiguration" => {
                for (field, item) in object(v, &at)? {
                    let fptr = child(&at, field);
                    match field.as_str() {
                        "issuer" => {
                            table.insert(
                                "issuer".into(),
                                Value::String(string(item, &fptr)?.into()),
                            );
                        }
                        "audience" => {
                            let list = parse::strings(item, &fptr)?;
                            table.insert("audience".into(), list.into());
                        }
                        _ => cx.report(&fptr, format!("unknown JWT setting {field}: ignored")),
                    }
                }
            }
            "identitySource" => {
                let sources = identity_sources(v, &at)?;
                let mut sources = sources.into_iter();
                if let Some(first) = sources.next() {
                    table.insert("identity_source".into(), Value::String(first));
                }
                if sources.next().is_some() {
                    cx.report(
                        &at,
                        "a JWT authorizer reads one identity source: the first is used",
                    );
                }
            }
            _ => cx.report(&at, format!("unknown authorizer field {k}: ignored")),
        }
    }
    Ok(())
}

/// A Lambda `request` or `token` authorizer; `false`: not mappable (reported).
fn request(
    cx: &mut Cx<'_>,
    a: &Map<String, Value>,
    ptr: &str,
    kind: &str,
    table: &mut Map<String, Value>,
) -> Result<bool, ImportError> {
    table.insert("type".into(), Value::String("request".into()));
    let mut format = "1.0".to_string();
    for (k, v) in a {
        let at = child(ptr, k);
        match k.as_str() {
            "type" => {}
            "authorizerUri" => {
                let uri = string(v, &at)?;
                if let Some(f) = lambda_function(uri) {
                    table.insert("function".into(), Value::String(f));
                } else if super::integration::split_url(uri).is_some() {
                    table.insert("url".into(), Value::String(uri.to_string()));
                } else {
                    cx.report(&at, format!("{uri:?} is not a Lambda function's invocation URI: its routes are not imported"));
                    return Ok(false);
                }
            }
            "authorizerPayloadFormatVersion" => match scalar_text(v).as_deref() {
                Some(f @ ("1.0" | "2.0")) => format = f.to_string(),
                _ => cx.report(&at, "payload format version: 1.0 or 2.0; 1.0 used"),
            },
            "enableSimpleResponses" => {
                if parse::boolean(v, &at)? {
                    table.insert("simple_responses".into(), Value::Bool(true));
                }
            }
            "identitySource" => {
                let list = identity_sources(v, &at)?;
                if !list.is_empty() {
                    table.insert("identity_sources".into(), list.into());
                }
            }
            "authorizerResultTtlInSeconds" => {
                table.insert("ttl_s".into(), Value::from(parse::integer(v, &at)?));
            }
            "identityValidationExpression" => cx.report(&at, "identity validation expression: not checked (the authorizer is called with any token)"),
            "authorizerCredentials" => cx.report(&at, "authorizer credentials (an IAM role): tollgate invokes the function with its own configuration"),
            _ => cx.report(&at, format!("unknown authorizer field {k}: ignored")),
        }
    }
    if !table.contains_key("function") && !table.contains_key("url") {
        cx.report(
            ptr,
            format!("a {kind} authorizer without authorizerUri: its routes are not imported"),
        );
        return Ok(false);
    }
    table.insert("payload_format".into(), Value::String(format));
    Ok(true)
}

/// A Cognito user pool authorizer as a JWT authorizer on the pool's issuer.
fn cognito(
    cx: &mut Cx<'_>,
    a: &Map<String, Value>,
    ptr: &str,
    table: &mut Map<String, Value>,
) -> Result<bool, ImportError> {
    table.insert("type".into(), Value::String("jwt".into()));
    let mut issuer = None;
    for (k, v) in a {
        let at = child(ptr, k);
        match k.as_str() {
            "type" => {}
            "providerARNs" => {
                let arns = parse::strings(v, &at)?;
                issuer = arns.first().and_then(|arn| pool_issuer(arn));
                if arns.len() > 1 {
                    cx.report(
                        &at,
                        "several user pools: a JWT authorizer has one issuer; the first is used",
                    );
                }
            }
            "identitySource" => {
                if let Some(first) = identity_sources(v, &at)?.into_iter().next() {
                    table.insert("identity_source".into(), Value::String(first));
                }
            }
            "authorizerResultTtlInSeconds" => {}
            _ => cx.report(&at, format!("unknown authorizer field {k}: ignored")),
        }
    }
    let Some(issuer) = issuer else {
        cx.report(
            ptr,
            "a Cognito user pool authorizer without a user pool ARN: its routes are not imported",
        );
        return Ok(false);
    };
    table.insert("issuer".into(), Value::String(issuer));
    cx.report(ptr, "Cognito user pool authorizer: imported as a JWT authorizer on the pool's issuer; add the app client ids as its audience (it does not load without one)");
    Ok(true)
}

/// `arn:aws:cognito-idp:REGION:ACCOUNT:userpool/POOL` → the pool's issuer URL.
fn pool_issuer(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let service = parts.nth(2)?;
    let region = parts.next()?;
    let pool = parts.nth(1)?.strip_prefix("userpool/")?;
    let ok = service == "cognito-idp" && !region.is_empty() && !pool.is_empty();
    ok.then(|| format!("https://cognito-idp.{region}.amazonaws.com/{pool}"))
}

/// Identity sources as tollgate writes them: REST's `method.request.header.X` →
/// `$request.header.X`, `context.X` → `$context.X`, `stageVariables.X` →
/// `$stageVariables.X`; HTTP APIs' `$request...` as they are. A string is comma-separated.
fn identity_sources(v: &Value, ptr: &str) -> Result<Vec<String>, ImportError> {
    let list = parse::strings(v, ptr)?;
    Ok(list
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            for (aws, ours) in [
                ("method.request.header.", "$request.header."),
                ("method.request.querystring.", "$request.querystring."),
                ("context.", "$context."),
                ("stageVariables.", "$stageVariables."),
            ] {
                if let Some(name) = s.strip_prefix(aws) {
                    return format!("{ours}{name}");
                }
            }
            s.to_string()
        })
        .collect())
}

/// The operation's security (its own, else the definition's) → the route's keys; `false`:
/// the route is left out (an authorizer that could not be mapped, reported).
pub(super) fn route(
    cx: &mut Cx<'_>,
    o: &Operation<'_>,
    route: &mut Map<String, Value>,
) -> Result<bool, ImportError> {
    let (security, ptr) = match o.op.get("security") {
        Some(s) => (Some(s), child(&o.ptr, "security")),
        None => (cx.root.get("security"), "/security".to_string()),
    };
    let mut chosen: Option<(String, Vec<String>)> = None;
    if let Some(security) = security {
        for (i, req) in parse::array(security, &ptr)?.iter().enumerate() {
            let rptr = child(&ptr, &i.to_string());
            for (name, scopes) in object(req, &rptr)? {
                let at = child(&rptr, name);
                match cx.schemes.get(name).cloned() {
                    None => {
                        cx.report(
                            &at,
                            format!("no security scheme {name:?}: the operation is not imported"),
                        );
                        return Ok(false);
                    }
                    Some(Scheme::Broken) => {
                        cx.report(&at, format!("the authorizer {name:?} could not be imported: neither is the operation"));
                        return Ok(false);
                    }
                    Some(Scheme::Ignored) => {}
                    Some(Scheme::ApiKey) => {
                        route.insert("api_key_required".into(), Value::Bool(true));
                    }
                    Some(Scheme::Authorizer { scopes: jwt }) => {
                        let list = parse::strings(scopes, &at)?;
                        if !jwt && !list.is_empty() {
                            cx.report(&at, "scopes of a non-JWT authorizer: not checked");
                        }
                        let list = if jwt { list } else { Vec::new() };
                        match &chosen {
                            Some((first, _)) if first != name => cx.report(&at, format!("a second authorizer ({name}): a route has one; {first} is used")),
                            _ => chosen = Some((name.clone(), list)),
                        }
                    }
                }
            }
        }
    }
    if let Some(auth) = o.op.get("x-amazon-apigateway-auth") {
        let at = child(&o.ptr, "x-amazon-apigateway-auth");
        let kind = object(auth, &at)?
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_uppercase();
        match kind.as_str() {
            "AWS_IAM" => {
                let name = iam_scheme(cx, &at);
                chosen = Some((name, Vec::new()));
            }
            "NONE" => {}
            other => cx.report(
                &child(&at, "type"),
                format!("auth type {other:?}: not supported"),
            ),
        }
    }
    if let Some((name, scopes)) = chosen {
        route.insert("authorizer".into(), Value::String(name));
        if !scopes.is_empty() {
            route.insert("scopes".into(), scopes.into());
        }
    }
    Ok(true)
}

/// The name of the `aws_iam` authorizer for `x-amazon-apigateway-auth: AWS_IAM` (made once).
fn iam_scheme(cx: &mut Cx<'_>, ptr: &str) -> String {
    const NAME: &str = "aws_iam";
    let exists = cx.authorizers.iter().any(|a| {
        a.get("type").and_then(Value::as_str) == Some("aws_iam")
            && a.get("name").and_then(Value::as_str) == Some(NAME)
    });
    if !exists {
        iam(cx, NAME, ptr);
        cx.schemes
            .insert(NAME.into(), Scheme::Authorizer { scopes: false });
    }
    NAME.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cognito_issuer_from_the_pool_arn() {
        assert_eq!(
            pool_issuer("arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC123")
                .as_deref(),
            Some("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123")
        );
        assert_eq!(pool_issuer("arn:aws:lambda:eu-west-1:1:function:f"), None);
    }

    #[test]
    fn identity_sources_in_tollgate_form() {
        let v = Value::String(
            "method.request.header.Auth, $request.querystring.t,context.sourceIp".into(),
        );
        assert_eq!(
            identity_sources(&v, "").unwrap(),
            [
                "$request.header.Auth",
                "$request.querystring.t",
                "$context.sourceIp"
            ]
        );
    }
}
