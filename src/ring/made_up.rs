//! A made-up binlog, as the stream hands it to the ring (whole units of
//! [`Received`] events with valid sizes, positions and CRC32s): for the
//! ring's tests, its fuzz target and its bench.

use std::sync::Arc;

use bytes::Bytes;

use crate::stream::Received;

/// The FORMAT_DESCRIPTION event's type code.
const FORMAT_DESCRIPTION: u8 = gapless_decoder::EventType::FORMAT_DESCRIPTION.0;

/// Builds the units of a made-up binlog: transactions of row events with
/// MariaDB GTIDs `<domain>-1-<n>`, checksummed events.
#[derive(Debug, Clone)]
pub struct MadeUpBinlog {
    /// The binlog file written.
    pub file: Arc<str>,
    /// Where the next event goes.
    pub pos: u64,
    /// The GTID domain.
    pub domain: u32,
    /// The last GTID sequence number used.
    pub seq: u64,
}

impl MadeUpBinlog {
    /// A binlog file `file` from position 4, GTIDs in `domain`.
    pub fn new(file: &str, domain: u32) -> MadeUpBinlog {
        MadeUpBinlog { file: Arc::from(file), pos: 4, domain, seq: 0 }
    }

    /// The next event: `body` after a v4 header, a CRC32 after it.
    pub fn event(&mut self, type_code: u8, body: &[u8], gtid: Option<&Arc<str>>) -> Received {
        let size = 19 + body.len() + 4;
        let offset = self.pos;
        let end = offset + size as u64;
        let mut bytes = Vec::with_capacity(size);
        bytes.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        bytes.push(type_code);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&(size as u32).to_le_bytes());
        bytes.extend_from_slice(&(end as u32).to_le_bytes());
        bytes.extend_from_slice(&0u16.to_le_bytes());
        bytes.extend_from_slice(body);
        gapless_decoder::checksum::append(&mut bytes);
        self.pos = end;
        Received {
            bytes: Bytes::from(bytes),
            file: self.file.clone(),
            offset,
            end,
            gtid: gtid.cloned(),
            resent: false,
            crc32: true,
        }
    }

    /// A GTID event, `rows` row events of `size` bytes, an XID event.
    pub fn trx(&mut self, rows: usize, size: usize) -> Vec<Received> {
        self.seq += 1;
        let gtid: Arc<str> = Arc::from(format!("{}-1-{}", self.domain, self.seq));
        let mut unit = vec![self.event(162, &[0; 13], Some(&gtid))];
        for i in 0..rows {
            let body = vec![(self.seq as u8).wrapping_add(i as u8); size];
            unit.push(self.event(23, &body, Some(&gtid)));
        }
        unit.push(self.event(16, &[0; 8], Some(&gtid)));
        unit
    }

    /// A FORMAT_DESCRIPTION (its body is not decoded here), a unit of its own.
    pub fn format_description(&mut self) -> Vec<Received> {
        let mut body = 4u16.to_le_bytes().to_vec();
        body.extend_from_slice(&[b'1', b'0', b'.', b'1', b'1', 0, 0, 0]);
        body.resize(2 + 50 + 4 + 1, 0);
        body.push(19);
        body.extend_from_slice(&[0; 40]);
        body.push(1);
        vec![self.event(FORMAT_DESCRIPTION, &body, None)]
    }

    /// The ROTATE at the end of a file; the next events are in the next one.
    pub fn rotate(&mut self) -> Vec<Received> {
        let number = self.file.rsplit('.').next().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0);
        let next = format!("mysql-bin.{:06}", number + 1);
        let mut body = 4u64.to_le_bytes().to_vec();
        body.extend_from_slice(next.as_bytes());
        let unit = vec![self.event(4, &body, None)];
        self.file = Arc::from(next.as_str());
        self.pos = 4;
        unit
    }
}
