//! The on-disk framing of one ring record, and of a segment's header.
//!
//! Sans-IO: encodes into a byte slice and parses from one. A record is
//!
//! ```text
//! 0  u32 len        whole record, header included, before padding
//! 4  u32 crc32c     of bytes 8..len, seeded with the segment's sequence
//! 8  u32 generation the writer's run that wrote it (see below)
//! 12 u16 flags      UNIT_START, UNIT_END, RESENT, CRC32, SEGMENT_END
//! 14 u8  file_len   binlog file name length
//! 15 u8  gtid_len   GTID text length
//! 16 u64 start      the event's position in that binlog file
//! 24 file name, GTID text, the event bytes as received; zeros up to 8-byte alignment
//! ```
//!
//! The file name and GTID are stored in the first record of a unit only
//! (a unit never spans binlog files); readers hand them to the unit's other
//! records. The event's end position and timestamp come from the event
//! itself (its size, its header). Small row events stay small in the ring.
//!
//! Two rules make stale bytes harmless without ever zeroing them. The CRC is
//! seeded with the segment's sequence number, so records left in a reused
//! segment file from its previous life fail the check. And each run of the
//! writer has a higher generation than the last: records after a cut tail
//! are overwritten by a newer generation, and a record of an older
//! generation after a newer one is stale, the end of the data.

/// The type of a raw event (its header's fifth byte), read without
/// decoding it.
pub fn event_type(event: &[u8]) -> Option<gapless_decoder::EventType> {
    event.get(4).map(|&t| gapless_decoder::EventType(t))
}

/// The timestamp in a raw event's header (0 for bytes too short).
pub fn event_timestamp(event: &[u8]) -> u32 {
    event.get(..4).map_or(0, |t| u32::from_le_bytes(t.try_into().expect("4 bytes")))
}

/// Bytes of the fixed record header.
pub const RECORD_HEADER: usize = 24;
/// Bytes of a segment file's header; records start here.
pub const SEGMENT_HEADER: usize = 64;
/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"GAPRING1";

/// The record is the first of a unit (a transaction, or an event outside one).
pub const UNIT_START: u16 = 1;
/// The record is the last of a unit: the unit is complete.
pub const UNIT_END: u16 = 2;
/// A FORMAT_DESCRIPTION the primary sent again when the stream started
/// mid-file: not at its position in the sequence, but what decodes the
/// events that follow.
pub const RESENT: u16 = 4;
/// The event ends in a CRC32 checksum (the primary's checksum setting).
pub const CRC32: u16 = 8;
/// Marks the end of the data of a segment: the next record is in the next
/// segment.
pub const SEGMENT_END: u16 = 0x8000;

const KNOWN_FLAGS: u16 = UNIT_START | UNIT_END | RESENT | CRC32 | SEGMENT_END;

/// What a record says about its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta<'a> {
    /// Flags (see the constants).
    pub flags: u16,
    /// The binlog file the event is in (stored in a unit's first record).
    pub file: &'a str,
    /// The GTID of its transaction, as text, or "" (stored in a unit's
    /// first record).
    pub gtid: &'a str,
    /// The event's position in `file`.
    pub start: u64,
    /// The position just past it (from the event's size; not stored).
    pub end: u64,
    /// The event header's timestamp (read from the event; not stored).
    pub timestamp: u32,
}

impl<'a> RecordMeta<'a> {
    /// The file name and GTID as stored: only a unit's first record
    /// carries them.
    pub fn stored_names(&self) -> (&'a str, &'a str) {
        if self.flags & UNIT_START != 0 {
            (self.file, self.gtid)
        } else {
            ("", "")
        }
    }
}

/// A record read back from a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// What it says about its event.
    pub meta: RecordMeta<'a>,
    /// The writer generation.
    pub generation: u32,
    /// The event bytes exactly as the primary sent them.
    pub event: &'a [u8],
    /// Where it starts in its segment.
    pub offset: usize,
    /// Where the next record starts.
    pub next: usize,
}

impl Record<'_> {
    /// True for the record that closes a segment.
    pub fn is_segment_end(&self) -> bool {
        self.meta.flags & SEGMENT_END != 0
    }
}

/// What is at a place in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot<'a> {
    /// A valid record.
    Record(Record<'a>),
    /// Nothing was written here (a zero length field), or there is no room
    /// for a record header before the end of the segment.
    Empty,
    /// Bytes that are not a valid record of this segment: a torn write,
    /// a stale record, or damage.
    Invalid(&'static str),
}

/// The bytes a record takes, padding included.
pub fn encoded_len(meta: &RecordMeta<'_>, event_len: usize) -> usize {
    let (file, gtid) = meta.stored_names();
    align8(RECORD_HEADER + file.len() + gtid.len() + event_len)
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Why a record cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A file name or GTID longer than 255 bytes.
    #[error("{what} is {len} bytes; at most 255 fit in a ring record")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
    },
}

