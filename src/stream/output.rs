//! Where streamed units go: rendered (text, JSON lines, SQL) or raw.

use std::collections::BTreeMap;
use std::io::{self, IoSlice, Write};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use gapless_decoder::{Decoder, PayloadEvents};

use super::tracker::{Received, ResumePoint};
use crate::render::{Context, Render, RenderError};

/// Receives whole units (a non-transactional event or a complete
/// transaction) in binlog order.
pub trait Sink {
    /// Takes the events of one whole unit.
    fn write(&mut self, unit: &[Received]) -> Result<(), SinkError>;
    /// Writes out what was written so far, as durably as the sink is set up
    /// to; called when the stream pauses.
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Makes everything written so far durable now; a semi-sync ACK is sent
    /// only after this returns.
    fn sync(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
    /// How long the stream may be quiet before [`flush`](Self::flush) is
    /// called.
    fn flush_delay(&self) -> Duration {
        super::IDLE_FLUSH
    }
    /// A new stream starts at `from` (the sink may record it).
    fn start(&mut self, from: &ResumePoint, by_gtid: bool) -> Result<(), SinkError> {
        let _ = (from, by_gtid);
        Ok(())
    }
    /// After a write failed with an error for which
    /// [`SinkError::is_transient`] holds: get ready to take units again, and
    /// say where the stream must resume (what the sink holds), or `None` to
    /// resume where it was.
    fn reopen(&mut self) -> Result<Option<ResumePoint>, SinkError> {
        Ok(None)
    }
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
    /// The ring failed.
    #[error(transparent)]
    Ring(#[from] crate::ring::RingError),
}

impl SinkError {
    /// The ring's disk is full or failing: the stream pauses and tries
    /// again, nothing stored is damaged.
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Ring(e) if e.is_io())
    }
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

    /// A sink for units whose checksums were verified as they arrived (the
    /// [`Tracker`](super::Tracker) checks every event it hands on): it does
    /// not check them again.
    pub fn verified(render: Box<dyn Render + 'w>) -> Self {
        RenderSink { decoder: Decoder::new().verify_checksums(false), ..RenderSink::new(render) }
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
///
/// The events are not copied: they are kept by reference (the bytes the
/// socket read) and written with one vectored write per batch.
pub struct RawSink<W: Write> {
    out: W,
    started: bool,
    pending: Vec<Bytes>,
    pending_bytes: usize,
}

/// Bytes of events gathered before they are written.
const RAW_BATCH_BYTES: usize = 1 << 20;
/// Events gathered before they are written: Linux takes at most 1024
/// buffers in one vectored write (IOV_MAX).
const RAW_BATCH_EVENTS: usize = 1024;

impl<W: Write> RawSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        RawSink { out, started: false, pending: Vec::new(), pending_bytes: 0 }
    }

    /// Writes the gathered events. They are let go of first: after a failed
    /// write nothing is tried again, so no byte is written twice.
    fn write_pending(&mut self) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let mut slices: Vec<IoSlice<'_>> = pending.iter().map(|b| IoSlice::new(b)).collect();
        let written = write_all_vectored(&mut self.out, &mut slices);
        drop(slices);
        // The vector's room is kept for the next batch.
        pending.clear();
        self.pending = pending;
        written
    }
}

