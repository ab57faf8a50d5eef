//! JSON → XML under the convention of [`super::xml`]: the JSON value wrapped in the route's
//! `xml_root` element, members in the order the client wrote them (SOAP's `xs:sequence`
//! cares), `"@name"` members as attributes, `"#text"` as text, arrays as repeated elements.
//!
//! Owns: reading JSON into a [`Doc`] that keeps member order (serde_json's map would sort
//! them), writing it as UTF-8 XML with its declaration, escaping text and attribute values
//! (XML 1.0 §2.4, §3.3.3: characters that attribute normalization or end-of-line handling
//! would change are written as references, so they come back as they were), checking names
//! ([`is_name`], XML 1.0 §2.3) and characters (§2.2), and the depth, element and output
//! bounds. Leaves out: which bodies are converted and their media types (see [`super::xml`]).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::xml::{XmlFault, XmlLimits, ARRAY_ITEM};

/// The XML declaration every written document starts with.
const DECLARATION: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// A JSON document with its members in the order written.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Doc>),
    Object(Vec<(String, Doc)>),
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Doc, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Doc, E> {
        Ok(Doc::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Doc, E> {
        Ok(Doc::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Doc, E> {
        Ok(Doc::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Doc, E> {
        serde_json::Number::from_f64(v)
            .map(Doc::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Doc, E> {
        Ok(Doc::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Doc, E> {
        Ok(Doc::String(v))
    }
    fn visit_unit<E>(self) -> Result<Doc, E> {
        Ok(Doc::Null)
    }
    fn visit_none<E>(self) -> Result<Doc, E> {
        Ok(Doc::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Doc>()? {
            items.push(item);
        }
        Ok(Doc::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Doc>()? {
            members.push((k, v));
        }
        Ok(Doc::Object(members))
    }
}

/// Whether `c` may start an XML name (XML 1.0 5th ed. §2.3, NameStartChar).
fn is_name_start(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// Whether `c` may follow in an XML name (§2.3, NameChar).
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Whether `s` is an XML name (XML 1.0 §2.3: `Name`; prefixes such as `soap:` included).
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Whether XML 1.0 can carry `c` at all (§2.2, `Char`).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Converts a JSON body to an XML document rooted at `root`.
pub fn convert(body: &[u8], root: &str, limits: &XmlLimits) -> Result<Vec<u8>, XmlFault> {
    let doc: Doc = serde_json::from_slice(body).map_err(|e| XmlFault::NotJson(e.to_string()))?;
    write_document(&doc, root, limits)
}

/// Writes `doc` as an XML document rooted at `root` (a valid name: checked at load).
pub fn write_document(doc: &Doc, root: &str, limits: &XmlLimits) -> Result<Vec<u8>, XmlFault> {
    let mut w = Writer {
        out: Vec::with_capacity(DECLARATION.len() + 64),
        limits,
        elements: 0,
    };
    w.out.extend_from_slice(DECLARATION);
    match doc {
        Doc::Array(items) => {
            w.count(1)?;
            w.open(root, &[])?;
            w.out.push(b'>');
            w.items(ARRAY_ITEM, items, 2)?;
            w.close(root);
        }
        other => w.element(root, other, 1)?,
    }
    w.check_size()?;
    Ok(w.out)
}

struct Writer<'l> {
    out: Vec<u8>,
    limits: &'l XmlLimits,
    elements: usize,
}

impl Writer<'_> {
    /// Counts one more element at `depth`, within the limits.
    fn count(&mut self, depth: usize) -> Result<(), XmlFault> {
        if depth > self.limits.max_depth {
            return Err(XmlFault::TooDeep(self.limits.max_depth));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(XmlFault::TooManyElements(self.limits.max_elements));
        }
        self.check_size()
    }

    fn check_size(&self) -> Result<(), XmlFault> {
        match self.out.len() > self.limits.max_output_bytes {
            true => Err(XmlFault::TooLarge(self.limits.max_output_bytes)),
            false => Ok(()),
        }
    }

    /// `<name attr="v"...` (the tag left open).
    fn open(&mut self, name: &str, attrs: &[(&str, &Doc)]) -> Result<(), XmlFault> {
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        for (attr, value) in attrs {
            self.out.push(b' ');
            self.out.extend_from_slice(attr.as_bytes());
            self.out.extend_from_slice(b"=\"");
            match value {
                Doc::Null => {}
                Doc::Bool(b) => self.out.extend_from_slice(bool_text(*b)),
                Doc::Number(n) => self.out.extend_from_slice(n.to_string().as_bytes()),
                Doc::String(s) => escape(s, true, &mut self.out)?,
                Doc::Array(_) | Doc::Object(_) => {
                    return Err(XmlFault::NoXmlForm(format!(
                        "an object or array as the attribute \"@{attr}\""
                    )))
                }
            }
            self.out.push(b'"');
        }
        Ok(())
    }

    fn close(&mut self, name: &str) {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(b'>');
    }

    /// Text content: a scalar's.
    fn text(&mut self, value: &Doc, what: &str) -> Result<(), XmlFault> {
        match value {
            Doc::Null => Ok(()),
            Doc::Bool(b) => {
                self.out.extend_from_slice(bool_text(*b));
                Ok(())
            }
            Doc::Number(n) => {
                self.out.extend_from_slice(n.to_string().as_bytes());
                Ok(())
            }
            Doc::String(s) => escape(s, false, &mut self.out),
            Doc::Array(_) | Doc::Object(_) => {
                Err(XmlFault::NoXmlForm(format!("an object or array as {what}")))
            }
        }
    }

    /// One element named `name` holding `value`, at `depth` (the root is 1).
    fn element(&mut self, name: &str, value: &Doc, depth: usize) -> Result<(), XmlFault> {
        self.count(depth)?;
        let members = match value {
            Doc::Object(m) => m,
            Doc::Array(_) => {
                return Err(XmlFault::NoXmlForm(format!(
                    "an array directly inside an array (in \"{name}\")"
                )))
            }
            Doc::Null => {
                self.open(name, &[])?;
                self.out.extend_from_slice(b"/>");
                return Ok(());
            }
            scalar => {
                self.open(name, &[])?;
                self.out.push(b'>');
                self.text(scalar, "text")?;
                self.close(name);
                return Ok(());
            }
        };
        let mut attrs: Vec<(&str, &Doc)> = Vec::new();
        let mut text: Option<&Doc> = None;
        let mut children = 0usize;
        for (key, v) in members {
            if let Some(attr) = key.strip_prefix('@') {
                if !is_name(attr) {
                    return Err(XmlFault::BadName(key.clone()));
                }
                attrs.push((attr, v));
            } else if key == "#text" {
                text = Some(v);
            } else if is_name(key) {
                children += 1;
            } else {
                return Err(XmlFault::BadName(key.clone()));
            }
        }
        self.open(name, &attrs)?;
        let empty_text = text.is_none_or(|t| matches!(t, Doc::Null));
        if children == 0 && empty_text {
            self.out.extend_from_slice(b"/>");
            return Ok(());
        }
        self.out.push(b'>');
        if let Some(t) = text {
            self.text(t, "\"#text\"")?;
        }
        for (key, v) in members {
            if key.starts_with('@') || key == "#text" {
                continue;
            }
            match v {
                Doc::Array(items) => self.items(key, items, depth + 1)?,
                other => self.element(key, other, depth + 1)?,
            }
        }
        self.close(name);
        Ok(())
    }

    /// An array's items as repeated elements named `name`.
    fn items(&mut self, name: &str, items: &[Doc], depth: usize) -> Result<(), XmlFault> {
        for item in items {
            self.element(name, item, depth)?;
        }
        Ok(())
    }
}

fn bool_text(b: bool) -> &'static [u8] {
    match b {
        true => b"true",
        false => b"false",
    }
}

/// Writes `s` escaped as text (`attr`: as a double-quoted attribute value). `&` and `<`
/// always (XML 1.0 §2.4), `>` (so `]]>` cannot appear), `"` in attributes; CR everywhere and
/// TAB/LF in attributes as character references, which end-of-line handling (§2.11) and
/// attribute-value normalization (§3.3.3) leave as they are.
fn escape(s: &str, attr: bool, out: &mut Vec<u8>) -> Result<(), XmlFault> {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep: &[u8] = match c {
            '&' => b"&amp;",
            '<' => b"&lt;",
            '>' => b"&gt;",
            '"' if attr => b"&quot;",
            '\r' => b"&#13;",
            '\n' if attr => b"&#10;",
            '\t' if attr => b"&#9;",
            c if !is_xml_char(c) => return Err(XmlFault::BadChar(u32::from(c))),
            _ => continue,
        };
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        out.extend_from_slice(rep);
        start = i + c.len_utf8();
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    Ok(())
}