/// Checks that `meta` fits the record format.
pub fn check(meta: &RecordMeta<'_>) -> Result<(), EncodeError> {
    for (what, len) in [("binlog file name", meta.file.len()), ("GTID", meta.gtid.len())] {
        if len > 255 {
            return Err(EncodeError::TooLong { what, len });
        }
    }
    Ok(())
}

/// Writes a record into `out`, which must be exactly
/// [`encoded_len`] bytes long; `meta` must pass [`check`].
pub fn encode(out: &mut [u8], seq: u64, generation: u32, meta: &RecordMeta<'_>, event: &[u8]) {
    let (file, gtid) = meta.stored_names();
    let len = RECORD_HEADER + file.len() + gtid.len() + event.len();
    debug_assert_eq!(out.len(), align8(len));
    out[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    out[8..12].copy_from_slice(&generation.to_le_bytes());
    out[12..14].copy_from_slice(&meta.flags.to_le_bytes());
    out[14] = file.len() as u8;
    out[15] = gtid.len() as u8;
    out[16..24].copy_from_slice(&meta.start.to_le_bytes());
    let mut at = RECORD_HEADER;
    for part in [file.as_bytes(), gtid.as_bytes(), event] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    out[len..].fill(0);
    let crc = crc32c::crc32c_append(seed(seq), &out[8..len]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends a record to `out` (the same bytes as [`encode`], without
/// zeroing the space first). `seed` is [`seed`] of the segment.
pub fn encode_into(out: &mut Vec<u8>, seed: u32, generation: u32, meta: &RecordMeta<'_>, event: &[u8]) {
    let (file, gtid) = meta.stored_names();
    let len = RECORD_HEADER + file.len() + gtid.len() + event.len();
    let at = out.len();
    out.reserve(align8(len));
    let mut head = [0u8; RECORD_HEADER];
    head[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    head[8..12].copy_from_slice(&generation.to_le_bytes());
    head[12..14].copy_from_slice(&meta.flags.to_le_bytes());
    head[14] = file.len() as u8;
    head[15] = gtid.len() as u8;
    head[16..24].copy_from_slice(&meta.start.to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(file.as_bytes());
    out.extend_from_slice(gtid.as_bytes());
    out.extend_from_slice(event);
    // One pass over the record while it is in cache (the CRC routine has
    // a cost per call that small pieces would pay several times).
    let crc = crc32c::crc32c_append(seed, &out[at + 8..at + len]);
    out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&[0u8; 7][..align8(len) - len]);
}

/// The CRC of the segment sequence number: the seed of its records' CRCs.
pub fn seed(seq: u64) -> u32 {
    crc32c::crc32c(&seq.to_le_bytes())
}

/// Reads the record at `offset` of a segment with sequence number `seq`.
pub fn parse(segment: &[u8], offset: usize, seq: u64) -> Slot<'_> {
    parse_seeded(segment, offset, seed(seq))
}

/// [`parse`] with the segment's [`seed`] computed once by the caller.
pub fn parse_seeded(segment: &[u8], offset: usize, seed: u32) -> Slot<'_> {
    let Some(head) = segment.get(offset..offset.saturating_add(RECORD_HEADER)) else {
        return Slot::Empty;
    };
    let u32_at = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().expect("8 bytes"));
    let len = u32_at(0) as usize;
    if len == 0 {
        return Slot::Empty;
    }
    let (file_len, gtid_len) = (head[14] as usize, head[15] as usize);
    if len < RECORD_HEADER + file_len + gtid_len {
        return Slot::Invalid("record length shorter than its parts");
    }
    let Some(body) = segment.get(offset..offset + len) else {
        return Slot::Invalid("record runs past the end of the segment");
    };
    if crc32c::crc32c_append(seed, &body[8..]) != u32_at(4) {
        return Slot::Invalid("CRC32C mismatch");
    }
    let flags = u16::from_le_bytes([head[12], head[13]]);
    if flags & !KNOWN_FLAGS != 0 {
        return Slot::Invalid("unknown record flags");
    }
    let file_end = RECORD_HEADER + file_len;
    let gtid_end = file_end + gtid_len;
    let (Ok(file), Ok(gtid)) =
        (std::str::from_utf8(&body[RECORD_HEADER..file_end]), std::str::from_utf8(&body[file_end..gtid_end]))
    else {
        return Slot::Invalid("file name or GTID is not UTF-8");
    };
    let event = &body[gtid_end..];
    let start = u64_at(16);
    let timestamp = event_timestamp(event);
    let meta = RecordMeta { flags, file, gtid, start, end: start + event.len() as u64, timestamp };
    Slot::Record(Record { meta, generation: u32_at(8), event, offset, next: offset + align8(len) })
}

/// A segment file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment's sequence number: its place in the ring's history.
    pub seq: u64,
    /// The segment file's size.
    pub size: u64,
}

impl SegmentHeader {
    /// The header bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER] {
        let mut out = [0u8; SEGMENT_HEADER];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..24].copy_from_slice(&self.size.to_le_bytes());
        let crc = crc32c::crc32c(&out[0..24]);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a header; `None` when the bytes are not one.
    pub fn parse(bytes: &[u8]) -> Option<SegmentHeader> {
        let head = bytes.get(..SEGMENT_HEADER)?;
        if head[0..8] != SEGMENT_MAGIC || crc32c::crc32c(&head[0..24]).to_le_bytes() != head[24..28] {
            return None;
        }
        Some(SegmentHeader {
            seq: u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")),
            size: u64::from_le_bytes(head[16..24].try_into().expect("8 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta<'a>(flags: u16, file: &'a str, gtid: &'a str) -> RecordMeta<'a> {
        RecordMeta { flags, file, gtid, start: 256, end: 300, timestamp: 1_700_000_000 }
    }

    fn write(seg: &mut [u8], at: usize, seq: u64, generation: u32, m: &RecordMeta<'_>, ev: &[u8]) -> usize {
        let n = encoded_len(m, ev.len());
        encode(&mut seg[at..at + n], seq, generation, m, ev);
        at + n
    }

    #[test]
    fn round_trip() {
        let mut seg = vec![0u8; 4096];
        let m1 = meta(UNIT_START | CRC32, "mysql-bin.000001", "0-1-42");
        let m2 = meta(UNIT_END, "mysql-bin.000001", "");
        let next = write(&mut seg, SEGMENT_HEADER, 7, 3, &m1, b"event one");
        assert_eq!(next % 8, 0);
        let end = write(&mut seg, next, 7, 3, &m2, &[]);
        let Slot::Record(r) = parse(&seg, SEGMENT_HEADER, 7) else { panic!() };
        let timestamp = u32::from_le_bytes(*b"even");
        let want = RecordMeta { end: 256 + 9, timestamp, ..m1 };
        assert_eq!((r.meta, r.event, r.generation, r.next), (want, &b"event one"[..], 3, next));
        // Only a unit's first record carries the file name and GTID.
        let Slot::Record(r) = parse(&seg, next, 7) else { panic!() };
        let want = RecordMeta { file: "", end: 256, timestamp: 0, ..m2 };
        assert_eq!((r.meta, r.event, r.next), (want, &[][..], end));
        assert_eq!(parse(&seg, end, 7), Slot::Empty);
        assert_eq!(parse(&seg, 4090, 7), Slot::Empty, "no room for a header");
    }

    #[test]
    fn appending_writes_the_same_bytes() {
        let m = meta(UNIT_START | UNIT_END, "mysql-bin.000001", "0-1-42");
        let mut a = vec![0u8; encoded_len(&m, 13)];
        encode(&mut a, 5, 2, &m, b"thirteen byte");
        let mut b = vec![9u8; 3];
        encode_into(&mut b, seed(5), 2, &m, b"thirteen byte");
        assert_eq!(&b[3..], &a[..]);
    }

    #[test]
    fn another_segment_s_records_fail_the_check() {
        let mut seg = vec![0u8; 512];
        write(&mut seg, 0, 1, 1, &meta(UNIT_START, "f", ""), b"x");
        assert_eq!(parse(&seg, 0, 2), Slot::Invalid("CRC32C mismatch"));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let mut seg = vec![0u8; 256];
        let end =
            write(&mut seg, 0, 9, 1, &meta(UNIT_START | UNIT_END, "mysql-bin.000002", "0-1-5"), b"abcdef");
        let len = u32::from_le_bytes(seg[0..4].try_into().unwrap()) as usize;
        for bit in 0..len * 8 {
            let mut bad = seg.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!matches!(parse(&bad, 0, 9), Slot::Record(_)), "bit {bit} of {end}");
        }
    }

    #[test]
    fn too_long_names_are_refused() {
        let long = "x".repeat(256);
        assert!(check(&meta(0, &long, "")).is_err());
        assert!(check(&meta(0, "f", &long)).is_err());
        assert!(check(&meta(0, &long[..255], &long[..255])).is_ok());
    }

    #[test]
    fn segment_header() {
        let h = SegmentHeader { seq: 12, size: 1 << 20 };
        let bytes = h.encode();
        assert_eq!(SegmentHeader::parse(&bytes), Some(h));
        let mut bad = bytes;
        bad[9] ^= 1;
        assert_eq!(SegmentHeader::parse(&bad), None);
        assert_eq!(SegmentHeader::parse(&[0u8; 64]), None);
    }
}
