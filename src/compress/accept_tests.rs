//! `Accept-Encoding` (RFC 9110 §12.5.3): weights, `q=0`, `*`, `identity`, ties, malformed
//! members, several field lines.

use super::*;

fn pick(values: &[&str]) -> Option<Coding> {
    choose(values.iter().map(|v| v.as_bytes()))
}

#[test]
fn codings_by_weight_ties_prefer_brotli() {
    assert_eq!(pick(&["gzip, deflate, br"]), Some(Coding::Brotli));
    assert_eq!(pick(&["gzip"]), Some(Coding::Gzip));
    assert_eq!(pick(&["x-gzip"]), Some(Coding::Gzip));
    assert_eq!(pick(&["br;q=0.5, gzip;q=0.8"]), Some(Coding::Gzip));
    assert_eq!(pick(&["BR ; Q=1.000 , GZIP;q=0.999"]), Some(Coding::Brotli));
    assert_eq!(pick(&["deflate"]), None);
    assert_eq!(pick(&[]), None);
    assert_eq!(pick(&[""]), None);
}

#[test]
fn zero_refuses_and_star_stands_for_the_rest() {
    assert_eq!(pick(&["br;q=0, gzip"]), Some(Coding::Gzip));
    assert_eq!(pick(&["gzip;q=0, br;q=0"]), None);
    assert_eq!(pick(&["*"]), Some(Coding::Brotli));
    assert_eq!(pick(&["*;q=0.5, br;q=0"]), Some(Coding::Gzip));
    assert_eq!(pick(&["*;q=0"]), None);
    assert_eq!(pick(&["gzip;q=0.3, *;q=0.6"]), Some(Coding::Brotli));
}

#[test]
fn identity_preferred_keeps_the_body() {
    assert_eq!(pick(&["gzip;q=0.5, identity"]), None);
    assert_eq!(pick(&["gzip, identity;q=0.5"]), Some(Coding::Gzip));
    assert_eq!(pick(&["gzip;q=0.5, identity;q=0.5"]), Some(Coding::Gzip));
}

#[test]
fn malformed_members_are_ignored_and_lines_join() {
    assert_eq!(pick(&["br;q=2, gzip"]), Some(Coding::Gzip));
    assert_eq!(pick(&["br;q=0.1234, gzip;q=0.1"]), Some(Coding::Gzip));
    assert_eq!(pick(&["br;q, gzip;q=1.5"]), None);
    assert_eq!(pick(&["g zip, gzip;q=abc"]), None);
    assert_eq!(pick(&["deflate", "gzip;q=0.2"]), Some(Coding::Gzip));
    assert_eq!(
        pick(&["br;q=0", "br;q=0.4, gzip;q=0.3"]),
        Some(Coding::Brotli)
    );
    assert_eq!(qvalue(b"0.5"), Some(500));
    assert_eq!(qvalue(b"1."), Some(1000));
    assert_eq!(qvalue(b"0.005"), Some(5));
    assert_eq!(qvalue(b"1.001"), None);
    assert_eq!(qvalue(b".5"), None);
}
