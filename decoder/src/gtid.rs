//! GTID values: MySQL GTIDs and GTID sets, MariaDB GTIDs and GTID positions.
//!
//! No I/O and no binlog bytes here: these are the values the event parsers in
//! [`crate::events::gtid`] produce and the values a user types on the command
//! line (`--include-gtids`, `--after-gtid`), with the text forms the servers
//! print and accept.
//!
//! # MySQL
//!
//! A GTID is `UUID:GNO` (5.6+) or `UUID:TAG:GNO` (8.3+ tagged GTIDs), where
//! the UUID names the server that first committed the transaction, the
//! optional tag names a group of transactions, and GNO counts from 1. A
//! [`GtidSet`] is what `@@gtid_executed` prints:
//!
//! ```text
//! 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7:audit:1-3,
//! 5a8b0c2e-0f3c-11ef-9bd4-0242ac120002:1-42
//! ```
//!
//! one entry per UUID, in UUID order; after the UUID come the untagged
//! intervals, then, for each tag in alphabetic order, `:tag:` and its
//! intervals. Intervals are inclusive (`1-5`), a single number stands for
//! itself, and intervals are kept sorted, disjoint and non-adjacent.
//!
//! # MariaDB
//!
//! A GTID is `DOMAIN-SERVER-SEQ` ([`MariaGtid`]). MariaDB tracks replication
//! progress as one position per replication domain ([`MariaGtidList`]), which
//! is what `@@gtid_slave_pos` / `@@gtid_current_pos` print: `0-1-42,1-2-7`.

use std::collections::btree_map::{self, BTreeMap};
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The largest GNO MySQL hands out (`GNO_END - 1`, where `GNO_END` is
/// `i64::MAX`).
pub const MAX_GNO: u64 = 0x7fff_ffff_ffff_fffe;

/// The longest tag MySQL accepts, in characters.
pub const TAG_MAX_LEN: usize = 32;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a piece of GTID text was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GtidParseErrorKind {
    /// A UUID is not of the form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    BadUuid(&'static str),
    /// A tag is empty, too long, or holds a character other than
    /// `[A-Za-z0-9_]` (or starts with a digit).
    BadTag(&'static str),
    /// A number is missing, not decimal, or does not fit.
    BadNumber(&'static str),
    /// An interval's end is below its start, or a GNO is 0 or above
    /// [`MAX_GNO`].
    BadInterval(&'static str),
    /// Something other than what the grammar allows here.
    Expected(&'static str),
    /// A MariaDB position names the same domain twice.
    DuplicateDomain(u32),
}

impl fmt::Display for GtidParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidParseErrorKind::BadUuid(why) => write!(f, "bad UUID: {why}"),
            GtidParseErrorKind::BadTag(why) => write!(f, "bad tag: {why}"),
            GtidParseErrorKind::BadNumber(why) => write!(f, "bad number: {why}"),
            GtidParseErrorKind::BadInterval(why) => write!(f, "bad interval: {why}"),
            GtidParseErrorKind::Expected(what) => write!(f, "expected {what}"),
            GtidParseErrorKind::DuplicateDomain(d) => {
                write!(f, "domain {d} appears twice (one position per domain)")
            }
        }
    }
}

/// A GTID, GTID set, UUID, tag or MariaDB GTID that could not be parsed.
///
/// Carries the byte position in the input and the text found there (at most
/// 40 bytes of it, so a huge GTID set does not end up in a log line).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what} at byte {pos} (near {near:?}): {kind}")]
pub struct GtidParseError {
    /// What was being parsed ("GTID set", "MariaDB GTID", ...).
    pub what: &'static str,
    /// Byte offset in the input where the problem starts.
    pub pos: usize,
    /// The input from `pos` on, cut at 40 bytes.
    pub near: String,
    /// What is wrong.
    pub kind: GtidParseErrorKind,
}

impl GtidParseError {
    fn new(what: &'static str, input: &str, pos: usize, kind: GtidParseErrorKind) -> Self {
        let rest = input.as_bytes().get(pos..).unwrap_or_default();
        let cut = &rest[..rest.len().min(40)];
        GtidParseError { what, pos, near: String::from_utf8_lossy(cut).into_owned(), kind }
    }
}

/// A small cursor over text, for the GTID grammars.
struct Text<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Text<'a> {
    fn new(input: &'a str, what: &'static str) -> Self {
        Text { input, bytes: input.as_bytes(), pos: 0, what }
    }

    fn err_at(&self, pos: usize, kind: GtidParseErrorKind) -> GtidParseError {
        GtidParseError::new(self.what, self.input, pos, kind)
    }

    fn err(&self, kind: GtidParseErrorKind) -> GtidParseError {
        self.err_at(self.pos, kind)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Reads a run of decimal digits as a u64.
    fn number(&mut self) -> Result<u64, GtidParseError> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| self.err_at(start, GtidParseErrorKind::BadNumber("too large")))?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err(GtidParseErrorKind::BadNumber("expected a decimal number")));
        }
        Ok(value)
    }

    /// Reads a GNO: a number in 1..=MAX_GNO.
    fn gno(&mut self) -> Result<u64, GtidParseError> {
        let start = self.pos;
        let n = self.number()?;
        if n == 0 {
            return Err(
                self.err_at(start, GtidParseErrorKind::BadInterval("GNO 0 is not valid (GNOs start at 1)"))
            );
        }
        if n > MAX_GNO {
            return Err(self.err_at(start, GtidParseErrorKind::BadInterval("GNO above 9223372036854775806")));
        }
        Ok(n)
    }

    /// Reads a dashed UUID (36 characters).
    fn uuid(&mut self) -> Result<Uuid, GtidParseError> {
        let start = self.pos;
        let rest = self.bytes.get(start..).unwrap_or_default();
        match parse_uuid_bytes(rest) {
            Ok(uuid) => {
                self.pos += UUID_TEXT_LEN;
                Ok(uuid)
            }
            Err((at, why)) => Err(self.err_at(start + at, GtidParseErrorKind::BadUuid(why))),
        }
    }

    /// Reads a tag word (letters, digits, underscore) and validates it.
    fn tag(&mut self) -> Result<Tag, GtidParseError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            self.pos += 1;
        }
        let word = self.bytes.get(start..self.pos).unwrap_or_default();
        Tag::from_bytes(word).map_err(|(at, why)| self.err_at(start + at, GtidParseErrorKind::BadTag(why)))
    }
}

