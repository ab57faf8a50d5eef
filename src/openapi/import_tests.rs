//! The import, extension by extension: what each becomes in the API file, what is reported
//! (pointers exact), and what is refused.

use super::*;
use crate::config::raw::RawApiFile;

/// Imports `text`, checks the TOML parses as an API file, returns both.
fn run(text: &str) -> (Imported, RawApiFile) {
    let imported = import(text).unwrap_or_else(|e| panic!("{e}"));
    let file: RawApiFile =
        toml::from_str(&imported.toml).unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
    (imported, file)
}

fn pointers(i: &Imported) -> Vec<&str> {
    i.unsupported.iter().map(|u| u.pointer.as_str()).collect()
}

/// The imported file as a TOML value (to look at keys without the structs' spans).
fn value(i: &Imported) -> toml::Value {
    toml::from_str(&i.toml).unwrap()
}

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/openapi/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn swagger_2_and_openapi_3_petstores_give_the_same_routes() {
    let (two, _) = run(&data("petstore-swagger2.json"));
    let (three, _) = run(&data("petstore-oas30.yaml"));
    let keys = |i: &Imported| -> Vec<String> {
        value(i)["route"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys(&two), keys(&three));
    assert_eq!(
        keys(&two),
        [
            "GET /",
            "GET /pets",
            "POST /pets",
            "OPTIONS /pets",
            "GET /pets/{petId}",
            "OPTIONS /pets/{petId}"
        ]
    );
    // 3.0's integration path parameter {id} is mapped from the route's {petId}
    let v = value(&three);
    assert_eq!(
        v["route"][4]["path"].as_str(),
        Some("/petstore/pets/{petId}")
    );
    assert_eq!(
        v["route"][4]["upstream"].as_str(),
        Some("http://petstore-demo-endpoint.execute-api.com")
    );
    assert_eq!(v["base_path"].as_str(), Some("/test"));
    // the root mock: status, content type, body with $context kept
    let mock = &v["route"][0]["mock"];
    assert_eq!(mock["status"].as_integer(), Some(200));
    assert_eq!(mock["headers"]["Content-Type"].as_str(), Some("text/html"));
    assert!(mock["body"]
        .as_str()
        .unwrap()
        .contains("/$context.stage/pets/"));
    // REST query mappings
    let rp = &v["route"][1]["request_parameters"];
    assert_eq!(
        rp["overwrite:querystring.page"].as_str(),
        Some("$request.querystring.page")
    );
    // CORS headers of integration responses: the route's policy, with the OPTIONS mock's lists
    let cors = &v["route"][1]["cors"];
    assert_eq!(cors["allow_origins"].as_array().unwrap().len(), 1);
    assert_eq!(cors["allow_methods"].as_array().unwrap().len(), 3);
    assert_eq!(
        pointers(&three)[0],
        "/paths/~1pets/get/x-amazon-apigateway-integration/responses/default/responseParameters/method.response.header.Access-Control-Allow-Origin"
    );
    assert_eq!(three.routes[0], "/paths/~1/get");
    assert_eq!(three.routes[4], "/paths/~1pets~1{petId}/get");
}

#[test]
fn yaml_and_json_of_one_definition_import_alike() {
    let yaml = data("http-api-authorizers.yaml");
    let parsed = parse::parse(&yaml).unwrap().value;
    let json = serde_json::to_string(&parsed).unwrap();
    assert_eq!(import(&yaml).unwrap(), import(&json).unwrap());
}

#[test]
fn http_api_proxy_lambda_and_authorizers() {
    let (i, file) = run(&data("http-api-authorizers.yaml"));
    let v = value(&i);
    let routes = v["route"].as_array().unwrap();
    // $ref to components.x-amazon-apigateway-integrations; global security; `security: []`
    let get_orders = &routes[1];
    assert_eq!(get_orders["key"].as_str(), Some("GET /orders"));
    assert_eq!(
        get_orders["function"].as_str(),
        Some("arn:aws:lambda:eu-west-1:123456789012:function:orders")
    );
    assert_eq!(get_orders["payload_format"].as_str(), Some("2.0"));
    assert_eq!(get_orders["authorizer"].as_str(), Some("jwt-authorizer"));
    assert_eq!(
        get_orders["scopes"].as_array().unwrap()[0].as_str(),
        Some("orders/read")
    );
    assert_eq!(routes[0]["key"].as_str(), Some("GET /health"));
    assert!(routes[0].get("authorizer").is_none());
    let reports = &routes[3];
    assert_eq!(reports["authorizer"].as_str(), Some("lambda-authorizer"));
    assert_eq!(reports["timeout_ms"].as_integer(), Some(5000));
    assert!(reports.get("scopes").is_none());
    // authorizers
    let jwt = &file.authorizer[0];
    assert_eq!(jwt.kind.get_ref(), "jwt");
    assert_eq!(
        jwt.issuer.as_ref().unwrap().get_ref(),
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
    );
    assert_eq!(
        jwt.identity_source.as_ref().unwrap().get_ref(),
        "$request.header.Authorization"
    );
    let req = &file.authorizer[1];
    assert_eq!(req.kind.get_ref(), "request");
    assert_eq!(
        req.function.as_ref().unwrap().get_ref(),
        "arn:aws:lambda:eu-west-1:123456789012:function:authz"
    );
    assert_eq!(req.payload_format.as_ref().unwrap().get_ref(), "2.0");
    assert_eq!(
        req.simple_responses.as_ref().map(|s| *s.get_ref()),
        Some(true)
    );
    assert_eq!(req.ttl_s.as_ref().map(|s| *s.get_ref()), Some(300));
    let sources: Vec<&str> = req
        .identity_sources
        .as_ref()
        .unwrap()
        .get_ref()
        .iter()
        .map(|s| s.get_ref().as_str())
        .collect();
    assert_eq!(
        sources,
        [
            "$request.header.Authorization",
            "$request.querystring.tenant"
        ]
    );
    // HTTP API response parameters: kept, but not $response values
    assert_eq!(
        reports["response_parameters"]["200"]["append:header.cache-control"].as_str(),
        Some("no-store")
    );
    assert_eq!(
        pointers(&i),
        ["/paths/~1reports~1{id}/get/x-amazon-apigateway-integration/responseParameters/200/overwrite:header.x-powered-by"]
    );
}

#[test]
fn http_api_petstore_cors_default_route_and_mappings() {
    let (i, file) = run(&data("petstore-http-api.yaml"));
    let v = value(&i);
    let cors = file.cors.as_ref().unwrap();
    assert_eq!(
        cors.allow_origins.get_ref()[0].get_ref(),
        "https://www.example.com"
    );
    assert!(*cors.allow_credentials.get_ref());
    assert_eq!(cors.max_age.as_ref().map(|m| *m.get_ref()), Some(3600));
    let default = &v["route"][0];
    assert_eq!(default["key"].as_str(), Some("$default"));
    assert_eq!(
        default["upstream"].as_str(),
        Some("https://${stageVariables.fallbackHost}")
    );
    assert!(default.get("path").is_none());
    assert_eq!(
        default["request_parameters"]["append:header.x-from-gateway"].as_str(),
        Some("tollgate")
    );
    assert_eq!(
        default["response_parameters"]["404"]["overwrite:statuscode"].as_str(),
        Some("410")
    );
    assert!(
        v.get("base_path").is_none(),
        "an empty basePath variable is no base path"
    );
    assert_eq!(
        pointers(&i),
        ["/paths/~1pets/get/x-amazon-apigateway-integration/timeoutInMillis"]
    );
}

#[test]
fn lambda_proxy_greedy_path_stage_variables_binary_types() {
    let (i, file) = run(&data("lambda-proxy.yaml"));
    let v = value(&i);
    assert_eq!(v["base_path"].as_str(), Some("/test"));
    let types: Vec<&str> = file
        .binary_media_types
        .iter()
        .map(|t| t.get_ref().as_str())
        .collect();
    assert_eq!(types, ["image/png", "application/octet-stream"]);
    let routes = v["route"].as_array().unwrap();
    assert_eq!(routes[2]["key"].as_str(), Some("ANY /{proxy+}"));
    assert_eq!(
        routes[2]["payload_format"].as_str(),
        Some("1.0"),
        "REST's Lambda proxy event"
    );
    assert_eq!(
        routes[0]["function"].as_str(),
        Some("arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.function}")
    );
    assert_eq!(
        routes[1]["upstream"].as_str(),
        Some("https://${stageVariables.siteHost}")
    );
    assert_eq!(routes[1]["path"].as_str(), Some("/static/{proxy}"));
    assert_eq!(
        routes[1]["request_parameters"]["overwrite:header.x-tenant"].as_str(),
        Some("$stageVariables.tenant")
    );
    assert_eq!(
        pointers(&i),
        [
            "/paths/~1site~1{proxy+}/get/x-amazon-apigateway-integration/x-amazon-apigateway-frobnicate",
            "/paths/~1{proxy+}/x-amazon-apigateway-any-method/x-amazon-apigateway-integration/contentHandling",
        ]
    );
}

#[test]
fn validators_models_gateway_responses_and_api_keys() {
    let (i, file) = run(&data("rest-validation.json"));
    let v = value(&i);
    assert_eq!(v["api_key_source"].as_str(), Some("HEADER"));
    assert_eq!(v["base_path"].as_str(), Some("/v1"));
    let routes = v["route"].as_array().unwrap();
    let get = &routes[0];
    assert_eq!(get["api_key_required"].as_bool(), Some(true));
    assert_eq!(
        get["validate"]["required_querystrings"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(get["validate"].get("body").is_none(), "params-only");
    assert_eq!(
        get["response_parameters"]["4XX"]["overwrite:statuscode"].as_str(),
        Some("400")
    );
    assert_eq!(
        get["request_template"]["application/json"]
            .as_str()
            .map(|t| t.contains("$input.params('q1')")),
        Some(true)
    );
    assert!(get["request_template"].get("application/xml").is_none());
    let post = &routes[2];
    assert_eq!(post["validate"]["body"].as_str(), Some("RequestBodyModel"));
    assert_eq!(
        post["validate"]["required_headers"].as_array().unwrap()[0].as_str(),
        Some("h1")
    );
    // an inline body schema is named after the operation; its $ref to Product is a model ref
    let put = &routes[1];
    assert_eq!(put["validate"]["body"].as_str(), Some("ReplaceProducts"));
    let names: Vec<&str> = file
        .model
        .iter()
        .map(|m| m.name.get_ref().as_str())
        .collect();
    assert_eq!(names, ["Product", "ReplaceProducts", "RequestBodyModel"]);
    let replace = file.model[1].schema_json.as_ref().unwrap().get_ref();
    let schema: serde_json::Value = serde_json::from_str(replace).unwrap();
    assert_eq!(schema["properties"]["items"]["items"]["$ref"], "Product");
    // gateway responses
    let kinds: Vec<&str> = file
        .gateway_response
        .iter()
        .map(|g| g.kind.get_ref().as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "BAD_REQUEST_BODY",
            "DEFAULT_4XX",
            "MISSING_AUTHENTICATION_TOKEN"
        ]
    );
    assert_eq!(
        file.gateway_response[0]
            .status
            .as_ref()
            .map(|s| *s.get_ref()),
        Some(422)
    );
    assert_eq!(
        file.gateway_response[1].headers["Access-Control-Allow-Origin"].get_ref(),
        "'*'"
    );
    assert_eq!(
        pointers(&i),
        [
            "/x-amazon-apigateway-gateway-responses/BAD_REQUEST_BODY/responseParameters/gatewayresponse.header.x-request-path",
            "/x-amazon-apigateway-policy",
            "/paths/~1validation/get/x-amazon-apigateway-integration/requestParameters/integration.request.header.Host",
            "/paths/~1validation/get/x-amazon-apigateway-integration/requestTemplates/application~1xml",
            "/paths/~1validation/get/x-amazon-apigateway-integration/passthroughBehavior",
            "/paths/~1validation/get/x-amazon-apigateway-integration/responses/4\\d{2}/responseTemplates",
        ]
    );
}

#[test]
fn console_export_reports_what_tollgate_lacks() {
    let (i, file) = run(&data("console-export.yaml"));
    assert_eq!(
        pointers(&i),
        [
            "/x-amazon-apigateway-minimum-compression-size",
            "/components/securitySchemes/orders-cognito/x-amazon-apigateway-authorizer",
            "/components/securitySchemes/sigv4",
            "/components/securitySchemes/token-auth/x-amazon-apigateway-authorizer/identityValidationExpression",
            "/paths/~1orders/post/x-amazon-apigateway-integration/contentHandling",
            "/paths/~1orders~1{orderId}/get/x-amazon-apigateway-integration/connectionType",
            "/paths/~1orders~1{orderId}/delete/x-amazon-apigateway-integration/credentials",
            "/paths/~1orders~1{orderId}/delete/x-amazon-apigateway-integration/type",
        ]
    );
    // the aws (DynamoDB) integration is left out; the others are in
    assert_eq!(i.routes.len(), 4);
    assert!(!i.routes.iter().any(|r| r.ends_with("/delete")));
    // Cognito: a JWT authorizer on the pool's issuer, without audience (fails closed at load)
    let cognito = &file.authorizer[0];
    assert_eq!(cognito.kind.get_ref(), "jwt");
    assert!(cognito.audience.is_none());
    // SigV4: aws_iam with the definition's region; a token authorizer: request, payload 1.0
    assert_eq!(
        file.authorizer[1].region.as_ref().unwrap().get_ref(),
        "eu-central-1"
    );
    assert_eq!(
        file.authorizer[2]
            .payload_format
            .as_ref()
            .unwrap()
            .get_ref(),
        "1.0"
    );
    let post = &file.route[1];
    assert!(post.api_key_required);
    assert_eq!(post.authorizer.as_ref().unwrap().get_ref(), "sigv4");
    assert_eq!(file.model.len(), 2, "NewOrder and the OrderItem it names");
}

#[test]
fn openapi_3_1_schemas_say_their_dialect() {
    let (_, file) = run(&data("openapi31.json"));
    assert_eq!(file.model[0].name.get_ref(), "POST_notes_body");
    let schema: serde_json::Value =
        serde_json::from_str(file.model[0].schema_json.as_ref().unwrap().get_ref()).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(file.base_path.as_ref().unwrap().get_ref(), "/api");
}

const HEAD: &str = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\n";

#[test]
fn mocks_select_their_response_by_the_request_template() {
    let text = format!(
        "{HEAD}paths:
  /teapot:
    get:
      x-amazon-apigateway-integration:
        type: MOCK
        requestTemplates:
          application/json: '{{\"statusCode\": 418}}'
        responses:
          default:
            statusCode: 200
          4\\d{{2}}:
            statusCode: 418
            responseParameters:
              method.response.header.x-kind: \"'teapot'\"
              method.response.header.x-id: method.request.header.x-id
              method.response.header.Date: \"'never'\"
            responseTemplates:
              application/json: '{{\"id\": \"$input.params(\"id\")\"}}'
"
    );
    let (i, file) = run(&text);
    let mock = file.route[0].mock.as_ref().unwrap().get_ref();
    assert_eq!(mock.status, 418);
    assert_eq!(mock.headers["x-kind"], "teapot");
    assert_eq!(mock.headers["x-id"], "$request.header.x-id");
    assert!(!mock.headers.contains_key("Date"), "tollgate writes date");
    assert!(mock.body.is_empty());
    let v = value(&i);
    assert!(v["route"][0]["response_template"]["application/json"]
        .as_str()
        .unwrap()
        .contains("$input.params"));
}

#[test]
fn security_that_cannot_be_mapped_leaves_the_operation_out() {
    let text = format!(
        "{HEAD}paths:
  /a:
    get:
      security: [{{nope: []}}]
      x-amazon-apigateway-integration: {{type: mock}}
  /b:
    get:
      security: [{{weird: []}}]
      x-amazon-apigateway-integration: {{type: mock}}
  /c:
    get:
      security: [{{plain-oauth: [read]}}]
      x-amazon-apigateway-integration: {{type: mock}}
  /d:
    get:
      x-amazon-apigateway-auth: {{type: AWS_IAM}}
      x-amazon-apigateway-integration: {{type: mock}}
components:
  securitySchemes:
    weird:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authorizer: {{type: saml}}
    plain-oauth:
      type: oauth2
      flows: {{}}
"
    );
    let (i, file) = run(&text);
    assert_eq!(i.routes, ["/paths/~1c/get", "/paths/~1d/get"]);
    assert!(
        file.route[0].authorizer.is_none(),
        "API Gateway does not enforce a scheme without an authorizer"
    );
    assert_eq!(
        file.route[1].authorizer.as_ref().unwrap().get_ref(),
        "aws_iam"
    );
    assert_eq!(
        pointers(&i),
        [
            "/components/securitySchemes/weird/x-amazon-apigateway-authorizer/type",
            "/paths/~1a/get/security/0/nope",
            "/paths/~1b/get/security/0/weird",
            "/paths/~1d/get/x-amazon-apigateway-auth",
        ]
    );
}

#[test]
fn references_to_path_items_parameters_and_bodies() {
    let text = format!(
        "{HEAD}x-amazon-apigateway-request-validator: all
x-amazon-apigateway-request-validators:
  all: {{validateRequestBody: true, validateRequestParameters: true}}
paths:
  /items/{{id}}:
    $ref: '#/components/x-shared/item'
components:
  x-shared:
    item:
      parameters:
        - $ref: '#/components/parameters/tenant'
      put:
        parameters:
          - {{name: tenant, in: header, required: false}}
          - {{name: v, in: query, required: true}}
        requestBody:
          $ref: '#/components/requestBodies/item'
        x-amazon-apigateway-integration:
          type: http_proxy
          httpMethod: PUT
          uri: http://backend:9000/items/{{id}}
      delete:
        x-amazon-apigateway-integration:
          type: http_proxy
          httpMethod: DELETE
          uri: http://backend:9000/items/{{id}}
  parameters:
    tenant: {{name: tenant, in: header, required: true}}
  requestBodies:
    item:
      content:
        application/json:
          schema: {{$ref: '#/components/schemas/Item'}}
  schemas:
    Item:
      type: object
      properties:
        tags: {{type: array, items: {{$ref: '#/components/schemas/Tag'}}}}
    Tag: {{type: string}}
"
    );
    let (i, file) = run(&text);
    assert_eq!(
        i.routes,
        [
            "/components/x-shared/item/put",
            "/components/x-shared/item/delete"
        ]
    );
    let put = file.route[0].validate.as_ref().unwrap().get_ref();
    assert!(
        put.required_headers.is_empty(),
        "the operation's own parameter wins"
    );
    assert_eq!(put.required_querystrings[0].get_ref(), "v");
    assert_eq!(put.body.as_ref().unwrap().get_ref(), "Item");
    let delete = file.route[1].validate.as_ref().unwrap().get_ref();
    assert_eq!(delete.required_headers[0].get_ref(), "tenant");
    assert_eq!(file.model.len(), 2);
    assert_eq!(
        file.route[0].upstream.as_ref().unwrap().get_ref(),
        "http://backend:9000"
    );
}

#[test]
fn malformed_definitions_are_errors() {
    let cases: &[(&str, &str)] = &[
        ("", ""),
        ("just text", ""),
        ("[1, 2]", ""),
        ("openapi: 3.0.0\npaths: [1]\n", "/paths"),
        ("openapi: 3.0.0\npaths:\n  /a: 5\n", "/paths/~1a"),
        ("openapi: 3.0.0\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: yes\n", "/paths/~1a/get/x-amazon-apigateway-integration"),
        ("openapi: 3.0.0\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {uri: x}\n", "/paths/~1a/get/x-amazon-apigateway-integration"),
        ("openapi: 3.0.0\npaths:\n  /a:\n    $ref: '#/nowhere'\n", "/paths/~1a/$ref"),
        ("openapi: 3.0.0\npaths:\n  /a:\n    $ref: 'other.yaml#/a'\n", "/paths/~1a/$ref"),
        ("openapi: 3.0.0\nx:\n  $ref: '#/x'\npaths:\n  /a:\n    $ref: '#/x'\n", "/paths/~1a"),
        ("openapi: 3.0.0\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration: {type: mock, timeoutInMillis: soon}\n", ""),
        ("openapi: 3.0.0\nx-amazon-apigateway-cors: {allowOrigins: 5}\npaths: {}\n", "/x-amazon-apigateway-cors/allowOrigins"),
    ];
    for (text, pointer) in cases {
        match import(text) {
            Err(e) => {
                if !pointer.is_empty() {
                    assert_eq!(e.pointer, *pointer, "{text:?}: {e}");
                }
            }
            Ok(i) if text.contains("timeoutInMillis") => {
                // a mock ignores timeouts: still fine
                assert!(i.unsupported.is_empty());
            }
            Ok(i) => panic!("{text:?} imported: {i:?}"),
        }
    }
}

#[test]
fn no_input_makes_the_import_panic() {
    // every prefix of every test definition, and some garbage: an answer, never a panic
    let mut inputs: Vec<String> = vec![
        "\u{0}\u{1}\u{2}".into(),
        "{{{{".into(),
        "- - - - [".into(),
        "a: &x [*x]".into(),
        "openapi: 3.0.0\npaths: {'/x': {get: {x-amazon-apigateway-integration: {type: http, uri: 'http://h/{a}{'}}}}".into(),
        "swagger: '2.0'\npaths: {'/x': {get: {parameters: [{in: body, schema: {$ref: '#/definitions/A'}}], x-amazon-apigateway-request-validator: v, x-amazon-apigateway-integration: {type: mock}}}}\nx-amazon-apigateway-request-validators: {v: {validateRequestBody: true}}\n".into(),
    ];
    for (_, text) in super::roundtrip_tests::definitions() {
        let cuts: Vec<usize> = (0..text.len())
            .step_by(97)
            .filter(|i| text.is_char_boundary(*i))
            .collect();
        inputs.extend(cuts.into_iter().map(|c| text[..c].to_string()));
    }
    for text in &inputs {
        if let Ok(i) = import(text) {
            toml::from_str::<RawApiFile>(&i.toml).unwrap();
        }
    }
}
