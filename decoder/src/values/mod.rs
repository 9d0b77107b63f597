//! Column types and row values.
//!
//! A TABLE_MAP event lists each column's type code and a few bytes of
//! metadata; together they say how many bytes a value takes in a row image.
//! [`Column`] turns that pair into a [`Storage`] once per table map, so the
//! per-row loop in [`decode_value`] is a single match with no look-ups.
//! Values borrow the row bytes ([`Value::String`] and friends are slices);
//! DECIMAL and binary JSON are formatted only when rendered.

pub mod decimal;
pub mod json;
pub mod temporal;

use crate::cursor::Cursor;

/// "00", "01", … "99": two decimal digits per table lookup, for the text
/// of numbers in DECIMAL and temporal values (and the renderers' integers).
pub const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// The two digits of `v` (below 100; higher values wrap).
#[inline]
pub(crate) fn digit_pair(v: u32) -> [u8; 2] {
    let i = (v as usize % 100) * 2;
    [DIGIT_PAIRS[i], DIGIT_PAIRS[i + 1]]
}

/// Writes `v` as exactly `out.len()` decimal digits (zero-padded; higher
/// digits that do not fit are dropped), two at a time from the right.
#[inline]
pub(crate) fn write_digits(out: &mut [u8], mut v: u32) {
    let mut i = out.len();
    while i >= 2 {
        let d = (v % 100) as usize * 2;
        out[i - 2..i].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
        v /= 100;
        i -= 2;
    }
    if i == 1 {
        out[0] = b'0' + (v % 10) as u8;
    }
}
use crate::error::Result;
use crate::header::wire_enum;
pub use decimal::Decimal;
pub use temporal::{Date, DateTime, Time, Timestamp};

wire_enum! {
    /// A column type code as written in TABLE_MAP (`enum_field_types`).
    ColumnType(u8) {
        DECIMAL = 0 => "DECIMAL",
        TINY = 1 => "TINYINT",
        SHORT = 2 => "SMALLINT",
        LONG = 3 => "INT",
        FLOAT = 4 => "FLOAT",
        DOUBLE = 5 => "DOUBLE",
        NULL = 6 => "NULL",
        TIMESTAMP = 7 => "TIMESTAMP",
        LONGLONG = 8 => "BIGINT",
        INT24 = 9 => "MEDIUMINT",
        DATE = 10 => "DATE",
        TIME = 11 => "TIME",
        DATETIME = 12 => "DATETIME",
        YEAR = 13 => "YEAR",
        NEWDATE = 14 => "NEWDATE",
        VARCHAR = 15 => "VARCHAR",
        BIT = 16 => "BIT",
        TIMESTAMP2 = 17 => "TIMESTAMP2",
        DATETIME2 = 18 => "DATETIME2",
        TIME2 = 19 => "TIME2",
        TYPED_ARRAY = 20 => "TYPED_ARRAY",
        VECTOR = 242 => "VECTOR",
        INVALID = 243 => "INVALID",
        BOOL = 244 => "BOOL",
        JSON = 245 => "JSON",
        NEWDECIMAL = 246 => "DECIMAL",
        ENUM = 247 => "ENUM",
        SET = 248 => "SET",
        TINY_BLOB = 249 => "TINYBLOB",
        MEDIUM_BLOB = 250 => "MEDIUMBLOB",
        LONG_BLOB = 251 => "LONGBLOB",
        BLOB = 252 => "BLOB",
        VAR_STRING = 253 => "VAR_STRING",
        STRING = 254 => "CHAR",
        GEOMETRY = 255 => "GEOMETRY",
    }
}

