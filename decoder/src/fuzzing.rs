//! Invariants the fuzz targets assert, kept in the crate so that the fuzz
//! targets (`fuzz/fuzz_targets/`) and the corpus replay test
//! (`tests/run_all_fuzz_files.rs`) run the very same checks.
//!
//! Each `check_*` function takes arbitrary bytes, decodes them and panics
//! when an invariant breaks; any input that decodes *or* fails with a
//! well-formed error passes. Not part of the public API.
//!
//! The decoder has no JSON parser among its dependencies, so the caller
//! passes one ([`JsonParser`]): rendered JSON must parse with it.

use std::sync::Arc;

use crate::checksum;
use crate::cursor::Cursor;
use crate::error::DecodeError;
use crate::events::rows::{Row, RowsEvent, RowsKind};
use crate::events::table_map::TableMap;
use crate::events::{Decoder, Event, EventData};
use crate::header::{EventType, BINLOG_MAGIC, HEADER_LEN};
use crate::reader::BinlogReader;
use crate::values::json;
use crate::values::Value;

/// Parses JSON text: `Ok` when it is valid JSON, else the parser's message.
/// The fuzz targets and the replay test pass `serde_json`.
pub type JsonParser = fn(&str) -> Result<(), String>;

/// Rendered JSON is at most this many times longer than its binary form,
/// plus [`JSON_EXPANSION_SLACK`] (the worst real case is a `\u00XX` escape:
/// 6 characters per byte). Values that share bytes, which could blow up
/// exponentially, must be refused instead.
pub const JSON_EXPANSION: usize = 16;
/// Constant part of the rendering bound (`null` for an empty input).
pub const JSON_EXPANSION_SLACK: usize = 16;

/// FORMAT_DESCRIPTION events that [`check_events`] puts in front of inputs
/// that do not start with the binlog magic, chosen by the input's first
/// byte (`& 3`): the version, and whether it has a checksum field (and then
/// says CRC32).
pub const FORMATS: [(&str, bool); 4] =
    [("5.7.30-log", true), ("8.0.40", true), ("10.11.6-MariaDB-log", true), ("5.1.73-log", false)];

/// Post-header lengths of the types every v4 server knows (1..=26), as
/// MySQL 5.1+ and MariaDB write them.
const POST_HEADERS_5_1: [u8; 26] =
    [56, 13, 0, 8, 0, 18, 0, 4, 4, 4, 4, 18, 0, 0, 83, 0, 4, 26, 8, 0, 0, 0, 8, 8, 8, 2];

/// The post-header lengths of the FDE for [`FORMATS`]`[i]`, copied from real
/// FDEs: 5.7.30 (38 types), 8.0.40 (41), MariaDB 10.5.15 (171; 10.11 writes
/// the same table) and 5.1.34 (26).
fn post_header_lengths(i: usize) -> Vec<u8> {
    let mut v = POST_HEADERS_5_1.to_vec();
    match i {
        0 => v.extend([0, 0, 0, 10, 10, 10, 42, 42, 0, 18, 52, 0]),
        1 => {
            // 8.0 zeroes the types it no longer writes.
            v = vec![0, 13, 0, 8, 0, 0, 0, 0, 4, 0, 4, 0, 0, 0, 98, 0, 4, 26, 8, 0, 0, 0, 8, 8, 8, 2];
            v.extend([0, 0, 0, 10, 10, 10, 42, 42, 0, 18, 52, 0, 10, 40, 0]);
        }
        2 => {
            v.extend([0, 0, 0, 10, 10, 10]);
            v.resize(160, 0);
            v.extend([4, 19, 4, 0, 13, 8, 8, 8, 10, 10, 10]);
        }
        _ => {}
    }
    v
}

