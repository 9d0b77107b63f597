//! Offline decoding: read binlog files in order, keep the events the
//! filters select, hand them to a renderer.
//!
//! Files are memory-mapped and read front to back; pages already decoded
//! are given back to the kernel as the reader moves on, so memory stays
//! bounded whatever the file size.

mod filter;
mod source;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use gapless_decoder::events::{Decoder, QueryEvent};
use gapless_decoder::{BinlogReader, DecodeError, Event, EventData};
use thiserror::Error;

pub use filter::{trx_id, Filters, GtidFilter, TrxId};
use source::MappedFile;

use crate::render::{renderer, Context, Format, Options, RenderError};

/// What to decode and how: a checked plan, built by the CLI.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Files, in the order the server wrote them.
    pub files: Vec<PathBuf>,
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
    /// Output failed or an event cannot be shown in the format.
    #[error("{file}: {error}")]
    Render {
        /// The file.
        file: String,
        /// The renderer's error.
        error: RenderError,
    },
}

/// Tracks which transaction (GTID) the current event belongs to.
#[derive(Debug, Default)]
struct TrxState {
    id: Option<TrxId>,
    gtid: Option<String>,
    in_trx: bool,
    /// Clear the GTID after the current event was shown.
    ends_here: bool,
}

impl TrxState {
    fn observe(&mut self, ev: &Event<'_>) {
        self.ends_here = false;
        match &ev.data {
            EventData::Gtid(_) => {
                self.set(trx_id(ev));
                self.in_trx = false;
            }
            EventData::MariaGtid(g) => {
                self.set(trx_id(ev));
                self.in_trx = !g.is_standalone();
            }
            EventData::Query(q) => self.query(q),
            EventData::Xid(_) | EventData::XaPrepare(_) => {
                self.in_trx = false;
                self.ends_here = true;
            }
            _ => {}
        }
    }

    fn set(&mut self, id: Option<TrxId>) {
        self.gtid = id.as_ref().map(ToString::to_string);
        self.id = id;
    }

    fn query(&mut self, q: &QueryEvent<'_>) {
        let text = q.query.as_ref();
        let is = |word: &[u8]| text.len() >= word.len() && text[..word.len()].eq_ignore_ascii_case(word);
        if is(b"BEGIN") || is(b"XA START") {
            self.in_trx = true;
        } else if is(b"COMMIT") || is(b"ROLLBACK") || is(b"XA END") || !self.in_trx {
            self.in_trx = false;
            self.ends_here = true;
        }
    }

    fn after_event(&mut self) {
        if self.ends_here {
            self.set(None);
            self.ends_here = false;
        }
    }
}

/// Decodes every file of the plan into `out`.
pub fn run(plan: &Plan, out: &mut dyn Write) -> Result<Report, RunError> {
    let mut report = Report::default();
    let mut render = renderer(plan.format, plan.options, Box::new(out));
    let total: u64 = plan.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let bar = plan.progress.then(|| progress_bar(total));
    let last = plan.files.len().saturating_sub(1);
    let mut trx = TrxState::default();
    for (n, path) in plan.files.iter().enumerate() {
        let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let shown_name = path.display().to_string();
        let file = MappedFile::open(path)
            .map_err(|source| RunError::Open { file: shown_name.clone(), error: source })?;
        let decode_err = |source| RunError::Decode { file: shown_name.clone(), error: source };
        let decoder = Decoder::new().verify_checksums(plan.verify_checksums);
        let mut reader = BinlogReader::new(file.bytes(), decoder).map_err(decode_err)?;
        let start = if n == 0 { plan.filters.start_position } else { None };
        let stop = if n == last { plan.filters.stop_position } else { None };
        loop {
            let pos = reader.position();
            let Some(next) = reader.next() else { break };
            let ev = match next {
                Ok(ev) => ev,
                Err(e) if plan.force && e.offset() >= pos && !is_framing(&e) => {
                    eprintln!("gapless: {shown_name}: skipping event at offset {pos}: {e}");
                    report.skipped += 1;
                    continue;
                }
                Err(e) => return Err(decode_err(e)),
            };
            report.events += 1;
            let is_fde = matches!(ev.data, EventData::FormatDescription(_));
            if let Some(stop) = stop {
                if ev.offset >= stop && !ev.in_payload {
                    break;
                }
            }
            if let EventData::Unknown(_) = ev.data {
                let code = ev.header.event_type.0;
                let count = report.unknown.entry(code).or_insert(0);
                if *count == 0 {
                    eprintln!(
                        "gapless: {shown_name}: event type {code} at offset {} is unknown to this decoder; it is shown as an opaque event",
                        ev.offset
                    );
                }
                *count += 1;
            }
            trx.observe(&ev);
            // Events before the start position are read (their table maps
            // and GTIDs are needed by what follows) but not shown.
            let before_start = start.is_some_and(|s| ev.offset < s) && !is_fde;
            if !before_start && plan.filters.selects(&ev, trx.id.as_ref()) {
                let cx = Context { file: &name, gtid: trx.gtid.as_deref(), in_trx: Some(trx.in_trx) };
                render
                    .event(&cx, &ev)
                    .map_err(|source| RunError::Render { file: shown_name.clone(), error: source })?;
                report.shown += 1;
            }
            trx.after_event();
            let done = reader.position();
            file.release_before(done);
            if let Some(bar) = &bar {
                bar.set_position(report.bytes + done);
            }
        }
        report.bytes += file.len();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    render.finish().map_err(|source| RunError::Render { file: String::from("output"), error: source })?;
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
