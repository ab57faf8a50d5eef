//! Parameter mapping (API Gateway HTTP API): what the request looks like to the integration,
//! and what a response looks like to the client.
//!
//! Owns: the compiled mappings of a route ([`RouteMapping`]: request operations and response
//! operations by status), applying the request's in the request-mapping phase (the result is
//! [`RequestEdits`], which the HTTP integration's head rewrite honours) and the response's in
//! the response filter (header edits the serialisers apply in their one pass, and the status
//! overwrite); the value vocabulary ([`value`]) and the JSONPath subset ([`jsonpath`]) that
//! mocks, templates and gateway responses share. Leaves out: compiling the TOML (see
//! [`crate::config::mapping`]) and writing heads (the integration's rewrite, the sessions'
//! serialisers).

pub mod jsonpath;
pub mod request;
pub mod response;
pub mod value;

/// A route's compiled `request_parameters` and `response_parameters`.
#[derive(Debug, Default)]
pub struct RouteMapping {}

impl RouteMapping {
    /// Whether some request value reads `$request.body` (the route then holds its body).
    pub fn reads_body(&self) -> bool {
        false
    }

    /// Whether the route has request operations.
    pub fn has_request(&self) -> bool {
        false
    }

    /// Whether the route has response operations.
    pub fn has_response(&self) -> bool {
        false
    }
}

/// How the request the integration sends differs from the client's: the request-mapping
/// phase's result (parameter mapping, a transformed body), kept in
/// [`crate::exchange::ExchangeState::edits`] and honoured by the HTTP integration's head
/// rewrite ([`crate::integration::rewrite`]). Empty edits are never stored.
#[derive(Debug, Default)]
pub struct RequestEdits {
    /// `overwrite:path`: the new path (origin-form, without the query).
    pub path: Option<Vec<u8>>,
    /// The whole query, rebuilt when a `querystring.*` operation changed it (without `?`;
    /// empty: no query at all).
    pub query: Option<Vec<u8>>,
    /// Header names (lowercase) the client sent that the origin does not get (removed or
    /// overwritten).
    pub remove: Vec<Box<str>>,
    /// Header lines added (appended, or the overwriting value), in order.
    pub add: Vec<(Box<str>, Vec<u8>)>,
    /// The body was replaced (transformed, templated, or decompressed): the held body is what
    /// the origin gets, framed by its length; the client's `content-length`,
    /// `transfer-encoding` and `content-encoding` are not forwarded.
    pub body_replaced: bool,
    /// The replaced body's media type (`content-type` overwritten).
    pub content_type: Option<Box<str>>,
}

impl RequestEdits {
    /// Whether a client header (`name` lowercase) is not forwarded.
    pub fn removes(&self, name: &[u8]) -> bool {
        (self.body_replaced
            && (name.eq_ignore_ascii_case(b"content-encoding")
                || (self.content_type.is_some() && name.eq_ignore_ascii_case(b"content-type"))))
            || self
                .remove
                .iter()
                .any(|r| r.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// The header edits of one response (its route's `response_parameters` for its status), which
/// the serialisers apply in their one pass over the fields: the producer's fields named in
/// `remove` are left out, then `add`'s are written after them.
#[derive(Debug, Default)]
pub struct ResponseEdits<'a> {
    /// Names (lowercase) of the producer's fields not sent (removed or overwritten).
    pub remove: Vec<&'a str>,
    /// Fields added (appended, or the overwriting value), in order.
    pub add: Vec<(&'a str, std::borrow::Cow<'a, [u8]>)>,
}

impl ResponseEdits<'_> {
    /// Whether the producer's field `name` is left out.
    pub fn removes(&self, name: &[u8]) -> bool {
        self.remove
            .iter()
            .any(|r| r.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Each added field, in order.
    pub fn each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        for (n, v) in &self.add {
            f(n.as_bytes(), v);
        }
    }
}