/// The bytes of a binlog file holding only the FORMAT_DESCRIPTION
/// [`FORMATS`]`[selector & 3]` (with a valid CRC where it has one).
pub fn format_prefix(selector: u8) -> Vec<u8> {
    let i = usize::from(selector & 3);
    let (version, has_checksum) = FORMATS[i];
    let mut body = 4u16.to_le_bytes().to_vec();
    let mut v = version.as_bytes().to_vec();
    v.resize(50, 0);
    body.extend(v);
    body.extend(0u32.to_le_bytes()); // created
    body.push(HEADER_LEN as u8);
    body.extend(post_header_lengths(i));
    if has_checksum {
        body.push(1); // CRC32
    }
    let size = HEADER_LEN + body.len() + if has_checksum { 4 } else { 0 };
    let mut event = Vec::with_capacity(size);
    event.extend(0u32.to_le_bytes()); // timestamp
    event.push(EventType::FORMAT_DESCRIPTION.0);
    event.extend(1u32.to_le_bytes()); // server id
    event.extend((size as u32).to_le_bytes());
    event.extend((4 + size as u32).to_le_bytes()); // end position
    event.extend(0u16.to_le_bytes()); // flags
    event.extend(body);
    if has_checksum {
        checksum::append(&mut event);
    }
    let mut file = BINLOG_MAGIC.to_vec();
    file.extend(event);
    file
}

/// Event decoding (fuzz target `event_decoder`).
///
/// Input that starts with the binlog magic is a whole file, read twice:
/// with checksum verification (the default) and without it, so that
/// mutated bodies are decoded too. Any other input is a selector byte and
/// events: the selector picks a FORMAT_DESCRIPTION from [`FORMATS`], which
/// is put in front of the rest, read without checksum verification.
///
/// Invariants: no panic; every error's `offset()` is a position in the file
/// (its end included); decoded events lie inside the file and their `raw`
/// bytes are `event_size` long; the rows of every row event are iterated to
/// the end, each image holding exactly `column_count` cells; JSON values
/// render to valid JSON or fail leaving the output untouched.
pub fn check_events(data: &[u8], parse_json: JsonParser) {
    if data.starts_with(&BINLOG_MAGIC) {
        read_file(data, Decoder::new(), parse_json);
        read_file(data, Decoder::new().verify_checksums(false), parse_json);
        return;
    }
    match BinlogReader::new(data, Decoder::new()) {
        Err(e @ DecodeError::BadMagic { .. }) => assert_eq!(e.offset(), 0),
        other => panic!("input without the magic was accepted: {other:?}"),
    }
    let Some((&selector, events)) = data.split_first() else { return };
    let mut file = format_prefix(selector);
    file.extend_from_slice(events);
    read_file(&file, Decoder::new().verify_checksums(false), parse_json);
}

fn read_file(file: &[u8], decoder: Decoder, parse_json: JsonParser) {
    let len = file.len() as u64;
    let mut reader = match BinlogReader::new(file, decoder) {
        Ok(reader) => reader,
        Err(e) => return check_error(&e, len, "opening the file"),
    };
    while let Some(next) = reader.next() {
        match next {
            Ok(event) => check_event(&event, len, parse_json),
            Err(e) => check_error(&e, len, "reading an event"),
        }
    }
}

fn check_error(e: &DecodeError, len: u64, context: &str) {
    assert!(e.offset() <= len, "{context}: error offset {} is outside the {len}-byte input: {e}", e.offset());
    // Formatting walks the nested errors.
    let _ = e.to_string();
}

fn check_event(event: &Event<'_>, len: u64, parse_json: JsonParser) {
    assert_eq!(event.raw.len(), event.header.event_size as usize, "raw bytes of {:?}", event.header);
    assert!(
        event.offset < event.end_offset && event.end_offset <= len,
        "event at {}..{} outside the {len}-byte input",
        event.offset,
        event.end_offset
    );
    if !event.in_payload {
        assert_eq!(event.end_offset - event.offset, event.raw.len() as u64, "event size and positions");
    }
    match &event.data {
        EventData::Rows(rows) => {
            // Offsets inside inflated bytes (MariaDB compressed rows, or
            // any event of a transaction payload) are not file positions.
            let inflated = event.in_payload || RowsKind::of(event.header.event_type).is_some_and(|k| k.2);
            check_rows_event(rows, len, !inflated, parse_json)
        }
        EventData::TableMap(map) => check_table_map(map),
        EventData::PreviousGtids(set) => {
            let _ = set.to_string();
        }
        EventData::MariaGtidList(list) => {
            for gtid in list {
                let _ = gtid.to_string();
            }
        }
        EventData::Gtid(gtid) => {
            if let Some(g) = gtid.gtid() {
                let _ = g.to_string();
            }
        }
        EventData::Query(q) | EventData::ExecuteLoadQuery { query: q, .. } => {
            let _ = q.query_text();
        }
        _ => {}
    }
}

