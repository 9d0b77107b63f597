//! Decoding one large file on several cores, for `--format jsonl`.
//!
//! A binlog can be cut at any transaction start (a GTID event): every
//! transaction sends the TABLE_MAP events its row events use again, and JSON
//! lines carry no state from one row to the next. So the file is cut into
//! chunks of a few MiB at GTID events, worker threads decode chunks into
//! buffers of their own, and the calling thread writes the buffers in file
//! order. The output is byte for byte what one thread would write.
//!
//! Cuts are found as workers ask for chunks, walking event headers from the
//! last cut, so no part of the file is touched long before it is decoded;
//! at most [`WINDOW`] chunks are decoded ahead of the writer. Together with
//! the pages released behind the writer this keeps memory bounded. A second
//! FORMAT_DESCRIPTION (relay logs) or a START_ENCRYPTION event ends the
//! cutting: the rest of the file is one chunk, decoded by one reader that
//! sees those events in order.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{mpsc, Condvar, Mutex};

use gapless_decoder::events::Decoder;
use gapless_decoder::header::{EventType, HEADER_LEN};
use gapless_decoder::{BinlogReader, EventData, FormatDescription};

use super::{FileJob, Outcome, Plan, RunError, TrxState};
use crate::render::jsonl::JsonlRender;
use crate::render::{Format, Render, RenderError};

/// Chunks decoded ahead of the writer, at most.
const WINDOW: usize = 4;

/// True when `bytes` is worth decoding in parallel under `plan`.
pub(super) fn applies(plan: &Plan, bytes: &[u8]) -> bool {
    plan.format == Format::Jsonl && plan.threads > 1 && bytes.len() >= 2 * plan.chunk_size
}

/// Finds chunk boundaries on demand.
struct Cutter<'b> {
    bytes: &'b [u8],
    /// Start of the next chunk (`bytes.len()` when all are handed out).
    start: usize,
    chunk_size: usize,
    /// Once false, the rest of the file is one chunk.
    cutting: bool,
}

impl Cutter<'_> {
    /// Type and size of the event at `pos`, when it is framed correctly.
    fn header(&self, pos: usize) -> Option<(u8, usize)> {
        let h = self.bytes.get(pos..pos + HEADER_LEN)?;
        let size = u32::from_le_bytes([h[9], h[10], h[11], h[12]]) as usize;
        (size >= HEADER_LEN && pos + size <= self.bytes.len()).then_some((h[4], size))
    }

    /// The next chunk: from the last cut to the first GTID event at least
    /// `chunk_size` further on (or to the end).
    fn next(&mut self) -> Option<(usize, usize)> {
        let start = self.start;
        if start >= self.bytes.len() {
            return None;
        }
        let mut end = self.bytes.len();
        if self.cutting {
            let mut pos = start;
            let first = start == 4;
            // Framing damage ends the walk: the rest is one chunk, whose
            // decoder reports it.
            while let Some((ty, size)) = self.header(pos) {
                match EventType(ty) {
                    EventType::FORMAT_DESCRIPTION if first && pos == 4 => {}
                    EventType::FORMAT_DESCRIPTION | EventType::MARIA_START_ENCRYPTION => {
                        self.cutting = false;
                        break;
                    }
                    EventType::GTID
                    | EventType::ANONYMOUS_GTID
                    | EventType::GTID_TAGGED
                    | EventType::MARIA_GTID
                        if pos >= start + self.chunk_size =>
                    {
                        end = pos;
                        break;
                    }
                    _ => {}
                }
                pos += size;
            }
        }
        self.start = end;
        Some((start, end))
    }
}

/// Which chunk a worker takes next, and how far the writer got.
struct Schedule<'b> {
    cutter: Cutter<'b>,
    /// Chunks handed out.
    taken: usize,
    /// Chunks written.
    written: usize,
    stop: bool,
}

/// Decodes one chunk into a buffer.
fn decode_chunk(
    job: &FileJob<'_>,
    bytes: &[u8],
    range: (usize, usize),
    decoder: Decoder,
) -> (Vec<u8>, Outcome) {
    let mut reader = BinlogReader::at(&bytes[..range.1], range.0, decoder);
    let mut render = JsonlRender::in_memory((range.1 - range.0).min(64 << 20) * 2);
    let mut outcome = job.decode(&mut reader, &mut render, &mut TrxState::default(), |_| {});
    if let Err(error) = render.finish() {
        outcome.error.get_or_insert(RunError::Render { file: job.shown.clone(), error });
    }
    (render.take_output(), outcome)
}

/// The file's FORMAT_DESCRIPTION, which every chunk after the first needs.
fn format_of(bytes: &[u8], decoder: Decoder) -> Option<FormatDescription> {
    match BinlogReader::at(bytes, 4, decoder).next()?.ok()?.data {
        EventData::FormatDescription(fd) => Some(fd),
        _ => None,
    }
}

