//! Required request parameters: the headers and query string parameters a route's validator
//! requires, checked on the request head before any of the body is read.
//!
//! Owns: [`Required`] (the names, as configured and as looked up), what counts as present
//! (API Gateway: "included and not blank": a field or parameter with an empty value is
//! missing) and AWS's message, `Missing required request parameters: [x-tenant, v]` (every
//! missing one, headers first, then query string parameters, each list in config order).
//! Leaves out: the body (see [`super::body`]) and the answer's shape (the lifecycle's error
//! mapping, [`crate::error::GatewayError::MissingParameters`]).

use crate::http::RequestHead;

/// A route's required parameters.
#[derive(Debug, Default)]
pub struct Required {
    /// Header names: (as configured, for the message; lowercase, for the lookup).
    pub headers: Vec<(String, String)>,
    /// Query string parameter names (compared with each parameter's percent-decoded name).
    pub querystrings: Vec<String>,
}

impl Required {
    /// Whether nothing is required.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.querystrings.is_empty()
    }

    /// `None` when every required parameter is present, else AWS's message naming all the
    /// missing ones.
    pub fn missing(&self, head: &RequestHead) -> Option<String> {
        let query = head.query_bytes();
        let headers = self
            .headers
            .iter()
            .filter(|(_, lower)| head.header(lower).is_none_or(<[u8]>::is_empty))
            .map(|(name, _)| name.as_str());
        let queries = self
            .querystrings
            .iter()
            .filter(|name| !query_present(query, name))
            .map(String::as_str);
        let missing: Vec<&str> = headers.chain(queries).collect();
        (!missing.is_empty()).then(|| message(&missing))
    }
}

/// AWS's words for the missing parameters `names`.
pub fn message(names: &[&str]) -> String {
    format!(
        "Missing required request parameters: [{}]",
        names.join(", ")
    )
}

/// Whether `query` (`a=1&b=2`, as sent) has parameter `name` with a non-empty value: names
/// and values compared percent-decoded, `+` as a space (the form encoding query strings use,
/// WHATWG URL §5.1).
pub fn query_present(query: Option<&[u8]>, name: &str) -> bool {
    let Some(query) = query else {
        return false;
    };
    query.split(|&b| b == b'&').any(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let key = kv.next().unwrap_or_default();
        let value = kv.next().unwrap_or_default();
        !value.is_empty() && decoded_eq(key, name.as_bytes())
    })
}

/// Whether `raw`, percent-decoded (`+` as a space), is `want`, without allocating.
fn decoded_eq(raw: &[u8], want: &[u8]) -> bool {
    let hex = |b: Option<&u8>| b.and_then(|h| char::from(*h).to_digit(16));
    let (mut i, mut j) = (0, 0);
    while let Some(&c) = raw.get(i) {
        let (byte, step) = match (c, hex(raw.get(i + 1)), hex(raw.get(i + 2))) {
            (b'%', Some(h), Some(l)) => (u8::try_from(h * 16 + l).unwrap_or(0), 3),
            (b'+', _, _) => (b' ', 1),
            _ => (c, 1),
        };
        if want.get(j) != Some(&byte) {
            return false;
        }
        i += step;
        j += 1;
    }
    j == want.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_compared_decoded_and_must_not_be_blank() {
        assert!(query_present(Some(b"v=1"), "v"));
        assert!(query_present(Some(b"a=2&v=1"), "v"));
        assert!(query_present(Some(b"%76=1"), "v"));
        assert!(query_present(Some(b"page+size=1"), "page size"));
        assert!(!query_present(Some(b"v="), "v"));
        assert!(!query_present(Some(b"v"), "v"));
        assert!(!query_present(Some(b"vv=1"), "v"));
        assert!(!query_present(Some(b"x=v"), "v"));
        assert!(!query_present(None, "v"));
    }

    #[test]
    fn message_lists_every_name_as_aws_words_it() {
        assert_eq!(
            message(&["x-tenant", "v"]),
            "Missing required request parameters: [x-tenant, v]"
        );
    }
}
