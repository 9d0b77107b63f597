//! How a row value is shown: the one place that decides text versus hex,
//! ENUM names versus numbers, and the SELECT-style form of temporal values.
//! The three output formats differ only in quoting.

use std::borrow::Cow;

use gapless_decoder::charset::{to_utf8, Charset};
use std::fmt;

use gapless_decoder::events::Column;
use gapless_decoder::values::temporal::{write_year, year_text, Ascii, TEXT_MAX};
use gapless_decoder::values::{json, Date, DateTime, Decimal, Time, Timestamp};
use gapless_decoder::{ColumnType, Value};

/// A value reduced to what an output format needs to know. Nothing here
/// allocates for the common types: numbers, decimals and temporal values
/// are written straight into the output line.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown<'v> {
    /// SQL NULL.
    Null,
    /// A number, printed bare in every format (integers, FLOAT, DOUBLE).
    Number(Number),
    /// DECIMAL: a number in SQL and text, a string in JSON (exact digits).
    Decimal(Decimal<'v>),
    /// A temporal value, as SELECT prints it (quoted in every format).
    Temporal(Temporal),
    /// Text (strings, ENUM/SET names).
    Text(Cow<'v, str>),
    /// Bytes, shown as lowercase hex.
    Bytes(Cow<'v, [u8]>),
    /// A JSON document as JSON text.
    Json(String),
    /// A partial JSON update, as the SQL expression that applies it.
    JsonDiff(String),
}

/// A number column's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
}

impl Number {
    /// Calls `f` with the number's text.
    pub fn with_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Number::Int(v) => f(itoa::Buffer::new().format(v)),
            Number::UInt(v) => f(itoa::Buffer::new().format(v)),
            // FLOAT from its f32, so 1.1 stays 1.1.
            Number::Float(v) => float_text(v, f64::from(v), f),
            Number::Double(v) => float_text(v, v, f),
        }
    }

    /// Appends the number's text.
    pub fn push(self, out: &mut String) {
        self.with_text(|t| out.push_str(t));
    }
}

/// DATE, TIME, DATETIME, TIMESTAMP (UTC) or YEAR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Temporal {
    /// YEAR, four digits (0000 for the zero year).
    Year(u16),
    /// DATE.
    Date(Date),
    /// TIME.
    Time(Time),
    /// DATETIME.
    DateTime(DateTime),
    /// TIMESTAMP, printed in UTC.
    Timestamp(Timestamp),
}

impl Temporal {
    /// The temporal value `value` holds, if it holds one.
    #[inline]
    pub fn of(value: &Value<'_>) -> Option<Temporal> {
        Some(match *value {
            Value::Year(y) => Temporal::Year(y),
            Value::Date(d) => Temporal::Date(d),
            Value::Time(t) => Temporal::Time(t),
            Value::DateTime(t) => Temporal::DateTime(t),
            Value::Timestamp(t) => Temporal::Timestamp(t),
            _ => return None,
        })
    }

    /// The text SELECT prints.
    pub fn text(&self) -> Ascii {
        match self {
            Temporal::Year(y) => year_text(*y),
            Temporal::Date(d) => d.text(),
            Temporal::Time(t) => t.text(),
            Temporal::DateTime(t) => t.text(),
            Temporal::Timestamp(t) => t.to_utc().text(),
        }
    }

    /// Writes the text into `buf` and returns its length.
    pub fn write_text(&self, buf: &mut [u8; TEXT_MAX]) -> usize {
        match self {
            Temporal::Year(y) => write_year(*y, buf),
            Temporal::Date(d) => d.write_text(buf),
            Temporal::Time(t) => t.write_text(buf),
            Temporal::DateTime(t) => t.write_text(buf),
            Temporal::Timestamp(t) => t.to_utc().write_text(buf),
        }
    }
}

impl fmt::Display for Temporal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// Appends a DECIMAL's digits.
pub fn push_decimal(out: &mut String, d: &Decimal<'_>) {
    d.with_text(|s| out.push_str(s));
}

/// Appends a temporal value's text.
pub fn push_temporal(out: &mut String, t: &Temporal) {
    out.push_str(t.text().as_str());
}

/// The two lowercase hex digits of every byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// Calls `f` with the lowercase hex of `bytes`, 64 input bytes at a time.
pub fn hex_chunks(bytes: &[u8], mut f: impl FnMut(&[u8])) {
    let mut buf = [0u8; 128];
    for chunk in bytes.chunks(64) {
        for (pair, &b) in buf.chunks_exact_mut(2).zip(chunk) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
        }
        f(&buf[..chunk.len() * 2]);
    }
}