/// Decodes `bytes` chunk by chunk on worker threads and writes the output
/// in order to `out`; `progress` hears the end of each chunk written.
pub(super) fn run(
    job: &FileJob<'_>,
    bytes: &[u8],
    out: &mut dyn Write,
    mut progress: impl FnMut(u64),
) -> Outcome {
    let plan = job.plan;
    let decoder = || Decoder::new().verify_checksums(plan.verify_checksums);
    // Should the FDE not decode, one chunk over the whole file reports it
    // the way the sequential path would.
    let Some(fde) = format_of(bytes, decoder()) else {
        let (buf, mut outcome) = decode_chunk(job, bytes, (4, bytes.len()), decoder());
        if let Err(e) = out.write_all(&buf) {
            outcome
                .error
                .get_or_insert(RunError::Render { file: job.shown.clone(), error: RenderError::Io(e) });
        }
        return outcome;
    };
    let cutter = Cutter { bytes, start: 4, chunk_size: plan.chunk_size, cutting: true };
    let schedule = Mutex::new(Schedule { cutter, taken: 0, written: 0, stop: false });
    let turn = Condvar::new();
    let (tx, rx) = mpsc::channel::<(usize, (usize, usize), Vec<u8>, Outcome)>();
    let mut total = Outcome::default();
    std::thread::scope(|scope| {
        for _ in 0..plan.threads {
            let tx = tx.clone();
            let (schedule, turn, fde, decoder) = (&schedule, &turn, &fde, &decoder);
            scope.spawn(move || loop {
                let (i, range) = {
                    let mut s = schedule.lock().unwrap_or_else(|p| p.into_inner());
                    while !s.stop && s.taken >= s.written + WINDOW {
                        s = turn.wait(s).unwrap_or_else(|p| p.into_inner());
                    }
                    if s.stop {
                        return;
                    }
                    let Some(range) = s.cutter.next() else { return };
                    s.taken += 1;
                    (s.taken - 1, range)
                };
                let mut d = decoder();
                if i > 0 {
                    d.set_format(fde.clone());
                }
                let (buf, outcome) = decode_chunk(job, bytes, range, d);
                if tx.send((i, range, buf, outcome)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut written = 0;
        for (i, range, buf, outcome) in rx {
            pending.insert(i, (range, buf, outcome));
            while let Some((range, buf, outcome)) = pending.remove(&written) {
                let failed = if let Err(e) = out.write_all(&buf) {
                    total.error =
                        Some(RunError::Render { file: job.shown.clone(), error: RenderError::Io(e) });
                    true
                } else {
                    total.report.add(&outcome.report);
                    total.notes.extend(outcome.notes);
                    total.error = outcome.error;
                    total.error.is_some()
                };
                written += 1;
                progress(range.1 as u64);
                let mut s = schedule.lock().unwrap_or_else(|p| p.into_inner());
                s.written = written;
                s.stop |= failed;
                turn.notify_all();
                if failed {
                    return;
                }
            }
        }
    });
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ty: EventType, body: usize) -> Vec<u8> {
        let size = (HEADER_LEN + body) as u32;
        let mut e = vec![0u8; HEADER_LEN + body];
        e[4] = ty.0;
        e[9..13].copy_from_slice(&size.to_le_bytes());
        e
    }

    fn file(events: &[(EventType, usize)]) -> Vec<u8> {
        let mut f = b"\xfebin".to_vec();
        for &(ty, body) in events {
            f.extend(event(ty, body));
        }
        f
    }

    fn cuts(bytes: &[u8], chunk: usize) -> Vec<(usize, usize)> {
        let mut c = Cutter { bytes, start: 4, chunk_size: chunk, cutting: true };
        std::iter::from_fn(|| c.next()).collect()
    }

    #[test]
    fn cuts_at_gtid_events_after_the_chunk_size() {
        let mut evs = vec![(EventType::FORMAT_DESCRIPTION, 81)];
        for _ in 0..10 {
            evs.extend([
                (EventType::MARIA_GTID, 19),
                (EventType::TABLE_MAP, 40),
                (EventType::WRITE_ROWS_V1, 60),
            ]);
        }
        let f = file(&evs);
        let c = cuts(&f, 300);
        assert!(c.len() > 2);
        assert_eq!(c.first().map(|r| r.0), Some(4));
        assert_eq!(c.last().map(|r| r.1), Some(f.len()));
        for w in c.windows(2) {
            assert_eq!(w[0].1, w[1].0, "chunks are contiguous");
            assert_eq!(f[w[1].0 + 4], EventType::MARIA_GTID.0, "each cut is at a GTID event");
        }
    }

    #[test]
    fn a_second_fde_ends_the_cutting() {
        let mut evs = vec![(EventType::FORMAT_DESCRIPTION, 81)];
        for i in 0..10 {
            evs.push((EventType::GTID, 40));
            evs.push((if i == 3 { EventType::FORMAT_DESCRIPTION } else { EventType::XID }, 80));
        }
        let f = file(&evs);
        let c = cuts(&f, 100);
        // Magic, FDE, three (GTID, XID) pairs, then the GTID before the FDE.
        let fde2 = 4 + 100 + 3 * (59 + 99) + 59;
        assert_eq!(f[fde2 + 4], EventType::FORMAT_DESCRIPTION.0);
        let last = c.last().expect("chunks");
        assert!(last.0 <= fde2 && last.1 == f.len(), "the second FDE is inside the last chunk: {c:?}");
        assert!(c.len() >= 2, "cuts before the second FDE still happen: {c:?}");
    }
}
