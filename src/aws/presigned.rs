//! SigV4 presigned requests: the signature in the query string instead of `Authorization`.
//!
//! Owns: reading a presigned query ([`parse`]: `X-Amz-Algorithm`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`, optional
//! `X-Amz-Security-Token`, each once, percent-decoded) and verifying it ([`verify`]): the
//! canonical query is every parameter but `X-Amz-Signature` (AWS "Authenticating Requests:
//! Using Query Parameters"), the payload hash is the client's signed `x-amz-content-sha256`
//! field when there is one, else the body's SHA-256 (the empty body's for a GET: what
//! aws-sigv4, botocore and AWS's test suite sign for `execute-api` and other services) and,
//! when that does not verify, `UNSIGNED-PAYLOAD` (S3's rule for presigned URLs), and the request is valid from five minutes
//! before `X-Amz-Date` (the clock skew allowed) until `X-Amz-Expires` seconds after it. Leaves
//! out: the canonical request and the signing key (see [`super::sigv4`], whose code this
//! reuses) and where the keys and the clock come from (the caller's).

use std::time::{Duration, SystemTime};

use super::sigv4::{
    check_signed_headers, decode_hex32, field, parse_amz_date, parse_credential, payload_hash,
    percent_decode, unix_secs, verify_signature, Authorization, BodyCheck, Opts, PayloadHash,
    Scope, SigV4Error, SigningRequest, Verified, ALGORITHM, CONTENT_SHA256,
};
use super::Credentials;

/// The query parameter carrying the signature (its presence makes a request presigned).
pub const SIGNATURE_PARAM: &str = "X-Amz-Signature";
/// Accepted `X-Amz-Expires`, seconds: AWS's 1 second to 7 days.
pub const EXPIRES_S: std::ops::RangeInclusive<u64> = 1..=604_800;

/// The SigV4 parameters of a presigned query, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    pub credential: String,
    pub amz_date: String,
    pub expires: u64,
    pub signed_headers: String,
    pub signature: String,
    pub security_token: Option<String>,
}

/// Whether `query` (raw, without `?`) carries a signature parameter.
pub fn is_presigned(query: &str) -> bool {
    query.split('&').any(|p| {
        let name = p.split_once('=').map_or(p, |(n, _)| n);
        percent_decode(name) == SIGNATURE_PARAM.as_bytes()
    })
}