/// Writes every byte of `slices`, retrying after partial writes.
fn write_all_vectored(out: &mut impl Write, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl<W: Write> Sink for RawSink<W> {
    fn write(&mut self, units: &[Received]) -> Result<(), SinkError> {
        if !self.started {
            self.pending.push(Bytes::from_static(&gapless_decoder::header::BINLOG_MAGIC));
            self.started = true;
        }
        for r in units.iter().filter(|r| !r.resent) {
            self.pending.push(r.bytes.clone());
            self.pending_bytes += r.bytes.len();
            if self.pending.len() >= RAW_BATCH_EVENTS || self.pending_bytes >= RAW_BATCH_BYTES {
                self.write_pending()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.write_pending()?;
        Ok(self.out.flush()?)
    }
}

impl<W: Write> Drop for RawSink<W> {
    /// What was received is written out, as a buffered writer would: the
    /// units are whole, so the output stays a binlog that stops at a unit's
    /// end.
    fn drop(&mut self) {
        let _ = self.write_pending();
    }
}

/// JSON lines rendered on several threads.
///
/// Whole units are gathered into batches of about [`BATCH_BYTES`]; each
/// batch goes to a worker with its own decoder (a unit carries the table
/// maps its rows need, and JSON lines carry no state from one row to the
/// next), and the rendered batches are written in stream order. The
/// FORMAT_DESCRIPTION in force is sent in front of every batch, marked as
/// resent so it is decoded but not shown.
pub struct ParallelJsonlSink<W: Write> {
    out: W,
    jobs: Option<mpsc::SyncSender<(u64, Vec<Received>)>>,
    done: mpsc::Receiver<(u64, Result<Vec<u8>, SinkError>)>,
    workers: Vec<std::thread::JoinHandle<()>>,
    batch: Vec<Received>,
    batch_bytes: usize,
    /// The FORMAT_DESCRIPTION in force now, and at the start of the batch.
    fde: Option<Received>,
    batch_fde: Option<Received>,
    sent: u64,
    written: u64,
    ready: BTreeMap<u64, Vec<u8>>,
}

/// Bytes of events per batch.
pub const BATCH_BYTES: usize = 1 << 20;

impl<W: Write> ParallelJsonlSink<W> {
    /// A sink rendering on `threads` worker threads.
    pub fn new(out: W, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, job_rx) = mpsc::sync_channel::<(u64, Vec<Received>)>(threads);
        let (done_tx, done) = mpsc::channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
                std::thread::spawn(move || {
                    // One decoder and renderer per worker, kept from batch to
                    // batch (table maps are sent again in every unit).
                    let render = crate::render::jsonl::JsonlRender::in_memory(2 * BATCH_BYTES);
                    let mut sink = RenderSink::verified(Box::new(render));
                    loop {
                        let job = job_rx.lock().map(|rx| rx.recv());
                        let Ok(Ok((seq, units))) = job else { return };
                        let result = sink.write(&units).map(|()| sink.render.take_output());
                        if done_tx.send((seq, result)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        ParallelJsonlSink {
            out,
            jobs: Some(jobs),
            done,
            workers,
            batch: Vec::new(),
            batch_bytes: 0,
            fde: None,
            batch_fde: None,
            sent: 0,
            written: 0,
            ready: BTreeMap::new(),
        }
    }

    /// Hands the gathered batch to the workers, writing out finished ones
    /// while too many are in flight.
    fn dispatch(&mut self) -> Result<(), SinkError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut units = Vec::with_capacity(self.batch.len() + 1);
        units.extend(self.batch_fde.take());
        units.append(&mut self.batch);
        self.batch_bytes = 0;
        while self.sent - self.written >= 2 * self.workers.len() as u64 {
            self.collect_one()?;
        }
        let jobs = self.jobs.as_ref().expect("open until drop");
        jobs.send((self.sent, units)).map_err(|_| worker_gone())?;
        self.sent += 1;
        Ok(())
    }

    /// Waits for one rendered batch and writes out what is now in order.
    fn collect_one(&mut self) -> Result<(), SinkError> {
        let (seq, result) = self.done.recv().map_err(|_| worker_gone())?;
        self.ready.insert(seq, result?);
        while let Some(bytes) = self.ready.remove(&self.written) {
            self.out.write_all(&bytes)?;
            self.written += 1;
        }
        Ok(())
    }
}

fn worker_gone() -> SinkError {
    SinkError::Io(io::Error::other("a rendering thread stopped"))
}

/// An in-memory output that a renderer writes to while its owner keeps a
/// handle to take the bytes out.
#[derive(Default, Clone)]
pub struct SharedBuf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl SharedBuf {
    /// The bytes written so far; the buffer is empty afterwards.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

impl Write for SharedBuf {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Sink for ParallelJsonlSink<W> {
    fn write(&mut self, units: &[Received]) -> Result<(), SinkError> {
        if self.batch.is_empty() {
            self.batch_fde = self.fde.clone();
        }
        for r in units {
            if r.bytes.get(4) == Some(&gapless_decoder::EventType::FORMAT_DESCRIPTION.0) {
                self.fde = Some(Received { resent: true, ..r.clone() });
            }
            self.batch_bytes += r.bytes.len();
        }
        self.batch.extend_from_slice(units);
        if self.batch_bytes >= BATCH_BYTES {
            self.dispatch()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.dispatch()?;
        while self.written < self.sent {
            self.collect_one()?;
        }
        Ok(self.out.flush()?)
    }
}

impl<W: Write> Drop for ParallelJsonlSink<W> {
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose `take` decides, from the call's number (from 1) and
    /// the bytes offered, how many it takes or how it fails.
    struct Scripted {
        out: Vec<u8>,
        calls: usize,
        take: fn(usize, usize) -> io::Result<usize>,
    }

    impl Scripted {
        fn new(take: fn(usize, usize) -> io::Result<usize>) -> Self {
            Scripted { out: Vec::new(), calls: 0, take }
        }
    }

    impl Write for Scripted {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            let n = (self.take)(self.calls, bytes.len())?.min(bytes.len());
            self.out.extend_from_slice(&bytes[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn received(bytes: Vec<u8>, resent: bool) -> Received {
        Received {
            bytes: Bytes::from(bytes),
            file: Arc::from("bin.000001"),
            offset: 4,
            end: 4,
            gtid: None,
            resent,
            crc32: false,
        }
    }

    #[test]
    fn raw_sink_writes_magic_and_events_in_order_but_not_resent_ones() {
        // At most 7 bytes per call, and every third call interrupted: every
        // partial and retried write.
        let mut sink = RawSink::new(Scripted::new(|call, offered| match call % 3 {
            0 => Err(io::ErrorKind::Interrupted.into()),
            _ => Ok(offered.min(7)),
        }));
        let mut expected = gapless_decoder::header::BINLOG_MAGIC.to_vec();
        // More events than one vectored write takes, of many sizes (empty too).
        for i in 0..3000usize {
            let event: Vec<u8> = (0..i % 50).map(|k| (i + k) as u8).collect();
            let resent = i % 100 == 1;
            if !resent {
                expected.extend_from_slice(&event);
            }
            sink.write(&[received(event, resent)]).unwrap();
        }
        sink.flush().unwrap();
        assert_eq!(sink.out.out, expected);
    }

    #[test]
    fn raw_sink_never_writes_a_byte_twice_after_a_failed_write() {
        // 5 bytes, then a disk that filled up, then room again.
        let mut out = Scripted::new(|call, offered| match call {
            1 => Ok(offered.min(5)),
            2 => Err(io::ErrorKind::StorageFull.into()),
            _ => Ok(offered),
        });
        {
            let mut sink = RawSink::new(&mut out);
            sink.write(&[received(b"abcdef".to_vec(), false)]).unwrap();
            assert!(sink.flush().is_err());
            // Dropped here: nothing is tried again.
        }
        // What got out before the failure, and nothing after it.
        assert_eq!(out.calls, 2);
        assert!(b"\xfebinabcdef".starts_with(&out.out), "{:?}", out.out);
    }

    #[test]
    fn raw_sink_writes_what_it_holds_when_dropped() {
        let mut out = Vec::new();
        {
            let mut sink = RawSink::new(&mut out);
            sink.write(&[received(b"abc".to_vec(), false)]).unwrap();
        }
        assert_eq!(out, [&gapless_decoder::header::BINLOG_MAGIC[..], b"abc"].concat());
    }
}
