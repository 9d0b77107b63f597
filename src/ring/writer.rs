//! The ring's one writer: recovery on open, appending whole units, making
//! them durable, and moving to the next segment.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gapless_decoder::EventType;
use tracing::{info, warn};

use super::index::SegmentIndex;
use super::record::{
    self, RecordMeta, CRC32, RECORD_HEADER, RESENT, SEGMENT_END, SEGMENT_HEADER, UNIT_END, UNIT_START,
};
use super::segment::{self, ReadableSegment, WalkEnd, WritableSegment};
use super::state::{self, Checkpoint, State};
use super::status::{Coordinates, Published, RingStatus};
use super::{resume, RingError};
use crate::stream::{Received, ResumePoint};

/// When appended units are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// At each commit; commits that arrive together share one sync.
    Commit,
    /// At most this long after a write.
    Interval(Duration),
    /// Left to the operating system (a semi-sync ACK still waits for a sync).
    Never,
}

/// How a ring is laid out and synced.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Bytes the ring may take on disk.
    pub ring_bytes: u64,
    /// Bytes per segment file (default: a sixteenth of the ring, between
    /// 1 MiB and 256 MiB).
    pub segment_bytes: Option<u64>,
    /// When to sync.
    pub sync: SyncPolicy,
    /// The primary, for the state file and messages.
    pub source: String,
}

/// The fewest segment files a ring has: the one being written, its spare,
/// and two that hold history.
pub const MIN_SEGMENTS: u64 = 4;

/// Under the commit policy, a sync happens at the latest after this much
/// data or this long, even when events keep arriving without a pause.
const COMMIT_SYNC_BYTES: usize = 8 << 20;
const COMMIT_SYNC_DELAY: Duration = Duration::from_millis(50);
/// Bytes appended between two looks at the clock.
const CLOCK_BYTES: usize = 64 << 10;

impl RingConfig {
    fn layout(&self) -> Result<(u64, u64), String> {
        let segment = self.segment_bytes.unwrap_or((self.ring_bytes / 16).clamp(1 << 20, 256 << 20));
        let segment = segment / 4096 * 4096;
        if segment < 64 << 10 {
            return Err(format!("segments of {segment} bytes are too small (64 KiB at least)"));
        }
        let count = self.ring_bytes / segment;
        if count < MIN_SEGMENTS {
            return Err(format!(
                "--ring-size {} holds {count} segments of {segment} bytes; {MIN_SEGMENTS} at least are needed",
                self.ring_bytes
            ));
        }
        Ok((segment, count))
    }
}

/// A segment that is full and only read from now.
struct Sealed {
    seq: u64,
    path: PathBuf,
    index: SegmentIndex,
}

/// Where a record or unit boundary is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    seq: u64,
    offset: usize,
}

/// What opening a ring found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The ring held no unit yet.
    pub empty: bool,
    /// Bytes of an incomplete unit cut from the tail.
    pub cut_bytes: u64,
    /// Why the tail ended where it did (a torn record, zeros, ...).
    pub tail: String,
}

/// Appends units to a ring directory; see the module docs.
pub struct RingWriter {
    dir: PathBuf,
    _lock: File,
    state: State,
    segment_bytes: usize,
    sealed: VecDeque<Sealed>,
    active: WritableSegment,
    index: SegmentIndex,
    /// Where the last complete unit ends, and the resume point there.
    unit_end: Place,
    resume: resume::Resume,
    /// The end of the last whole unit known to be on disk.
    last_durable: Option<Coordinates>,
    dirty_since: Option<Instant>,
    /// Unsynced bytes when the clock was last read.
    clock_at: usize,
    last_sync: Instant,
    sync: SyncPolicy,
    status: Arc<Published<RingStatus>>,
    recovery: Recovery,
    /// Leave a checkpoint at the end when dropped (off to test crashes).
    checkpoint_on_drop: bool,
    /// The FORMAT_DESCRIPTION in force, copied to the start of each new
    /// segment so that a reader starting anywhere can decode.
    fde: Option<FdeCopy>,
    /// The active segment holds a FORMAT_DESCRIPTION.
    segment_has_fde: bool,
}

/// A FORMAT_DESCRIPTION event and where it came from.
#[derive(Debug, Clone)]
struct FdeCopy {
    event: Vec<u8>,
    file: String,
    start: u64,
    end: u64,
    crc32: bool,
}

