//! Spanned tables that may also be written with dotted keys.
//!
//! Owns: deserializing a [`Spanned`] table (`mock`, `throttle`, `health`, `quota`, a plan's
//! `routes`) whichever way the file writes it. `toml` hands out a span only for tables that
//! have one in its document: an inline table (`mock = { status = 204 }`) or a header
//! (`[route.mock]`). A table made of dotted keys (`mock.status = 204`) has none, and
//! `Spanned<T>` then fails with "expected a borrowed string", rejecting a valid file with a
//! message about Rust. Here such a table is read as a plain `T`, with the empty span `0..0`;
//! [`super::relocate`] later points errors about it at its key in the file. Leaves out:
//! everything else about the raw structs (see [`super::raw`]).
//!
//! Data flow: `deserialize_struct` with the names `toml` recognises as a span request; the
//! visitor gets either the three span fields (start, end, value) or, for a dotted table, the
//! table's own keys, which it replays into `T`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

// The struct and field names through which `toml` (toml_edit's deserializer) and
// `serde_spanned` agree that a span is wanted (serde_spanned 0.6's `__unstable` constants;
// `spanned_inline_header_and_dotted_tables` in check_tests fails if they ever disagree).
const NAME: &str = "$__serde_spanned_private_Spanned";
const START: &str = "$__serde_spanned_private_start";
const END: &str = "$__serde_spanned_private_end";
const VALUE: &str = "$__serde_spanned_private_value";
const FIELDS: &[&str] = &[START, END, VALUE];

/// `deserialize_with` for an optional spanned table (use with `#[serde(default)]`).
pub fn opt<'de, D, T>(d: D) -> Result<Option<Spanned<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    table(d).map(Some)
}

/// `deserialize_with` for a spanned table.
pub fn table<'de, D, T>(d: D) -> Result<Spanned<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_struct(NAME, FIELDS, SpanVisitor(PhantomData))
}

struct SpanVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SpanVisitor<T> {
    type Value = Spanned<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Spanned<T>, M::Error> {
        let first = map.next_key::<String>()?;
        if first.as_deref() != Some(START) {
            // a dotted-key table: its own keys, the first one already taken (or an empty table
            // without a span, which `{}` never is: then the map is already at its end)
            let replay = Replay { first, map };
            return T::deserialize(MapAccessDeserializer::new(replay)).map(unknown);
        }
        let start: usize = map.next_value()?;
        let end = match map.next_key::<String>()? {
            Some(k) if k == END => map.next_value::<usize>()?,
            _ => return Err(de::Error::missing_field(END)),
        };
        match map.next_key::<String>()? {
            Some(k) if k == VALUE => Ok(Spanned::new(start..end, map.next_value()?)),
            _ => Err(de::Error::missing_field(VALUE)),
        }
    }
}

/// A value whose place in the file `toml` did not say.
fn unknown<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

/// The entries of a map whose first key (if it had one) was already read.
struct Replay<M> {
    first: Option<String>,
    map: M,
}

impl<'de, M: MapAccess<'de>> MapAccess<'de> for Replay<M> {
    type Error = M::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, M::Error> {
        match self.first.take() {
            Some(k) => seed.deserialize(StringDeserializer::new(k)).map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, M::Error> {
        self.map.next_value_seed(seed)
    }
}