// ---------------------------------------------------------------------------
// UUID
// ---------------------------------------------------------------------------

const UUID_TEXT_LEN: usize = 36;

/// A server UUID (the source id of MySQL GTIDs), 16 bytes in wire order.
///
/// Prints as lowercase `8-4-4-4-12` hex, as MySQL does. Parses the same
/// dashed form in either case; other spellings (no dashes, braces) are
/// rejected with an error that says which form is expected.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID (used by anonymous GTID events).
    pub const NIL: Uuid = Uuid([0; 16]);

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// True for the all-zero UUID.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a dashed UUID at the start of `s`; on error gives the offset of
/// the offending byte and the reason.
fn parse_uuid_bytes(s: &[u8]) -> Result<Uuid, (usize, &'static str)> {
    const WHY: &str = "expected 32 hex digits as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    let mut out = [0u8; 16];
    let mut nibbles = 0usize;
    for i in 0..UUID_TEXT_LEN {
        let b = *s.get(i).ok_or((i, WHY))?;
        if matches!(i, 8 | 13 | 18 | 23) {
            if b != b'-' {
                return Err((i, WHY));
            }
            continue;
        }
        let v = hex_val(b).ok_or((i, WHY))?;
        let slot = out.get_mut(nibbles / 2).ok_or((i, WHY))?;
        *slot = (*slot << 4) | v;
        nibbles += 1;
    }
    Ok(Uuid(out))
}

impl FromStr for Uuid {
    type Err = GtidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = Text::new(s, "UUID");
        let uuid = t.uuid()?;
        if !t.at_end() {
            return Err(t.err(GtidParseErrorKind::Expected("end of UUID")));
        }
        Ok(uuid)
    }
}

// ---------------------------------------------------------------------------
// Tag
// ---------------------------------------------------------------------------

/// A GTID tag (MySQL 8.3+): 1 to 32 characters of `[a-z0-9_]`, not starting
/// with a digit. Tags are case-insensitive; MySQL stores and prints them in
/// lowercase, and so does this type.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// Validates and lowercases a tag. On error returns the offset of the
    /// offending byte and why.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Tag, (usize, &'static str)> {
        if bytes.is_empty() {
            return Err((0, "a tag cannot be empty"));
        }
        if bytes.len() > TAG_MAX_LEN {
            return Err((TAG_MAX_LEN, "a tag has at most 32 characters"));
        }
        for (i, &b) in bytes.iter().enumerate() {
            let ok = b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit());
            if !ok {
                return Err((
                    i,
                    if b.is_ascii_digit() {
                        "a tag cannot start with a digit"
                    } else {
                        "a tag holds only letters, digits and '_'"
                    },
                ));
            }
        }
        // Every byte is ASCII here, so this never loses anything.
        let s: String = bytes.iter().map(|b| char::from(b.to_ascii_lowercase())).collect();
        Ok(Tag(s))
    }

    /// The tag, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

