//! The `aws_iam` authorizer: Signature Version 4 on the incoming request (the `Authorization`
//! field, or a presigned query), verified with `crate::aws::sigv4` against the configured
//! credentials, then the principal's `allow` patterns against the route key.
//!
//! Owns: [`authorize`] (missing → 403 Missing Authentication Token; malformed, unknown key,
//! mismatch, expired (`x-amz-date` within 5 minutes), payload hash, not allowed → 403 with
//! AWS's messages), the payload hash (`x-amz-content-sha256`, or the body read and hashed),
//! and the principal (`$context.identity.userArn` / `.accessKey`). Leaves out: the signature
//! algorithm itself (see `crate::aws::sigv4` and `crate::aws::presigned`) and serving a body
//! read here to the integration (the lifecycle's, see `proxy::held_body`).
//!
//! Data flow: the request head gives the method, the path and query exactly as received (the
//! canonical request re-encodes them, as AWS's signers do for `execute-api`; the request
//! forwarded to the origin is never touched) and every field. When the signature does not
//! depend on the body (no body, `UNSIGNED-PAYLOAD`, or a hex digest in `x-amz-content-sha256`)
//! it is verified in full before a byte of the body is read or `100 Continue` sent; a digest's
//! body is then read and compared. When the payload hash is the body's own (no
//! `x-amz-content-sha256`), the checks no body can save run first (form, scope, time, key),
//! then the body is read, each chunk charged as it arrives against the worker's budget of
//! unverified bytes (`unverified_body_budget_bytes`, 503 when full) and the whole read bounded
//! by `unverified_body_timeout_ms` (408): see [`read_unverified`]; then verified. A body
//! read is whole, under `max_body_bytes` (default 10 MiB, API Gateway's payload limit; 413
//! beyond), and kept in `st.held_body` for the integration. Then the route key is matched
//! against the credential's `allow` patterns. Refusals that name the request (an
//! expired date, a principal not allowed) carry AWS's words in `st.detail`, which becomes the
//! response's message (`GatewayError::detail_is_message`).

use std::rc::Rc;
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};

use super::{Identity, Principal};
use std::cell::Cell;

use crate::aws::sigv4::{self, BodyCheck, PayloadHash, Scope, SigV4Error, SigningRequest};
use crate::aws::{presigned, Credentials};
use crate::config::auth::{IamAuthorizer, IamCredential, IAM_MAX_SKEW};
use crate::config::BodyPolicy;
use crate::error::{GatewayError, IamFailure};
use crate::exchange::ExchangeState;
use crate::http::{BodyChunk, BodyKind, HttpError, RequestHead};
use crate::session::Session;
use crate::worker::Cx;

/// How the request carries its signature.
enum Form {
    /// `Authorization: AWS4-HMAC-SHA256 ...` with `x-amz-date`.
    Header(String),
    /// `?X-Amz-Signature=...` and the other presigned parameters.
    Query(presigned::Presigned),
}

