//! TRANSACTION_PAYLOAD_EVENT (MySQL 8.0.20+): a whole transaction's events,
//! usually zstd-compressed, in one event.
//!
//! ```text
//! ( field_type lenenc | field_len lenenc | value )*  field_type 0 (end mark)
//! | payload (to the end)
//! ```
//! Fields: 1 = compressed size, 2 = compression type (0 zstd, 255 none),
//! 3 = uncompressed size. The inner events have headers but no checksums.

use std::io::Read;

use crate::cursor::Cursor;
use crate::error::{DecodeError, Result};

/// Largest uncompressed payload accepted; a transaction bigger than this
/// is refused with an error rather than exhausting memory.
pub const MAX_PAYLOAD: u64 = 4 << 30;

/// How the payload is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd.
    Zstd,
    /// Stored as is.
    None,
    /// A code this decoder does not know.
    Other(u64),
}

/// A decoded TRANSACTION_PAYLOAD header with the payload still packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionPayload<'a> {
    /// How `payload` is compressed.
    pub compression: Compression,
    /// Size after decompression, as declared.
    pub uncompressed_size: u64,
    /// The packed inner events.
    pub payload: &'a [u8],
    /// Absolute offset of `payload`.
    pub payload_offset: u64,
}

impl<'a> TransactionPayload<'a> {
    /// Decodes the header fields.
    pub fn parse(c: &mut Cursor<'a>) -> Result<Self> {
        let mut compression = Compression::None;
        let mut uncompressed_size = None;
        let mut size = None;
        loop {
            let field = c.lenenc("payload field type")?;
            if field == 0 {
                break;
            }
            let len = c.lenenc_len("payload field length")?;
            let mut value = c.sub("payload field", len)?;
            match field {
                1 => size = Some(value.lenenc("payload size")?),
                2 => {
                    compression = match value.lenenc("payload compression type")? {
                        0 => Compression::Zstd,
                        255 => Compression::None,
                        other => Compression::Other(other),
                    }
                }
                3 => uncompressed_size = Some(value.lenenc("payload uncompressed size")?),
                // Unknown fields carry their length; skip them.
                _ => {}
            }
        }
        let payload_offset = c.offset();
        let payload = c.take_rest();
        if let Some(size) = size {
            if size != payload.len() as u64 {
                return Err(DecodeError::Invalid {
                    offset: payload_offset,
                    what: "transaction payload size",
                    detail: format!("declared {size} bytes, event holds {}", payload.len()),
                });
            }
        }
        let uncompressed_size = match (compression, uncompressed_size) {
            (_, Some(n)) => n,
            (Compression::None, None) => payload.len() as u64,
            (_, None) => {
                return Err(DecodeError::Invalid {
                    offset: payload_offset,
                    what: "transaction payload",
                    detail: "compressed payload without an uncompressed size".into(),
                })
            }
        };
        Ok(TransactionPayload { compression, uncompressed_size, payload, payload_offset })
    }

    /// Unpacks the inner events into `out` (cleared first).
    pub fn decompress_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let fail = |detail: String| DecodeError::Decompress {
            offset: self.payload_offset,
            what: "transaction payload",
            detail,
        };
        if self.uncompressed_size > MAX_PAYLOAD {
            return Err(fail(format!("{} bytes uncompressed is over the 4 GiB cap", self.uncompressed_size)));
        }
        out.clear();
        match self.compression {
            Compression::None => out.extend_from_slice(self.payload),
            Compression::Zstd => {
                // Capacity is bounded by the cap above, and by 64 MiB up
                // front so a lying header cannot reserve gigabytes.
                out.reserve(self.uncompressed_size.min(64 << 20) as usize);
                let decoder =
                    zstd::stream::read::Decoder::new(self.payload).map_err(|e| fail(e.to_string()))?;
                decoder.take(self.uncompressed_size + 1).read_to_end(out).map_err(|e| fail(e.to_string()))?;
            }
            Compression::Other(code) => return Err(fail(format!("unknown compression type {code}"))),
        }
        if out.len() as u64 != self.uncompressed_size {
            return Err(fail(format!(
                "unpacked to {} bytes, header said {}",
                out.len(),
                self.uncompressed_size
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(compression: u8, payload: &[u8], uncompressed: u64) -> Vec<u8> {
        let mut b = vec![1, 1, payload.len() as u8, 2, 1, compression, 3, 1, uncompressed as u8, 0];
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn zstd_round_trip() {
        let inner = b"some inner events".repeat(4);
        let packed = zstd::bulk::compress(&inner, 3).unwrap();
        let body = event(0, &packed, inner.len() as u64);
        let p = TransactionPayload::parse(&mut Cursor::new(&body, 100)).unwrap();
        assert_eq!(p.compression, Compression::Zstd);
        let mut out = Vec::new();
        p.decompress_into(&mut out).unwrap();
        assert_eq!(out, inner);
    }

    #[test]
    fn lying_sizes_are_errors() {
        let inner = b"abc".repeat(10);
        let packed = zstd::bulk::compress(&inner, 3).unwrap();
        let body = event(0, &packed, 5);
        let p = TransactionPayload::parse(&mut Cursor::new(&body, 0)).unwrap();
        assert!(p.decompress_into(&mut Vec::new()).is_err());
        let mut body = event(0, &packed, 30);
        body[2] = 1;
        assert!(TransactionPayload::parse(&mut Cursor::new(&body, 0)).is_err());
    }
}