impl FromStr for Tag {
    type Err = GtidParseError;

    /// Accepts the tag in any case; surrounding whitespace is not part of it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tag::from_bytes(s.as_bytes())
            .map_err(|(at, why)| GtidParseError::new("GTID tag", s, at, GtidParseErrorKind::BadTag(why)))
    }
}

// ---------------------------------------------------------------------------
// Gtid
// ---------------------------------------------------------------------------

/// One MySQL GTID: `uuid:gno` or `uuid:tag:gno`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gtid {
    /// The originating server's UUID.
    pub uuid: Uuid,
    /// The tag, for tagged GTIDs (MySQL 8.3+).
    pub tag: Option<Tag>,
    /// The transaction number, 1..=[`MAX_GNO`].
    pub gno: u64,
}

impl Gtid {
    /// An untagged GTID.
    pub fn new(uuid: Uuid, gno: u64) -> Self {
        Gtid { uuid, tag: None, gno }
    }

    /// A tagged GTID.
    pub fn tagged(uuid: Uuid, tag: Tag, gno: u64) -> Self {
        Gtid { uuid, tag: Some(tag), gno }
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tag {
            Some(tag) => write!(f, "{}:{}:{}", self.uuid, tag, self.gno),
            None => write!(f, "{}:{}", self.uuid, self.gno),
        }
    }
}

impl FromStr for Gtid {
    type Err = GtidParseError;

    /// Parses `uuid:gno` or `uuid:tag:gno`, with optional whitespace around
    /// each token (as `SET gtid_next` accepts).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = Text::new(s, "GTID");
        t.skip_ws();
        let uuid = t.uuid()?;
        t.skip_ws();
        if !t.eat(b':') {
            return Err(t.err(GtidParseErrorKind::Expected("':' after the UUID")));
        }
        t.skip_ws();
        let tag = if t.peek().is_some_and(|b| b.is_ascii_digit()) {
            None
        } else {
            let tag = t.tag()?;
            t.skip_ws();
            if !t.eat(b':') {
                return Err(t.err(GtidParseErrorKind::Expected("':' after the tag")));
            }
            t.skip_ws();
            Some(tag)
        };
        let gno = t.gno()?;
        t.skip_ws();
        if !t.at_end() {
            return Err(t.err(GtidParseErrorKind::Expected("end of GTID")));
        }
        Ok(Gtid { uuid, tag, gno })
    }
}

// ---------------------------------------------------------------------------
// GtidSet
// ---------------------------------------------------------------------------

/// An inclusive range of GNOs, `start..=end`, with `1 <= start <= end <=
/// MAX_GNO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GnoInterval {
    start: u64,
    end: u64,
}

impl GnoInterval {
    /// `start..=end`, or `None` unless `1 <= start <= end <= MAX_GNO`.
    pub fn new(start: u64, end: u64) -> Option<Self> {
        if start >= 1 && start <= end && end <= MAX_GNO {
            Some(GnoInterval { start, end })
        } else {
            None
        }
    }

    /// First GNO (inclusive).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Last GNO (inclusive).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// True when `gno` is in the interval.
    pub fn contains(&self, gno: u64) -> bool {
        self.start <= gno && gno <= self.end
    }
}

impl fmt::Display for GnoInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A transaction source id: UUID plus optional tag. Orders by UUID, then
/// untagged before tagged, then by tag: the order MySQL prints sets in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tsid {
    /// The UUID.
    pub uuid: Uuid,
    /// The tag, if any.
    pub tag: Option<Tag>,
}

/// A MySQL GTID set: for each (UUID, tag), sorted, disjoint, non-adjacent
/// inclusive GNO intervals.
///
/// `Display` prints the compact one-line form `uuid:1-5:7:tag:1-3,uuid2:1-3`;
/// the alternate form (`{:#}`) puts a newline after each comma, exactly as
/// the server prints `@@gtid_executed`. `FromStr` accepts what MySQL accepts:
/// whitespace around every token, single numbers and ranges in any order
/// (overlaps are merged), tags, redundant commas, and the empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GtidSet {
    map: BTreeMap<Tsid, Vec<GnoInterval>>,
}

