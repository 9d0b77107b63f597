//! CRC32 event checksums (`binlog_checksum=CRC32`).
//!
//! The CRC (ISO-HDLC, the zlib polynomial) covers the header and body and is
//! stored little-endian in the event's last four bytes. The server computes
//! the FORMAT_DESCRIPTION's CRC with LOG_EVENT_BINLOG_IN_USE_F cleared, so
//! that clearing the flag when the file is closed does not invalidate it.

use crate::error::{DecodeError, Result};
use crate::header::LOG_EVENT_BINLOG_IN_USE_F;

/// Byte offset of the flags field in the header.
const FLAGS_OFFSET: usize = 17;

fn stored_crc(event: &[u8]) -> Option<(u32, &[u8])> {
    let split = event.len().checked_sub(4)?;
    let (covered, tail) = event.split_at(split);
    Some((u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]), covered))
}

/// Verifies the CRC32 at the end of `event` (which starts at `offset`).
pub fn verify(event: &[u8], offset: u64) -> Result<()> {
    let (stored, covered) = stored_crc(event).ok_or_else(|| DecodeError::Invalid {
        offset,
        what: "event checksum",
        detail: "event shorter than its checksum".into(),
    })?;
    let computed = crc32fast::hash(covered);
    if stored != computed {
        return Err(DecodeError::Checksum { offset, stored, computed });
    }
    Ok(())
}

/// Verifies a FORMAT_DESCRIPTION's CRC, which was computed with the in-use
/// flag cleared.
pub fn verify_fde(event: &[u8], offset: u64) -> Result<()> {
    let (stored, covered) = stored_crc(event).ok_or_else(|| DecodeError::Invalid {
        offset,
        what: "event checksum",
        detail: "event shorter than its checksum".into(),
    })?;
    if covered.len() <= FLAGS_OFFSET {
        return Err(DecodeError::Invalid { offset, what: "event checksum", detail: "FDE too short".into() });
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&covered[..FLAGS_OFFSET]);
    h.update(&[covered[FLAGS_OFFSET] & !(LOG_EVENT_BINLOG_IN_USE_F as u8)]);
    h.update(&covered[FLAGS_OFFSET + 1..]);
    let computed = h.finalize();
    if stored == computed {
        return Ok(());
    }
    // Some writers compute it with the flag as stored; accept that too.
    let as_stored = crc32fast::hash(covered);
    if stored == as_stored {
        return Ok(());
    }
    Err(DecodeError::Checksum { offset, stored, computed })
}

/// Appends a CRC32 to an event (used by tests and by writers of events).
pub fn append(event: &mut Vec<u8>) {
    let crc = crc32fast::hash(event);
    event.extend_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_flipped_bit() {
        let mut ev = vec![0u8; 30];
        ev[4] = 16;
        append(&mut ev);
        verify(&ev, 0).unwrap();
        ev[20] ^= 1;
        assert!(matches!(verify(&ev, 9), Err(DecodeError::Checksum { offset: 9, .. })));
    }
}
