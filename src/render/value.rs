//! How a row value is shown: the one place that decides text versus hex,
//! ENUM names versus numbers, and the SELECT-style form of temporal values.
//! The three output formats differ only in quoting.

use std::borrow::Cow;

use gapless_decoder::charset::{charset_of, to_utf8, Charset};
use gapless_decoder::events::Column;
use gapless_decoder::values::json;
use gapless_decoder::{ColumnType, Value};

/// A value reduced to what an output format needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown<'v> {
    /// SQL NULL.
    Null,
    /// A number, printed as is (integers, FLOAT, DOUBLE).
    Number(String),
    /// DECIMAL: a number in SQL and text, a string in JSON (exact digits).
    Decimal(String),
    /// Text (strings, temporal values, ENUM/SET names).
    Text(Cow<'v, str>),
    /// Bytes, shown as lowercase hex.
    Bytes(Cow<'v, [u8]>),
    /// A JSON document as JSON text.
    Json(String),
    /// A partial JSON update, as the SQL expression that applies it.
    JsonDiff(String),
}

/// Lowercase hex of `bytes`, appended to `out`.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
}

fn text_or_bytes<'v>(bytes: &'v [u8], col: &Column, pad_to: Option<usize>) -> Shown<'v> {
    let charset = col.collation.map(charset_of);
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

/// The shortest text that reads back to the same value; exponent notation
/// for very large and very small magnitudes, as SELECT prints them, so the
/// text stays short and every JSON parser reads it. (MySQL cannot store
/// NaN or infinity; should one appear it is printed as `null`.)
fn float_text<T: std::fmt::Display + std::fmt::LowerExp>(v: T, magnitude: f64) -> String {
    let a = magnitude.abs();
    if !a.is_finite() {
        "null".to_owned()
    } else if a == 0.0 || (1e-5..1e15).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Reduces a value of column `col` to what the formats print.
pub fn show<'v>(value: &Value<'v>, col: &Column) -> Shown<'v> {
    match *value {
        Value::Null => Shown::Null,
        Value::Int(v) => Shown::Number(v.to_string()),
        Value::UInt(v) => Shown::Number(v.to_string()),
        // FLOAT from its f32, so 1.1 stays 1.1.
        Value::Float(v) => Shown::Number(float_text(v, f64::from(v))),
        Value::Double(v) => Shown::Number(float_text(v, v)),
        Value::Decimal(d) => Shown::Decimal(d.to_string()),
        Value::Year(y) => Shown::Text(Cow::Owned(format!("{y:04}"))),
        Value::Date(d) => Shown::Text(Cow::Owned(d.to_string())),
        Value::Time(t) => Shown::Text(Cow::Owned(t.to_string())),
        Value::DateTime(t) => Shown::Text(Cow::Owned(t.to_string())),
        Value::Timestamp(t) => Shown::Text(Cow::Owned(t.to_string())),
        Value::Bit(b) => Shown::Bytes(Cow::Borrowed(b)),
        Value::Enum(i) => match &col.enum_values {
            // Index 0 is the empty string MySQL stores for invalid values.
            Some(_) if i == 0 => Shown::Text(Cow::Borrowed("")),
            Some(names) => match names.get(usize::from(i) - 1) {
                Some(n) => Shown::Text(Cow::Owned(n.clone())),
                None => Shown::Number(i.to_string()),
            },
            None => Shown::Number(i.to_string()),
        },
        Value::Set(bits) => match &col.set_values {
            Some(names) => {
                let mut s = String::new();
                for (i, n) in names.iter().enumerate().take(64) {
                    if bits & (1u64 << i) != 0 {
                        if !s.is_empty() {
                            s.push(',');
                        }
                        s.push_str(n);
                    }
                }
                Shown::Text(Cow::Owned(s))
            }
            None => Shown::Number(bits.to_string()),
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