/// Admits a request whose signature verifies and whose principal may call the route.
pub async fn authorize<S: Session>(
    w: &Cx<'_>,
    sess: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
    route: usize,
    authorizer: usize,
    config: &IamAuthorizer,
) -> Result<Rc<Principal>, GatewayError> {
    let malformed = GatewayError::Iam(IamFailure::Malformed);
    let (Ok(method), Ok(path), Ok(query)) = (
        std::str::from_utf8(head.method_bytes()),
        std::str::from_utf8(head.path_bytes()),
        std::str::from_utf8(head.query_bytes().unwrap_or_default()),
    ) else {
        return Err(malformed);
    };
    let form = match head.header("authorization") {
        Some(v) => Form::Header(String::from_utf8(v.to_vec()).map_err(|_| malformed)?),
        None if presigned::is_presigned(query) => {
            // parsing finds only malformed queries
            Form::Query(presigned::parse(query).map_err(|_| malformed)?)
        }
        // API Gateway's answer to a request without any signature
        None => return Err(GatewayError::Iam(IamFailure::Missing)),
    };
    let content_sha256 = head.header(sigv4::CONTENT_SHA256);
    let payload = match &form {
        Form::Header(_) => sigv4::payload_hash(content_sha256),
        Form::Query(p) => presigned::payload(p, content_sha256),
    }
    .map_err(|e| refusal(st, e, None, &form, config))?;
    let fields: Vec<(&str, &[u8])> = head
        .headers
        .iter()
        .filter_map(|h| {
            let name = std::str::from_utf8(head.slice(h.name)).ok()?;
            Some((name, head.slice(h.value)))
        })
        .collect();
    let mut req = SigningRequest {
        method,
        path,
        query,
        headers: &fields,
        body: &[],
    };
    let verified = match (payload, head.body) {
        // the signature does not depend on the body (none, unsigned, or a digest the client
        // named): verified in full before a byte of the body is read or `100 Continue` sent
        (_, BodyKind::Empty) | (PayloadHash::Unsigned, _) => {
            verify(&req, &form, head, config, BodyCheck::Now).map_err(|f| f.into_error(st))?
        }
        (PayloadHash::Digest(digest), _) => {
            let v = verify(&req, &form, head, config, BodyCheck::Deferred)
                .map_err(|f| f.into_error(st))?;
            // then the body, from a client that proved its key, must hash to what it signed
            let policy = body_policy(w, route);
            let b = sess
                .read_body(w, head, st, &policy, config.max_body)
                .await?;
            if !sigv4::body_matches(&digest, &b) {
                return Err(GatewayError::Iam(IamFailure::PayloadHash));
            }
            st.held_body = Some(b);
            v
        }
        (PayloadHash::Body, _) => {
            // the signature covers the body's hash: what no body can save is refused first
            let now = SystemTime::now();
            precheck(&form, head, config, now).map_err(|(e, date, expires)| {
                let time = date.as_deref().map(|d| (d, now, expires));
                refusal(st, e, time, &form, config)
            })?;
            // an unverified body counts against the worker's budget, byte for byte as it is
            // buffered, and its whole read is bounded in time (see `read_unverified`)
            let b = read_unverified(w, sess, head, st, &body_policy(w, route), config).await?;
            st.held_body = Some(b.clone());
            req.body = &b;
            verify(&req, &form, head, config, BodyCheck::Now).map_err(|f| f.into_error(st))?
        }
    };
    let Some(cred) = find(config, &verified.access_key_id) else {
        return Err(GatewayError::Internal("verified key not configured"));
    };
    let route_key = w.g.config.routes.get(route).map_or("", |r| r.key.as_str());
    if !cred.allow.iter().any(|p| glob(p, route_key)) {
        // API Gateway's words, naming the caller and the execute-api resource
        st.detail = Some(
            format!(
                "User: {} is not authorized to perform: execute-api:Invoke on resource: \
                 arn:{}:execute-api:{}:{}:{}/{}/{method}{path}",
                cred.principal,
                cred.partition,
                config.region,
                cred.account_id,
                crate::lambda::DEFAULT_API_ID,
                crate::lambda::DEFAULT_STAGE,
            )
            .into(),
        );
        return Err(GatewayError::Iam(IamFailure::NotAllowed));
    }
    Ok(Rc::new(Principal {
        authorizer,
        id: cred.principal.as_str().into(),
        identity: Identity::Iam {
            access_key: cred.access_key_id.as_str().into(),
            user_arn: cred.principal.as_str().into(),
            account_id: cred.account_id.as_str().into(),
        },
        throttle: None,
    }))
}

/// A verification failure with what its message names (see [`refusal`]), turned into the
/// error once the exchange state is at hand.
struct Failure<'a> {
    error: SigV4Error,
    time: Option<(&'a str, SystemTime, Option<u64>)>,
    form: &'a Form,
    config: &'a IamAuthorizer,
}

impl Failure<'_> {
    fn into_error(self, st: &mut ExchangeState) -> GatewayError {
        refusal(st, self.error, self.time, self.form, self.config)
    }
}

