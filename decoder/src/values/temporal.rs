//! DATE, TIME, DATETIME, TIMESTAMP and YEAR, in both the old (pre-5.6) and
//! the "2" (fractional seconds, big-endian) storage formats, printed exactly
//! as `SELECT` prints them.

use std::fmt;

use super::digit_pair as pair;

/// A calendar date; zero parts are kept (`0000-00-00` is a valid value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// 0..=9999
    pub year: u16,
    /// 0..=12
    pub month: u8,
    /// 0..=31
    pub day: u8,
}

/// A DATETIME (or a TIMESTAMP already converted to UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// The date part.
    pub date: Date,
    /// 0..=23
    pub hour: u8,
    /// 0..=59
    pub minute: u8,
    /// 0..=59
    pub second: u8,
    /// 0..=999999
    pub micros: u32,
    /// Fraction digits to print (the column's fsp).
    pub fsp: u8,
}

/// A TIME: a signed duration up to 838:59:59.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// True for negative durations.
    pub negative: bool,
    /// 0..=838 (more is printed as stored).
    pub hours: u32,
    /// 0..=59
    pub minute: u8,
    /// 0..=59
    pub second: u8,
    /// 0..=999999
    pub micros: u32,
    /// Fraction digits to print.
    pub fsp: u8,
}

/// A TIMESTAMP: seconds since the epoch, printed in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since 1970-01-01 00:00:00 UTC (0 is the zero timestamp).
    pub seconds: u32,
    /// 0..=999999
    pub micros: u32,
    /// Fraction digits to print.
    pub fsp: u8,
}

/// Longest text of a temporal value.
pub const TEXT_MAX: usize = 40;

/// Text of at most [`TEXT_MAX`] ASCII bytes built on the stack: temporal
/// values are formatted once per cell, and the `fmt` machinery costs more
/// than the digits themselves.
#[derive(Clone, Copy)]
pub struct Ascii {
    buf: [u8; TEXT_MAX],
    len: usize,
}

impl Ascii {
    fn build(write: impl FnOnce(&mut Writer<'_>)) -> Self {
        let mut buf = [0; TEXT_MAX];
        let len = Writer::fill(&mut buf, write);
        Ascii { buf, len }
    }

    /// The text's bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// Writes text into a caller's buffer: the callers that append to an
/// output buffer hand over that buffer's own bytes, so the text is not
/// copied again (a copy right after small writes also stalls the CPU).
struct Writer<'b> {
    buf: &'b mut [u8; TEXT_MAX],
    len: usize,
}

impl Writer<'_> {
    /// Runs `write` over `buf`; the length written.
    #[inline]
    fn fill(buf: &mut [u8; TEXT_MAX], write: impl FnOnce(&mut Writer<'_>)) -> usize {
        let mut w = Writer { buf, len: 0 };
        write(&mut w);
        w.len
    }

    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `v` in decimal, zero-padded to at least `width` digits.
    fn num(&mut self, v: u32, width: usize) {
        if width == 4 && v < 10_000 {
            let ([a, b], [c, d]) = (pair(v / 100), pair(v % 100));
            self.fixed(&[a, b, c, d], 4);
            return;
        }
        let mut digits = [b'0'; 10];
        let mut n = 0;
        let mut v = v;
        loop {
            digits[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for _ in n..width {
            self.byte(b'0');
        }
        for i in (0..n).rev() {
            self.byte(digits[i]);
        }
    }

    /// `.` and the first `fsp` digits of `micros` (nothing for fsp 0): the
    /// six digits written at once, the length cut to `fsp`.
    fn fraction(&mut self, micros: u32, fsp: u8) {
        if fsp == 0 {
            return;
        }
        let m = micros.min(999_999);
        let ([a, b], [c, d], [e, f]) = (pair(m / 10_000), pair(m / 100 % 100), pair(m % 100));
        self.fixed(&[b'.', a, b, c, d, e, f], 1 + usize::from(fsp.min(6)));
    }

    /// `hh:mm:ss`, hours zero-padded to at least two digits.
    fn clock(&mut self, hours: u32, minute: u8, second: u8) {
        if hours < 100 && minute < 100 && second < 100 {
            let ([h1, h2], [m1, m2], [s1, s2]) = (pair(hours), pair(minute.into()), pair(second.into()));
            self.fixed(&[h1, h2, b':', m1, m2, b':', s1, s2], 8);
        } else {
            self.num(hours, 2);
            self.byte(b':');
            self.num(u32::from(minute), 2);
            self.byte(b':');
            self.num(u32::from(second), 2);
        }
    }

    /// The first `len` bytes of `bytes`, at the end: one fixed-size copy
    /// for the usual case instead of a byte at a time.
    fn fixed<const N: usize>(&mut self, bytes: &[u8; N], len: usize) {
        match self.buf.get_mut(self.len..self.len + N) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                self.len += len.min(N);
            }
            None => bytes[..len.min(N)].iter().for_each(|&b| self.byte(b)),
        }
    }
}

impl Date {
    /// `YYYY-MM-DD`.
    pub fn text(&self) -> Ascii {
        Ascii::build(|w| self.push(w))
    }

