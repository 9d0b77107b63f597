//! GTID events: MySQL GTID_LOG_EVENT (33), ANONYMOUS_GTID_LOG_EVENT (34),
//! PREVIOUS_GTIDS_LOG_EVENT (35) and GTID_TAGGED_LOG_EVENT (42); MariaDB
//! GTID_EVENT (162) and GTID_LIST_EVENT (163).
//!
//! Every parser takes the event body: the bytes after the 19-byte common
//! header, with the CRC32 trailer already removed. Each consumes the whole
//! body. All integers are little-endian.
//!
//! # MySQL GTID_LOG_EVENT / ANONYMOUS_GTID_LOG_EVENT
//!
//! One layout that grew at the end; a reader takes what is there:
//!
//! ```text
//! 5.6   flags u8 | sid [16] | gno u64                                  25 bytes
//! 5.7   + lc_typecode u8 (= 2) | last_committed i64 | sequence_number i64  42
//! 8.0   + immediate_commit_timestamp u56   top bit set: original_commit_timestamp u56 follows
//!       + transaction_length (length-encoded integer)
//!       + immediate_server_version u32     top bit set: original_server_version u32 follows
//! 8.0.x + commit_group_ticket u64 (only when the server set one)
//! ```
//!
//! A typecode other than 2 is a 5.7.4-or-older layout whose clock fields
//! MySQL ignores; so do we. A field that is only partly there is an error
//! (MySQL would silently ignore it). Bytes after the last known field are
//! skipped. Timestamps are microseconds since the Unix epoch; when the top
//! bit is clear the original value equals the immediate one. Anonymous GTID
//! events carry the nil UUID and GNO 0.
//!
//! # MySQL GTID_TAGGED_LOG_EVENT (8.3+)
//!
//! Written with MySQL's serialization library
//! (`libs/mysql/serialization/readme.md`):
//!
//! ```text
//! message := format_version | message_size | last_non_ignorable_field_id | field*
//! field   := field_id | value                        (ids strictly increasing)
//! ```
//!
//! `format_version` (1) is encoded as the message's own field id, and
//! `message_size` counts every byte of the message from `format_version`
//! on. Every number is a variable-length integer: the count of trailing
//! one-bits in the first byte, plus one, is the number of bytes (1..=9);
//! the value follows that marker and its terminating zero bit, least
//! significant bits first (with 9 bytes the first byte is 0xff and the
//! value is the following 8 bytes). Signed values are zig-zag encoded (sign
//! in bit 0). Strings are a length then the bytes; the UUID is 16 numbers,
//! one per byte. The fields (ids from `Gtid_event::define_fields` in
//! `libs/mysql/binlog/event/control_events.h`):
//!
//! ```text
//!  0 gtid_flags u8          4 last_committed i64    8 transaction_length u64
//!  1 uuid [16 x u8]         5 sequence_number i64   9 immediate_server_version u32
//!  2 gno i64                6 immediate_commit_ts   10 original_server_version u32 (if different)
//!  3 tag string (<= 32)     7 original_commit_ts    11 commit_group_ticket u64 (if set)
//!                             (if different)
//! ```
//!
//! A field id above 11 is a field of a newer server: the rest of the
//! message is skipped using the message size, unless
//! `last_non_ignorable_field_id` says the newer field must be understood.
//!
//! # MySQL PREVIOUS_GTIDS_LOG_EVENT
//!
//! The GTID set of all earlier binlog files, in MySQL's binary GTID set
//! format. The first u64 tells the version:
//!
//! ```text
//! v0 (untagged): n_sids u56 | 0x00                    then per sid: uuid [16] | intervals
//! v1 (tagged):   0x01 | n_tsids u48 | 0x01            then per tsid: uuid [16] | tag | intervals
//! tag:           length (variable-length integer, <= 32) | bytes   (length 0 = untagged)
//! intervals:     n_intervals u64 | (start u64, end u64 exclusive) * n_intervals
//! ```
//!
//! A v2 (compact) format exists in MySQL 9.x's decoder, but no server writes
//! it; this decoder rejects it with a clear error.
//!
//! # MariaDB GTID_EVENT
//!
//! ```text
//! seq_no u64 | domain_id u32 | flags u8
//!   flags & FL_GROUP_COMMIT_ID:            commit_id u64
//!   flags & (FL_PREPARED_XA|FL_COMPLETED_XA): format_id u32 | gtrid_len u8 | bqual_len u8 | data
//!   if bytes remain: flags_extra u8
//!     & FL_EXTRA_MULTI_ENGINE:                   extra_engines u8
//!     & (FL_COMMIT_ALTER | FL_ROLLBACK_ALTER):    start_alter_seq_no u64
//!     & FL_EXTRA_THREAD_ID (11.x):                thread_id u32
//!   zero padding up to at least 19 bytes
//! ```
//!
//! The server id of the GTID is the event header's.
//!
//! # MariaDB GTID_LIST_EVENT
//!
//! ```text
//! count u32 (low 28 bits: count, top 4 bits: flags) | (domain_id u32 | server_id u32 | seq_no u64) * count
//! ```

use crate::cursor::Cursor;
use crate::error::{DecodeError, Result};
use crate::gtid::{GnoInterval, Gtid, GtidSet, MariaGtid, Tag, Uuid, MAX_GNO, TAG_MAX_LEN};

// ---------------------------------------------------------------------------
// MySQL GTID events
// ---------------------------------------------------------------------------

/// `gtid_flags` bit: the transaction may contain statement-based events
/// (always set by 5.6, 5.7.0-5.7.18 and 8.0.0-8.0.1).
pub const FLAG_MAY_HAVE_SBR: u8 = 1;

/// The logical clock type code of 5.7.5+ GTID events.
pub const LOGICAL_TIMESTAMP_TYPECODE: u8 = 2;

/// The value MySQL uses for an unknown server version.
pub const UNDEFINED_SERVER_VERSION: u32 = 999_999;

const COMMIT_TS_ORIGINAL_FLAG: u64 = 1 << 55;
const SERVER_VERSION_ORIGINAL_FLAG: u32 = 1 << 31;

/// A MySQL GTID event of any layout: GTID_LOG_EVENT, ANONYMOUS_GTID_LOG_EVENT
/// or GTID_TAGGED_LOG_EVENT. Fields the layout does not carry are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GtidEvent {
    /// `gtid_flags` (see [`FLAG_MAY_HAVE_SBR`]).
    pub flags: u8,
    /// Source UUID (nil for anonymous transactions).
    pub uuid: Uuid,
    /// Tag (GTID_TAGGED_LOG_EVENT only).
    pub tag: Option<Tag>,
    /// Transaction number: 1..=[`MAX_GNO`], 0 for anonymous transactions.
    pub gno: u64,
    /// Logical clock: the `sequence_number` this transaction waited for (5.7+).
    pub last_committed: Option<i64>,
    /// Logical clock: this transaction's number in the binlog (5.7+).
    pub sequence_number: Option<i64>,
    /// Commit time on the server that wrote this binlog, µs since the epoch (8.0+).
    pub immediate_commit_timestamp: Option<u64>,
    /// Commit time on the server where the transaction first ran (8.0+).
    pub original_commit_timestamp: Option<u64>,
    /// Size of the whole transaction in the binlog, this event included (8.0.2+).
    pub transaction_length: Option<u64>,
    /// Version of the server that wrote this binlog, e.g. 80026 (8.0.14+).
    pub immediate_server_version: Option<u32>,
    /// Version of the server where the transaction first ran (8.0.14+).
    pub original_server_version: Option<u32>,
    /// Binlog group commit ticket, when the server set one.
    pub commit_group_ticket: Option<u64>,
}

