//! `gapless decode --ring DIR`: what a ring holds, with the same filters
//! and formats as for files.
//!
//! The ring holds the events of several binlog files; each event is decoded
//! at its original position. `--start-position` applies to the first file
//! the ring holds and `--stop-position` to the last, as with a list of
//! files. Copies of the FORMAT_DESCRIPTION that the ring keeps at the start
//! of each segment are decoded (they say how to read what follows) but not
//! shown.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use gapless_decoder::events::Decoder;
use gapless_decoder::PayloadEvents;

use super::{print_notes, FileJob, Outcome, Plan, Report, RunError, TrxState};
use crate::render::renderer;
use crate::ring::record::RESENT;
use crate::ring::RingReader;

/// Decodes the units a ring holds into `out`.
pub fn run_ring(plan: &Plan, dir: &Path, out: &mut dyn Write) -> Result<Report, RunError> {
    let reader = RingReader::open(dir)?;
    let first_file = reader.first().map(|s| s.file.clone());
    let last_file = reader.last().map(|e| e.file.clone());
    let mut decoder = Decoder::new().verify_checksums(plan.verify_checksums);
    let mut payload = PayloadEvents::default();
    let mut render = renderer(plan.format, plan.options, Box::new(out));
    let mut trx = TrxState::default();
    let mut report = Report::default();
    let mut seen_unknown = BTreeSet::new();
    let mut job: Option<FileJob<'_>> = None;
    let mut result = Ok(());
    'units: for unit in reader.units(reader.start()) {
        let unit = match unit {
            Ok(unit) => unit,
            Err(e) => {
                result = Err(RunError::Ring(e));
                break;
            }
        };
        for r in &unit.records {
            let file = r.meta.file;
            let same_file = matches!(&job, Some(j) if j.name == file);
            if !same_file {
                job = Some(FileJob {
                    plan,
                    name: file.to_string(),
                    shown: format!("{} ({file})", dir.display()),
                    start: plan.filters.start_position.filter(|_| first_file.as_deref() == Some(file)),
                    stop: plan.filters.stop_position.filter(|_| last_file.as_deref() == Some(file)),
                });
            }
            let job = job.as_ref().expect("set above");
            report.bytes += r.event.len() as u64;
            let mut outcome = Outcome::default();
            let ev = match decoder.decode(r.meta.start, r.event) {
                Ok(ev) => ev,
                Err(e) if plan.force && r.meta.flags & RESENT == 0 => {
                    outcome.notes.push(super::Note::Skipped { offset: r.meta.start, error: e.to_string() });
                    outcome.report.skipped += 1;
                    finish(job, outcome, &mut report, &mut seen_unknown)?;
                    continue;
                }
                Err(error) => {
                    result = Err(RunError::Decode { file: job.shown.clone(), error });
                    break 'units;
                }
            };
            if r.meta.flags & RESENT != 0 {
                continue;
            }
            let mut stop = job.step(&ev, render.as_mut(), &mut trx, &mut outcome).is_break();
            // MySQL's compressed transactions: the events inside, too.
            match payload.load(&ev) {
                Ok(true) => {
                    while let Some(inner) = payload.next(&mut decoder) {
                        match inner {
                            Ok(inner) if !stop => {
                                stop = job.step(&inner, render.as_mut(), &mut trx, &mut outcome).is_break()
                            }
                            Ok(_) => {}
                            Err(error) => {
                                outcome
                                    .error
                                    .get_or_insert(RunError::Decode { file: job.shown.clone(), error });
                                break;
                            }
                        }
                    }
                }
                Ok(false) => {}
                Err(error) => {
                    outcome.error.get_or_insert(RunError::Decode { file: job.shown.clone(), error });
                }
            }
            if let Err(e) = finish(job, outcome, &mut report, &mut seen_unknown) {
                result = Err(e);
                break 'units;
            }
            if stop {
                break 'units;
            }
        }
    }
    let finished = render.finish().map_err(|error| RunError::Render { file: String::from("output"), error });
    result?;
    finished?;
    Ok(report)
}

/// Adds an event's outcome to the report and prints its notes; its error
/// ends the run.
fn finish(
    job: &FileJob<'_>,
    outcome: Outcome,
    report: &mut Report,
    seen_unknown: &mut BTreeSet<u8>,
) -> Result<(), RunError> {
    print_notes(&job.shown, &outcome.notes, seen_unknown);
    report.add(&outcome.report);
    outcome.error.map_or(Ok(()), Err)
}
