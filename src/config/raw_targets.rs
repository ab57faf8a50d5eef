//! The TOML schema of one upstream target: `"host:port"` or `{ address = "host:port", weight = N }`.
//!
//! Owns: [`RawTarget`], its two written forms (mixed freely in one `targets` list), the weight's
//! default and range, and writing a target back out for the effective config. Part of
//! [`super::raw`] (which re-exports it), kept apart so the schema file stays small. Leaves out:
//! what the address means (see [`super::upstreams`]) and how weights are balanced over (see
//! [`crate::client::pool`]).
//!
//! The table form is read through a derived struct with `deny_unknown_fields`, so a misspelt key
//! (`wieght`) is an error naming it and its line, and a missing `address` names the element
//! (`upstream[0].targets[1]`), as everywhere else in the file (see [`super::recover`]). The range
//! of `weight` is checked when compiling ([`super::upstreams`]), with the other ranges.

use std::fmt;
use std::ops::RangeInclusive;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::Spanned;

/// Weight of a target written as a plain `"host:port"` string, or as a table without `weight`.
pub const DEFAULT_WEIGHT: u32 = 1;

/// Accepted `weight` of a target. Zero is refused: a target that should get no requests is left
/// out of `targets` (a reload applies that without dropping the other targets' pools). The upper
/// bound keeps ratios readable (1000:1 is already far beyond a useful split) and every sum of
/// weights far from overflow in the balancers' integer arithmetic.
pub const WEIGHT: RangeInclusive<u32> = 1..=1_000;

/// One entry of `upstream.targets`.
#[derive(Debug, Clone)]
pub struct RawTarget {
    /// `host:port` as written.
    pub address: Spanned<String>,
    /// Share of the upstream's requests relative to its other targets ([`DEFAULT_WEIGHT`] for
    /// the string form).
    pub weight: Spanned<u32>,
    /// Written as a table: errors about the address then name `.address` and point at it; for
    /// the string form they name the element itself.
    pub table: bool,
}

/// `{ address = "host:port", weight = N }`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetTable {
    address: Spanned<String>,
    #[serde(default = "d_weight")]
    weight: Spanned<u32>,
}

fn d_weight() -> Spanned<u32> {
    Spanned::new(0..0, DEFAULT_WEIGHT)
}

impl<'de> Deserialize<'de> for RawTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TargetVisitor)
    }
}

struct TargetVisitor;

impl<'de> Visitor<'de> for TargetVisitor {
    type Value = RawTarget;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"host:port\" or a table { address = \"host:port\", weight = N }")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<RawTarget, E> {
        Ok(RawTarget {
            // the element's span is the string's: compile reports on the element
            address: Spanned::new(0..0, s.to_string()),
            weight: d_weight(),
            table: false,
        })
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<RawTarget, M::Error> {
        let t = TargetTable::deserialize(MapAccessDeserializer::new(map))?;
        Ok(RawTarget {
            address: t.address,
            weight: t.weight,
            table: true,
        })
    }
}

/// The effective config's form: the plain string when the weight is the default (what the
/// string form means), else the table. One form per meaning, so rewriting `"a:80"` as
/// `{ address = "a:80", weight = 1 }` is no change to a reload.
impl Serialize for RawTarget {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let weight = *self.weight.get_ref();
        if weight == DEFAULT_WEIGHT {
            return s.serialize_str(self.address.get_ref());
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("address", self.address.get_ref())?;
        m.serialize_entry("weight", &weight)?;
        m.end()
    }
}
