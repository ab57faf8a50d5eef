//! Semantic errors of a file from which whole `[[table]]` elements were set aside.
//!
//! Owns: mapping what the semantic stage reports about the remaining elements back to the file.
//! When [`super::recover`] sets aside a whole element of an array of tables (a `[[route]]`
//! missing its `key`), the elements after it move up one index in the structs, so the semantic
//! stage calls the file's `route[3]` `route[2]`. Lines stay right (they come from spans); only
//! the indices in keys and messages need shifting back. An error naming a set-aside element
//! (`unknown upstream "u"` when the `[[upstream]]` named `u` was set aside) only repeats the
//! error already reported about that element and is dropped. Leaves out: finding and blanking
//! entries (see [`super::recover`]).

use super::ConfigError;

/// An element of an array of tables that was set aside whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The array's dotted key (`route`).
    pub array: String,
    /// The element's index in the file.
    pub index: usize,
    /// Its `name`, when it has one (what other entries refer to it by).
    pub name: Option<String>,
}

/// `e` as found on the file without the `removed` elements, in terms of the file; None when it
/// is a follow-on of setting one of them aside.
pub fn restore(mut e: ConfigError, removed: &[Removed]) -> Option<ConfigError> {
    let named = |r: &Removed| r.name.as_ref().map(|n| format!("{n:?}"));
    if removed
        .iter()
        .filter_map(named)
        .any(|n| e.message.contains(&n))
    {
        return None;
    }
    let mut arrays: Vec<&str> = removed.iter().map(|r| r.array.as_str()).collect();
    arrays.sort_unstable();
    arrays.dedup();
    for array in arrays {
        let mut gone: Vec<usize> = removed
            .iter()
            .filter(|r| r.array == array)
            .map(|r| r.index)
            .collect();
        gone.sort_unstable();
        e.key = shift(&e.key, array, &gone);
        e.message = shift(&e.message, array, &gone);
    }
    Some(e)
}

/// The index in the file of what is element `k` once the elements at `gone` (file indices,
/// ascending) are left out.
fn original(k: usize, gone: &[usize]) -> usize {
    gone.iter()
        .fold(k, |o, &g| if g <= o { o.saturating_add(1) } else { o })
}

/// Rewrites every `array[N]` in `s` (as a whole key: not preceded by part of a longer name)
/// to the file's index.
fn shift(s: &str, array: &str, gone: &[usize]) -> String {
    let pat = format!("{array}[");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(&pat) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let whole = out
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-'));
        let after = from.get(pat.len()..).unwrap_or_default();
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let number = after.get(..digits).and_then(|d| d.parse::<usize>().ok());
        match number {
            Some(n) if whole && after.get(digits..).is_some_and(|r| r.starts_with(']')) => {
                out.push_str(&format!("{pat}{}", original(n, gone)));
                rest = after.get(digits..).unwrap_or_default();
            }
            _ => {
                out.push_str(&pat);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(key: &str, message: &str) -> ConfigError {
        ConfigError {
            line: 1,
            column: 1,
            key: key.to_string(),
            message: message.to_string(),
            file: None,
        }
    }

    fn removed(array: &str, index: usize, name: Option<&str>) -> Removed {
        Removed {
            array: array.to_string(),
            index,
            name: name.map(String::from),
        }
    }

    #[test]
    fn indices_after_a_removed_element_shift_back() {
        let gone = [removed("route", 1, None), removed("route", 3, None)];
        let e = restore(
            err(
                "route[2].key",
                "conflicts; route[0] is at line 3, route[1] x",
            ),
            &gone,
        );
        let e = e.expect("kept");
        // structs 0, 1, 2 are file 0, 2, 4
        assert_eq!(e.key, "route[4].key");
        assert_eq!(e.message, "conflicts; route[0] is at line 3, route[2] x");
        // other arrays, longer names and malformed indices stay
        let e = restore(
            err("upstream[1].name", "xroute[1] a.route[1] route[x]"),
            &gone,
        );
        let e = e.expect("kept");
        assert_eq!(e.key, "upstream[1].name");
        assert_eq!(e.message, "xroute[1] a.route[1] route[x]");
        assert_eq!(original(usize::MAX, &[0]), usize::MAX);
    }

    #[test]
    fn an_error_naming_a_removed_element_is_dropped() {
        let gone = [removed("upstream", 0, Some("u"))];
        assert_eq!(
            restore(err("route[0].upstream", "unknown upstream \"u\""), &gone),
            None
        );
        assert!(restore(err("route[0].upstream", "unknown upstream \"v\""), &gone).is_some());
    }
}
