//! Where each streamed event lives in the primary's binlog, which events
//! form a transaction, and where to resume after a reconnect.
//!
//! Sans-IO: it sees event bytes in the order the primary sent them and
//! hands back whole units, a non-transactional event or a complete
//! transaction, with their coordinates. A transaction is handed back only
//! when its commit arrives, so a connection that breaks mid-transaction
//! leaves nothing half-shown: the tracker drops the partial transaction and
//! the stream resumes at the end of the last unit handed back.

use std::sync::Arc;

use bytes::Bytes;
use gapless_decoder::gtid::{GtidSet, MariaGtidList};
use gapless_decoder::header::HEADER_LEN;
use gapless_decoder::{DecodeError, Decoder, EventData, EventType};

use crate::decode::{TrxId, TrxState};

/// Set on events the primary makes up for the stream (the ROTATE at the
/// start of a dump), which are not in any binlog file.
const LOG_EVENT_ARTIFICIAL_F: u16 = 0x20;

/// One event as received, with its place in the primary's binlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The event, header to checksum.
    pub bytes: Bytes,
    /// The binlog file it is in.
    pub file: Arc<str>,
    /// Its first byte's position in that file.
    pub offset: u64,
    /// The position just past it.
    pub end: u64,
    /// The GTID of the transaction it belongs to, as text.
    pub gtid: Option<Arc<str>>,
    /// A FORMAT_DESCRIPTION the primary sent again because the stream
    /// started mid-file: decode with it, but it is not new.
    pub resent: bool,
    /// The event ends in a CRC32 checksum (the stream's checksum setting).
    pub crc32: bool,
}

/// Where to pick the stream up again: just past the last unit handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumePoint {
    /// Binlog file and position.
    pub file: String,
    /// Position in `file`.
    pub position: u64,
    /// MariaDB: the last GTID handed out, per domain.
    pub maria: MariaGtidList,
    /// MySQL: every GTID handed out (plus the start set).
    pub mysql: GtidSet,
}

/// The stream's bytes did not decode.
#[derive(Debug, thiserror::Error)]
#[error("event at {file}:{offset}: {error}")]
pub struct TrackError {
    /// The binlog file the event is in.
    pub file: String,
    /// Its position.
    pub offset: u64,
    /// What is wrong.
    pub error: DecodeError,
}

/// Follows the stream; see the module docs.
#[derive(Debug)]
pub struct Tracker {
    decoder: Decoder,
    trx: TrxState,
    file: Arc<str>,
    next_pos: u64,
    /// Events of the transaction being received.
    open: Vec<Received>,
    /// The stream's events end in a CRC32.
    checksums: bool,
    /// The current transaction's GTID as text.
    gtid: Option<Arc<str>>,
    resume: ResumePoint,
    /// The primary's binlog position, as its last heartbeat said.
    primary: Option<(String, u64)>,
}

impl Tracker {
    /// A tracker for a stream that starts at `resume`.
    pub fn new(resume: ResumePoint) -> Self {
        Tracker {
            decoder: Decoder::new(),
            trx: TrxState::default(),
            file: Arc::from(resume.file.as_str()),
            next_pos: resume.position,
            open: Vec::new(),
            checksums: false,
            gtid: None,
            resume,
            primary: None,
        }
    }

    /// The primary's own binlog file and position, from its last heartbeat
    /// (sent when it has nothing else to send).
    pub fn primary_position(&self) -> Option<(&str, u64)> {
        self.primary.as_ref().map(|(f, p)| (f.as_str(), *p))
    }

    /// Where a new connection should start.
    pub fn resume_point(&self) -> &ResumePoint {
        &self.resume
    }

    /// The binlog file and position of the next event expected.
    pub fn position(&self) -> (&str, u64) {
        (&self.file, self.next_pos)
    }

    /// Whether a transaction has started but not committed.
    pub fn in_transaction(&self) -> bool {
        !self.open.is_empty()
    }

    /// A new connection, whose events carry checksums or not: drop the
    /// partial transaction (the primary sends it again) and continue from
    /// the resume point.
    pub fn reconnected(&mut self, checksums: bool) {
        self.checksums = checksums;
        self.open.clear();
        self.trx = TrxState::default();
        self.gtid = None;
        self.file = Arc::from(self.resume.file.as_str());
        self.next_pos = self.resume.position;
    }

