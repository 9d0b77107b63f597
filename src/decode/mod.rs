//! Offline decoding: read binlog files in order, keep the events the
//! filters select, hand them to a renderer.
//!
//! Files are memory-mapped and read front to back; pages already decoded
//! are given back to the kernel as the reader moves on, so memory stays
//! bounded whatever the file size.

mod filter;
mod parallel;
mod ring;
mod source;
mod trx;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use gapless_decoder::events::Decoder;
use gapless_decoder::{BinlogReader, DecodeError, EventData};
use thiserror::Error;

pub use filter::{trx_id, Filters, GtidFilter, TrxId};
pub use ring::run_ring;
use source::MappedFile;
pub use trx::TrxState;

use crate::render::{renderer, Context, Format, Options, Render, RenderError};

/// What to decode and how: a checked plan, built by the CLI.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Files, in the order the server wrote them.
    pub files: Vec<PathBuf>,
    /// Or a ring directory to decode instead.
    pub ring: Option<PathBuf>,
    /// Output format.
    pub format: Format,
    /// Format choices.
    pub options: Options,
    /// Which events to show.
    pub filters: Filters,
    /// Verify CRC32 checksums.
    pub verify_checksums: bool,
    /// Keep going past events that fail to decode.
    pub force: bool,
    /// Show a progress bar (stderr is a terminal and the input is large).
    pub progress: bool,
    /// Threads for `--format jsonl` on large files (1: no parallelism).
    pub threads: usize,
    /// Bytes per chunk when decoding in parallel.
    pub chunk_size: usize,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Events read (including filtered ones).
    pub events: u64,
    /// Events handed to the renderer.
    pub shown: u64,
    /// Bytes of binlog read.
    pub bytes: u64,
    /// Events skipped because they failed to decode (with `--force`).
    pub skipped: u64,
    /// Events of types this decoder does not know, by type code.
    pub unknown: BTreeMap<u8, u64>,
}

/// Why a run stopped.
#[derive(Debug, Error)]
pub enum RunError {
    /// A file could not be opened or mapped.
    #[error("{file}: {error}")]
    Open {
        /// The file.
        file: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The binlog is malformed at a known place.
    #[error("{file}: {error}")]
    Decode {
        /// The file.
        file: String,
        /// What and where.
        error: DecodeError,
    },
    /// The ring could not be read.
    #[error(transparent)]
    Ring(#[from] crate::ring::RingError),
    /// Output failed or an event cannot be shown in the format.
    #[error("{file}: {error}")]
    Render {
        /// The file.
        file: String,
        /// The renderer's error.
        error: RenderError,
    },
}

/// Something to tell the user on stderr, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// `--force` skipped an undecodable event.
    Skipped {
        /// Where the event starts.
        offset: u64,
        /// Why it could not be decoded.
        error: String,
    },
    /// An event type this decoder does not know.
    Unknown {
        /// The type code.
        code: u8,
        /// Where the event starts.
        offset: u64,
    },
}

/// One file being decoded: its name and the parts of the plan that apply
/// to it.
pub(crate) struct FileJob<'p> {
    plan: &'p Plan,
    /// The file name as the primary names it (no directory).
    name: String,
    /// The path as given, for messages.
    shown: String,
    /// Show events from here (first file only).
    start: Option<u64>,
    /// Stop before here (last file only).
    stop: Option<u64>,
}

/// What decoding a stretch of a file produced, besides its output.
#[derive(Default)]
pub(crate) struct Outcome {
    report: Report,
    notes: Vec<Note>,
    /// The error that ended the stretch early, if any.
    error: Option<RunError>,
}

impl FileJob<'_> {
    /// Decodes events from `reader` until the end of its data (or the stop
    /// position), handing the selected ones to `render`. Stops at the first
    /// error, which it records in the outcome.
    fn decode(
        &self,
        reader: &mut BinlogReader<'_>,
        render: &mut dyn Render,
        trx: &mut TrxState,
        mut on_event: impl FnMut(u64),
    ) -> Outcome {
        let mut out = Outcome::default();
        let plan = self.plan;
        loop {
            let pos = reader.position();
            let Some(next) = reader.next() else { break };
            let ev = match next {
                Ok(ev) => ev,
                Err(e) if plan.force && e.offset() >= pos && !is_framing(&e) => {
                    out.notes.push(Note::Skipped { offset: pos, error: e.to_string() });
                    out.report.skipped += 1;
                    continue;
                }
                Err(e) => {
                    out.error = Some(RunError::Decode { file: self.shown.clone(), error: e });
                    break;
                }
            };
            if self.step(&ev, render, trx, &mut out).is_break() {
                break;
            }
            on_event(reader.position());
        }
        out
    }

    /// Counts, filters and shows one event; breaks at the stop position or
    /// on an output error (recorded in `out`).
    fn step(
        &self,
        ev: &gapless_decoder::Event<'_>,
        render: &mut dyn Render,
        trx: &mut TrxState,
        out: &mut Outcome,
    ) -> std::ops::ControlFlow<()> {
        let plan = self.plan;
        out.report.events += 1;
        if self.stop.is_some_and(|stop| ev.offset >= stop && !ev.in_payload) {
            return std::ops::ControlFlow::Break(());
        }
        if let EventData::Unknown(_) = ev.data {
            let code = ev.header.event_type.0;
            *out.report.unknown.entry(code).or_insert(0) += 1;
            out.notes.push(Note::Unknown { code, offset: ev.offset });
        }
        trx.observe(ev);
        // Events before the start position are read (their table maps
        // and GTIDs are needed by what follows) but not shown.
        let is_fde = matches!(ev.data, EventData::FormatDescription(_));
        let before_start = self.start.is_some_and(|s| ev.offset < s) && !is_fde;
        if !before_start && plan.filters.selects(ev, trx.id()) {
            let cx = Context { file: &self.name, gtid: trx.gtid(), in_trx: Some(trx.in_trx()) };
            if let Err(e) = render.event(&cx, ev) {
                out.error = Some(RunError::Render { file: self.shown.clone(), error: e });
                return std::ops::ControlFlow::Break(());
            }
            out.report.shown += 1;
        }
        trx.after_event();
        std::ops::ControlFlow::Continue(())
    }
}

