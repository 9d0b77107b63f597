//! mysql_common's binlog module (the crate behind mysql_async; feature
//! `binlog`) decoding every row value.
//!
//! Per file: map it, check the magic, read events with
//! `EventStreamReader::read` over the file's bytes (it copies each event into
//! an owned buffer; it does not verify CRC32 checksums), and for every row
//! event (`read_data()` → `RowsEvent`) walk `rows(table_map)`; each row image
//! is a `BinlogRow`, whose every `BinlogValue` is passed to
//! `std::hint::black_box`. Events packed in a TRANSACTION_PAYLOAD are
//! decompressed and read too (`read_decompressed`).
//!
//! What "decoding a value" is in mysql_common (from its `binlog/value.rs` and
//! `binlog/row.rs`, version 0.38): integers and FLOAT/DOUBLE into `Value`
//! numbers; DATE/DATETIME(2)/TIME(2) into `Value::Date`/`Value::Time` fields;
//! **DECIMAL formatted as a decimal string** (`Value::Bytes`), **TIMESTAMP2
//! and YEAR formatted as strings**; CHAR/VARCHAR/BLOB/BIT/SET/GEOMETRY
//! **copied** into an owned `Vec<u8>`; JSON parsed into its `Jsonb` tree
//! (borrowed). Each row also builds a column list (name, flags, charset) from
//! the table map's optional metadata. MariaDB compressed row events (types
//! 166..171) are not decoded by mysql_common: the program fails on them.

use std::hint::black_box;

use gapless_bench_peers::{args, fail, Counts, Input};
use mysql_common::binlog::consts::{BinlogVersion, EventType};
use mysql_common::binlog::events::{Event, EventData};
use mysql_common::binlog::EventStreamReader;

const USAGE: &str = "\
Usage: mysql-common-values FILE...

Decodes every row value of every row event of the binlog FILEs with
mysql_common's binlog module and prints: files=N bytes=N rows=N values=N
";

fn is_rows(t: u8) -> bool {
    // WRITE/UPDATE/DELETE v1 and v2, PARTIAL_UPDATE_ROWS.
    matches!(t, 23..=25 | 30..=32 | 39)
}

fn rows_of(reader: &EventStreamReader, ev: &Event, counts: &mut Counts) -> Result<(), String> {
    let ty = ev.header().event_type_raw();
    if (166..=171).contains(&ty) {
        return Err(format!("event type {ty} (MariaDB compressed rows): not decoded by mysql_common"));
    }
    if !is_rows(ty) {
        return Ok(());
    }
    let Some(EventData::RowsEvent(re)) = ev.read_data().map_err(|e| e.to_string())? else {
        return Err("row event type without a RowsEvent".into());
    };
    let tme = reader.get_tme(re.table_id()).ok_or("row event without a table map")?;
    for row in re.rows(tme) {
        let (before, after) = row.map_err(|e| e.to_string())?;
        counts.rows += 1;
        for image in [before, after].into_iter().flatten() {
            for v in image.unwrap() {
                black_box(&v);
                counts.values += 1;
            }
        }
    }
    Ok(())
}

fn main() {
    let args = args(USAGE, &[]);
    let mut counts = Counts::default();
    for path in &args.files {
        let input = Input::open(path).unwrap_or_else(|e| fail(path, &counts, e));
        let bytes = input.bytes();
        if bytes.len() < 4 || bytes[..4] != [0xfe, b'b', b'i', b'n'] {
            fail(path, &counts, "no binlog magic");
        }
        let mut reader = EventStreamReader::new(BinlogVersion::Version4);
        let mut rest: &[u8] = &bytes[4..];
        while !rest.is_empty() {
            let offset = bytes.len() - rest.len();
            let at = |e: &dyn std::fmt::Display| format!("event at {offset}: {e}");
            let ev = match reader.read(&mut rest) {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => fail(path, &counts, at(&e)),
            };
            if ev.header().event_type_raw() == EventType::TRANSACTION_PAYLOAD_EVENT as u8 {
                let Ok(Some(EventData::TransactionPayloadEvent(tp))) = ev.read_data() else {
                    fail(path, &counts, at(&"unreadable transaction payload"));
                };
                let mut payload = tp.decompressed().unwrap_or_else(|e| fail(path, &counts, at(&e)));
                while let Some(inner) =
                    reader.read_decompressed(&mut payload).unwrap_or_else(|e| fail(path, &counts, at(&e)))
                {
                    rows_of(&reader, &inner, &mut counts).unwrap_or_else(|e| fail(path, &counts, at(&e)));
                }
            } else {
                rows_of(&reader, &ev, &mut counts).unwrap_or_else(|e| fail(path, &counts, at(&e)));
            }
            input.release_before(bytes.len() - rest.len());
        }
        counts.files += 1;
        counts.bytes += bytes.len() as u64;
    }
    counts.print();
}
