//! Typed binlog events.
//!
//! [`Decoder::decode`] turns the bytes of one event (header, body and
//! checksum, as stored in a file or sent by a primary) into an [`Event`]:
//! its position, header, raw bytes and decoded [`EventData`]. The decoder
//! carries the state events depend on: the current FORMAT_DESCRIPTION and
//! the table maps that row events refer to.

pub mod control;
pub mod gtid;
pub mod payload;
pub mod query;
pub mod rows;
pub mod table_map;

use std::collections::HashMap;
use std::sync::Arc;

use crate::checksum;
use crate::cursor::Cursor;
use crate::error::{DecodeError, Result};
use crate::format::{ChecksumAlg, FormatDescription};
use crate::gtid::{GtidSet, MariaGtid};
use crate::header::{EventHeader, EventType, HEADER_LEN};

pub use control::{
    Incident, IntVar, LoadBlock, Rand, Rotate, StartEncryption, TransactionContext, UserVar, ViewChange,
    XaPrepare,
};
pub use gtid::{GtidEvent, MariaGtidEvent};
pub use payload::TransactionPayload;
pub use query::{QueryEvent, StatusVars};
pub use rows::{Row, RowIter, RowsEvent, RowsKind};
pub use table_map::{Column, TableMap};

/// One decoded event.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Position of the event's first byte in its binlog file. Events inside
    /// a transaction payload report the payload event's position.
    pub offset: u64,
    /// Position just past the event (past its payload event for inner ones).
    pub end_offset: u64,
    /// The common header.
    pub header: EventHeader,
    /// The whole event as stored: header, body and checksum.
    pub raw: &'a [u8],
    /// The decoded body.
    pub data: EventData<'a>,
    /// True for events unpacked from a TRANSACTION_PAYLOAD event.
    pub in_payload: bool,
}

