//! Body transformations and the phases that hold bodies: what the integration gets as the
//! request body, and what the client gets as a response body, when a route reshapes them.
//!
//! Owns: the body phase ([`hold`]: a route that needs its request body whole reads it, up to
//! its `max_body_bytes`, decoding a compressed one), the request-mapping phase ([`request`]:
//! the body transformation or template, then parameter mapping, into
//! [`crate::mapping::RequestEdits`]), and the response body's ([`response`]: a relayed or held
//! response read whole and reshaped). The conversions themselves: XML ⇄ JSON ([`xml`], [`json_to_xml`], [`xml_to_json`]) and
//! mapping templates ([`template`]). Leaves out: compiling (see `crate::config::transform` and
//! `crate::config::templates`), where bodies come from and go (the sessions, the
//! integrations), and parameter mapping's operations (see [`crate::mapping`]).
//!
//! Routes without a body transformation, template, model or body mapping never come here:
//! their bodies stream.

pub mod hold;
pub mod json_to_xml;
pub mod request;
pub mod response;
pub mod template;
pub mod xml;
pub mod xml_to_json;

use crate::error::GatewayError;
use crate::exchange::ExchangeState;

/// Why a body could not be transformed, decoded or templated: the failure (its status) and
/// the words the client gets, naming the fault or the limit (`"XML nesting deeper than 64
/// levels (transform.max_depth)"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub error: GatewayError,
    pub message: String,
}

impl Refusal {
    /// A request body refused: 400.
    pub fn request(message: impl Into<String>) -> Refusal {
        Refusal {
            error: GatewayError::BadRequestBody,
            message: message.into(),
        }
    }

    /// A response body that could not be reshaped: 502.
    pub fn response(message: impl Into<String>) -> Refusal {
        Refusal {
            error: GatewayError::TransformFailed,
            message: message.into(),
        }
    }

    /// The failure, its words kept in the exchange (the response's message and the access
    /// log's `errorMessage`).
    pub fn into_error(self, st: &mut ExchangeState) -> GatewayError {
        st.detail = Some(self.message.into_boxed_str());
        self.error
    }
}
