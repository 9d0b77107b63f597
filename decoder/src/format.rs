//! FORMAT_DESCRIPTION_EVENT: how the rest of the file is laid out.
//!
//! ```text
//! binlog_version u16 | server_version [50] NUL-padded | create_timestamp u32
//! | header_length u8 | post_header_length[type-1] u8 ... | checksum_alg u8 | crc u32
//! ```
//!
//! The number of post-header lengths varies (18 in 5.0 up to 171 in MariaDB
//! 11), so it is derived from the event size, never assumed. The checksum
//! algorithm byte exists only from MySQL 5.6.1 and MariaDB 5.3 on; the FDE
//! then always ends with the checksum algorithm and a 4-byte CRC, even when
//! the algorithm is OFF.

use crate::cursor::Cursor;
use crate::error::Result;
use crate::header::{EventType, HEADER_LEN};

/// How events of the file are checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlg {
    /// No checksum (older servers, or `binlog_checksum=NONE`).
    Off,
    /// A 4-byte CRC32 (ISO-HDLC) after every event.
    Crc32,
    /// A value this decoder does not know; events are read as unchecksummed.
    Other(u8),
}

impl ChecksumAlg {
    /// Bytes the checksum adds after each event.
    pub fn trailer_len(self) -> usize {
        match self {
            ChecksumAlg::Crc32 => 4,
            _ => 0,
        }
    }
}

/// A decoded FORMAT_DESCRIPTION_EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatDescription {
    /// Always 4 for files this decoder reads.
    pub binlog_version: u16,
    /// E.g. `8.0.31` or `10.11.6-MariaDB-log`.
    pub server_version: String,
    /// When the file was created (0 after a rotation).
    pub create_timestamp: u32,
    /// The common header length (19).
    pub header_length: u8,
    /// Post-header length for each event type, indexed by type code - 1.
    pub post_header_lengths: Vec<u8>,
    /// The checksum algorithm of the events that follow.
    pub checksum: ChecksumAlg,
    /// True when the FDE itself carries an algorithm byte and a CRC.
    pub has_checksum_field: bool,
    /// True for early 5.1 development builds whose event type codes 16..=22
    /// mean other things (see [`FormatDescription::canonical_type`]).
    pub permuted: bool,
}

impl FormatDescription {
    /// Decodes the body of an FDE (everything after the 19-byte header,
    /// including the trailing algorithm byte and CRC when present).
    pub fn parse(c: &mut Cursor<'_>) -> Result<Self> {
        let binlog_version = c.u16("FDE binlog version")?;
        if binlog_version != 4 {
            return Err(c.invalid(
                "FDE binlog version",
                format!("version {binlog_version}; only binlog format v4 (MySQL 5.0+) is supported"),
            ));
        }
        let raw_version = c.bytes("FDE server version", 50)?;
        let end = raw_version.iter().position(|&b| b == 0).unwrap_or(raw_version.len());
        let server_version = String::from_utf8_lossy(&raw_version[..end]).into_owned();
        let create_timestamp = c.u32("FDE create timestamp")?;
        let header_length = c.u8("FDE header length")?;
        if usize::from(header_length) != HEADER_LEN {
            return Err(c.invalid("FDE header length", format!("{header_length}; expected {HEADER_LEN}")));
        }
        let has_checksum_field = version_has_checksum(&server_version);
        let trailer = if has_checksum_field { 5 } else { 0 };
        let n = c
            .remaining()
            .checked_sub(trailer)
            .ok_or_else(|| c.invalid("FDE post-header lengths", "event too short for its checksum field"))?;
        let mut post_header_lengths = c.bytes("FDE post-header lengths", n)?.to_vec();
        let permuted = uses_old_type_numbers(&server_version, post_header_lengths.len());
        if permuted {
            post_header_lengths = canonical_post_headers(&post_header_lengths);
        }
        let checksum = if has_checksum_field {
            let alg = c.u8("FDE checksum algorithm")?;
            c.skip("FDE checksum", 4)?;
            match alg {
                0 => ChecksumAlg::Off,
                1 => ChecksumAlg::Crc32,
                other => ChecksumAlg::Other(other),
            }
        } else {
            ChecksumAlg::Off
        };
        Ok(FormatDescription {
            binlog_version,
            server_version,
            create_timestamp,
            header_length,
            post_header_lengths,
            checksum,
            has_checksum_field,
            permuted,
        })
    }

