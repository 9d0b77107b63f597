//! The binlog stream: what the server sends after COM_BINLOG_DUMP, and the
//! semi-sync acknowledgement the replica sends back.
//!
//! Each event arrives in its own packet behind a 0x00 byte. With semi-sync
//! negotiated (`SET @rpl_semi_sync_slave = 1`), two more bytes come first:
//! the magic 0xef and a flag saying whether the primary waits for an ACK of
//! this event. The stream ends with EOF (non-blocking dumps) or ERR.
//!
//! This module does not look inside events: the caller decodes them and
//! knows the file and position an ACK names.

use bytes::Bytes;

use crate::error::{ProtocolError, ServerError};
use crate::response::{decode_err, is_eof, ERR_HEADER, OK_HEADER};
use crate::wire::{put_u64, Reader};

/// First byte of the semi-sync header and of the ACK packet.
pub const SEMI_SYNC_MAGIC: u8 = 0xef;
/// Semi-sync header flag: the primary waits for this event's ACK.
pub const SEMI_SYNC_NEEDS_ACK: u8 = 0x01;

/// One packet of the binlog stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPacket {
    /// A binlog event, header to checksum, exactly as the primary wrote it.
    Event { event: Bytes, needs_ack: bool },
    /// The primary has nothing more to send (non-blocking dump).
    End,
    /// The primary ended the stream with an error.
    Error(ServerError),
}

impl StreamPacket {
    /// Decodes a payload; `semi_sync`: whether semi-sync was negotiated (the
    /// header is then mandatory). The event bytes are a slice of `payload`,
    /// not a copy.
    pub fn decode(payload: Bytes, semi_sync: bool) -> Result<Self, ProtocolError> {
        match payload.first() {
            Some(&OK_HEADER) => {}
            Some(&ERR_HEADER) => return Ok(StreamPacket::Error(decode_err(&payload)?)),
            Some(_) if is_eof(&payload) => return Ok(StreamPacket::End),
            _ => {
                return Err(ProtocolError::Unexpected {
                    what: "packet in the binlog stream",
                    first: payload.first().copied().unwrap_or(0),
                    len: payload.len(),
                })
            }
        }
        let mut r = Reader::new(&payload);
        r.skip(1, "OK byte")?;
        let mut needs_ack = false;
        if semi_sync {
            let magic = r.u8("semi-sync magic")?;
            if magic != SEMI_SYNC_MAGIC {
                return Err(r.invalid_at(1, "semi-sync magic", format!("0x{magic:02x}, expected 0xef")));
            }
            needs_ack = r.u8("semi-sync flag")? & SEMI_SYNC_NEEDS_ACK != 0;
        }
        if r.remaining() < EVENT_HEADER_LEN {
            return Err(ProtocolError::Truncated {
                what: "binlog event header",
                offset: r.offset(),
                needed: EVENT_HEADER_LEN - r.remaining(),
            });
        }
        Ok(StreamPacket::Event { event: payload.slice(r.offset()..), needs_ack })
    }

    /// The payload a server sends for this packet (tests, scripted servers).
    pub fn encode(&self, semi_sync: bool) -> Vec<u8> {
        match self {
            StreamPacket::Event { event, needs_ack } => {
                let mut out = vec![OK_HEADER];
                if semi_sync {
                    out.extend_from_slice(&[SEMI_SYNC_MAGIC, u8::from(*needs_ack)]);
                }
                out.extend_from_slice(event);
                out
            }
            StreamPacket::End => vec![0xfe, 0, 0, 2, 0],
            StreamPacket::Error(e) => crate::response::encode_err(e),
        }
    }
}

/// Length of the v4 binlog event header; anything shorter is not an event.
pub const EVENT_HEADER_LEN: usize = 19;

/// The semi-sync ACK: "I have this event durably; the transaction may
/// commit". It names the binlog file and the end position of the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemiSyncAck {
    pub position: u64,
    pub file: Vec<u8>,
}

impl SemiSyncAck {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.file.len());
        out.push(SEMI_SYNC_MAGIC);
        put_u64(&mut out, self.position);
        out.extend_from_slice(&self.file);
        out
    }

    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("semi-sync magic")? != SEMI_SYNC_MAGIC {
            return Err(r.invalid_at(0, "semi-sync magic", "expected 0xef"));
        }
        let position = r.u64("binlog position")?;
        Ok(SemiSyncAck { position, file: r.rest().to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Bytes {
        Bytes::from((0..40u8).collect::<Vec<_>>())
    }

    #[test]
    fn events_with_and_without_semi_sync() {
        for semi in [false, true] {
            for needs_ack in [false, semi] {
                let p = StreamPacket::Event { event: event(), needs_ack };
                let bytes = Bytes::from(p.encode(semi));
                assert_eq!(StreamPacket::decode(bytes, semi).unwrap(), p);
            }
        }
    }

    #[test]
    fn end_and_error() {
        assert_eq!(
            StreamPacket::decode(Bytes::from_static(&[0xfe, 0, 0, 2, 0]), false).unwrap(),
            StreamPacket::End
        );
        let e = ServerError { code: 1236, sql_state: Some("HY000".into()), message: "purged".into() };
        let p = StreamPacket::Error(e);
        assert_eq!(StreamPacket::decode(Bytes::from(p.encode(true)), true).unwrap(), p);
    }

    #[test]
    fn malformed_stream_packets() {
        let short = Bytes::from_static(&[0, 1, 2, 3]);
        assert!(matches!(
            StreamPacket::decode(short, false),
            Err(ProtocolError::Truncated { offset: 1, .. })
        ));
        let no_magic = Bytes::from(StreamPacket::Event { event: event(), needs_ack: false }.encode(false));
        let err = StreamPacket::decode(no_magic, true).unwrap_err();
        assert!(err.to_string().contains("semi-sync magic"), "{err}");
        assert!(StreamPacket::decode(Bytes::from_static(&[0x42; 30]), false).is_err());
        assert!(StreamPacket::decode(Bytes::new(), false).is_err());
    }

    #[test]
    fn ack_round_trip_and_layout() {
        let ack = SemiSyncAck { position: 1234, file: b"mysql-bin.000007".to_vec() };
        let bytes = ack.encode();
        assert_eq!(&bytes[..9], &[0xef, 0xd2, 0x04, 0, 0, 0, 0, 0, 0]);
        assert_eq!(SemiSyncAck::decode(&bytes).unwrap(), ack);
        assert!(SemiSyncAck::decode(&bytes[..5]).is_err());
    }
}