fn is_fde(event: &[u8]) -> bool {
    record::event_type(event) == Some(EventType::FORMAT_DESCRIPTION)
}

impl RingWriter {
    /// Opens (or creates) the ring in `dir`: takes its lock, recovers from a
    /// crash (cutting an incomplete unit off the tail), and gets ready to
    /// append after the last complete unit.
    pub fn open(dir: &Path, config: &RingConfig) -> Result<RingWriter, RingError> {
        Self::open_publishing(dir, config, Arc::new(Published::new(RingStatus::default())))
    }

    /// [`open`](Self::open), publishing the status into `status`.
    pub fn open_publishing(
        dir: &Path,
        config: &RingConfig,
        status: Arc<Published<RingStatus>>,
    ) -> Result<RingWriter, RingError> {
        let invalid = |detail: String| RingError::Invalid { path: dir.to_path_buf(), detail };
        let (segment_bytes, max_segments) = config.layout().map_err(invalid)?;
        std::fs::create_dir_all(dir).map_err(RingError::io(dir, "creating the directory"))?;
        let lock = lock(dir)?;
        let found = segment::list(dir).map_err(RingError::io(dir, "listing segments"))?;
        let existing = state::read(dir).map_err(RingError::io(state::path(dir), "reading"))?;
        let mut state = match existing {
            Some(state) => {
                if state.segment_bytes != segment_bytes && config.segment_bytes.is_some() {
                    return Err(invalid(format!(
                        "the ring was made with segments of {} bytes, not {segment_bytes}",
                        state.segment_bytes
                    )));
                }
                state
            }
            None if !found.is_empty() => {
                return Err(invalid(format!(
                    "segment files but no {}: not a ring this gapless can recover; move the directory aside",
                    state::path(dir).display()
                )))
            }
            None => State {
                version: state::VERSION,
                segment_bytes,
                max_segments,
                generation: 0,
                source: config.source.clone(),
                by_gtid: false,
                checkpoint: None,
            },
        };
        // The ring's size may change between runs; its segment size may not.
        state.max_segments = (config.ring_bytes / state.segment_bytes).max(MIN_SEGMENTS);
        state.generation += 1;
        if !config.source.is_empty() {
            if !state.source.is_empty() && state.source != config.source {
                warn!(ring = %dir.display(), was = %state.source, now = %config.source, "the ring was filled from another source address");
            }
            state.source = config.source.clone();
        }
        state::write(dir, &state).map_err(RingError::io(state::path(dir), "writing"))?;
        let mut writer = if found.is_empty() {
            Self::create(dir, lock, state, status)?
        } else {
            Self::recover(dir, lock, state, found, status)?
        };
        writer.sync = config.sync;
        writer.publish();
        Ok(writer)
    }

