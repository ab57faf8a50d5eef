//! The client's `Accept-Encoding` (RFC 9110 §12.5.3), read into the coding tollgate sends.
//!
//! Owns: parsing the field's members (`coding` with an optional weight, `q=0` to `q=1` with up
//! to three decimals, RFC 9110 §12.4.2), the rules that apply them: a coding listed takes its
//! own weight, one not listed the weight of `*` if any, else it is not acceptable; `q=0`
//! refuses; `x-gzip` is `gzip` (RFC 9110 §8.4.1.3); the highest weight wins, ties go to `br`
//! then `gzip` (smaller output for the same preference); an `identity` the client listed with a
//! higher weight than every coding keeps the body as it is. An absent field, an empty one, or
//! one accepting neither coding: no coding (RFC 9110 §12.5.3 lets a server send identity when
//! nothing acceptable is available). Malformed members are ignored, never an error. Leaves
//! out: whether the response may be compressed at all (see [`super::choose`]).

use super::Coding;

/// A weight in thousandths (`q=0.5` is 500): RFC 9110 §12.4.2 allows three decimals.
type Weight = u16;

/// The full weight (`q=1`, also a member's weight when it gives none).
const FULL: Weight = 1000;

/// The coding to send for the `Accept-Encoding` field lines `values` (several lines are one
/// list, RFC 9110 §5.3). `None`: identity.
pub fn choose<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<Coding> {
    let (mut br, mut gzip, mut star, mut identity) = (None, None, None, None);
    for value in values {
        for member in value.split(|&b| b == b',') {
            let Some((coding, q)) = member_weight(member) else {
                continue;
            };
            let slot = if coding.eq_ignore_ascii_case(b"br") {
                &mut br
            } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip")
            {
                &mut gzip
            } else if coding == b"*" {
                &mut star
            } else if coding.eq_ignore_ascii_case(b"identity") {
                &mut identity
            } else {
                continue;
            };
            // a coding listed twice: the higher weight (a client would not mean less)
            *slot = Some(slot.map_or(q, |old: Weight| old.max(q)));
        }
    }
    let br = br.or(star).unwrap_or(0);
    let gzip = gzip.or(star).unwrap_or(0);
    let (coding, q) = if br >= gzip {
        (Coding::Brotli, br)
    } else {
        (Coding::Gzip, gzip)
    };
    if q == 0 || identity.is_some_and(|i| i > q) {
        return None;
    }
    Some(coding)
}

/// One list member: its coding (OWS trimmed) and weight; `None` when empty or malformed.
fn member_weight(member: &[u8]) -> Option<(&[u8], Weight)> {
    let mut parts = member.split(|&b| b == b';');
    let coding = parts.next()?.trim_ascii();
    if coding.is_empty() || !coding.iter().all(|&b| b == b'*' || is_tchar(b)) {
        return None;
    }
    let mut q = FULL;
    for param in parts {
        let param = param.trim_ascii();
        let eq = param.iter().position(|&b| b == b'=')?;
        let (name, value) = param.split_at(eq);
        if name.trim_ascii().eq_ignore_ascii_case(b"q") {
            q = qvalue(value.get(1..).unwrap_or_default().trim_ascii())?;
        }
    }
    Some((coding, q))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` (RFC 9110 §12.4.2).
fn qvalue(v: &[u8]) -> Option<Weight> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (v.get(..dot)?, v.get(dot + 1..)?),
        None => (v, &[][..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: Weight = 0;
    for i in 0..3 {
        let digit = frac.get(i).map_or(0, |d| Weight::from(d - b'0'));
        thousandths = thousandths * 10 + digit;
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(FULL),
        _ => None,
    }
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
#[path = "accept_tests.rs"]
mod tests;