/// Reads a u64 that MySQL stores as int64 and must not be negative.
fn nonnegative_i64(c: &mut Cursor<'_>, what: &'static str) -> Result<i64> {
    let at = *c;
    let v = c.u64(what)?;
    i64::try_from(v).map_err(|_| at.invalid(what, format!("{v:#x} is negative as a signed 64-bit value")))
}

fn read_uuid(c: &mut Cursor<'_>, what: &'static str) -> Result<Uuid> {
    let at = *c;
    let bytes = c.bytes(what, 16)?;
    let arr: [u8; 16] = bytes.try_into().map_err(|_| at.invalid(what, "not 16 bytes"))?;
    Ok(Uuid(arr))
}

impl GtidEvent {
    /// Parses the body of a GTID_LOG_EVENT or ANONYMOUS_GTID_LOG_EVENT
    /// (5.6, 5.7, 8.0+ layouts).
    pub fn parse(c: &mut Cursor<'_>) -> Result<GtidEvent> {
        let flags = c.u8("GTID flags")?;
        let uuid = read_uuid(c, "GTID source UUID")?;
        let at = *c;
        let gno = c.u64("GTID GNO")?;
        if gno > MAX_GNO {
            return Err(at.invalid("GTID GNO", format!("{gno} is above the largest GNO {MAX_GNO}")));
        }
        let mut ev = GtidEvent {
            flags,
            uuid,
            tag: None,
            gno,
            last_committed: None,
            sequence_number: None,
            immediate_commit_timestamp: None,
            original_commit_timestamp: None,
            transaction_length: None,
            immediate_server_version: None,
            original_server_version: None,
            commit_group_ticket: None,
        };
        // 5.6 ends here.
        if c.is_empty() {
            return Ok(ev);
        }
        let typecode = c.u8("GTID logical clock type code")?;
        if typecode != LOGICAL_TIMESTAMP_TYPECODE {
            // 5.7.4 and older: a different clock encoding that MySQL ignores.
            c.take_rest();
            return Ok(ev);
        }
        ev.last_committed = Some(nonnegative_i64(c, "GTID last_committed")?);
        ev.sequence_number = Some(nonnegative_i64(c, "GTID sequence_number")?);
        // 5.7 ends here.
        if c.is_empty() {
            return Ok(ev);
        }
        let immediate = c.uint_n("GTID immediate_commit_timestamp", 7)?;
        let original = if immediate & COMMIT_TS_ORIGINAL_FLAG != 0 {
            c.uint_n("GTID original_commit_timestamp", 7)?
        } else {
            immediate
        };
        ev.immediate_commit_timestamp = Some(immediate & !COMMIT_TS_ORIGINAL_FLAG);
        ev.original_commit_timestamp = Some(original);
        if c.is_empty() {
            return Ok(ev);
        }
        ev.transaction_length = Some(c.lenenc("GTID transaction_length")?);
        if c.is_empty() {
            return Ok(ev);
        }
        let immediate = c.u32("GTID immediate_server_version")?;
        let original = if immediate & SERVER_VERSION_ORIGINAL_FLAG != 0 {
            c.u32("GTID original_server_version")?
        } else {
            immediate
        };
        ev.immediate_server_version = Some(immediate & !SERVER_VERSION_ORIGINAL_FLAG);
        ev.original_server_version = Some(original);
        if c.is_empty() {
            return Ok(ev);
        }
        ev.commit_group_ticket = Some(c.u64("GTID commit_group_ticket")?);
        // Fields of newer servers.
        c.take_rest();
        Ok(ev)
    }

    /// Parses the body of a GTID_TAGGED_LOG_EVENT (MySQL 8.3+).
    pub fn parse_tagged(c: &mut Cursor<'_>) -> Result<GtidEvent> {
        let start = *c;
        let version = varlen_u64(c, "tagged GTID serialization format version")?;
        if version != SERIALIZATION_FORMAT_VERSION {
            return Err(start.invalid(
                "tagged GTID serialization format version",
                format!("version {version} is not supported (only {SERIALIZATION_FORMAT_VERSION})"),
            ));
        }
        let size_at = *c;
        let size = varlen_u64(c, "tagged GTID message size")?;
        let lnif_at = *c;
        let last_non_ignorable = varlen_u64(c, "tagged GTID last non-ignorable field id")?;
        if last_non_ignorable > TAGGED_LAST_KNOWN_FIELD + 1 {
            return Err(lnif_at.invalid(
                "tagged GTID last non-ignorable field id",
                format!(
                    "field {} must be understood to apply this event, but this decoder knows fields 0..={} \
                     only (written by a newer server)",
                    last_non_ignorable - 1,
                    TAGGED_LAST_KNOWN_FIELD
                ),
            ));
        }
        let header_len = c.offset() - start.offset();
        let fields_len = size.checked_sub(header_len).ok_or_else(|| {
            size_at.invalid(
                "tagged GTID message size",
                format!("{size} is smaller than the message header ({header_len} bytes)"),
            )
        })?;
        let available = c.remaining();
        let fields_len = usize::try_from(fields_len).ok().filter(|n| *n <= available).ok_or_else(|| {
            DecodeError::Truncated {
                offset: start.offset(),
                what: "tagged GTID message",
                needed: size,
                available: u64::try_from(start.remaining()).unwrap_or(u64::MAX),
            }
        })?;
        let mut m = c.sub("tagged GTID message fields", fields_len)?;
        // MySQL reads the message and ignores anything after it.
        c.take_rest();
        TaggedFields::default().parse(&mut m, start)
    }

    /// The GTID, or `None` for an anonymous transaction (GNO 0).
    pub fn gtid(&self) -> Option<Gtid> {
        if self.is_anonymous() {
            None
        } else {
            Some(Gtid { uuid: self.uuid, tag: self.tag.clone(), gno: self.gno })
        }
    }

    /// True for an ANONYMOUS_GTID_LOG_EVENT (GNO 0: GTID mode off).
    pub fn is_anonymous(&self) -> bool {
        self.gno == 0
    }

    /// True when the transaction may hold statement-based events.
    pub fn may_have_sbr(&self) -> bool {
        self.flags & FLAG_MAY_HAVE_SBR != 0
    }
}

/// MySQL's `serialization_format_version`.
const SERIALIZATION_FORMAT_VERSION: u64 = 1;
/// The highest field id of GTID_TAGGED_LOG_EVENT this decoder knows.
const TAGGED_LAST_KNOWN_FIELD: u64 = 11;

/// Reads an unsigned variable-length integer of MySQL's serialization
/// library.
fn varlen_u64(c: &mut Cursor<'_>, what: &'static str) -> Result<u64> {
    let at = *c;
    let first = c.u8(what)?;
    // Trailing one-bits of the first byte: how many bytes follow it.
    let extra = (0..8).take_while(|bit| (first >> bit) & 1 == 1).count();
    if extra == 0 {
        return Ok(u64::from(first >> 1));
    }
    if c.remaining() < extra {
        return Err(DecodeError::Truncated {
            offset: at.offset(),
            what,
            needed: u64::try_from(extra + 1).unwrap_or(u64::MAX),
            available: u64::try_from(at.remaining()).unwrap_or(u64::MAX),
        });
    }
    let rest = c.uint_n(what, extra)?;
    if extra == 8 {
        // 9 bytes: the first (0xff) holds no value bits.
        return Ok(rest);
    }
    // `extra + 1` marker bits in the first byte, the value above them; the
    // following bytes continue at bit 7 - extra.
    let low = u64::from(first) >> (extra + 1);
    Ok(low | (rest << (7 - extra)))
}

/// Reads a zig-zag encoded signed variable-length integer.
fn varlen_i64(c: &mut Cursor<'_>, what: &'static str) -> Result<i64> {
    let u = varlen_u64(c, what)?;
    // u >> 1 fits in i64; -(m) - 1 cannot overflow for m <= i64::MAX.
    let magnitude = i64::try_from(u >> 1).unwrap_or(i64::MAX);
    Ok(if u & 1 == 1 { -magnitude - 1 } else { magnitude })
}

