//! Output formats of `gapless decode`: `text` (like `mysqlbinlog -v`),
//! `jsonl` (one object per changed row, the contract in docs/jsonl.md) and
//! `sql` (statements that redo the changes).

mod block;
pub mod fuzzing;
pub mod jsonl;
pub mod sql;
pub mod text;
pub mod value;

use std::io;

use gapless_decoder::{DecodeError, Event};
use thiserror::Error;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable, close to `mysqlbinlog -v`.
    Text,
    /// JSON lines.
    Jsonl,
    /// Executable SQL.
    Sql,
}

/// What a renderer knows about the event besides the event itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'c> {
    /// The binlog file name (no directory), as a primary names it.
    pub file: &'c str,
    /// The GTID of the transaction the event belongs to, if any.
    pub gtid: Option<&'c str>,
    /// Whether a BEGIN..COMMIT is open after this event, when the caller
    /// tracks transactions.
    pub in_trx: Option<bool>,
}

/// Why rendering failed.
#[derive(Debug, Error)]
pub enum RenderError {
    /// Writing the output failed (e.g. a closed pipe).
    #[error("writing output: {0}")]
    Io(#[from] io::Error),
    /// A row inside the event could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The event cannot be expressed in this format.
    #[error("event at offset {offset}: {reason}")]
    Unrepresentable {
        /// The event's position.
        offset: u64,
        /// Why.
        reason: String,
    },
}

/// An output format.
pub trait Render {
    /// Writes whatever the format shows for `event`.
    fn event(&mut self, cx: &Context<'_>, event: &Event<'_>) -> Result<(), RenderError>;
    /// Writes out everything buffered; called at the end.
    fn finish(&mut self) -> Result<(), RenderError>;
    /// Writes out everything buffered so far, e.g. after each transaction
    /// of a live stream. No renderer keeps end-of-output state, so this is
    /// the same as [`finish`](Render::finish).
    fn flush(&mut self) -> Result<(), RenderError> {
        self.finish()
    }
    /// The output kept in memory so far, for a renderer made to keep it
    /// (e.g. [`jsonl::JsonlRender::in_memory`]); empty for the others,
    /// which write everything to their output.
    fn take_output(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// Choices that change what a format writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// SQL: set each transaction's original GTID (like mysqlbinlog).
    pub keep_gtids: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { keep_gtids: true }
    }
}

/// A renderer for `format` writing to `out`.
pub fn renderer<'w>(format: Format, options: Options, out: Box<dyn io::Write + 'w>) -> Box<dyn Render + 'w> {
    match format {
        Format::Text => Box::new(text::TextRender::new(out)),
        Format::Jsonl => Box::new(jsonl::JsonlRender::new(out)),
        Format::Sql => Box::new(sql::SqlRender::new(out, options.keep_gtids).with_row_session()),
    }
}
