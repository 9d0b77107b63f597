//! The decoder's one error type.
//!
//! Every variant carries the absolute byte offset (from the start of the
//! binlog file or stream) where decoding failed, so a DBA can look at the
//! exact bytes with `xxd -s OFFSET`. The caller adds the file name.

use thiserror::Error;

/// Why decoding failed, and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The file does not start with `\xfebin`.
    #[error("not a binlog file: expected magic fe 62 69 6e at offset 0, found {found}")]
    BadMagic {
        /// The first bytes, in hex.
        found: String,
    },
    /// The input ended inside a field.
    #[error("truncated {what} at offset {offset}: need {needed} bytes, {available} left")]
    Truncated {
        /// Absolute offset of the field.
        offset: u64,
        /// Which field.
        what: &'static str,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes that were left.
        available: u64,
    },
    /// A field holds a value that cannot be right.
    #[error("invalid {what} at offset {offset}: {detail}")]
    Invalid {
        /// Absolute offset of the field.
        offset: u64,
        /// Which field.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The CRC32 stored in an event does not match its bytes.
    #[error("checksum mismatch in event at offset {offset}: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// Absolute offset of the event.
        offset: u64,
        /// The CRC32 the event carries.
        stored: u32,
        /// The CRC32 of its bytes.
        computed: u32,
    },
    /// A compressed event or transaction payload could not be inflated.
    #[error("cannot decompress {what} at offset {offset}: {detail}")]
    Decompress {
        /// Absolute offset of the event.
        offset: u64,
        /// Which kind of compressed data.
        what: &'static str,
        /// The decompressor's reason.
        detail: String,
    },
    /// A row event names a table id with no preceding TABLE_MAP event.
    #[error("row event at offset {offset} refers to table id {table_id}, which no TABLE_MAP event defined")]
    UnknownTable {
        /// Absolute offset of the row event.
        offset: u64,
        /// The table id it names.
        table_id: u64,
    },
    /// A value of a row could not be decoded: names the column and table,
    /// with a hint when the table's column types explain it.
    #[error("{source} (column {column} of {table}){hint}")]
    InColumn {
        /// The column's name or `@N`.
        column: String,
        /// `db.table`.
        table: String,
        /// Extra explanation, starting with "; " (or empty).
        hint: &'static str,
        /// The value-level error.
        source: Box<DecodeError>,
    },
    /// An error inside the body of an event: names the event and where it
    /// starts, then the field-level error.
    #[error("in {event_type} event at offset {offset}: {source}")]
    InEvent {
        /// Absolute offset of the event.
        offset: u64,
        /// The event's type name.
        event_type: &'static str,
        /// What went wrong inside it.
        source: Box<DecodeError>,
    },
}

impl DecodeError {
    /// Wraps an error found inside the event at `offset`.
    pub fn in_event(self, offset: u64, ty: crate::header::EventType) -> Self {
        match self {
            already @ DecodeError::InEvent { .. } => already,
            other => DecodeError::InEvent {
                offset,
                event_type: ty.name().unwrap_or("unknown"),
                source: Box::new(other),
            },
        }
    }

    /// The offset of the innermost field that failed.
    pub fn field_offset(&self) -> u64 {
        match self {
            DecodeError::InEvent { source, .. } | DecodeError::InColumn { source, .. } => {
                source.field_offset()
            }
            other => other.offset(),
        }
    }

    /// The absolute byte offset the error points at: the event's start for
    /// errors inside an event body (0 for bad magic).
    pub fn offset(&self) -> u64 {
        match self {
            DecodeError::BadMagic { .. } => 0,
            DecodeError::InEvent { offset, .. } => *offset,
            DecodeError::InColumn { source, .. } => source.offset(),
            DecodeError::Truncated { offset, .. }
            | DecodeError::Invalid { offset, .. }
            | DecodeError::Checksum { offset, .. }
            | DecodeError::Decompress { offset, .. }
            | DecodeError::UnknownTable { offset, .. } => *offset,
        }
    }
}

/// Result alias for the decoder.
pub type Result<T, E = DecodeError> = std::result::Result<T, E>;