/// Appends the lowercase hex of `bytes` to a byte buffer: sixteen bytes at
/// a time with SSE2, then eight at a time into a block copied whole, the
/// rest a pair at a time.
pub fn extend_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        out.extend_from_slice(&hex16(block.try_into().expect("16 bytes")));
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for word in &mut words {
        let mut block = [0u8; 16];
        for (pair, &b) in block.chunks_exact_mut(2).zip(word) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
        }
        out.extend_from_slice(&block);
    }
    for &b in words.remainder() {
        out.extend_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
}

/// The hex of sixteen bytes: their nibbles interleaved high first, each
/// turned into '0'..'9' or 'a'..'f' sixteen at a time.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn hex16(bytes: &[u8; 16]) -> [u8; 32] {
    use std::arch::x86_64::*;
    let mut hex = [0u8; 32];
    // SAFETY: SSE2 is part of every x86_64 CPU (the intrinsics only need it
    // enabled); the load reads exactly the 16 bytes `bytes` borrows and the
    // two stores write exactly the 32 bytes of `hex`, all unaligned.
    unsafe {
        let v = _mm_loadu_si128(bytes.as_ptr().cast());
        let low_nibble = _mm_set1_epi8(0x0f);
        let high = _mm_and_si128(_mm_srli_epi16(v, 4), low_nibble);
        let low = _mm_and_si128(v, low_nibble);
        // '0' + n, and 'a' - '0' - 10 more where n > 9.
        let ascii = |n: __m128i| {
            let letter = _mm_and_si128(_mm_cmpgt_epi8(n, _mm_set1_epi8(9)), _mm_set1_epi8(39));
            _mm_add_epi8(_mm_add_epi8(n, _mm_set1_epi8(b'0' as i8)), letter)
        };
        _mm_storeu_si128(hex.as_mut_ptr().cast(), ascii(_mm_unpacklo_epi8(high, low)));
        _mm_storeu_si128(hex.as_mut_ptr().add(16).cast(), ascii(_mm_unpackhi_epi8(high, low)));
    }
    hex
}

/// The same, a byte at a time, where SSE2 is not there.
#[cfg(not(target_arch = "x86_64"))]
fn hex16(bytes: &[u8; 16]) -> [u8; 32] {
    let mut hex = [0u8; 32];
    for (pair, &b) in hex.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
    hex
}

/// Lowercase hex of `bytes`, appended to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    // Hex digits are ASCII.
    hex_chunks(bytes, |h| out.push_str(std::str::from_utf8(h).unwrap_or_default()));
}

fn text_or_bytes<'v>(bytes: &'v [u8], col: &Column, pad_to: Option<usize>) -> Shown<'v> {
    let charset = col.charset;
    match charset {
        Some(Charset::Binary) => {
            // BINARY(n) comes without its trailing zero bytes; SELECT shows them.
            match pad_to {
                Some(n) if n > bytes.len() => {
                    let mut padded = bytes.to_vec();
                    padded.resize(n, 0);
                    Shown::Bytes(Cow::Owned(padded))
                }
                _ => Shown::Bytes(Cow::Borrowed(bytes)),
            }
        }
        Some(cs) => match to_utf8(bytes, cs) {
            Some(s) => Shown::Text(s),
            None => Shown::Bytes(Cow::Borrowed(bytes)),
        },
        // No metadata: text when it is valid UTF-8, hex otherwise.
        None => match std::str::from_utf8(bytes) {
            Ok(s) => Shown::Text(Cow::Borrowed(s)),
            Err(_) => Shown::Bytes(Cow::Borrowed(bytes)),
        },
    }
}

/// The shortest text that reads back to the same value (zmij), in exponent
/// notation for very large and very small magnitudes as SELECT prints them
/// (`1e20`, `1.5e-7`), so the text stays short and every JSON parser reads
/// it. MySQL cannot store NaN or infinity; should one appear it is printed
/// as `null`.
fn float_text<T: zmij::Float, R>(v: T, magnitude: f64, f: impl FnOnce(&str) -> R) -> R {
    if !magnitude.is_finite() {
        return f("null");
    }
    let mut buf = zmij::Buffer::new();
    let text = buf.format_finite(v);
    // zmij writes a positive exponent as "e+20" (from 1e15 up); SELECT
    // writes "e20".
    let plus = if magnitude.abs() >= 1e9 { text.bytes().position(|b| b == b'+') } else { None };
    if let Some((mantissa, exponent)) =
        plus.and_then(|p| Some((text[..p].strip_suffix('e')?, &text[p + 1..])))
    {
        let mut short = [0u8; 32];
        let len = mantissa.len() + 1 + exponent.len();
        if let Some(out) = short.get_mut(..len) {
            out[..mantissa.len()].copy_from_slice(mantissa.as_bytes());
            out[mantissa.len()] = b'e';
            out[mantissa.len() + 1..].copy_from_slice(exponent.as_bytes());
            return f(std::str::from_utf8(out).unwrap_or(text));
        }
    }
    // Integral values come as "1.0"; SELECT and JSON readers are happy
    // with "1".
    f(text.strip_suffix(".0").unwrap_or(text))
}