    /// Takes the next event off the stream. Whole units it completes are
    /// appended to `out`; the return value says whether the event was part
    /// of the binlog (false for heartbeats and events the primary made up).
    pub fn push(&mut self, bytes: Bytes, out: &mut Vec<Received>) -> Result<bool, TrackError> {
        let header = RawHeader::read(&bytes);
        if matches!(header.event_type, EventType::HEARTBEAT | EventType::HEARTBEAT_V2) {
            if header.event_type == EventType::HEARTBEAT && header.log_pos != 0 {
                // The body is the primary's current file name.
                let trailer = if self.checksums { 4 } else { 0 };
                let name = bytes.get(HEADER_LEN..bytes.len().saturating_sub(trailer)).unwrap_or(&[]);
                self.primary = Some((String::from_utf8_lossy(name).into_owned(), u64::from(header.log_pos)));
            }
            return Ok(false);
        }
        // Events the primary makes up for this stream, or sends again (the
        // FORMAT_DESCRIPTION of the file when a dump starts mid-file), have
        // log_pos 0 or the artificial flag. MariaDB 11.4 also writes log_pos
        // 0 inside transactions, so position is counted from sizes there.
        let artificial = header.flags & LOG_EVENT_ARTIFICIAL_F != 0
            || (header.log_pos == 0
                && matches!(
                    header.event_type,
                    EventType::ROTATE
                        | EventType::FORMAT_DESCRIPTION
                        | EventType::MARIA_GTID_LIST
                        | EventType::MARIA_BINLOG_CHECKPOINT
                ));
        // Events follow each other, so an event starts where the last one
        // ended, unless its log_pos says it starts further on (a GTID dump
        // skips what the replica has). A log_pos pointing back is not a
        // position: MySQL 5.0/5.1 wrote positions relative to the
        // transaction for events inside one.
        let claimed =
            u64::from(header.log_pos).checked_sub(u64::from(header.size)).filter(|_| header.log_pos != 0);
        let offset = match (artificial, header.event_type) {
            (true, EventType::FORMAT_DESCRIPTION) => 4,
            (true, _) => self.next_pos,
            (false, _) => claimed.filter(|&start| start >= self.next_pos).unwrap_or(self.next_pos),
        };
        let end = offset + u64::from(header.size);
        let fail = |file: &str, error| TrackError { file: file.to_string(), offset, error };
        // A GTID dump starts at the beginning of a file and sends its first
        // events (FORMAT_DESCRIPTION, GTID_LIST, BINLOG_CHECKPOINT,
        // PREVIOUS_GTIDS) before skipping to the GTID: those were handed out
        // already. The FORMAT_DESCRIPTION is still needed to decode what
        // follows: it is handed on as resent.
        let handed_out = !artificial && header.event_type != EventType::ROTATE && self.handed_out(end);
        if handed_out && header.event_type != EventType::FORMAT_DESCRIPTION {
            self.next_pos = end;
            return Ok(false);
        }
        let artificial = artificial || handed_out;
        if header.event_type == EventType::ROTATE {
            // Read here, not by the decoder: the made-up ROTATE that opens
            // a stream comes before the FORMAT_DESCRIPTION that says whether
            // events end in a checksum.
            let (next, position) = self.rotate(&bytes, offset).map_err(|e| fail(&self.file, e))?;
            if !artificial {
                self.check(&bytes, offset, &header).map_err(|e| fail(&self.file, e))?;
                // The end of a file: the next unit starts in the new one.
                out.push(self.received(bytes, offset, end));
                self.resume.file = next.clone();
                self.resume.position = position;
            }
            self.file = Arc::from(next.as_str());
            self.next_pos = position;
            return Ok(!artificial);
        }
        let event_type = self.decoder.format().canonical_type(header.event_type);
        if !artificial && !marks_transactions(event_type) {
            // Rows, table maps and the like: the renderer decodes them; here
            // only their framing and checksum are checked.
            self.check(&bytes, offset, &header).map_err(|e| fail(&self.file, e))?;
            self.next_pos = end;
            let received = Received { gtid: self.gtid.clone(), ..self.received(bytes, offset, end) };
            if self.trx.in_trx() || !self.open.is_empty() {
                self.open.push(received);
            } else {
                out.push(received);
                self.resume.file = self.file.to_string();
                self.resume.position = end;
            }
            return Ok(true);
        }
        let ev = self.decoder.decode(offset, &bytes).map_err(|e| fail(&self.file, e))?;
        if artificial {
            if header.event_type == EventType::FORMAT_DESCRIPTION {
                let mut fde = self.received(bytes, offset, end);
                fde.resent = true;
                out.push(fde);
            }
            return Ok(false);
        }
        self.next_pos = end;
        self.trx.observe(&ev);
        let starts_trx = matches!(ev.data, EventData::Gtid(_) | EventData::MariaGtid(_));
        // MySQL's compressed transactions: BEGIN..COMMIT all inside this one
        // event, after the GTID event. It ends the transaction.
        let payload = matches!(ev.data, EventData::TransactionPayload(_));
        drop(ev);
        // One shared copy of the GTID text per transaction.
        if starts_trx || self.trx.gtid().is_none() {
            self.gtid = self.trx.gtid().map(Arc::from);
        }
        let gtid = self.gtid.clone();
        let received = Received { gtid, ..self.received(bytes, offset, end) };
        let ends = self.trx.ends_here() || payload;
        let id = self.trx.id().cloned();
        self.trx.after_event();
        if payload {
            self.trx = TrxState::default();
        }

        if starts_trx || self.trx.in_trx() || !self.open.is_empty() {
            self.open.push(received);
            if ends {
                self.commit(id, out);
            }
        } else {
            out.push(received);
            self.resume.file = self.file.to_string();
            self.resume.position = end;
        }
        Ok(true)
    }

