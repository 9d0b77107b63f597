//! Reading a whole binlog file (or any byte slice holding one) event by
//! event.
//!
//! Framing comes from the headers' `event_size`; decoding is delegated to
//! [`Decoder`]. Events packed in a TRANSACTION_PAYLOAD are unpacked into a
//! reusable buffer and handed out one by one after the payload event, so a
//! consumer sees every row of a compressed transaction like any other.

use crate::cursor::Cursor;
use crate::error::{DecodeError, Result};
use crate::events::{Decoder, Event, EventData};
use crate::header::{EventHeader, BINLOG_MAGIC, HEADER_LEN};

/// Reads events from the bytes of a binlog file.
#[derive(Debug)]
pub struct BinlogReader<'a> {
    data: &'a [u8],
    pos: usize,
    decoder: Decoder,
    payload: PayloadEvents,
    done: bool,
}

/// The events packed in a TRANSACTION_PAYLOAD event, unpacked into a
/// reusable buffer and decoded one at a time. [`BinlogReader`] uses it for
/// files; a live stream, which gets events one by one, uses it directly.
#[derive(Debug, Default)]
pub struct PayloadEvents {
    buf: Vec<u8>,
    pos: usize,
    outer: (u64, u64),
}

impl PayloadEvents {
    /// If `ev` is a TRANSACTION_PAYLOAD, unpacks it (dropping what was left
    /// of the previous one) and returns true.
    pub fn load(&mut self, ev: &Event<'_>) -> Result<bool> {
        let EventData::TransactionPayload(p) = &ev.data else { return Ok(false) };
        self.clear();
        p.decompress_into(&mut self.buf).inspect_err(|_| self.buf.clear())?;
        self.outer = (ev.offset, ev.end_offset);
        Ok(true)
    }

    /// Forgets the unpacked events.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }

    /// Whether unpacked events remain.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next unpacked event, decoded with `decoder` (which holds the
    /// table maps of the transaction); `None` when all were handed out.
    /// Errors name the payload event's position and the inner byte.
    pub fn next<'s>(&'s mut self, decoder: &mut Decoder) -> Option<Result<Event<'s>>> {
        if self.is_empty() {
            return None;
        }
        let (outer, outer_end) = self.outer;
        let p = self.pos;
        let in_payload = |e: &DecodeError, at: usize| DecodeError::Invalid {
            offset: outer,
            what: "transaction payload",
            detail: format!("inner event at payload byte {at}: {e}"),
        };
        let size = match frame(&self.buf, p, 0) {
            Ok(size) => size,
            Err(e) => {
                self.clear();
                return Some(Err(in_payload(&e, e.offset() as usize)));
            }
        };
        self.pos += size;
        let bytes = &self.buf[p..p + size];
        Some(decoder.decode_payload_event(outer, outer_end, bytes).map_err(|e| in_payload(&e, p)))
    }
}

/// Reads the header at `pos` and returns the event's size, checking that the
/// whole event lies inside `data`.
fn frame(data: &[u8], pos: usize, base: u64) -> Result<usize> {
    let rest = &data[pos..];
    let offset = base + pos as u64;
    if rest.len() < HEADER_LEN {
        return Err(DecodeError::Truncated {
            offset,
            what: "event header",
            needed: HEADER_LEN as u64,
            available: rest.len() as u64,
        });
    }
    let header = EventHeader::parse(&mut Cursor::new(&rest[..HEADER_LEN], offset))?;
    let size = header.event_size as usize;
    if size < HEADER_LEN {
        return Err(DecodeError::Invalid {
            offset,
            what: "event size",
            detail: format!(
                "{size} bytes is smaller than the {HEADER_LEN}-byte header ({} event)",
                header.event_type
            ),
        });
    }
    if size > rest.len() {
        return Err(DecodeError::Truncated {
            offset,
            what: "event (the file ends inside it)",
            needed: size as u64,
            available: rest.len() as u64,
        });
    }
    Ok(size)
}

impl<'a> BinlogReader<'a> {
    /// Starts reading `data`, which must begin with the binlog magic.
    pub fn new(data: &'a [u8], decoder: Decoder) -> Result<Self> {
        if data.len() < 4 || data[..4] != BINLOG_MAGIC {
            let n = data.len().min(4);
            let found = data[..n].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
            return Err(DecodeError::BadMagic {
                found: if found.is_empty() { "an empty file".into() } else { found },
            });
        }
        Ok(Self::at(data, 4, decoder))
    }