/// Verifies the signature of `req` in its `form` (see `crate::aws::sigv4` and
/// `crate::aws::presigned`); `check`: whether a signed digest is compared with `req.body` now.
fn verify<'a>(
    req: &SigningRequest<'_>,
    form: &'a Form,
    head: &'a RequestHead,
    config: &'a IamAuthorizer,
    check: BodyCheck,
) -> Result<sigv4::Verified, Failure<'a>> {
    let scope = Scope {
        region: &config.region,
        service: &config.service,
    };
    let lookup = |id: &str| {
        find(config, id).map(|c| Credentials {
            access_key_id: c.access_key_id.clone(),
            secret_access_key: c.secret_access_key.clone(),
            session_token: c.session_token.clone(),
        })
    };
    let now = SystemTime::now();
    let fail = |error, time| Failure {
        error,
        time,
        form,
        config,
    };
    let malformed = SigV4Error::Malformed("x-amz-date or x-amz-security-token is not text");
    match form {
        Form::Header(auth) => {
            let amz_date = head
                .header("x-amz-date")
                .and_then(|d| std::str::from_utf8(d).ok())
                .ok_or_else(|| fail(malformed.clone(), None))?;
            let token = head
                .header("x-amz-security-token")
                .map(|t| std::str::from_utf8(t).map_err(|_| fail(malformed.clone(), None)))
                .transpose()?;
            let time = (now, IAM_MAX_SKEW);
            sigv4::verify_with(req, auth, amz_date, token, lookup, scope, time, check)
                .map_err(|e| fail(e, Some((amz_date, now, None))))
        }
        Form::Query(p) => presigned::verify_with(req, p, lookup, scope, (now, IAM_MAX_SKEW), check)
            .map_err(|e| fail(e, Some((&p.amz_date, now, Some(p.expires))))),
    }
}