/// The body of an event, by type.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventData<'a> {
    /// FORMAT_DESCRIPTION_EVENT.
    FormatDescription(FormatDescription),
    /// QUERY_EVENT or MariaDB QUERY_COMPRESSED_EVENT (boxed: it is large,
    /// and every event pays for the largest variant).
    Query(Box<QueryEvent<'a>>),
    /// EXECUTE_LOAD_QUERY_EVENT: a LOAD DATA statement and its file.
    ExecuteLoadQuery {
        /// The statement and its context.
        query: Box<QueryEvent<'a>>,
        /// The file blocks it reads.
        file_id: u32,
        /// Start of the file name within the statement.
        start_pos: u32,
        /// End of the file name within the statement.
        end_pos: u32,
        /// 0 error, 1 ignore, 2 replace.
        dup_handling: u8,
    },
    /// STOP_EVENT: the server shut down.
    Stop,
    /// ROTATE_EVENT.
    Rotate(Rotate<'a>),
    /// XID_EVENT: the commit of a transactional transaction.
    Xid(u64),
    /// INTVAR_EVENT.
    IntVar(IntVar),
    /// RAND_EVENT.
    Rand(Rand),
    /// USER_VAR_EVENT.
    UserVar(UserVar<'a>),
    /// BEGIN_LOAD_QUERY_EVENT or APPEND_BLOCK_EVENT.
    LoadBlock(LoadBlock<'a>),
    /// DELETE_FILE_EVENT (old LOAD DATA).
    DeleteFile(u32),
    /// TABLE_MAP_EVENT.
    TableMap(Arc<TableMap>),
    /// Any row event.
    Rows(RowsEvent<'a>),
    /// ROWS_QUERY_LOG_EVENT: the statement behind the next row events.
    RowsQuery(&'a [u8]),
    /// INCIDENT_EVENT.
    Incident(Incident<'a>),
    /// HEARTBEAT_LOG_EVENT (v1: the file name; v2: name and position).
    Heartbeat {
        /// Current binlog file of the primary.
        file: &'a [u8],
        /// Position (v2 only).
        position: Option<u64>,
    },
    /// GTID_LOG_EVENT, ANONYMOUS_GTID_LOG_EVENT or GTID_TAGGED_LOG_EVENT
    /// (boxed, like QUERY).
    Gtid(Box<GtidEvent>),
    /// PREVIOUS_GTIDS_LOG_EVENT.
    PreviousGtids(GtidSet),
    /// TRANSACTION_CONTEXT_EVENT.
    TransactionContext(TransactionContext<'a>),
    /// VIEW_CHANGE_EVENT.
    ViewChange(ViewChange<'a>),
    /// XA_PREPARE_LOG_EVENT.
    XaPrepare(XaPrepare<'a>),
    /// TRANSACTION_PAYLOAD_EVENT (its inner events follow it when read
    /// through [`crate::reader::BinlogReader`]).
    TransactionPayload(TransactionPayload<'a>),
    /// MariaDB ANNOTATE_ROWS_EVENT: the statement behind the next rows.
    AnnotateRows(&'a [u8]),
    /// MariaDB BINLOG_CHECKPOINT_EVENT.
    BinlogCheckpoint(&'a [u8]),
    /// MariaDB GTID_EVENT.
    MariaGtid(MariaGtidEvent),
    /// MariaDB GTID_LIST_EVENT.
    MariaGtidList(Vec<MariaGtid>),
    /// MariaDB START_ENCRYPTION_EVENT; the rest of the file is encrypted.
    StartEncryption(StartEncryption<'a>),
    /// An event of a known type whose body is not decoded further
    /// (IGNORABLE, pre-5.0 LOAD DATA events, START_V3, SLAVE).
    Opaque(&'a [u8]),
    /// An event type this decoder does not know: type code and body. It
    /// is surfaced, never dropped.
    Unknown(&'a [u8]),
}

/// Decodes events one at a time, keeping the FORMAT_DESCRIPTION and table
/// maps that later events need.
#[derive(Debug, Clone)]
pub struct Decoder {
    fde: FormatDescription,
    tables: HashMap<u64, Arc<TableMap>>,
    verify_checksums: bool,
    encrypted: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder that expects a FORMAT_DESCRIPTION first, and verifies
    /// CRC32 checksums where the format says they exist.
    pub fn new() -> Self {
        Decoder {
            fde: FormatDescription::assumed(ChecksumAlg::Off),
            tables: HashMap::new(),
            verify_checksums: true,
            encrypted: false,
        }
    }

    /// Whether events are checked against a CRC32 now: checking is on and
    /// the FORMAT_DESCRIPTION in force says events carry one.
    pub fn verifies_crc32(&self) -> bool {
        self.verify_checksums && self.fde.checksum == ChecksumAlg::Crc32
    }

    /// Turns checksum verification on or off (on by default).
    pub fn verify_checksums(mut self, on: bool) -> Self {
        self.verify_checksums = on;
        self
    }

    /// The FORMAT_DESCRIPTION in force.
    pub fn format(&self) -> &FormatDescription {
        &self.fde
    }

    /// Sets the FORMAT_DESCRIPTION in force (for a stream that starts
    /// mid-file, where the primary sends its FDE out of band).
    pub fn set_format(&mut self, fde: FormatDescription) {
        self.fde = fde;
    }

    /// The table map a row event refers to.
    pub fn table(&self, table_id: u64) -> Option<&Arc<TableMap>> {
        self.tables.get(&table_id)
    }

    /// Decodes one whole event that starts at absolute `offset`.
    pub fn decode<'a>(&mut self, offset: u64, bytes: &'a [u8]) -> Result<Event<'a>> {
        self.decode_inner(offset, bytes, false)
    }

    /// Decodes an event from a transaction payload: no checksum, and the
    /// position is that of the payload event (`outer_offset`..`outer_end`).
    pub fn decode_payload_event<'a>(
        &mut self,
        outer_offset: u64,
        outer_end: u64,
        bytes: &'a [u8],
    ) -> Result<Event<'a>> {
        let mut ev = self.decode_inner(outer_offset, bytes, true)?;
        ev.end_offset = outer_end;
        ev.in_payload = true;
        Ok(ev)
    }

    fn decode_inner<'a>(&mut self, offset: u64, bytes: &'a [u8], in_payload: bool) -> Result<Event<'a>> {
        let mut c = Cursor::new(bytes, offset);
        let mut header = EventHeader::parse(&mut c)?;
        header.event_type = self.fde.canonical_type(header.event_type);
        if header.event_size as usize != bytes.len() {
            return Err(DecodeError::Invalid {
                offset,
                what: "event size",
                detail: format!("header says {} bytes, event has {}", header.event_size, bytes.len()),
            });
        }
        let ty = header.event_type;
        // Payload events carry no checksum; the FDE parser reads its own
        // algorithm byte and CRC; other events follow the FDE in force.
        let trailer = if in_payload || ty == EventType::FORMAT_DESCRIPTION {
            0
        } else {
            self.fde.checksum.trailer_len()
        };
        let body_len = bytes.len().checked_sub(HEADER_LEN + trailer).ok_or_else(|| DecodeError::Invalid {
            offset,
            what: "event size",
            detail: format!("{} bytes is too short for a header and checksum", bytes.len()),
        })?;
        let mut body = c.sub("event body", body_len)?;

        if ty == EventType::FORMAT_DESCRIPTION {
            let fde = FormatDescription::parse(&mut body).map_err(|e| e.in_event(offset, ty))?;
            if self.verify_checksums && fde.checksum == ChecksumAlg::Crc32 {
                checksum::verify_fde(bytes, offset)?;
            }
            // A new FDE starts a new file (or relay log section): old table
            // ids mean nothing there.
            self.tables.clear();
            self.encrypted = false;
            self.fde = fde.clone();
            return Ok(Event {
                offset,
                end_offset: offset + bytes.len() as u64,
                header,
                raw: bytes,
                data: EventData::FormatDescription(fde),
                in_payload,
            });
        }
        // Events after START_ENCRYPTION are AES-encrypted past their length
        // field: their checksum and body mean nothing without the key.
        if self.encrypted {
            return Err(DecodeError::Invalid {
                offset,
                what: "event",
                detail: "the binlog is encrypted (START_ENCRYPTION_EVENT); decrypting needs the server's key"
                    .into(),
            });
        }
        if trailer == 4 && self.verify_checksums {
            checksum::verify(bytes, offset)?;
        }
        let data = self.decode_body(&mut body, &header, offset).map_err(|e| e.in_event(offset, ty))?;
        Ok(Event { offset, end_offset: offset + bytes.len() as u64, header, raw: bytes, data, in_payload })
    }

    fn post_header(&self, ty: EventType, default: u8) -> u8 {
        self.fde.post_header_len(ty).unwrap_or(default)
    }

    fn decode_body<'a>(
        &mut self,
        c: &mut Cursor<'a>,
        header: &EventHeader,
        offset: u64,
    ) -> Result<EventData<'a>> {
        let ty = header.event_type;
        if rows::RowsKind::of(ty).is_some() {
            let default = if self.fde.server_version.starts_with("5.1.")
                || self.fde.server_version.starts_with("5.0")
            {
                8
            } else {
                10
            };
            let phl = self.post_header(ty, default);
            let mut rows = RowsEvent::parse(c, ty, phl)?;
            rows.table = self.tables.get(&rows.table_id).cloned();
            rows.event_offset = offset;
            return Ok(EventData::Rows(rows));
        }
        Ok(match ty {
            EventType::QUERY => {
                EventData::Query(Box::new(QueryEvent::parse(c, self.post_header(ty, 13), false)?))
            }
            EventType::MARIA_QUERY_COMPRESSED => {
                EventData::Query(Box::new(QueryEvent::parse(c, self.post_header(ty, 13), true)?))
            }
            EventType::EXECUTE_LOAD_QUERY => {
                // QUERY's post-header plus file id, start, end, duplicates.
                let (query, extra) = QueryEvent::parse_with_extra(c, self.post_header(ty, 26), false)?;
                let mut x = Cursor::new(extra, 0);
                let (Ok(file_id), Ok(start_pos), Ok(end_pos), Ok(dup_handling)) = (
                    x.u32("execute load file id"),
                    x.u32("execute load start"),
                    x.u32("execute load end"),
                    x.u8("execute load duplicates"),
                ) else {
                    return Err(c.invalid("execute load query post-header", "shorter than 26 bytes"));
                };
                EventData::ExecuteLoadQuery {
                    query: Box::new(query),
                    file_id,
                    start_pos,
                    end_pos,
                    dup_handling,
                }
            }
            EventType::STOP => EventData::Stop,
            EventType::ROTATE => EventData::Rotate(Rotate::parse(c)?),
            EventType::XID => EventData::Xid(c.u64("xid")?),
            EventType::INTVAR => EventData::IntVar(IntVar::parse(c)?),
            EventType::RAND => EventData::Rand(Rand::parse(c)?),
            EventType::USER_VAR => EventData::UserVar(UserVar::parse(c)?),
            EventType::BEGIN_LOAD_QUERY | EventType::APPEND_BLOCK => {
                EventData::LoadBlock(LoadBlock::parse(c)?)
            }
            EventType::DELETE_FILE => EventData::DeleteFile(c.u32("delete file id")?),
            EventType::TABLE_MAP => {
                let phl = self.post_header(ty, 8);
                let map = self.table_map(c, phl)?;
                EventData::TableMap(map)
            }
            EventType::ROWS_QUERY => {
                // One length byte (truncated at 255, so ignored), then text.
                c.skip("rows query length", 1)?;
                EventData::RowsQuery(c.take_rest())
            }
            EventType::INCIDENT => EventData::Incident(Incident::parse(c)?),
            EventType::HEARTBEAT => EventData::Heartbeat { file: c.take_rest(), position: None },
            EventType::HEARTBEAT_V2 => heartbeat_v2(c)?,
            EventType::GTID | EventType::ANONYMOUS_GTID => EventData::Gtid(Box::new(GtidEvent::parse(c)?)),
            EventType::GTID_TAGGED => EventData::Gtid(Box::new(GtidEvent::parse_tagged(c)?)),
            EventType::PREVIOUS_GTIDS => EventData::PreviousGtids(gtid::parse_previous_gtids(c)?),
            EventType::TRANSACTION_CONTEXT => EventData::TransactionContext(TransactionContext::parse(c)?),
            EventType::VIEW_CHANGE => EventData::ViewChange(ViewChange::parse(c)?),
            EventType::XA_PREPARE => EventData::XaPrepare(XaPrepare::parse(c)?),
            EventType::TRANSACTION_PAYLOAD => EventData::TransactionPayload(TransactionPayload::parse(c)?),
            EventType::MARIA_ANNOTATE_ROWS => EventData::AnnotateRows(c.take_rest()),
            EventType::MARIA_BINLOG_CHECKPOINT => {
                EventData::BinlogCheckpoint(control::parse_binlog_checkpoint(c)?)
            }
            EventType::MARIA_GTID => EventData::MariaGtid(MariaGtidEvent::parse(c, header.server_id)?),
            EventType::MARIA_GTID_LIST => EventData::MariaGtidList(gtid::parse_gtid_list(c)?.0),
            EventType::MARIA_START_ENCRYPTION => {
                let ev = StartEncryption::parse(c)?;
                self.encrypted = true;
                EventData::StartEncryption(ev)
            }
            EventType::IGNORABLE
            | EventType::START_V3
            | EventType::LOAD
            | EventType::NEW_LOAD
            | EventType::CREATE_FILE
            | EventType::EXEC_LOAD
            | EventType::SLAVE
            | EventType::UNKNOWN => EventData::Opaque(c.take_rest()),
            _ => EventData::Unknown(c.take_rest()),
        })
    }

    fn table_map(&mut self, c: &mut Cursor<'_>, phl: u8) -> Result<Arc<TableMap>> {
        // Transactions repeat the same maps; reuse the decoded one when the
        // bytes are identical.
        let raw = c.rest();
        let id_len = if phl == 6 { 4 } else { 6 };
        if raw.len() >= id_len {
            let id = crate::cursor::le_uint(&raw[..id_len]);
            if let Some(existing) = self.tables.get(&id) {
                if existing.raw == raw {
                    c.take_rest();
                    return Ok(Arc::clone(existing));
                }
            }
        }
        let map = Arc::new(TableMap::parse_from(c, phl, self.fde.is_mariadb())?);
        self.tables.insert(map.table_id, Arc::clone(&map));
        Ok(map)
    }
}

/// HEARTBEAT_LOG_EVENT_V2: (type lenenc, length lenenc, value)* fields.
fn heartbeat_v2<'a>(c: &mut Cursor<'a>) -> Result<EventData<'a>> {
    let mut file: &[u8] = &[];
    let mut position = None;
    while !c.is_empty() {
        let field = c.lenenc("heartbeat field type")?;
        if field == 0 {
            break;
        }
        let len = c.lenenc_len("heartbeat field length")?;
        let mut v = c.sub("heartbeat field", len)?;
        match field {
            1 => file = v.take_rest(),
            2 => position = Some(v.lenenc("heartbeat position")?),
            _ => {}
        }
    }
    Ok(EventData::Heartbeat { file, position })
}

#[cfg(test)]
mod size_tests {
    /// Every event is moved a few times on its way out of the reader; the
    /// enum is as large as its largest variant, so large variants are boxed.
    #[test]
    fn events_stay_small() {
        assert!(std::mem::size_of::<super::Event<'static>>() <= 192);
    }
}
