//! What the stream is doing, published for the status API.

use serde::Serialize;

use crate::ring::Coordinates;

/// The stream's state, as the status API shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreamStatus {
    /// The primary (host:port).
    pub source: String,
    /// Connected and streaming.
    pub connected: bool,
    /// The server id registered with.
    pub server_id: Option<u32>,
    /// The end of the last whole unit received.
    pub last_received: Option<Coordinates>,
    /// The primary's own binlog position, from its last heartbeat or event.
    pub primary_file: Option<String>,
    /// Position in `primary_file`.
    pub primary_position: Option<u64>,
    /// When the last event or heartbeat arrived (seconds since the epoch).
    pub last_contact: Option<u64>,
    /// Semi-sync ACKs were asked for (--semi-sync).
    pub semi_sync_requested: bool,
    /// The primary asks for ACKs on this connection.
    pub semi_sync_active: bool,
    /// Semi-sync ACKs sent.
    pub acks_sent: u64,
    /// Binlog events received.
    pub events: u64,
    /// Units (transactions and lone events) handed on.
    pub units: u64,
    /// Connections opened.
    pub connections: u64,
    /// The last error, while reconnecting or paused.
    pub last_error: Option<String>,
}

impl StreamStatus {
    /// Bytes the stream is behind the primary, when both are in the same
    /// file (otherwise unknown).
    pub fn lag_bytes(&self) -> Option<u64> {
        let last = self.last_received.as_ref()?;
        (self.primary_file.as_deref()? == last.file)
            .then(|| self.primary_position?.checked_sub(last.position))
            .flatten()
    }

    /// Seconds behind the primary: 0 when caught up, else the age of the
    /// last event received.
    pub fn lag_seconds(&self, now: u64) -> Option<u64> {
        if self.lag_bytes() == Some(0) {
            return Some(0);
        }
        let last = self.last_received.as_ref()?;
        Some(now.saturating_sub(u64::from(last.timestamp)))
    }
}
