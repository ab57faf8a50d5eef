//! Reading what a SigV4 request carries: the `Authorization` field ([`parse_authorization`],
//! strictly), its `Credential` and `SignedHeaders` elements (shared with presigned queries),
//! hex signatures, `x-amz-date` times (ISO 8601 basic format, UTC) and what
//! `x-amz-content-sha256` says about the payload ([`payload_hash`]). Part of [`super::sigv4`],
//! which re-exports it; kept apart so each file stays small. Pure functions over text.

use ring::digest;

use super::sigv4::{
    ct_eq, is_token, SigV4Error, ALGORITHM, AMZ_DATE_LEN, SIGNATURE_HEX_LEN, TERMINATOR,
    UNSIGNED_PAYLOAD,
};

/// The fields `Authorization` carries, parsed by [`parse_authorization`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key_id: &'a str,
    /// `YYYYMMDD` of the credential scope.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// Lower-case names, `;`-separated, sorted, as the client listed them.
    pub signed_headers: &'a str,
    /// The signature, decoded from hex.
    pub signature: [u8; 32],
}

/// How a request's payload is covered: what its `x-amz-content-sha256` says (see
/// [`payload_hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadHash {
    /// No `x-amz-content-sha256`: the canonical request holds the body's SHA-256, so the
    /// verifier needs the body.
    Body,
    /// `UNSIGNED-PAYLOAD`: the body is not covered.
    Unsigned,
    /// A hex SHA-256 the signature covers: the body must hash to it.
    Digest([u8; 32]),
}

/// What `x-amz-content-sha256` (`value`, if sent) says about the payload; a value that is
/// neither `UNSIGNED-PAYLOAD` nor 64 lower-case hex digits is malformed.
pub fn payload_hash(value: Option<&[u8]>) -> Result<PayloadHash, SigV4Error> {
    let Some(v) = value else {
        return Ok(PayloadHash::Body);
    };
    let v = std::str::from_utf8(v).map_err(|_| BAD_CONTENT_SHA256)?;
    if v == UNSIGNED_PAYLOAD {
        return Ok(PayloadHash::Unsigned);
    }
    decode_hex32(v)
        .map(PayloadHash::Digest)
        .ok_or(BAD_CONTENT_SHA256)
}

/// Whether `body` hashes to `digest` (compared in constant time, though nothing about a
/// digest the client sent is secret).
pub fn body_matches(digest: &[u8; 32], body: &[u8]) -> bool {
    ct_eq(digest::digest(&digest::SHA256, body).as_ref(), digest)
}

/// Parses `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=HEX` strictly: the algorithm, then the three parameters once
/// each (in any order, `,` with optional spaces between), nothing else.
pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigV4Error> {
    use SigV4Error::Malformed;
    let Some(rest) = value.strip_prefix(ALGORITHM) else {
        return Err(Malformed("algorithm is not AWS4-HMAC-SHA256"));
    };
    let Some(rest) = rest.strip_prefix(' ') else {
        return Err(Malformed("no space after the algorithm"));
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches(' ');
        let Some((key, val)) = part.split_once('=') else {
            return Err(Malformed("a parameter has no '='"));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(Malformed("unknown parameter")),
        };
        if slot.replace(val).is_some() {
            return Err(Malformed("a parameter is repeated"));
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(Malformed(
            "Credential, SignedHeaders and Signature are required",
        ));
    };
    let (access_key_id, date, region, service) = parse_credential(credential)?;
    check_signed_headers(signed)?;
    let Some(decoded) = decode_hex32(signature) else {
        return Err(Malformed("Signature is not 64 lower-case hex digits"));
    };
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed,
        signature: decoded,
    })
}

/// `AKID/DATE/REGION/SERVICE/aws4_request` split into its four elements, checked.
pub(crate) fn parse_credential(credential: &str) -> Result<(&str, &str, &str, &str), SigV4Error> {
    use SigV4Error::Malformed;
    let mut parts = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(TERMINATOR), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(Malformed(
            "Credential is not KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    if [access_key_id, region, service]
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Malformed("empty or non-printable Credential element"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Malformed("Credential date is not YYYYMMDD"));
    }
    Ok((access_key_id, date, region, service))
}

/// `SignedHeaders`: lower-case tokens, sorted, no repeats, `host` among them.
pub(crate) fn check_signed_headers(signed: &str) -> Result<(), SigV4Error> {
    use SigV4Error::Malformed;
    let mut previous: Option<&str> = None;
    let mut has_host = false;
    for name in signed.split(';') {
        let lower = name.bytes().all(|b| !b.is_ascii_uppercase());
        if !is_token(name) || !lower {
            return Err(Malformed(
                "SignedHeaders holds a name that is not a lower-case token",
            ));
        }
        if previous.is_some_and(|p| p >= name) {
            return Err(Malformed("SignedHeaders is not sorted or repeats a name"));
        }
        previous = Some(name);
        has_host |= name == "host";
    }
    if !has_host {
        return Err(Malformed("SignedHeaders must include host"));
    }
    Ok(())
}

/// 64 lower-case hex digits as 32 bytes.
pub(crate) fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != SIGNATURE_HEX_LEN {
        return None;
    }
    let mut decoded = [0u8; 32];
    for (out, pair) in decoded.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let hi = pair.first().copied().and_then(lower_hex_value)?;
        let lo = pair.get(1).copied().and_then(lower_hex_value)?;
        *out = hi << 4 | lo;
    }
    Some(decoded)
}

fn lower_hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Unix seconds as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let (y, m, d) = crate::fmt::civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `YYYYMMDDTHHMMSSZ` as Unix seconds; `None` unless exactly that with a real date and time.
pub fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != AMZ_DATE_LEN || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = b.get(from..to)?;
        digits.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (hh, mm, ss) = (num(9, 11)?, num(11, 13)?, num(13, 15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // a day past the month's end (Feb 30) comes back as another date
    if crate::fmt::civil_from_days(days) != (y, m, d) {
        return None;
    }
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Day number since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// `fmt::civil_from_days`, over 400-year eras).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const BAD_CONTENT_SHA256: SigV4Error =
    SigV4Error::Malformed("x-amz-content-sha256 is neither UNSIGNED-PAYLOAD nor a hex SHA-256");
