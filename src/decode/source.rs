//! A binlog file mapped into memory, read once from front to back.

use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::{Advice, Mmap};

/// Pages are given back in steps of this size.
const RELEASE_STEP: u64 = 4 << 20;

/// A read-only map of a whole file.
pub struct MappedFile {
    map: Option<Mmap>,
    released: std::cell::Cell<u64>,
}

impl MappedFile {
    /// Maps `path` read-only.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            // mmap of an empty file fails; an empty file is simply empty.
            return Ok(MappedFile { map: None, released: std::cell::Cell::new(0) });
        }
        // SAFETY: the map is read-only. The server may still append to a
        // binlog it is writing, which leaves the mapped bytes unchanged; a
        // binlog is never rewritten in place. Truncating a file while it is
        // decoded would fault the process, as it would for mysqlbinlog
        // reading through the page cache; binlogs are not truncated by the
        // server, and `gapless decode` is documented to read closed files.
        let map = unsafe { Mmap::map(&file)? };
        let _ = map.advise(Advice::Sequential);
        Ok(MappedFile { map: Some(map), released: std::cell::Cell::new(0) })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// Tells the kernel the pages before `pos` are no longer needed, so the
    /// resident size stays small on multi-gigabyte files.
    pub fn release_before(&self, pos: u64) {
        let Some(map) = &self.map else { return };
        let done = self.released.get();
        if pos < done + 2 * RELEASE_STEP {
            return;
        }
        // Keep the last step mapped: the current event may begin there.
        let upto = (pos - RELEASE_STEP) / RELEASE_STEP * RELEASE_STEP;
        if upto <= done {
            return;
        }
        // SAFETY: MADV_DONTNEED on a private read-only file mapping drops the
        // pages; a later access re-reads them from the file, so no data the
        // program can see changes. Nothing holds references into the range:
        // the reader has moved past it and earlier events were dropped.
        let _ = unsafe {
            map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                done as usize,
                (upto - done) as usize,
            )
        };
        self.released.set(upto);
    }
}
