use super::*;

#[test]
fn urls_split_into_origin_path_and_query() {
    assert_eq!(
        split_url("HTTP://pets.example.com:8080/petstore/pets?x=1"),
        Some((
            "http://pets.example.com:8080".into(),
            "/petstore/pets".into(),
            Some("x=1".into())
        ))
    );
    assert_eq!(
        split_url("https://${stageVariables.host}"),
        Some(("https://${stageVariables.host}".into(), String::new(), None))
    );
    assert_eq!(split_url("${stageVariables.url}"), None);
    assert_eq!(
        split_url("arn:aws:elasticloadbalancing:us-east-1:1:listener/app/x"),
        None
    );
    assert_eq!(split_url("ftp://x/y"), None);
    assert_eq!(split_url("http:///path"), None);
}

#[test]
fn lambda_functions_from_invocation_uris() {
    let uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:NAME/invocations";
    assert_eq!(
        lambda_function(uri).as_deref(),
        Some("arn:aws:lambda:us-east-1:123456789012:function:NAME")
    );
    let staged = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/${stageVariables.fn}/invocations";
    assert_eq!(
        lambda_function(staged).as_deref(),
        Some("${stageVariables.fn}")
    );
    let plain = "arn:aws:lambda:eu-west-1:1:function:f:live";
    assert_eq!(lambda_function(plain).as_deref(), Some(plain));
    assert_eq!(
        lambda_function("arn:aws:apigateway:us-east-1:dynamodb:action/PutItem"),
        None
    );
    assert_eq!(lambda_function("https://example.com"), None);
}

#[test]
fn origin_paths_take_the_route_parameters() {
    let params = vec!["petId".to_string(), "proxy".to_string()];
    let map = vec![
        ("id".to_string(), "{petId}".to_string()),
        ("v".to_string(), "${stageVariables.v}".to_string()),
    ];
    assert_eq!(
        map_path("/pets/{id}/{v}", &map, &params).unwrap(),
        "/pets/{petId}/${stageVariables.v}"
    );
    assert_eq!(
        map_path("/static/{proxy}", &[], &params).unwrap(),
        "/static/{proxy}"
    );
    assert_eq!(
        map_path("/${stageVariables.prefix}/x", &[], &params).unwrap(),
        "/${stageVariables.prefix}/x"
    );
    assert!(map_path("/pets/{other}", &[], &params).is_err());
    assert!(map_path("/pets/{open", &[], &params).is_err());
}

#[test]
fn rest_values_in_tollgate_form() {
    assert_eq!(rest_value("'*'").as_deref(), Some("*"));
    assert_eq!(rest_value("''").as_deref(), Some("''"));
    assert_eq!(
        rest_value("method.request.header.X-Id").as_deref(),
        Some("$request.header.X-Id")
    );
    assert_eq!(
        rest_value("method.request.querystring.q").as_deref(),
        Some("$request.querystring.q")
    );
    assert_eq!(
        rest_value("method.request.path.id").as_deref(),
        Some("$request.path.id")
    );
    assert_eq!(
        rest_value("method.request.body.pet.name").as_deref(),
        Some("$request.body.pet.name")
    );
    assert_eq!(
        rest_value("context.requestId").as_deref(),
        Some("$context.requestId")
    );
    assert_eq!(
        rest_value("stageVariables.v").as_deref(),
        Some("$stageVariables.v")
    );
    assert_eq!(rest_value("method.request.multivalueheader.x"), None);
    assert_eq!(rest_value("method.request.body"), None);
    assert_eq!(rest_value("integration.response.header.x"), None);
}