    fn create(
        dir: &Path,
        lock: File,
        state: State,
        status: Arc<Published<RingStatus>>,
    ) -> Result<Self, RingError> {
        let path = segment::path(dir, 1);
        segment::allocate(&path, state.segment_bytes)
            .map_err(RingError::io(&path, "allocating a segment"))?;
        let active =
            WritableSegment::init(&path, 1).map_err(RingError::io(&path, "writing the segment header"))?;
        segment::sync_dir(dir).map_err(RingError::io(dir, "syncing the directory"))?;
        let at = Place { seq: 1, offset: SEGMENT_HEADER };
        Ok(Self::assemble(
            dir,
            lock,
            state,
            VecDeque::new(),
            active,
            SegmentIndex::new(1),
            at,
            ResumePoint::default(),
            status,
            Recovery { empty: true, ..Default::default() },
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        dir: &Path,
        lock: File,
        state: State,
        sealed: VecDeque<Sealed>,
        active: WritableSegment,
        index: SegmentIndex,
        at: Place,
        resume: ResumePoint,
        status: Arc<Published<RingStatus>>,
        recovery: Recovery,
    ) -> Self {
        let last = last_unit_end(&index, &sealed);
        RingWriter {
            dir: dir.to_path_buf(),
            _lock: lock,
            segment_bytes: state.segment_bytes as usize,
            state,
            sealed,
            active,
            index,
            unit_end: at,
            resume: resume::Resume::new(resume),
            last_durable: last,
            dirty_since: None,
            clock_at: 0,
            last_sync: Instant::now(),
            sync: SyncPolicy::Commit,
            status,
            recovery,
            checkpoint_on_drop: true,
            fde: None,
            segment_has_fde: false,
        }
    }

    /// Walks from the checkpoint to the end of the data, cuts an incomplete
    /// unit off the tail, and reports damage anywhere else.
    fn recover(
        dir: &Path,
        lock: File,
        state: State,
        found: Vec<(u64, PathBuf)>,
        status: Arc<Published<RingStatus>>,
    ) -> Result<Self, RingError> {
        let corrupt = |path: &Path, offset: usize, detail: String| RingError::Corrupt {
            path: path.to_path_buf(),
            offset: offset as u64,
            detail,
        };
        // A spare being prepared when the process stopped is just space.
        let _ = std::fs::remove_file(segment::spare_path(dir));
        let mut segments = Vec::with_capacity(found.len());
        for (i, (seq, path)) in found.iter().enumerate() {
            if i > 0 && *seq != found[i - 1].0 + 1 {
                return Err(corrupt(path, 0, format!("segment {} is missing before it", found[i - 1].0 + 1)));
            }
            let seg = ReadableSegment::open(path).map_err(RingError::io(path, "opening"))?;
            match seg {
                Some(seg) if seg.seq == *seq => segments.push(seg),
                // The newest file was being renamed into place: it holds
                // nothing of this segment yet. (Not when the checkpoint is
                // in it: then its header was damaged, and it holds data.)
                _ if i == found.len() - 1
                    && i > 0
                    && state.checkpoint.as_ref().is_some_and(|c| c.seq < *seq) =>
                {
                    warn!(segment = %path.display(), "removing a segment that was being set up when gapless stopped");
                    std::fs::remove_file(path).map_err(RingError::io(path, "removing"))?;
                }
                _ => return Err(corrupt(path, 0, "no valid segment header for this sequence number".into())),
            }
        }
        let newest = segments.len() - 1;
        let first_seq = segments[0].seq;
        let (mut at, mut floor, mut resume) = match &state.checkpoint {
            Some(c) if c.seq >= first_seq && c.seq <= segments[newest].seq => (
                Place { seq: c.seq, offset: c.offset as usize },
                c.generation,
                checkpoint_resume(c)
                    .map_err(|detail| RingError::Invalid { path: state::path(dir), detail })?,
            ),
            Some(c) => {
                return Err(RingError::Invalid {
                    path: state::path(dir),
                    detail: format!("the checkpoint names segment {}, which is not in the directory", c.seq),
                })
            }
            None => (Place { seq: first_seq, offset: SEGMENT_HEADER }, 0, ResumePoint::default()),
        };
        // What the checkpoint vouches for in its segment must be intact: a
        // torn tail can only come after it.
        {
            let seg = &segments[(at.seq - first_seq) as usize];
            let mut reached = SEGMENT_HEADER == at.offset;
            let (end, why) =
                segment::walk(&seg.map, seg.seq, SEGMENT_HEADER, 0, |r| reached |= r.next == at.offset);
            if !reached && end < at.offset {
                return Err(corrupt(
                    &seg.path,
                    end,
                    format!("{why:?} before the checkpoint at offset {}", at.offset),
                ));
            }
            if !reached {
                return Err(RingError::Invalid {
                    path: state::path(dir),
                    detail: format!(
                        "the checkpoint (segment {}, offset {}) is not at a record boundary: the state file is damaged",
                        at.seq, at.offset
                    ),
                });
            }
        }
        let mut unit_end = at;
        let mut empty = state.checkpoint.is_none();
        // A checkpoint is at a unit boundary; without one, records before
        // the first unit start belong to a unit whose start was overwritten.
        let mut open_unit = false;
        let tail;
        loop {
            let i = (at.seq - first_seq) as usize;
            let seg = &segments[i];
            let (end, why) = segment::walk(&seg.map, seg.seq, at.offset, floor, |r| {
                if r.meta.flags & UNIT_START != 0 {
                    open_unit = true;
                }
                if r.meta.flags & UNIT_END != 0 && open_unit {
                    resume::advance(&mut resume, &r.meta, r.event, r.meta.gtid);
                    unit_end = Place { seq: seg.seq, offset: r.next };
                    open_unit = false;
                    empty = false;
                }
            });
            match why {
                WalkEnd::SegmentEnd if i < newest => {
                    at = Place { seq: seg.seq + 1, offset: SEGMENT_HEADER };
                    floor = 0;
                }
                _ if i < newest => {
                    return Err(corrupt(
                        &seg.path,
                        end,
                        format!("{why:?} before the end of a segment that has a successor"),
                    ));
                }
                _ => {
                    tail = (Place { seq: seg.seq, offset: end }, why);
                    break;
                }
            }
        }
        drop(segments);
        let (tail_at, why) = tail;
        let cut_bytes = if tail_at.seq == unit_end.seq {
            (tail_at.offset - unit_end.offset) as u64
        } else {
            state.segment_bytes * (tail_at.seq - unit_end.seq)
        };
        // Segments past the last complete unit hold only the cut unit.
        for (seq, path) in found.iter().filter(|(seq, _)| *seq > unit_end.seq) {
            warn!(segment = %path.display(), seq, "removing a segment that holds only an incomplete transaction");
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(RingError::Io { path: path.clone(), action: "removing", error: e })
                }
                _ => {}
            }
        }
        segment::sync_dir(dir).map_err(RingError::io(dir, "syncing the directory"))?;
        let recovery = Recovery { empty, cut_bytes, tail: format!("{why:?}") };
        if cut_bytes > 0 {
            warn!(
                segment = %segment::path(dir, unit_end.seq).display(),
                offset = unit_end.offset,
                bytes = cut_bytes,
                tail = ?why,
                "cut an incomplete transaction off the end of the ring"
            );
        }
        let mut sealed = VecDeque::new();
        for (seq, path) in found.iter().filter(|(seq, _)| *seq < unit_end.seq) {
            let index = SegmentIndex::load(dir, *seq).map_or_else(|| index_by_walking(path, *seq), Ok)?;
            sealed.push_back(Sealed { seq: *seq, path: path.clone(), index });
        }
        let path = segment::path(dir, unit_end.seq);
        let mut active = WritableSegment::open(&path, unit_end.seq, unit_end.offset)
            .map_err(RingError::io(&path, "opening"))?;
        let mut index = SegmentIndex::new(unit_end.seq);
        let mut fde = None;
        let seg =
            ReadableSegment::open(&path).map_err(RingError::io(&path, "opening"))?.ok_or_else(|| {
                RingError::Corrupt { path: path.clone(), offset: 0, detail: "no valid segment header".into() }
            })?;
        segment::walk(&seg.map, unit_end.seq, SEGMENT_HEADER, 0, |r| {
            if r.offset < unit_end.offset {
                index.observe(&r.meta, r.offset, r.next);
                if is_fde(r.event) {
                    fde = Some(FdeCopy {
                        event: r.event.to_vec(),
                        file: r.meta.file.to_string(),
                        start: r.meta.start,
                        end: r.meta.end,
                        crc32: r.meta.flags & CRC32 != 0,
                    });
                }
            }
        });
        // What survived a kill is in the page cache; make it durable before
        // building on it.
        active.sync().map_err(RingError::io(&path, "syncing"))?;
        let mut writer =
            Self::assemble(dir, lock, state, sealed, active, index, unit_end, resume, status, recovery);
        writer.checkpoint()?;
        if !writer.recovery.empty {
            let resume = writer.resume.point();
            info!(ring = %dir.display(), resume = %format!("{}:{}", resume.file, resume.position), "ring recovered");
        }
        Ok(writer)
    }

