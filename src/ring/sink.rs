//! The stream's sink that stores units in the ring.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Published, RingConfig, RingError, RingStatus, RingWriter, SyncPolicy};
use crate::stream::{Received, ResumePoint, Sink, SinkError};

/// Stores each unit in the ring; durability as the ring's sync policy says,
/// and always before a semi-sync ACK.
pub struct RingSink {
    dir: PathBuf,
    config: RingConfig,
    writer: Option<RingWriter>,
    status: Arc<Published<RingStatus>>,
}

impl RingSink {
    /// Opens (recovering if needed) the ring in `dir`.
    pub fn open(dir: PathBuf, config: RingConfig) -> Result<RingSink, RingError> {
        let status = Arc::new(Published::new(RingStatus::default()));
        let writer = RingWriter::open_publishing(&dir, &config, Arc::clone(&status))?;
        Ok(RingSink { dir, config, writer: Some(writer), status })
    }

    /// The ring's writer (`None` only while reopening after an error).
    pub fn writer(&self) -> Option<&RingWriter> {
        self.writer.as_ref()
    }

    /// The ring's status, kept up to date across reopens.
    pub fn status(&self) -> Arc<Published<RingStatus>> {
        Arc::clone(&self.status)
    }

    fn writer_mut(&mut self) -> Result<&mut RingWriter, SinkError> {
        // Only after a failed reopen; the stream retries that.
        self.writer.as_mut().ok_or_else(|| {
            SinkError::Ring(RingError::Io {
                path: self.dir.clone(),
                action: "reopening",
                error: std::io::Error::other("the ring could not be reopened after an earlier error"),
            })
        })
    }

    /// Marks the status paused, and returns the error as a sink error.
    fn paused(&mut self, error: RingError) -> SinkError {
        let mut status = self.status.load();
        status.paused = Some(error.to_string());
        self.status.store(status);
        SinkError::Ring(error)
    }
}

impl Sink for RingSink {
    fn write(&mut self, unit: &[Received]) -> Result<(), SinkError> {
        let result = self.writer_mut()?.append(unit);
        result.map_err(|e| self.paused(e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let result = self.writer_mut()?.flush();
        result.map_err(|e| self.paused(e))
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        let result = self.writer_mut()?.sync();
        result.map_err(|e| self.paused(e))
    }

    fn flush_delay(&self) -> Duration {
        // Commits that arrived together share a sync; the next ones must
        // not wait for the stream to go quiet.
        match self.config.sync {
            SyncPolicy::Commit => Duration::ZERO,
            _ => crate::stream::IDLE_FLUSH,
        }
    }

    fn start(&mut self, from: &ResumePoint, by_gtid: bool) -> Result<(), SinkError> {
        let writer = self.writer_mut()?;
        if writer.recovery().empty && writer.resume_point().file.is_empty() {
            writer.start(from, by_gtid)?;
        }
        Ok(())
    }

    fn reopen(&mut self) -> Result<Option<ResumePoint>, SinkError> {
        // Dropping the writer releases the lock; opening again recovers
        // from what is on disk, whatever the failed write left.
        self.writer = None;
        let mut writer = RingWriter::open_publishing(&self.dir, &self.config, Arc::clone(&self.status))?;
        // Still no room for the next segment: stay paused.
        writer.ensure_room()?;
        let resume = writer.resume_point();
        self.writer = Some(writer);
        let mut status = self.status.load();
        status.paused = None;
        self.status.store(status);
        Ok(Some(resume))
    }
}
