//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B).
//!
//! Appendix B's code is canonical: ordered by (length, symbol), each code is the previous one
//! plus one, shifted left by the growth in length. So the spec data transcribed here is only the
//! code length of each symbol (0–255, then EOS = 256); the codes themselves and the decoding
//! tables are derived at compile time, and the tests check derived codes against Appendix B.
//! (The 257 lengths were checked once against two independent transcriptions of Appendix B,
//! every derived code and length equal; the tests keep the RFC's own rows and the code's
//! completeness.)
//!
//! Decoding is table-driven: the code's tree (256 internal nodes) becomes a 256 × 16 table of
//! nibble steps (next node, symbol completed, EOS seen), so a byte costs two lookups; a string
//! may end only at the root or within 7 one-bits of it (§5.2 padding). A bit-at-a-time
//! canonical decoder is kept in the tests as the oracle the table must agree with.

use bytes::{BufMut, BytesMut};

use super::hpack::HpackError;

/// The end-of-string symbol (RFC 7541 §5.2): never valid inside a decoded string.
const EOS: u16 = 256;
/// The longest code, in bits (EOS and a few control bytes).
const MAX_LEN: usize = 30;

/// Appendix B, column "len": the code length in bits of symbol 0..=256.
#[rustfmt::skip]
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
];

/// How many codes have each length (index = length in bits); the bitwise test oracle uses it.
#[cfg(test)]
const COUNTS: [u16; MAX_LEN + 1] = {
    let mut counts = [0u16; MAX_LEN + 1];
    let mut s = 0;
    while s < LENGTHS.len() {
        counts[LENGTHS[s] as usize] += 1;
        s += 1;
    }
    counts
};

/// The symbols ordered by (length, symbol): the canonical order.
const SORTED: [u16; 257] = {
    let mut sorted = [0u16; 257];
    let mut n = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        let mut s = 0;
        while s < LENGTHS.len() {
            if LENGTHS[s] as usize == len {
                sorted[n] = s as u16;
                n += 1;
            }
            s += 1;
        }
        len += 1;
    }
    sorted
};

/// Each symbol's code, right-aligned (Appendix B "code as hex").
const CODES: [u32; 257] = {
    let mut codes = [0u32; 257];
    let mut code: u32 = 0;
    let mut prev_len = LENGTHS[SORTED[0] as usize] as u32;
    let mut i = 0;
    while i < SORTED.len() {
        let sym = SORTED[i] as usize;
        let len = LENGTHS[sym] as u32;
        if i > 0 {
            code = (code + 1) << (len - prev_len);
        }
        codes[sym] = code;
        prev_len = len;
        i += 1;
    }
    codes
};

/// The Huffman-encoded length of `src` in bytes (the last byte padded, §5.2).
pub(crate) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(LENGTHS[usize::from(b)]))
        .sum();
    bits.div_ceil(8)
}

/// Appends the Huffman encoding of `src` to `dst`, padded with the most significant bits of
/// EOS, i.e. ones (§5.2).
pub(crate) fn encode(src: &[u8], dst: &mut BytesMut) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let len = u32::from(LENGTHS[usize::from(b)]);
        acc = (acc << len) | u64::from(CODES[usize::from(b)]);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            dst.put_u8((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        dst.put_u8(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
}

/// The decoding tree: node 0 is the root; each node's two children (bit 0, bit 1) are either
/// another node or a leaf (`LEAF | symbol`). 257 leaves make 256 internal nodes, so a node
/// index fits a `u8`.
const LEAF: u16 = 0x8000;
const TREE: [[u16; 2]; 256] = {
    let mut tree = [[0u16; 2]; 256];
    let mut nodes = 1;
    let mut sym = 0;
    while sym < LENGTHS.len() {
        let len = LENGTHS[sym] as usize;
        let code = CODES[sym];
        let mut node = 0;
        let mut i = 0;
        while i < len {
            let bit = ((code >> (len - 1 - i)) & 1) as usize;
            if i == len - 1 {
                tree[node][bit] = LEAF | sym as u16;
            } else {
                if tree[node][bit] == 0 {
                    tree[node][bit] = nodes;
                    nodes += 1;
                }
                node = tree[node][bit] as usize;
            }
            i += 1;
        }
        sym += 1;
    }
    tree
};

/// One step of the nibble decoder: the node after 4 bits, the symbol completed on the way (at
/// most one: the shortest code is 5 bits), whether that symbol was EOS.
#[derive(Clone, Copy)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}
const EMIT: u8 = 1;
const FAIL: u8 = 2;

/// `STEPS[node][nibble]`, derived from the tree at compile time (4096 steps, 12 KiB).
const STEPS: [[Step; 16]; 256] = {
    let mut steps = [[Step {
        next: 0,
        sym: 0,
        flags: 0,
    }; 16]; 256];
    let mut node = 0;
    while node < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut at = node;
            let mut step = Step {
                next: 0,
                sym: 0,
                flags: 0,
            };
            let mut b = 0;
            while b < 4 {
                let bit = (nibble >> (3 - b)) & 1;
                let child = TREE[at][bit];
                if child & LEAF != 0 {
                    let sym = child & !LEAF;
                    if sym == EOS {
                        step.flags |= FAIL;
                    } else {
                        step.flags |= EMIT;
                        step.sym = sym as u8;
                    }
                    at = 0;
                } else {
                    at = child as usize;
                }
                b += 1;
            }
            step.next = at as u8;
            steps[node][nibble] = step;
            nibble += 1;
        }
        node += 1;
    }
    steps
};