/// Adds `new` to sorted, disjoint, non-adjacent `ivs`, merging as needed.
fn add_to_intervals(ivs: &mut Vec<GnoInterval>, new: GnoInterval) {
    // First interval that overlaps or touches `new` (its end + 1 reaches
    // new.start); ends are increasing, so this is a partition point.
    let first = ivs.partition_point(|iv| iv.end.saturating_add(1) < new.start);
    // One past the last interval that overlaps or touches `new`.
    let past = ivs.partition_point(|iv| iv.start <= new.end.saturating_add(1));
    if first >= past {
        ivs.insert(first, new);
        return;
    }
    let start = ivs.get(first).map_or(new.start, |iv| iv.start.min(new.start));
    let end = past.checked_sub(1).and_then(|l| ivs.get(l)).map_or(new.end, |iv| iv.end.max(new.end));
    ivs.drain(first + 1..past);
    if let Some(slot) = ivs.get_mut(first) {
        *slot = GnoInterval { start, end };
    }
}

impl GtidSet {
    /// The empty set.
    pub fn new() -> Self {
        GtidSet::default()
    }

    /// True when the set holds no GTID.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds one GTID. Returns false when it was already there, or when its
    /// GNO is outside 1..=[`MAX_GNO`] (such a GTID cannot be in any set).
    pub fn insert(&mut self, gtid: &Gtid) -> bool {
        let Some(iv) = GnoInterval::new(gtid.gno, gtid.gno) else {
            return false;
        };
        if self.contains(gtid) {
            return false;
        }
        self.add_interval(gtid.uuid, gtid.tag.clone(), iv);
        true
    }

    /// Adds an interval of GNOs for (uuid, tag), merging with what is there.
    pub fn add_interval(&mut self, uuid: Uuid, tag: Option<Tag>, interval: GnoInterval) {
        add_to_intervals(self.map.entry(Tsid { uuid, tag }).or_default(), interval);
    }

    /// True when the set holds `gtid`.
    pub fn contains(&self, gtid: &Gtid) -> bool {
        let key = Tsid { uuid: gtid.uuid, tag: gtid.tag.clone() };
        let Some(ivs) = self.map.get(&key) else {
            return false;
        };
        let i = ivs.partition_point(|iv| iv.end < gtid.gno);
        ivs.get(i).is_some_and(|iv| iv.start <= gtid.gno)
    }

    /// The intervals of one (uuid, tag), empty when it has none.
    pub fn intervals(&self, uuid: &Uuid, tag: Option<&Tag>) -> &[GnoInterval] {
        let key = Tsid { uuid: *uuid, tag: tag.cloned() };
        self.map.get(&key).map_or(&[], Vec::as_slice)
    }

    /// Adds every GTID of `other` to this set.
    pub fn union_with(&mut self, other: &GtidSet) {
        for (tsid, ivs) in &other.map {
            let mine = self.map.entry(tsid.clone()).or_default();
            for iv in ivs {
                add_to_intervals(mine, *iv);
            }
        }
    }

    /// The union of two sets.
    pub fn union(&self, other: &GtidSet) -> GtidSet {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Each (uuid, tag) with its intervals, in the order MySQL prints them.
    pub fn iter(&self) -> Iter<'_> {
        Iter { inner: self.map.iter() }
    }
}

/// Iterator over a [`GtidSet`]: each [`Tsid`] with its intervals.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    inner: btree_map::Iter<'a, Tsid, Vec<GnoInterval>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Tsid, &'a [GnoInterval]);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k, v.as_slice()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<'a> IntoIterator for &'a GtidSet {
    type Item = (&'a Tsid, &'a [GnoInterval]);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sep = if f.alternate() { ",\n" } else { "," };
        let mut last_uuid: Option<Uuid> = None;
        for (tsid, ivs) in &self.map {
            if last_uuid != Some(tsid.uuid) {
                if last_uuid.is_some() {
                    f.write_str(sep)?;
                }
                write!(f, "{}", tsid.uuid)?;
                last_uuid = Some(tsid.uuid);
            }
            if let Some(tag) = &tsid.tag {
                write!(f, ":{tag}")?;
            }
            for iv in ivs {
                write!(f, ":{iv}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for GtidSet {
    type Err = GtidParseError;

    /// Grammar (whitespace allowed around every token, empty entries
    /// between commas ignored):
    ///
    /// ```text
    /// set      := entry? (',' entry?)*
    /// entry    := UUID (':' (TAG | interval))*
    /// interval := GNO ('-' GNO)?
    /// ```
    ///
    /// Intervals after a tag belong to that tag; intervals before any tag
    /// are untagged.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = Text::new(s, "GTID set");
        let mut set = GtidSet::new();
        loop {
            t.skip_ws();
            if t.at_end() {
                break;
            }
            if t.eat(b',') {
                continue;
            }
            let uuid = t.uuid()?;
            let mut tag: Option<Tag> = None;
            loop {
                t.skip_ws();
                if !t.eat(b':') {
                    break;
                }
                t.skip_ws();
                match t.peek() {
                    Some(b) if b.is_ascii_digit() => {
                        let at = t.pos;
                        let start = t.gno()?;
                        t.skip_ws();
                        let end = if t.eat(b'-') {
                            t.skip_ws();
                            t.gno()?
                        } else {
                            start
                        };
                        let iv = GnoInterval::new(start, end).ok_or_else(|| {
                            t.err_at(at, GtidParseErrorKind::BadInterval("the end is below the start"))
                        })?;
                        set.add_interval(uuid, tag.clone(), iv);
                    }
                    Some(b) if b.is_ascii_alphabetic() || b == b'_' => tag = Some(t.tag()?),
                    _ => return Err(t.err(GtidParseErrorKind::Expected("an interval or a tag after ':'"))),
                }
            }
            t.skip_ws();
            if !t.at_end() && !t.eat(b',') {
                return Err(t.err(GtidParseErrorKind::Expected("':' or ',' or the end of the set")));
            }
        }
        Ok(set)
    }
}

// ---------------------------------------------------------------------------
// MariaDB
// ---------------------------------------------------------------------------

/// One MariaDB GTID: `domain_id-server_id-seq_no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MariaGtid {
    /// Replication domain.
    pub domain_id: u32,
    /// Server that first wrote the transaction.
    pub server_id: u32,
    /// Sequence number within the domain.
    pub seq_no: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain_id, self.server_id, self.seq_no)
    }
}

