//! MySQL's binary JSON (JSONB) and the JSON diffs of PARTIAL_UPDATE_ROWS.
//!
//! A JSON column value is one type byte followed by that type's payload:
//!
//! ```text
//! 0x00/0x01 small/large object   0x04 literal (0 null, 1 true, 2 false)
//! 0x02/0x03 small/large array    0x05..0x0a int16 uint16 int32 uint32 int64 uint64
//! 0x0b double (8 bytes LE)       0x0c string: varlen length + UTF-8 bytes
//! 0x0f opaque: field type byte + varlen length + bytes (DECIMAL, DATE, TIME, ...)
//!
//! object/array: count | size | key entries (objects) | value entries | keys | values
//!   count, size and every offset: 2 bytes (small) or 4 bytes (large), little-endian,
//!   offsets relative to the first byte after the container's type byte;
//!   key entry   = offset | length (2 bytes);
//!   value entry = type | offset, or the value itself for literals and 16-bit ints
//!                 (and 32-bit ints in the large format), which are "inlined".
//! varlen: 7 bits per byte, least significant first, high bit = another byte follows.
//! ```
//!
//! The renderer prints what MySQL's `SELECT` prints (`Json_wrapper::to_string`),
//! and the diff renderer what `mysqlbinlog -v` prints for a partial update.
//! Input is hostile: every read is bounds-checked, nesting is capped at
//! [`MAX_DEPTH`], and values that share bytes (which MySQL never writes, and
//! which could make the output exponentially larger than the input) are
//! rejected.

use std::fmt::{Display, Write as _};

use super::decimal::Decimal;
use super::temporal::{Date, DateTime, Time};

/// Maximum nesting depth accepted (MySQL's own limit is 100).
pub const MAX_DEPTH: usize = 100;

/// What `mysqlbinlog -v` puts between the lines of a multi-line diff
/// expression (its row output is commented out with `###`).
pub const MYSQLBINLOG_LINE_SEPARATOR: &str = "\n###      ";

const SMALL_OBJECT: u8 = 0x00;
const LARGE_OBJECT: u8 = 0x01;
const SMALL_ARRAY: u8 = 0x02;
const LARGE_ARRAY: u8 = 0x03;
const LITERAL: u8 = 0x04;
const INT16: u8 = 0x05;
const UINT16: u8 = 0x06;
const INT32: u8 = 0x07;
const UINT32: u8 = 0x08;
const INT64: u8 = 0x09;
const UINT64: u8 = 0x0a;
const DOUBLE: u8 = 0x0b;
const STRING: u8 = 0x0c;
const OPAQUE: u8 = 0x0f;

/// `enum_field_types` codes that opaque values are printed specially for.
const FIELD_TIMESTAMP: u8 = 7;
const FIELD_DATE: u8 = 10;
const FIELD_TIME: u8 = 11;
const FIELD_DATETIME: u8 = 12;
const FIELD_NEWDECIMAL: u8 = 246;
const FIELD_VAR_STRING: u8 = 253;

/// Why a binary JSON value could not be decoded; `offset` is relative to the start of the value bytes.
///
/// For [`parse_diffs`] the offset is relative to the diff bytes; for
/// [`write_diff_expression`] it is relative to the failing diff's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The input ends before the value does.
    #[error("binary JSON truncated at offset {offset}")]
    Truncated {
        /// Where the read that ran out started.
        offset: usize,
    },
    /// A type byte that is not a JSON type.
    #[error("unknown binary JSON type {type_byte:#04x} at offset {offset}")]
    BadType {
        /// Where the type byte is.
        offset: usize,
        /// The type byte.
        type_byte: u8,
    },
    /// A literal that is not null, true or false.
    #[error("unknown JSON literal {literal:#04x} at offset {offset}")]
    BadLiteral {
        /// Where the literal is.
        offset: usize,
        /// The literal byte.
        literal: u8,
    },
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {MAX_DEPTH} levels at offset {offset}")]
    TooDeep {
        /// Where the type of the first container too deep is.
        offset: usize,
    },
    /// A string or key that is not UTF-8 (MySQL stores them as utf8mb4).
    #[error("JSON string is not UTF-8 at offset {offset}")]
    BadUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// An offset or size that points outside its array or object.
    #[error("JSON offset or size out of bounds at offset {offset}")]
    BadOffset {
        /// Where the offset, size or entry is.
        offset: usize,
    },
    /// A malformed variable-length or length-encoded integer.
    #[error("malformed JSON length at offset {offset}")]
    BadLength {
        /// Where the length starts.
        offset: usize,
    },
    /// An opaque DECIMAL/DATE/TIME/DATETIME/TIMESTAMP whose bytes do not fit its type.
    #[error("malformed opaque JSON value of field type {field_type} at offset {offset}")]
    BadOpaque {
        /// Where the opaque value's data starts.
        offset: usize,
        /// The MySQL field type it claims to be.
        field_type: u8,
    },
    /// Values that share bytes: MySQL never writes them, and they would let a
    /// small input expand into an enormous rendering.
    #[error("binary JSON values overlap at offset {offset}")]
    Overlap {
        /// The entry, key or value at which more was read than the input holds.
        offset: usize,
    },
    /// A diff operation other than replace (0), insert (1) or remove (2).
    #[error("unknown JSON diff operation {op} at offset {offset}")]
    BadDiffOp {
        /// Where the operation byte is.
        offset: usize,
        /// The operation byte.
        op: u8,
    },
}

impl JsonError {
    /// Where the problem was found.
    pub fn offset(&self) -> usize {
        match *self {
            JsonError::Truncated { offset }
            | JsonError::BadType { offset, .. }
            | JsonError::BadLiteral { offset, .. }
            | JsonError::TooDeep { offset }
            | JsonError::BadUtf8 { offset }
            | JsonError::BadOffset { offset }
            | JsonError::BadLength { offset }
            | JsonError::BadOpaque { offset, .. }
            | JsonError::Overlap { offset }
            | JsonError::BadDiffOp { offset, .. } => offset,
        }
    }
}

type Result<T> = std::result::Result<T, JsonError>;

