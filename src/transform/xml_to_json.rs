//! XML → JSON under the convention of [`super::xml`]: `{"root": content}`, attributes as
//! `"@name"`, text as a string or `"#text"`, same-named children grouped into arrays.
//!
//! Owns: reading UTF-8 XML with quick-xml's pull reader (which processes no DTD: a DOCTYPE is
//! refused on sight, so no entity can be declared, external or expanding; references to
//! anything but the five predefined entities and character references are refused), building
//! each element's value as its end tag arrives (a stack of open elements, never more than
//! `max_depth` deep), and writing the JSON, members in document order (of each name's first
//! element), within `max_output_bytes`. Leaves out: which bodies are converted and their media
//! types (see [`super::xml`]).

use ahash::AHashMap;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::xml::{XmlFault, XmlLimits};

/// Children of one element past which names are found through a map, not a scan.
const SCAN_CHILDREN: usize = 8;

/// A converted value: an element's text, object, or a group of same-named elements.
#[derive(Debug)]
enum Val {
    Str(String),
    Obj(Vec<(String, Val)>),
    Arr(Vec<Val>),
}

/// An element whose end tag has not come yet.
#[derive(Default)]
struct Open {
    name: String,
    attrs: Vec<(String, String)>,
    /// Every text piece, joined.
    all: String,
    /// Once a whitespace-only run was seen (`dropped`): the runs that are not, joined (the
    /// text beside children). Until then it is `all` itself and is not kept twice.
    kept: String,
    dropped: bool,
    /// Child elements by name, in order of each name's first element.
    children: Vec<(String, Vec<Val>)>,
    index: Option<AHashMap<String, usize>>,
}

impl Open {
    fn push_child(&mut self, name: String, v: Val) {
        let found = match &self.index {
            Some(ix) => ix.get(&name).copied(),
            None => self.children.iter().rposition(|(n, _)| *n == name),
        };
        if let Some(slot) = found.and_then(|i| self.children.get_mut(i)) {
            slot.1.push(v);
            return;
        }
        if self.index.is_none() && self.children.len() >= SCAN_CHILDREN {
            let ix = self
                .children
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.clone(), i))
                .collect();
            self.index = Some(ix);
        }
        if let Some(ix) = &mut self.index {
            ix.insert(name.clone(), self.children.len());
        }
        self.children.push((name, vec![v]));
    }

    /// The element's value (see the convention in [`super::xml`]).
    fn finish(self) -> (String, Val) {
        if self.attrs.is_empty() && self.children.is_empty() {
            return (self.name, Val::Str(self.all));
        }
        let text = match self.children.is_empty() || !self.dropped {
            true => self.all,
            false => self.kept,
        };
        let mut members = Vec::with_capacity(self.attrs.len() + self.children.len() + 1);
        for (n, v) in self.attrs {
            members.push((format!("@{n}"), Val::Str(v)));
        }
        if !text.is_empty() {
            members.push(("#text".to_owned(), Val::Str(text)));
        }
        for (n, mut vals) in self.children {
            let v = match vals.len() {
                1 => vals.pop().unwrap_or(Val::Str(String::new())),
                _ => Val::Arr(vals),
            };
            members.push((n, v));
        }
        (self.name, Val::Obj(members))
    }
}

fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

fn malformed(e: impl std::fmt::Display, at: u64) -> XmlFault {
    XmlFault::Malformed(format!("{e} (at byte {at})"))
}

/// Converts an XML body to JSON text.
pub fn convert(body: &[u8], limits: &XmlLimits) -> Result<Vec<u8>, XmlFault> {
    let text = std::str::from_utf8(body).map_err(|e| {
        XmlFault::Encoding(format!(
            "XML is not UTF-8 (only UTF-8 is converted): invalid byte at {}",
            e.valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let (name, root) = read(text, limits)?;
    let mut w = JsonWriter {
        out: Vec::with_capacity(body.len() + body.len() / 4),
        max: limits.max_output_bytes,
    };
    w.out.push(b'{');
    w.string(&name)?;
    w.out.push(b':');
    w.value(&root)?;
    w.out.push(b'}');
    w.check()?;
    Ok(w.out)
}

/// Reads the document: its root element's name and value.
fn read(text: &str, limits: &XmlLimits) -> Result<(String, Val), XmlFault> {
    let mut reader = Reader::from_str(text);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.trim_text(false);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<(String, Val)> = None;
    // where the current text run (text, CDATA and references between markup) began in the
    // open element's `all`: runs are appended in place, then judged whole
    let mut run: Option<usize> = None;
    let mut elements = 0usize;
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event().map_err(|e| malformed(e, at))?;
        let is_text = matches!(
            event,
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)
        );
        if !is_text {
            if let (Some(start), Some(el)) = (run.take(), stack.last_mut()) {
                end_run(el, start);
            }
        }
        match event {
            Event::Text(t) => add_text(&mut stack, &mut run, &t.xml10_content(), at)?,
            Event::CData(c) => add_text(&mut stack, &mut run, &c.xml10_content(), at)?,
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => predefined(&r)
                        .ok_or_else(|| XmlFault::UndeclaredEntity(String::from(&*r)))?,
                    Err(e) => return Err(malformed(e, at)),
                };
                add_text(&mut stack, &mut run, c.encode_utf8(&mut [0; 4]), at)?;
            }
            Event::DocType(_) => return Err(XmlFault::DocType),
            Event::Decl(d) => {
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| malformed(e, at))?;
                    let known = ["utf-8", "utf8", "us-ascii"];
                    if !known.iter().any(|k| enc.eq_ignore_ascii_case(k)) {
                        return Err(XmlFault::Encoding(format!(
                            "XML declares the encoding {enc:?}: only UTF-8 is converted"
                        )));
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed("more than one root element", at));
            }
            Event::Start(e) => {
                elements += 1;
                stack.push(open(&e, stack.len() + 1, elements, limits, at)?);
            }
            Event::Empty(e) => {
                elements += 1;
                let el = open(&e, stack.len() + 1, elements, limits, at)?;
                close(el, &mut stack, &mut root);
            }
            Event::End(_) => match stack.pop() {
                Some(el) => close(el, &mut stack, &mut root),
                None => return Err(malformed("an end tag without its start", at)),
            },
            Event::Eof => {
                if let Some(el) = stack.last() {
                    return Err(malformed(format!("<{}> is not closed", el.name), at));
                }
                return root.ok_or_else(|| malformed("no root element", at));
            }
        }
    }
}

