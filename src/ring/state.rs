//! The ring's small state file: its settings and the last checkpoint.
//!
//! Written whole to a temporary file, synced, and renamed over the old one,
//! so a crash leaves either the old or the new state, never a mix.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The format version this code writes and reads.
pub const VERSION: u32 = 1;

/// The state file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// Bytes per segment file.
    pub segment_bytes: u64,
    /// Segment files the ring may use, the spare included.
    pub max_segments: u64,
    /// The generation of the last writer run.
    pub generation: u32,
    /// The primary streamed into this ring (host:port), for messages.
    #[serde(default)]
    pub source: String,
    /// The stream resumes by GTID rather than by file and position.
    #[serde(default)]
    pub by_gtid: bool,
    /// A place where a complete unit ends, and the resume point there.
    pub checkpoint: Option<Checkpoint>,
}

/// A unit boundary known to be on disk, and where the stream resumes there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Segment sequence number.
    pub seq: u64,
    /// Offset in the segment where the next record goes.
    pub offset: u64,
    /// The generation of the writer when the checkpoint was taken.
    pub generation: u32,
    /// Binlog file and position to resume at.
    pub file: String,
    /// Position in `file`.
    pub position: u64,
    /// MariaDB GTID position (`0-1-42,1-2-7`), or "".
    pub maria: String,
    /// MySQL executed GTID set, or "".
    pub mysql: String,
}

/// The state file of a ring directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Reads the state; `None` when there is no state file.
pub fn read(dir: &Path) -> io::Result<Option<State>> {
    let path = path(dir);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let state: State = serde_json::from_slice(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
    if state.version != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: ring format version {}, this gapless reads {VERSION}",
                path.display(),
                state.version
            ),
        ));
    }
    Ok(Some(state))
}

/// Replaces the state file atomically and durably.
pub fn write(dir: &Path, state: &State) -> io::Result<()> {
    let tmp = dir.join("state.json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    let mut text = serde_json::to_vec_pretty(state).map_err(io::Error::other)?;
    text.push(b'\n');
    file.write_all(&text)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path(dir))?;
    super::segment::sync_dir(dir)
}
