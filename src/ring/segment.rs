//! Segment files: naming, allocation, mapping, and walking their records.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut};

use super::record::{self, Record, SegmentHeader, Slot, SEGMENT_HEADER};

/// The file of segment `seq`.
pub fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("seg-{seq:012}.ring"))
}

/// The file a new segment is prepared in before it takes its place.
pub fn spare_path(dir: &Path) -> PathBuf {
    dir.join("seg-spare.ring")
}

/// The segment files of a ring directory, by sequence number.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_prefix("seg-"))
            .and_then(|n| n.strip_suffix(".ring"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((seq, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// Creates `path` with `size` bytes allocated on disk, so that writing into
/// its mapping can never run out of space (a full disk shows up here, as an
/// error, not later as SIGBUS).
pub fn allocate(path: &Path, size: u64) -> io::Result<()> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    let len = libc::off_t::try_from(size).map_err(|_| io::Error::other("segment size too large"))?;
    // SAFETY: a valid open descriptor and a non-negative length.
    let rc = unsafe { libc::posix_fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, len) };
    if rc != 0 {
        let error = io::Error::from_raw_os_error(rc);
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(error);
    }
    file.sync_all()
}

/// Makes renames and new files in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A segment mapped for writing.
pub struct WritableSegment {
    /// Its sequence number.
    pub seq: u64,
    /// Its file.
    pub path: PathBuf,
    /// The mapping of the whole file.
    pub map: MmapMut,
}

impl WritableSegment {
    /// Maps an existing segment file for writing.
    pub fn open(path: &Path, seq: u64) -> io::Result<WritableSegment> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        // SAFETY: only this process writes ring segments (the directory
        // lock), and the file keeps its size while mapped.
        let map = unsafe { MmapMut::map_mut(&file)? };
        Ok(WritableSegment { seq, path: path.to_path_buf(), map })
    }

    /// Writes a fresh header for `seq` into an allocated file and maps it.
    pub fn init(path: &Path, seq: u64) -> io::Result<WritableSegment> {
        let mut seg = WritableSegment::open(path, seq)?;
        let header = SegmentHeader { seq, size: seg.map.len() as u64 };
        seg.map[..SEGMENT_HEADER].copy_from_slice(&header.encode());
        seg.map.flush_range(0, SEGMENT_HEADER)?;
        Ok(seg)
    }

    /// Writes the bytes in `from..to` to disk.
    pub fn sync(&self, from: usize, to: usize) -> io::Result<()> {
        if to > from {
            self.map.flush_range(from, to - from)?;
        }
        Ok(())
    }
}

/// A segment mapped for reading.
pub struct ReadableSegment {
    /// Its sequence number, from its header.
    pub seq: u64,
    /// Its file.
    pub path: PathBuf,
    /// The mapping.
    pub map: Mmap,
}

impl ReadableSegment {
    /// Maps a segment file; `None` when it has no valid header.
    pub fn open(path: &Path) -> io::Result<Option<ReadableSegment>> {
        let file = File::open(path)?;
        // SAFETY: the ring's writer only appends past what readers have
        // seen, or reuses a whole segment, which a reader notices by the
        // changed header and failing record checks; bytes are read through
        // checked parsing, never trusted as references.
        let map = unsafe { Mmap::map(&file)? };
        Ok(SegmentHeader::parse(&map).map(|h| ReadableSegment { seq: h.seq, path: path.to_path_buf(), map }))
    }

    /// True while the file still holds segment `seq` (it has not been
    /// reused for a newer one).
    pub fn still_holds(&self, seq: u64) -> bool {
        SegmentHeader::parse(&self.map).is_some_and(|h| h.seq == seq)
    }
}

/// Why a walk over a segment's records stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkEnd {
    /// Nothing more was written (zeros, or the end of the file).
    Empty,
    /// The segment's closing record: the data goes on in the next segment.
    SegmentEnd,
    /// Bytes that are not a valid record: a torn write or damage.
    Invalid(&'static str),
    /// A record of an older writer generation: left over from before a cut.
    Stale,
}

/// Walks the records of segment `seq` from `offset`, calling `each` for
/// every valid one, and says where and why the walk stopped.
pub fn walk<'a>(
    bytes: &'a [u8],
    seq: u64,
    mut offset: usize,
    mut generation: u32,
    mut each: impl FnMut(&Record<'a>),
) -> (usize, WalkEnd) {
    loop {
        match record::parse(bytes, offset, seq) {
            Slot::Empty => return (offset, WalkEnd::Empty),
            Slot::Invalid(why) => return (offset, WalkEnd::Invalid(why)),
            Slot::Record(r) if r.generation < generation => return (offset, WalkEnd::Stale),
            Slot::Record(r) if r.is_segment_end() => return (offset, WalkEnd::SegmentEnd),
            Slot::Record(r) => {
                generation = r.generation;
                each(&r);
                offset = r.next;
            }
        }
    }
}