impl ColumnType {
    /// Metadata bytes this type has in TABLE_MAP.
    pub fn metadata_len(self) -> usize {
        match self {
            ColumnType::FLOAT
            | ColumnType::DOUBLE
            | ColumnType::BLOB
            | ColumnType::TINY_BLOB
            | ColumnType::MEDIUM_BLOB
            | ColumnType::LONG_BLOB
            | ColumnType::GEOMETRY
            | ColumnType::JSON
            | ColumnType::VECTOR
            | ColumnType::TIMESTAMP2
            | ColumnType::DATETIME2
            | ColumnType::TIME2
            | ColumnType::TYPED_ARRAY => 1,
            ColumnType::VARCHAR
            | ColumnType::VAR_STRING
            | ColumnType::BIT
            | ColumnType::NEWDECIMAL
            | ColumnType::STRING
            | ColumnType::ENUM
            | ColumnType::SET => 2,
            _ => 0,
        }
    }

    /// Numeric types, which the SIGNEDNESS metadata covers.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ColumnType::TINY
                | ColumnType::SHORT
                | ColumnType::INT24
                | ColumnType::LONG
                | ColumnType::LONGLONG
                | ColumnType::NEWDECIMAL
                | ColumnType::FLOAT
                | ColumnType::DOUBLE
        )
    }
}

/// The collation id of the `binary` character set.
pub const BINARY_COLLATION: u16 = 63;

/// How a column's value is laid out in a row image; derived once from the
/// type code and metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Little-endian integer of 1, 2, 3, 4 or 8 bytes.
    Int(u8),
    /// 4-byte IEEE float.
    Float,
    /// 8-byte IEEE double.
    Double,
    /// Binary DECIMAL.
    Decimal {
        /// Declared precision.
        precision: u8,
        /// Declared scale.
        scale: u8,
        /// Stored bytes.
        len: u8,
    },
    /// One byte, years since 1900.
    Year,
    /// 3 bytes.
    Date,
    /// Old TIME, 3 bytes.
    Time,
    /// TIME2 with fraction digits.
    Time2(u8),
    /// Old DATETIME, 8 bytes.
    DateTime,
    /// DATETIME2 with fraction digits.
    DateTime2(u8),
    /// Old TIMESTAMP, 4 bytes.
    Timestamp,
    /// TIMESTAMP2 with fraction digits.
    Timestamp2(u8),
    /// BIT(n): `(n + 7) / 8` big-endian bytes.
    Bit {
        /// Declared width in bits.
        bits: u16,
    },
    /// ENUM index in 1 or 2 bytes.
    Enum(u8),
    /// SET bitmap in 1..=8 bytes.
    Set(u8),
    /// CHAR/VARCHAR/BINARY/VARBINARY: a 1- or 2-byte length, then bytes.
    String {
        /// Length prefix width.
        len_bytes: u8,
        /// Declared maximum length in bytes.
        max_len: u16,
    },
    /// BLOB/TEXT and friends: a 1..=4-byte length, then bytes.
    Blob(u8),
    /// MySQL binary JSON, behind a length like a BLOB's.
    Json(u8),
    /// GEOMETRY (WKB with a 4-byte SRID), behind a length.
    Geometry(u8),
    /// VECTOR (float32 array), behind a length.
    Vector(u8),
    /// A type this decoder cannot size (e.g. TYPED_ARRAY); any row using it
    /// is an error naming the column.
    Unsupported,
}

