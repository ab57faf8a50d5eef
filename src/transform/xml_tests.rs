//! The XML ⇄ JSON convention, case by case and as a property: JSON → XML → JSON gives back
//! every value of the convention's domain (see [`super`]) under the `xml_root` member; the
//! safe-XML refusals (DOCTYPE, undeclared entities) and the limits, each named.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::transform::{json_to_xml, xml_to_json};

fn limits() -> XmlLimits {
    XmlLimits::default()
}

fn to_json(xml: &str) -> Result<Value, XmlFault> {
    let out = xml_to_json::convert(xml.as_bytes(), &limits())?;
    Ok(serde_json::from_slice(&out).unwrap())
}

fn to_xml(json: &str) -> Result<String, XmlFault> {
    let out = json_to_xml::convert(json.as_bytes(), "root", &limits())?;
    Ok(String::from_utf8(out).unwrap())
}

const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

#[test]
fn elements_attributes_text_and_arrays() {
    let got = to_json(
        r#"<?xml version="1.0"?>
<order id="7" xmlns:p="urn:p">
  <!-- a comment -->
  <item sku="a">pen</item>
  <p:note>x &amp; y &#x263A; &lt;ok&gt;</p:note>
  <item sku="b"/>
  <empty/>
  <also></also>
  <?pi dropped?>
  <raw><![CDATA[<not> & markup]]></raw>
  <ws>  </ws>
</order>"#,
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"order": {
            "@id": "7", "@xmlns:p": "urn:p",
            "item": [{"@sku": "a", "#text": "pen"}, {"@sku": "b"}],
            "p:note": "x & y \u{263A} <ok>",
            "empty": "", "also": "",
            "raw": "<not> & markup",
            "ws": "  "
        }})
    );
}

#[test]
fn members_keep_document_order_of_first_occurrence() {
    let out = xml_to_json::convert(b"<r b=\"1\"><z>1</z><a>2</a><z>3</z></r>", &limits()).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"r":{"@b":"1","z":["1","3"],"a":"2"}}"#
    );
}

#[test]
fn the_readme_examples_hold() {
    let soap = r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <m:Price xmlns:m="urn:example:stockquote" currency="USD">34.5</m:Price>
  </soap:Body>
</soap:Envelope>"#;
    let out = xml_to_json::convert(soap.as_bytes(), &limits()).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r##"{"soap:Envelope":{"@xmlns:soap":"http://schemas.xmlsoap.org/soap/envelope/","soap:Body":{"m:Price":{"@xmlns:m":"urn:example:stockquote","@currency":"USD","#text":"34.5"}}}}"##
    );
    let order = r#"{"order": {"@id": "7", "item": ["pen", "ink"], "qty": 2}}"#;
    let out = json_to_xml::convert(order.as_bytes(), "Request", &limits()).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        format!("{DECL}<Request><order id=\"7\"><item>pen</item><item>ink</item><qty>2</qty></order></Request>")
    );
    let p = to_json("<p>Hi <b>you</b>!</p>").unwrap();
    assert_eq!(p, json!({"p": {"#text": "Hi !", "b": "you"}}));
}

#[test]
fn mixed_content_joins_text_pieces() {
    let got = to_json("<p>Hello <b>big</b> world\n  <i>!</i>\n</p>").unwrap();
    assert_eq!(
        got,
        json!({"p": {"#text": "Hello  world\n  ", "b": "big", "i": "!"}})
    );
    // a comment ends a run: each run is judged on its own
    let got = to_json("<a> <!--c--> x <b/>\n</a>").unwrap();
    assert_eq!(got, json!({"a": {"#text": " x ", "b": ""}}));
    let got = to_json("<a>x<!--c-->y<![CDATA[ ]]>&#32;</a>").unwrap();
    assert_eq!(got, json!({"a": "xy  "}));
    let got = to_json("<a><b/> <!--c--> </a>").unwrap();
    assert_eq!(got, json!({"a": {"b": ""}}));
}

#[test]
fn line_ends_and_attribute_values_are_normalized_as_xml_says() {
    let got = to_json("<a v=\"x\ny\" w=\"&#10;\">1\r\n2</a>").unwrap();
    assert_eq!(
        got,
        json!({"a": {"@v": "x y", "@w": "\n", "#text": "1\n2"}})
    );
}

