//! Reading a ring while its writer runs: whole units, in order, from any
//! place the sparse index finds.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use super::index::{cmp_coords, SegmentIndex, UnitEnd, UnitStart};
use super::record::{self, Record, Slot, SEGMENT_HEADER, UNIT_END, UNIT_START};
use super::segment::{self, ReadableSegment};
use super::writer::index_by_walking;
use super::RingError;

/// A place in the ring: a segment and an offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Segment sequence number.
    pub seq: u64,
    /// Offset in the segment.
    pub offset: usize,
}

/// One whole unit: a transaction, or an event outside one.
#[derive(Debug, Clone)]
pub struct Unit<'r> {
    /// Where its first record is.
    pub at: Location,
    /// Its records, in order.
    pub records: Vec<Record<'r>>,
}

impl Unit<'_> {
    /// The unit's GTID, or "".
    pub fn gtid(&self) -> &str {
        self.records[0].meta.gtid
    }
}

struct Held {
    seg: ReadableSegment,
    index: SegmentIndex,
    /// The seed of the segment's record CRCs.
    seed: u32,
}

/// A read-only view of a ring directory, as of when it was opened (the
/// newest segment may grow meanwhile; units appended after opening are
/// read too as far as they are complete).
pub struct RingReader {
    dir: PathBuf,
    segments: Vec<Held>,
}

impl RingReader {
    /// Opens the ring in `dir` for reading; takes no lock.
    pub fn open(dir: &Path) -> Result<RingReader, RingError> {
        let found = segment::list(dir).map_err(RingError::io(dir, "listing segments"))?;
        if found.is_empty() && !super::state::path(dir).exists() {
            return Err(RingError::Invalid {
                path: dir.to_path_buf(),
                detail: "not a ring directory (no state.json)".into(),
            });
        }
        let mut segments: Vec<Held> = Vec::with_capacity(found.len());
        let newest = found.len().saturating_sub(1);
        for (i, (seq, path)) in found.iter().enumerate() {
            let seg = ReadableSegment::open(path).map_err(RingError::io(path, "opening"))?;
            let seg = match seg {
                Some(seg) if seg.seq == *seq => seg,
                // Being set up by the writer right now.
                _ if i == newest => break,
                _ => {
                    return Err(RingError::Corrupt {
                        path: path.clone(),
                        offset: 0,
                        detail: "no valid segment header".into(),
                    })
                }
            };
            if let Some(prev) = segments.last() {
                if prev.seg.seq + 1 != *seq {
                    // The writer reused the oldest segments while we listed.
                    segments.clear();
                }
            }
            let index = match (i < newest).then(|| SegmentIndex::load(dir, *seq)).flatten() {
                Some(index) => index,
                None if i < newest => index_by_walking(path, *seq)?,
                None => {
                    let mut index = SegmentIndex::new(*seq);
                    segment::walk(&seg.map, *seq, SEGMENT_HEADER, 0, |r| {
                        index.observe(&r.meta, r.offset, r.next)
                    });
                    index
                }
            };
            segments.push(Held { seed: record::seed(*seq), seg, index });
        }
        Ok(RingReader { dir: dir.to_path_buf(), segments })
    }

    /// The ring directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The start of the oldest whole unit held.
    pub fn first(&self) -> Option<&UnitStart> {
        self.segments.iter().find_map(|h| h.index.first())
    }

    /// The end of the newest whole unit (as of opening).
    pub fn last(&self) -> Option<&UnitEnd> {
        self.segments.iter().rev().find_map(|h| h.index.last.as_ref())
    }

    /// The place of the oldest record.
    pub fn start(&self) -> Location {
        Location { seq: self.segments.first().map_or(0, |h| h.seg.seq), offset: SEGMENT_HEADER }
    }

