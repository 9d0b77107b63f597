//! Character sets of string columns, by collation id, and conversion of
//! their bytes to UTF-8.
//!
//! TABLE_MAP metadata gives a collation id per character column (with
//! `binlog_row_metadata=FULL`). The ids below are the ones MySQL and MariaDB
//! share; MariaDB's NO PAD and UCA 14.0 collations are listed where they map
//! onto a charset handled here.

use std::borrow::Cow;

/// How a column's bytes are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `binary`: bytes, not text.
    Binary,
    /// utf8mb3, utf8mb4 or ascii: already UTF-8.
    Utf8,
    /// latin1, which MySQL defines as Windows-1252.
    Latin1,
    /// ucs2 or utf16 (big-endian).
    Utf16Be,
    /// utf16le.
    Utf16Le,
    /// utf32 (big-endian).
    Utf32,
    /// Another charset: shown as UTF-8 when its bytes are valid UTF-8.
    Other(u16),
}

/// The charset of a collation id.
pub fn charset_of(collation: u16) -> Charset {
    match collation {
        63 => Charset::Binary,
        5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 | 1032 | 1071 => Charset::Latin1,
        11 | 65 | 1035 | 1089 => Charset::Utf8,
        33 | 83 | 76 | 192..=215 | 223 | 45 | 46 | 224..=247 | 255..=323 => Charset::Utf8,
        1057 | 1069 | 1070 | 1101 | 1216..=1247 | 1248..=1279 | 2048..=2303 => Charset::Utf8,
        35 | 90 | 128..=151 | 159 | 54 | 55 | 101..=124 => Charset::Utf16Be,
        56 | 62 => Charset::Utf16Le,
        60 | 61 | 160..=183 => Charset::Utf32,
        other => Charset::Other(other),
    }
}

/// Windows-1252 code points for bytes 0x80..=0x9f (MySQL's latin1).
const CP1252_HIGH: [u16; 32] = [
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152,
    0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122,
    0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
];

/// Converts text bytes to UTF-8. Returns `None` when the bytes are not
/// valid in their charset (the caller then shows them as hex).
pub fn to_utf8(bytes: &[u8], charset: Charset) -> Option<Cow<'_, str>> {
    match charset {
        Charset::Binary => None,
        Charset::Utf8 | Charset::Other(_) => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        Charset::Latin1 => {
            if bytes.is_ascii() {
                return std::str::from_utf8(bytes).ok().map(Cow::Borrowed);
            }
            let s = bytes
                .iter()
                .map(|&b| match b {
                    0x80..=0x9f => {
                        char::from_u32(u32::from(CP1252_HIGH[usize::from(b - 0x80)])).unwrap_or('\u{fffd}')
                    }
                    _ => char::from(b),
                })
                .collect();
            Some(Cow::Owned(s))
        }
        Charset::Utf16Be | Charset::Utf16Le => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units = bytes.chunks_exact(2).map(|p| {
                if charset == Charset::Utf16Be {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    u16::from_le_bytes([p[0], p[1]])
                }
            });
            char::decode_utf16(units).collect::<Result<String, _>>().ok().map(Cow::Owned)
        }
        Charset::Utf32 => {
            if !bytes.len().is_multiple_of(4) {
                return None;
            }
            bytes
                .chunks_exact(4)
                .map(|p| char::from_u32(u32::from_be_bytes([p[0], p[1], p[2], p[3]])))
                .collect::<Option<String>>()
                .map(Cow::Owned)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_cp1252() {
        assert_eq!(to_utf8(b"caf\xe9 \x80", Charset::Latin1).unwrap(), "café €");
        assert_eq!(charset_of(8), Charset::Latin1);
        assert_eq!(charset_of(63), Charset::Binary);
        assert_eq!(charset_of(255), Charset::Utf8);
    }

    #[test]
    fn invalid_text_is_none() {
        assert!(to_utf8(b"\xff\xfe", Charset::Utf8).is_none());
        assert!(to_utf8(b"\xd8\x00", Charset::Utf16Be).is_none());
        assert_eq!(to_utf8(b"\x00A", Charset::Utf16Be).unwrap(), "A");
    }
}