impl Storage {
    /// Works out the layout from a TABLE_MAP type code and its metadata.
    /// Returns the real type (a STRING may really be an ENUM or SET) and the
    /// layout; `None` means the metadata is impossible for the type.
    pub fn from_table_map(ty: ColumnType, meta: u16) -> Option<(ColumnType, Storage)> {
        let lo = (meta & 0xff) as u8;
        let hi = (meta >> 8) as u8;
        let storage = match ty {
            ColumnType::TINY => Storage::Int(1),
            ColumnType::SHORT => Storage::Int(2),
            ColumnType::INT24 => Storage::Int(3),
            ColumnType::LONG => Storage::Int(4),
            ColumnType::LONGLONG => Storage::Int(8),
            ColumnType::FLOAT => Storage::Float,
            ColumnType::DOUBLE => Storage::Double,
            ColumnType::NEWDECIMAL => {
                // Metadata: precision in the first byte, scale in the second.
                let len = decimal::decimal_len(lo, hi)?;
                Storage::Decimal { precision: lo, scale: hi, len: len as u8 }
            }
            ColumnType::YEAR => Storage::Year,
            ColumnType::DATE | ColumnType::NEWDATE => Storage::Date,
            ColumnType::TIME => Storage::Time,
            ColumnType::TIME2 => Storage::Time2(fsp(lo)?),
            ColumnType::DATETIME => Storage::DateTime,
            ColumnType::DATETIME2 => Storage::DateTime2(fsp(lo)?),
            ColumnType::TIMESTAMP => Storage::Timestamp,
            ColumnType::TIMESTAMP2 => Storage::Timestamp2(fsp(lo)?),
            ColumnType::BIT => {
                // First byte: bits beyond whole bytes; second: whole bytes.
                let bits = u16::from(hi) * 8 + u16::from(lo);
                if lo > 7 || bits > 64 {
                    return None;
                }
                Storage::Bit { bits }
            }
            ColumnType::VARCHAR | ColumnType::VAR_STRING => {
                Storage::String { len_bytes: if meta < 256 { 1 } else { 2 }, max_len: meta }
            }
            // Pre-GA 5.1 table maps carry no metadata: a plain CHAR.
            ColumnType::STRING if meta == 0 => Storage::String { len_bytes: 1, max_len: 0 },
            ColumnType::STRING | ColumnType::ENUM | ColumnType::SET => {
                // First byte: the real type, with two bits of the length
                // folded in (inverted) for CHAR columns over 255 bytes.
                let (real, len) = if lo & 0x30 != 0x30 {
                    (ColumnType(lo | 0x30), u16::from(hi) | (u16::from((lo & 0x30) ^ 0x30) << 4))
                } else {
                    (ColumnType(lo), u16::from(hi))
                };
                let real = if ty == ColumnType::STRING { real } else { ty };
                return match real {
                    ColumnType::ENUM => match len {
                        1 | 2 => Some((real, Storage::Enum(len as u8))),
                        _ => None,
                    },
                    ColumnType::SET => match len {
                        1..=8 => Some((real, Storage::Set(len as u8))),
                        _ => None,
                    },
                    ColumnType::STRING => Some((
                        real,
                        Storage::String { len_bytes: if len < 256 { 1 } else { 2 }, max_len: len },
                    )),
                    _ => None,
                };
            }
            ColumnType::BLOB | ColumnType::TINY_BLOB | ColumnType::MEDIUM_BLOB | ColumnType::LONG_BLOB => {
                Storage::Blob(blob_len_bytes(lo)?)
            }
            ColumnType::JSON => Storage::Json(blob_len_bytes(lo)?),
            ColumnType::GEOMETRY => Storage::Geometry(blob_len_bytes(lo)?),
            ColumnType::VECTOR => Storage::Vector(blob_len_bytes(lo)?),
            _ => Storage::Unsupported,
        };
        Some((ty, storage))
    }
}

fn fsp(v: u8) -> Option<u8> {
    (v <= 6).then_some(v)
}

fn blob_len_bytes(v: u8) -> Option<u8> {
    (1..=4).contains(&v).then_some(v)
}