    /// Whole units from `at` on. Records before the first unit start at
    /// `at` (the rest of a unit whose beginning was overwritten) are
    /// skipped.
    pub fn units(&self, at: Location) -> Units<'_> {
        Units { reader: self, at, floor: 0, done: false }
    }

    /// The first unit that starts at or after the binlog coordinates.
    pub fn find_position(&self, file: &str, position: u64) -> Result<Option<Location>, RingError> {
        let target = |s: &UnitStart| cmp_coords(&s.file, s.start, file, position);
        // The last segment whose first unit is at or before the target.
        let i = self
            .segments
            .iter()
            .rposition(|h| h.index.first().is_some_and(|s| target(s) != Ordering::Greater))
            .unwrap_or(0);
        let Some(held) = self.segments.get(i) else { return Ok(None) };
        let from =
            held.index.sample_before_position(file, position).map_or(SEGMENT_HEADER, |s| s.offset as usize);
        for unit in self.units(Location { seq: held.seg.seq, offset: from }) {
            let unit = unit?;
            let m = &unit.records[0].meta;
            if cmp_coords(m.file, m.start, file, position) != Ordering::Less && m.flags & record::RESENT == 0
            {
                return Ok(Some(unit.at));
            }
        }
        Ok(None)
    }

    /// The unit with this GTID.
    pub fn find_gtid(&self, gtid: &str) -> Result<Option<Location>, RingError> {
        for held in self.segments.iter().filter(|h| h.index.may_hold_gtid(gtid)) {
            let from = held.index.sample_before_gtid(gtid).map_or(SEGMENT_HEADER, |s| s.offset as usize);
            for unit in self.units(Location { seq: held.seg.seq, offset: from }) {
                let unit = unit?;
                if unit.at.seq > held.seg.seq {
                    break;
                }
                if unit.gtid() == gtid {
                    return Ok(Some(unit.at));
                }
            }
        }
        Ok(None)
    }

    fn held(&self, seq: u64) -> Option<&Held> {
        let first = self.segments.first()?.seg.seq;
        self.segments.get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }
}

/// Whole units in order; see [`RingReader::units`].
pub struct Units<'r> {
    reader: &'r RingReader,
    at: Location,
    floor: u32,
    done: bool,
}

impl<'r> Iterator for Units<'r> {
    type Item = Result<Unit<'r>, RingError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut records = Vec::new();
        self.next_into(&mut records).map(|at| at.map(|at| Unit { at, records }))
    }
}

impl<'r> Units<'r> {
    /// The next whole unit's records, into `records` (cleared first; reuse
    /// it to read without allocating); returns where the unit starts.
    pub fn next_into(&mut self, records: &mut Vec<Record<'r>>) -> Option<Result<Location, RingError>> {
        records.clear();
        let mut at: Option<Location> = None;
        while !self.done {
            let Some(held) = self.reader.held(self.at.seq) else {
                self.done = true;
                break;
            };
            let newest = self.reader.segments.last().is_some_and(|h| h.seg.seq == held.seg.seq);
            let slot = record::parse_seeded(&held.seg.map, self.at.offset, held.seed);
            let mut r = match slot {
                Slot::Record(r) if r.generation >= self.floor => r,
                _ if newest => {
                    // The end of what is written so far.
                    self.done = true;
                    break;
                }
                other => {
                    self.done = true;
                    return Some(Err(self.damaged(held, other, records.first())));
                }
            };
            self.floor = r.generation;
            if r.is_segment_end() {
                self.at = Location { seq: self.at.seq + 1, offset: SEGMENT_HEADER };
                self.floor = 0;
                continue;
            }
            self.at.offset = r.next;
            if r.meta.flags & UNIT_START != 0 {
                records.clear();
                at = Some(Location { seq: held.seg.seq, offset: r.offset });
            } else if let Some(first) = records.first() {
                (r.meta.file, r.meta.gtid) = (first.meta.file, first.meta.gtid);
            } else {
                // The rest of a unit whose start is not held.
                continue;
            }
            records.push(r);
            if r.meta.flags & UNIT_END != 0 {
                return at.map(Ok);
            }
        }
        None
    }
}

impl Units<'_> {
    fn damaged(&self, held: &Held, slot: Slot<'_>, first: Option<&Record<'_>>) -> RingError {
        let path = held.seg.path.clone();
        if !held.seg.still_holds(held.seg.seq) {
            let (file, position) =
                first.map_or((String::new(), 0), |r| (r.meta.file.to_string(), r.meta.start));
            return RingError::Overwritten { path, file, position };
        }
        let detail = match slot {
            Slot::Invalid(why) => why.to_string(),
            Slot::Empty => "the records stop before the end of a full segment".into(),
            Slot::Record(_) => "a record of an older writer run before the end of a full segment".into(),
        };
        RingError::Corrupt { path, offset: self.at.offset as u64, detail }
    }
}
