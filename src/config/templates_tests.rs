//! `request_template` / `response_template` in the config: both forms (a string; a table by
//! content type, inline, dotted or as its own header), errors naming the key and its line
//! (directives, with the directive's own line in a multi-line string; bad keys; conflicts with
//! `transform`; WebSocket routes), every error of a file in one run, and which routes hold
//! their request body.

use super::super::check_tests::errors;
use super::*;

fn route(extra: &str) -> String {
    format!("[[route]]\nkey = \"POST /pets/{{id}}\"\nmock = {{}}\n{extra}\n")
}

fn config(text: &str) -> super::super::Config {
    super::super::from_str(text).unwrap_or_else(|e| panic!("{}\n{text}", e.render("t")))
}

#[test]
fn a_string_or_a_table_by_content_type() {
    let c = config(&route(
        "request_template = \"{\\\"id\\\": \\\"$input.params('id')\\\"}\"\nresponse_template = { \"application/xml\" = \"<a/>\", \"application/json\" = \"{}\" }",
    ));
    let t = &c.templates.routes[0];
    assert!(t.request.is_some() && t.response.is_some());
    assert_eq!(
        t.request.as_ref().unwrap().max_bytes(),
        super::super::bodies::DEFAULT_MAX_BODY_BYTES
    );
    assert_eq!(
        t.response.as_ref().unwrap().max_bytes(),
        crate::transform::response::MAX_RESPONSE_BYTES
    );
    // the request template makes the route hold its body; a response template alone does not
    assert_eq!(
        c.bodies.routes,
        vec![Some(super::super::bodies::DEFAULT_MAX_BODY_BYTES)]
    );
    let c = config(&route("response_template = \"{}\"\nmax_body_bytes = 1000"));
    assert_eq!(c.bodies.routes, vec![None]);
    let c = config(&route("request_template = \"{}\"\nmax_body_bytes = 1000"));
    assert_eq!(
        c.templates.routes[0].request.as_ref().unwrap().max_bytes(),
        1000
    );
}

#[test]
fn dotted_keys_and_header_tables() {
    let dotted = config(&route(
        "request_template.\"application/json\" = \"{}\"\nrequest_template.\"text/plain\" = \"$input.body\"",
    ));
    assert!(dotted.templates.routes[0].request.is_some());
    let header = config(&(route("") + "[route.response_template]\n\"application/json\" = '''\n{\"a\": $input.json('$.a')}\n'''\n"));
    assert!(header.templates.routes[0].response.is_some());
}

#[test]
fn directives_are_refused_naming_key_and_line() {
    let e = errors(&route("request_template = \"#if($input.body) x #end\""));
    assert_eq!(
        e,
        vec![(
            4,
            "route[0].request_template".to_string(),
            "mapping templates support no directives (#if): full VTL is out of scope".into()
        )]
    );
    // a multi-line string: the key's line, and the directive's own
    let text = route(
        "response_template = { \"application/json\" = \"\"\"\n{\n  \"a\": 1,\n  #foreach($i in $x)\n}\n\"\"\" }",
    );
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, 4);
    assert_eq!(e[0].1, "route[0].response_template.\"application/json\"");
    assert_eq!(
        e[0].2,
        "mapping templates support no directives (#foreach): full VTL is out of scope (line 7)"
    );
}

#[test]
fn the_directives_line_counts_escapes_and_line_ending_backslashes() {
    // a line-ending backslash joins lines; an escaped \n is no line of the file
    let text = route("request_template = \"\"\"\na \\\n  b\\n\\n\\n\nc #set($a = 1)\"\"\"");
    let e = errors(&text);
    assert_eq!(e[0].2.rsplit_once(" (").unwrap().1, "line 7)", "{e:?}");
    let text = route("request_template = '''\nx\n\n#stop'''");
    let e = errors(&text);
    assert!(
        e[0].2
            .ends_with("(#stop): full VTL is out of scope (line 7)"),
        "{e:?}"
    );
}