    /// Writes the text into `buf` and returns its length.
    pub fn write_text(&self, buf: &mut [u8; TEXT_MAX]) -> usize {
        match self.digits() {
            Some(date) => {
                buf[..10].copy_from_slice(&date);
                10
            }
            None => Writer::fill(buf, |w| self.push(w)),
        }
    }

    /// `YYYY-MM-DD` when every part fits its width.
    #[inline]
    fn digits(&self) -> Option<[u8; 10]> {
        if self.year >= 10_000 || self.month >= 100 || self.day >= 100 {
            return None;
        }
        let year = u32::from(self.year);
        let ([y1, y2], [y3, y4]) = (pair(year / 100), pair(year % 100));
        let ([m1, m2], [d1, d2]) = (pair(self.month.into()), pair(self.day.into()));
        Some([y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2])
    }

    fn push(&self, a: &mut Writer<'_>) {
        if self.year < 10_000 && self.month < 100 && self.day < 100 {
            let year = u32::from(self.year);
            let ([y1, y2], [y3, y4]) = (pair(year / 100), pair(year % 100));
            let ([m1, m2], [d1, d2]) = (pair(self.month.into()), pair(self.day.into()));
            a.fixed(&[y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2], 10);
        } else {
            a.num(u32::from(self.year), 4);
            a.byte(b'-');
            a.num(u32::from(self.month), 2);
            a.byte(b'-');
            a.num(u32::from(self.day), 2);
        }
    }
}

impl DateTime {
    /// `YYYY-MM-DD hh:mm:ss[.fraction]`.
    pub fn text(&self) -> Ascii {
        Ascii::build(|w| self.push(w))
    }

    /// Writes the text into `buf` and returns its length: at fixed places
    /// when every part fits its width (always, from a server).
    pub fn write_text(&self, buf: &mut [u8; TEXT_MAX]) -> usize {
        match (self.date.digits(), clock_digits(u32::from(self.hour), self.minute, self.second)) {
            (Some(date), Some(clock)) => {
                buf[..10].copy_from_slice(&date);
                buf[10] = b' ';
                buf[11..19].copy_from_slice(&clock);
                19 + fraction_at(buf, 19, self.micros, self.fsp)
            }
            _ => Writer::fill(buf, |w| self.push(w)),
        }
    }

    fn push(&self, a: &mut Writer<'_>) {
        self.date.push(a);
        a.byte(b' ');
        a.clock(u32::from(self.hour), self.minute, self.second);
        a.fraction(self.micros, self.fsp);
    }
}

impl Time {
    /// `[-]hh:mm:ss[.fraction]` (hours can exceed 24).
    pub fn text(&self) -> Ascii {
        Ascii::build(|w| self.push(w))
    }

    /// Writes the text into `buf` and returns its length.
    pub fn write_text(&self, buf: &mut [u8; TEXT_MAX]) -> usize {
        match clock_digits(self.hours, self.minute, self.second) {
            Some(clock) if !self.negative => {
                buf[..8].copy_from_slice(&clock);
                8 + fraction_at(buf, 8, self.micros, self.fsp)
            }
            _ => Writer::fill(buf, |w| self.push(w)),
        }
    }