fn parse_maria_gtid(t: &mut Text<'_>) -> Result<MariaGtid, GtidParseError> {
    let at = t.pos;
    let domain = t.number()?;
    let domain_id = u32::try_from(domain)
        .map_err(|_| t.err_at(at, GtidParseErrorKind::BadNumber("domain_id does not fit in 32 bits")))?;
    if !t.eat(b'-') {
        return Err(t.err(GtidParseErrorKind::Expected("'-' after domain_id")));
    }
    let at = t.pos;
    let server = t.number()?;
    let server_id = u32::try_from(server)
        .map_err(|_| t.err_at(at, GtidParseErrorKind::BadNumber("server_id does not fit in 32 bits")))?;
    if !t.eat(b'-') {
        return Err(t.err(GtidParseErrorKind::Expected("'-' after server_id")));
    }
    let seq_no = t.number()?;
    Ok(MariaGtid { domain_id, server_id, seq_no })
}

impl FromStr for MariaGtid {
    type Err = GtidParseError;

    /// Parses `D-S-N` (decimal, no signs); whitespace around it is allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = Text::new(s, "MariaDB GTID");
        t.skip_ws();
        let g = parse_maria_gtid(&mut t)?;
        t.skip_ws();
        if !t.at_end() {
            return Err(t.err(GtidParseErrorKind::Expected("end of GTID")));
        }
        Ok(g)
    }
}

/// A MariaDB replication position: the last GTID of each domain, as
/// `@@gtid_slave_pos` holds it (`0-1-42,1-2-7`).
///
/// [`contains`](Self::contains) is the rule MariaDB applies in strict,
/// in-order replication: within a domain, sequence numbers only grow, so a
/// GTID was already applied exactly when its `seq_no` is at or below the
/// position's `seq_no` for that domain. The server id does not take part:
/// after a failover the same domain continues under another server id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MariaGtidList {
    by_domain: BTreeMap<u32, MariaGtid>,
}

impl MariaGtidList {
    /// The empty position (nothing applied in any domain).
    pub fn new() -> Self {
        MariaGtidList::default()
    }

    /// True when no domain has a position.
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// Number of domains.
    pub fn len(&self) -> usize {
        self.by_domain.len()
    }

    /// Sets the position of `gtid`'s domain to `gtid`; returns the old one.
    pub fn set(&mut self, gtid: MariaGtid) -> Option<MariaGtid> {
        self.by_domain.insert(gtid.domain_id, gtid)
    }

    /// The position of one domain.
    pub fn get(&self, domain_id: u32) -> Option<&MariaGtid> {
        self.by_domain.get(&domain_id)
    }

    /// True when `gtid` is at or before this position in its domain, i.e.
    /// a server at this position has already applied it. A domain the
    /// position does not name has applied nothing.
    pub fn contains(&self, gtid: &MariaGtid) -> bool {
        self.by_domain.get(&gtid.domain_id).is_some_and(|pos| gtid.seq_no <= pos.seq_no)
    }

    /// The positions, by domain.
    pub fn iter(&self) -> impl Iterator<Item = &MariaGtid> + '_ {
        self.by_domain.values()
    }
}

impl fmt::Display for MariaGtidList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.by_domain.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

impl FromStr for MariaGtidList {
    type Err = GtidParseError;

