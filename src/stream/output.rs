//! Where streamed units go: rendered (text, JSON lines, SQL) or raw.

use std::io::{self, Write};

use gapless_decoder::{Decoder, PayloadEvents};

use super::tracker::Received;
use crate::render::{Context, Render, RenderError};

/// Receives whole units (a non-transactional event or a complete
/// transaction) in binlog order.
pub trait Sink {
    /// Takes the events of one or more whole units.
    fn write(&mut self, units: &[Received]) -> Result<(), SinkError>;
    /// Makes everything written so far durable (written out, flushed); a
    /// semi-sync ACK is sent only after this returns.
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Rendering or writing an event failed.
    #[error("event at {file}:{offset}: {error}")]
    Render {
        /// Binlog file of the event.
        file: String,
        /// Its position.
        offset: u64,
        /// What failed.
        error: RenderError,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Io(#[from] io::Error),
}

/// Decodes units and hands them to a renderer.
pub struct RenderSink<'w> {
    decoder: Decoder,
    payload: PayloadEvents,
    render: Box<dyn Render + 'w>,
}

impl<'w> RenderSink<'w> {
    /// A sink writing through `render`.
    pub fn new(render: Box<dyn Render + 'w>) -> Self {
        RenderSink { decoder: Decoder::new(), payload: PayloadEvents::default(), render }
    }
}

impl Sink for RenderSink<'_> {
    fn write(&mut self, units: &[Received]) -> Result<(), SinkError> {
        for r in units {
            let fail =
                |error: RenderError| SinkError::Render { file: r.file.to_string(), offset: r.offset, error };
            let cx = Context { file: &r.file, gtid: r.gtid.as_deref(), in_trx: None };
            let ev = self.decoder.decode(r.offset, &r.bytes).map_err(|e| fail(e.into()))?;
            if r.resent {
                continue;
            }
            self.render.event(&cx, &ev).map_err(fail)?;
            // MySQL's compressed transactions: show the events inside too.
            if self.payload.load(&ev).map_err(|e| fail(e.into()))? {
                while let Some(inner) = self.payload.next(&mut self.decoder) {
                    let inner = inner.map_err(|e| fail(e.into()))?;
                    self.render.event(&cx, &inner).map_err(fail)?;
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.render.flush().map_err(|error| match error {
            RenderError::Io(e) => SinkError::Io(e),
            error => SinkError::Render { file: String::new(), offset: 0, error },
        })
    }
}

/// Writes the events as received: the binlog magic, then event after event
/// (a valid binlog file as long as the stream stays in one file).
pub struct RawSink<W: Write> {
    out: W,
    started: bool,
}

impl<W: Write> RawSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        RawSink { out, started: false }
    }
}

impl<W: Write> Sink for RawSink<W> {
    fn write(&mut self, units: &[Received]) -> Result<(), SinkError> {
        if !self.started {
            self.out.write_all(&gapless_decoder::header::BINLOG_MAGIC)?;
            self.started = true;
        }
        for r in units.iter().filter(|r| !r.resent) {
            self.out.write_all(&r.bytes)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}
