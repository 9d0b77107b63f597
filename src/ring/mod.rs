//! The ring: the primary's recent binlog, kept on local disk in a bounded
//! set of memory-mapped segment files, crash-safe.
//!
//! Each event received is one record (see [`record`]) holding the event
//! bytes exactly as the primary sent them, with their binlog coordinates,
//! GTID and unit boundaries. One writer appends ([`RingWriter`]); any
//! number of readers, in this process or others, read at the same time
//! without locks ([`RingReader`]): they only trust records whose checksum
//! and framing verify, and only hand out whole units.
//!
//! A directory holds `seg-<seq>.ring` files of a fixed size, their sparse
//! indexes (`seg-<seq>.idx`, written when a segment fills) and
//! `state.json` (settings and the last checkpoint). When the ring is full,
//! the oldest segment file is reused for the next segment.

pub mod fuzzing;
pub mod index;
pub mod made_up;
mod reader;
pub mod record;
mod resume;
pub mod segment;
mod sink;
pub mod state;
mod status;
mod writer;

use std::path::PathBuf;

pub use reader::{Location, RingReader, Unit};
pub use resume::advance;
pub use sink::RingSink;
pub use status::{Coordinates, Published, RingStatus};
pub use writer::{RingConfig, RingWriter, SyncPolicy};

/// What went wrong with a ring.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// A file operation failed (a full disk among them).
    #[error("ring {path}: {action}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The error.
        error: std::io::Error,
    },
    /// Records that should be valid are not: damage inside the ring, not a
    /// torn tail. Never skipped over.
    #[error("ring segment {path} is damaged at offset {offset}: {detail}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Where in it.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The writer reused a segment while it was being read.
    #[error(
        "ring segment {path} was reused for newer events while being read: \
         the ring no longer holds what came before {file}:{position}"
    )]
    Overwritten {
        /// The segment file.
        path: PathBuf,
        /// The coordinates reached.
        file: String,
        /// Position in `file`.
        position: u64,
    },
    /// Another gapless process writes this ring.
    #[error("ring {0}: another gapless process is writing this ring (its lock is held)")]
    Locked(PathBuf),
    /// A settings or contents conflict.
    #[error("ring {path}: {detail}")]
    Invalid {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl RingError {
    /// The error is about the disk (full, failing), and writing may work
    /// again later; nothing stored is damaged by it.
    pub fn is_io(&self) -> bool {
        matches!(self, RingError::Io { .. })
    }

    /// An `Io` error for `path`, made only when there is an error (the
    /// path is not copied on the success path, which is hot).
    fn io<P: AsRef<std::path::Path>>(
        path: P,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> RingError {
        move |error| RingError::Io { path: path.as_ref().to_path_buf(), action, error }
    }
}

#[cfg(test)]
mod tests;