fn check_table_map(map: &TableMap) {
    for i in 0..map.columns.len() {
        let _ = map.column_label(i);
    }
}

/// Iterates every row of `rows`, checking each image and value. With
/// `field_offsets`, the innermost offset of a row error must lie in the
/// input too (true when no byte was inflated: every cursor is then based
/// on positions in the input).
fn check_rows_event(rows: &RowsEvent<'_>, len: u64, field_offsets: bool, parse_json: JsonParser) {
    let check = |e: &DecodeError| {
        check_error(e, len, "decoding rows");
        if field_offsets {
            assert!(
                e.field_offset() <= len,
                "field offset {} outside the {len}-byte input: {e}",
                e.field_offset()
            );
        }
    };
    let iter = match rows.rows() {
        Ok(iter) => iter,
        Err(e) => return check(&e),
    };
    // Every row takes at least one byte (a NULL bitmap byte, since some
    // column must be in the image), so the iterator must end after at most
    // one row per byte; a row that takes no bytes would repeat for ever.
    let limit = rows.rows.len();
    for (i, row) in iter.enumerate() {
        assert!(
            i < limit,
            "row iterator yielded more than {limit} rows from {limit} bytes of row data \
             ({:?} v{} event at {}, {} columns, columns bitmap {:02x?})",
            rows.kind,
            rows.version,
            rows.event_offset,
            rows.column_count,
            rows.present
        );
        match row {
            Ok(row) => check_row(rows, &row, parse_json),
            Err(e) => check(&e),
        }
    }
}

fn check_row(rows: &RowsEvent<'_>, row: &Row<'_>, parse_json: JsonParser) {
    let n = rows.column_count;
    let expect = |has: bool| if has { n } else { 0 };
    assert_eq!(
        row.before.len(),
        expect(rows.kind.has_before()),
        "before image cells of a {:?} row",
        rows.kind
    );
    assert_eq!(row.after.len(), expect(rows.kind.has_after()), "after image cells of a {:?} row", rows.kind);
    for value in row.before.iter().chain(&row.after).flatten() {
        check_value(value, parse_json);
    }
}

fn check_value(value: &Value<'_>, parse_json: JsonParser) {
    match value {
        Value::Json(bytes) => check_json(bytes, parse_json),
        Value::JsonDiff(bytes) => check_diffs(bytes, parse_json),
        Value::Decimal(d) => {
            let _ = d.to_string();
        }
        Value::Date(d) => {
            let _ = d.to_string();
        }
        Value::Time(t) => {
            let _ = t.to_string();
        }
        Value::DateTime(dt) => {
            let _ = dt.to_string();
        }
        Value::Timestamp(ts) => {
            let _ = ts.to_string();
        }
        _ => {}
    }
}

/// Row decoding against a table map (fuzz target `row_decoder`).
///
/// Input layout:
///
/// ```text
/// selector u8 | table_map_len u16 LE | TABLE_MAP body [table_map_len] | row event body
/// ```
///
/// The selector's low 4 bits pick the row event type from [`ROW_TYPES`];
/// its top bit selects 4-byte table ids (post-header length 6, MySQL
/// before 5.1.4) for both events. A table map length past the end is cut
/// to what is there. The table map is attached to the row event whatever
/// table id the latter names, so rows are always decoded.
///
/// Invariants: no panic; errors point inside the input (for uncompressed
/// rows, the innermost field offset too); each decoded image has exactly
/// `column_count` cells; JSON values and diffs render as in
/// [`check_events`].
pub fn check_rows(data: &[u8], parse_json: JsonParser) {
    let len = data.len() as u64;
    let Some((&selector, rest)) = data.split_first() else { return };
    let ty = ROW_TYPES[usize::from(selector & 0x0f)];
    let short_ids = selector & 0x80 != 0;
    let Some((n, rest)) = rest.split_first_chunk::<2>() else { return };
    let n = usize::from(u16::from_le_bytes(*n)).min(rest.len());
    let (map_bytes, rows_bytes) = rest.split_at(n);
    let map = match TableMap::parse(&mut Cursor::new(map_bytes, 3), if short_ids { 6 } else { 8 }) {
        Ok(map) => map,
        Err(e) => {
            check_error(&e, len, "decoding the table map");
            assert!(
                e.field_offset() <= len,
                "table map field offset {} outside the input: {e}",
                e.field_offset()
            );
            return;
        }
    };
    check_table_map(&map);
    let rows_phl = if short_ids { 6 } else { 10 };
    let rows_at = 3 + n as u64;
    let mut rows = match RowsEvent::parse(&mut Cursor::new(rows_bytes, rows_at), ty, rows_phl) {
        Ok(rows) => rows,
        Err(e) => return check_error(&e, len, "decoding the row event header"),
    };
    let compressed = RowsKind::of(ty).is_some_and(|(_, _, compressed)| compressed);
    rows.table = Some(Arc::new(map));
    check_rows_event(&rows, len, !compressed, parse_json);
}

