//! Numbers formatted on the stack for response and request heads (no allocation).
//!
//! Owns: decimal digits ([`itoa_u64`], [`put_decimal`]). Leaves out: the heads themselves
//! (responses: [`crate::session::h1`]; requests to origins: [`crate::integration::rewrite`]). The items
//! that lived here before the response type are re-exported from the session.

use bytes::{BufMut, BytesMut};

pub use crate::session::h1::{status_line, ConnHeader, CONTINUE_100};

/// Decimal digits of a number on the stack.
pub struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    pub fn as_bytes_mut(&mut self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

/// Formats `v` without allocating.
pub fn itoa_u64(mut v: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

/// Appends `v` in decimal (Content-Length values).
pub fn put_decimal(out: &mut BytesMut, v: u64) {
    out.put_slice(itoa_u64(v).as_bytes_mut());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits() {
        assert_eq!(itoa_u64(0).as_bytes_mut(), b"0");
        assert_eq!(itoa_u64(u64::MAX).as_bytes_mut(), b"18446744073709551615");
    }
}