/// A piece of text: appended to the open element (`run`: where its run began), or refused
/// outside the root (only whitespace may stand there, XML 1.0 §2.8 `Misc`).
fn add_text(stack: &mut [Open], run: &mut Option<usize>, s: &str, at: u64) -> Result<(), XmlFault> {
    match stack.last_mut() {
        Some(el) => {
            run.get_or_insert(el.all.len());
            el.all.push_str(s);
            Ok(())
        }
        None if is_blank(s) => Ok(()),
        None => Err(malformed("text outside the root element", at)),
    }
}

/// The run that began at `start` in `el.all` ends: a whitespace-only one is left out of the
/// text beside children (`kept`, made from `all` the first time one is).
fn end_run(el: &mut Open, start: usize) {
    let Open {
        all, kept, dropped, ..
    } = el;
    let Some(piece) = all.get(start..) else {
        return;
    };
    match (is_blank(piece), *dropped) {
        (true, false) => {
            *kept = all.get(..start).unwrap_or_default().to_owned();
            *dropped = true;
        }
        (false, true) => kept.push_str(piece),
        _ => {}
    }
}

/// The five predefined entities (XML 1.0 §4.6).
fn predefined(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// A start tag at `depth`, the `n`th element: its name and attributes, within the limits.
fn open(
    e: &BytesStart<'_>,
    depth: usize,
    n: usize,
    limits: &XmlLimits,
    at: u64,
) -> Result<Open, XmlFault> {
    if depth > limits.max_depth {
        return Err(XmlFault::TooDeep(limits.max_depth));
    }
    if n > limits.max_elements {
        return Err(XmlFault::TooManyElements(limits.max_elements));
    }
    let name = e.name().0.to_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| malformed(err, at))?;
        let value =
            a.normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| match err {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, entity),
                    ) => XmlFault::UndeclaredEntity(entity),
                    other => malformed(other, at),
                })?;
        let key = a.key.0.to_owned();
        attrs.push((key, value.into_owned()));
    }
    Ok(Open {
        name,
        attrs,
        ..Open::default()
    })
}

/// An element ends: into its parent, or it is the root.
fn close(el: Open, stack: &mut [Open], root: &mut Option<(String, Val)>) {
    let (name, v) = el.finish();
    match stack.last_mut() {
        Some(parent) => parent.push_child(name, v),
        None => *root = Some((name, v)),
    }
}

struct JsonWriter {
    out: Vec<u8>,
    max: usize,
}

impl JsonWriter {
    fn check(&self) -> Result<(), XmlFault> {
        match self.out.len() > self.max {
            true => Err(XmlFault::TooLarge(self.max)),
            false => Ok(()),
        }
    }

    /// A JSON string (RFC 8259 §7), escaped by serde_json.
    fn string(&mut self, s: &str) -> Result<(), XmlFault> {
        serde_json::to_writer(&mut self.out, s).map_err(|e| XmlFault::Malformed(e.to_string()))?;
        self.check()
    }

    fn value(&mut self, v: &Val) -> Result<(), XmlFault> {
        match v {
            Val::Str(s) => self.string(s),
            Val::Arr(items) => {
                self.out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.value(item)?;
                }
                self.out.push(b']');
                Ok(())
            }
            Val::Obj(members) => {
                self.out.push(b'{');
                for (i, (k, item)) in members.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.string(k)?;
                    self.out.push(b':');
                    self.value(item)?;
                }
                self.out.push(b'}');
                Ok(())
            }
        }
    }
}