fn varlen_u8(c: &mut Cursor<'_>, what: &'static str) -> Result<u8> {
    let at = *c;
    let v = varlen_u64(c, what)?;
    u8::try_from(v).map_err(|_| at.invalid(what, format!("{v} does not fit in 8 bits")))
}

fn varlen_u32(c: &mut Cursor<'_>, what: &'static str) -> Result<u32> {
    let at = *c;
    let v = varlen_u64(c, what)?;
    u32::try_from(v).map_err(|_| at.invalid(what, format!("{v} does not fit in 32 bits")))
}

/// Reads a tag as a variable-length length then the bytes; length 0 is no tag.
fn read_tag(c: &mut Cursor<'_>, what: &'static str) -> Result<Option<Tag>> {
    let at = *c;
    let len = varlen_u64(c, what)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|n| *n <= TAG_MAX_LEN)
        .ok_or_else(|| at.invalid(what, format!("length {len} is above the maximum {TAG_MAX_LEN}")))?;
    if len == 0 {
        return Ok(None);
    }
    let bytes_at = *c;
    let bytes = c.bytes(what, len)?;
    match Tag::from_bytes(bytes) {
        Ok(tag) => Ok(Some(tag)),
        Err((i, why)) => {
            // Point at the offending byte (`i` is within `bytes`).
            let mut pos = bytes_at;
            pos.skip(what, i)?;
            Err(pos.invalid(what, why))
        }
    }
}

/// The fields of a GTID_TAGGED_LOG_EVENT, as read so far.
#[derive(Default)]
struct TaggedFields {
    flags: Option<u8>,
    uuid: Option<Uuid>,
    gno: Option<u64>,
    tag: Option<Tag>,
    last_committed: Option<i64>,
    sequence_number: Option<i64>,
    immediate_commit_timestamp: Option<u64>,
    original_commit_timestamp: Option<u64>,
    transaction_length: Option<u64>,
    immediate_server_version: Option<u32>,
    original_server_version: Option<u32>,
    commit_group_ticket: Option<u64>,
}

impl TaggedFields {
    fn parse(mut self, m: &mut Cursor<'_>, start: Cursor<'_>) -> Result<GtidEvent> {
        let mut next_id = 0u64;
        while !m.is_empty() {
            let id_at = *m;
            let id = varlen_u64(m, "tagged GTID field id")?;
            if id < next_id {
                return Err(id_at.invalid(
                    "tagged GTID field id",
                    format!("field {id} after field {}: ids must increase", next_id.saturating_sub(1)),
                ));
            }
            if id > TAGGED_LAST_KNOWN_FIELD {
                // Newer, ignorable fields (ids increase, so all the rest are
                // newer too): skip to the end of the message.
                m.take_rest();
                break;
            }
            next_id = id + 1;
            match id {
                0 => self.flags = Some(varlen_u8(m, "tagged GTID flags")?),
                1 => {
                    let mut uuid = [0u8; 16];
                    for b in uuid.iter_mut() {
                        *b = varlen_u8(m, "tagged GTID source UUID")?;
                    }
                    self.uuid = Some(Uuid(uuid));
                }
                2 => {
                    let at = *m;
                    let gno = varlen_i64(m, "tagged GTID GNO")?;
                    let gno =
                        u64::try_from(gno).ok().filter(|g| (1..=MAX_GNO).contains(g)).ok_or_else(|| {
                            at.invalid("tagged GTID GNO", format!("{gno} is outside 1..={MAX_GNO}"))
                        })?;
                    self.gno = Some(gno);
                }
                3 => self.tag = read_tag(m, "tagged GTID tag")?,
                4 => self.last_committed = Some(nonnegative_varlen(m, "tagged GTID last_committed")?),
                5 => self.sequence_number = Some(nonnegative_varlen(m, "tagged GTID sequence_number")?),
                6 => {
                    self.immediate_commit_timestamp =
                        Some(varlen_u64(m, "tagged GTID immediate_commit_timestamp")?)
                }
                7 => {
                    self.original_commit_timestamp =
                        Some(varlen_u64(m, "tagged GTID original_commit_timestamp")?)
                }
                8 => self.transaction_length = Some(varlen_u64(m, "tagged GTID transaction_length")?),
                9 => {
                    self.immediate_server_version =
                        Some(varlen_u32(m, "tagged GTID immediate_server_version")?)
                }
                10 => {
                    self.original_server_version = Some(varlen_u32(m, "tagged GTID original_server_version")?)
                }
                _ => self.commit_group_ticket = Some(varlen_u64(m, "tagged GTID commit_group_ticket")?),
            }
        }
        let missing =
            |field: &str| start.invalid("tagged GTID message", format!("required field {field} is missing"));
        Ok(GtidEvent {
            flags: self.flags.ok_or_else(|| missing("gtid_flags (0)"))?,
            uuid: self.uuid.ok_or_else(|| missing("uuid (1)"))?,
            tag: self.tag,
            gno: self.gno.ok_or_else(|| missing("gno (2)"))?,
            last_committed: self.last_committed,
            sequence_number: self.sequence_number,
            immediate_commit_timestamp: self.immediate_commit_timestamp,
            // Omitted when equal to the immediate values.
            original_commit_timestamp: self.original_commit_timestamp.or(self.immediate_commit_timestamp),
            transaction_length: self.transaction_length,
            immediate_server_version: self.immediate_server_version,
            original_server_version: self.original_server_version.or(self.immediate_server_version),
            commit_group_ticket: self.commit_group_ticket,
        })
    }
}

