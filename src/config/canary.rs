//! A stage's canary (`canary = { percent, api, variables, sticky, header }`), compiled.
//!
//! Owns: checking the canary's own values (the share, how clients stick, the response field
//! naming the side) into a [`Canary`]. Leaves out: the canary's routes (deployed by
//! [`super::apis`] like the stage's) and the per-request choice of side
//! ([`crate::proxy::stage`]).

use toml::Spanned;

use super::apis::{Canary, Sticky, CANARY_SCALE, DEFAULT_CANARY_HEADER};
use super::compile::Ctx;
use super::raw_apis::RawCanary;

/// Compiles a stage's canary served by `deployment`; `None` (with errors) when invalid.
pub(super) fn compile(
    c: &Spanned<RawCanary>,
    deployment: u32,
    key: &str,
    cx: &mut Ctx<'_>,
) -> Option<Canary> {
    let raw = c.get_ref();
    let percent = *raw.percent.get_ref();
    let mut ok = true;
    if !(0.0..=100.0).contains(&percent) {
        let m = format!("must be in 0.0..=100.0 (got {percent})");
        cx.err(&raw.percent, format!("{key}.percent"), m);
        ok = false;
    }
    let sticky = match &raw.sticky {
        None => None,
        Some(s) => match sticky(s.get_ref()) {
            Ok(v) => Some(v),
            Err(m) => {
                cx.err(s, format!("{key}.sticky"), m);
                ok = false;
                None
            }
        },
    };
    let header = match &raw.header {
        None => Some(DEFAULT_CANARY_HEADER.into()),
        Some(h) if h.get_ref().is_empty() => None,
        Some(h) => {
            let name = h.get_ref();
            if !name.bytes().all(super::compile::is_tchar) {
                let m = format!("{name:?} is not a field name (\"\" sends none)");
                cx.err(h, format!("{key}.header"), m);
                ok = false;
            }
            Some(name.to_ascii_lowercase().into())
        }
    };
    ok.then(|| Canary {
        deployment,
        share: (percent * f64::from(CANARY_SCALE) / 100.0).round() as u32,
        sticky,
        header,
    })
}

/// `"cookie:NAME"` or `"header:NAME"`.
fn sticky(s: &str) -> Result<Sticky, String> {
    let bad = || format!("{s:?}: write \"cookie:NAME\" or \"header:NAME\"");
    let (kind, name) = s.split_once(':').ok_or_else(bad)?;
    if name.is_empty() || !name.bytes().all(super::compile::is_tchar) {
        return Err(bad());
    }
    match kind {
        "cookie" => Ok(Sticky::Cookie(name.into())),
        "header" => Ok(Sticky::Header(name.to_ascii_lowercase().into())),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_forms() {
        assert_eq!(
            sticky("cookie:tg-canary"),
            Ok(Sticky::Cookie("tg-canary".into()))
        );
        assert_eq!(sticky("header:X-User"), Ok(Sticky::Header("x-user".into())));
        for bad in ["cookie:", "ip", "query:x", "header:a b"] {
            assert!(sticky(bad).is_err(), "{bad}");
        }
    }
}