/// The name of ENUM value `i`; `None` (shown as the number) when the table
/// map has no names or none for `i`.
#[inline]
pub fn enum_name(i: u16, col: &Column) -> Option<&str> {
    match (&col.enum_values, i) {
        // Index 0 is the empty string MySQL stores for invalid values.
        (Some(_), 0) => Some(""),
        (Some(names), i) => names.get(usize::from(i) - 1).map(String::as_str),
        (None, _) => None,
    }
}

/// The names of the members a SET value holds, in order.
#[inline]
pub fn set_names(bits: u64, names: &[String]) -> impl Iterator<Item = &str> {
    names.iter().take(64).enumerate().filter(move |(i, _)| bits & (1u64 << i) != 0).map(|(_, n)| n.as_str())
}

/// Reduces a value of column `col` to what the formats print.
pub fn show<'v>(value: &Value<'v>, col: &'v Column) -> Shown<'v> {
    match *value {
        Value::Null => Shown::Null,
        Value::Int(v) => Shown::Number(Number::Int(v)),
        Value::UInt(v) => Shown::Number(Number::UInt(v)),
        Value::Float(v) => Shown::Number(Number::Float(v)),
        Value::Double(v) => Shown::Number(Number::Double(v)),
        Value::Decimal(d) => Shown::Decimal(d),
        Value::Year(_) | Value::Date(_) | Value::Time(_) | Value::DateTime(_) | Value::Timestamp(_) => {
            Temporal::of(value).map_or(Shown::Null, Shown::Temporal)
        }
        Value::Bit(b) => Shown::Bytes(Cow::Borrowed(b)),
        Value::Enum(i) => match enum_name(i, col) {
            Some(n) => Shown::Text(Cow::Borrowed(n)),
            None => Shown::Number(Number::UInt(u64::from(i))),
        },
        Value::Set(bits) => match &col.set_values {
            Some(names) => {
                let mut s = String::new();
                for n in set_names(bits, names) {
                    if !s.is_empty() {
                        s.push(',');
                    }
                    s.push_str(n);
                }
                Shown::Text(Cow::Owned(s))
            }
            None => Shown::Number(Number::UInt(bits)),
        },
        Value::String(b) => {
            let pad = (col.real_type == ColumnType::STRING).then(|| match col.storage {
                gapless_decoder::values::Storage::String { max_len, .. } => usize::from(max_len),
                _ => 0,
            });
            text_or_bytes(b, col, pad)
        }
        Value::Blob(b) => text_or_bytes(b, col, None),
        Value::Json(b) => {
            let mut s = String::new();
            match json::write_json(b, &mut s) {
                Ok(()) => Shown::Json(s),
                Err(_) => Shown::Bytes(Cow::Borrowed(b)),
            }
        }
        Value::JsonDiff(b) => {
            let mut s = String::new();
            let name = col.name.as_deref().unwrap_or("?");
            match json::parse_diffs(b).and_then(|d| json::write_diff_expression(&d, name, &mut s)) {
                Ok(()) => Shown::JsonDiff(s),
                Err(_) => Shown::Bytes(Cow::Borrowed(b)),
            }
        }
        Value::Geometry(b) | Value::Vector(b) => Shown::Bytes(Cow::Borrowed(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: Number) -> String {
        n.with_text(str::to_owned)
    }

    #[test]
    fn floats_print_as_select_does() {
        assert_eq!(text(Number::Double(1.0)), "1");
        assert_eq!(text(Number::Double(-0.0)), "-0");
        assert_eq!(text(Number::Double(1572684.4239797024)), "1572684.4239797024");
        assert_eq!(text(Number::Double(1e20)), "1e20");
        assert_eq!(text(Number::Double(-1.2345e300)), "-1.2345e300");
        assert_eq!(text(Number::Double(1.5e-7)), "1.5e-7");
        assert_eq!(text(Number::Double(f64::MAX)), "1.7976931348623157e308");
        assert_eq!(text(Number::Double(f64::NAN)), "null");
        // FLOAT from its f32: 1.1 stays 1.1, not 1.100000023841858.
        assert_eq!(text(Number::Float(1.1)), "1.1");
        assert_eq!(text(Number::Float(3.4028235e38)), "3.4028235e38");
        assert_eq!(text(Number::Float(f32::INFINITY)), "null");
    }

    #[test]
    fn hex_matches_format_for_every_byte_and_length() {
        let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in (0..40).chain([255, 256, 257, 512]) {
            let input = &bytes[..len];
            let expected: String = input.iter().map(|b| format!("{b:02x}")).collect();
            let mut out = b"x".to_vec();
            extend_hex(&mut out, input);
            assert_eq!(&out[1..], expected.as_bytes(), "{len} bytes");
            let mut text = String::new();
            push_hex(&mut text, input);
            assert_eq!(text, expected);
        }
    }
}
