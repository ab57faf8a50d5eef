//! Lambda function ARNs and Invoke API endpoints, as `[[function]]` writes them.
//!
//! Owns: parsing an ARN strictly ([`parse_arn`]: partition, region, 12-digit account, function
//! name and qualifier, the partition matching the region), an `endpoint` URL ([`parse_endpoint`]:
//! scheme, host and port only), AWS's default endpoint for a region ([`Endpoint::aws`]) and the
//! Invoke API path segment of an ARN ([`function_path`]). Pure functions over strings, no I/O.
//! Leaves out: what a function is and the errors naming keys and lines (see
//! [`super::functions`], which re-exports these).

use super::functions::valid_name;

/// Longest alias in an ARN's qualifier (Lambda's rule).
pub const MAX_ALIAS: usize = 128;

/// The parts of a Lambda function ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: &'a str,
    pub region: &'a str,
    /// 12 digits.
    pub account: &'a str,
    pub name: &'a str,
    /// A version (`$LATEST`, `7`) or an alias.
    pub qualifier: Option<&'a str>,
}

const ARN_FORM: &str = "arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]";

/// Parses `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` strictly.
pub fn parse_arn(s: &str) -> Result<Arn<'_>, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = |why: &str| format!("{s:?} is not a Lambda function ARN ({ARN_FORM}): {why}");
    let [arn, partition, service, region, account, resource, name, rest @ ..] = parts.as_slice()
    else {
        return Err(bad("too few parts"));
    };
    if *arn != "arn" {
        return Err(bad("it must start with \"arn:\""));
    }
    if !matches!(*partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Err(bad("the partition must be aws, aws-cn or aws-us-gov"));
    }
    if *service != "lambda" {
        return Err(bad("the service must be lambda"));
    }
    if !valid_region(region) {
        return Err(bad("the region must look like eu-west-1"));
    }
    let region_partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    if region_partition != *partition {
        return Err(bad(&format!(
            "region {region} is in partition {region_partition}, not {partition}"
        )));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the account must be 12 digits"));
    }
    if *resource != "function" {
        return Err(bad("the resource type must be function"));
    }
    if !valid_name(name) {
        return Err(bad("the function name must be 1 to 64 of A-Z a-z 0-9 - _"));
    }
    let qualifier = match rest {
        [] => None,
        [q] if valid_qualifier(q) => Some(*q),
        [_] => {
            return Err(bad(
                "the qualifier must be $LATEST, a version number or an alias",
            ))
        }
        _ => return Err(bad("too many parts")),
    };
    Ok(Arn {
        partition,
        region,
        account,
        name,
        qualifier,
    })
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`: two letters, words, a number.
fn valid_region(r: &str) -> bool {
    let segs: Vec<&str> = r.split('-').collect();
    let letters = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
    match segs.as_slice() {
        [first, middle @ .., last] if !middle.is_empty() => {
            first.len() == 2
                && letters(first)
                && middle.iter().all(|m| letters(m))
                && !last.is_empty()
                && last.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// `$LATEST`, a version number, or an alias (`[A-Za-z0-9_-]{1,128}`).
fn valid_qualifier(q: &str) -> bool {
    q == "$LATEST"
        || ((1..=MAX_ALIAS).contains(&q.len())
            && q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// A remote function's Invoke API endpoint (`endpoint`, or AWS's for the ARN's region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https`: TLS with the system's trust roots, SNI = the host.
    pub tls: bool,
    /// As in an authority: a DNS name (lower case), an IPv4 address or `[IPv6]`.
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    fn default_port(&self) -> u16 {
        if self.tls {
            443
        } else {
            80
        }
    }

    /// `host:port`, the hidden upstream's target.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The `host` field sent and signed: the authority, without the scheme's default port
    /// (RFC 9110 §4.2.3: the normal form omits it).
    pub fn authority(&self) -> String {
        if self.port == self.default_port() {
            self.host.clone()
        } else {
            self.target()
        }
    }

    /// AWS Lambda's endpoint for `arn`'s region.
    pub fn aws(arn: &Arn<'_>) -> Endpoint {
        let domain = if arn.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Endpoint {
            tls: true,
            host: format!("lambda.{}.{domain}", arn.region),
            port: 443,
        }
    }
}

/// Parses `http://HOST[:PORT]` or `https://HOST[:PORT]` (a trailing `/` allowed; no path,
/// query, fragment or user information: the Invoke API path is fixed).
pub fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    // the scheme is case-insensitive (RFC 3986 §3.1)
    let lower = s.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
    let (tls, rest) = if lower.starts_with("https://") {
        (true, s.get(8..).unwrap_or_default())
    } else if lower.starts_with("http://") {
        (false, s.get(7..).unwrap_or_default())
    } else {
        return Err(format!(
            "{s:?} must be an http:// or https:// URL, e.g. \"http://127.0.0.1:9001\""
        ));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(format!(
            "{s:?} must not have a path, query or fragment: the Invoke API path is fixed"
        ));
    }
    if authority.contains('@') {
        return Err(format!("{s:?} must not carry user information"));
    }
    let default = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((ip, after)) = v6.split_once(']') else {
            return Err(format!("{s:?}: an IPv6 address needs its closing \"]\""));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{s:?}: {ip:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{s:?}: bad port"))?,
            ),
        };
        (format!("[{ip}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    let port = match port {
        None => default,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("{s:?}: port {p:?} is not a number in 1..=65535")),
        },
    };
    let name_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':'));
    if !name_ok {
        return Err(format!("{s:?}: {host:?} is not a host name or IP address"));
    }
    Ok(Endpoint { tls, host, port })
}

/// The path segment of the Invoke API for `arn`: the ARN percent-encoded (RFC 3986 §2.1:
/// everything but the unreserved characters), as the AWS SDKs send it.
pub fn function_path(arn: &str) -> String {
    let mut out = String::with_capacity(arn.len() + 16);
    for b in arn.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
