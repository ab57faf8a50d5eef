//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B).
//!
//! Appendix B's code is canonical: ordered by (length, symbol), each code is the previous one
//! plus one, shifted left by the growth in length. So the spec data transcribed here is only the
//! code length of each symbol (0–255, then EOS = 256); the codes themselves and the decoding
//! tables are derived at compile time, and the tests check derived codes against Appendix B.
//! (The 257 lengths were checked once against two independent transcriptions of Appendix B,
//! every derived code and length equal; the tests keep the RFC's own rows and the code's
//! completeness.)

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

/// How many codes have each length (index = length in bits).
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

/// Decodes a Huffman-coded string literal (§5.2) into `dst`. Errors: EOS inside the string,
/// padding longer than 7 bits, or padding that is not the EOS prefix (all ones).
pub(crate) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HpackError> {
    // Canonical decoding, one bit at a time: `code` is the bits read since the last symbol,
    // `first` the first code of length `len`, `index` the position of that code in SORTED.
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
                // A longest-length code always matches (the code is complete), so `len` never
                // passes MAX_LEN; guard anyway so bad tables cannot index out of bounds.
                if len >= MAX_LEN {
                    return Err(HpackError::HuffmanEos);
                }
            }
        }
    }
    // §5.2: padding strictly longer than 7 bits, or not the EOS prefix, is a decoding error.
    if len > 7 || !all_ones {
        return Err(HpackError::HuffmanPadding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