/// One decoded value, borrowing the row bytes where it can.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (the column is UNSIGNED).
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL, formatted on demand.
    Decimal(Decimal<'a>),
    /// YEAR (0 for the zero year).
    Year(u16),
    /// DATE.
    Date(Date),
    /// TIME / TIME2.
    Time(Time),
    /// DATETIME / DATETIME2.
    DateTime(DateTime),
    /// TIMESTAMP / TIMESTAMP2 (seconds since the epoch).
    Timestamp(Timestamp),
    /// BIT: big-endian bytes.
    Bit(&'a [u8]),
    /// ENUM: 1-based index (0 is the empty error value).
    Enum(u16),
    /// SET: bitmap of members.
    Set(u64),
    /// CHAR/VARCHAR/BINARY/VARBINARY bytes as stored (CHAR and BINARY have
    /// their trailing pad stripped by the server).
    String(&'a [u8]),
    /// BLOB/TEXT bytes.
    Blob(&'a [u8]),
    /// MySQL binary JSON.
    Json(&'a [u8]),
    /// A partial JSON update: the list of diffs (PARTIAL_UPDATE_ROWS).
    JsonDiff(&'a [u8]),
    /// GEOMETRY: 4-byte SRID + WKB.
    Geometry(&'a [u8]),
    /// VECTOR: little-endian float32 values.
    Vector(&'a [u8]),
}

/// Decodes one non-NULL value laid out as `storage`. Inlined into the row
/// loop so the value does not travel through memory as a large `Result`.
#[inline(always)]
pub fn decode_value<'a>(c: &mut Cursor<'a>, storage: Storage, unsigned: bool) -> Result<Value<'a>> {
    Ok(match storage {
        Storage::Int(n) => {
            let raw = c.uint_n("integer value", usize::from(n))?;
            if unsigned {
                Value::UInt(raw)
            } else {
                let shift = 64 - u32::from(n) * 8;
                Value::Int(((raw << shift) as i64) >> shift)
            }
        }
        Storage::Float => Value::Float(f32::from_bits(c.u32("FLOAT value")?)),
        Storage::Double => Value::Double(f64::from_bits(c.u64("DOUBLE value")?)),
        Storage::Decimal { precision, scale, len } => {
            let raw = c.bytes("DECIMAL value", usize::from(len))?;
            match Decimal::new(raw, precision, scale) {
                Some(d) => Value::Decimal(d),
                None => return Err(c.invalid("DECIMAL value", "length does not match precision")),
            }
        }
        Storage::Year => {
            let y = c.u8("YEAR value")?;
            Value::Year(if y == 0 { 0 } else { 1900 + u16::from(y) })
        }
        Storage::Date => Value::Date(temporal::date_from_u24(c.u24("DATE value")?)),
        Storage::Time => Value::Time(temporal::time_from_packed_decimal(c.u24("TIME value")?)),
        Storage::Time2(fsp) => {
            let int = c.u24_be("TIME2 value")?;
            let frac = c.uint_n_be("TIME2 fraction", temporal::fraction_len(fsp))?;
            Value::Time(temporal::time2(int, frac, fsp))
        }
        Storage::DateTime => {
            Value::DateTime(temporal::datetime_from_packed_decimal(c.u64("DATETIME value")?))
        }
        Storage::DateTime2(fsp) => {
            let int = c.uint_n_be("DATETIME2 value", 5)?;
            let frac = c.uint_n_be("DATETIME2 fraction", temporal::fraction_len(fsp))?;
            Value::DateTime(temporal::datetime2(int, temporal::fraction_micros(frac, fsp), fsp))
        }
        Storage::Timestamp => {
            Value::Timestamp(Timestamp { seconds: c.u32("TIMESTAMP value")?, micros: 0, fsp: 0 })
        }
        Storage::Timestamp2(fsp) => {
            let seconds = c.u32_be("TIMESTAMP2 value")?;
            let frac = c.uint_n_be("TIMESTAMP2 fraction", temporal::fraction_len(fsp))?;
            Value::Timestamp(Timestamp { seconds, micros: temporal::fraction_micros(frac, fsp), fsp })
        }
        Storage::Bit { bits } => Value::Bit(c.bytes("BIT value", usize::from(bits).div_ceil(8))?),
        Storage::Enum(n) => Value::Enum(c.uint_n("ENUM value", usize::from(n))? as u16),
        Storage::Set(n) => Value::Set(c.uint_n("SET value", usize::from(n))?),
        Storage::String { len_bytes, max_len } => {
            let at = c.offset();
            let len = c.uint_n("string length", usize::from(len_bytes))? as usize;
            if len > usize::from(max_len) && max_len > 0 {
                return Err(crate::error::DecodeError::Invalid {
                    offset: at,
                    what: "string length",
                    detail: format!("{len} bytes in a column declared for at most {max_len}"),
                });
            }
            Value::String(c.bytes("string value", len)?)
        }
        Storage::Blob(n) => Value::Blob(length_prefixed(c, n, "BLOB/TEXT value")?),
        Storage::Json(n) => Value::Json(length_prefixed(c, n, "JSON value")?),
        Storage::Geometry(n) => Value::Geometry(length_prefixed(c, n, "GEOMETRY value")?),
        Storage::Vector(n) => Value::Vector(length_prefixed(c, n, "VECTOR value")?),
        Storage::Unsupported => return Err(c.invalid("column value", "column type with no known row layout")),
    })
}

#[inline]
fn length_prefixed<'a>(c: &mut Cursor<'a>, len_bytes: u8, what: &'static str) -> Result<&'a [u8]> {
    let len = c.uint_n(what, usize::from(len_bytes))?;
    if len > c.remaining() as u64 {
        return Err(crate::error::DecodeError::Truncated {
            offset: c.offset(),
            what,
            needed: len,
            available: c.remaining() as u64,
        });
    }
    c.bytes(what, len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8], ty: ColumnType, meta: u16, unsigned: bool) -> Value<'_> {
        let (_, storage) = Storage::from_table_map(ty, meta).expect("valid metadata");
        let mut c = Cursor::new(bytes, 0);
        let v = decode_value(&mut c, storage, unsigned).expect("decodes");
        assert!(c.is_empty(), "value consumed every byte");
        v
    }

    #[test]
    fn integers_signed_and_unsigned() {
        assert_eq!(one(&[0xff], ColumnType::TINY, 0, false), Value::Int(-1));
        assert_eq!(one(&[0xff], ColumnType::TINY, 0, true), Value::UInt(255));
        assert_eq!(one(&[0, 0, 0x80], ColumnType::INT24, 0, false), Value::Int(-8_388_608));
        assert_eq!(one(&[0xff; 8], ColumnType::LONGLONG, 0, true), Value::UInt(u64::MAX));
        assert_eq!(one(&[0, 0, 0, 0, 0, 0, 0, 0x80], ColumnType::LONGLONG, 0, false), Value::Int(i64::MIN));
    }

    #[test]
    fn string_metadata_hides_enum_set_and_long_char() {
        // ENUM in a STRING: real type 247, 1 byte.
        let (real, s) = Storage::from_table_map(ColumnType::STRING, 0x01f7).unwrap();
        assert_eq!((real, s), (ColumnType::ENUM, Storage::Enum(1)));
        // CHAR(255) utf8mb4 = 1020 bytes = 0x3fc: the high bits are folded
        // into the type byte, 0xfe ^ 0x30 = 0xce.
        let (real, s) = Storage::from_table_map(ColumnType::STRING, 0xfcce).unwrap();
        assert_eq!(real, ColumnType::STRING);
        assert_eq!(s, Storage::String { len_bytes: 2, max_len: 1020 });
    }

    #[test]
    fn impossible_metadata_is_refused() {
        assert!(Storage::from_table_map(ColumnType::NEWDECIMAL, 0x0401).is_none());
        assert!(Storage::from_table_map(ColumnType::DATETIME2, 9).is_none());
        assert!(Storage::from_table_map(ColumnType::BLOB, 5).is_none());
    }

    #[test]
    fn blob_length_overrun_is_an_error_not_a_panic() {
        let (_, s) = Storage::from_table_map(ColumnType::BLOB, 4).unwrap();
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0x7f, 1, 2], 50);
        let err = decode_value(&mut c, s, false).unwrap_err();
        assert_eq!(err.offset(), 54);
    }

    #[test]
    fn datetime2_and_timestamp2() {
        // 2024-01-02 03:04:05.123 DATETIME(3)
        let ym = 2024u64 * 13 + 1;
        let v = 0x80_0000_0000u64 | (((ym << 5) | 2) << 17) | (3 << 12) | (4 << 6) | 5;
        let mut bytes = v.to_be_bytes()[3..].to_vec();
        bytes.extend_from_slice(&1230u16.to_be_bytes());
        match one(&bytes, ColumnType::DATETIME2, 3, false) {
            Value::DateTime(dt) => assert_eq!(dt.to_string(), "2024-01-02 03:04:05.123"),
            other => panic!("{other:?}"),
        }
    }
}
