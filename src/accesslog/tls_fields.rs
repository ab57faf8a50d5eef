//! The access log's TLS variables: the connection's protocol version and SNI name, and the
//! verified client certificate of a mutual-TLS connection, under API Gateway's names
//! (`$context.identity.clientCert.*`).
//!
//! Owns: [`TlsField`], its names, and the text each one logs from the connection's
//! [`TlsFacts`] (captured once at accept). Leaves out: the line formats and escaping (the
//! parent module, which writes these values like any other text field).

use crate::facts::TlsFacts;

/// A TLS `$context` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsField {
    /// `tlsVersion`: "TLSv1.2" or "TLSv1.3"; empty on plain connections.
    Version,
    /// `sni`: the server name the client asked for (RFC 6066 §3); empty on plain connections
    /// and when the client sent none.
    Sni,
    /// `identity.clientCert.subjectDN` (RFC 4514 string form).
    SubjectDn,
    /// `identity.clientCert.issuerDN`.
    IssuerDn,
    /// `identity.clientCert.serialNumber` (decimal).
    SerialNumber,
    /// `identity.clientCert.validity.notBefore` (`Aug 29 00:28:21 2020 GMT`).
    NotBefore,
    /// `identity.clientCert.validity.notAfter`.
    NotAfter,
}

/// The variables by name, in the order the JSON line writes them.
pub const TLS_FIELDS: [(&str, TlsField); 7] = [
    ("tlsVersion", TlsField::Version),
    ("sni", TlsField::Sni),
    ("identity.clientCert.subjectDN", TlsField::SubjectDn),
    ("identity.clientCert.issuerDN", TlsField::IssuerDn),
    ("identity.clientCert.serialNumber", TlsField::SerialNumber),
    (
        "identity.clientCert.validity.notBefore",
        TlsField::NotBefore,
    ),
    ("identity.clientCert.validity.notAfter", TlsField::NotAfter),
];

/// The text of `f` for a connection with `tls` (`None`: plain). The client certificate's
/// fields are `-` when there is none (a plain connection, or TLS without mutual
/// authentication), as API Gateway logs an absent value.
pub fn text(f: TlsField, tls: Option<&TlsFacts>) -> &[u8] {
    let cert = tls.and_then(|t| t.client_cert.as_ref());
    let cert_text = |pick: fn(&crate::tls::ClientCert) -> &String| -> &[u8] {
        cert.map_or(b"-", |c| pick(c).as_bytes())
    };
    match f {
        TlsField::Version => tls.map_or(b"", |t| t.version.as_bytes()),
        TlsField::Sni => tls
            .and_then(|t| t.sni.as_deref())
            .map_or(b"", str::as_bytes),
        TlsField::SubjectDn => cert_text(|c| &c.subject_dn),
        TlsField::IssuerDn => cert_text(|c| &c.issuer_dn),
        TlsField::SerialNumber => cert_text(|c| &c.serial_number),
        TlsField::NotBefore => cert_text(|c| &c.not_before),
        TlsField::NotAfter => cert_text(|c| &c.not_after),
    }
}
