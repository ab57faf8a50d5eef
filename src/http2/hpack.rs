//! HPACK, header compression for HTTP/2 (RFC 7541): a [`Decoder`] for request header blocks and
//! an [`Encoder`] for response header blocks, each with its own dynamic table.
//!
//! Every malformed block is an `Err(HpackError)` (the session answers a COMPRESSION_ERROR,
//! RFC 9113 §4.3), never a panic; allocation is bounded by the input, the dynamic table limit
//! and the header list limit. Names are exposed as received: the lowercase check (RFC 9113
//! §8.2.1) belongs to the session.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::huffman;

#[path = "hpack_static.rs"]
mod statics;
use statics::{static_names, STATIC_TABLE};

/// The largest integer (§5.1) the decoder accepts. Larger than any table size, index or string
/// length a valid block can hold here (string lengths are further bounded by the block itself),
/// small enough that decoding can never overflow.
pub const MAX_INTEGER: usize = 1 << 24;

/// Default SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2): the dynamic table limit.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Default SETTINGS_MAX_HEADER_LIST_SIZE the session advertises: the decoded header list (the
/// sum of name + value + 32 per field, RFC 9113 §6.5.2) may not exceed it.
pub const DEFAULT_MAX_HEADER_LIST_SIZE: usize = 64 * 1024;

/// The per-entry overhead counted in table sizes (§4.1) and header list sizes.
const ENTRY_OVERHEAD: usize = 32;

/// Why a header block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block truncated")]
    Truncated,
    #[error("HPACK integer exceeds {MAX_INTEGER}")]
    IntegerOverflow,
    #[error("Huffman string contains EOS")]
    HuffmanEos,
    #[error("Huffman padding longer than 7 bits or not all ones")]
    HuffmanPadding,
    #[error("index 0 or past the end of the table")]
    InvalidIndex,
    #[error("dynamic table size update above the advertised limit")]
    TableSizeTooLarge,
    #[error("dynamic table size update after a field")]
    MisplacedSizeUpdate,
    #[error("missing dynamic table size update after the limit was lowered")]
    MissingSizeUpdate,
    /// The list exceeds the limit. Unlike the others this leaves the decoder's table in step
    /// (the whole block was processed), so the session may answer with a stream error (431).
    #[error("decoded header list exceeds the limit")]
    HeaderListTooLarge,
}

/// One decoded field. `sensitive` marks a never-indexed literal (§6.2.3): a proxy must keep it
/// never-indexed if it forwards it over HPACK again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Bytes,
    pub value: Bytes,
    pub sensitive: bool,
}

/// The dynamic table (§2.3.2, §4): newest entry first, so dynamic index 1 is `entries[0]`.
#[derive(Debug, Default)]
struct Table {
    entries: VecDeque<(Bytes, Bytes)>,
    /// Sum of entry sizes (§4.1).
    size: usize,
    /// The current maximum size, set by size updates (§4.2).
    max_size: usize,
}

impl Table {
    fn new(max_size: usize) -> Table {
        Table {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// Address space (§2.3.3): 1..=61 static, then the dynamic entries.
    fn get(&self, index: usize) -> Result<(Bytes, Bytes), HpackError> {
        match index {
            0 => Err(HpackError::InvalidIndex),
            1..=61 => {
                let (n, v) = STATIC_TABLE[index - 1];
                Ok((
                    Bytes::from_static(n.as_bytes()),
                    Bytes::from_static(v.as_bytes()),
                ))
            }
            _ => self
                .entries
                .get(index - 62)
                .cloned()
                .ok_or(HpackError::InvalidIndex),
        }
    }

    /// §4.3: evict from the oldest end until the size fits `max_size`.
    fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict(0);
    }

    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.entries.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + ENTRY_OVERHEAD,
                None => break,
            }
        }
    }

    /// §4.4: an entry larger than the maximum empties the table and is not added.
    fn insert(&mut self, name: Bytes, value: Bytes) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        if self.entries.capacity() == 0 {
            // a table that holds one entry for the connection's life (`:authority`, say)
            // should not pay for four slots; later growth is amortised as usual
            self.entries.reserve_exact(1);
        }
        self.entries.push_front((name, value));
    }
}

/// Decodes header blocks of one connection (the dynamic table spans its blocks, §2.2).
#[derive(Debug)]
pub struct Decoder {
    table: Table,
    /// SETTINGS_HEADER_TABLE_SIZE we advertised: size updates may not exceed it (§6.3).
    table_size_limit: usize,
    /// Set when the limit was lowered below the table's current maximum: the next block must
    /// start with a size update (§4.2).
    update_required: bool,
    max_header_list_size: usize,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(DEFAULT_TABLE_SIZE, DEFAULT_MAX_HEADER_LIST_SIZE)
    }
}