/// The presigned parameters of `query`: every one required but the token, none repeated.
pub fn parse(query: &str) -> Result<Presigned, SigV4Error> {
    use SigV4Error::Malformed;
    let mut slots: [Option<String>; 7] = Default::default();
    const NAMES: [&str; 7] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        SIGNATURE_PARAM,
        "X-Amz-Security-Token",
    ];
    for p in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        let name = percent_decode(name);
        let Some(ix) = NAMES.iter().position(|n| n.as_bytes() == name.as_slice()) else {
            continue;
        };
        let Ok(value) = String::from_utf8(percent_decode(value)) else {
            return Err(Malformed("a presigned parameter is not UTF-8"));
        };
        let Some(slot) = slots.get_mut(ix) else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(Malformed("a presigned parameter is repeated"));
        }
    }
    let [algorithm, credential, amz_date, expires, signed_headers, signature, security_token] =
        slots;
    let (Some(algorithm), Some(credential), Some(amz_date), Some(expires)) =
        (algorithm, credential, amz_date, expires)
    else {
        return Err(Malformed(
            "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date and X-Amz-Expires are required",
        ));
    };
    let (Some(signed_headers), Some(signature)) = (signed_headers, signature) else {
        return Err(Malformed(
            "X-Amz-SignedHeaders and X-Amz-Signature are required",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(Malformed("X-Amz-Algorithm is not AWS4-HMAC-SHA256"));
    }
    let expires = match expires.parse::<u64>() {
        Ok(e) if EXPIRES_S.contains(&e) && !expires.starts_with('+') => e,
        _ => return Err(Malformed("X-Amz-Expires is not 1..=604800 seconds")),
    };
    Ok(Presigned {
        credential,
        amz_date,
        expires,
        signed_headers,
        signature,
        security_token,
    })
}

/// Verifies a presigned request: `req.query` is the raw query holding the parameters `p`
/// parsed from it, `req.headers` every field of the request. Valid from `max_skew` before
/// `X-Amz-Date` to `X-Amz-Expires` after it; the scope must be `scope`; a key with a session
/// token needs `X-Amz-Security-Token` to carry it.
pub fn verify(
    req: &SigningRequest<'_>,
    p: &Presigned,
    lookup: impl Fn(&str) -> Option<Credentials>,
    scope: Scope<'_>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<Verified, SigV4Error> {
    verify_with(req, p, lookup, scope, (now, max_skew), BodyCheck::Now)
}

/// [`verify`] with the time as `(now, max_skew)` and the moment a signed
/// `x-amz-content-sha256` digest is compared with the body (see [`BodyCheck`]).
pub fn verify_with(
    req: &SigningRequest<'_>,
    p: &Presigned,
    lookup: impl Fn(&str) -> Option<Credentials>,
    scope: Scope<'_>,
    (now, max_skew): (SystemTime, Duration),
    check: BodyCheck,
) -> Result<Verified, SigV4Error> {
    let (access_key_id, date, region, service) = parse_credential(&p.credential)?;
    check_signed_headers(&p.signed_headers)?;
    let Some(signature) = decode_hex32(&p.signature) else {
        return Err(SigV4Error::Malformed(
            "X-Amz-Signature is not 64 lower-case hex digits",
        ));
    };
    if region != scope.region || service != scope.service {
        return Err(SigV4Error::WrongScope);
    }
    let Some(time) = parse_amz_date(&p.amz_date) else {
        return Err(SigV4Error::Malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ"));
    };
    if p.amz_date.get(..8) != Some(date) {
        return Err(SigV4Error::Malformed(
            "credential date is not the day of X-Amz-Date",
        ));
    }
    let names: Vec<&str> = p.signed_headers.split(';').collect();
    // the hash the client signed, when it signed one; else the body's, then UNSIGNED-PAYLOAD
    let signed_hash = names.contains(&CONTENT_SHA256);
    let given = if signed_hash {
        let v = field(req.headers, CONTENT_SHA256);
        payload_hash(v.map(str::as_bytes))?;
        if v.is_none() {
            return Err(SigV4Error::Malformed("a signed header is missing"));
        }
        v
    } else {
        None
    };
    let now = unix_secs(now);
    let earliest = time.saturating_sub(max_skew.as_secs());
    if now < earliest || now > time.saturating_add(p.expires) {
        return Err(SigV4Error::Expired);
    }
    let auth = Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: &p.signed_headers,
        signature,
    };
    let opts = Opts {
        payload_hash: given,
        skip_query: Some(SIGNATURE_PARAM),
        or_unsigned: !signed_hash,
        body_check: check,
        ..Opts::default()
    };
    verify_signature(
        req,
        &auth,
        &p.amz_date,
        p.security_token.as_deref(),
        lookup,
        &names,
        opts,
    )
}

/// What a presigned request says about its payload (see [`super::sigv4::payload_hash`]):
/// the signed `x-amz-content-sha256` when it is among its signed headers, else the body's
/// hash (which [`verify`] falls back from to `UNSIGNED-PAYLOAD`).
pub fn payload(p: &Presigned, content_sha256: Option<&[u8]>) -> Result<PayloadHash, SigV4Error> {
    if p.signed_headers.split(';').any(|n| n == CONTENT_SHA256) {
        payload_hash(content_sha256)
    } else {
        Ok(PayloadHash::Body)
    }
}

#[cfg(test)]
#[path = "presigned_tests.rs"]
mod tests;