fn nonnegative_varlen(c: &mut Cursor<'_>, what: &'static str) -> Result<i64> {
    let at = *c;
    let v = varlen_i64(c, what)?;
    if v < 0 {
        return Err(at.invalid(what, format!("{v} is negative")));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------
// PREVIOUS_GTIDS
// ---------------------------------------------------------------------------

/// Parses the body of a PREVIOUS_GTIDS_LOG_EVENT (untagged v0 or tagged v1
/// encoding).
pub fn parse_previous_gtids(c: &mut Cursor<'_>) -> Result<GtidSet> {
    const WHAT: &str = "PREVIOUS_GTIDS set header";
    let at = *c;
    let word = c.u64(WHAT)?;
    let bytes = word.to_le_bytes();
    let (tagged, count) = match (bytes[7], bytes[0]) {
        (0, _) => {
            if bytes[6] != 0 {
                return Err(at.invalid(WHAT, format!("SID count {word:#x} does not fit in 48 bits")));
            }
            (false, word)
        }
        (1, 1) => (true, (word >> 8) & 0xffff_ffff_ffff),
        (2, 2) => {
            return Err(at.invalid(
                WHAT,
                "GTID set binary format v2 (compact) is not supported; no MySQL server writes it yet",
            ))
        }
        (v, v0) if v == v0 => return Err(at.invalid(WHAT, format!("unknown GTID set format version {v}"))),
        (v, v0) => {
            return Err(at.invalid(WHAT, format!("inconsistent GTID set format version bytes {v0} and {v}")))
        }
    };
    // Each SID needs its UUID and interval count (and a tag length byte).
    let min_per_sid: u64 = if tagged { 16 + 1 + 8 } else { 16 + 8 };
    let left = u64::try_from(c.remaining()).unwrap_or(u64::MAX);
    if count > left / min_per_sid {
        return Err(DecodeError::Truncated {
            offset: at.offset(),
            what: "PREVIOUS_GTIDS set",
            needed: count.saturating_mul(min_per_sid),
            available: left,
        });
    }
    let mut set = GtidSet::new();
    for _ in 0..count {
        let uuid = read_uuid(c, "PREVIOUS_GTIDS UUID")?;
        let tag = if tagged { read_tag(c, "PREVIOUS_GTIDS tag")? } else { None };
        let n_at = *c;
        let n_intervals = c.u64("PREVIOUS_GTIDS interval count")?;
        let left = u64::try_from(c.remaining()).unwrap_or(u64::MAX);
        if n_intervals > left / 16 {
            return Err(DecodeError::Truncated {
                offset: n_at.offset(),
                what: "PREVIOUS_GTIDS intervals",
                needed: n_intervals.saturating_mul(16),
                available: left,
            });
        }
        for _ in 0..n_intervals {
            let iv_at = *c;
            let start = c.u64("PREVIOUS_GTIDS interval start")?;
            let end_exclusive = c.u64("PREVIOUS_GTIDS interval end")?;
            let iv = end_exclusive.checked_sub(1).and_then(|end| GnoInterval::new(start, end)).ok_or_else(
                || {
                    iv_at.invalid(
                        "PREVIOUS_GTIDS interval",
                        format!(
                            "[{start}, {end_exclusive}) is not a GNO interval \
                             (need 1 <= start < end <= {GNO_END})"
                        ),
                    )
                },
            )?;
            set.add_interval(uuid, tag.clone(), iv);
        }
    }
    c.expect_end("PREVIOUS_GTIDS event")?;
    Ok(set)
}

/// Encodes `set` as PREVIOUS_GTIDS and COM_BINLOG_DUMP_GTID carry it: the
/// untagged format when no GTID has a tag (what every server reads), the
/// tagged format of 8.3+ otherwise. The inverse of [`parse_previous_gtids`].
pub fn encode_gtid_set(set: &GtidSet) -> Vec<u8> {
    let tagged = set.iter().any(|(tsid, _)| tsid.tag.is_some());
    let count = set.iter().count() as u64;
    let mut out = Vec::new();
    let word = if tagged { 1 | count << 8 | 1 << 56 } else { count };
    out.extend_from_slice(&word.to_le_bytes());
    for (tsid, ivs) in set {
        out.extend_from_slice(tsid.uuid.as_bytes());
        if tagged {
            let tag = tsid.tag.as_ref().map_or("", |t| t.as_str());
            // A varlen integer below 128 is one byte: the value shifted left.
            out.push((tag.len() as u8) << 1);
            out.extend_from_slice(tag.as_bytes());
        }
        out.extend_from_slice(&(ivs.len() as u64).to_le_bytes());
        for iv in ivs {
            out.extend_from_slice(&iv.start().to_le_bytes());
            out.extend_from_slice(&(iv.end() + 1).to_le_bytes());
        }
    }
    out
}

// ---------------------------------------------------------------------------
// MariaDB
// ---------------------------------------------------------------------------

/// MariaDB GTID flag: no terminating COMMIT/XID event follows (DDL and other
/// non-transactional statements).
pub const FL_STANDALONE: u8 = 1;
/// MariaDB GTID flag: part of a group commit; `commit_id` follows.
pub const FL_GROUP_COMMIT_ID: u8 = 2;
/// MariaDB GTID flag: the group can be rolled back safely (transactional engines only).
pub const FL_TRANSACTIONAL: u8 = 4;
/// MariaDB GTID flag: may be applied in parallel (optimistic parallel replication).
pub const FL_ALLOW_PARALLEL: u8 = 8;
/// MariaDB GTID flag: the transaction waited on a row lock of another on the primary.
pub const FL_WAITED: u8 = 16;
/// MariaDB GTID flag: the group holds DDL.
pub const FL_DDL: u8 = 32;
/// MariaDB GTID flag: an `XA PREPARE` group; the XID follows.
pub const FL_PREPARED_XA: u8 = 64;
/// MariaDB GTID flag: an `XA COMMIT`/`XA ROLLBACK` of a prepared XA; the XID follows.
pub const FL_COMPLETED_XA: u8 = 128;

/// MariaDB extra flag: the transaction spans several engines; `extra_engines` follows.
pub const FL_EXTRA_MULTI_ENGINE: u8 = 1;
/// MariaDB extra flag: first half of a split `ALTER TABLE` (binlog_alter_two_phase).
pub const FL_START_ALTER: u8 = 2;
/// MariaDB extra flag: commit of a split `ALTER`; the START ALTER's seq_no follows.
pub const FL_COMMIT_ALTER: u8 = 4;
/// MariaDB extra flag: rollback of a split `ALTER`; the START ALTER's seq_no follows.
pub const FL_ROLLBACK_ALTER: u8 = 8;
/// MariaDB extra flag (11.x): the writing connection's thread id follows.
pub const FL_EXTRA_THREAD_ID: u8 = 16;

/// GTID_LIST flag (top 4 bits of the count): artificial event sent when
/// `START SLAVE UNTIL master_gtid_pos` was reached.
pub const GTID_LIST_FLAG_UNTIL_REACHED: u8 = 1;
/// GTID_LIST flag: the listed GTIDs are to be recorded as ignored.
pub const GTID_LIST_FLAG_IGN_GTIDS: u8 = 2;

/// One past the largest GNO (MySQL's `GNO_END`).
const GNO_END: u64 = MAX_GNO + 1;

/// MariaDB's fixed part of a GTID event body, padded to this length.
const MARIA_GTID_HEADER_LEN: usize = 19;
/// MariaDB's limits on the XID parts (`MAXGTRIDSIZE`, `MAXBQUALSIZE`).
const XID_PART_MAX: u8 = 64;

/// An XA transaction id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xid {
    /// `formatID`.
    pub format_id: u32,
    /// Global transaction id (at most 64 bytes).
    pub gtrid: Vec<u8>,
    /// Branch qualifier (at most 64 bytes).
    pub bqual: Vec<u8>,
}

/// A MariaDB GTID_EVENT: starts every event group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MariaGtidEvent {
    /// Sequence number within the domain (never 0).
    pub seq_no: u64,
    /// Replication domain.
    pub domain_id: u32,
    /// Server id from the event header.
    pub server_id: u32,
    /// `FL_*` flags.
    pub flags: u8,
    /// Group commit id, with [`FL_GROUP_COMMIT_ID`].
    pub commit_id: Option<u64>,
    /// The XA transaction, with [`FL_PREPARED_XA`] or [`FL_COMPLETED_XA`].
    pub xid: Option<Xid>,
    /// `FL_EXTRA_*` / `FL_*_ALTER` flags (10.5+; 0 when absent).
    pub flags_extra: u8,
    /// Number of engines beyond the first, with [`FL_EXTRA_MULTI_ENGINE`].
    pub extra_engines: Option<u8>,
    /// seq_no of the START ALTER this group commits or rolls back.
    pub start_alter_seq_no: Option<u64>,
    /// Thread id of the connection that wrote the group (11.x).
    pub thread_id: Option<u32>,
}

