//! Mapping templates: the part of API Gateway's VTL that reshapes JSON without control flow
//! (see README "Mapping templates"): `$input.json('$.path')`, `$input.path('$.path')`,
//! `$input.params('name')`, `$input.body`, `$context.NAME`, `$stageVariables.NAME`,
//! `$util.escapeJavaScript()`, `$util.base64Encode()` / `$util.base64Decode()`,
//! `$util.urlEncode()`. Directives (`#if`, `#foreach`, `#set`...) are refused at load: full VTL
//! is out of scope.
//!
//! Owns: compiling templates ([`TemplateSet`], by content type) and rendering them. Leaves out:
//! the `$context` and `$request` vocabulary (see [`crate::mapping::value`]) and when bodies
//! are held and sent (see [`super::hold`], [`super::response`]).

use bytes::Bytes;

use crate::mapping::value::Vars;

/// A route's templates for one direction: one for any content type, or one per content type.
#[derive(Debug, Default)]
pub struct TemplateSet {}

/// The request body as the integration gets it (`None`: unchanged).
pub fn request(
    _t: &TemplateSet,
    _vars: &Vars<'_>,
    _body: &[u8],
) -> Result<Option<super::request::NewBody>, super::Refusal> {
    Ok(None)
}

/// The response body as the client gets it, with its media type.
pub fn response(
    _t: &TemplateSet,
    _vars: &Vars<'_>,
    _status: u16,
    _content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<(Bytes, Option<Box<str>>), super::Refusal> {
    Ok((Bytes::copy_from_slice(body), None))
}