    /// Whether an event of the current file ending at `end` lies before the
    /// resume point, i.e. was handed out before.
    fn handed_out(&self, end: u64) -> bool {
        !self.resume.file.is_empty()
            && crate::ring::index::cmp_coords(&self.file, end, &self.resume.file, self.resume.position)
                != std::cmp::Ordering::Greater
    }

    /// What decoding would check of an event the tracker does not decode:
    /// its size and, when the stream has them, its checksum.
    fn check(&self, bytes: &[u8], offset: u64, header: &RawHeader) -> Result<(), DecodeError> {
        if header.size as usize != bytes.len() {
            return Err(DecodeError::Invalid {
                offset,
                what: "event size",
                detail: format!("header says {} bytes, event has {}", header.size, bytes.len()),
            });
        }
        if self.decoder.verifies_crc32() {
            gapless_decoder::checksum::verify(bytes, offset)?;
        }
        Ok(())
    }

    fn received(&self, bytes: Bytes, offset: u64, end: u64) -> Received {
        Received {
            bytes,
            file: self.file.clone(),
            offset,
            end,
            gtid: None,
            resent: false,
            crc32: self.checksums,
        }
    }

    /// The next file and position a ROTATE names.
    fn rotate(&self, bytes: &[u8], offset: u64) -> Result<(String, u64), DecodeError> {
        let trailer = if self.checksums { 4 } else { 0 };
        let body = bytes.get(HEADER_LEN..bytes.len().saturating_sub(trailer)).unwrap_or(&[]);
        if body.len() < 8 {
            return Err(DecodeError::Truncated {
                offset,
                what: "ROTATE event",
                needed: (HEADER_LEN + 8 + trailer) as u64,
                available: bytes.len() as u64,
            });
        }
        let position = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        Ok((String::from_utf8_lossy(&body[8..]).into_owned(), position))
    }

    fn commit(&mut self, id: Option<TrxId>, out: &mut Vec<Received>) {
        let last = self.open.last().expect("commit of an empty transaction");
        self.resume.file = last.file.to_string();
        self.resume.position = last.end;
        match id {
            Some(TrxId::Maria(g)) => {
                self.resume.maria.set(g);
            }
            Some(TrxId::Mysql(g)) => {
                self.resume.mysql.insert(&g);
            }
            None => {}
        }
        out.append(&mut self.open);
    }
}

/// The events that start, end or frame a transaction, or change the
/// format: the tracker decodes these and only checks the others.
fn marks_transactions(t: EventType) -> bool {
    matches!(
        t,
        EventType::FORMAT_DESCRIPTION
            | EventType::QUERY
            | EventType::MARIA_QUERY_COMPRESSED
            | EventType::EXECUTE_LOAD_QUERY
            | EventType::XID
            | EventType::XA_PREPARE
            | EventType::GTID
            | EventType::ANONYMOUS_GTID
            | EventType::GTID_TAGGED
            | EventType::MARIA_GTID
            | EventType::TRANSACTION_PAYLOAD
            | EventType::MARIA_START_ENCRYPTION
    )
}

/// The header fields the tracker needs before decoding.
struct RawHeader {
    event_type: EventType,
    size: u32,
    log_pos: u32,
    flags: u16,
}

impl RawHeader {
    /// `bytes` is at least a header long: the protocol layer checks that.
    fn read(bytes: &[u8]) -> RawHeader {
        debug_assert!(bytes.len() >= HEADER_LEN);
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        RawHeader {
            event_type: EventType(bytes[4]),
            size: u32_at(9),
            log_pos: u32_at(13),
            flags: u16::from_le_bytes([bytes[17], bytes[18]]),
        }
    }
}
