//! Segment files: naming, allocation, mapping, and walking their records.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use std::os::unix::fs::FileExt;

use memmap2::Mmap;

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

/// The segment being written.
///
/// Records are gathered in a buffer; full buffers are written with `pwrite`
/// by a thread of the segment's own, in order, while the next buffer fills:
/// the copy into the page cache and starting the disk write run on the
/// other core. (Writing through a mapping instead would take a page fault
/// for every 4 KiB touched, which costs more than the copy.) Readers map
/// the file and see what was written through the page cache.
pub struct WritableSegment {
    /// Its sequence number.
    pub seq: u64,
    /// Its file.
    pub path: PathBuf,
    file: File,
    /// Records not handed to the writer thread yet; they go at `staged_at`.
    stage: Vec<u8>,
    staged_at: usize,
    /// Bytes of the file known to be on disk.
    synced: usize,
    /// The seed of its records' CRCs.
    seed: u32,
    writer: BackgroundWriter,
}

/// Bytes gathered before they are written out.
const STAGE_BYTES: usize = 1 << 20;
/// Buffers handed to the writer thread and not back yet, at most.
const IN_FLIGHT: usize = 2;

/// The thread that writes a segment's full buffers, and the way back for
/// the emptied buffers (or the error that stopped it).
struct BackgroundWriter {
    jobs: Option<mpsc::SyncSender<(Vec<u8>, u64)>>,
    done: mpsc::Receiver<io::Result<Vec<u8>>>,
    in_flight: usize,
    spare: Vec<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundWriter {
    fn start(file: File) -> BackgroundWriter {
        let (jobs, rx) = mpsc::sync_channel::<(Vec<u8>, u64)>(IN_FLIGHT);
        let (tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("gapless-ring-write".into())
            .spawn(move || {
                for (mut buf, at) in rx {
                    let result = file.write_all_at(&buf, at).map(|()| {
                        // Start writing it to disk now, without waiting: the
                        // sync that makes it durable later has little left.
                        // SAFETY: a valid descriptor; the range is in the file.
                        unsafe {
                            libc::sync_file_range(
                                std::os::fd::AsRawFd::as_raw_fd(&file),
                                at as libc::off64_t,
                                buf.len() as libc::off64_t,
                                libc::SYNC_FILE_RANGE_WRITE,
                            );
                        }
                        buf.clear();
                        buf
                    });
                    let failed = result.is_err();
                    if tx.send(result).is_err() || failed {
                        return;
                    }
                }
            })
            .ok();
        BackgroundWriter {
            jobs: thread.as_ref().map(|_| jobs),
            done,
            in_flight: 0,
            spare: Vec::new(),
            thread,
        }
    }

    /// Takes back one written buffer.
    fn collect_one(&mut self) -> io::Result<()> {
        let buf = self.done.recv().map_err(|_| io::Error::other("the ring's writer thread stopped"))??;
        self.in_flight -= 1;
        self.spare.push(buf);
        Ok(())
    }

    /// Waits until everything handed over is written.
    fn settle(&mut self) -> io::Result<()> {
        while self.in_flight > 0 {
            self.collect_one()?;
        }
        Ok(())
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl WritableSegment {
    /// Opens an existing segment file to write at `at`; everything before
    /// `at` counts as on disk once [`sync`](Self::sync) has run.
    pub fn open(path: &Path, seq: u64, at: usize) -> io::Result<WritableSegment> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let writer = BackgroundWriter::start(file.try_clone()?);
        Ok(WritableSegment {
            seq,
            path: path.to_path_buf(),
            file,
            stage: Vec::with_capacity(STAGE_BYTES * 2),
            staged_at: at,
            synced: 0,
            seed: record::seed(seq),
            writer,
        })
    }

    /// Writes a fresh header for `seq` into an allocated file and opens it.
    pub fn init(path: &Path, seq: u64) -> io::Result<WritableSegment> {
        let mut seg = WritableSegment::open(path, seq, SEGMENT_HEADER)?;
        let size = seg.file.metadata()?.len();
        seg.file.write_all_at(&SegmentHeader { seq, size }.encode(), 0)?;
        seg.file.sync_data()?;
        seg.synced = SEGMENT_HEADER;
        Ok(seg)
    }

    /// Where the next record goes.
    pub fn pos(&self) -> usize {
        self.staged_at + self.stage.len()
    }

    /// Appends a record; hands the buffer to the writer thread when full.
    pub fn append(&mut self, generation: u32, meta: &record::RecordMeta<'_>, event: &[u8]) -> io::Result<()> {
        record::encode_into(&mut self.stage, self.seed, generation, meta, event);
        if self.stage.len() >= STAGE_BYTES {
            self.write_out()?;
        }
        Ok(())
    }

    /// Hands the gathered records to the writer thread (without waiting);
    /// written where the thread is missing.
    pub fn write_out(&mut self) -> io::Result<()> {
        if self.stage.is_empty() {
            return Ok(());
        }
        let w = &mut self.writer;
        if w.jobs.is_none() {
            self.file.write_all_at(&self.stage, self.staged_at as u64)?;
            self.staged_at += self.stage.len();
            self.stage.clear();
            return Ok(());
        }
        if w.in_flight >= IN_FLIGHT {
            w.collect_one()?;
        }
        let next = w.spare.pop().unwrap_or_else(|| Vec::with_capacity(STAGE_BYTES * 2));
        let full = std::mem::replace(&mut self.stage, next);
        let len = full.len();
        let jobs = w.jobs.as_ref().expect("checked above");
        jobs.send((full, self.staged_at as u64))
            .map_err(|_| io::Error::other("the ring's writer thread stopped"))?;
        w.in_flight += 1;
        self.staged_at += len;
        Ok(())
    }

    /// Writes out everything appended and waits for it: it is in the page
    /// cache (a killed process does not lose it), not yet synced.
    pub fn settle(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.writer.settle()
    }

    /// Writes out and makes everything durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.settle()?;
        if self.staged_at > self.synced {
            self.file.sync_data()?;
            self.synced = self.staged_at;
        }
        Ok(())
    }

    /// Bytes appended since the last sync.
    pub fn unsynced(&self) -> usize {
        self.pos() - self.synced
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
/// every valid one (with the file name and GTID of its unit filled in, when
/// the walk saw the unit start), and says where and why the walk stopped.
pub fn walk<'a>(
    bytes: &'a [u8],
    seq: u64,
    mut offset: usize,
    mut generation: u32,
    mut each: impl FnMut(&Record<'a>),
) -> (usize, WalkEnd) {
    let mut names: (&'a str, &'a str) = ("", "");
    let seed = record::seed(seq);
    loop {
        match record::parse_seeded(bytes, offset, seed) {
            Slot::Empty => return (offset, WalkEnd::Empty),
            Slot::Invalid(why) => return (offset, WalkEnd::Invalid(why)),
            Slot::Record(r) if r.generation < generation => return (offset, WalkEnd::Stale),
            Slot::Record(r) if r.is_segment_end() => return (offset, WalkEnd::SegmentEnd),
            Slot::Record(mut r) => {
                generation = r.generation;
                if r.meta.flags & record::UNIT_START != 0 {
                    names = (r.meta.file, r.meta.gtid);
                } else {
                    (r.meta.file, r.meta.gtid) = names;
                }
                each(&r);
                offset = r.next;
            }
        }
    }
}