/// The row event types [`check_rows`] decodes, by selector `& 0x0f`.
pub const ROW_TYPES: [EventType; 16] = [
    EventType::WRITE_ROWS_V1,
    EventType::UPDATE_ROWS_V1,
    EventType::DELETE_ROWS_V1,
    EventType::WRITE_ROWS_V2,
    EventType::UPDATE_ROWS_V2,
    EventType::DELETE_ROWS_V2,
    EventType::PARTIAL_UPDATE_ROWS,
    EventType::PRE_GA_WRITE_ROWS,
    EventType::PRE_GA_UPDATE_ROWS,
    EventType::PRE_GA_DELETE_ROWS,
    EventType::MARIA_WRITE_ROWS_COMPRESSED_V1,
    EventType::MARIA_UPDATE_ROWS_COMPRESSED_V1,
    EventType::MARIA_DELETE_ROWS_COMPRESSED_V1,
    EventType::MARIA_WRITE_ROWS_COMPRESSED,
    EventType::MARIA_UPDATE_ROWS_COMPRESSED,
    EventType::MARIA_DELETE_ROWS_COMPRESSED,
];

/// Binary JSON rendering (fuzz target `json_binary`): `data` is one JSON
/// column value.
///
/// Invariants: [`json::write_json`] does not panic; on success it appended
/// valid JSON (per `parse_json`) at most [`JSON_EXPANSION`] times the input
/// length plus [`JSON_EXPANSION_SLACK`]; on failure it appended nothing and
/// the error offset lies in the input. The same bytes are also read as a
/// PARTIAL_UPDATE_ROWS diff list, with the same expectations.
pub fn check_json(data: &[u8], parse_json: JsonParser) {
    const MARK: &str = "<before>";
    let mut out = String::from(MARK);
    match json::write_json(data, &mut out) {
        Ok(()) => {
            let text = out.strip_prefix(MARK).expect("write_json keeps what `out` held");
            if let Err(msg) = parse_json(text) {
                panic!("write_json rendered invalid JSON ({msg}): {text:?}");
            }
            assert!(
                text.len() <= JSON_EXPANSION * data.len() + JSON_EXPANSION_SLACK,
                "{} bytes of binary JSON rendered to {} characters",
                data.len(),
                text.len()
            );
        }
        Err(e) => {
            assert_eq!(out, MARK, "write_json appended output before failing with {e}");
            assert!(
                e.offset() <= data.len(),
                "JSON error offset {} outside {} bytes: {e}",
                e.offset(),
                data.len()
            );
        }
    }
    check_diffs(data, parse_json);
}

/// A PARTIAL_UPDATE_ROWS diff list: parsed, rendered as the mysqlbinlog
/// expression, and each value rendered as JSON.
fn check_diffs(data: &[u8], parse_json: JsonParser) {
    let diffs = match json::parse_diffs(data) {
        Ok(diffs) => diffs,
        Err(e) => {
            assert!(
                e.offset() <= data.len(),
                "diff error offset {} outside {} bytes: {e}",
                e.offset(),
                data.len()
            );
            return;
        }
    };
    const MARK: &str = "<before>";
    let mut out = String::from(MARK);
    if json::write_diff_expression(&diffs, "@1", &mut out).is_err() {
        assert_eq!(out, MARK, "write_diff_expression appended output before failing");
    }
    for value in diffs.iter().filter_map(|d| d.value) {
        let mut text = String::new();
        if json::write_json(value, &mut text).is_ok() {
            if let Err(msg) = parse_json(&text) {
                panic!("write_json rendered invalid JSON for a diff value ({msg}): {text:?}");
            }
        }
    }
}