    /// Reads `data` from byte `pos` without checking for a magic (a relay
    /// of events, or a resumed read).
    pub fn at(data: &'a [u8], pos: usize, decoder: Decoder) -> Self {
        BinlogReader {
            data,
            pos: pos.min(data.len()),
            decoder,
            payload: PayloadEvents::default(),
            done: false,
        }
    }

    /// Position of the next event in the file.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    /// Moves to another event start (after the FDE was read, to honour a
    /// start position). The position must be an event boundary.
    pub fn seek(&mut self, pos: u64) {
        self.pos = usize::try_from(pos).unwrap_or(usize::MAX).min(self.data.len());
        self.payload.clear();
        self.done = false;
    }

    /// The decoder, for its table maps and format.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The next event, `None` at a clean end of the data. After a framing
    /// error (truncation, impossible size) the reader stops; after an error
    /// inside an event's body it can continue with the next event.
    #[allow(clippy::should_implement_trait)] // lending: events borrow the reader
    pub fn next(&mut self) -> Option<Result<Event<'_>>> {
        if !self.payload.is_empty() {
            return self.payload.next(&mut self.decoder);
        }
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let start = self.pos;
        let size = match frame(self.data, start, 0) {
            Ok(size) => size,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        self.pos += size;
        let data: &'a [u8] = self.data;
        let result = self.decoder.decode(start as u64, &data[start..start + size]);
        if let Ok(ev) = &result {
            if let Err(e) = self.payload.load(ev) {
                return Some(Err(e));
            }
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::EventType;

    fn event(ty: EventType, log_pos: u32, body: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        e.push(ty.0);
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
        e.extend_from_slice(&log_pos.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(body);
        e
    }

    /// A MariaDB FDE with checksums off.
    fn fde() -> Vec<u8> {
        let mut body = 4u16.to_le_bytes().to_vec();
        let mut version = b"11.4.2-MariaDB-log".to_vec();
        version.resize(50, 0);
        body.extend(version);
        body.extend(0u32.to_le_bytes());
        body.push(HEADER_LEN as u8);
        let mut post = vec![0u8; 171];
        post[usize::from(EventType::QUERY.0) - 1] = 13;
        body.extend(post);
        body.push(0); // checksum alg OFF
        body.extend([0u8; 4]);
        event(EventType::FORMAT_DESCRIPTION, 0, &body)
    }

    #[test]
    fn positions_come_from_offsets_when_log_pos_is_zero() {
        // MariaDB 11.4+ writes end_log_pos 0 inside transactions.
        let mut file = BINLOG_MAGIC.to_vec();
        file.extend(fde());
        let xid_at = file.len() as u64;
        file.extend(event(EventType::XID, 0, &7u64.to_le_bytes()));
        let stop_at = file.len() as u64;
        file.extend(event(EventType::STOP, 0, &[]));
        let mut r = BinlogReader::new(&file, Decoder::new()).unwrap();
        r.next().unwrap().unwrap();
        let xid = r.next().unwrap().unwrap();
        assert_eq!((xid.offset, xid.end_offset), (xid_at, stop_at));
        assert!(matches!(xid.data, EventData::Xid(7)));
        assert_eq!(xid.header.log_pos, 0);
        let stop = r.next().unwrap().unwrap();
        assert_eq!((stop.offset, stop.end_offset), (stop_at, file.len() as u64));
        assert!(r.next().is_none());
    }

    #[test]
    fn framing_errors_stop_the_reader_with_offsets() {
        let mut file = BINLOG_MAGIC.to_vec();
        file.extend(fde());
        let at = file.len() as u64;
        let mut bad = event(EventType::XID, 0, &7u64.to_le_bytes());
        bad[9..13].copy_from_slice(&500u32.to_le_bytes()); // overruns the file
        file.extend(bad);
        let mut r = BinlogReader::new(&file, Decoder::new()).unwrap();
        r.next().unwrap().unwrap();
        let err = r.next().unwrap().unwrap_err();
        assert_eq!(err.offset(), at);
        assert!(r.next().is_none(), "no event can be framed after that");
        assert!(matches!(BinlogReader::new(b"\xfebi", Decoder::new()), Err(DecodeError::BadMagic { .. })));
    }
}