thread_local! {
    /// Bytes of unverified bodies this worker is reading for `aws_iam` authorizers now: per
    /// core, like the worker, so a plain `Cell` (nothing crosses threads).
    static UNVERIFIED_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// A charge of unverified body bytes on this worker: grown chunk by chunk as the body is
/// buffered, given back whole when dropped (the signature verified or refused, the read timed
/// out, or the exchange ended mid-read).
struct Unverified(usize);

impl Unverified {
    /// Charges `bytes` more if the worker's total stays within `budget` (the admitting
    /// authorizer's `unverified_body_budget_bytes`: with several authorizers the total stays
    /// within the largest budget); false, charging nothing, when it would not.
    fn grow(&mut self, bytes: usize, budget: usize) -> bool {
        UNVERIFIED_BYTES.with(|held| {
            let Some(total) = held.get().checked_add(bytes).filter(|t| *t <= budget) else {
                return false;
            };
            held.set(total);
            self.0 += bytes;
            true
        })
    }
}

impl Drop for Unverified {
    fn drop(&mut self) {
        UNVERIFIED_BYTES.with(|held| held.set(held.get().saturating_sub(self.0)));
    }
}

/// Reads a body whose signature is not verified yet (its payload hash is the body's own).
///
/// Nothing is charged for a declared length: a client with no secret (only a public access
/// key id and a chosen date pass [`precheck`]) must send the bytes it holds. Each chunk is
/// charged to the worker's [`UNVERIFIED_BYTES`] before it is kept; when the budget cannot take
/// it, 503. The whole read, from opening the body (`100 Continue`) to its end, has
/// `unverified_body_timeout_ms` (default [`UNVERIFIED_BODY_DEADLINE`]); beyond, 408 and the
/// connection closes (its remaining bytes unread, RFC 9112 §9.6). So a slow client holds at
/// most what it sent, for at most that long. A body over `max_body_bytes`: 413 (declared, or
/// found decoding chunks).
///
/// [`UNVERIFIED_BODY_DEADLINE`]: crate::config::auth::UNVERIFIED_BODY_DEADLINE
async fn read_unverified<S: Session>(
    w: &Cx<'_>,
    sess: &mut S,
    head: &RequestHead,
    st: &mut ExchangeState,
    policy: &BodyPolicy,
    config: &IamAuthorizer,
) -> Result<Bytes, GatewayError> {
    let too_large = GatewayError::Http(HttpError::BodyTooLarge);
    match head.body {
        BodyKind::Empty => return Ok(Bytes::new()),
        BodyKind::Length(n) if n > config.max_body as u64 => return Err(too_large),
        _ => {}
    }
    let deadline = Instant::now() + config.unverified_timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let timed_out = |st: &mut ExchangeState| {
        // the rest of the body stays unread: the connection cannot carry another request
        st.keep_alive = false;
        GatewayError::BodyTimeout
    };
    let mut charge = Unverified(0);
    let mut stream = match monoio::time::timeout(left(), sess.open_body(w, head, st, policy)).await
    {
        Ok(s) => s?,
        Err(_) => return Err(timed_out(st)),
    };
    // grown as bytes arrive: a declared length reserves nothing
    let mut body = BytesMut::new();
    loop {
        let chunk = match monoio::time::timeout(left(), sess.next_chunk(w, &mut stream, st)).await {
            Ok(c) => c?,
            Err(_) => return Err(timed_out(st)),
        };
        let BodyChunk::Data(d) = chunk else {
            break;
        };
        if body.len().saturating_add(d.len()) > config.max_body {
            return Err(too_large);
        }
        if !charge.grow(d.len(), config.unverified_budget) {
            st.keep_alive = false;
            return Err(GatewayError::Iam(IamFailure::Busy));
        }
        body.extend_from_slice(&d);
    }
    drop(charge);
    Ok(body.freeze())
}

/// The checks of a signature that do not need the body: its form, scope, time and key (the
/// verification repeats them, over the body). On a refusal, the date and presigned expiry
/// the message names.
fn precheck(
    form: &Form,
    head: &RequestHead,
    config: &IamAuthorizer,
    now: SystemTime,
) -> Result<(), (SigV4Error, Option<String>, Option<u64>)> {
    let bare = |e| (e, None, None);
    let (credential, date, expires) = match form {
        Form::Header(auth) => {
            let a = sigv4::parse_authorization(auth).map_err(bare)?;
            let date = head
                .header("x-amz-date")
                .and_then(|d| std::str::from_utf8(d).ok())
                .ok_or(bare(SigV4Error::Malformed("no x-amz-date")))?;
            let parts = (a.access_key_id, a.region, a.service);
            (parts, date, None)
        }
        Form::Query(p) => {
            let (id, _, region, service) = sigv4::parse_credential(&p.credential).map_err(bare)?;
            ((id, region, service), p.amz_date.as_str(), Some(p.expires))
        }
    };
    let (id, region, service) = credential;
    if region != config.region || service != config.service {
        return Err(bare(SigV4Error::WrongScope));
    }
    let Some(time) = sigv4::parse_amz_date(date) else {
        return Err(bare(SigV4Error::Malformed("bad x-amz-date")));
    };
    let now_s = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let skew = IAM_MAX_SKEW.as_secs();
    let late = now_s > time.saturating_add(expires.unwrap_or(skew));
    if late || now_s < time.saturating_sub(skew) {
        return Err((SigV4Error::Expired, Some(date.to_string()), expires));
    }
    if find(config, id).is_none() {
        return Err(bare(SigV4Error::UnknownKey));
    }
    Ok(())
}

fn find<'c>(config: &'c IamAuthorizer, id: &str) -> Option<&'c IamCredential> {
    config.credentials.iter().find(|c| c.access_key_id == id)
}

/// How the route reads bodies (its minimum rate), for the read the payload hash needs.
fn body_policy(w: &Cx<'_>, route: usize) -> BodyPolicy {
    w.g.config
        .routes
        .get(route)
        .map_or_else(BodyPolicy::default, |r| r.body_policy())
}

/// A verification failure as API Gateway answers it; `time`: the request's date, now, and a
/// presigned request's expiry, for the words of an expired signature.
fn refusal(
    st: &mut ExchangeState,
    e: SigV4Error,
    time: Option<(&str, SystemTime, Option<u64>)>,
    form: &Form,
    config: &IamAuthorizer,
) -> GatewayError {
    let failure = match e {
        SigV4Error::Malformed(_) | SigV4Error::Sign(_) => IamFailure::Malformed,
        SigV4Error::WrongScope => {
            st.detail = Some(scope_message(form, config).into());
            IamFailure::Malformed
        }
        SigV4Error::UnknownKey => IamFailure::UnknownKey,
        SigV4Error::Mismatch => IamFailure::Mismatch,
        SigV4Error::PayloadHash => IamFailure::PayloadHash,
        SigV4Error::Expired => {
            if let Some((date, now, expires)) = time {
                st.detail = expired_message(date, now, expires).map(Into::into);
            }
            IamFailure::Expired
        }
    };
    GatewayError::Iam(failure)
}

