//! MySQL's binary DECIMAL (NEWDECIMAL) format.
//!
//! A DECIMAL(P,S) is stored as groups of nine decimal digits in 4 big-endian
//! bytes, with the leftover digits of the integer part at the front and those
//! of the fraction at the back, packed into the fewest bytes that hold them.
//! The top bit of the first byte is the sign (set = positive); negative
//! numbers have every byte inverted.

use std::fmt;

use super::{digit_pair as pair, write_digits};

/// Bytes a group of 0..=9 digits takes.
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
        let mut text = [0u8; TEXT_MAX];
        let len = self.write_ascii(&mut text);
        f(&text[..len])
    }

    /// Writes the text into `buf` and returns its length: at most 65
    /// digits, a sign, a "0" when there are no integer digits, and a point.
    pub fn write_ascii(&self, text: &mut [u8; TEXT_MAX]) -> usize {
        // Leading zero groups of the integer part are skipped, not written
        // and stripped. The sign goes first; a negative zero loses it at
        // the end.
        let negative = self.negative();
        let mut words = Words::new(self.raw, negative);
        let intg = usize::from(self.precision - self.scale);
        let frac = usize::from(self.scale);
        text[0] = b'-';
        let mut len = usize::from(negative);
        let mut nonzero = 0;
        // The integer part: the leftover digits, then whole groups; the
        // first group that is not zero is written without its zeros.
        let mut started = false;
        let lead = intg % DIGITS_PER_WORD;
        let mut groups = (lead > 0).then_some(lead).into_iter().chain(std::iter::repeat_n(9, intg / 9));
        for digits in &mut groups {
            let value = words.next(digits);
            nonzero |= value;
            if value != 0 {
                let width = value.ilog10() as usize + 1;
                write_digits(&mut text[len..len + width], value);
                len += width;
                started = true;
                break;
            }
        }
        if started {
            for digits in groups {
                let value = words.next(digits);
                nonzero |= value;
                write_group(&mut text[len..], value, digits);
                len += digits;
            }
        } else {
            text[len] = b'0';
            len += 1;
        }
        if frac > 0 {
            text[len] = b'.';
            len += 1;
            for _ in 0..frac / DIGITS_PER_WORD {
                let value = words.next(DIGITS_PER_WORD);
                nonzero |= value;
                write_group(&mut text[len..], value, DIGITS_PER_WORD);
                len += DIGITS_PER_WORD;
            }
            let tail = frac % DIGITS_PER_WORD;
            if tail > 0 {
                let value = words.next(tail);
                nonzero |= value;
                write_digits(&mut text[len..len + tail], value);
                len += tail;
            }
        }
        if negative && nonzero == 0 {
            text.copy_within(1..len, 0);
            len -= 1;
        }
        len
    }
}

/// Reads the digit groups of a DECIMAL in order, as values below the
/// group's power of ten.
struct Words<'a> {
    raw: &'a [u8],
    pos: usize,
    /// Negative numbers have every byte inverted; the first byte's top bit
    /// is the sign.
    mask: u32,
    sign: bool,
}

impl<'a> Words<'a> {
    fn new(raw: &'a [u8], negative: bool) -> Self {
        Words { raw, pos: 0, mask: if negative { u32::MAX } else { 0 }, sign: true }
    }

    /// The next group of `digits` digits. Values above the group's width
    /// are impossible from a server; they are taken modulo the width
    /// rather than panicking.
    #[inline(always)]
    fn next(&mut self, digits: usize) -> u32 {
        let n = DIG2BYTES[digits];
        let stored = match self.raw.get(self.pos..self.pos + 4) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) >> (32 - 8 * n),
            _ => self
                .raw
                .get(self.pos..self.pos + n)
                .unwrap_or_default()
                .iter()
                .fold(0u32, |v, &b| (v << 8) | u32::from(b)),
        };
        let mut value = (stored ^ self.mask) & (u32::MAX >> (32 - 8 * n));
        if self.sign {
            self.sign = false;
            value ^= 0x80 << (8 * (n - 1));
        }
        self.pos += n;
        if value < POW10[digits] {
            value
        } else {
            value % POW10[digits]
        }
    }
}

/// Writes a group of `digits` digits (nine, or fewer for the integer
/// part's leftover) zero-padded at the start of `out`.
#[inline(always)]
fn write_group(out: &mut [u8], value: u32, digits: usize) {
    if digits == DIGITS_PER_WORD {
        if let Some(nine) = out.get_mut(..DIGITS_PER_WORD) {
            if value == 0 {
                nine.copy_from_slice(b"000000000");
            } else {
                write_nine(nine, value);
            }
        }
    } else if let Some(part) = out.get_mut(..digits) {
        write_digits(part, value);
    }
}

/// Longest text of a DECIMAL: 65 digits, a sign, a leading "0" and a point
/// (rounded up).
pub const TEXT_MAX: usize = 72;

/// Writes `v` (below 10^9) as nine digits: one, then four pairs.
#[inline]
fn write_nine(out: &mut [u8], v: u32) {
    let (top, rest) = (v / 100_000_000, v % 100_000_000);
    let (hi, lo) = (rest / 10_000, rest % 10_000);
    let ([a, b], [c, d], [e, g], [h, i]) = (pair(hi / 100), pair(hi % 100), pair(lo / 100), pair(lo % 100));
    out.copy_from_slice(&[b'0' + (top % 10) as u8, a, b, c, d, e, g, h, i]);
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
        // The bytes as a positive number with the sign bit cleared, read
        // group by group a byte at a time.
        let mut bytes = d.raw().to_vec();
        if d.negative() {
            bytes.iter_mut().for_each(|b| *b ^= 0xff);
        }
        bytes[0] ^= 0x80;
        let (intg, scale) = (usize::from(d.precision() - d.scale()), usize::from(d.scale()));
        let mut groups = Vec::new();
        if intg % 9 > 0 {
            groups.push((intg % 9, false));
        }
        groups.extend(std::iter::repeat_n((9, false), intg / 9));
        groups.extend(std::iter::repeat_n((9, true), scale / 9));
        if scale % 9 > 0 {
            groups.push((scale % 9, true));
        }
        let mut pos = 0;
        for (digits, is_frac) in groups {
            let n = DIG2BYTES[digits];
            let value = bytes[pos..pos + n].iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
            pos += n;
            let digits_text = format!("{:0digits$}", value % 10u64.pow(digits as u32));
            if is_frac {
                frac.push_str(&digits_text);
            } else {
                int.push_str(&digits_text);
            }
        }
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
        // A negative zero prints without its sign.
        assert_eq!(show(&[0x7f, 0xff, 0xff, 0xff, 0xff], 10, 2), "0.00");
        assert_eq!(show(&[0x7f, 0xff, 0xff], 5, 0), "0");
        assert_eq!(show(&[0x7f, 0xff, 0xff, 0xfa], 7, 0), "-5");
        // -1.50 = invert(0x80 00 00 01 32)
        let neg: Vec<u8> = [0x80u8, 0, 0, 1, 50].iter().map(|b| b ^ 0xff).collect();
        assert_eq!(show(&neg, 10, 2), "-1.50");
        // DECIMAL(5,0) 123
        assert_eq!(show(&[0x80, 0, 123], 5, 0), "123");
    }
}
