//! MySQL's binary DECIMAL (NEWDECIMAL) format.
//!
//! A DECIMAL(P,S) is stored as groups of nine decimal digits in 4 big-endian
//! bytes, with the leftover digits of the integer part at the front and those
//! of the fraction at the back, packed into the fewest bytes that hold them.
//! The top bit of the first byte is the sign (set = positive); negative
//! numbers have every byte inverted.

use std::fmt;

use super::write_digits;

/// Bytes needed for 0..=9 leftover digits.
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const DIGITS_PER_WORD: usize = 9;

/// A DECIMAL value as stored, formatted on demand exactly as `SELECT` prints
/// it: no leading zeros, exactly `scale` fraction digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Decimal<'a> {
    raw: &'a [u8],
    precision: u8,
    scale: u8,
}

/// Bytes a DECIMAL(precision, scale) takes, or `None` for an impossible
/// precision/scale pair.
pub fn decimal_len(precision: u8, scale: u8) -> Option<usize> {
    if scale > precision || precision > 65 || scale > 30 || precision == 0 {
        return None;
    }
    let intg = usize::from(precision - scale);
    let frac = usize::from(scale);
    Some(
        (intg / DIGITS_PER_WORD) * 4
            + DIG2BYTES[intg % DIGITS_PER_WORD]
            + (frac / DIGITS_PER_WORD) * 4
            + DIG2BYTES[frac % DIGITS_PER_WORD],
    )
}

impl<'a> Decimal<'a> {
    /// Wraps stored bytes; `raw.len()` must equal `decimal_len(precision, scale)`.
    pub fn new(raw: &'a [u8], precision: u8, scale: u8) -> Option<Self> {
        (decimal_len(precision, scale)? == raw.len()).then_some(Decimal { raw, precision, scale })
    }

    /// The stored bytes.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Declared precision.
    pub fn precision(&self) -> u8 {
        self.precision
    }

    /// Declared scale.
    pub fn scale(&self) -> u8 {
        self.scale
    }

    fn negative(&self) -> bool {
        self.raw.first().is_some_and(|b| b & 0x80 == 0)
    }

    /// Visits the digit groups: (value, digits-in-group, is-fraction).
    fn groups(&self, mut f: impl FnMut(u32, usize, bool)) {
        let mask = if self.negative() { 0xff } else { 0 };
        let intg = usize::from(self.precision - self.scale);
        let frac = usize::from(self.scale);
        let mut pos = 0usize;
        let mut read = |n: usize, first: bool| -> u32 {
            let mut v = 0u32;
            for i in 0..n {
                let mut b = self.raw[pos + i] ^ mask;
                if first && pos + i == 0 {
                    b ^= 0x80;
                }
                v = (v << 8) | u32::from(b);
            }
            pos += n;
            v
        };
        let lead = intg % DIGITS_PER_WORD;
        if lead > 0 {
            f(read(DIG2BYTES[lead], true), lead, false);
        }
        for _ in 0..intg / DIGITS_PER_WORD {
            f(read(4, true), DIGITS_PER_WORD, false);
        }
        for _ in 0..frac / DIGITS_PER_WORD {
            f(read(4, true), DIGITS_PER_WORD, true);
        }
        let tail = frac % DIGITS_PER_WORD;
        if tail > 0 {
            f(read(DIG2BYTES[tail], true), tail, true);
        }
    }
}

impl Decimal<'_> {
    /// Calls `f` with the value's text, built on the stack: at most 65
    /// digits, a sign and a point.
    pub fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        // Only ASCII digits, '-' and '.' are written.
        self.with_ascii(|b| f(std::str::from_utf8(b).unwrap_or_default()))
    }

    /// Like [`Decimal::with_text`], as bytes (ASCII).
    pub fn with_ascii<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        // Digits are written in place from index 2; the two bytes before
        // leave room for a "0" (no integer digits) and a sign. At most 65
        // digits and a point follow.
        let mut text = [b'0'; 72];
        let mut len = 2;
        let mut frac_start = None;
        self.groups(|value, digits, is_frac| {
            if is_frac && frac_start.is_none() {
                text[len] = b'.';
                len += 1;
                frac_start = Some(len);
            }
            // Values above the group's width are impossible from a server;
            // they are printed modulo the width rather than panicking.
            write_digits(&mut text[len..len + digits], value);
            len += digits;
        });
        let int_end = frac_start.map_or(len, |f| f - 1);
        let mut start = text[2..int_end].iter().position(|&d| d != b'0').map_or(int_end, |p| p + 2);
        let int_zero = start == int_end;
        if int_zero {
            start -= 1;
            text[start] = b'0';
        }
        let frac_zero = match frac_start {
            Some(f) => text[f..len].iter().all(|&d| d == b'0'),
            None => true,
        };
        if self.negative() && !(int_zero && frac_zero) {
            start -= 1;
            text[start] = b'-';
        }
        f(&text[start..len])
    }
}

impl fmt::Display for Decimal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|s| f.write_str(s))
    }
}

impl fmt::Debug for Decimal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(raw: &[u8], p: u8, s: u8) -> String {
        Decimal::new(raw, p, s).expect("length").to_string()
    }

    #[test]
    fn lengths() {
        assert_eq!(decimal_len(10, 2), Some(5));
        assert_eq!(decimal_len(65, 30), Some(30));
        assert_eq!(decimal_len(5, 0), Some(3));
        assert_eq!(decimal_len(3, 4), None);
        assert_eq!(decimal_len(66, 0), None);
    }

    #[test]
    fn documented_example() {
        // 1234567890.1234 as DECIMAL(14,4), the example in MySQL's decimal.c.
        let raw = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert_eq!(show(&raw, 14, 4), "1234567890.1234");
        let neg: Vec<u8> = raw.iter().map(|b| b ^ 0xff).collect();
        assert_eq!(show(&neg, 14, 4), "-1234567890.1234");
    }

    #[test]
    fn zero_and_small() {
        // DECIMAL(10,2) 0.00: intg 8 -> 4 bytes, frac 2 -> 1 byte.
        assert_eq!(show(&[0x80, 0, 0, 0, 0], 10, 2), "0.00");
        assert_eq!(show(&[0x80, 0, 0, 0, 5], 10, 2), "0.05");
        // -1.50 = invert(0x80 00 00 01 32)
        let neg: Vec<u8> = [0x80u8, 0, 0, 1, 50].iter().map(|b| b ^ 0xff).collect();
        assert_eq!(show(&neg, 10, 2), "-1.50");
        // DECIMAL(5,0) 123
        assert_eq!(show(&[0x80, 0, 123], 5, 0), "123");
    }
}