    /// What opening the ring found.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The stream's resume point after the last complete unit.
    pub fn resume_point(&self) -> ResumePoint {
        self.resume.point()
    }

    /// Whether the ring's stream goes by GTID.
    pub fn by_gtid(&self) -> bool {
        self.state.by_gtid
    }

    /// The published status, for readers in this process.
    pub fn status(&self) -> Arc<Published<RingStatus>> {
        Arc::clone(&self.status)
    }

    /// The ring directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records where a new stream into an empty ring starts.
    pub fn start(&mut self, from: &ResumePoint, by_gtid: bool) -> Result<(), RingError> {
        self.resume = resume::Resume::new(from.clone());
        self.state.by_gtid = by_gtid;
        self.checkpoint()
    }

    /// Appends one unit: a complete transaction, or one event outside a
    /// transaction (a resent FORMAT_DESCRIPTION is a unit of its own).
    pub fn append(&mut self, unit: &[Received]) -> Result<(), RingError> {
        let Some(last_event) = unit.last() else { return Ok(()) };
        let meta = |i: usize| {
            let r = &unit[i];
            RecordMeta {
                flags: if i == 0 { UNIT_START } else { 0 }
                    | if i == unit.len() - 1 { UNIT_END } else { 0 }
                    | if r.resent { RESENT } else { 0 }
                    | if r.crc32 { CRC32 } else { 0 },
                file: &r.file,
                gtid: r.gtid.as_deref().unwrap_or(""),
                start: r.offset,
                end: r.offset + r.bytes.len() as u64,
                timestamp: record::event_timestamp(&r.bytes),
            }
        };
        let room = self.segment_bytes - SEGMENT_HEADER - END_RECORD;
        let invalid = |detail: String| RingError::Invalid { path: self.dir.clone(), detail };
        let mut total = 0;
        for (i, r) in unit.iter().enumerate() {
            let m = meta(i);
            record::check(&m).map_err(|e| invalid(format!("event at {}:{}: {e}", m.file, m.start)))?;
            let size = record::encoded_len(&m, r.bytes.len());
            if size > room {
                return Err(invalid(format!(
                    "the event at {}:{} takes {size} bytes, more than a segment of {} bytes holds; use a larger --ring-size",
                    m.file, m.start, self.segment_bytes
                )));
            }
            total += size;
        }
        if total as u64 > room as u64 * (self.state.max_segments - 2) {
            return Err(invalid(format!(
                "the transaction at {}:{} takes {total} bytes, more than the ring holds; use a larger --ring-size",
                unit[0].file, unit[0].offset
            )));
        }
        // A unit that fits in a segment is not split across two.
        let copy = self.fde.as_ref().map_or(0, |f| record::RECORD_HEADER + f.file.len() + f.event.len() + 7);
        if self.active.pos() + total + copy + END_RECORD > self.segment_bytes && total + copy <= room {
            self.next_segment()?;
        }
        if !self.segment_has_fde && !is_fde(&unit[0].bytes) {
            self.copy_fde()?;
        }
        for (i, r) in unit.iter().enumerate() {
            let m = meta(i);
            let size = record::encoded_len(&m, r.bytes.len());
            if self.active.pos() + size + END_RECORD > self.segment_bytes {
                self.next_segment()?;
            }
            if is_fde(&r.bytes) {
                self.fde = Some(FdeCopy {
                    event: r.bytes.to_vec(),
                    file: r.file.to_string(),
                    start: r.offset,
                    end: r.end,
                    crc32: r.crc32,
                });
                self.segment_has_fde = true;
            }
            let at = self.active.pos();
            self.active
                .append(self.state.generation, &m, &r.bytes)
                .map_err(RingError::io(&self.active.path, "writing"))?;
            self.index.observe(&m, at, at + size);
        }
        let last = meta(unit.len() - 1);
        self.resume.advance(&last, &last_event.bytes, last.gtid);
        self.unit_end = Place { seq: self.active.seq, offset: self.active.pos() };
        // The clock is read once per sync period and then every
        // CLOCK_BYTES appended, not for every unit.
        if self.dirty_since.is_none() {
            self.dirty_since = Some(Instant::now());
            self.clock_at = self.active.unsynced();
        }
        if self.active.unsynced() < self.clock_at + CLOCK_BYTES {
            return Ok(());
        }
        self.clock_at = self.active.unsynced();
        let now = Instant::now();
        let since = self.dirty_since.unwrap_or(now);
        let due = match self.sync {
            SyncPolicy::Commit => {
                self.active.unsynced() >= COMMIT_SYNC_BYTES || now - since >= COMMIT_SYNC_DELAY
            }
            SyncPolicy::Interval(every) => now - self.last_sync >= every,
            SyncPolicy::Never => false,
        };
        if due {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes the FORMAT_DESCRIPTION in force as a unit of its own, marked
    /// as resent, so that the segment can be decoded without the ones
    /// before it (the caller has made room).
    fn copy_fde(&mut self) -> Result<(), RingError> {
        let Some(fde) = &self.fde else { return Ok(()) };
        let meta = RecordMeta {
            flags: UNIT_START | UNIT_END | RESENT | if fde.crc32 { CRC32 } else { 0 },
            file: &fde.file,
            gtid: "",
            start: fde.start,
            end: fde.end,
            timestamp: record::event_timestamp(&fde.event),
        };
        let size = record::encoded_len(&meta, fde.event.len());
        let at = self.active.pos();
        if at + size + END_RECORD > self.segment_bytes {
            // No room before a unit that spans segments: the next segment
            // gets the copy.
            return Ok(());
        }
        self.active
            .append(self.state.generation, &meta, &fde.event)
            .map_err(RingError::io(&self.active.path, "writing"))?;
        self.index.observe(&meta, at, at + size);
        self.segment_has_fde = true;
        Ok(())
    }

    /// Makes everything appended so far durable, whatever the policy.
    pub fn sync(&mut self) -> Result<(), RingError> {
        self.active.sync().map_err(RingError::io(&self.active.path, "syncing"))?;
        self.dirty_since = None;
        self.last_sync = Instant::now();
        self.last_durable = last_unit_end(&self.index, &self.sealed);
        if let Some(d) = &self.last_durable {
            // For measuring how long events take to become durable
            // (benches/sidecar-lag.sh): GAPLESS_LOG=gapless::ring=debug.
            tracing::debug!(file = %d.file, position = d.position, "durable");
        }
        self.publish();
        Ok(())
    }

    /// Makes appended units durable as the policy says, at a pause in the
    /// stream (commit: now; interval: when due; never: not at all).
    pub fn flush(&mut self) -> Result<(), RingError> {
        match self.sync {
            SyncPolicy::Commit => self.sync(),
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync(),
            _ => {
                // Not synced, but in the page cache: readers see it, and
                // a killed process does not lose it.
                self.active.write_out().map_err(RingError::io(&self.active.path, "writing"))?;
                self.publish();
                Ok(())
            }
        }
    }

    /// Makes sure the next segment can be had: allocates the spare now when
    /// the ring is still growing. After a full disk, this says whether
    /// writing can go on.
    pub fn ensure_room(&mut self) -> Result<(), RingError> {
        let spare = segment::spare_path(&self.dir);
        if self.sealed.len() as u64 + 2 > self.state.max_segments || spare.exists() {
            return Ok(());
        }
        segment::allocate(&spare, self.state.segment_bytes)
            .map_err(RingError::io(&spare, "allocating a segment"))
    }

    /// Seals the active segment and continues in the next: the spare is
    /// made ready first, so a full disk fails here with nothing changed.
    fn next_segment(&mut self) -> Result<(), RingError> {
        let spare = segment::spare_path(&self.dir);
        // Files in use: the sealed ones, the active one and the spare.
        if self.sealed.len() as u64 + 2 > self.state.max_segments {
            // The ring is full: the oldest segment becomes the next one
            // (and a ring made smaller since it was filled drops more).
            while self.sealed.len() as u64 + 2 > self.state.max_segments {
                let oldest = self.sealed.pop_front().expect("a full ring has sealed segments");
                let _ = std::fs::remove_file(SegmentIndex::path(&self.dir, oldest.seq));
                if self.sealed.len() as u64 + 2 > self.state.max_segments {
                    std::fs::remove_file(&oldest.path).map_err(RingError::io(&oldest.path, "removing"))?;
                } else {
                    std::fs::rename(&oldest.path, &spare)
                        .map_err(RingError::io(&oldest.path, "renaming for reuse"))?;
                }
            }
        } else if !spare.exists() {
            segment::allocate(&spare, self.state.segment_bytes)
                .map_err(RingError::io(&spare, "allocating a segment"))?;
        }
        let end_meta = RecordMeta { flags: SEGMENT_END, file: "", gtid: "", start: 0, end: 0, timestamp: 0 };
        let seq = self.active.seq;
        self.active
            .append(self.state.generation, &end_meta, &[])
            .map_err(RingError::io(&self.active.path, "writing"))?;
        self.active.sync().map_err(RingError::io(&self.active.path, "syncing"))?;
        if let Err(e) = self.index.save(&self.dir) {
            warn!(segment = %self.active.path.display(), "could not save the segment index ({e}); readers will rebuild it");
        }
        let next = segment::path(&self.dir, seq + 1);
        std::fs::rename(&spare, &next).map_err(RingError::io(&spare, "renaming into place"))?;
        let active = WritableSegment::init(&next, seq + 1)
            .map_err(RingError::io(&next, "writing the segment header"))?;
        segment::sync_dir(&self.dir).map_err(RingError::io(&self.dir, "syncing the directory"))?;
        let old = std::mem::replace(&mut self.active, active);
        let index = std::mem::replace(&mut self.index, SegmentIndex::new(seq + 1));
        self.sealed.push_back(Sealed { seq, path: old.path, index });
        self.segment_has_fde = false;
        // The last complete unit is on disk now.
        if self.unit_end.seq == seq {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Saves the last complete unit's place and resume point.
    fn checkpoint(&mut self) -> Result<(), RingError> {
        let resume = self.resume.point();
        self.state.checkpoint = Some(Checkpoint {
            seq: self.unit_end.seq,
            offset: self.unit_end.offset as u64,
            generation: self.state.generation,
            file: resume.file,
            position: resume.position,
            maria: resume.maria.to_string(),
            mysql: resume.mysql.to_string(),
        });
        state::write(&self.dir, &self.state).map_err(RingError::io(state::path(&self.dir), "writing"))
    }

    /// Stops as a process killed after its last write would: what was
    /// written is in the page cache, but not synced, and no final checkpoint.
    #[cfg(test)]
    pub(super) fn crash(mut self) {
        self.active.settle().expect("write out");
        self.checkpoint_on_drop = false;
    }

    /// Marks writing as paused (or resumed, with `None`) in the status.
    pub fn set_paused(&mut self, why: Option<String>) {
        let mut status = self.status.load();
        status.paused = why;
        self.status.store(status);
    }

    fn publish(&self) {
        let first = self
            .sealed
            .iter()
            .map(|s| &s.index)
            .chain(std::iter::once(&self.index))
            .find_map(|i| i.first())
            .map(|s| Coordinates {
                file: s.file.clone(),
                position: s.start,
                gtid: s.gtid.clone(),
                timestamp: s.timestamp,
            });
        let paused = self.status.load().paused;
        self.status.store(RingStatus {
            dir: self.dir.display().to_string(),
            first,
            last_written: last_unit_end(&self.index, &self.sealed),
            last_durable: self.last_durable.clone(),
            used_bytes: self.sealed.len() as u64 * self.state.segment_bytes + self.active.pos() as u64,
            capacity_bytes: self.state.max_segments * self.state.segment_bytes,
            segments: self.sealed.len() as u64 + 1,
            paused,
        });
    }
}

impl Drop for RingWriter {
    fn drop(&mut self) {
        // A clean stop leaves a checkpoint at the end: the next start has
        // nothing to walk.
        if self.checkpoint_on_drop && self.sync().is_ok() {
            let _ = self.checkpoint();
        }
    }
}

/// The end of the last whole unit written: the segment indexes keep it.
fn last_unit_end(active: &SegmentIndex, sealed: &VecDeque<Sealed>) -> Option<Coordinates> {
    let end = active.last.as_ref().or_else(|| sealed.iter().rev().find_map(|s| s.index.last.as_ref()))?;
    Some(Coordinates {
        file: end.file.clone(),
        position: end.end,
        gtid: end.gtid.clone(),
        timestamp: end.timestamp,
    })
}

/// The size of the record that closes a segment.
const END_RECORD: usize = RECORD_HEADER;

/// Takes the ring directory's lock, held while the writer lives.
fn lock(dir: &Path) -> Result<File, RingError> {
    let path = dir.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(RingError::io(&path, "opening the lock file"))?;
    // SAFETY: a valid descriptor; flock has no memory effects.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(RingError::Locked(dir.to_path_buf()));
    }
    Ok(file)
}

fn checkpoint_resume(c: &Checkpoint) -> Result<ResumePoint, String> {
    Ok(ResumePoint {
        file: c.file.clone(),
        position: c.position,
        maria: c.maria.parse().map_err(|e| format!("checkpoint GTID position {:?}: {e}", c.maria))?,
        mysql: c.mysql.parse().map_err(|e| format!("checkpoint GTID set {:?}: {e}", c.mysql))?,
    })
}

/// Builds a sealed segment's index by walking it (its saved index is
/// missing).
pub(super) fn index_by_walking(path: &Path, seq: u64) -> Result<SegmentIndex, RingError> {
    let seg = ReadableSegment::open(path)
        .map_err(RingError::io(path, "opening"))?
        .filter(|s| s.seq == seq)
        .ok_or_else(|| RingError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        detail: "no valid segment header".into(),
    })?;
    let mut index = SegmentIndex::new(seq);
    let (end, why) =
        segment::walk(&seg.map, seq, SEGMENT_HEADER, 0, |r| index.observe(&r.meta, r.offset, r.next));
    if why != WalkEnd::SegmentEnd {
        return Err(RingError::Corrupt {
            path: path.to_path_buf(),
            offset: end as u64,
            detail: format!("{why:?} before the end of a full segment"),
        });
    }
    Ok(index)
}