#[test]
fn json_to_xml_writes_members_in_order_and_escapes() {
    let got = to_xml(r##"{"b": 1, "@id": "x\"<&\n", "a": [true, null, {"@k": 2.5, "#text": "t"}], "c": {"d": "<]]>\r"}}"##)
        .unwrap();
    assert_eq!(
        got,
        format!(
            "{DECL}<root id=\"x&quot;&lt;&amp;&#10;\"><b>1</b><a>true</a><a/><a k=\"2.5\">t</a><c><d>&lt;]]&gt;&#13;</d></c></root>"
        )
    );
    assert_eq!(
        to_xml("[1, \"two\"]").unwrap(),
        format!("{DECL}<root><item>1</item><item>two</item></root>")
    );
    assert_eq!(to_xml("\"s\"").unwrap(), format!("{DECL}<root>s</root>"));
    assert_eq!(to_xml("{}").unwrap(), format!("{DECL}<root/>"));
    assert_eq!(
        to_xml(r#"{"soap:Envelope": {"@xmlns:soap": "http://schemas.xmlsoap.org/soap/envelope/", "soap:Body": ""}}"#).unwrap(),
        format!("{DECL}<root><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body></soap:Body></soap:Envelope></root>")
    );
}

#[test]
fn json_without_an_xml_form_is_refused() {
    for (json, fault) in [
        (r#"{"a b": 1}"#, XmlFault::BadName("a b".into())),
        (r#"{"1a": 1}"#, XmlFault::BadName("1a".into())),
        (r##"{"#x": 1}"##, XmlFault::BadName("#x".into())),
        (r#"{"@": 1}"#, XmlFault::BadName("@".into())),
        (
            r#"{"a": [[1]]}"#,
            XmlFault::NoXmlForm("an array directly inside an array (in \"a\")".into()),
        ),
        (
            r#"{"@a": {}}"#,
            XmlFault::NoXmlForm("an object or array as the attribute \"@a\"".into()),
        ),
        (r#"{"a": "\u0001"}"#, XmlFault::BadChar(1)),
    ] {
        assert_eq!(to_xml(json), Err(fault), "{json}");
    }
    assert_eq!(
        to_xml("{nope").unwrap_err().to_string(),
        "body is not valid JSON: key must be a string at line 1 column 2"
    );
    let msg = XmlFault::BadName("a b".into()).to_string();
    assert_eq!(
        msg,
        "JSON member name \"a b\" is not an XML name (nor \"@\" and one, nor \"#text\")"
    );
}

#[test]
fn doctype_and_entities_are_refused() {
    let xxe =
        r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
    assert_eq!(to_json(xxe), Err(XmlFault::DocType));
    let lol = r#"<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>"#;
    assert_eq!(to_json(lol), Err(XmlFault::DocType));
    assert_eq!(
        to_json("<r>&x;</r>"),
        Err(XmlFault::UndeclaredEntity("x".into()))
    );
    assert_eq!(
        to_json("<r a=\"&x;\"/>"),
        Err(XmlFault::UndeclaredEntity("x".into()))
    );
    assert!(XmlFault::DocType.to_string().contains("DOCTYPE"));
}

#[test]
fn malformed_documents_are_refused() {
    for xml in [
        "",
        "   ",
        "<a>",
        "<a></b>",
        "</a>",
        "<a/><b/>",
        "text<a/>",
        "<a/>text",
        "<a x=\"1\" x=\"2\"/>",
        "<a>&#0;</a>",
    ] {
        assert!(
            matches!(to_json(xml), Err(XmlFault::Malformed(_))),
            "{xml:?}: {:?}",
            to_json(xml)
        );
    }
    assert!(matches!(
        xml_to_json::convert(b"<a>\xff</a>", &limits()),
        Err(XmlFault::Encoding(_))
    ));
    assert!(matches!(
        to_json("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>"),
        Err(XmlFault::Encoding(_))
    ));
    // a UTF-8 byte order mark is allowed
    assert_eq!(to_json("\u{FEFF}<a/>").unwrap(), json!({"a": ""}));
}

#[test]
fn limits_are_named() {
    let deep = |n: usize| "<a>".repeat(n) + &"</a>".repeat(n);
    assert!(to_json(&deep(64)).is_ok());
    assert_eq!(to_json(&deep(65)), Err(XmlFault::TooDeep(64)));
    assert_eq!(
        XmlFault::TooDeep(64).to_string(),
        "XML nesting deeper than 64 levels (transform.max_depth)"
    );
    let small = XmlLimits {
        max_depth: 3,
        max_elements: 4,
        max_output_bytes: 60,
    };
    let x = |s: &str| xml_to_json::convert(s.as_bytes(), &small);
    assert_eq!(x("<a><b><c><d/></c></b></a>"), Err(XmlFault::TooDeep(3)));
    assert_eq!(
        x("<a><b/><b/><b/><b/></a>"),
        Err(XmlFault::TooManyElements(4))
    );
    assert!(x("<a><b/><b/><b/></a>").is_ok());
    assert_eq!(
        x(&format!("<a>{}</a>", "y".repeat(60))),
        Err(XmlFault::TooLarge(60))
    );
    let j = |s: &str| json_to_xml::convert(s.as_bytes(), "r", &small);
    assert_eq!(j(r#"{"a":{"b":{"c":1}}}"#), Err(XmlFault::TooDeep(3)));
    assert_eq!(j(r#"{"a":[1,2,3,4]}"#), Err(XmlFault::TooManyElements(4)));
    assert_eq!(
        j(&format!("\"{}\"", "y".repeat(40))),
        Err(XmlFault::TooLarge(60))
    );
}

#[test]
fn xml_names() {
    for ok in ["a", "_a", "soap:Envelope", "a-b.c_1", "é", "x\u{B7}"] {
        assert!(json_to_xml::is_name(ok), "{ok}");
    }
    for bad in ["", "1a", "-a", "a b", "a>", "@a", "#text", ".a"] {
        assert!(!json_to_xml::is_name(bad), "{bad}");
    }
}

#[test]
fn media_types_choose_what_converts() {
    assert!(converts(Direction::JsonToXml, None));
    assert!(converts(
        Direction::JsonToXml,
        Some(b"Application/JSON; charset=utf-8")
    ));
    assert!(converts(
        Direction::JsonToXml,
        Some(b"application/problem+json")
    ));
    assert!(!converts(Direction::JsonToXml, Some(b"application/xml")));
    assert!(converts(
        Direction::XmlToJson,
        Some(b"text/xml; charset=UTF-8")
    ));
    assert!(converts(
        Direction::XmlToJson,
        Some(b"application/soap+xml")
    ));
    assert!(!converts(Direction::XmlToJson, Some(b"text/html")));
}

// --- the round trip, as a property -------------------------------------------------------

/// Text XML 1.0 can carry: any character but C0 controls other than TAB, LF, CR (and the two
/// non-characters U+FFFE, U+FFFF, which the regex class leaves out).
fn text() -> impl Strategy<Value = String> {
    "[\t\n\r -~\u{A0}-\u{D7FF}\u{E000}-\u{FFFD}\u{10000}-\u{10FFFF}]{0,12}"
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,6}",
        "[a-z]{1,3}:[a-zA-Z][a-zA-Z0-9]{0,4}",
        "[\u{C0}-\u{D6}\u{4E00}-\u{4E10}][a-z\u{B7}0-9]{0,3}",
    ]
}

/// A value of the convention's domain (see the module doc of `super`).
fn value() -> impl Strategy<Value = Value> {
    let leaf = text().prop_map(Value::String);
    leaf.prop_recursive(5, 48, 6, |inner| {
        let child = prop_oneof![
            3 => inner.clone(),
            1 => prop::collection::vec(inner.clone(), 2..4).prop_map(Value::Array),
        ];
        (
            prop::collection::btree_map(name(), text(), 0..3),
            prop::collection::btree_map(name(), child, 0..4),
            prop::option::of(text()),
        )
            .prop_filter_map("outside the domain", |(attrs, children, t)| {
                let mut m = serde_json::Map::new();
                for (k, v) in attrs {
                    m.insert(format!("@{k}"), Value::String(v));
                }
                let has_children = !children.is_empty();
                let has_attrs = !m.is_empty();
                for (k, v) in children {
                    m.insert(k, v);
                }
                if let Some(t) = t {
                    let blank = t.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
                    let fits = match has_children {
                        true => !blank,
                        false => has_attrs && !t.is_empty(),
                    };
                    if fits {
                        m.insert("#text".into(), Value::String(t));
                    }
                }
                (!m.is_empty()).then_some(Value::Object(m))
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn json_to_xml_to_json_is_the_identity_on_the_domain(v in value()) {
        let text = serde_json::to_vec(&v).unwrap();
        let xml = json_to_xml::convert(&text, "root", &limits()).unwrap();
        let back = xml_to_json::convert(&xml, &limits()).unwrap();
        let back: Value = serde_json::from_slice(&back).unwrap();
        prop_assert_eq!(back, json!({"root": v}));
    }
}