/// Renders a binary JSON value as JSON text the way MySQL's SELECT prints a JSON column.
///
/// `{"a": 1, "b": [1, 2]}`: ", " and ": " separators, keys in stored order,
/// strings escaped as MySQL escapes them, opaque DECIMAL as a number, opaque
/// DATE/TIME/DATETIME/TIMESTAMP as quoted strings with six fraction digits
/// (`"2015-01-15"`, `"23:24:25.000000"`, `"2015-01-15 23:24:25.000000"`), other
/// opaque types as `"base64:type<N>:<base64>"` (MySQL's base64, with a newline
/// every 76 characters), doubles as MySQL's `my_gcvt` prints them (`1.5`,
/// `1e300`, `100.0`). An empty input, which MySQL writes for a NULL put into a
/// NOT NULL column in non-strict mode, renders as `null`.
///
/// On error nothing is appended to `out`.
pub fn write_json(value: &[u8], out: &mut String) -> Result<()> {
    let mark = out.len();
    let result = render(value, true, out);
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

/// Renders a whole value; `quoted` is false only for the top level of a diff
/// value, where mysqlbinlog prints strings bare and quotes them itself.
fn render(value: &[u8], quoted: bool, out: &mut String) -> Result<()> {
    let Some(&ty) = value.first() else {
        out.push_str("null");
        return Ok(());
    };
    let mut walker = Walker { doc: value, out, budget: value.len() };
    match ty {
        SMALL_OBJECT | LARGE_OBJECT | SMALL_ARRAY | LARGE_ARRAY => walker.container(ty, 0, 1, value.len(), 0),
        _ => walker.scalar(ty, 0, 1, value.len(), quoted).map(|_| ()),
    }
}

/// Walks one document; all positions are absolute within `doc`.
struct Walker<'a, 'o> {
    doc: &'a [u8],
    out: &'o mut String,
    /// Bytes of entries, keys and scalars left to visit. A document whose
    /// values do not share bytes never visits more than its own length, so
    /// running out means shared values (an amplification attack).
    budget: usize,
}

impl<'a> Walker<'a, '_> {
    /// `len` bytes at `at`, which must end by `end` (the enclosing region's end).
    fn take(&self, at: usize, len: usize, end: usize) -> Result<&'a [u8]> {
        let stop = at.checked_add(len).ok_or(JsonError::BadOffset { offset: at })?;
        if stop > end {
            return Err(if stop > self.doc.len() {
                JsonError::Truncated { offset: at }
            } else {
                JsonError::BadOffset { offset: at }
            });
        }
        self.doc.get(at..stop).ok_or(JsonError::Truncated { offset: at })
    }

    fn array<const N: usize>(&self, at: usize, end: usize) -> Result<[u8; N]> {
        self.take(at, N, end)?.try_into().map_err(|_| JsonError::Truncated { offset: at })
    }

    fn byte(&self, at: usize, end: usize) -> Result<u8> {
        Ok(self.array::<1>(at, end)?[0])
    }

    /// A 2- or 4-byte little-endian count, size or offset.
    fn offset_or_size(&self, at: usize, large: bool, end: usize) -> Result<usize> {
        let v = if large {
            u32::from_le_bytes(self.array(at, end)?)
        } else {
            u32::from(u16::from_le_bytes(self.array(at, end)?))
        };
        usize::try_from(v).map_err(|_| JsonError::BadOffset { offset: at })
    }

    /// A varlen length: returns (length, bytes used). Like MySQL, at most
    /// five bytes and at most `u32::MAX`.
    fn varlen(&self, at: usize, end: usize) -> Result<(usize, usize)> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let b = self.byte(add(at, i)?, end)?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                let len = u32::try_from(value).map_err(|_| JsonError::BadLength { offset: at })?;
                let len = usize::try_from(len).map_err(|_| JsonError::BadLength { offset: at })?;
                return Ok((len, i + 1));
            }
        }
        Err(JsonError::BadLength { offset: at })
    }

    fn charge(&mut self, bytes: usize, at: usize) -> Result<()> {
        self.budget = self.budget.checked_sub(bytes).ok_or(JsonError::Overlap { offset: at })?;
        Ok(())
    }

    /// An object or array whose payload starts at `at` and may extend to `end`.
    fn container(&mut self, ty: u8, ty_at: usize, at: usize, end: usize, depth: usize) -> Result<()> {
        let depth = depth.saturating_add(1);
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep { offset: ty_at });
        }
        let large = ty == LARGE_OBJECT || ty == LARGE_ARRAY;
        let object = ty == SMALL_OBJECT || ty == LARGE_OBJECT;
        let osz: usize = if large { 4 } else { 2 };
        let count = self.offset_or_size(at, large, end)?;
        let size_at = add(at, osz)?;
        let size = self.offset_or_size(size_at, large, end)?;
        // The container's own bytes; nested values may not reach past them.
        let cend = add(at, size)?;
        if cend > end {
            return Err(if cend > self.doc.len() {
                JsonError::Truncated { offset: size_at }
            } else {
                JsonError::BadOffset { offset: size_at }
            });
        }
        let key_entry = if object { osz + 2 } else { 0 };
        let value_entry = 1 + osz;
        let header = count
            .checked_mul(key_entry + value_entry)
            .and_then(|n| n.checked_add(2 * osz))
            .filter(|&n| n <= size)
            .ok_or(JsonError::BadOffset { offset: at })?;
        // Every entry lies inside `header`, which fits in `size`, so the
        // entry arithmetic below cannot overflow; it is checked all the same.
        let keys_at = add(at, 2 * osz)?;
        let values_at = add(keys_at, mul(count, key_entry)?)?;

        self.out.push(if object { '{' } else { '[' });
        for i in 0..count {
            if i > 0 {
                self.out.push_str(", ");
            }
            if object {
                let entry = add(keys_at, mul(i, key_entry)?)?;
                let key_off = self.offset_or_size(entry, large, cend)?;
                let key_len = usize::from(u16::from_le_bytes(self.array(add(entry, osz)?, cend)?));
                // Keys live after all the entries and inside the object.
                if key_off < header || add(key_off, key_len)? > size {
                    return Err(JsonError::BadOffset { offset: entry });
                }
                self.charge(key_len, entry)?;
                let key_at = add(at, key_off)?;
                let key = self.take(key_at, key_len, cend)?;
                let key = std::str::from_utf8(key).map_err(|_| JsonError::BadUtf8 { offset: key_at })?;
                json_quote(key, self.out);
                self.out.push_str(": ");
            }
            let entry = add(values_at, mul(i, value_entry)?)?;
            self.charge(value_entry, entry)?;
            let t = self.byte(entry, cend)?;
            if inlined(t, large) {
                self.scalar(t, entry, add(entry, 1)?, add(entry, value_entry)?, true)?;
                continue;
            }
            let value_off = self.offset_or_size(add(entry, 1)?, large, cend)?;
            if value_off < header || value_off > size {
                return Err(JsonError::BadOffset { offset: add(entry, 1)? });
            }
            let value_at = add(at, value_off)?;
            match t {
                SMALL_OBJECT | LARGE_OBJECT | SMALL_ARRAY | LARGE_ARRAY => {
                    self.container(t, entry, value_at, cend, depth)?;
                }
                _ => {
                    let used = self.scalar(t, entry, value_at, cend, true)?;
                    self.charge(used, value_at)?;
                }
            }
        }
        self.out.push(if object { '}' } else { ']' });
        Ok(())
    }

    /// A scalar of type `ty` (whose type byte is at `ty_at`) with its payload
    /// at `at`; returns the payload's length.
    fn scalar(&mut self, ty: u8, ty_at: usize, at: usize, end: usize, quoted: bool) -> Result<usize> {
        match ty {
            LITERAL => {
                let literal = self.byte(at, end)?;
                self.out.push_str(match literal {
                    0 => "null",
                    1 => "true",
                    2 => "false",
                    _ => return Err(JsonError::BadLiteral { offset: at, literal }),
                });
                Ok(1)
            }
            INT16 => self.number(i16::from_le_bytes(self.array(at, end)?), 2),
            UINT16 => self.number(u16::from_le_bytes(self.array(at, end)?), 2),
            INT32 => self.number(i32::from_le_bytes(self.array(at, end)?), 4),
            UINT32 => self.number(u32::from_le_bytes(self.array(at, end)?), 4),
            INT64 => self.number(i64::from_le_bytes(self.array(at, end)?), 8),
            UINT64 => self.number(u64::from_le_bytes(self.array(at, end)?), 8),
            DOUBLE => {
                write_double(f64::from_le_bytes(self.array(at, end)?), self.out);
                Ok(8)
            }
            STRING => {
                let (len, used) = self.varlen(at, end)?;
                let data_at = add(at, used)?;
                let data = self.take(data_at, len, end)?;
                let s = std::str::from_utf8(data).map_err(|_| JsonError::BadUtf8 { offset: data_at })?;
                write_str(s, quoted, self.out);
                add(used, len)
            }
            OPAQUE => {
                let field_type = self.byte(at, end)?;
                let len_at = add(at, 1)?;
                let (len, used) = self.varlen(len_at, end)?;
                let data_at = add(len_at, used)?;
                let data = self.take(data_at, len, end)?;
                self.opaque(field_type, data, data_at, quoted)?;
                add(add(used, len)?, 1)
            }
            _ => Err(JsonError::BadType { offset: ty_at, type_byte: ty }),
        }
    }

    fn number(&mut self, n: impl Display, width: usize) -> Result<usize> {
        push_display(self.out, n);
        Ok(width)
    }

    /// Opaque values: MySQL's own types (DECIMAL, temporal) are printed as
    /// values, anything else as base64 so that no bytes are lost.
    fn opaque(&mut self, field_type: u8, data: &[u8], at: usize, quoted: bool) -> Result<()> {
        let bad = JsonError::BadOpaque { offset: at, field_type };
        // MySQL prints strings it stored as opaque like JSON strings; bytes
        // that are not UTF-8 fall back to base64 below rather than fail.
        if field_type == FIELD_VAR_STRING {
            if let Ok(s) = std::str::from_utf8(data) {
                write_str(s, quoted, self.out);
                return Ok(());
            }
        }
        match field_type {
            FIELD_NEWDECIMAL => {
                // Precision and scale, then the binary DECIMAL.
                let [precision, scale, raw @ ..] = data else { return Err(bad) };
                let decimal = Decimal::new(raw, *precision, *scale).ok_or(bad)?;
                push_display(self.out, decimal);
            }
            FIELD_DATE | FIELD_TIME | FIELD_DATETIME | FIELD_TIMESTAMP => {
                let packed: [u8; 8] = data.try_into().map_err(|_| bad.clone())?;
                let packed = i64::from_le_bytes(packed);
                if quoted {
                    self.out.push('"');
                }
                match field_type {
                    FIELD_DATE => push_display(self.out, packed_datetime(packed, &bad)?.date),
                    FIELD_TIME => push_display(self.out, packed_time(packed, &bad)?),
                    _ => push_display(self.out, packed_datetime(packed, &bad)?),
                }
                if quoted {
                    self.out.push('"');
                }
            }
            _ => {
                let mut text = String::with_capacity(data.len().saturating_mul(2).saturating_add(24));
                text.push_str("base64:type");
                push_display(&mut text, field_type);
                text.push(':');
                mysql_base64(data, &mut text);
                write_str(&text, quoted, self.out);
            }
        }
        Ok(())
    }
}

