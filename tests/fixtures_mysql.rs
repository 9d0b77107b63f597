//! Every public MySQL/MariaDB binlog in ../shared/fixtures/mysql decodes:
//! every event, every row, in every output format. The deliberately broken
//! files fail with the right error at the right offset.

mod common;

use std::path::Path;

use gapless::render::{renderer, Context, Format, Options};
use gapless_decoder::{BinlogReader, DecodeError, Decoder, EventData};

/// Files that must fail, with the offset the error must name and a word
/// the message must contain.
const BROKEN: &[(&str, u64, &str)] = &[
    ("rust_mysql_common/binlog_truncated_event.000001", 4, "truncated"),
    ("rust_mysql_common/binlog_truncated_prev_gtid_event.000001", 120, "truncated"),
    ("canal/tsdb/mysql-bin.000001", 0, "magic"),
    // A QUERY event whose status block claims more bytes than the event has.
    ("rust_mysql_common/corrupt-relay-bin.000624", 91204, "status vars"),
    // MariaDB 10.0 TIMESTAMP(3) in the pre-5.6 format: the binlog does not
    // record its width, so the row cannot be framed (INDEX.md, hard case).
    ("tiflow/mysql-bin.000001", 1819, "truncated"),
];

#[derive(Default, Debug)]
struct Tally {
    events: usize,
    rows: usize,
    unknown: usize,
    payload_events: usize,
}

/// Decodes a whole file through all three renderers.
fn decode_all(bytes: &[u8], file: &str) -> Result<Tally, DecodeError> {
    let mut t = Tally::default();
    let mut reader = BinlogReader::new(bytes, Decoder::new())?;
    let mut renderers: Vec<_> = [Format::Text, Format::Jsonl, Format::Sql]
        .into_iter()
        .map(|f| renderer(f, Options::default(), Box::new(std::io::sink())))
        .collect();
    while let Some(ev) = reader.next() {
        let ev = ev?;
        t.events += 1;
        t.payload_events += usize::from(ev.in_payload);
        match &ev.data {
            EventData::Rows(rows) => {
                for row in rows.rows()? {
                    row?;
                    t.rows += 1;
                }
            }
            EventData::Unknown(_) => t.unknown += 1,
            _ => {}
        }
        let cx = Context { file, gtid: None, in_trx: None };
        for r in &mut renderers {
            match r.event(&cx, &ev) {
                Ok(()) => {}
                Err(gapless::render::RenderError::Decode(e)) => return Err(e),
                // SQL cannot express UPDATE without column names; that is
                // a property of the file, not a decoding failure.
                Err(gapless::render::RenderError::Unrepresentable { .. }) => {}
                Err(e) => panic!("{file}: render failed: {e}"),
            }
        }
    }
    Ok(t)
}

fn relative(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/")
}

#[test]
fn every_public_fixture_decodes_or_fails_where_expected() {
    let Some(root) = common::shared_fixtures() else { return };
    let mut failures = Vec::new();
    let mut decoded = 0;
    let mut total_rows = 0;
    for path in common::walk(&root).into_iter().filter(|p| common::is_binlog(p)) {
        let rel = relative(&root, &path);
        let bytes = common::read_binlog(&path);
        let result = decode_all(&bytes, &rel);
        match (BROKEN.iter().find(|(f, _, _)| *f == rel), result) {
            (None, Ok(t)) => {
                decoded += 1;
                total_rows += t.rows;
            }
            (None, Err(e)) => failures.push(format!("{rel}: unexpected error: {e}")),
            (Some((_, off, word)), Err(e)) => {
                if e.offset() != *off || !e.to_string().to_lowercase().contains(word) {
                    failures.push(format!("{rel}: expected an error at {off} mentioning {word:?}, got: {e}"));
                }
            }
            (Some(_), Ok(t)) => failures.push(format!("{rel}: expected an error, decoded {t:?}")),
        }
    }
    assert!(failures.is_empty(), "fixture failures:\n{}", failures.join("\n"));
    assert!(decoded > 80, "only {decoded} fixture files decoded");
    assert!(total_rows > 1000, "only {total_rows} rows decoded");
}
