//! Every definition in tests/data/openapi: it imports to an API file that parses as
//! [`RawApiFile`], and import → export → import gives the same file (through JSON and YAML).

use super::*;

/// The test definitions: (file name, text).
pub(super) fn definitions() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/openapi");
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            )
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(out.len() >= 7, "the test definitions are missing: {out:?}");
    out
}

#[test]
fn every_definition_imports_to_an_api_file() {
    for (name, text) in definitions() {
        let imported = import(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let file: RawApiFile = toml::from_str(&imported.toml)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", imported.toml));
        assert_eq!(file.route.len(), imported.routes.len(), "{name}");
        assert!(!file.route.is_empty(), "{name}: no routes");
        if std::env::var_os("OPENAPI_DUMP").is_some() {
            eprintln!("==== {name}\n{}", imported.toml);
            for u in &imported.unsupported {
                eprintln!("  ! {u}");
            }
            eprintln!("  routes: {:?}", imported.routes);
        }
    }
}

#[test]
fn import_export_import_gives_the_same_api_file() {
    for (name, text) in definitions() {
        let first = import(&text).unwrap();
        let file: RawApiFile = toml::from_str(&first.toml).unwrap();
        let exported = export(&file, &name);
        let json = serde_json::to_string_pretty(&exported).unwrap();
        let again = import(&json).unwrap_or_else(|e| panic!("{name}: {e}\n{json}"));
        assert_eq!(first.toml, again.toml, "{name} (through JSON)");
        let yaml = to_yaml(&exported);
        let again = import(&yaml).unwrap_or_else(|e| panic!("{name}: {e}\n{yaml}"));
        assert_eq!(first.toml, again.toml, "{name} (through YAML)");
    }
}
