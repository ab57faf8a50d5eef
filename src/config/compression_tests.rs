//! `[compression]` and a route's `compression` in the config: defaults, inheritance (a route's
//! table over `[compression]` over the defaults), `true` / `false`, the header-table form, and
//! errors naming the key and its line.

use super::super::check_tests::errors;
use crate::compress::TypePattern;

fn config(text: &str) -> super::super::Config {
    super::super::from_str(text).unwrap_or_else(|e| panic!("{}\n{text}", e.render("t")))
}

fn route(key: &str, extra: &str) -> String {
    format!("[[route]]\nkey = \"{key}\"\nmock = {{}}\n{extra}\n")
}

#[test]
fn without_compression_nothing_is_compressed_unless_a_route_asks() {
    let c = config(&(route("GET /a", "") + &route("GET /b", "compression = true")));
    assert!(c.compression.policy(Some(0)).is_none());
    assert!(c.compression.policy(None).is_none());
    let b = c.compression.policy(Some(1)).unwrap();
    assert_eq!(b.min_bytes, crate::compress::DEFAULT_MIN_BYTES);
    assert_eq!(b.types, crate::compress::types::defaults());
    assert_eq!(c.compression.decode_limits(0).max_ratio, 100);
}

#[test]
fn routes_inherit_and_override() {
    let text =
        "[compression]\nmin_bytes = 10\ntypes = [\"application/json\"]\nmax_decoded_ratio = 7\n"
            .to_string()
            + &route("GET /a", "")
            + &route("GET /b", "compression = false")
            + &route("GET /c", "compression = { min_bytes = 5 }")
            + &route(
                "GET /d",
                "[route.compression]\ntypes = [\"text/*\", \"+json\"]",
            );
    let c = config(&text);
    let a = c.compression.policy(Some(0)).unwrap();
    assert_eq!(a.min_bytes, 10);
    assert_eq!(a.types, vec![TypePattern::Exact("application/json".into())]);
    assert_eq!(c.compression.policy(None).unwrap().min_bytes, 10);
    assert!(c.compression.policy(Some(1)).is_none());
    // decoding limits hold for a route that does not compress responses too
    assert_eq!(c.compression.decode_limits(1).max_ratio, 7);
    let cc = c.compression.policy(Some(2)).unwrap();
    assert_eq!((cc.min_bytes, cc.types.len()), (5, 1));
    let d = c.compression.policy(Some(3)).unwrap();
    assert_eq!(d.min_bytes, 10);
    assert_eq!(
        d.types,
        vec![
            TypePattern::AnySubtype("text".into()),
            TypePattern::Suffix("+json".into())
        ]
    );
}

#[test]
fn errors_name_the_key_and_its_line() {
    let text = "[compression]\nmin_bytes = 1\ntypes = [\"text/*\",\n  \"nonsense\"]\nmax_decoded_ratio = 0\n"
        .to_string()
        + &route("GET /a", "compression = { types = [] }")
        + &route("GET /b", "compression = { min_bytes = 2000000000 }");
    let e = errors(&text);
    let keys: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        keys,
        vec![
            (4, "compression.types[1]"),
            (5, "compression.max_decoded_ratio"),
            (9, "route[0].compression.types"),
            (13, "route[1].compression.min_bytes"),
        ],
        "{e:?}"
    );
    // a negative size is refused by the TOML reader, on its line
    let negative = errors(&route("GET /b", "compression = { min_bytes = -1 }"));
    assert!(negative.iter().any(|(l, _, _)| *l == 4), "{negative:?}");
    let unknown = errors(&route("GET /a", "compression = { level = 9 }"));
    assert!(
        unknown
            .iter()
            .any(|(l, _, m)| *l == 4 && m.contains("level")),
        "{unknown:?}"
    );
}