/// API Gateway's words for a credential scoped elsewhere: the region first (naming the one
/// the request gave), then the service (naming the right one); each ends with a space.
fn scope_message(form: &Form, config: &IamAuthorizer) -> String {
    let region = match form {
        Form::Header(a) => sigv4::parse_authorization(a).ok().map(|a| a.region),
        Form::Query(p) => sigv4::parse_credential(&p.credential).ok().map(|c| c.2),
    };
    match region {
        Some(r) if r != config.region => {
            format!("Credential should be scoped to a valid region, not '{r}'. ")
        }
        _ => format!(
            "Credential should be scoped to correct service: '{}'. ",
            config.service
        ),
    }
}

/// AWS's words for a signature outside its time window: too old ("Signature expired: DATE is
/// now earlier than NOW-5min (NOW - 5 min.)"; presigned past its expiry: "... (NOW - N
/// sec.)"), or from the future ("Signature not yet current: DATE is still later than
/// NOW+5min (NOW + 5 min.)").
fn expired_message(date: &str, now: SystemTime, expires: Option<u64>) -> Option<String> {
    let time = sigv4::parse_amz_date(date)?;
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let skew = IAM_MAX_SKEW.as_secs();
    let fmt = sigv4::format_amz_date;
    if time > now {
        return Some(format!(
            "Signature not yet current: {date} is still later than {} ({} + 5 min.)",
            fmt(now.saturating_add(skew)),
            fmt(now)
        ));
    }
    Some(match expires {
        None => format!(
            "Signature expired: {date} is now earlier than {} ({} - 5 min.)",
            fmt(now.saturating_sub(skew)),
            fmt(now)
        ),
        Some(e) => format!(
            "Signature expired: {date} is now earlier than {} ({} - {e} sec.)",
            fmt(now.saturating_sub(e)),
            fmt(now)
        ),
    })
}

/// Whether `pattern` matches `key`, `*` matching any run of characters (none included).
pub fn glob(pattern: &str, key: &str) -> bool {
    let (p, k) = (pattern.as_bytes(), key.as_bytes());
    // iterative wildcard match: remember the last `*` and retry from one character further
    let (mut pi, mut ki) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ki));
                pi += 1;
            }
            Some(&c) if k.get(ki) == Some(&c) => {
                pi += 1;
                ki += 1;
            }
            _ => match star {
                Some((sp, sk)) => {
                    pi = sp + 1;
                    ki = sk + 1;
                    star = Some((sp, sk + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn route_key_patterns() {
        for (p, k, m) in [
            ("*", "GET /pets/{id}", true),
            ("*", "$default", true),
            ("$default", "$default", true),
            ("$default", "GET /x", false),
            ("GET /pets/*", "GET /pets/{id}", true),
            ("GET /pets/*", "GET /pets", false),
            ("GET /pets/*", "POST /pets/{id}", false),
            ("* /pets/*/toys", "DELETE /pets/{id}/toys", true),
            ("* /pets/*/toys", "DELETE /pets/{id}/food", false),
            ("POST /orders", "POST /orders", true),
            ("POST /orders", "POST /orders/x", false),
            ("**a", "bbba", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ] {
            assert_eq!(glob(p, k), m, "{p} ~ {k}");
        }
    }

    #[test]
    fn expired_messages_use_aws_words() {
        // AWS's example: signed at 12:36, received at 12:46
        let date = "20150830T123600Z";
        let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160 + 600);
        assert_eq!(
            expired_message(date, now, None).unwrap(),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z \
             (20150830T124600Z - 5 min.)"
        );
        let early = UNIX_EPOCH + Duration::from_secs(1_440_938_160 - 600);
        assert_eq!(
            expired_message(date, early, None).unwrap(),
            "Signature not yet current: 20150830T123600Z is still later than \
             20150830T123100Z (20150830T122600Z + 5 min.)"
        );
        assert!(expired_message("nonsense", now, None).is_none());
    }
}