impl Decoder {
    /// `table_size` is the SETTINGS_HEADER_TABLE_SIZE and `max_header_list_size` the
    /// SETTINGS_MAX_HEADER_LIST_SIZE the session advertises. Until the peer acknowledges our
    /// SETTINGS its encoder may assume 4096 (RFC 9113 §6.5.3): a session advertising less
    /// starts with [`DEFAULT_TABLE_SIZE`] and calls [`Decoder::set_table_size_limit`] on the ACK.
    pub fn new(table_size: usize, max_header_list_size: usize) -> Decoder {
        Decoder {
            table: Table::new(table_size),
            table_size_limit: table_size,
            update_required: false,
            max_header_list_size,
        }
    }

    /// A new SETTINGS_HEADER_TABLE_SIZE, once the peer acknowledged it. Lowering it below the
    /// table's current maximum requires a size update at the start of the next block (§4.2).
    pub fn set_table_size_limit(&mut self, limit: usize) {
        if limit < self.table.max_size {
            self.update_required = true;
        }
        self.table_size_limit = limit;
    }

    pub fn set_max_header_list_size(&mut self, max: usize) {
        self.max_header_list_size = max;
    }

    /// The dynamic table's current size (§4.1).
    pub fn table_size(&self) -> usize {
        self.table.size
    }

    /// The dynamic table's entries, newest first.
    pub fn table_entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.table.entries.iter().map(|(n, v)| (&n[..], &v[..]))
    }

    /// Decodes a complete header block (HEADERS + CONTINUATION fragments joined) into a list.
    pub fn decode(&mut self, block: &Bytes) -> Result<Vec<Field>, HpackError> {
        let mut fields = Vec::new();
        self.decode_with(block, |f| fields.push(f))?;
        Ok(fields)
    }

    /// Decodes a complete header block, handing each field to `emit` in order. Non-Huffman
    /// literal strings are zero-copy slices of `block`. On `HeaderListTooLarge`, fields up to
    /// the limit were emitted, the rest of the block was still decoded so the dynamic table
    /// stays in step with the peer's encoder, and nothing past the limit was allocated for the
    /// list; every other error leaves the decoder unusable (a connection error, RFC 9113 §4.3).
    pub fn decode_with(
        &mut self,
        block: &Bytes,
        mut emit: impl FnMut(Field),
    ) -> Result<(), HpackError> {
        let mut pos = 0;
        let mut list_size: usize = 0;
        let mut too_large = false;
        let mut at_start = true;
        while pos < block.len() {
            let first = block[pos];
            let field = if first & 0x80 != 0 {
                // §6.1 indexed header field
                let index = decode_int(block, &mut pos, 7)?;
                let (name, value) = self.table.get(index)?;
                Field {
                    name,
                    value,
                    sensitive: false,
                }
            } else if first & 0x40 != 0 {
                // §6.2.1 literal with incremental indexing
                let (name, value) = self.literal(block, &mut pos, 6)?;
                // Table entries are copied so the table never pins the received buffer: one
                // allocation for both, split in two.
                let mut entry = BytesMut::with_capacity(name.len() + value.len());
                entry.put_slice(&name);
                entry.put_slice(&value);
                let mut tv = entry.freeze();
                let tn = tv.split_to(name.len());
                self.table.insert(tn, tv);
                Field {
                    name,
                    value,
                    sensitive: false,
                }
            } else if first & 0x20 != 0 {
                // §6.3 dynamic table size update: only before the first field of a block
                if !at_start {
                    return Err(HpackError::MisplacedSizeUpdate);
                }
                let size = decode_int(block, &mut pos, 5)?;
                if size > self.table_size_limit {
                    return Err(HpackError::TableSizeTooLarge);
                }
                self.table.set_max_size(size);
                self.update_required = false;
                continue;
            } else {
                // §6.2.2 without indexing (0000), §6.2.3 never indexed (0001)
                let sensitive = first & 0x10 != 0;
                let (name, value) = self.literal(block, &mut pos, 4)?;
                Field {
                    name,
                    value,
                    sensitive,
                }
            };
            if at_start && self.update_required {
                return Err(HpackError::MissingSizeUpdate);
            }
            at_start = false;
            if too_large {
                continue;
            }
            list_size = list_size.saturating_add(field.name.len() + field.value.len() + 32);
            if list_size > self.max_header_list_size {
                too_large = true;
                continue;
            }
            emit(field);
        }
        if at_start && self.update_required {
            return Err(HpackError::MissingSizeUpdate);
        }
        if too_large {
            return Err(HpackError::HeaderListTooLarge);
        }
        Ok(())
    }

    /// A literal's name (indexed with a `prefix`-bit index, or a new-name string when the index
    /// is 0) followed by its value string (§6.2).
    fn literal(
        &self,
        block: &Bytes,
        pos: &mut usize,
        prefix: u8,
    ) -> Result<(Bytes, Bytes), HpackError> {
        let index = decode_int(block, pos, prefix)?;
        let name = if index == 0 {
            decode_string(block, pos)?
        } else {
            self.table.get(index)?.0
        };
        let value = decode_string(block, pos)?;
        Ok((name, value))
    }
}