fn add(a: usize, b: usize) -> Result<usize> {
    a.checked_add(b).ok_or(JsonError::BadOffset { offset: a })
}

fn mul(a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or(JsonError::BadOffset { offset: a })
}

/// Values stored inside their value entry instead of behind an offset.
fn inlined(ty: u8, large: bool) -> bool {
    match ty {
        LITERAL | INT16 | UINT16 => true,
        INT32 | UINT32 => large,
        _ => false,
    }
}

/// Writing to a `String` cannot fail, so the `fmt::Result` carries nothing.
fn push_display(out: &mut String, value: impl Display) {
    let _ = write!(out, "{value}");
}

fn write_str(s: &str, quoted: bool, out: &mut String) {
    if quoted {
        json_quote(s, out);
    } else {
        out.push_str(s);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_digit(nibble: u8) -> char {
    char::from(HEX[usize::from(nibble & 0x0f)])
}

/// A JSON string literal escaped as MySQL escapes it: only `"`, `\` and
/// control characters; `/`, DEL and non-ASCII are left as they are.
fn json_quote(s: &str, out: &mut String) {
    out.push('"');
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices are on char boundaries.
        out.push_str(s.get(from..i).unwrap_or_default());
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b));
        } else {
            out.push_str(escape);
        }
        from = i + 1;
    }
    out.push_str(s.get(from..).unwrap_or_default());
    out.push('"');
}

/// A single-quoted literal escaped like mysqlbinlog's `my_b_write_quoted`
/// with its default table: `\b \f \n \r \t \\ \'`, other control bytes as
/// `\xNN`, everything else as is.
fn sql_quote(s: &str, out: &mut String) {
    out.push('\'');
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b'\\' => "\\\\",
            b'\'' => "\\'",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(s.get(from..i).unwrap_or_default());
        if escape.is_empty() {
            out.push_str("\\x");
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b));
        } else {
            out.push_str(escape);
        }
        from = i + 1;
    }
    out.push_str(s.get(from..).unwrap_or_default());
    out.push('\'');
}

/// MySQL's base64 (`mysys/base64.cc`): standard alphabet and padding, with a
/// newline before each group once 76 characters are on the line.
fn mysql_base64(data: &[u8], out: &mut String) {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |v: u32| char::from(TABLE[(v & 0x3f) as usize]);
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push('\n');
        }
        let b0 = u32::from(chunk.first().copied().unwrap_or(0));
        let b1 = u32::from(chunk.get(1).copied().unwrap_or(0));
        let b2 = u32::from(chunk.get(2).copied().unwrap_or(0));
        let v = (b0 << 16) | (b1 << 8) | b2;
        out.push(sextet(v >> 18));
        out.push(sextet(v >> 12));
        out.push(if chunk.len() > 1 { sextet(v >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(v) } else { '=' });
    }
}

/// A double as MySQL prints it in JSON: `my_gcvt(x, MY_GCVT_ARG_DOUBLE, 34)`
/// (shortest round-trip digits; plain notation for decimal exponents -15..14
/// or when all 17 digits fit before the point, else `1.5e-7` / `1e300`),
/// then ".0" when the text would read as an integer.
fn write_double(x: f64, out: &mut String) {
    if !x.is_finite() {
        // my_gcvt turns inf/NaN (which JSON cannot hold) into "0".
        out.push_str("0.0");
        return;
    }
    let start = out.len();
    if x.is_sign_negative() {
        out.push('-');
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as dtoa mode 4
    // with more digits allowed than a double has.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let len = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    // Position of the decimal point relative to the digits (dtoa's decpt).
    let decpt = exponent.saturating_add(1);
    if (-14..=15).contains(&decpt) || (decpt > 15 && len > decpt) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
            out.push_str(&digits);
        } else if decpt < len {
            let (int, frac) = digits.split_at(decpt.unsigned_abs() as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - len).unsigned_abs() as usize));
        }
    } else {
        let mut chars = digits.chars();
        if let Some(first) = chars.next() {
            out.push(first);
        }
        let rest = chars.as_str();
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        if exponent < 0 {
            out.push('-');
        }
        push_display(out, exponent.unsigned_abs());
    }
    let text = out.get(start..).unwrap_or_default();
    if !text.contains(['.', 'e']) {
        out.push_str(".0");
    }
}