#[test]
fn bad_keys_tables_and_references() {
    let e = errors(&route(
        "request_template = { \"json\" = \"{}\", \"application/json; charset=utf-8\" = \"{}\", \"text/*\" = \"x\" }\nresponse_template = {}",
    ));
    let keys: Vec<&str> = e.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "route[0].request_template.\"json\"",
            "route[0].request_template.\"application/json; charset=utf-8\"",
            "route[0].request_template.\"text/*\"",
            "route[0].response_template",
        ],
        "{e:?}"
    );
    assert!(e[0].2.contains("not a media type"), "{e:?}");
    assert!(e[3].2.contains("empty table"), "{e:?}");
    let e = errors(&route(
        "request_template = { \"application/json\" = \"1\", \"Application/JSON\" = \"2\" }",
    ));
    assert!(e[0].2.contains("given twice"), "{e:?}");
    let e = errors(&route(
        "request_template = \"$context.nope $input.params().path.get('id')\"",
    ));
    assert_eq!(e[0].2, "unknown variable $context.nope");
    let e = errors(&route(
        "request_template = \"$input.params().path.get('petId')\"",
    ));
    assert!(e[0].2.contains("no path parameter {petId}"), "{e:?}");
    let e = errors(&route("request_template = 7"));
    assert_eq!(e[0].1, "route[0].request_template", "{e:?}");
}

#[test]
fn a_template_and_a_transformation_cannot_replace_the_same_body() {
    let e = errors(&route(
        "transform = { request = \"json_to_xml\", response = \"xml_to_json\" }\nrequest_template = \"{}\"\nresponse_template = \"{}\"",
    ));
    let named: Vec<(usize, &str)> = e
        .iter()
        .filter(|(_, _, m)| m.contains("both replace"))
        .map(|(l, k, _)| (*l, k.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            (5, "route[0].request_template"),
            (6, "route[0].response_template")
        ],
        "{e:?}"
    );
    let m = &e.iter().find(|(l, _, _)| *l == 5).unwrap().2;
    assert!(m.contains("route[0].transform.request (line 4)"), "{m}");
    // opposite directions do not meet
    let text = route("transform = { response = \"xml_to_json\" }\nrequest_template = \"{}\"");
    assert!(super::super::from_str(&text)
        .err()
        .is_none_or(|e| e.0.iter().all(|e| !e.message.contains("both replace"))));
}

#[test]
fn websocket_routes_take_no_templates() {
    let text = "[[upstream]]\nname = \"o\"\ntargets = [\"127.0.0.1:9\"]\n\n[[route]]\nkey = \"GET /ws\"\nupstream = \"o\"\nwebsocket = true\nresponse_template = \"{}\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (9, "route[0].response_template"));
    assert!(e[0].2.contains("WebSocket"));
}

#[test]
fn every_error_in_one_run() {
    let text = route("request_template = \"#if\"")
        + &route("response_template = \"$util.nope('x')\"").replace("POST", "PUT");
    let e = errors(&text);
    assert_eq!(
        e.iter()
            .map(|(l, k, _)| (*l, k.as_str()))
            .collect::<Vec<_>>(),
        [
            (4, "route[0].request_template"),
            (8, "route[1].response_template")
        ],
        "{e:?}"
    );
}

#[test]
fn path_parameters_of_a_route_key() {
    assert_eq!(param_names("GET /pets/{id}/x/{rest+}"), ["id", "rest"]);
    assert!(param_names("$default").is_empty());
}

#[test]
fn source_offsets() {
    let text = "k = \"a\\tb\\u00e9c\"";
    let span = 4..text.len();
    // value "a\tbéc": c is at value byte 5 (é is 2 bytes), source byte 4 + 1 + 1 + 2 + 1 + 6
    assert_eq!(source_offset(text, &span, 5), 4 + 11);
    let text = "k = 'a\\tb'";
    assert_eq!(source_offset(text, &(4..text.len()), 3), 4 + 4);
    let text = "k = \"\"\"\r\nab\"\"\"";
    assert_eq!(source_offset(text, &(4..text.len()), 1), 4 + 6);
}

#[test]
fn the_readme_example_compiles() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("### Mapping templates")
        .nth(1)
        .and_then(|s| s.split("```toml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .unwrap();
    let text =
        format!("[[upstream]]\nname = \"backend\"\ntargets = [\"127.0.0.1:9\"]\n\n{section}");
    let c = config(&text);
    assert!(c.templates.routes[0].request.is_some());
    assert!(c.templates.routes[1].response.is_some());
}