impl MariaGtidEvent {
    /// Parses the body of a MariaDB GTID_EVENT; `server_id` comes from the
    /// event header.
    pub fn parse(c: &mut Cursor<'_>, server_id: u32) -> Result<MariaGtidEvent> {
        if c.remaining() < MARIA_GTID_HEADER_LEN {
            return Err(DecodeError::Truncated {
                offset: c.offset(),
                what: "MariaDB GTID event",
                needed: u64::try_from(MARIA_GTID_HEADER_LEN).unwrap_or(u64::MAX),
                available: u64::try_from(c.remaining()).unwrap_or(u64::MAX),
            });
        }
        let at = *c;
        let seq_no = c.u64("MariaDB GTID seq_no")?;
        if seq_no == 0 {
            return Err(at.invalid("MariaDB GTID seq_no", "0 is not a valid sequence number"));
        }
        let domain_id = c.u32("MariaDB GTID domain_id")?;
        let flags = c.u8("MariaDB GTID flags")?;
        let commit_id =
            if flags & FL_GROUP_COMMIT_ID != 0 { Some(c.u64("MariaDB GTID commit_id")?) } else { None };
        let xid = if flags & (FL_PREPARED_XA | FL_COMPLETED_XA) != 0 {
            let format_id = c.u32("MariaDB GTID XID format_id")?;
            let len_at = *c;
            let gtrid_len = c.u8("MariaDB GTID XID gtrid length")?;
            let bqual_len = c.u8("MariaDB GTID XID bqual length")?;
            if gtrid_len > XID_PART_MAX || bqual_len > XID_PART_MAX {
                return Err(len_at.invalid(
                    "MariaDB GTID XID lengths",
                    format!("gtrid {gtrid_len} / bqual {bqual_len} bytes: each is at most {XID_PART_MAX}"),
                ));
            }
            let gtrid = c.bytes("MariaDB GTID XID gtrid", usize::from(gtrid_len))?.to_vec();
            let bqual = c.bytes("MariaDB GTID XID bqual", usize::from(bqual_len))?.to_vec();
            Some(Xid { format_id, gtrid, bqual })
        } else {
            None
        };
        let mut ev = MariaGtidEvent {
            seq_no,
            domain_id,
            server_id,
            flags,
            commit_id,
            xid,
            flags_extra: 0,
            extra_engines: None,
            start_alter_seq_no: None,
            thread_id: None,
        };
        // Before 10.5 the rest is zero padding, which reads as no extra flags.
        if !c.is_empty() {
            let fe = c.u8("MariaDB GTID flags_extra")?;
            ev.flags_extra = fe;
            if fe & FL_EXTRA_MULTI_ENGINE != 0 {
                ev.extra_engines = Some(c.u8("MariaDB GTID extra_engines")?);
            }
            if fe & (FL_COMMIT_ALTER | FL_ROLLBACK_ALTER) != 0 {
                ev.start_alter_seq_no = Some(c.u64("MariaDB GTID start_alter seq_no")?);
            }
            if fe & FL_EXTRA_THREAD_ID != 0 {
                ev.thread_id = Some(c.u32("MariaDB GTID thread_id")?);
            }
        }
        // Zero padding up to 19 bytes, or fields of newer servers.
        c.take_rest();
        Ok(ev)
    }

    /// The GTID `domain-server-seq`.
    pub fn gtid(&self) -> MariaGtid {
        MariaGtid { domain_id: self.domain_id, server_id: self.server_id, seq_no: self.seq_no }
    }

    /// True when no COMMIT/XID event ends the group ([`FL_STANDALONE`]).
    pub fn is_standalone(&self) -> bool {
        self.flags & FL_STANDALONE != 0
    }

    /// True when the group can be rolled back safely ([`FL_TRANSACTIONAL`]).
    pub fn is_transactional(&self) -> bool {
        self.flags & FL_TRANSACTIONAL != 0
    }

    /// True when the group holds DDL ([`FL_DDL`]).
    pub fn is_ddl(&self) -> bool {
        self.flags & FL_DDL != 0
    }
}