fn narrow<T: TryFrom<u64>>(v: u64, bad: &JsonError) -> Result<T> {
    T::try_from(v).map_err(|_| bad.clone())
}

/// MySQL's packed DATETIME longlong (`TIME_to_longlong_datetime_packed`):
/// `((year*13 + month) << 5 | day) << 17 | hour << 12 | minute << 6 | second`,
/// shifted left 24 bits plus microseconds. DATE and TIMESTAMP use it too.
fn packed_datetime(packed: i64, bad: &JsonError) -> Result<DateTime> {
    let v = packed.unsigned_abs();
    let ymdhms = v >> 24;
    let ymd = ymdhms >> 17;
    let ym = ymd >> 5;
    let hms = ymdhms % (1 << 17);
    Ok(DateTime {
        date: Date { year: narrow(ym / 13, bad)?, month: narrow(ym % 13, bad)?, day: narrow(ymd % 32, bad)? },
        hour: narrow(hms >> 12, bad)?,
        minute: narrow((hms >> 6) % 64, bad)?,
        second: narrow(hms % 64, bad)?,
        micros: narrow(v % (1 << 24), bad)?,
        fsp: 6,
    })
}

/// MySQL's packed TIME longlong (`TIME_to_longlong_time_packed`):
/// `(hour << 12 | minute << 6 | second) << 24 | microseconds`, negated for
/// negative times.
fn packed_time(packed: i64, bad: &JsonError) -> Result<Time> {
    let v = packed.unsigned_abs();
    let hms = v >> 24;
    Ok(Time {
        negative: packed < 0,
        hours: narrow((hms >> 12) % (1 << 10), bad)?,
        minute: narrow((hms >> 6) % 64, bad)?,
        second: narrow(hms % 64, bad)?,
        micros: narrow(v % (1 << 24), bad)?,
        fsp: 6,
    })
}

/// One operation of a partial JSON update.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonDiffOp {
    /// Replace the value at the path (code 0).
    Replace,
    /// Insert a value at the path (code 1).
    Insert,
    /// Remove the value at the path (code 2).
    Remove,
}

/// One diff of a PARTIAL_UPDATE_ROWS JSON column, borrowing the row bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonDiff<'a> {
    /// What to do at `path`.
    pub op: JsonDiffOp,
    /// A JSON path such as `$.a` or `$[1]`.
    pub path: &'a str,
    /// Binary JSON; `None` for Remove.
    pub value: Option<&'a [u8]>,
}

/// Parses the diff list of a PARTIAL_UPDATE_ROWS after-image JSON column.
///
/// The input is the bytes after the column's length prefix: a sequence of
/// `{ op: u8 (0 replace, 1 insert, 2 remove), path: lenenc length + bytes,
/// [value: lenenc length + binary JSON, absent for remove] }` until the input
/// ends. Values are not decoded here; [`write_json`] or
/// [`write_diff_expression`] do that.
pub fn parse_diffs(bytes: &[u8]) -> Result<Vec<JsonDiff<'_>>> {
    let mut diffs = Vec::new();
    let mut at = 0;
    while let Some(&code) = bytes.get(at) {
        let op = match code {
            0 => JsonDiffOp::Replace,
            1 => JsonDiffOp::Insert,
            2 => JsonDiffOp::Remove,
            op => return Err(JsonError::BadDiffOp { offset: at, op }),
        };
        at = add(at, 1)?;
        let (path, next) = lenenc_bytes(bytes, at)?;
        let path = std::str::from_utf8(path).map_err(|_| JsonError::BadUtf8 { offset: at })?;
        at = next;
        let value = if op == JsonDiffOp::Remove {
            None
        } else {
            let (value, next) = lenenc_bytes(bytes, at)?;
            at = next;
            Some(value)
        };
        diffs.push(JsonDiff { op, path, value });
    }
    Ok(diffs)
}

