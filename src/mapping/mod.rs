//! Parameter mapping (API Gateway HTTP API): what the request looks like to the integration,
//! and what a response looks like to the client.
//!
//! Owns: the compiled mappings of a route ([`RouteMapping`]: request operations and response
//! operations by status), the request's rendered into the origin's head as the HTTP
//! integration writes it ([`request::Mapped`]) and the response's applied in the response
//! filter (header edits the serialisers apply in their one pass, and the status
//! overwrite); a mock's values rendered per request ([`mock`]); the value vocabulary
//! ([`value`]) and the JSONPath subset ([`jsonpath`]) that mocks, templates and gateway
//! responses share; the request edits a replaced body makes ([`RequestEdits`]). Leaves out: compiling the TOML (see
//! [`crate::config::mapping`]) and writing heads (the integration's rewrite, the sessions'
//! serialisers).

pub mod edits;
pub mod jsonpath;
pub mod mock;
pub mod request;
pub mod response;
pub mod value;

pub use edits::RequestEdits;

/// A route's compiled `request_parameters` and `response_parameters` (see
/// [`crate::config::mapping`] for the syntax and what is refused at load).
#[derive(Debug, Default)]
pub struct RouteMapping {
    /// Request operations, at most one per target (conflicts are refused at load).
    pub request: Vec<Operation>,
    /// What of the `$context` entry the request operations' values read (see
    /// [`crate::accesslog::Needs`]).
    pub request_needs: crate::accesslog::Needs,
    /// Response rules: exact status codes first, then ranges (`5XX`); the first that matches
    /// a status applies alone.
    pub responses: Vec<ResponseRule>,
    /// A mock integration's body and header values, when they hold variables (see
    /// [`mock::MockValues`]).
    pub mock: Option<mock::MockValues>,
}

/// What an operation does to its target (API Gateway's `append:`, `overwrite:`, `remove:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Append,
    Overwrite,
    Remove,
}

/// What an operation changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `header.NAME` (lowercase: field names are case-insensitive, RFC 9110 §5.1).
    Header(Box<str>),
    /// `querystring.NAME` (case-sensitive, as written).
    Query(Box<str>),
    /// `path` (requests; `overwrite:` only).
    Path,
}

/// One compiled operation: `OP:TARGET = VALUE`.
#[derive(Debug)]
pub struct Operation {
    pub op: Op,
    pub target: Target,
    pub value: value::Value,
    /// The value's bytes when it holds no variable (as a field value: see
    /// [`value::Value::render_field`]), so a static value is borrowed, never rendered.
    pub fixed: Option<Box<[u8]>>,
}

/// Which statuses a response rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKey {
    /// `"500"`: this code.
    Exact(u16),
    /// `"5XX"`: every code of the class (a tollgate extension: API Gateway keys by code only).
    Class(u16),
}

impl StatusKey {
    /// Whether `status` is one of this key's.
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusKey::Exact(c) => c == status,
            StatusKey::Class(c) => status / 100 == c,
        }
    }
}

/// The response operations for one status key.
#[derive(Debug)]
pub struct ResponseRule {
    pub key: StatusKey,
    /// `overwrite:statuscode`: the status the client gets.
    pub status: Option<u16>,
    /// Header operations.
    pub headers: Vec<Operation>,
}

impl RouteMapping {
    /// Whether some request value reads `$request.body` (the route then holds its body).
    pub fn reads_body(&self) -> bool {
        self.request.iter().any(|o| o.value.reads_body())
    }

    /// Whether the route has request operations.
    pub fn has_request(&self) -> bool {
        !self.request.is_empty()
    }

    /// Whether the route has response operations.
    pub fn has_response(&self) -> bool {
        !self.responses.is_empty()
    }

    /// The rule for `status`: its exact code's, else its class's.
    pub fn rule_for(&self, status: u16) -> Option<&ResponseRule> {
        self.responses.iter().find(|r| r.key.matches(status))
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
