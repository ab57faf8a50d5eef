//! IAM policy documents a request authorizer answers with: `Allow` / `Deny` statements on
//! `execute-api:Invoke` resources (ARNs with `*` and `?` wildcards), evaluated against the
//! route's ARN as IAM does (an explicit Deny wins, else an Allow is needed): sans-IO.