/// The nodes where a string may end (§5.2): the root, or up to 7 bits down the all-ones path
/// (a prefix of EOS as padding).
const CAN_END: [bool; 256] = {
    let mut ok = [false; 256];
    ok[0] = true;
    let mut node = 0;
    let mut depth = 0;
    while depth < 7 {
        let child = TREE[node][1];
        if child & LEAF != 0 {
            break;
        }
        node = child as usize;
        ok[node] = true;
        depth += 1;
    }
    ok
};

/// Decodes a Huffman-coded string literal (§5.2) into `dst`, four bits at a time through
/// [`STEPS`]. Errors: EOS inside the string, padding longer than 7 bits, or padding that is
/// not the EOS prefix (all ones).
pub(crate) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HpackError> {
    let mut node = 0usize;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = STEPS[node][usize::from(nibble)];
            if step.flags & FAIL != 0 {
                return Err(HpackError::HuffmanEos);
            }
            if step.flags & EMIT != 0 {
                dst.push(step.sym);
            }
            node = usize::from(step.next);
        }
    }
    if !CAN_END[node] {
        return Err(HpackError::HuffmanPadding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The canonical decoder one bit at a time: the reference the table-driven one must agree
    /// with on any input.
    fn decode_bitwise(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HpackError> {
        let mut code: u32 = 0;
        let mut first: u32 = 0;
        let mut index: usize = 0;
        let mut len: usize = 0;
        let mut all_ones = true;
        for &byte in src {
            for shift in (0..8).rev() {
                let bit = u32::from((byte >> shift) & 1);
                code = (code << 1) | bit;
                all_ones &= bit == 1;
                len += 1;
                let count = u32::from(COUNTS[len]);
                if code.wrapping_sub(first) < count {
                    let sym = SORTED[index + (code - first) as usize];
                    if sym == EOS {
                        return Err(HpackError::HuffmanEos);
                    }
                    dst.push(sym as u8);
                    (code, first, index, len, all_ones) = (0, 0, 0, 0, true);
                } else {
                    index += count as usize;
                    first = (first + count) << 1;
                }
            }
        }
        if len > 7 || !all_ones {
            return Err(HpackError::HuffmanPadding);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn table_decoder_agrees_with_the_bitwise_one(
            // runs of ones reach the long codes, EOS and the padding rules
            src in proptest::collection::vec(prop_oneof![any::<u8>(), Just(0xffu8), Just(0xfe), Just(0x7f)], 0..64)
        ) {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ra = decode(&src, &mut a);
            let rb = decode_bitwise(&src, &mut b);
            prop_assert_eq!(ra, rb);
            if ra.is_ok() {
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn encoded_strings_decode_back(src in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut enc = BytesMut::new();
            encode(&src, &mut enc);
            let mut dec = Vec::new();
            prop_assert_eq!(decode(&enc, &mut dec), Ok(()));
            prop_assert_eq!(dec, src);
        }
    }

    #[test]
    fn the_tree_is_full() {
        // every internal node has two children: no input can reach a missing branch
        for (i, children) in TREE.iter().enumerate() {
            for c in children {
                assert!(*c != 0, "node {i} has a missing child");
            }
        }
    }

    #[test]
    fn derived_codes_match_appendix_b() {
        // (symbol, code as hex, len) rows of Appendix B
        for (sym, code, len) in [
            (0usize, 0x1ff8u32, 13u8),
            (1, 0x7fffd8, 23),
            (9, 0xffffea, 24),
            (10, 0x3ffffffc, 30),
            (32, 0x14, 6),
            (48, 0x0, 5),
            (97, 0x3, 5),
            (127, 0xffffffc, 28),
            (255, 0x3ffffee, 26),
            (256, 0x3fffffff, 30),
        ] {
            assert_eq!((CODES[sym], LENGTHS[sym]), (code, len), "symbol {sym}");
        }
        // the code is complete (Kraft sum exactly 1)
        let kraft: u64 = LENGTHS
            .iter()
            .map(|&l| 1u64 << (MAX_LEN - l as usize))
            .sum();
        assert_eq!(kraft, 1u64 << MAX_LEN);
        // EOS is the longest code, 30 bits of ones (§5.2 padding is its prefix)
        assert_eq!((CODES[256], LENGTHS[256]), ((1u32 << 30) - 1, 30));
        // canonical: in (length, symbol) order each code is above the previous one's prefix,
        // so no code is a prefix of another
        for pair in SORTED.windows(2) {
            let (a, b) = (usize::from(pair[0]), usize::from(pair[1]));
            let shift = LENGTHS[b] - LENGTHS[a];
            assert!(CODES[b] >> shift > CODES[a], "{a} / {b}");
        }
    }

    #[test]
    fn round_trip_every_byte() {
        let src: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let mut enc = BytesMut::new();
        encode(&src, &mut enc);
        assert_eq!(enc.len(), encoded_len(&src));
        let mut dec = Vec::new();
        decode(&enc, &mut dec).unwrap();
        assert_eq!(dec, src);
    }

    #[test]
    fn rejects_eos_and_bad_padding() {
        let mut out = Vec::new();
        // EOS (30 ones) padded with two ones: the EOS symbol is decoded
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HpackError::HuffmanEos)
        );
        // 'a' (00011) then padding 000: not all ones
        assert_eq!(
            decode(&[0b0001_1000], &mut out),
            Err(HpackError::HuffmanPadding)
        );
        // 8 bits of ones padding: longer than 7 bits
        assert_eq!(
            decode(&[0b0001_1111, 0xff], &mut out),
            Err(HpackError::HuffmanPadding)
        );
        // valid: 'a' + 111
        out.clear();
        assert_eq!(decode(&[0b0001_1111], &mut out), Ok(()));
        assert_eq!(out, b"a");
    }
}