/// Prints notes in order; an unknown type is named once per run.
fn print_notes(shown: &str, notes: &[Note], seen_unknown: &mut std::collections::BTreeSet<u8>) {
    for note in notes {
        match note {
            Note::Skipped { offset, error } => {
                eprintln!("gapless: {shown}: skipping event at offset {offset}: {error}")
            }
            Note::Unknown { code, offset } => {
                if seen_unknown.insert(*code) {
                    eprintln!(
                        "gapless: {shown}: event type {code} at offset {offset} is unknown to this decoder; it is shown as an opaque event"
                    );
                }
            }
        }
    }
}

impl Report {
    fn add(&mut self, other: &Report) {
        self.events += other.events;
        self.shown += other.shown;
        self.skipped += other.skipped;
        for (code, n) in &other.unknown {
            *self.unknown.entry(*code).or_insert(0) += n;
        }
    }
}

/// Where rendered output goes.
enum Sink<'w> {
    /// One renderer for the whole run: text and SQL carry state from event
    /// to event (session settings, the default database).
    Shared(Box<dyn Render + 'w>),
    /// JSON lines carry none, so each file (or each chunk of one, decoded
    /// in parallel) gets its own renderer.
    PerFile(&'w mut dyn Write),
}

/// Decodes every file of the plan into `out`.
pub fn run(plan: &Plan, out: &mut dyn Write) -> Result<Report, RunError> {
    let mut report = Report::default();
    let mut seen_unknown = std::collections::BTreeSet::new();
    let total: u64 = plan.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = plan.progress.then(|| progress_bar(total));
    let last = plan.files.len().saturating_sub(1);
    let mut trx = TrxState::default();
    let mut sink = match plan.format {
        Format::Jsonl => Sink::PerFile(out),
        _ => Sink::Shared(renderer(plan.format, plan.options, Box::new(out))),
    };
    for (n, path) in plan.files.iter().enumerate() {
        let job = FileJob {
            plan,
            name: path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            shown: path.display().to_string(),
            start: if n == 0 { plan.filters.start_position } else { None },
            stop: if n == last { plan.filters.stop_position } else { None },
        };
        let file =
            MappedFile::open(path).map_err(|error| RunError::Open { file: job.shown.clone(), error })?;
        let decoder = Decoder::new().verify_checksums(plan.verify_checksums);
        let mut reader = BinlogReader::new(file.bytes(), decoder)
            .map_err(|error| RunError::Decode { file: job.shown.clone(), error })?;
        let done_before = report.bytes;
        let progress = |done: u64| {
            file.release_before(done);
            if let Some(bar) = &bar {
                bar.set_position(done_before + done);
            }
        };
        let outcome = match &mut sink {
            Sink::Shared(render) => job.decode(&mut reader, render.as_mut(), &mut trx, progress),
            Sink::PerFile(out) if parallel::applies(plan, file.bytes()) => {
                parallel::run(&job, file.bytes(), &mut **out, progress)
            }
            Sink::PerFile(out) => {
                let mut render = renderer(plan.format, plan.options, Box::new(&mut **out));
                let mut outcome = job.decode(&mut reader, render.as_mut(), &mut trx, progress);
                if let Err(error) = render.finish() {
                    outcome.error.get_or_insert(RunError::Render { file: job.shown.clone(), error });
                }
                outcome
            }
        };
        print_notes(&job.shown, &outcome.notes, &mut seen_unknown);
        report.add(&outcome.report);
        if let Some(e) = outcome.error {
            if let Sink::Shared(render) = &mut sink {
                let _ = render.finish();
            }
            return Err(e);
        }
        report.bytes += file.len();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Sink::Shared(render) = &mut sink {
        render.finish().map_err(|error| RunError::Render { file: String::from("output"), error })?;
    }
    Ok(report)
}

/// Framing errors leave the reader unable to find the next event.
fn is_framing(e: &DecodeError) -> bool {
    matches!(e, DecodeError::Truncated { what, .. } if what.starts_with("event"))
        || matches!(e, DecodeError::Invalid { what: "event size", .. })
        || matches!(e, DecodeError::BadMagic { .. })
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
