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
        // The bytes with the sign bit flipped back and, when negative,
        // every byte inverted: then each group is a plain big-endian number.
        let mask = if self.negative() { 0xff } else { 0 };
        let mut raw = [0u8; 32];
        for (d, &b) in raw.iter_mut().zip(self.raw) {
            *d = b ^ mask;
        }
        raw[0] ^= 0x80;
        let intg = usize::from(self.precision - self.scale);
        let frac = usize::from(self.scale);
        let mut pos = 0usize;
        let mut read = |n: usize| -> u32 {
            let v = raw[pos..pos + n].iter().fold(0u32, |v, &b| (v << 8) | u32::from(b));
            pos += n;
            v
        };
        let lead = intg % DIGITS_PER_WORD;
        if lead > 0 {
            f(read(DIG2BYTES[lead]), lead, false);
        }
        for _ in 0..intg / DIGITS_PER_WORD {
            f(read(4), DIGITS_PER_WORD, false);
        }
        for _ in 0..frac / DIGITS_PER_WORD {
            f(read(4), DIGITS_PER_WORD, true);
        }
        let tail = frac % DIGITS_PER_WORD;
        if tail > 0 {
            f(read(DIG2BYTES[tail]), tail, true);
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
        // After a byte for the sign: at most 65 digits, a "0" when there
        // are no integer digits, and a point. Leading zero groups of the
        // integer part are skipped, not written and stripped.
        let mut text = [b'0'; 72];
        let mut len = 1;
        let mut int_started = false;
        let mut frac_started = false;
        let mut nonzero = false;
        self.groups(|value, digits, is_frac| {
            // Values above the group's width are impossible from a server;
            // they are printed modulo the width rather than panicking.
            let value = if value < POW10[digits] { value } else { value % POW10[digits] };
            nonzero |= value != 0;
            if is_frac && !frac_started {
                frac_started = true;
                if !int_started {
                    int_started = true;
                    len += 1; // the "0" already there
                }
                text[len] = b'.';
                len += 1;
            }
            let width = if int_started {
                digits
            } else if value == 0 {
                return;
            } else {
                int_started = true;
                value.ilog10() as usize + 1
            };
            write_digits(&mut text[len..len + width], value);
            len += width;
        });
        if !int_started {
            len += 1; // zero: the "0" already there
        }
        let start = if self.negative() && nonzero {
            text[0] = b'-';
            0
        } else {
            1
        };
        f(&text[start..len])
    }
}

/// 10^n for the digits a group can have.
const POW10: [u32; 10] =
    [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

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

    /// The text as first written (every group zero-padded, then the
    /// leading zeros stripped), to check the faster one against.
    fn reference_text(d: &Decimal<'_>) -> String {
        let mut int = String::new();
        let mut frac = String::new();
        d.groups(|value, digits, is_frac| {
            let digits_text = format!("{:0digits$}", value % POW10[digits]);
            if is_frac {
                frac.push_str(&digits_text);
            } else {
                int.push_str(&digits_text);
            }
        });
        let int = match int.trim_start_matches('0') {
            "" => "0",
            t => t,
        };
        let zero = int == "0" && frac.bytes().all(|b| b == b'0');
        let sign = if d.negative() && !zero { "-" } else { "" };
        match frac.is_empty() {
            true => format!("{sign}{int}"),
            false => format!("{sign}{int}.{frac}"),
        }
    }

    #[test]
    fn text_matches_the_reference_for_every_shape() {
        // A small xorshift: deterministic bytes, zero runs mixed in.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for precision in 1..=65u8 {
            for scale in 0..=precision.min(30) {
                let len = decimal_len(precision, scale).expect("valid");
                for round in 0..40 {
                    let raw: Vec<u8> = (0..len)
                        .map(|i| match (round % 4, next()) {
                            (0, _) => 0x80 * u8::from(i == 0),
                            (1, r) if r % 3 == 0 => 0,
                            (_, r) => r as u8,
                        })
                        .collect();
                    let d = Decimal::new(&raw, precision, scale).expect("length");
                    assert_eq!(d.to_string(), reference_text(&d), "{raw:02x?} ({precision},{scale})");
                }
            }
        }
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
