//! The sparse index of a segment: where units start, sampled every
//! [`SAMPLE_BYTES`], and the range of GTIDs each GTID source has in it.
//! Lookups go to the right segment and the nearest sample before walking
//! records, so they never scan the whole ring.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{RecordMeta, RESENT, UNIT_END, UNIT_START};

/// Bytes of records between two samples (at least).
pub const SAMPLE_BYTES: u64 = 64 << 10;

/// A unit start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitStart {
    /// Offset of its first record in the segment.
    pub offset: u64,
    /// Binlog file.
    pub file: String,
    /// Position of its first event.
    pub start: u64,
    /// Its GTID, or "".
    pub gtid: String,
    /// Its first event's timestamp.
    pub timestamp: u32,
}

/// A unit end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitEnd {
    /// Binlog file.
    pub file: String,
    /// The position just past its last event.
    pub end: u64,
    /// Its GTID, or "".
    pub gtid: String,
    /// Its last event's timestamp.
    pub timestamp: u32,
    /// Offset in the segment just past its last record.
    pub next: u64,
}

/// The index of one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentIndex {
    /// The segment's sequence number.
    pub seq: u64,
    /// Unit starts, in order, at least [`SAMPLE_BYTES`] apart (the first
    /// unit start of the segment is always there).
    pub samples: Vec<UnitStart>,
    /// The end of the last complete unit.
    pub last: Option<UnitEnd>,
    /// Per GTID source (a MariaDB domain, a MySQL uuid or uuid:tag): the
    /// lowest and highest number of the units that start here.
    pub gtids: BTreeMap<String, (u64, u64)>,
}

impl SegmentIndex {
    /// An empty index for segment `seq`.
    pub fn new(seq: u64) -> Self {
        SegmentIndex { seq, ..Default::default() }
    }

    /// Takes in the next record of the segment.
    pub fn observe(&mut self, m: &RecordMeta<'_>, offset: usize, next: usize) {
        if m.flags & UNIT_START != 0 && m.flags & RESENT == 0 {
            let due = match self.samples.last() {
                None => true,
                Some(s) => offset as u64 >= s.offset + SAMPLE_BYTES,
            };
            if due {
                self.samples.push(UnitStart {
                    offset: offset as u64,
                    file: m.file.to_string(),
                    start: m.start,
                    gtid: m.gtid.to_string(),
                    timestamp: m.timestamp,
                });
            }
            if let Some((source, number)) = gtid_parts(m.gtid) {
                match self.gtids.get_mut(source) {
                    Some(range) => *range = (range.0.min(number), range.1.max(number)),
                    None => {
                        self.gtids.insert(source.to_string(), (number, number));
                    }
                }
            }
        }
        if m.flags & UNIT_END != 0 && m.flags & RESENT == 0 && !m.file.is_empty() {
            // Kept in place: no allocation per unit once the strings are long enough.
            let last = self.last.get_or_insert_with(Default::default);
            last.file.clear();
            last.file.push_str(m.file);
            last.gtid.clear();
            last.gtid.push_str(m.gtid);
            (last.end, last.timestamp, last.next) = (m.end, m.timestamp, next as u64);
        }
    }

    /// The first unit that starts in this segment.
    pub fn first(&self) -> Option<&UnitStart> {
        self.samples.first()
    }

    /// The last sample at or before the binlog position, if any.
    pub fn sample_before_position(&self, file: &str, pos: u64) -> Option<&UnitStart> {
        let n =
            self.samples.partition_point(|s| cmp_coords(&s.file, s.start, file, pos) != Ordering::Greater);
        n.checked_sub(1).map(|i| &self.samples[i])
    }

    /// Whether a unit with this GTID may start in this segment.
    pub fn may_hold_gtid(&self, gtid: &str) -> bool {
        gtid_parts(gtid)
            .and_then(|(source, n)| self.gtids.get(source).map(|&(lo, hi)| lo <= n && n <= hi))
            .unwrap_or(false)
    }

    /// The last sample of the same GTID source with a lower or equal number.
    pub fn sample_before_gtid(&self, gtid: &str) -> Option<&UnitStart> {
        let (source, n) = gtid_parts(gtid)?;
        self.samples
            .iter()
            .rev()
            .find(|s| gtid_parts(&s.gtid).is_some_and(|(src, m)| src == source && m <= n))
    }

    /// The file the index of segment `seq` is kept in.
    pub fn path(dir: &Path, seq: u64) -> PathBuf {
        dir.join(format!("seg-{seq:012}.idx"))
    }

    /// Loads a saved index; `None` when missing or not this segment's.
    pub fn load(dir: &Path, seq: u64) -> Option<SegmentIndex> {
        let bytes = std::fs::read(Self::path(dir, seq)).ok()?;
        serde_json::from_slice::<SegmentIndex>(&bytes).ok().filter(|i| i.seq == seq)
    }

    /// Saves the index of a sealed segment (an optimisation: readers
    /// rebuild a missing one by walking the segment).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("seg-{:012}.idx.tmp", self.seq));
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, Self::path(dir, self.seq))
    }
}

/// Splits a GTID into its source and number: MariaDB `D-S-N` gives ("D", N)
/// (the server id does not order anything), MySQL `uuid[:tag]:N` gives
/// ("uuid[:tag]", N).
pub fn gtid_parts(gtid: &str) -> Option<(&str, u64)> {
    if let Some((source, n)) = gtid.rsplit_once(':') {
        return Some((source, n.parse().ok()?));
    }
    let (domain, rest) = gtid.split_once('-')?;
    let (_server, n) = rest.split_once('-')?;
    Some((domain, n.parse().ok()?))
}

/// Orders binlog coordinates: files by name, with the numeric extension
/// compared as a number (mysql-bin.999999 < mysql-bin.1000000).
pub fn cmp_coords(file_a: &str, pos_a: u64, file_b: &str, pos_b: u64) -> Ordering {
    cmp_files(file_a, file_b).then(pos_a.cmp(&pos_b))
}

fn cmp_files(a: &str, b: &str) -> Ordering {
    let split = |f: &str| match f.rsplit_once('.') {
        Some((base, ext)) if ext.bytes().all(|c| c.is_ascii_digit()) => {
            (base.to_string(), ext.parse::<u64>().ok())
        }
        _ => (f.to_string(), None),
    };
    let ((base_a, n_a), (base_b, n_b)) = (split(a), split(b));
    match (n_a, n_b) {
        (Some(x), Some(y)) if base_a == base_b => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_sources() {
        assert_eq!(gtid_parts("0-1-42"), Some(("0", 42)));
        assert_eq!(
            gtid_parts("3e11fa47-71ca-11e1-9e33-c80aa9429562:23"),
            Some(("3e11fa47-71ca-11e1-9e33-c80aa9429562", 23))
        );
        assert_eq!(
            gtid_parts("3e11fa47-71ca-11e1-9e33-c80aa9429562:blue:7"),
            Some(("3e11fa47-71ca-11e1-9e33-c80aa9429562:blue", 7))
        );
        assert_eq!(gtid_parts(""), None);
        assert_eq!(gtid_parts("0-1"), None);
    }

    #[test]
    fn binlog_file_order() {
        assert_eq!(cmp_files("mysql-bin.000009", "mysql-bin.000010"), Ordering::Less);
        assert_eq!(cmp_files("mysql-bin.999999", "mysql-bin.1000000"), Ordering::Less);
        assert_eq!(cmp_coords("b.000001", 900, "b.000002", 4), Ordering::Less);
        assert_eq!(cmp_coords("b.000002", 4, "b.000002", 4), Ordering::Equal);
    }
}
