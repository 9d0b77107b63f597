//! Replays every fuzz input in the tree, `fuzz/corpus/<target>/*` and
//! `fuzz/regressions/<target>/*`, through the invariants the fuzz targets
//! assert (`gapless_decoder::fuzzing`, `gapless_protocol::fuzzing`,
//! `gapless::ring::fuzzing`, `gapless::api::fuzzing`), so
//! that `cargo test` on stable runs them. A missing or empty corpus
//! directory is a failure, not a skip.
//!
//! A regression whose bug is not fixed yet is listed in [`OPEN`]: it must
//! still break its invariant, so that the fix shows up here (as "now
//! passes") and the entry gets removed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use gapless::api::fuzzing::check_request;
use gapless::render::fuzzing::{check_jsonl, check_sql};
use gapless::ring::fuzzing::check_recovery;
use gapless_decoder::fuzzing::{check_events, check_json, check_rows};
use gapless_protocol::fuzzing::{check_joined_frames, check_packets};

const TARGETS: [&str; 8] = [
    "event_decoder",
    "row_decoder",
    "json_binary",
    "packet_codec",
    "ring_recovery",
    "api_request",
    "jsonl_render",
    "sql_render",
];

/// Regressions of bugs not fixed yet (`target/file`), each with the start of
/// the panic message it must still produce.
const OPEN: &[(&str, &str)] = &[];

/// The JSON parser the fuzz targets use (`gapless_fuzz::serde_json_parses`).
fn serde_json_parses(text: &str) -> Result<(), String> {
    serde_json::from_str::<serde_json::Value>(text).map(drop).map_err(|e| e.to_string())
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())).path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The corpus of `target` (which must exist and hold files) and its
/// regressions (optional: only crashes found so far are there).
fn inputs(target: &str) -> Vec<PathBuf> {
    let corpus = fuzz_dir().join("corpus").join(target);
    assert!(
        corpus.is_dir(),
        "fuzz corpus {} is missing (regenerate it with fuzz/make_seeds.py)",
        corpus.display()
    );
    let mut files = files_in(&corpus);
    assert!(!files.is_empty(), "fuzz corpus {} is empty", corpus.display());
    let regressions = fuzz_dir().join("regressions").join(target);
    if regressions.is_dir() {
        files.extend(files_in(&regressions));
    }
    files
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    let files = inputs(target);
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&data))).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        });
        let open = OPEN.iter().find(|(file, _)| path.ends_with(Path::new("regressions").join(file)));
        match (outcome, open) {
            (Ok(()), None) => {}
            (Err(msg), None) => failures.push(format!("{}: {msg}", path.display())),
            (Err(msg), Some((_, expected))) if msg.starts_with(expected) => {}
            (Err(msg), Some((_, expected))) => failures
                .push(format!("{}: open regression, expected {expected:?}, got: {msg}", path.display())),
            (Ok(()), Some(_)) => {
                failures.push(format!("{}: now passes; remove it from OPEN", path.display()))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs break an invariant:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn event_decoder_inputs() {
    replay("event_decoder", |data| check_events(data, serde_json_parses));
}

#[test]
fn row_decoder_inputs() {
    replay("row_decoder", |data| check_rows(data, serde_json_parses));
}

#[test]
fn json_binary_inputs() {
    replay("json_binary", |data| check_json(data, serde_json_parses));
}

/// Inputs starting with `ff ff ff` are also read in the joined-frames
/// layout (a 16 MiB first frame), which the fuzz target leaves out for speed.
#[test]
fn packet_codec_inputs() {
    replay("packet_codec", |data| {
        check_packets(data);
        if data.starts_with(&[0xff; 3]) {
            check_joined_frames(data);
        }
    });
}

/// Each input damages a freshly written ring in a scratch directory.
#[test]
fn ring_recovery_inputs() {
    replay("ring_recovery", check_recovery);
}

/// Requests to the sidecar's API, head and body.
#[test]
fn api_request_inputs() {
    replay("api_request", check_request);
}

/// Mutated binlogs rendered as JSON lines; the seeds hold rows, so lines
/// are rendered and checked, not only events refused.
#[test]
fn jsonl_render_inputs() {
    let lines = std::cell::Cell::new(0);
    replay("jsonl_render", |data| lines.set(lines.get() + check_jsonl(data)));
    assert!(lines.get() > 100, "the jsonl_render corpus rendered only {} lines", lines.get());
}

/// Mutated binlogs rendered as SQL; the seeds hold rows, so statements are
/// rendered and checked, not only events refused.
#[test]
fn sql_render_inputs() {
    let rows = std::cell::Cell::new(0);
    replay("sql_render", |data| rows.set(rows.get() + check_sql(data)));
    assert!(rows.get() > 25, "the sql_render corpus rendered only {} row statements", rows.get());
}

/// Every open regression is a file that exists.
#[test]
fn open_regressions_exist() {
    for (file, _) in OPEN {
        let path = fuzz_dir().join("regressions").join(file);
        assert!(path.is_file(), "OPEN names {}, which is not there", path.display());
    }
}

/// A directory under fuzz/regressions/ that names no target would never be
/// replayed.
#[test]
fn regression_directories_name_targets() {
    let dir = fuzz_dir().join("regressions");
    if !dir.is_dir() {
        return;
    }
    for entry in std::fs::read_dir(&dir).expect("readable fuzz/regressions") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            path.is_dir() && TARGETS.contains(&name),
            "{} is not a fuzz target's directory ({TARGETS:?})",
            path.display()
        );
    }
}