    fn push(&self, a: &mut Writer<'_>) {
        if self.negative {
            a.byte(b'-');
        }
        a.clock(self.hours, self.minute, self.second);
        a.fraction(self.micros, self.fsp);
    }
}

/// `hh:mm:ss` when each part has two digits.
#[inline]
fn clock_digits(hours: u32, minute: u8, second: u8) -> Option<[u8; 8]> {
    if hours >= 100 || minute >= 100 || second >= 100 {
        return None;
    }
    let ([h1, h2], [m1, m2], [s1, s2]) = (pair(hours), pair(minute.into()), pair(second.into()));
    Some([h1, h2, b':', m1, m2, b':', s1, s2])
}

/// `.` and the first `fsp` digits of `micros` at `buf[at..]` (nothing for
/// fsp 0); the bytes written.
#[inline]
fn fraction_at(buf: &mut [u8; TEXT_MAX], at: usize, micros: u32, fsp: u8) -> usize {
    if fsp == 0 {
        return 0;
    }
    let m = micros.min(999_999);
    let ([a, b], [c, d], [e, f]) = (pair(m / 10_000), pair(m / 100 % 100), pair(m % 100));
    buf[at..at + 7].copy_from_slice(&[b'.', a, b, c, d, e, f]);
    1 + usize::from(fsp.min(6))
}

/// A YEAR as SELECT prints it: four digits, `0000` for the zero year.
pub fn year_text(year: u16) -> Ascii {
    Ascii::build(|w| w.num(u32::from(year), 4))
}

/// Writes a YEAR's text into `buf` and returns its length.
pub fn write_year(year: u16, buf: &mut [u8; TEXT_MAX]) -> usize {
    Writer::fill(buf, |w| w.num(u32::from(year), 4))
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl Timestamp {
    /// The UTC date and time (the zero timestamp maps to `0000-00-00 00:00:00`).
    pub fn to_utc(self) -> DateTime {
        if self.seconds == 0 && self.micros == 0 {
            return DateTime {
                date: Date { year: 0, month: 0, day: 0 },
                hour: 0,
                minute: 0,
                second: 0,
                micros: 0,
                fsp: self.fsp,
            };
        }
        let days = i64::from(self.seconds / 86_400);
        let secs = self.seconds % 86_400;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            date: Date { year: year as u16, month: month as u8, day: day as u8 },
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
            micros: self.micros,
            fsp: self.fsp,
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_utc().text().as_str())
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date: the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Bytes of fraction stored after TIME2/DATETIME2/TIMESTAMP2 for `fsp`.
pub fn fraction_len(fsp: u8) -> usize {
    usize::from(fsp).div_ceil(2)
}

/// Microseconds from the big-endian fraction bytes of a "2" type.
pub fn fraction_micros(frac: u64, fsp: u8) -> u32 {
    match fraction_len(fsp) {
        1 => (frac * 10_000) as u32,
        2 => (frac * 100) as u32,
        _ => frac as u32,
    }
}

/// DATE (3 bytes little-endian: day 5 bits, month 4 bits, year 15 bits).
pub fn date_from_u24(v: u32) -> Date {
    Date { year: (v >> 9) as u16, month: ((v >> 5) & 0xf) as u8, day: (v & 0x1f) as u8 }
}

/// DATETIME2: 5 big-endian bytes (offset 0x8000000000) plus fraction.
pub fn datetime2(int_part: u64, micros: u32, fsp: u8) -> DateTime {
    let v = int_part.wrapping_sub(0x80_0000_0000) & 0x7f_ffff_ffff;
    let ymd = v >> 17;
    let ym = ymd >> 5;
    let hms = v & 0x1_ffff;
    DateTime {
        date: Date { year: (ym / 13) as u16, month: (ym % 13) as u8, day: (ymd & 0x1f) as u8 },
        hour: (hms >> 12) as u8,
        minute: ((hms >> 6) & 0x3f) as u8,
        second: (hms & 0x3f) as u8,
        micros,
        fsp,
    }
}

/// Old DATETIME: a little-endian u64 holding YYYYMMDDhhmmss in decimal.
pub fn datetime_from_packed_decimal(v: u64) -> DateTime {
    let date = v / 1_000_000;
    let time = v % 1_000_000;
    DateTime {
        date: Date {
            year: (date / 10_000 % 10_000) as u16,
            month: (date / 100 % 100) as u8,
            day: (date % 100) as u8,
        },
        hour: (time / 10_000) as u8,
        minute: (time / 100 % 100) as u8,
        second: (time % 100) as u8,
        micros: 0,
        fsp: 0,
    }
}

/// Old TIME: a little-endian signed 24-bit HHMMSS in decimal.
pub fn time_from_packed_decimal(raw: u32) -> Time {
    // Sign-extend 24 bits.
    let v = ((raw << 8) as i32) >> 8;
    let negative = v < 0;
    let a = v.unsigned_abs();
    Time {
        negative,
        hours: a / 10_000,
        minute: (a / 100 % 100) as u8,
        second: (a % 100) as u8,
        micros: 0,
        fsp: 0,
    }
}

/// TIME2: 3 big-endian bytes (offset 0x800000) plus a fraction whose width
/// depends on fsp; negative values borrow from the integer part, as in
/// MySQL's `my_time_packed_from_binary`.
pub fn time2(int_bytes: u32, frac: u64, fsp: u8) -> Time {
    const INT_OFS: i64 = 0x80_0000;
    let packed: i64 = match fraction_len(fsp) {
        0 => (i64::from(int_bytes) - INT_OFS) << 24,
        1 => {
            let mut int_part = i64::from(int_bytes) - INT_OFS;
            let mut f = frac as i64;
            if int_part < 0 && f != 0 {
                int_part += 1;
                f -= 0x100;
            }
            (int_part << 24) + f * 10_000
        }
        2 => {
            let mut int_part = i64::from(int_bytes) - INT_OFS;
            let mut f = frac as i64;
            if int_part < 0 && f != 0 {
                int_part += 1;
                f -= 0x1_0000;
            }
            (int_part << 24) + f * 100
        }
        _ => {
            // 6 bytes read as one big-endian number, offset 0x800000000000.
            ((i64::from(int_bytes) << 24) | frac as i64) - 0x8000_0000_0000
        }
    };
    let negative = packed < 0;
    let a = packed.unsigned_abs();
    let hms = a >> 24;
    Time {
        negative,
        hours: ((hms >> 12) % (1 << 10)) as u32,
        minute: ((hms >> 6) % 64) as u8,
        second: (hms % 64) as u8,
        micros: (a % (1 << 24)) as u32,
        fsp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_conversions() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        for days in [-719_468, -1, 0, 59, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
        let ts = Timestamp { seconds: 2_147_483_647, micros: 0, fsp: 0 };
        assert_eq!(ts.to_string(), "2038-01-19 03:14:07");
        let zero = Timestamp { seconds: 0, micros: 0, fsp: 3 };
        assert_eq!(zero.to_string(), "0000-00-00 00:00:00.000");
    }

    /// The fixed-position writers against `format!`, over every width and
    /// the out-of-range parts that take the slow path.
    /// What a `write_text` writes into a fresh buffer.
    fn written(write: impl Fn(&mut [u8; TEXT_MAX]) -> usize) -> String {
        let mut buf = [0u8; TEXT_MAX];
        let len = write(&mut buf);
        String::from_utf8(buf[..len].to_vec()).expect("ASCII")
    }

    #[test]
    fn text_matches_format() {
        let frac = |micros: u32, fsp: u8| match fsp {
            0 => String::new(),
            f => format!(".{:0w$}", micros / 10u32.pow(6 - u32::from(f)), w = usize::from(f)),
        };
        for (year, month, day) in [(0, 0, 0), (1, 2, 3), (999, 12, 31), (9999, 99, 99), (10_000, 100, 255)] {
            let date = Date { year, month, day };
            assert_eq!(date.to_string(), format!("{year:04}-{month:02}-{day:02}"));
            assert_eq!(written(|b| date.write_text(b)), date.to_string());
            for (hour, minute, second) in [(0, 0, 0), (23, 59, 59), (99, 100, 255)] {
                for fsp in 0..=6 {
                    for micros in [0, 5, 123_456, 999_999] {
                        let dt = DateTime { date, hour, minute, second, micros, fsp };
                        let want = format!("{date} {hour:02}:{minute:02}:{second:02}{}", frac(micros, fsp));
                        assert_eq!(dt.to_string(), want);
                        assert_eq!(written(|b| dt.write_text(b)), want);
                    }
                }
            }
        }
        for hours in [0, 7, 99, 100, 838, 4_000_000] {
            for fsp in 0..=6 {
                let t = Time { negative: hours == 838, hours, minute: 5, second: 9, micros: 120_034, fsp };
                let sign = if t.negative { "-" } else { "" };
                assert_eq!(t.to_string(), format!("{sign}{hours:02}:05:09{}", frac(120_034, fsp)));
                for negative in [false, true] {
                    let t = Time { negative, ..t };
                    assert_eq!(written(|b| t.write_text(b)), t.to_string());
                }
            }
        }
        assert_eq!(year_text(0).as_str(), "0000");
        assert_eq!(year_text(2155).as_str(), "2155");
    }

    #[test]
    fn fractions_follow_fsp() {
        let t = Time { negative: true, hours: 0, minute: 0, second: 1, micros: 500_000, fsp: 1 };
        assert_eq!(t.to_string(), "-00:00:01.5");
        let t = Time { negative: false, hours: 838, minute: 59, second: 59, micros: 0, fsp: 6 };
        assert_eq!(t.to_string(), "838:59:59.000000");
    }

    #[test]
    fn time2_negative_with_fraction() {
        // -00:00:01.5 with fsp 1: MySQL stores int part -2 (borrowed) and
        // fraction 0x100 - 50.
        let int_bytes = (0x80_0000i64 - 2) as u32;
        let t = time2(int_bytes, 256 - 50, 1);
        assert!(t.negative);
        assert_eq!((t.hours, t.minute, t.second, t.micros), (0, 0, 1, 500_000));
    }

    #[test]
    fn old_formats() {
        let d = datetime_from_packed_decimal(20_240_131_235_959);
        assert_eq!(d.to_string(), "2024-01-31 23:59:59");
        let t = time_from_packed_decimal(((-8_385_959i32) as u32) & 0xff_ffff);
        assert_eq!(t.to_string(), "-838:59:59");
        assert_eq!(date_from_u24((2024 << 9) | (2 << 5) | 29).to_string(), "2024-02-29");
    }
}
