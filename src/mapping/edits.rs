//! [`RequestEdits`]: how the request the integration sends differs from the client's beyond
//! parameter mapping (which the head rewrite renders itself, see [`super::request::Mapped`]):
//! a body the request-mapping phase replaced, and client fields not forwarded because of it.
//!
//! Owns: recording those edits and answering the head rewrite's question about them
//! ([`RequestEdits::removes`]). Leaves out: replacing the body (see [`crate::transform`]) and
//! writing the head ([`crate::integration::rewrite`]).

use smallvec::SmallVec;

/// See the module doc. Empty edits are never stored.
#[derive(Debug, Default)]
pub struct RequestEdits {
    /// Client fields (lowercase names) not forwarded: `accept-encoding` when the route
    /// reshapes the response (it must reach the gateway as the origin wrote it).
    remove: SmallVec<[&'static str; 2]>,
    /// The body was replaced (transformed, templated, or decompressed): the held body is what
    /// the origin gets, framed by its length; the client's `content-length`,
    /// `transfer-encoding` and `content-encoding` are not forwarded.
    pub body_replaced: bool,
    /// The replaced body's media type (`content-type` overwritten).
    pub content_type: Option<Box<str>>,
}

impl RequestEdits {
    /// The client's `name` (lowercase) fields are not forwarded.
    pub fn remove(&mut self, name: &'static str) {
        if !self.remove.contains(&name) {
            self.remove.push(name);
        }
    }

    /// Whether a client header (`name` in any case) is not forwarded.
    pub fn removes(&self, name: &[u8]) -> bool {
        (self.body_replaced
            && (name.eq_ignore_ascii_case(b"content-encoding")
                || (self.content_type.is_some() && name.eq_ignore_ascii_case(b"content-type"))))
            || self
                .remove
                .iter()
                .any(|r| r.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether the edits change anything.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && !self.body_replaced && self.content_type.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_body_drops_the_client_framing_fields() {
        let mut e = RequestEdits::default();
        assert!(e.is_empty());
        e.body_replaced = true;
        assert!(e.removes(b"Content-Encoding"));
        assert!(!e.removes(b"content-type"));
        e.content_type = Some("application/xml".into());
        assert!(e.removes(b"content-type"));
    }

    #[test]
    fn removed_fields_match_in_any_case() {
        let mut e = RequestEdits::default();
        e.remove("accept-encoding");
        e.remove("accept-encoding");
        assert!(!e.is_empty());
        assert!(e.removes(b"Accept-Encoding"));
        assert!(!e.removes(b"accept"));
    }
}