/// §5.1: an integer with an N-bit prefix, then 7-bit groups, least significant first.
/// Values above [`MAX_INTEGER`] are rejected before they can overflow.
fn decode_int(buf: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, HpackError> {
    let mask = u8::MAX >> (8 - prefix);
    let first = *buf.get(*pos).ok_or(HpackError::Truncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut value = usize::from(mask);
    let mut shift: u32 = 0;
    loop {
        let byte = *buf.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        // 4 groups of 7 bits already cover MAX_INTEGER; more (even zero groups) is overflow.
        if shift > 21 {
            return Err(HpackError::IntegerOverflow);
        }
        value += usize::from(byte & 0x7f) << shift;
        if value > MAX_INTEGER {
            return Err(HpackError::IntegerOverflow);
        }
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

/// §5.2: a string literal, Huffman-coded when the H bit is set. Plain strings are slices of
/// `block`; Huffman ones are decoded into a buffer bounded by 8/5 of the coded length.
fn decode_string(block: &Bytes, pos: &mut usize) -> Result<Bytes, HpackError> {
    let huffman = *block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = decode_int(block, pos, 7)?;
    let end = pos
        .checked_add(len)
        .filter(|&e| e <= block.len())
        .ok_or(HpackError::Truncated)?;
    let raw = &block[*pos..end];
    let out = if huffman {
        let mut buf = Vec::with_capacity(len * 8 / 5 + 1);
        huffman::decode(raw, &mut buf)?;
        Bytes::from(buf)
    } else {
        block.slice(*pos..end)
    };
    *pos = end;
    Ok(out)
}

/// §5.1: encodes `value` with an N-bit prefix; `flags` holds the representation's high bits.
fn encode_int(value: usize, prefix: u8, flags: u8, dst: &mut BytesMut) {
    let mask = u8::MAX >> (8 - prefix);
    if value < usize::from(mask) {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | mask);
    let mut rest = value - usize::from(mask);
    while rest >= 0x80 {
        dst.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

/// §5.2: a string literal, Huffman-coded only when that is strictly shorter.
fn encode_string(s: &[u8], dst: &mut BytesMut) {
    let coded = huffman::encoded_len(s);
    if coded < s.len() {
        encode_int(coded, 7, 0x80, dst);
        huffman::encode(s, dst);
    } else {
        encode_int(s.len(), 7, 0, dst);
        dst.put_slice(s);
    }
}

/// Fields always sent never-indexed (§7.1.3): credentials and cookies.
const SENSITIVE: [&[u8]; 4] = [
    b"authorization",
    b"proxy-authorization",
    b"cookie",
    b"set-cookie",
];

/// Fields whose values change with nearly every response: indexing them only churns the table
/// (and copies each value into it). Besides the usual validators and dates, the gateway's own
/// per-response fields (request ids, rate-limit state) and common tracing ids.
const VOLATILE: [&[u8]; 18] = [
    b"content-length",
    b"date",
    b"etag",
    b"last-modified",
    b"expires",
    b"age",
    b"x-request-id",
    b"request-id",
    b"retry-after",
    b"ratelimit",
    b"ratelimit-remaining",
    b"ratelimit-reset",
    b"x-ratelimit-remaining",
    b"x-ratelimit-reset",
    b"location",
    b"content-range",
    b"traceparent",
    b"x-amzn-requestid",
];

/// Whether an [`Encoder`] uses its dynamic table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexing {
    /// Incremental indexing (§6.2.1) of fields that are neither sensitive nor volatile.
    Dynamic,
    /// Never: the table stays empty (static-table references and literals only).
    LiteralOnly,
}

/// Encodes header blocks of one connection (responses). With a table size of 0 it never
/// indexes (no dynamic table); otherwise it indexes fields with incremental indexing, except
/// sensitive (never-indexed) and volatile ones, and fields too large for the table.
#[derive(Debug)]
pub struct Encoder {
    table: Table,
    indexing: Indexing,
    /// A size update to emit at the start of the next block (§4.2, §6.3).
    /// (smallest, final) maximum since the last block.
    pending_update: Option<(usize, usize)>,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new(DEFAULT_TABLE_SIZE)
    }
}

impl Encoder {
    /// `table_size` must not exceed the peer's SETTINGS_HEADER_TABLE_SIZE (initially 4096).
    pub fn new(table_size: usize) -> Encoder {
        let table = Table::new(table_size.min(DEFAULT_TABLE_SIZE));
        let size = table.max_size;
        let pending_update = (size != DEFAULT_TABLE_SIZE).then_some((size, size));
        Encoder {
            table,
            indexing: Indexing::Dynamic,
            pending_update,
        }
    }

    /// An encoder that never adds a field to its dynamic table (every field not in the static
    /// table is a literal without indexing, §6.2.2), so it holds no table memory for the life
    /// of the connection; size updates the peer's SETTINGS call for are still signalled.
    pub fn literal_only() -> Encoder {
        Encoder {
            indexing: Indexing::LiteralOnly,
            ..Encoder::new(DEFAULT_TABLE_SIZE)
        }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed: use at most `size` (and never more than
    /// [`DEFAULT_TABLE_SIZE`], to bound our memory) from the next block on.
    pub fn set_table_size(&mut self, size: usize) {
        let size = size.min(DEFAULT_TABLE_SIZE);
        if size == self.table.max_size {
            return;
        }
        // §4.2: when the size went down and up again between blocks, the smallest size reached
        // must be signalled before the final one.
        let smallest = match self.pending_update {
            Some((smallest, _)) => smallest.min(size),
            None => self.table.max_size.min(size),
        };
        self.table.set_max_size(size);
        self.pending_update = Some((smallest, size));
    }

    /// The dynamic table's current size (§4.1).
    pub fn table_size(&self) -> usize {
        self.table.size
    }

    /// Encodes one header block: `(name, value, sensitive)` triples, names in lowercase.
    /// `sensitive`, or a name in the credential list, makes the field never-indexed (§6.2.3).
    pub fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8], bool)>,
        dst: &mut BytesMut,
    ) {
        if let Some((smallest, size)) = self.pending_update.take() {
            if smallest < size {
                encode_int(smallest, 5, 0x20, dst);
            }
            encode_int(size, 5, 0x20, dst);
        }
        for (name, value, sensitive) in fields {
            self.encode_field(name, value, sensitive, dst);
        }
    }

    fn encode_field(&mut self, name: &[u8], value: &[u8], sensitive: bool, dst: &mut BytesMut) {
        let sensitive = sensitive || SENSITIVE.contains(&name);
        let (exact, name_index) = self.find(name, value);
        if let (Some(index), false) = (exact, sensitive) {
            encode_int(index, 7, 0x80, dst); // §6.1
            return;
        }
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        let index_it = self.indexing == Indexing::Dynamic
            && !sensitive
            && !VOLATILE.contains(&name)
            && size <= self.table.max_size;
        let (prefix, flags) = if sensitive {
            (4, 0x10) // §6.2.3 never indexed
        } else if index_it {
            (6, 0x40) // §6.2.1 incremental indexing
        } else {
            (4, 0x00) // §6.2.2 without indexing
        };
        match name_index {
            Some(index) => encode_int(index, prefix, flags, dst),
            None => {
                encode_int(0, prefix, flags, dst);
                encode_string(name, dst);
            }
        }
        encode_string(value, dst);
        if index_it {
            self.table
                .insert(Bytes::copy_from_slice(name), Bytes::copy_from_slice(value));
        }
    }

    /// The index of an exact (name, value) match, and of a name match (§2.3.3 addressing).
    fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_index = None;
        if let Some((first, count)) = static_names(name) {
            for index in first..first + count {
                if STATIC_TABLE
                    .get(index - 1)
                    .is_some_and(|e| e.1.as_bytes() == value)
                {
                    return (Some(index), Some(index));
                }
            }
            name_index = Some(first);
        }
        for (i, (n, v)) in self.table.entries.iter().enumerate() {
            if &n[..] == name {
                if &v[..] == value {
                    return (Some(i + 62), Some(i + 62));
                }
                name_index.get_or_insert(i + 62);
            }
        }
        (None, name_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Bytes {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        Bytes::from(v)
    }

    fn pairs(fields: &[Field]) -> Vec<(&[u8], &[u8])> {
        fields.iter().map(|f| (&f.name[..], &f.value[..])).collect()
    }

    /// Decodes `block` and checks the list, then the dynamic table (newest first) and its size.
    fn check(
        dec: &mut Decoder,
        block: &str,
        list: &[(&str, &str)],
        table: &[(&str, &str)],
        size: usize,
    ) {
        let fields = dec.decode(&hex(block)).unwrap();
        let want: Vec<(&[u8], &[u8])> = list
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(pairs(&fields), want);
        let got: Vec<(&[u8], &[u8])> = dec.table_entries().collect();
        let want: Vec<(&[u8], &[u8])> = table
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(dec.table_size(), size);
    }

    #[test]
    fn c1_integers() {
        for (value, prefix, bytes) in [
            (10usize, 5u8, &[0x0a][..]),
            (1337, 5, &[0x1f, 0x9a, 0x0a]),
            (42, 8, &[0x2a]),
        ] {
            let mut dst = BytesMut::new();
            encode_int(value, prefix, 0, &mut dst);
            assert_eq!(&dst[..], bytes);
            assert_eq!(decode_int(bytes, &mut 0, prefix), Ok(value));
        }
        for (value, want) in [
            (MAX_INTEGER, Ok(MAX_INTEGER)),
            (MAX_INTEGER + 1, Err(HpackError::IntegerOverflow)),
        ] {
            let mut dst = BytesMut::new();
            encode_int(value, 7, 0, &mut dst);
            assert_eq!(decode_int(&dst, &mut 0, 7), want);
        }
    }

    #[test]
    fn c2_literals_and_indexed() {
        let mut dec = Decoder::default();
        let cc = [("custom-key", "custom-header")];
        check(
            &mut dec,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            &cc,
            &cc,
            55,
        );
        let mut dec = Decoder::default();
        check(
            &mut dec,
            "040c 2f73 616d 706c 652f 7061 7468",
            &[(":path", "/sample/path")],
            &[],
            0,
        );
        let mut dec = Decoder::default();
        let f = dec
            .decode(&hex("1008 7061 7373 776f 7264 0673 6563 7265 74"))
            .unwrap();
        assert_eq!(
            f,
            vec![Field {
                name: "password".into(),
                value: "secret".into(),
                sensitive: true
            }]
        );
        assert_eq!(dec.table_size(), 0);
        check(&mut dec, "82", &[(":method", "GET")], &[], 0);
    }

    const AUTH: (&str, &str) = (":authority", "www.example.com");
    const CC: (&str, &str) = ("cache-control", "no-cache");
    const CK: (&str, &str) = ("custom-key", "custom-value");

    fn requests(blocks: [&str; 3]) {
        let mut dec = Decoder::default();
        let (get, http, root) = ((":method", "GET"), (":scheme", "http"), (":path", "/"));
        check(&mut dec, blocks[0], &[get, http, root, AUTH], &[AUTH], 57);
        check(
            &mut dec,
            blocks[1],
            &[get, http, root, AUTH, CC],
            &[CC, AUTH],
            110,
        );
        let (https, index) = ((":scheme", "https"), (":path", "/index.html"));
        check(
            &mut dec,
            blocks[2],
            &[get, https, index, AUTH, CK],
            &[CK, CC, AUTH],
            164,
        );
    }

    const C3: [&str; 3] = [
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ];
    const C4: [&str; 3] = [
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ];

    #[test]
    fn c3_requests_without_huffman() {
        requests(C3);
    }

    #[test]
    fn c4_requests_with_huffman() {
        requests(C4);
    }

    #[test]
    fn c4_encoder_reproduces_the_example() {
        let mut enc = Encoder::default();
        let blocks: [&[(&str, &str)]; 3] = [
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                AUTH,
            ],
            &[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                AUTH,
                CC,
            ],
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                AUTH,
                CK,
            ],
        ];
        for (fields, want) in blocks.iter().zip(C4) {
            let mut dst = BytesMut::new();
            enc.encode(
                fields
                    .iter()
                    .map(|(n, v)| (n.as_bytes(), v.as_bytes(), false)),
                &mut dst,
            );
            assert_eq!(&dst[..], &hex(want)[..]);
        }
        assert_eq!(enc.table_size(), 164);
    }

    const DATE1: (&str, &str) = ("date", "Mon, 21 Oct 2013 20:13:21 GMT");
    const DATE2: (&str, &str) = ("date", "Mon, 21 Oct 2013 20:13:22 GMT");
    const LOC: (&str, &str) = ("location", "https://www.example.com");
    const PRIV: (&str, &str) = ("cache-control", "private");
    const GZIP: (&str, &str) = ("content-encoding", "gzip");
    const COOKIE: (&str, &str) = (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    );

    fn responses(blocks: [&str; 3]) {
        let mut dec = Decoder::new(256, DEFAULT_MAX_HEADER_LIST_SIZE);
        let s302 = (":status", "302");
        check(
            &mut dec,
            blocks[0],
            &[s302, PRIV, DATE1, LOC],
            &[LOC, DATE1, PRIV, s302],
            222,
        );
        let s307 = (":status", "307");
        check(
            &mut dec,
            blocks[1],
            &[s307, PRIV, DATE1, LOC],
            &[s307, LOC, DATE1, PRIV],
            222,
        );
        let list = [(":status", "200"), PRIV, DATE2, LOC, GZIP, COOKIE];
        check(&mut dec, blocks[2], &list, &[COOKIE, GZIP, DATE2], 215);
    }

    #[test]
    fn c5_responses_without_huffman() {
        responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ]);
    }

    const C6: [&str; 3] = [
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ];

    #[test]
    fn c6_responses_with_huffman() {
        responses(C6);
    }

    #[test]
    fn plain_literals_are_slices_of_the_block() {
        let block = hex("040c 2f73 616d 706c 652f 7061 7468");
        let f = Decoder::default().decode(&block).unwrap();
        assert_eq!(f[0].value.as_ptr(), block[2..].as_ptr());
    }

    fn err(dec: &mut Decoder, block: &[u8]) -> HpackError {
        dec.decode(&Bytes::copy_from_slice(block)).unwrap_err()
    }

    #[test]
    fn malformed_blocks_are_errors() {
        use HpackError::*;
        let d = &mut Decoder::default;
        assert_eq!(
            err(&mut d(), &[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            IntegerOverflow
        );
        assert_eq!(
            err(&mut d(), &[0xff, 0x80, 0x80, 0x80, 0x80, 0x00]),
            IntegerOverflow
        );
        assert_eq!(err(&mut d(), &[0xff]), Truncated);
        assert_eq!(err(&mut d(), &[0x40, 0x05, b'a']), Truncated);
        assert_eq!(
            err(&mut d(), &[0x00, 0x81, 0b0001_1000, 0x01, b'v']),
            HuffmanPadding
        );
        assert_eq!(
            err(&mut d(), &[0x00, 0x82, 0b0001_1111, 0xff, 0x01, b'v']),
            HuffmanPadding
        );
        assert_eq!(
            err(&mut d(), &[0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]),
            HuffmanEos
        );
        assert_eq!(err(&mut d(), &[0x80]), InvalidIndex);
        assert_eq!(err(&mut d(), &[0xbe]), InvalidIndex);
        assert_eq!(err(&mut d(), &[0x0f, 0x2f, 0x00]), InvalidIndex);
        assert_eq!(err(&mut d(), &[0x3f, 0xe2, 0x1f]), TableSizeTooLarge);
        assert_eq!(err(&mut d(), &[0x82, 0x20]), MisplacedSizeUpdate);
        // two updates at the start are fine (§4.2), up to the limit exactly
        assert!(d()
            .decode(&Bytes::from_static(&[0x20, 0x3f, 0xe1, 0x1f, 0x82]))
            .is_ok());
        // a lowered limit requires an update at the start of the next block
        let mut dec = d();
        dec.set_table_size_limit(100);
        assert_eq!(err(&mut dec, &[0x82]), MissingSizeUpdate);
        assert_eq!(err(&mut dec, &[0x3f, 0x46]), TableSizeTooLarge); // 31 + 70 = 101
        assert!(dec.decode(&Bytes::from_static(&[0x3f, 0x45, 0x82])).is_ok());
        assert!(dec.decode(&Bytes::from_static(&[0x82])).is_ok());
    }

    #[test]
    fn header_list_limit_keeps_the_table_in_step() {
        // two 60-byte fields (name 10 + value 18 + 32) against a limit of 100
        let mut dec = Decoder::new(4096, 100);
        let mut block = BytesMut::new();
        for v in [b"aaaaaaaaaaaaaaaaaa", b"bbbbbbbbbbbbbbbbbb"] {
            block.put_u8(0x40);
            block.put_u8(10);
            block.put_slice(b"custom-key");
            block.put_u8(18);
            block.put_slice(v);
        }
        let mut got = Vec::new();
        let r = dec.decode_with(&block.freeze(), |f| got.push(f));
        assert_eq!(r, Err(HpackError::HeaderListTooLarge));
        assert_eq!(got.len(), 1);
        assert_eq!(dec.table_entries().count(), 2);
        assert_eq!(dec.table_size(), 120);
    }

    #[test]
    fn entry_larger_than_the_table_empties_it() {
        let mut dec = Decoder::new(60, 1024);
        check(
            &mut dec,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            &[("custom-key", "custom-header")],
            &[("custom-key", "custom-header")],
            55,
        );
        // 10 + 14 + 32 = 56: evicts the first entry
        let f = ("custom-key", "custom-header2");
        check(
            &mut dec,
            "400a 6375 7374 6f6d 2d6b 6579 0e63 7573 746f 6d2d 6865 6164 6572 32",
            &[f],
            &[f],
            56,
        );
        // 61 > 60: the table is emptied, the entry not added (§4.4)
        let mut block = BytesMut::from(&[0x40u8, 0x0a][..]);
        block.put_slice(b"custom-key");
        block.put_u8(19);
        block.put_slice(b"custom-header-bigge");
        assert_eq!(dec.decode(&block.freeze()).unwrap().len(), 1);
        assert_eq!((dec.table_entries().count(), dec.table_size()), (0, 0));
    }

    #[test]
    fn sensitive_fields_are_never_indexed() {
        let mut enc = Encoder::default();
        let mut dec = Decoder::default();
        let fields: [(&[u8], &[u8], bool); 4] = [
            (b":status", b"200", false),
            (b"set-cookie", b"id=1", false),
            (b"authorization", b"Bearer x", false),
            (b"x-secret", b"s", true),
        ];
        let mut dst = BytesMut::new();
        enc.encode(fields, &mut dst);
        let got = dec.decode(&dst.freeze()).unwrap();
        let flags: Vec<bool> = got.iter().map(|f| f.sensitive).collect();
        assert_eq!(flags, [false, true, true, true]);
        assert_eq!((enc.table_size(), dec.table_size()), (0, 0));
    }

    /// A typical gateway response head, encoded `RESPONSES` times literal-only and with the
    /// dynamic table: literal-only keeps no table (no memory) and costs only the bytes of the
    /// repeated non-volatile fields on the wire; both decode to the same fields.
    #[test]
    fn a_literal_only_encoder_keeps_no_table() {
        const RESPONSES: usize = 10;
        let head: [(&[u8], &[u8], bool); 4] = [
            (b":status", b"200", false),
            (b"content-type", b"application/json", false),
            (b"content-length", b"1234", false),
            (
                b"x-amzn-requestid",
                b"0f8f7a4e-5c1b-4d2a-9e6f-1a2b3c4d5e6f",
                false,
            ),
        ];
        let mut sizes = [0usize; 2];
        for (i, mut enc) in [Encoder::literal_only(), Encoder::default()]
            .into_iter()
            .enumerate()
        {
            let mut dec = Decoder::default();
            for _ in 0..RESPONSES {
                let mut dst = BytesMut::new();
                enc.encode(head, &mut dst);
                sizes[i] += dst.len();
                let got = dec.decode(&dst.freeze()).unwrap();
                assert_eq!(got.len(), head.len());
                assert_eq!(&got[1].value[..], b"application/json");
            }
            if i == 0 {
                assert_eq!((enc.table_size(), dec.table_size()), (0, 0));
                assert!(enc.table.entries.capacity() == 0, "no table allocated");
            } else {
                assert!(enc.table_size() > 0);
            }
        }
        let extra = sizes[0] - sizes[1];
        eprintln!(
            "literal-only: {} B, indexed: {} B over {RESPONSES} heads",
            sizes[0], sizes[1]
        );
        // the only field that repeats and may be indexed is content-type: its literal
        // (Huffman-coded value, static name) instead of a one-byte index, after the first
        assert!(extra > 0 && extra < 16 * RESPONSES, "{extra}");
    }

    #[test]
    fn static_names_match_the_static_table() {
        for (i, (n, _)) in STATIC_TABLE.iter().enumerate() {
            let (first, count) = static_names(n.as_bytes()).expect("every static name");
            assert!((first..first + count).contains(&(i + 1)), "{n}");
            for j in first..first + count {
                assert_eq!(STATIC_TABLE[j - 1].0, *n);
            }
        }
        assert_eq!(static_names(b"x-custom"), None);
    }

    #[test]
    fn per_response_fields_are_not_indexed() {
        let mut enc = Encoder::default();
        let fields: [(&[u8], &[u8], bool); 4] = [
            (b"x-request-id", b"0f3a9c", false),
            (b"date", b"Thu, 01 Jan 1970 00:00:00 GMT", false),
            (b"ratelimit", b"\"default\";r=0;t=1", false),
            (b"content-length", b"23", false),
        ];
        let mut dst = BytesMut::new();
        enc.encode(fields, &mut dst);
        assert_eq!(enc.table_size(), 0);
        // a stable field is indexed
        enc.encode(
            [(&b"content-type"[..], &b"application/json"[..], false)],
            &mut dst,
        );
        assert!(enc.table_size() > 0);
    }

    #[test]
    fn encoder_size_updates_are_signalled() {
        let mut enc = Encoder::default();
        let mut dec = Decoder::default();
        enc.set_table_size(0);
        enc.set_table_size(200);
        let mut dst = BytesMut::new();
        enc.encode([(&b"x-a"[..], &b"1"[..], false)], &mut dst);
        // smallest (0), then final (200), then the field (§4.2)
        assert_eq!(&dst[..2], &[0x20, 0x3f]);
        dec.decode(&dst.freeze()).unwrap();
        assert_eq!(dec.table_size(), enc.table_size());
        let mut enc = Encoder::new(0);
        let mut dst = BytesMut::new();
        enc.encode([(&b"x-a"[..], &b"1"[..], false)], &mut dst);
        assert_eq!(dst[0], 0x20);
        assert_eq!(enc.table_size(), 0);
    }

    fn field() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, bool)> {
        let name = prop_oneof![
            prop::sample::select(vec![
                &b":status"[..],
                b"content-type",
                b"date",
                b"set-cookie",
                b"x-a"
            ])
            .prop_map(|n| n.to_vec()),
            prop::collection::vec(any::<u8>(), 0..20),
        ];
        let value = prop_oneof![
            prop::sample::select(vec![&b"200"[..], b"text/plain", b""]).prop_map(|v| v.to_vec()),
            prop::collection::vec(any::<u8>(), 0..300),
        ];
        (name, value, any::<bool>())
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            block in prop::collection::vec(any::<u8>(), 0..512),
            limit in 0usize..400,
        ) {
            let mut dec = Decoder::new(256, limit);
            let mut total = 0;
            let _ = dec.decode_with(&Bytes::from(block), |f| total += f.name.len() + f.value.len() + 32);
            prop_assert!(total <= limit);
            prop_assert!(dec.table_size() <= 256);
        }

        #[test]
        fn decoding_mutated_blocks_never_panics(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            which in 0usize..3,
        ) {
            let mut dec = Decoder::new(256, 300);
            let mut block = hex(C6[which]).to_vec();
            for (at, byte) in edits {
                let i = at.index(block.len());
                block[i] = byte;
            }
            let mut total = 0;
            let _ = dec.decode_with(&Bytes::from(block), |f| total += f.name.len() + f.value.len() + 32);
            prop_assert!(total <= 300);
            prop_assert!(dec.table_size() <= 256);
        }

        #[test]
        fn round_trip(
            blocks in prop::collection::vec(prop::collection::vec(field(), 0..8), 1..6),
            table in prop::sample::select(vec![0usize, 64, 256, 4096]),
        ) {
            let mut enc = Encoder::new(table);
            let mut dec = Decoder::new(4096, usize::MAX);
            for fields in blocks {
                let mut dst = BytesMut::new();
                enc.encode(fields.iter().map(|(n, v, s)| (&n[..], &v[..], *s)), &mut dst);
                let got = dec.decode(&dst.freeze()).unwrap();
                prop_assert_eq!(got.len(), fields.len());
                for (g, (n, v, s)) in got.iter().zip(&fields) {
                    prop_assert_eq!(&g.name[..], &n[..]);
                    prop_assert_eq!(&g.value[..], &v[..]);
                    if *s {
                        prop_assert!(g.sensitive);
                    }
                }
                prop_assert_eq!(dec.table_size(), enc.table_size());
            }
        }
    }
}