/// Parses the body of a MariaDB GTID_LIST_EVENT: the GTIDs, and the flags
/// from the top 4 bits of the count (see `GTID_LIST_FLAG_*`). A domain may
/// appear more than once (one entry per server id).
pub fn parse_gtid_list(c: &mut Cursor<'_>) -> Result<(Vec<MariaGtid>, u8)> {
    let at = *c;
    let word = c.u32("MariaDB GTID_LIST count")?;
    let count = word & 0x0fff_ffff;
    let flags = word.to_le_bytes()[3] >> 4;
    let left = c.remaining() / 16;
    let count = usize::try_from(count).ok().filter(|n| *n <= left).ok_or_else(|| DecodeError::Truncated {
        offset: at.offset(),
        what: "MariaDB GTID_LIST entries",
        needed: u64::from(count).saturating_mul(16),
        available: u64::try_from(c.remaining()).unwrap_or(u64::MAX),
    })?;
    let mut list = Vec::with_capacity(count);
    for _ in 0..count {
        let domain_id = c.u32("MariaDB GTID_LIST domain_id")?;
        let server_id = c.u32("MariaDB GTID_LIST server_id")?;
        let seq_no = c.u64("MariaDB GTID_LIST seq_no")?;
        list.push(MariaGtid { domain_id, server_id, seq_no });
    }
    // Servers pad short events (an empty list is followed by 2 zero bytes).
    c.take_rest();
    Ok((list, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: [u8; 16] =
        [0x97, 0xc7, 0xaf, 0x02, 0x4c, 0x50, 0x11, 0xec, 0xac, 0xd8, 0x68, 0x18, 0x42, 0x03, 0x49, 0x64];
    const SID_TEXT: &str = "97c7af02-4c50-11ec-acd8-681842034964";

    fn le(v: u64, n: usize) -> Vec<u8> {
        v.to_le_bytes()[..n].to_vec()
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Runs `parse` over every proper prefix of `body`: it must never panic,
    /// must fail unless the prefix length is in `ok_lengths`, and must leave
    /// nothing unread when it succeeds.
    fn check_prefixes<T>(body: &[u8], ok_lengths: &[usize], parse: impl Fn(&mut Cursor<'_>) -> Result<T>) {
        for n in 0..body.len() {
            let mut c = Cursor::new(&body[..n], 1000);
            match parse(&mut c) {
                Ok(_) => {
                    assert!(ok_lengths.contains(&n), "prefix of {n} bytes parsed");
                    assert!(c.is_empty(), "prefix of {n} bytes left bytes unread");
                }
                Err(e) => {
                    assert!(!ok_lengths.contains(&n), "prefix of {n} bytes failed: {e}");
                    let off = e.offset();
                    assert!((1000..=1000 + n as u64).contains(&off), "offset {off} for prefix {n}");
                }
            }
        }
    }

    // ---- untagged GTID events ----

    fn gtid_56() -> Vec<u8> {
        cat(&[&[1], &SID, &le(5, 8)])
    }

    fn gtid_57() -> Vec<u8> {
        cat(&[&gtid_56(), &[2], &le(4, 8), &le(5, 8)])
    }

    #[test]
    fn gtid_56_layout() {
        let body = gtid_56();
        let mut c = Cursor::new(&body, 0);
        let ev = GtidEvent::parse(&mut c).unwrap();
        assert!(c.is_empty());
        assert_eq!(ev.flags, 1);
        assert!(ev.may_have_sbr());
        assert_eq!(ev.uuid.to_string(), SID_TEXT);
        assert_eq!(ev.gno, 5);
        assert_eq!(ev.last_committed, None);
        assert_eq!(ev.immediate_commit_timestamp, None);
        assert_eq!(ev.gtid().unwrap().to_string(), format!("{SID_TEXT}:5"));
    }

    #[test]
    fn gtid_57_layout() {
        let ev = GtidEvent::parse(&mut Cursor::new(&gtid_57(), 0)).unwrap();
        assert_eq!(ev.last_committed, Some(4));
        assert_eq!(ev.sequence_number, Some(5));
        assert_eq!(ev.immediate_commit_timestamp, None);
        assert_eq!(ev.transaction_length, None);
        assert_eq!(ev.immediate_server_version, None);
    }

    #[test]
    fn gtid_old_typecode_is_ignored() {
        let body = cat(&[&gtid_56(), &[1], &le(4, 8)]);
        let mut c = Cursor::new(&body, 0);
        let ev = GtidEvent::parse(&mut c).unwrap();
        assert!(c.is_empty());
        assert_eq!(ev.last_committed, None);
        assert_eq!(ev.gno, 5);
    }

    #[test]
    fn gtid_80_same_origin() {
        // 8.0.26-like: one timestamp, 3-byte transaction length, one version.
        let ts = 0x05_d173_0d73_ad37u64;
        let body = cat(&[&gtid_57(), &le(ts, 7), &[0xfc, 0x4f, 0x01], &le(80026, 4)]);
        let mut c = Cursor::new(&body, 0);
        let ev = GtidEvent::parse(&mut c).unwrap();
        assert!(c.is_empty());
        assert_eq!(ev.immediate_commit_timestamp, Some(ts));
        assert_eq!(ev.original_commit_timestamp, Some(ts));
        assert_eq!(ev.transaction_length, Some(335));
        assert_eq!(ev.immediate_server_version, Some(80026));
        assert_eq!(ev.original_server_version, Some(80026));
        assert_eq!(ev.commit_group_ticket, None);
    }

    /// 8.0 body with every optional field; returns it with the lengths at
    /// which a prefix is itself a complete, shorter layout.
    fn gtid_80_full() -> (Vec<u8>, Vec<usize>) {
        let imm = 1_700_000_000_000_000u64;
        let orig = 1_600_000_000_000_000u64;
        let body = cat(&[
            &gtid_57(),
            &le(imm | (1 << 55), 7),
            &le(orig, 7),
            &[0x20],
            &le(80040 | (1 << 31), 4),
            &le(50744, 4),
            &le(0x8000_0000_0000_0007, 8),
        ]);
        (body, vec![25, 42, 56, 57, 65])
    }

    #[test]
    fn gtid_80_different_origin_with_ticket() {
        let (body, _) = gtid_80_full();
        let mut with_extra = body.clone();
        with_extra.extend_from_slice(&[9, 9, 9]); // fields of a newer server
        for b in [&body, &with_extra] {
            let mut c = Cursor::new(b, 0);
            let ev = GtidEvent::parse(&mut c).unwrap();
            assert!(c.is_empty());
            assert_eq!(ev.immediate_commit_timestamp, Some(1_700_000_000_000_000));
            assert_eq!(ev.original_commit_timestamp, Some(1_600_000_000_000_000));
            assert_eq!(ev.transaction_length, Some(32));
            assert_eq!(ev.immediate_server_version, Some(80040));
            assert_eq!(ev.original_server_version, Some(50744));
            assert_eq!(ev.commit_group_ticket, Some(0x8000_0000_0000_0007));
        }
    }

    #[test]
    fn gtid_every_truncation() {
        let (body, ok) = gtid_80_full();
        check_prefixes(&body, &ok, GtidEvent::parse);
    }

    #[test]
    fn gtid_anonymous() {
        let body = cat(&[&[0], &[0; 16], &le(0, 8), &[2], &le(0, 8), &le(1, 8)]);
        let ev = GtidEvent::parse(&mut Cursor::new(&body, 0)).unwrap();
        assert!(ev.is_anonymous());
        assert!(ev.uuid.is_nil());
        assert_eq!(ev.gtid(), None);
        assert!(!ev.may_have_sbr());
    }

    #[test]
    fn gtid_bad_values() {
        let body = cat(&[&[1], &SID, &le(u64::MAX, 8)]);
        let err = GtidEvent::parse(&mut Cursor::new(&body, 100)).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { offset: 117, what: "GTID GNO", .. }), "{err}");

        let body = cat(&[&gtid_56(), &[2], &le(u64::MAX, 8), &le(1, 8)]);
        let err = GtidEvent::parse(&mut Cursor::new(&body, 0)).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { offset: 26, what: "GTID last_committed", .. }), "{err}");

        // 0xfb (NULL) is not a transaction length.
        let body = cat(&[&gtid_57(), &le(1, 7), &[0xfb]]);
        let err = GtidEvent::parse(&mut Cursor::new(&body, 0)).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { offset: 49, .. }), "{err}");
    }

    // ---- tagged GTID events ----

    /// MySQL's variable-length unsigned encoding (test-only encoder).
    fn vu(v: u64) -> Vec<u8> {
        let bits = 64 - v.leading_zeros() as usize;
        let n = if bits == 64 {
            9
        } else if bits == 0 {
            1
        } else {
            1 + (bits - 1) / 7
        };
        let n = n.min(9);
        if n == 9 {
            return cat(&[&[0xff], &v.to_le_bytes()]);
        }
        let marker = (1u64 << (n - 1)) - 1;
        let x = (v << n) | marker;
        x.to_le_bytes()[..n].to_vec()
    }

    fn vi(v: i64) -> Vec<u8> {
        let u = if v < 0 { ((-(v + 1)) as u64) << 1 | 1 } else { (v as u64) << 1 };
        vu(u)
    }

    fn uuid_fields(uuid: &[u8; 16]) -> Vec<u8> {
        uuid.iter().flat_map(|b| vu(u64::from(*b))).collect()
    }

    /// Wraps fields in a message: version, self-inclusive size, lnif.
    fn message(fields: &[u8], lnif: u64) -> Vec<u8> {
        let fixed = 1 + vu(lnif).len() + fields.len();
        let mut size = fixed + 1;
        while fixed + vu(size as u64).len() != size {
            size = fixed + vu(size as u64).len();
        }
        cat(&[&vu(1), &vu(size as u64), &vu(lnif), fields])
    }

    fn field(id: u64, value: &[u8]) -> Vec<u8> {
        cat(&[&vu(id), value])
    }

    fn tagged_fields(tag: &str) -> Vec<u8> {
        cat(&[
            &field(0, &vu(0)),
            &field(1, &uuid_fields(&SID)),
            &field(2, &vi(3)),
            &field(3, &cat(&[&vu(tag.len() as u64), tag.as_bytes()])),
            &field(4, &vi(0)),
            &field(5, &vi(1)),
            &field(6, &vu(0x0006_4a24_14b8_f31c)),
            &field(8, &vu(296)),
            &field(9, &vu(90600)),
        ])
    }

    #[test]
    fn varlen_examples_from_mysql_docs() {
        // readme.md: 65535 unsigned is fb ff 07; signed 65535 is f3 ff 0f,
        // -65535 is eb ff 0f, -65536 is fb ff 0f.
        assert_eq!(varlen_u64(&mut Cursor::new(&[0xfb, 0xff, 0x07], 0), "x").unwrap(), 65535);
        assert_eq!(varlen_i64(&mut Cursor::new(&[0xf3, 0xff, 0x0f], 0), "x").unwrap(), 65535);
        assert_eq!(varlen_i64(&mut Cursor::new(&[0xeb, 0xff, 0x0f], 0), "x").unwrap(), -65535);
        assert_eq!(varlen_i64(&mut Cursor::new(&[0xfb, 0xff, 0x0f], 0), "x").unwrap(), -65536);
        assert_eq!(vu(65535), [0xfb, 0xff, 0x07]);
        for v in [0, 1, 127, 128, 16383, 16384, (1 << 56) - 1, 1 << 56, (1 << 63) - 1, 1 << 63, u64::MAX] {
            let enc = vu(v);
            let mut c = Cursor::new(&enc, 0);
            assert_eq!(varlen_u64(&mut c, "x").unwrap(), v, "{v}");
            assert!(c.is_empty());
            // Every truncation fails at the start of the number.
            for n in 0..enc.len() {
                let err = varlen_u64(&mut Cursor::new(&enc[..n], 7), "x").unwrap_err();
                assert_eq!(err.offset(), 7);
            }
        }
        for v in [0, 1, -1, 63, -64, 64, i64::MAX, i64::MIN] {
            assert_eq!(varlen_i64(&mut Cursor::new(&vi(v), 0), "x").unwrap(), v, "{v}");
        }
    }

    #[test]
    fn tagged_basic() {
        let body = message(&tagged_fields("mytag"), 0);
        let mut c = Cursor::new(&body, 0);
        let ev = GtidEvent::parse_tagged(&mut c).unwrap();
        assert!(c.is_empty());
        assert_eq!(ev.gtid().unwrap().to_string(), format!("{SID_TEXT}:mytag:3"));
        assert_eq!(ev.flags, 0);
        assert_eq!(ev.last_committed, Some(0));
        assert_eq!(ev.sequence_number, Some(1));
        assert_eq!(ev.immediate_commit_timestamp, Some(0x0006_4a24_14b8_f31c));
        assert_eq!(ev.original_commit_timestamp, ev.immediate_commit_timestamp);
        assert_eq!(ev.transaction_length, Some(296));
        assert_eq!(ev.immediate_server_version, Some(90600));
        assert_eq!(ev.original_server_version, Some(90600));
        assert_eq!(ev.commit_group_ticket, None);
    }

    #[test]
    fn tagged_all_fields_and_uppercase_tag() {
        let fields = cat(&[
            &field(0, &vu(1)),
            &field(1, &uuid_fields(&SID)),
            &field(2, &vi(MAX_GNO as i64)),
            &field(3, &cat(&[&vu(5), b"Audit"])),
            &field(4, &vi(10)),
            &field(5, &vi(12)),
            &field(6, &vu(2_000_000)),
            &field(7, &vu(1_000_000)),
            &field(8, &vu(1 << 40)),
            &field(9, &vu(90600)),
            &field(10, &vu(80400)),
            &field(11, &vu(u64::MAX)),
        ]);
        let ev = GtidEvent::parse_tagged(&mut Cursor::new(&message(&fields, 12), 0)).unwrap();
        assert!(ev.may_have_sbr());
        assert_eq!(ev.tag.as_ref().map(Tag::as_str), Some("audit"));
        assert_eq!(ev.gno, MAX_GNO);
        assert_eq!(ev.last_committed, Some(10));
        assert_eq!(ev.sequence_number, Some(12));
        assert_eq!(ev.immediate_commit_timestamp, Some(2_000_000));
        assert_eq!(ev.original_commit_timestamp, Some(1_000_000));
        assert_eq!(ev.transaction_length, Some(1 << 40));
        assert_eq!(ev.immediate_server_version, Some(90600));
        assert_eq!(ev.original_server_version, Some(80400));
        assert_eq!(ev.commit_group_ticket, Some(u64::MAX));
    }

    #[test]
    fn tagged_skips_newer_fields_and_trailing_bytes() {
        // Fields 12 and 13 of some future server, ignorable (lnif 0).
        let fields = cat(&[&tagged_fields("t"), &field(12, &vu(77)), &field(13, &[0xde, 0xad, 0xbe])]);
        let mut body = message(&fields, 0);
        body.extend_from_slice(&[1, 2, 3]); // after the message: ignored, as MySQL does
        let mut c = Cursor::new(&body, 0);
        let ev = GtidEvent::parse_tagged(&mut c).unwrap();
        assert!(c.is_empty());
        assert_eq!(ev.gtid().unwrap().to_string(), format!("{SID_TEXT}:t:3"));
        assert_eq!(ev.transaction_length, Some(296));
    }

    #[test]
    fn tagged_empty_tag_is_untagged() {
        let ev = GtidEvent::parse_tagged(&mut Cursor::new(&message(&tagged_fields(""), 0), 0)).unwrap();
        assert_eq!(ev.tag, None);
    }

    #[test]
    fn tagged_rejections() {
        let good = tagged_fields("mytag");
        // A required field of a newer version.
        let err = GtidEvent::parse_tagged(&mut Cursor::new(&message(&good, 13), 50)).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { offset: 52, .. }), "{err}");
        // Unknown serialization version.
        let mut body = message(&good, 0);
        body[0] = 0x04;
        let err = GtidEvent::parse_tagged(&mut Cursor::new(&body, 0)).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { offset: 0, .. }), "{err}");
        // Size smaller than the header, and larger than the body.
        let err = GtidEvent::parse_tagged(&mut Cursor::new(&[0x02, 0x02, 0x00], 0)).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { offset: 1, .. }), "{err}");
        let mut body = message(&good, 0);
        body[1] += 2;
        let err = GtidEvent::parse_tagged(&mut Cursor::new(&body, 0)).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated { offset: 0, .. }), "{err}");
        // Fields out of order.
        let fields = cat(&[&field(0, &vu(0)), &field(2, &vi(3)), &field(1, &uuid_fields(&SID))]);
        let err = GtidEvent::parse_tagged(&mut Cursor::new(&message(&fields, 0), 0)).unwrap_err();
        assert!(err.to_string().contains("ids must increase"), "{err}");
        // Missing GNO.
        let fields = cat(&[&field(0, &vu(0)), &field(1, &uuid_fields(&SID))]);
        let err = GtidEvent::parse_tagged(&mut Cursor::new(&message(&fields, 0), 0)).unwrap_err();
        assert!(err.to_string().contains("gno"), "{err}");
        // GNO 0, negative and out-of-range values, bad tag.
        for bad in [
            field(2, &vi(0)),
            field(2, &vi(-5)),
            field(0, &vu(256)),
            field(4, &vi(-1)),
            field(9, &vu(1 << 32)),
            field(3, &cat(&[&vu(33), &[b'a'; 33]])),
            field(3, &cat(&[&vu(3), b"9ab"])),
        ] {
            let fields = cat(&[&field(0, &vu(0)), &field(1, &uuid_fields(&SID)), &bad]);
            let fields = if bad[0] == 0 { cat(&[&bad, &field(1, &uuid_fields(&SID))]) } else { fields };
            let err = GtidEvent::parse_tagged(&mut Cursor::new(&message(&fields, 0), 0)).unwrap_err();
            assert!(matches!(err, DecodeError::Invalid { .. }), "{bad:02x?}: {err}");
        }
        // A UUID byte above 255.
        let mut uuid = uuid_fields(&SID);
        uuid.splice(0..1, vu(300));
        let fields = cat(&[&field(0, &vu(0)), &field(1, &uuid)]);
        let err = GtidEvent::parse_tagged(&mut Cursor::new(&message(&fields, 0), 0)).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { .. }), "{err}");
    }

    #[test]
    fn tagged_every_truncation() {
        let body = message(&tagged_fields("mytag"), 0);
        check_prefixes(&body, &[], GtidEvent::parse_tagged);
        // Truncating inside the message while keeping its size consistent
        // (a field cut short) fails too.
        let fields = tagged_fields("mytag");
        for n in 0..fields.len() {
            let body = message(&fields[..n], 0);
            let ok = GtidEvent::parse_tagged(&mut Cursor::new(&body, 0));
            // Either a clean error, or a complete field boundary with the
            // required fields present.
            if let Ok(ev) = ok {
                assert_eq!(ev.gno, 3, "fields cut at {n}");
            }
        }
    }

    // ---- PREVIOUS_GTIDS ----

    fn sid2() -> [u8; 16] {
        let mut s = SID;
        s[0] = 0x10;
        s
    }

    #[test]
    fn previous_gtids_v0() {
        let empty = le(0, 8);
        let mut c = Cursor::new(&empty, 0);
        assert!(parse_previous_gtids(&mut c).unwrap().is_empty());
        assert!(c.is_empty());

        let body = cat(&[
            &le(2, 8),
            &SID,
            &le(2, 8),
            &le(7, 8),
            &le(8, 8),
            &le(1, 8),
            &le(6, 8),
            &sid2(),
            &le(1, 8),
            &le(1, 8),
            &le(4, 8),
        ]);
        let set = parse_previous_gtids(&mut Cursor::new(&body, 0)).unwrap();
        assert_eq!(set.to_string(), format!("10c7af02-4c50-11ec-acd8-681842034964:1-3,{SID_TEXT}:1-5:7"));
        check_prefixes(&body, &[], parse_previous_gtids);
    }

    #[test]
    fn previous_gtids_v1_tagged() {
        let header = 0x0100_0000_0000_0201u64; // version 1, 2 TSIDs, version 1
        let body = cat(&[
            &header.to_le_bytes(),
            &SID,
            &vu(0),
            &le(1, 8),
            &le(1, 8),
            &le(14, 8),
            &SID,
            &cat(&[&vu(5), b"mytag"]),
            &le(1, 8),
            &le(1, 8),
            &le(3, 8),
        ]);
        let set = parse_previous_gtids(&mut Cursor::new(&body, 0)).unwrap();
        assert_eq!(set.to_string(), format!("{SID_TEXT}:1-13:mytag:1-2"));
        check_prefixes(&body, &[], parse_previous_gtids);
        assert_eq!(encode_gtid_set(&set), body, "the tagged encoding is byte for byte MySQL's");
    }

    #[test]
    fn gtid_set_encoding_round_trips() {
        for text in [
            "",
            "10c7af02-4c50-11ec-acd8-681842034964:1-3",
            "10c7af02-4c50-11ec-acd8-681842034964:1-3:5:9-12,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:audit:1-3:zz:9",
        ] {
            let set: GtidSet = text.parse().unwrap();
            let bytes = encode_gtid_set(&set);
            let back = parse_previous_gtids(&mut Cursor::new(&bytes, 0)).unwrap();
            assert_eq!(back, set, "{text}");
            assert_eq!(bytes[7], u8::from(text.contains("audit")), "format version byte of {text}");
        }
    }

    #[test]
    fn previous_gtids_rejections() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (0x0200_0000_0000_0002u64.to_le_bytes().to_vec(), "v2"),
            (0x0300_0000_0000_0003u64.to_le_bytes().to_vec(), "unknown"),
            (0x0100_0000_0000_0002u64.to_le_bytes().to_vec(), "inconsistent"),
            (0x0001_0000_0000_0001u64.to_le_bytes().to_vec(), "48 bits"),
            (cat(&[&le(1, 8), &SID, &le(1, 8), &le(0, 8), &le(3, 8)]), "interval"),
            (cat(&[&le(1, 8), &SID, &le(1, 8), &le(3, 8), &le(3, 8)]), "interval"),
            (cat(&[&le(1, 8), &SID, &le(1, 8), &le(1, 8), &le(MAX_GNO + 2, 8)]), "interval"),
            (cat(&[&le(1, 8), &SID, &le(0, 8), &[0]]), "trailing"),
            (cat(&[&le(u64::from(u32::MAX), 8), &SID]), "truncated"),
            (cat(&[&le(1, 8), &SID, &le(u64::MAX, 8)]), "truncated"),
            (
                cat(&[&0x0100_0000_0000_0101u64.to_le_bytes(), &SID, &vu(40), &[b'a'; 40], &le(0, 8)]),
                "maximum",
            ),
        ];
        for (body, needle) in cases {
            let err = parse_previous_gtids(&mut Cursor::new(&body, 0)).unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
        // The largest GNO is accepted.
        let body = cat(&[&le(1, 8), &SID, &le(1, 8), &le(MAX_GNO, 8), &le(MAX_GNO + 1, 8)]);
        let set = parse_previous_gtids(&mut Cursor::new(&body, 0)).unwrap();
        assert!(set.contains(&Gtid::new(Uuid(SID), MAX_GNO)));
    }

    // ---- MariaDB ----

    #[test]
    fn maria_gtid_plain_10x() {
        let body = cat(&[&le(42, 8), &le(1, 4), &[FL_TRANSACTIONAL | FL_ALLOW_PARALLEL], &[0; 6]]);
        let mut c = Cursor::new(&body, 0);
        let ev = MariaGtidEvent::parse(&mut c, 10).unwrap();
        assert!(c.is_empty());
        assert_eq!(ev.gtid().to_string(), "1-10-42");
        assert!(!ev.is_standalone());
        assert!(ev.is_transactional());
        assert_eq!(ev.commit_id, None);
        assert_eq!(ev.xid, None);
        assert_eq!(ev.flags_extra, 0);
        check_prefixes(&body, &[], |c| MariaGtidEvent::parse(c, 10));
    }

    #[test]
    fn maria_gtid_standalone_ddl_with_thread_id_11x() {
        let body = cat(&[&le(1, 8), &le(1, 4), &[0x29], &[FL_EXTRA_THREAD_ID], &le(6, 4), &[0]]);
        let ev = MariaGtidEvent::parse(&mut Cursor::new(&body, 0), 10).unwrap();
        assert!(ev.is_standalone());
        assert!(ev.is_ddl());
        assert_eq!(ev.thread_id, Some(6));
        assert_eq!(ev.gtid().to_string(), "1-10-1");
    }

    #[test]
    fn maria_gtid_group_commit_and_extras() {
        let body = cat(&[
            &le(7, 8),
            &le(0, 4),
            &[FL_GROUP_COMMIT_ID | FL_TRANSACTIONAL],
            &le(99, 8),
            &[FL_EXTRA_MULTI_ENGINE | FL_COMMIT_ALTER | FL_EXTRA_THREAD_ID],
            &[2],
            &le(5, 8),
            &le(1234, 4),
        ]);
        let mut c = Cursor::new(&body, 0);
        let ev = MariaGtidEvent::parse(&mut c, 3).unwrap();
        assert!(c.is_empty());
        assert_eq!(ev.commit_id, Some(99));
        assert_eq!(ev.extra_engines, Some(2));
        assert_eq!(ev.start_alter_seq_no, Some(5));
        assert_eq!(ev.thread_id, Some(1234));
        // 21 bytes is a complete event without extra flags.
        check_prefixes(&body, &[21], |c| MariaGtidEvent::parse(c, 3));
    }

    #[test]
    fn maria_gtid_xa() {
        let body = cat(&[&le(8, 8), &le(0, 4), &[FL_PREPARED_XA], &le(1, 4), &[3, 2], b"abcxy"]);
        let ev = MariaGtidEvent::parse(&mut Cursor::new(&body, 0), 1).unwrap();
        assert_eq!(ev.xid, Some(Xid { format_id: 1, gtrid: b"abc".to_vec(), bqual: b"xy".to_vec() }));
        check_prefixes(&body, &[], |c| MariaGtidEvent::parse(c, 1));

        let body = cat(&[&le(8, 8), &le(0, 4), &[FL_COMPLETED_XA], &le(1, 4), &[65, 0], &[0; 65]]);
        let err = MariaGtidEvent::parse(&mut Cursor::new(&body, 0), 1).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { offset: 17, .. }), "{err}");
    }

    #[test]
    fn maria_gtid_seq_zero_is_invalid() {
        let body = cat(&[&le(0, 8), &le(0, 4), &[0], &[0; 6]]);
        let err = MariaGtidEvent::parse(&mut Cursor::new(&body, 5), 1).unwrap_err();
        assert!(matches!(err, DecodeError::Invalid { offset: 5, .. }), "{err}");
    }

    #[test]
    fn maria_gtid_list() {
        let body = cat(&[
            &(2u32 | (u32::from(GTID_LIST_FLAG_IGN_GTIDS) << 28)).to_le_bytes(),
            &le(0, 4),
            &le(10, 4),
            &le(262175, 8),
            &le(1, 4),
            &le(2, 4),
            &le(7, 8),
        ]);
        let mut c = Cursor::new(&body, 0);
        let (list, flags) = parse_gtid_list(&mut c).unwrap();
        assert!(c.is_empty());
        assert_eq!(flags, GTID_LIST_FLAG_IGN_GTIDS);
        let text: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["0-10-262175", "1-2-7"]);
        check_prefixes(&body, &[], parse_gtid_list);

        // Empty list with the 2 padding bytes servers write.
        let (list, flags) = parse_gtid_list(&mut Cursor::new(&[0, 0, 0, 0, 0, 0], 0)).unwrap();
        assert!(list.is_empty());
        assert_eq!(flags, 0);

        // A count the body cannot hold is refused before allocating.
        let err = parse_gtid_list(&mut Cursor::new(&0x0fff_ffffu32.to_le_bytes(), 9)).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated { offset: 9, .. }), "{err}");
    }
}