/// A length-encoded byte string at `at`: returns it and the position after it.
fn lenenc_bytes(bytes: &[u8], at: usize) -> Result<(&[u8], usize)> {
    let truncated = JsonError::Truncated { offset: at };
    let first = *bytes.get(at).ok_or(truncated.clone())?;
    let int = |n: usize| -> Result<u64> {
        let raw = bytes.get(add(at, 1)?..).and_then(|rest| rest.get(..n)).ok_or(truncated.clone())?;
        Ok(raw.iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
    };
    let (len, used) = match first {
        0..=0xfa => (u64::from(first), 1),
        0xfc => (int(2)?, 3),
        0xfd => (int(3)?, 4),
        0xfe => (int(8)?, 9),
        // 0xfb is SQL NULL and 0xff an error marker: neither is a length.
        _ => return Err(JsonError::BadLength { offset: at }),
    };
    let len = usize::try_from(len).map_err(|_| JsonError::BadLength { offset: at })?;
    let start = add(at, used)?;
    let end = start.checked_add(len).ok_or(JsonError::BadLength { offset: at })?;
    let data = bytes.get(start..end).ok_or(JsonError::Truncated { offset: start })?;
    Ok((data, end))
}

/// Renders diffs as the expression mysqlbinlog prints for a partial update of column `column`.
///
/// Consecutive diffs of the same function share one call, calls nest in
/// order, and lines are separated by [`MYSQLBINLOG_LINE_SEPARATOR`]:
///
/// ```text
/// JSON_INSERT(
/// ###      JSON_REPLACE(@2, '$.a', 1,
/// ###      '$.b', 'x'),
/// ###      '$.c', CAST('[1, 2]' AS JSON))
/// ```
///
/// An insert whose path ends in `]` is `JSON_ARRAY_INSERT`. Values print bare
/// (numbers, true/false/null, DECIMAL), single-quoted (strings, dates, other
/// opaque values) or as `CAST('<json>' AS JSON)` (objects, arrays). `column`
/// is printed as given (`@2` in mysqlbinlog). A Replace or Insert without a
/// value is printed with `null`, which is how MySQL reads an empty value.
///
/// On error nothing is appended to `out`.
pub fn write_diff_expression(diffs: &[JsonDiff<'_>], column: &str, out: &mut String) -> Result<()> {
    write_diff_expression_with(diffs, column, MYSQLBINLOG_LINE_SEPARATOR, out)
}

/// [`write_diff_expression`] with another line separator (" " gives one line
/// that can be used in SQL, where mysqlbinlog's `###` would start a comment).
pub fn write_diff_expression_with(
    diffs: &[JsonDiff<'_>],
    column: &str,
    line_separator: &str,
    out: &mut String,
) -> Result<()> {
    let mark = out.len();
    let result = diff_expression(diffs, column, line_separator, out);
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

fn diff_expression(diffs: &[JsonDiff<'_>], column: &str, separator: &str, out: &mut String) -> Result<()> {
    let names: Vec<&str> = diffs.iter().map(function_name).collect();
    // Outermost call first: the last diff's function, then each change of
    // function going backwards.
    let mut printed = false;
    for i in (0..names.len()).rev() {
        let name = names.get(i).copied().unwrap_or_default();
        let previous = i.checked_sub(1).and_then(|p| names.get(p)).copied();
        if previous != Some(name) {
            if printed {
                out.push_str(separator);
            }
            out.push_str(name);
            out.push('(');
            printed = true;
        }
    }
    out.push_str(column);
    if diffs.is_empty() {
        return Ok(());
    }
    out.push_str(", ");
    for (i, diff) in diffs.iter().enumerate() {
        sql_quote(diff.path, out);
        if diff.op != JsonDiffOp::Remove {
            out.push_str(", ");
            write_diff_value(diff.value.unwrap_or_default(), out)?;
        }
        let next = names.get(i + 1).copied();
        if next != names.get(i).copied() {
            out.push(')');
        }
        if next.is_some() {
            out.push(',');
            out.push_str(separator);
        }
    }
    Ok(())
}

fn function_name(diff: &JsonDiff<'_>) -> &'static str {
    match diff.op {
        JsonDiffOp::Replace => "JSON_REPLACE",
        JsonDiffOp::Insert if diff.path.ends_with(']') => "JSON_ARRAY_INSERT",
        JsonDiffOp::Insert => "JSON_INSERT",
        JsonDiffOp::Remove => "JSON_REMOVE",
    }
}

/// A diff value as an SQL expression, as mysqlbinlog's `json_wrapper_to_string`.
fn write_diff_value(value: &[u8], out: &mut String) -> Result<()> {
    let mut text = String::new();
    render(value, false, &mut text)?;
    match value.first().copied() {
        Some(SMALL_OBJECT | LARGE_OBJECT | SMALL_ARRAY | LARGE_ARRAY) => {
            out.push_str("CAST(");
            sql_quote(&text, out);
            out.push_str(" AS JSON)");
        }
        Some(STRING) => sql_quote(&text, out),
        Some(OPAQUE) if value.get(1) != Some(&FIELD_NEWDECIMAL) => sql_quote(&text, out),
        _ => out.push_str(&text),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JSON tree to serialize the way MySQL does, so tests can state
    /// documents instead of hand-counting offsets.
    #[derive(Clone)]
    enum J {
        Null,
        True,
        False,
        Int(i64),
        Uint(u64),
        Double(f64),
        Str(&'static str),
        Opaque(u8, Vec<u8>),
        Arr(Vec<J>),
        Obj(Vec<(&'static str, J)>),
    }

    fn put(buf: &mut Vec<u8>, v: u64, large: bool) {
        if large {
            buf.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            buf.extend_from_slice(&(v as u16).to_le_bytes());
        }
    }

    fn set(buf: &mut [u8], at: usize, v: u64, large: bool) {
        if large {
            buf[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes());
        } else {
            buf[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes());
        }
    }

    fn varlen(mut n: usize, buf: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                buf.push(b);
                return;
            }
            buf.push(b | 0x80);
        }
    }

    /// (type, payload) of a value; containers use `large` at every level.
    fn body(j: &J, large: bool) -> (u8, Vec<u8>) {
        match j {
            J::Null => (LITERAL, vec![0]),
            J::True => (LITERAL, vec![1]),
            J::False => (LITERAL, vec![2]),
            J::Int(v) if i16::try_from(*v).is_ok() => (INT16, (*v as i16).to_le_bytes().to_vec()),
            J::Int(v) if i32::try_from(*v).is_ok() => (INT32, (*v as i32).to_le_bytes().to_vec()),
            J::Int(v) => (INT64, v.to_le_bytes().to_vec()),
            J::Uint(v) if u16::try_from(*v).is_ok() => (UINT16, (*v as u16).to_le_bytes().to_vec()),
            J::Uint(v) if u32::try_from(*v).is_ok() => (UINT32, (*v as u32).to_le_bytes().to_vec()),
            J::Uint(v) => (UINT64, v.to_le_bytes().to_vec()),
            J::Double(v) => (DOUBLE, v.to_le_bytes().to_vec()),
            J::Str(s) => {
                let mut b = Vec::new();
                varlen(s.len(), &mut b);
                b.extend_from_slice(s.as_bytes());
                (STRING, b)
            }
            J::Opaque(t, data) => {
                let mut b = vec![*t];
                varlen(data.len(), &mut b);
                b.extend_from_slice(data);
                (OPAQUE, b)
            }
            J::Arr(items) => {
                let items: Vec<(Option<&str>, &J)> = items.iter().map(|v| (None, v)).collect();
                (if large { LARGE_ARRAY } else { SMALL_ARRAY }, container(&items, false, large))
            }
            J::Obj(members) => {
                let items: Vec<(Option<&str>, &J)> = members.iter().map(|(k, v)| (Some(*k), v)).collect();
                (if large { LARGE_OBJECT } else { SMALL_OBJECT }, container(&items, true, large))
            }
        }
    }

    fn container(items: &[(Option<&str>, &J)], object: bool, large: bool) -> Vec<u8> {
        let osz = if large { 4 } else { 2 };
        let kes = if object { osz + 2 } else { 0 };
        let ves = 1 + osz;
        let n = items.len();
        let mut buf = Vec::new();
        put(&mut buf, n as u64, large);
        put(&mut buf, 0, large);
        buf.resize(2 * osz + n * (kes + ves), 0);
        if object {
            for (i, (key, _)) in items.iter().enumerate() {
                let key = key.unwrap_or_default();
                let off = buf.len();
                buf.extend_from_slice(key.as_bytes());
                let e = 2 * osz + i * kes;
                set(&mut buf, e, off as u64, large);
                buf[e + osz..e + osz + 2].copy_from_slice(&(key.len() as u16).to_le_bytes());
            }
        }
        for (i, (_, value)) in items.iter().enumerate() {
            let e = 2 * osz + n * kes + i * ves;
            let (t, payload) = body(value, large);
            buf[e] = t;
            if inlined(t, large) {
                buf[e + 1..e + 1 + payload.len()].copy_from_slice(&payload);
            } else {
                let off = buf.len();
                set(&mut buf, e + 1, off as u64, large);
                buf.extend_from_slice(&payload);
            }
        }
        let size = buf.len() as u64;
        set(&mut buf, osz, size, large);
        buf
    }

    fn doc(j: &J, large: bool) -> Vec<u8> {
        let (t, mut payload) = body(j, large);
        payload.insert(0, t);
        payload
    }

    fn show(bytes: &[u8]) -> String {
        let mut out = String::new();
        write_json(bytes, &mut out).expect("valid binary JSON");
        out
    }

    fn err(bytes: &[u8]) -> JsonError {
        let mut out = String::from("kept");
        let e = write_json(bytes, &mut out).expect_err("invalid binary JSON");
        assert_eq!(out, "kept", "output untouched on error");
        e
    }

    /// 1234567890.1234 as DECIMAL(14,4), from MySQL's decimal.c.
    fn decimal_opaque() -> J {
        J::Opaque(FIELD_NEWDECIMAL, vec![14, 4, 0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2])
    }

    fn packed_dt(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, us: i64) -> Vec<u8> {
        let ymd = ((y * 13 + mo) << 5) | d;
        let hms = (h << 12) | (mi << 6) | s;
        (((ymd << 17) | hms) << 24 | us).to_le_bytes().to_vec()
    }

    fn packed_t(neg: bool, h: i64, mi: i64, s: i64, us: i64) -> Vec<u8> {
        let v = (((h << 12) | (mi << 6) | s) << 24) + us;
        (if neg { -v } else { v }).to_le_bytes().to_vec()
    }

    #[test]
    fn literals_and_integers() {
        assert_eq!(show(&[]), "null");
        assert_eq!(show(&doc(&J::Null, false)), "null");
        assert_eq!(show(&doc(&J::True, false)), "true");
        assert_eq!(show(&doc(&J::False, false)), "false");
        assert_eq!(show(&doc(&J::Int(-32768), false)), "-32768");
        assert_eq!(show(&[UINT16, 0xff, 0xff]), "65535");
        assert_eq!(show(&doc(&J::Int(-2_147_483_648), false)), "-2147483648");
        assert_eq!(show(&doc(&J::Uint(4_294_967_295), false)), "4294967295");
        assert_eq!(show(&doc(&J::Int(i64::MIN), false)), "-9223372036854775808");
        assert_eq!(show(&doc(&J::Uint(u64::MAX), false)), "18446744073709551615");
        // Trailing bytes after a top-level scalar are ignored, as MySQL does.
        assert_eq!(show(&[INT16, 7, 0, 0xee]), "7");
    }

    #[test]
    fn doubles_print_like_mysql() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (3.25, "3.25"),
            (100.0, "100.0"),
            (1e14, "100000000000000.0"),
            (1e15, "1e15"),
            (1e300, "1e300"),
            (1.5e-7, "0.00000015"),
            (-1.5e-7, "-0.00000015"),
            (1.5e-15, "0.0000000000000015"),
            (1.5e-16, "1.5e-16"),
            (0.0001, "0.0001"),
            (1e-15, "0.000000000000001"),
            (1e-16, "1e-16"),
            (1234567890123456.8, "1234567890123456.8"),
            (12345678901234568.0, "1.2345678901234568e16"),
            (123456789.125, "123456789.125"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e308"),
            (f64::INFINITY, "0.0"),
        ];
        for &(x, want) in cases {
            assert_eq!(show(&doc(&J::Double(x), false)), want, "{x:e}");
        }
    }

    #[test]
    fn strings_escape_like_mysql() {
        let j = J::Str("a\"b\\c/d\u{1}\u{8}\t\n\u{c}\r\u{7f}é😀");
        assert_eq!(show(&doc(&j, false)), "\"a\\\"b\\\\c/d\\u0001\\b\\t\\n\\f\\r\u{7f}é😀\"");
        assert_eq!(show(&doc(&J::Str(""), false)), "\"\"");
        // A 200-byte string needs a two-byte varlen.
        let long: &'static str = Box::leak("x".repeat(200).into_boxed_str());
        let bytes = doc(&J::Str(long), false);
        assert_eq!(&bytes[..3], &[STRING, 0xc8, 0x01]);
        assert_eq!(show(&bytes), format!("\"{long}\""));
    }

    fn sample() -> J {
        J::Obj(vec![
            ("a", J::Int(1)),
            ("b", J::Arr(vec![J::Int(1), J::Int(2), J::Null, J::True])),
            ("long key", J::Obj(vec![("x", J::Str("y")), ("big", J::Int(100_000)), ("u", J::Uint(70_000))])),
            ("d", J::Double(2.5)),
            ("s", J::Str("text")),
            ("e", J::Arr(vec![])),
            ("o", J::Obj(vec![])),
        ])
    }

    const SAMPLE_TEXT: &str = "{\"a\": 1, \"b\": [1, 2, null, true], \"long key\": {\"x\": \"y\", \"big\": 100000, \"u\": 70000}, \"d\": 2.5, \"s\": \"text\", \"e\": [], \"o\": {}}";

    #[test]
    fn small_and_large_containers() {
        let small = doc(&sample(), false);
        let large = doc(&sample(), true);
        assert_eq!(small[0], SMALL_OBJECT);
        assert_eq!(large[0], LARGE_OBJECT);
        // Keys come out in stored order, not sorted.
        assert_eq!(show(&small), SAMPLE_TEXT);
        assert_eq!(show(&large), SAMPLE_TEXT);
        assert_eq!(show(&doc(&J::Arr(vec![J::Int(1), J::Str("x")]), true)), "[1, \"x\"]");
        assert_eq!(show(&doc(&J::Arr(vec![]), false)), "[]");
    }

    #[test]
    fn small_container_inside_large() {
        let inner = doc(&J::Arr(vec![J::Int(5), J::Int(70_000)]), false);
        // Large array with one entry pointing at a small array.
        let mut bytes = vec![LARGE_ARRAY];
        let mut payload = Vec::new();
        put(&mut payload, 1, true);
        put(&mut payload, 0, true);
        payload.push(SMALL_ARRAY);
        put(&mut payload, 13, true);
        payload.extend_from_slice(&inner[1..]);
        let size = payload.len() as u64;
        set(&mut payload, 4, size, true);
        bytes.extend_from_slice(&payload);
        assert_eq!(show(&bytes), "[[5, 70000]]");
    }

    #[test]
    fn inlining_depends_on_format() {
        // Small format: int32 behind an offset; large format: int32 inlined.
        let j = J::Arr(vec![J::Int(-100_000), J::Uint(100_000)]);
        let small = doc(&j, false);
        let large = doc(&j, true);
        assert_eq!(small.len(), 1 + 4 + 2 * 3 + 2 * 4);
        assert_eq!(large.len(), 1 + 8 + 2 * 5);
        assert_eq!(show(&small), "[-100000, 100000]");
        assert_eq!(show(&large), "[-100000, 100000]");
    }

    #[test]
    fn opaque_values() {
        assert_eq!(show(&doc(&decimal_opaque(), false)), "1234567890.1234");
        let neg = J::Opaque(FIELD_NEWDECIMAL, vec![10, 2, 0x7f, 0xff, 0xff, 0xfe, 0xcd]);
        assert_eq!(show(&doc(&neg, false)), "-1.50");
        let date = J::Opaque(FIELD_DATE, packed_dt(2015, 1, 15, 0, 0, 0, 0));
        assert_eq!(show(&doc(&date, false)), "\"2015-01-15\"");
        let dt = J::Opaque(FIELD_DATETIME, packed_dt(2015, 1, 15, 23, 24, 25, 0));
        assert_eq!(show(&doc(&dt, false)), "\"2015-01-15 23:24:25.000000\"");
        let ts = J::Opaque(FIELD_TIMESTAMP, packed_dt(2038, 1, 19, 3, 14, 7, 123_456));
        assert_eq!(show(&doc(&ts, false)), "\"2038-01-19 03:14:07.123456\"");
        let time = J::Opaque(FIELD_TIME, packed_t(false, 23, 24, 25, 0));
        assert_eq!(show(&doc(&time, false)), "\"23:24:25.000000\"");
        let neg_time = J::Opaque(FIELD_TIME, packed_t(true, 838, 59, 59, 500_000));
        assert_eq!(show(&doc(&neg_time, false)), "\"-838:59:59.500000\"");
        let zero = J::Opaque(FIELD_DATETIME, vec![0; 8]);
        assert_eq!(show(&doc(&zero, false)), "\"0000-00-00 00:00:00.000000\"");
        let text = J::Opaque(FIELD_VAR_STRING, b"hi \"there\"".to_vec());
        assert_eq!(show(&doc(&text, false)), "\"hi \\\"there\\\"\"");
        let not_utf8 = J::Opaque(FIELD_VAR_STRING, vec![0xff]);
        assert_eq!(show(&doc(&not_utf8, false)), "\"base64:type253:/w==\"");
        let blob = J::Opaque(252, b"abc".to_vec());
        assert_eq!(show(&doc(&blob, false)), "\"base64:type252:YWJj\"");
        let empty = J::Opaque(15, vec![]);
        assert_eq!(show(&doc(&empty, false)), "\"base64:type15:\"");
        // Inside containers too.
        let arr = J::Arr(vec![decimal_opaque(), date, J::Opaque(252, vec![1, 2])]);
        assert_eq!(show(&doc(&arr, false)), "[1234567890.1234, \"2015-01-15\", \"base64:type252:AQI=\"]");
    }

    #[test]
    fn base64_breaks_lines_like_mysql() {
        // 57 bytes fill exactly one 76-character line; 58 need a second line.
        let mut text = String::new();
        mysql_base64(&[0u8; 57], &mut text);
        assert_eq!(text, "A".repeat(76));
        text.clear();
        mysql_base64(&[0u8; 58], &mut text);
        assert_eq!(text, format!("{}\nAA==", "A".repeat(76)));
        let blob = J::Opaque(252, vec![0; 58]);
        assert_eq!(show(&doc(&blob, false)), format!("\"base64:type252:{}\\nAA==\"", "A".repeat(76)));
    }

    #[test]
    fn malformed_opaque() {
        let bad_decimal = J::Opaque(FIELD_NEWDECIMAL, vec![14, 4, 0x81]);
        assert!(matches!(
            err(&doc(&bad_decimal, false)),
            JsonError::BadOpaque { offset: 3, field_type: 246 }
        ));
        let short = J::Opaque(FIELD_NEWDECIMAL, vec![14]);
        assert!(matches!(err(&doc(&short, false)), JsonError::BadOpaque { .. }));
        let short_date = J::Opaque(FIELD_DATE, vec![0; 7]);
        assert!(matches!(err(&doc(&short_date, false)), JsonError::BadOpaque { field_type: 10, .. }));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let docs = [
            doc(&sample(), false),
            doc(&sample(), true),
            doc(&J::Str("hello"), false),
            doc(&J::Double(1.5), false),
            doc(&J::Int(i64::MIN), false),
            doc(&decimal_opaque(), false),
            doc(&J::True, false),
        ];
        for bytes in &docs {
            for len in 1..bytes.len() {
                let e = err(&bytes[..len]);
                assert!(matches!(e, JsonError::Truncated { .. }), "len {len}: {e:?}");
                assert!(e.offset() <= len, "len {len}: {e:?}");
            }
        }
    }

    fn nested(depth: usize) -> Vec<u8> {
        let mut j = J::Arr(vec![]);
        for _ in 1..depth {
            j = J::Arr(vec![j]);
        }
        doc(&j, false)
    }

    #[test]
    fn depth_limit() {
        let ok = show(&nested(MAX_DEPTH));
        assert_eq!(ok, format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH)));
        assert!(matches!(err(&nested(MAX_DEPTH + 1)), JsonError::TooDeep { .. }));
    }

    #[test]
    fn bad_offsets() {
        let good = doc(&J::Obj(vec![("k", J::Str("v"))]), false);
        assert_eq!(show(&good), "{\"k\": \"v\"}");
        // Layout: type | count 2 | size 2 | key entry (off 2, len 2) | value entry (type 1, off 2) | "k" | "\x01v"
        let mut key_in_header = good.clone();
        key_in_header[5] = 4;
        assert_eq!(err(&key_in_header), JsonError::BadOffset { offset: 5 });
        let mut key_too_long = good.clone();
        key_too_long[7] = 9;
        assert_eq!(err(&key_too_long), JsonError::BadOffset { offset: 5 });
        let mut value_past_end = good.clone();
        value_past_end[10] = 0x40;
        assert_eq!(err(&value_past_end), JsonError::BadOffset { offset: 10 });
        let mut value_in_header = good.clone();
        value_in_header[10] = 1;
        assert_eq!(err(&value_in_header), JsonError::BadOffset { offset: 10 });
        let mut too_many = good.clone();
        too_many[1] = 200;
        assert_eq!(err(&too_many), JsonError::BadOffset { offset: 1 });
        // A string whose length runs past its object (but not the input).
        let mut string_past_object = good.clone();
        string_past_object[3] -= 1;
        string_past_object.push(0);
        assert_eq!(err(&string_past_object), JsonError::BadOffset { offset: 14 });
        // A nested array claiming more bytes than its parent has.
        let mut arr = doc(&J::Arr(vec![J::Arr(vec![J::Int(1)])]), false);
        assert_eq!(show(&arr), "[[1]]");
        arr[10] = 50;
        arr.extend_from_slice(&[0; 60]);
        assert_eq!(err(&arr), JsonError::BadOffset { offset: 10 });
    }

    #[test]
    fn bad_types_literals_utf8_lengths() {
        assert_eq!(err(&[0x0d]), JsonError::BadType { offset: 0, type_byte: 0x0d });
        assert_eq!(err(&[LITERAL, 3]), JsonError::BadLiteral { offset: 1, literal: 3 });
        let mut arr = doc(&J::Arr(vec![J::Str("x")]), false);
        arr[5] = 0x0e;
        assert_eq!(err(&arr), JsonError::BadType { offset: 5, type_byte: 0x0e });
        assert_eq!(err(&[STRING, 2, b'a', 0xff]), JsonError::BadUtf8 { offset: 2 });
        let mut obj = doc(&J::Obj(vec![("k", J::Null)]), false);
        obj[12] = 0xc3;
        assert_eq!(err(&obj), JsonError::BadUtf8 { offset: 12 });
        assert_eq!(err(&[STRING, 0x80, 0x80, 0x80, 0x80, 0x80, 0]), JsonError::BadLength { offset: 1 });
        assert_eq!(err(&[STRING, 0xff, 0xff, 0xff, 0xff, 0x7f]), JsonError::BadLength { offset: 1 });
    }

    #[test]
    fn shared_values_are_rejected() {
        // A chain of arrays whose two entries point at the same child: 60 levels
        // would print 2^60 leaves from a few hundred bytes.
        let levels = 60;
        let mut bytes = vec![SMALL_ARRAY];
        for level in 0..levels {
            let base = bytes.len();
            let child = 4 + 2 * 3;
            let remaining = (levels - level) * 10;
            bytes.extend_from_slice(&2u16.to_le_bytes());
            bytes.extend_from_slice(&(remaining as u16).to_le_bytes());
            for _ in 0..2 {
                bytes.push(if level + 1 == levels { LITERAL } else { SMALL_ARRAY });
                let off: u16 = if level + 1 == levels { 0 } else { child };
                bytes.extend_from_slice(&off.to_le_bytes());
            }
            assert_eq!(bytes.len() - base, 10);
        }
        assert!(matches!(err(&bytes), JsonError::Overlap { .. }));
        // Ten entries sharing one string would print more than the input holds.
        let mut arr = vec![SMALL_ARRAY, 10, 0, 55, 0];
        for _ in 0..10 {
            arr.extend_from_slice(&[STRING, 34, 0]);
        }
        arr.push(20);
        arr.extend_from_slice(&[b'x'; 20]);
        assert_eq!(arr.len(), 56);
        assert!(matches!(err(&arr), JsonError::Overlap { .. }));
        // Pointing two entries at one string within the input's size is harmless.
        let mut two = doc(&J::Arr(vec![J::Str("abcdef"), J::Str("abcdef")]), false);
        two[9] = two[6];
        assert_eq!(show(&two), "[\"abcdef\", \"abcdef\"]");
    }

    #[test]
    fn mutated_documents_never_panic() {
        let seeds = [doc(&sample(), false), doc(&sample(), true), nested(5)];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for seed in &seeds {
            for _ in 0..3000 {
                let mut bytes = seed.clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = next() as u8;
                }
                let mut out = String::new();
                if write_json(&bytes, &mut out).is_ok() {
                    assert!(out.len() <= 16 * bytes.len() + 16);
                }
            }
        }
    }

    fn diff_bytes(parts: &[(u8, &str, Option<Vec<u8>>)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (op, path, value) in parts {
            b.push(*op);
            b.push(path.len() as u8);
            b.extend_from_slice(path.as_bytes());
            if let Some(v) = value {
                b.push(v.len() as u8);
                b.extend_from_slice(v);
            }
        }
        b
    }

    #[test]
    fn parses_diffs() {
        let one = doc(&J::Int(1), false);
        let bytes = diff_bytes(&[(0, "$.a", Some(one.clone())), (2, "$.b", None), (1, "$[0]", Some(vec![]))]);
        let diffs = parse_diffs(&bytes).expect("diffs");
        assert_eq!(
            diffs,
            vec![
                JsonDiff { op: JsonDiffOp::Replace, path: "$.a", value: Some(&one[..]) },
                JsonDiff { op: JsonDiffOp::Remove, path: "$.b", value: None },
                JsonDiff { op: JsonDiffOp::Insert, path: "$[0]", value: Some(&[][..]) },
            ]
        );
        assert_eq!(parse_diffs(&[]).expect("empty"), vec![]);
        for len in 1..bytes.len() {
            // Cutting between two diffs leaves a shorter valid list.
            if let Err(e) = parse_diffs(&bytes[..len]) {
                assert!(matches!(e, JsonError::Truncated { .. }), "len {len}: {e:?}");
            } else {
                assert!([9, 14].contains(&len), "len {len} parsed");
            }
        }
        assert_eq!(parse_diffs(&[3, 0]), Err(JsonError::BadDiffOp { offset: 0, op: 3 }));
        assert_eq!(parse_diffs(&[2, 0xfb]), Err(JsonError::BadLength { offset: 1 }));
        assert_eq!(parse_diffs(&[2, 1, 0xff]), Err(JsonError::BadUtf8 { offset: 1 }));
        // Two-byte length-encoded length.
        let mut long = vec![2, 0xfc, 0x2c, 0x01];
        long.extend_from_slice(&[b'a'; 300]);
        assert_eq!(parse_diffs(&long).expect("long path")[0].path.len(), 300);
        // An 8-byte length that cannot be a real length.
        assert_eq!(
            parse_diffs(&[2, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(JsonError::BadLength { offset: 1 })
        );
        assert_eq!(
            parse_diffs(&[2, 0xfe, 3, 0, 0, 0, 0, 0, 0, 0, b'$']),
            Err(JsonError::Truncated { offset: 10 })
        );
    }

    fn expression(diffs: &[JsonDiff<'_>]) -> String {
        let mut out = String::new();
        write_diff_expression(diffs, "@2", &mut out).expect("expression");
        out
    }

    #[test]
    fn diff_expression_like_mysqlbinlog() {
        let one = doc(&J::Int(1), false);
        let s = doc(&J::Str("it's"), false);
        let arr = doc(&J::Arr(vec![J::Int(1), J::Str("a'b")]), false);
        let date = doc(&J::Opaque(FIELD_DATE, packed_dt(2015, 1, 15, 0, 0, 0, 0)), false);
        let dec = doc(&decimal_opaque(), false);
        let diffs = [
            JsonDiff { op: JsonDiffOp::Replace, path: "$.a", value: Some(&one) },
            JsonDiff { op: JsonDiffOp::Replace, path: "$.b", value: Some(&s) },
            JsonDiff { op: JsonDiffOp::Insert, path: "$.c", value: Some(&arr) },
            JsonDiff { op: JsonDiffOp::Insert, path: "$.d[1]", value: Some(&date) },
            JsonDiff { op: JsonDiffOp::Remove, path: "$.e", value: None },
            JsonDiff { op: JsonDiffOp::Replace, path: "$.f", value: Some(&dec) },
            JsonDiff { op: JsonDiffOp::Replace, path: "$.g", value: Some(&[]) },
        ];
        let want = "JSON_REPLACE(\n###      JSON_REMOVE(\n###      JSON_ARRAY_INSERT(\n###      JSON_INSERT(\n###      JSON_REPLACE(@2, \
                    '$.a', 1,\n###      '$.b', 'it\\'s'),\n###      \
                    '$.c', CAST('[1, \"a\\'b\"]' AS JSON)),\n###      \
                    '$.d[1]', '2015-01-15'),\n###      \
                    '$.e'),\n###      \
                    '$.f', 1234567890.1234,\n###      \
                    '$.g', null)";
        assert_eq!(expression(&diffs), want);
        let mut one_line = String::new();
        write_diff_expression_with(&diffs[..2], "`j`", " ", &mut one_line).expect("expression");
        assert_eq!(one_line, "JSON_REPLACE(`j`, '$.a', 1, '$.b', 'it\\'s')");
        assert_eq!(expression(&[]), "@2");
        let remove = [JsonDiff { op: JsonDiffOp::Remove, path: "$[0]", value: None }];
        assert_eq!(expression(&remove), "JSON_REMOVE(@2, '$[0]')");
    }

    #[test]
    fn diff_values_quote_like_mysqlbinlog() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (doc(&J::Str("a\nb\\c\u{1}\"d"), false), "'a\\nb\\\\c\\x01\"d'"),
            (doc(&J::Obj(vec![("k", J::Str("a\nb"))]), false), "CAST('{\"k\": \"a\\\\nb\"}' AS JSON)"),
            (doc(&J::Double(1e300), false), "1e300"),
            (doc(&J::False, false), "false"),
            (doc(&J::Opaque(FIELD_TIME, packed_t(false, 1, 2, 3, 0)), false), "'01:02:03.000000'"),
            (doc(&J::Opaque(252, b"abc".to_vec()), false), "'base64:type252:YWJj'"),
            (doc(&J::Opaque(FIELD_VAR_STRING, b"x".to_vec()), false), "'x'"),
        ];
        for (value, want) in cases {
            let diffs = [JsonDiff { op: JsonDiffOp::Replace, path: "$", value: Some(&value) }];
            assert_eq!(expression(&diffs), format!("JSON_REPLACE(@2, '$', {want})"));
        }
    }

    #[test]
    fn diff_expression_errors_leave_output_alone() {
        let diffs = [JsonDiff { op: JsonDiffOp::Replace, path: "$", value: Some(&[STRING, 5, b'a']) }];
        let mut out = String::from("x");
        assert_eq!(write_diff_expression(&diffs, "@1", &mut out), Err(JsonError::Truncated { offset: 2 }));
        assert_eq!(out, "x");
    }
}