    /// The type code as current servers number it: early 5.1 development
    /// builds numbered TABLE_MAP..EXECUTE_LOAD_QUERY differently.
    pub fn canonical_type(&self, raw: EventType) -> EventType {
        if !self.permuted {
            return raw;
        }
        match raw.0 {
            16 => EventType::TABLE_MAP,
            17 => EventType::PRE_GA_WRITE_ROWS,
            18 => EventType::PRE_GA_UPDATE_ROWS,
            19 => EventType::PRE_GA_DELETE_ROWS,
            20 => EventType::XID,
            21 => EventType::BEGIN_LOAD_QUERY,
            22 => EventType::EXECUTE_LOAD_QUERY,
            _ => raw,
        }
    }

    /// The post-header length the server declared for `ty`, if it declared one.
    pub fn post_header_len(&self, ty: EventType) -> Option<u8> {
        usize::from(ty.0).checked_sub(1).and_then(|i| self.post_header_lengths.get(i).copied())
    }

    /// True when the server is MariaDB.
    pub fn is_mariadb(&self) -> bool {
        self.server_version.contains("MariaDB")
    }

    /// A description to use before any FDE was seen (a stream that starts
    /// mid-file): a current server with CRC32 checksums.
    pub fn assumed(checksum: ChecksumAlg) -> Self {
        FormatDescription {
            binlog_version: 4,
            server_version: String::new(),
            create_timestamp: 0,
            header_length: HEADER_LEN as u8,
            post_header_lengths: Vec::new(),
            checksum,
            has_checksum_field: true,
            permuted: false,
        }
    }
}

/// Early 5.1 development trees (5.1.0..5.1.14 and the 5.2 "wl2325" row
/// format builds) wrote 22 event types, with TABLE_MAP at 16, the rows
/// events at 17..=19, XID at 20 and the LOAD DATA query events at 21..=22.
/// MySQL's own reader permutes them the same way.
fn uses_old_type_numbers(version: &str, n_types: usize) -> bool {
    let (major, minor, patch) = split_version(version);
    n_types == 22 && major == 5 && ((minor == 1 && patch < 15) || minor == 2)
}

/// Post-header lengths re-indexed by current type codes.
fn canonical_post_headers(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 26];
    let n = raw.len().min(15);
    out[..n].copy_from_slice(&raw[..n]);
    // Old code -> current code, for the seven moved types.
    for (old, new) in [(16u8, 19u8), (17, 20), (18, 21), (19, 22), (20, 16), (21, 17), (22, 18)] {
        if let Some(&len) = raw.get(usize::from(old) - 1) {
            out[usize::from(new) - 1] = len;
        }
    }
    out
}

/// (major, minor, patch) from the leading digits of a version string.
fn split_version(v: &str) -> (u32, u32, u32) {
    let mut parts = v.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The checksum algorithm byte appeared in MySQL 5.6.1 and MariaDB 5.3.0.
fn version_has_checksum(v: &str) -> bool {
    let split = if v.contains("MariaDB") { (5, 3, 0) } else { (5, 6, 1) };
    split_version(v) >= split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_split_versions() {
        assert!(!version_has_checksum("5.5.38-0ubuntu0.12.04.1-log"));
        assert!(!version_has_checksum("5.6.0"));
        assert!(version_has_checksum("5.6.4-m7-debug-log"));
        assert!(version_has_checksum("8.0.31"));
        assert!(version_has_checksum("10.0.17-MariaDB-1~wheezy-log"));
        assert!(version_has_checksum("5.3.0-MariaDB"));
    }
}
