//! Time and number formatting on the stack, shared by the response writer, the access log and
//! quota periods.
//!
//! Owns: decimal digits of an integer without allocating ([`itoa_u64`] → [`Digits`],
//! [`put_decimal`] into a `BytesMut`), the HTTP `Date` value (RFC 9110 §5.6.7 IMF-fixdate,
//! [`format_http_date`]), the common log format's time ([`clf_time`], rearranged from the
//! IMF-fixdate), a certificate's validity time as OpenSSL and API Gateway print it
//! ([`gmt_time`], the one formatter here that allocates: it runs once per client certificate)
//! and the calendar arithmetic under them ([`civil_from_days`]). Leaves out: reading
//! clocks and caching a formatted date once per second (the worker's `DateCache` and
//! `accesslog::wall_secs_coarse` own that) and where the bytes go. Data flows one way: a number or
//! a second count in, fixed-size bytes out; nothing here keeps state.

use bytes::{BufMut, BytesMut};

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

/// Formats seconds since the epoch as an IMF-fixdate.
pub fn format_http_date(secs: u64) -> [u8; 29] {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let (year, month, day) = civil_from_days(days as i64);
    const WD: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MO: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(WD[(days % 7) as usize]);
    let two = |v: u64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    out[5..7].copy_from_slice(&two(day as u64));
    out[8..11].copy_from_slice(MO[(month - 1).clamp(0, 11) as usize]);
    let y = year.clamp(0, 9999) as u64;
    out[12..14].copy_from_slice(&two(y / 100));
    out[14..16].copy_from_slice(&two(y % 100));
    out[17..19].copy_from_slice(&two(h));
    out[20..22].copy_from_slice(&two(m));
    out[23..25].copy_from_slice(&two(s));
    out
}

/// `22/Nov/2026:10:00:00 +0000` (the common log format's time), rearranged from the IMF-fixdate
/// `Sun, 22 Nov 2026 10:00:00 GMT` the worker formats anyway.
pub fn clf_time(secs: u64) -> [u8; 26] {
    let d = format_http_date(secs);
    let mut out = *b"00/Jan/1970:00:00:00 +0000";
    out[0..2].copy_from_slice(&d[5..7]);
    out[3..6].copy_from_slice(&d[8..11]);
    out[7..11].copy_from_slice(&d[12..16]);
    out[12..20].copy_from_slice(&d[17..25]);
    out
}

/// (year, month 1-12, day 1-31) of a day number since 1970-01-01 (proleptic Gregorian; the
/// days-to-civil algorithm over 400-year eras). Used by the HTTP `Date` header and by quota periods.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix time `t` as `Mmm DD HH:MM:SS YYYY GMT` with the day padded by a space (`Aug  5`), the
/// form OpenSSL prints an ASN.1 time in and API Gateway shows validity in.
pub fn gmt_time(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let month = usize::try_from(m - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("???");
    format!(
        "{month} {d:>2} {:02}:{:02}:{:02} {y} GMT",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmt_time_matches_openssl_form() {
        // 2021-08-05T09:36:04Z, the notAfter of API Gateway's documented example
        assert_eq!(gmt_time(1_628_156_164), "Aug  5 09:36:04 2021 GMT");
        assert_eq!(gmt_time(0), "Jan  1 00:00:00 1970 GMT");
        assert_eq!(gmt_time(1_598_660_901), "Aug 29 00:28:21 2020 GMT");
    }

    #[test]
    fn digits() {
        assert_eq!(itoa_u64(0).as_bytes_mut(), b"0");
        assert_eq!(itoa_u64(7).as_bytes_mut(), b"7");
        assert_eq!(itoa_u64(1_000).as_bytes_mut(), b"1000");
        assert_eq!(itoa_u64(u64::MAX).as_bytes_mut(), b"18446744073709551615");
        let mut out = BytesMut::new();
        put_decimal(&mut out, 404);
        assert_eq!(&out[..], b"404");
    }

    #[test]
    fn http_date_matches_rfc_example() {
        assert_eq!(
            &format_http_date(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(&format_http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            &format_http_date(1_709_210_096),
            b"Thu, 29 Feb 2024 12:34:56 GMT"
        );
    }

    #[test]
    fn clf_time_rearranges_the_http_date() {
        assert_eq!(&clf_time(784_111_777), b"06/Nov/1994:08:49:37 +0000");
        assert_eq!(&clf_time(0), b"01/Jan/1970:00:00:00 +0000");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
