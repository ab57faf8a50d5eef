//! Weighted upstream targets: both written forms, the weight each address carries, and the
//! errors (weight out of range or of the wrong type, unknown key, missing address), each named
//! by its dotted key and line; the effective config's form of a target.

use super::check_tests::{errors, keys_and_lines};
use super::*;

const ROUTE: &str = "[[route]]\nkey = \"GET /x\"\nupstream = \"u\"\n";

/// Upstream `u` with `targets` (TOML array items) on line 6 of the file.
fn text(targets: &str) -> String {
    format!("{ROUTE}[[upstream]]\nname = \"u\"\ntargets = [{targets}]\n")
}

#[test]
fn both_forms_mix_and_carry_their_weight() {
    let cfg = from_str(&text(
        r#""10.0.0.1:80", { address = "10.0.0.2:80", weight = 3 }, { address = "10.0.0.3:80" }"#,
    ))
    .unwrap();
    let u = &cfg.upstreams[0];
    assert_eq!(u.targets.len(), 3);
    assert_eq!(u.weights(), [1, 3, 1]);
    assert_eq!(u.names[1].target, "10.0.0.2:80");
    assert_eq!(u.names[1].weight, 3);
    // the bounds themselves are accepted
    let edges =
        r#"{ address = "10.0.0.1:80", weight = 1 }, { address = "10.0.0.2:80", weight = 1000 }"#;
    assert_eq!(
        from_str(&text(edges)).unwrap().upstreams[0].weights(),
        [1, 1000]
    );
}

#[test]
fn every_address_of_a_host_name_carries_its_weight() {
    let cfg = from_str(&text(
        r#"{ address = "localhost:80", weight = 4 }, "10.0.0.9:80""#,
    ))
    .unwrap();
    let u = &cfg.upstreams[0];
    let n = u.names[0].addrs.len();
    assert!(n >= 1);
    let mut want = vec![4; n];
    want.push(1);
    assert_eq!(u.weights(), want);
    assert_eq!(u.targets.len(), n + 1);
}

#[test]
fn weight_out_of_range_names_key_and_line() {
    for (weight, want) in [
        ("0", "must be in 1..=1000 (got 0)"),
        ("1001", "must be in 1..=1000 (got 1001)"),
        ("-1", "expected a whole number"),
        ("\"3\"", "invalid type: string"),
        ("2.5", "invalid type: floating point"),
    ] {
        let t = format!(
            "\n  \"10.0.0.1:80\",\n  {{ address = \"10.0.0.2:80\", weight = {weight} }},\n"
        );
        let e = errors(&text(&t));
        assert_eq!(e.len(), 1, "{weight}: {e:?}");
        assert_eq!(
            (e[0].0, e[0].1.as_str()),
            (8, "upstream[0].targets[1].weight")
        );
        assert!(e[0].2.contains(want), "{weight}: {e:?}");
    }
}

#[test]
fn unknown_key_in_a_target_names_it() {
    let t = r#"{ address = "10.0.0.1:80", wieght = 2 }"#;
    let e = errors(&text(t));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        (6, "upstream[0].targets[0].wieght")
    );
    assert!(e[0].2.contains("unknown field `wieght`"), "{e:?}");
}

#[test]
fn missing_address_is_named() {
    for t in ["{ weight = 2 }", "{}"] {
        let e = errors(&text(&format!("\"10.0.0.1:80\", {t}")));
        assert_eq!(e.len(), 1, "{t}: {e:?}");
        assert_eq!(
            (e[0].0, e[0].1.as_str()),
            (6, "upstream[0].targets[1].address")
        );
        assert_eq!(e[0].2, "is required and missing", "{t}: {e:?}");
    }
    // the element is set aside: a later one keeps its index in the file
    let t = "\n  { weight = 2 },\n  { address = \"10.0.0.1:80\", weight = 0 },\n";
    assert_eq!(
        keys_and_lines(&text(t)),
        vec![
            (7, "upstream[0].targets[0].address".to_string()),
            (8, "upstream[0].targets[1].weight".to_string()),
        ]
    );
}

#[test]
fn address_problems_name_the_address_key_of_a_table() {
    let t = r#""10.0.0.1:80", { address = "localhost", weight = 2 }"#;
    let e = errors(&text(t));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].0, e[0].1.as_str()),
        (6, "upstream[0].targets[1].address")
    );
    assert!(e[0].2.contains("has no port"), "{e:?}");
    // the string form is still named by its element
    let e = errors(&text(
        r#""localhost", { address = "10.0.0.1:80", weight = 2 }"#,
    ));
    assert_eq!((e[0].0, e[0].1.as_str()), (6, "upstream[0].targets[0]"));
    // neither a string nor a table
    let e = errors(&text(r#""10.0.0.1:80", 5"#));
    assert_eq!((e[0].0, e[0].1.as_str()), (6, "upstream[0].targets[1]"));
    assert!(e[0].2.contains("\"host:port\" or a table"), "{e:?}");
}

#[test]
fn effective_config_shows_weights_in_one_form_per_meaning() {
    let source = text(
        r#""10.0.0.1:80", { address = "10.0.0.2:80", weight = 3 }, { address = "10.0.0.3:80", weight = 1 }"#,
    );
    let t = effective::table(&source).unwrap();
    let shown = t["upstream"][0]["targets"].as_array().unwrap();
    assert_eq!(shown[0].as_str(), Some("10.0.0.1:80"));
    assert_eq!(shown[1]["address"].as_str(), Some("10.0.0.2:80"));
    assert_eq!(shown[1]["weight"].as_integer(), Some(3));
    assert_eq!(
        shown[2].as_str(),
        Some("10.0.0.3:80"),
        "weight 1: the plain string"
    );
    // the rendered list runs as the file does
    let r = effective::render(&source, &[]);
    let list = r
        .split_once("targets = [")
        .and_then(|(_, rest)| rest.split_once("]\n"))
        .map(|(list, _)| list)
        .unwrap();
    let again = from_str(&text(list)).unwrap();
    assert_eq!(again.upstreams[0].weights(), [1, 3, 1]);
    // a weight of 1 written out is no change from the plain string
    let plain = text(r#""10.0.0.1:80", { address = "10.0.0.2:80", weight = 3 }, "10.0.0.3:80""#);
    assert_eq!(effective::table(&source), effective::table(&plain));
}
