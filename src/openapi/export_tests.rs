use super::*;
use crate::config::raw::RawApiFile;

/// The keys serde writes for a table (all of them: absent ones as null).
fn keys_of<T: serde::Serialize>(v: &T) -> Vec<String> {
    let mut keys: Vec<String> = match serde_json::to_value(v).unwrap() {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    keys.sort();
    keys
}

#[test]
fn key_lists_are_the_structs_keys() {
    let file: RawApiFile = toml::from_str(
        "[[route]]\nkey = \"GET /\"\nmock = {}\n[[authorizer]]\nname = \"a\"\ntype = \"jwt\"\n",
    )
    .unwrap();
    let mut route: Vec<String> = ROUTE_KEYS.iter().map(|k| k.to_string()).collect();
    route.sort();
    assert_eq!(keys_of(&file.route[0]), route);
    let mut auth: Vec<String> = AUTHORIZER_KEYS.iter().map(|k| k.to_string()).collect();
    auth.sort();
    assert_eq!(keys_of(&file.authorizer[0]), auth);
}

#[test]
fn tollgate_only_keys_travel_under_x_tollgate() {
    let text = r#"
base_path = "/v2"
binary_media_types = ["image/png"]

[[route]]
key = "GET /pets/{id}"
upstream = "pets"
path = "/v1/pets/{id}"
throttle = { rate = 10, burst = 20 }
cors = false
allow_ips = ["10.0.0.0/8"]

[[route]]
key = "POST /hooks"
function = "hooks"
response_template = "{\"ok\": true}"

[[route]]
key = "$default"
mock = { status = 404, body = "nothing here", headers = { content-type = "text/plain" } }

[[authorizer]]
name = "iam"
type = "aws_iam"
region = "eu-west-1"

[[authorizer.credential]]
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_env = "SECRET"
principal = "arn:aws:iam::123456789012:user/alice"
allow = ["*"]

[[authorizer]]
name = "users"
type = "jwt"
issuer = "https://id.example.com"
audience = ["app"]
jwks_uri = "https://id.example.com/keys"
leeway_s = 5

[[model]]
name = "FromFile"
schema = "models/x.json"
"#;
    let file: RawApiFile = toml::from_str(text).unwrap();
    let doc = export(&file, "pets");
    let op = &doc["paths"]["/pets/{id}"]["get"];
    assert_eq!(
        op["x-amazon-apigateway-integration"]["x-tollgate-upstream"],
        "pets"
    );
    assert_eq!(
        op["x-amazon-apigateway-integration"]["uri"],
        "http://pets/v1/pets/{id}"
    );
    assert_eq!(op["x-tollgate"]["throttle"]["rate"], 10.0);
    assert_eq!(op["x-tollgate"]["cors"], false);
    assert_eq!(op["parameters"][0]["name"], "id");
    let hooks = &doc["paths"]["/hooks"]["post"];
    assert_eq!(hooks["x-tollgate"]["response_template"], "{\"ok\": true}");
    assert_eq!(
        hooks["x-amazon-apigateway-integration"]["uri"],
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/hooks/invocations"
    );
    let default = &doc["paths"]["/$default"]["x-amazon-apigateway-any-method"];
    assert_eq!(default["x-amazon-apigateway-integration"]["type"], "mock");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["iam"]["x-amazon-apigateway-authtype"], "awsSigv4");
    assert_eq!(
        schemes["iam"]["x-tollgate"]["credential"][0]["principal"],
        "arn:aws:iam::123456789012:user/alice"
    );
    assert_eq!(
        schemes["users"]["x-tollgate"]["jwks_uri"],
        "https://id.example.com/keys"
    );
    assert!(doc["components"]["schemas"]["FromFile"]["description"]
        .as_str()
        .unwrap()
        .contains("models/x.json"));
    assert_eq!(doc["servers"][0]["variables"]["basePath"]["default"], "v2");

    // and back: the same keys, less the model that lives in a file
    let back = super::super::import(&super::super::to_yaml(&doc)).unwrap();
    let again: RawApiFile = toml::from_str(&back.toml).unwrap();
    assert_eq!(again.route.len(), 3);
    let pets = &again.route[2];
    assert_eq!(pets.key.get_ref(), "GET /pets/{id}");
    assert_eq!(pets.upstream.as_ref().unwrap().get_ref(), "pets");
    assert_eq!(pets.path.as_ref().unwrap().get_ref(), "/v1/pets/{id}");
    assert!(pets.throttle.is_some());
    assert!(matches!(
        pets.cors.as_ref().map(|c| c.get_ref()),
        Some(crate::config::raw::RawRouteCors::Enabled(false))
    ));
    assert_eq!(again.route[0].key.get_ref(), "$default");
    let mock = again.route[0].mock.as_ref().unwrap().get_ref();
    assert_eq!((mock.status, mock.body.as_str()), (404, "nothing here"));
    assert_eq!(mock.headers["content-type"], "text/plain");
    assert!(again.route[1].response_template.is_some());
    assert_eq!(again.authorizer[0].credential.len(), 1);
    assert_eq!(
        again.authorizer[0].region.as_ref().unwrap().get_ref(),
        "eu-west-1"
    );
    assert_eq!(
        again.authorizer[1].leeway_s.as_ref().map(|l| *l.get_ref()),
        Some(5)
    );
    assert_eq!(again.binary_media_types.len(), 1);
}