    /// Parses `D-S-N,D-S-N,...`; whitespace around entries is allowed and
    /// the empty string is the empty position. Two GTIDs of one domain are
    /// rejected, as MariaDB rejects them for `gtid_slave_pos`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = Text::new(s, "MariaDB GTID list");
        let mut list = MariaGtidList::new();
        t.skip_ws();
        if t.at_end() {
            return Ok(list);
        }
        loop {
            t.skip_ws();
            let at = t.pos;
            let g = parse_maria_gtid(&mut t)?;
            if list.set(g).is_some() {
                return Err(t.err_at(at, GtidParseErrorKind::DuplicateDomain(g.domain_id)));
            }
            t.skip_ws();
            if t.at_end() {
                break;
            }
            if !t.eat(b',') {
                return Err(t.err(GtidParseErrorKind::Expected("',' or the end of the list")));
            }
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "5a8b0c2e-0f3c-11ef-9bd4-0242ac120002";

    fn uuid(s: &str) -> Uuid {
        s.parse().unwrap()
    }

    fn set(s: &str) -> GtidSet {
        s.parse().unwrap()
    }

    fn iv(a: u64, b: u64) -> GnoInterval {
        GnoInterval::new(a, b).unwrap()
    }

    #[test]
    fn uuid_round_trip_and_case() {
        let u = uuid("3E11FA47-71CA-11E1-9E33-C80AA9429562");
        assert_eq!(u.to_string(), U1);
        assert_eq!(u.0[0], 0x3e);
        assert_eq!(u.0[15], 0x62);
        assert_eq!(uuid(U1), u);
        assert!(Uuid::NIL.is_nil());
        assert_eq!(Uuid::NIL.to_string(), "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn uuid_rejects_other_forms() {
        for (bad, pos) in [
            ("3e11fa4771ca11e19e33c80aa9429562", 8),       // no dashes
            ("{3e11fa47-71ca-11e1-9e33-c80aa9429562}", 0), // braces
            ("3e11fa47-71ca-11e1-9e33-c80aa942956", 35),   // short
            ("3e11fa47-71ca-11e1-9e33-c80aa94295620", 36), // long
            ("3e11fa47-71ca-11e1-9e33-c80aa942956g", 35),  // not hex
            ("3e11fa47_71ca-11e1-9e33-c80aa9429562", 8),   // wrong separator
        ] {
            let err = bad.parse::<Uuid>().unwrap_err();
            assert_eq!(err.pos, pos, "{bad}: {err}");
            assert_eq!(err.what, "UUID");
        }
    }

    #[test]
    fn tag_rules() {
        assert_eq!("Audit_2".parse::<Tag>().unwrap().as_str(), "audit_2");
        assert_eq!("_x".parse::<Tag>().unwrap().as_str(), "_x");
        let max = "a".repeat(32);
        assert_eq!(max.parse::<Tag>().unwrap().as_str(), max);
        for bad in ["", "1abc", "a-b", "a b", &"a".repeat(33), "é"] {
            let err = bad.parse::<Tag>().unwrap_err();
            assert!(matches!(err.kind, GtidParseErrorKind::BadTag(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn gtid_round_trip() {
        let g: Gtid = format!("{U1}:23").parse().unwrap();
        assert_eq!(g, Gtid::new(uuid(U1), 23));
        assert_eq!(g.to_string(), format!("{U1}:23"));

        let g: Gtid = format!(" {} : MyTag : 7 ", U1.to_uppercase()).parse().unwrap();
        assert_eq!(g, Gtid::tagged(uuid(U1), "mytag".parse().unwrap(), 7));
        assert_eq!(g.to_string(), format!("{U1}:mytag:7"));

        let max = format!("{U1}:{MAX_GNO}");
        assert_eq!(max.parse::<Gtid>().unwrap().gno, MAX_GNO);
    }

    #[test]
    fn gtid_bad_input() {
        let cases = [
            (U1.to_string(), 36),
            (format!("{U1}:0"), 37),
            (format!("{U1}:9223372036854775807"), 37),
            (format!("{U1}:99999999999999999999"), 37),
            (format!("{U1}:tag"), 40),
            (format!("{U1}:5x"), 38),
            (format!("{U1}:1-2"), 38),
            (format!("{U1}:tag:"), 41),
        ];
        for (s, pos) in cases {
            let err = s.parse::<Gtid>().unwrap_err();
            assert_eq!(err.pos, pos, "{s}: {err}");
        }
    }

    #[test]
    fn set_display_like_mysql() {
        let s = set(&format!("{U2}:1-3, {U1}:7:1-5"));
        assert_eq!(s.to_string(), format!("{U1}:1-5:7,{U2}:1-3"));
        assert_eq!(format!("{s:#}"), format!("{U1}:1-5:7,\n{U2}:1-3"));
        assert_eq!(GtidSet::new().to_string(), "");
    }

    #[test]
    fn set_tags_print_after_untagged_in_order() {
        let s = set(&format!("{U1}:zz:4:Audit:1-3:9, {U1}:1-2,{U2}:t:5"));
        assert_eq!(s.to_string(), format!("{U1}:1-2:audit:1-3:9:zz:4,{U2}:t:5"));
        // Round trip.
        assert_eq!(set(&s.to_string()), s);
        assert_eq!(set(&format!("{s:#}")), s);
        let tag: Tag = "audit".parse().unwrap();
        assert!(s.contains(&Gtid::tagged(uuid(U1), tag.clone(), 9)));
        assert!(!s.contains(&Gtid::tagged(uuid(U1), tag.clone(), 4)));
        assert!(!s.contains(&Gtid::new(uuid(U1), 3)));
        assert_eq!(s.intervals(&uuid(U1), Some(&tag)), &[iv(1, 3), iv(9, 9)]);
    }

    #[test]
    fn set_parse_whitespace_newlines_and_redundant_commas() {
        let text = format!(",\n {U1} : 1 - 5 : 7 ,\n\n,{U2}:1-3,\t");
        let s = set(&text);
        assert_eq!(s.to_string(), format!("{U1}:1-5:7,{U2}:1-3"));
        assert!(set("").is_empty());
        assert!(set(" , ,\n").is_empty());
        // A UUID with no intervals adds nothing (MySQL accepts it).
        assert!(set(U1).is_empty());
    }

    #[test]
    fn set_merges_overlapping_and_adjacent() {
        let s = set(&format!("{U1}:10-12:1-3:4:6-8:5:20:13"));
        assert_eq!(s.to_string(), format!("{U1}:1-8:10-13:20"));
        let s = set(&format!("{U1}:1-3:2-9:9-10,{U1}:11"));
        assert_eq!(s.to_string(), format!("{U1}:1-11"));
        let s = set(&format!("{U1}:5:3:1"));
        assert_eq!(s.intervals(&uuid(U1), None), &[iv(1, 1), iv(3, 3), iv(5, 5)]);
    }

    #[test]
    fn set_insert_and_contains() {
        let mut s = GtidSet::new();
        let u = uuid(U1);
        assert!(s.insert(&Gtid::new(u, 2)));
        assert!(!s.insert(&Gtid::new(u, 2)));
        assert!(s.insert(&Gtid::new(u, 4)));
        assert_eq!(s.to_string(), format!("{U1}:2:4"));
        assert!(s.insert(&Gtid::new(u, 3)));
        assert_eq!(s.to_string(), format!("{U1}:2-4"));
        assert!(s.insert(&Gtid::new(u, 1)));
        assert!(s.insert(&Gtid::new(u, 5)));
        assert_eq!(s.to_string(), format!("{U1}:1-5"));
        assert!(!s.insert(&Gtid::new(u, 0)));
        assert!(!s.insert(&Gtid::new(u, MAX_GNO + 1)));
        assert!(s.contains(&Gtid::new(u, 1)));
        assert!(s.contains(&Gtid::new(u, 5)));
        assert!(!s.contains(&Gtid::new(u, 6)));
        assert!(!s.contains(&Gtid::new(u, 0)));
        assert!(!s.contains(&Gtid::new(uuid(U2), 1)));
        assert!(!s.is_empty());
        s.add_interval(u, None, iv(MAX_GNO - 1, MAX_GNO));
        assert!(s.contains(&Gtid::new(u, MAX_GNO)));
        assert_eq!(s.iter().count(), 1);
    }

    #[test]
    fn set_union() {
        let a = set(&format!("{U1}:1-3:10,{U2}:t:1"));
        let b = set(&format!("{U1}:4-9:12,{U2}:2"));
        let u = a.union(&b);
        assert_eq!(u.to_string(), format!("{U1}:1-10:12,{U2}:2:t:1"));
        assert_eq!(b.union(&a), u);
        assert_eq!(u.union(&GtidSet::new()), u);
        let mut c = a.clone();
        c.union_with(&a);
        assert_eq!(c, a);
        let entries: Vec<String> =
            u.iter().map(|(tsid, ivs)| format!("{:?}/{}", tsid.tag, ivs.len())).collect();
        assert_eq!(entries, ["None/2", "None/1", "Some(Tag(t))/1"]);
    }

    #[test]
    fn set_bad_input_names_position() {
        let cases = [
            (format!("{U1}:5-3"), 37, "interval"),
            (format!("{U1}:0-3"), 37, "interval"),
            (format!("{U1}:1-"), 39, "number"),
            (format!("{U1}:"), 37, "expected"),
            (format!("{U1}::1"), 37, "expected"),
            (format!("{U1}:1;{U2}:1"), 38, "expected"),
            (format!("{U1}:1,xyz"), 39, "uuid"),
            (format!("{U1}:1-99999999999999999999"), 39, "number"),
            (format!("{U1}:9tag:1"), 38, "expected"),
            (format!("{U1}:{}:1", "t".repeat(33)), 69, "tag"),
            (format!("+{U1}:1"), 0, "uuid"),
        ];
        for (s, pos, kind) in cases {
            let err = s.parse::<GtidSet>().unwrap_err();
            assert_eq!(err.pos, pos, "{s}: {err}");
            let got = match err.kind {
                GtidParseErrorKind::BadUuid(_) => "uuid",
                GtidParseErrorKind::BadTag(_) => "tag",
                GtidParseErrorKind::BadNumber(_) => "number",
                GtidParseErrorKind::BadInterval(_) => "interval",
                GtidParseErrorKind::Expected(_) => "expected",
                _ => "other",
            };
            assert_eq!(got, kind, "{s}: {err}");
            assert!(err.to_string().contains("GTID set"), "{err}");
        }
    }

    #[test]
    fn error_carries_a_short_excerpt() {
        let long = format!("{U1}:1,{}", "x".repeat(500));
        let err = long.parse::<GtidSet>().unwrap_err();
        assert_eq!(err.pos, 39);
        assert_eq!(err.near.len(), 40);
        assert!(err.to_string().starts_with("invalid GTID set at byte 39"));
    }

    #[test]
    fn maria_gtid_round_trip() {
        let g: MariaGtid = "0-1-42".parse().unwrap();
        assert_eq!(g, MariaGtid { domain_id: 0, server_id: 1, seq_no: 42 });
        assert_eq!(g.to_string(), "0-1-42");
        let big: MariaGtid = "4294967295-4294967295-18446744073709551615".parse().unwrap();
        assert_eq!(big.to_string(), "4294967295-4294967295-18446744073709551615");
        for (bad, pos) in [
            ("0-1", 3),
            ("0-1-", 4),
            ("-0-1-2", 0),
            ("4294967296-1-1", 0),
            ("0-4294967296-1", 2),
            ("0-1-18446744073709551616", 4),
            ("0-1-2-3", 5),
            ("0 - 1 - 2", 1),
            ("a-1-2", 0),
        ] {
            let err = bad.parse::<MariaGtid>().unwrap_err();
            assert_eq!(err.pos, pos, "{bad}: {err}");
        }
    }

    #[test]
    fn maria_list_round_trip_and_contains() {
        let l: MariaGtidList = "1-2-7, 0-1-42".parse().unwrap();
        assert_eq!(l.to_string(), "0-1-42,1-2-7");
        assert_eq!(l.len(), 2);
        assert_eq!(l.to_string().parse::<MariaGtidList>().unwrap(), l);
        assert!("".parse::<MariaGtidList>().unwrap().is_empty());
        assert!(" \n".parse::<MariaGtidList>().unwrap().is_empty());

        // Same domain, at or before the position: applied, whatever the server id.
        assert!(l.contains(&"0-1-42".parse().unwrap()));
        assert!(l.contains(&"0-9-41".parse().unwrap()));
        assert!(l.contains(&"1-2-1".parse().unwrap()));
        // After the position, or in a domain the position does not name.
        assert!(!l.contains(&"0-1-43".parse().unwrap()));
        assert!(!l.contains(&"2-1-1".parse().unwrap()));
        assert_eq!(l.get(1).map(|g| g.seq_no), Some(7));

        let mut m = MariaGtidList::new();
        assert_eq!(m.set("0-1-5".parse().unwrap()), None);
        assert_eq!(m.set("0-2-6".parse().unwrap()).map(|g| g.seq_no), Some(5));
        assert_eq!(m.to_string(), "0-2-6");
        assert_eq!(m.iter().count(), 1);
    }

    #[test]
    fn maria_list_bad_input() {
        for (bad, pos) in [("0-1-42,0-2-43", 7), ("0-1-42,", 7), ("0-1-42;1-1-1", 6), (",0-1-1", 0)] {
            let err = bad.parse::<MariaGtidList>().unwrap_err();
            assert_eq!(err.pos, pos, "{bad}: {err}");
        }
        let err = "0-1-42,0-2-43".parse::<MariaGtidList>().unwrap_err();
        assert_eq!(err.kind, GtidParseErrorKind::DuplicateDomain(0));
    }
}
