//! Errors of the sans-IO core: bytes that are not the message they should
//! be, and errors the server reports.

use std::fmt;

use thiserror::Error;

/// A message that could not be decoded, or packets that arrive out of order.
///
/// Offsets count from the start of the packet payload, so a message can be
/// found again in a capture.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The payload ends before the field does.
    #[error("{what} truncated at byte {offset} of the packet ({needed} more bytes needed)")]
    Truncated { what: &'static str, offset: usize, needed: usize },
    /// The bytes are there but do not make sense as this field.
    #[error("invalid {what} at byte {offset} of the packet: {detail}")]
    Invalid { what: &'static str, offset: usize, detail: String },
    /// A packet carries the wrong sequence id: a frame was lost or the peer
    /// is not speaking this protocol.
    #[error("packet out of order: expected sequence id {expected}, got {got}")]
    OutOfOrder { expected: u8, got: u8 },
    /// A logical payload grew beyond the limit the caller set.
    #[error("packet of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// The server sent a message the current state does not allow.
    #[error("unexpected {what} (first byte 0x{first:02x}, {len} bytes)")]
    Unexpected { what: &'static str, first: u8, len: usize },
}

/// An ERR packet: the server refused something and said why.
///
/// Shown to the user as the server wrote it (`ERROR 1236 (HY000): …`), the
/// way the `mysql` client shows it, so it can be searched in the server's
/// documentation.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The server's error number (`ER_*`).
    pub code: u16,
    /// The five-character SQLSTATE, when the server sent one.
    pub sql_state: Option<String>,
    /// The server's message, lossily decoded as UTF-8.
    pub message: String,
}

impl ServerError {
    /// ER_MASTER_FATAL_ERROR_READING_BINLOG: the requested position or GTID
    /// is gone (purged) or is not a valid start point.
    pub const FATAL_READING_BINLOG: u16 = 1236;
    /// ER_ACCESS_DENIED_ERROR: wrong user or password.
    pub const ACCESS_DENIED: u16 = 1045;
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sql_state {
            Some(state) => write!(f, "ERROR {} ({}): {}", self.code, state, self.message),
            None => write!(f, "ERROR {}: {}", self.code, self.message),
        }
    }
}
