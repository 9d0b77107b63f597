//! JSON lines and SQL rendered from mutated binlogs (fuzz targets
//! `jsonl_render` and `sql_render`), kept here so that `cargo test` replays
//! the corpora through the same code.
//!
//! The input layout is that of the decoder's `event_decoder` target: input
//! that starts with the binlog magic is a whole file; any other input is a
//! selector byte (which FORMAT_DESCRIPTION goes in front) and events. The
//! file is read without checksum verification, so mutated bodies reach the
//! renderer.
//!
//! Invariants: no panic; every line the renderer writes is one complete
//! JSON object, even when an event fails to render part-way (the lines
//! before the failure stay whole, nothing half-written is left).

use gapless_decoder::fuzzing::format_prefix;
use gapless_decoder::{BinlogReader, Decoder, EventData};

use super::jsonl::JsonlRender;
use super::sql::{GeneratedColumns, SharedGenerated, SqlRender};
use super::{Context, Render};

/// The binlog file of an input: a whole file, or a FORMAT_DESCRIPTION
/// chosen by the first byte and the events after it.
fn binlog_of(data: &[u8]) -> Option<Vec<u8>> {
    if data.starts_with(&gapless_decoder::header::BINLOG_MAGIC) {
        return Some(data.to_vec());
    }
    let (&selector, events) = data.split_first()?;
    let mut file = format_prefix(selector);
    file.extend_from_slice(events);
    Some(file)
}

/// Renders every event of `data` that decodes and checks each line;
/// returns how many lines there were.
pub fn check_jsonl(data: &[u8]) -> usize {
    let Some(file) = binlog_of(data) else { return 0 };
    let Ok(mut reader) = BinlogReader::new(&file, Decoder::new().verify_checksums(false)) else { return 0 };
    let mut render = JsonlRender::in_memory(0);
    let cx = Context { file: "fuzz-bin.000001", gtid: Some("0-1-1"), in_trx: None };
    while let Some(Ok(event)) = reader.next() {
        // A row that fails to decode ends the event; what came before it
        // must still be whole lines.
        let _ = render.event(&cx, &event);
    }
    let out = render.take_output();
    assert!(out.is_empty() || out.ends_with(b"\n"), "the output ends inside a line");
    let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    for line in &lines {
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(other) => panic!("a line is not an object: {other}"),
            Err(e) => panic!("a line is not JSON ({e}): {}", String::from_utf8_lossy(line)),
        }
    }
    lines.len()
}

/// Renders every event of `data` that decodes as SQL, the way replay
/// does (multi-row INSERTs, row settings, the second column of every table
/// taken as generated), and checks what each row event became; returns
/// how many row statements there were.
///
/// Invariants: no panic; a row event becomes, besides the SET of the row
/// settings, statements that start with INSERT, UPDATE or DELETE, end with
/// `;` and a line break, and close every quote and backquote they open:
/// no value can end its literal early. A line break inside a literal or a
/// quoted name (a column named with one) is fine; values escape theirs.
pub fn check_sql(data: &[u8]) -> usize {
    let Some(file) = binlog_of(data) else { return 0 };
    let Ok(mut reader) = BinlogReader::new(&file, Decoder::new().verify_checksums(false)) else { return 0 };
    let out = crate::stream::SharedBuf::default();
    let generated = SharedGenerated::default();
    let mut render = SqlRender::new(out.clone(), true)
        .with_multi_row_inserts()
        .with_row_session()
        .with_generated_columns(generated.clone());
    let cx = Context { file: "fuzz-bin.000001", gtid: Some("0-1-1"), in_trx: None };
    let mut rows = 0;
    while let Some(Ok(event)) = reader.next() {
        if let EventData::TableMap(t) = &event.data {
            let second = t.columns.get(1).and_then(|c| c.name.as_deref()).unwrap_or("");
            generated
                .borrow_mut()
                .insert((t.schema.clone(), t.table.clone()), GeneratedColumns::new([(second, 1)]));
        }
        let _ = render.event(&cx, &event);
        let text = String::from_utf8(out.take()).expect("SQL is UTF-8");
        if !matches!(event.data, EventData::Rows(_)) {
            continue;
        }
        let (statements, closed) = statements_of(&text);
        assert!(closed, "a row statement leaves a quote open: {text}");
        for statement in statements {
            if statement.starts_with("SET @@session.sql_mode=") {
                continue;
            }
            assert!(
                ["INSERT INTO ", "UPDATE ", "DELETE FROM "].iter().any(|s| statement.starts_with(s)),
                "a row event made a line that is no row statement: {statement}"
            );
            assert!(statement.ends_with(';'), "a row statement does not end with ';': {statement}");
            rows += 1;
        }
    }
    rows
}

/// `sql` cut at the line breaks outside '…' and `…` (strings take
/// backslash escapes, names double their backquotes), and whether every
/// quote was closed at the end.
fn statements_of(sql: &str) -> (Vec<&str>, bool) {
    let mut statements = Vec::new();
    let mut open: Option<char> = None;
    let mut start = 0;
    let mut chars = sql.char_indices();
    while let Some((i, c)) = chars.next() {
        match (open, c) {
            (Some('\''), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => open = None,
            (None, '\'' | '`') => open = Some(c),
            (None, '\n') => {
                statements.push(&sql[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < sql.len() {
        statements.push(&sql[start..]);
    }
    (statements, open.is_none())
}
