//! What the three `*-values` programs share: the command line, the input
//! files (memory-mapped, pages released behind the reader so resident memory
//! does not grow with the file, as `gapless decode` does) and the report
//! line.
//!
//! Every program prints exactly one line on stdout:
//!
//! ```text
//! files=N bytes=N rows=N values=N
//! ```
//!
//! - `bytes`: total size of the input files;
//! - `rows`: changed rows (an UPDATE's before and after images are one row);
//! - `values`: column values decoded, NULLs included, summed over every image
//!   (an UPDATE row of a 4-column table with full images counts 8). Columns
//!   absent from an image (`binlog_row_image=MINIMAL`) are not counted.
//!
//! With the same files the three programs must print the same `rows` and
//! `values`; `benches/compare.sh` checks that.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, UncheckedAdvice};

/// Pages are given back in steps of this size (as in gapless's MappedFile).
const RELEASE_STEP: usize = 16 << 20;

/// What a run counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Files read.
    pub files: u64,
    /// Bytes in those files.
    pub bytes: u64,
    /// Changed rows.
    pub rows: u64,
    /// Values decoded (NULLs included).
    pub values: u64,
}

impl Counts {
    /// Prints the report line.
    pub fn print(&self) {
        println!("files={} bytes={} rows={} values={}", self.files, self.bytes, self.rows, self.values);
    }
}

/// Parsed command line: the files and the flags a program accepts.
pub struct Args {
    /// Input files, in order.
    pub files: Vec<PathBuf>,
    /// Flags given (only those listed as accepted).
    pub flags: Vec<String>,
}

/// Reads the command line: `PROGRAM [FLAG...] FILE...`. Prints `usage` and
/// exits 0 on `--help`, exits 2 on a bad command line.
pub fn args(usage: &str, accepted_flags: &[&str]) -> Args {
    let mut files = Vec::new();
    let mut flags = Vec::new();
    for a in std::env::args_os().skip(1) {
        let s = a.to_string_lossy();
        if s == "-h" || s == "--help" {
            print!("{usage}");
            std::process::exit(0);
        } else if s.starts_with("--") {
            if !accepted_flags.contains(&s.as_ref()) {
                eprintln!("unknown flag {s}\n\n{usage}");
                std::process::exit(2);
            }
            flags.push(s.into_owned());
        } else {
            files.push(PathBuf::from(a));
        }
    }
    if files.is_empty() {
        eprint!("no input file\n\n{usage}");
        std::process::exit(2);
    }
    Args { files, flags }
}

/// Prints `error` naming the file and exits 1 (after printing what was
/// counted so far, to stderr).
pub fn fail(file: &Path, counts: &Counts, error: impl std::fmt::Display) -> ! {
    eprintln!("{}: {error} (after rows={} values={})", file.display(), counts.rows, counts.values);
    std::process::exit(1);
}

/// A whole file mapped read-only.
pub struct Input {
    map: Option<Mmap>,
    released: Cell<usize>,
}

impl Input {
    /// Maps `path`.
    pub fn open(path: &Path) -> io::Result<Input> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Input { map: None, released: Cell::new(0) });
        }
        // SAFETY: read-only map of a closed binlog that nothing rewrites
        // while the bench runs.
        let map = unsafe { Mmap::map(&file)? };
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Input { map: Some(map), released: Cell::new(0) })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Gives the pages before `pos` (less one step) back to the kernel.
    pub fn release_before(&self, pos: usize) {
        let Some(map) = &self.map else { return };
        let done = self.released.get();
        if pos < done + 2 * RELEASE_STEP {
            return;
        }
        let upto = (pos - RELEASE_STEP) / RELEASE_STEP * RELEASE_STEP;
        if upto <= done {
            return;
        }
        // SAFETY: MADV_DONTNEED on a private read-only file mapping only drops
        // pages; a later access reads them again from the file. The readers
        // have moved past this range.
        let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, done, upto - done) };
        self.released.set(upto);
    }
}
