//! The `mysql-binlog-connector-rust` crate (0.3.3) decoding every row value.
//!
//! The crate is a replication client, but its event parser is public:
//! `binlog_parser::BinlogParser::next(&mut impl Read + Seek)` reads one
//! event from a stream (the client feeds it network packets; here an
//! `std::io::Cursor` over the mapped file), keeps the table maps, and
//! returns the event with every row already decoded. So the work per value
//! happens inside `next()`; the program then walks every row image and
//! passes every present value to `std::hint::black_box`.
//!
//! What "decoding a value" is in this crate (its `column/column_value.rs`):
//! integers, FLOAT/DOUBLE, YEAR, ENUM, SET, BIT into numbers; TIMESTAMP(2)
//! into microseconds; **DECIMAL, DATE, TIME(2), DATETIME(2) formatted as
//! `String`s**; CHAR/VARCHAR/BLOB/TEXT/JSON/GEOMETRY **copied** into owned
//! `Vec<u8>`s (JSON not parsed). Each event body is first copied into a
//! fresh `Vec<u8>`; CRC32 checksums are skipped, not verified. Event types it
//! does not know (MariaDB's GTID, annotate, checkpoint, compressed rows...)
//! come back as `NotSupported` and are skipped: a MariaDB compressed row
//! event would be skipped silently, so the row and value counts, which
//! compare.sh checks against the other programs, are what shows it.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Cursor;

use gapless_bench_peers::{args, fail, Counts, Input};
use mysql_binlog_connector_rust::binlog_parser::BinlogParser;
use mysql_binlog_connector_rust::event::event_data::EventData;
use mysql_binlog_connector_rust::event::row_event::RowEvent;

const USAGE: &str = "\
Usage: connector-rust-values FILE...

Decodes every row value of every row event of the binlog FILEs with the
mysql-binlog-connector-rust crate's event parser and prints:
files=N bytes=N rows=N values=N
";

/// Touches the values of the columns present in the image (the crate puts
/// `ColumnValue::None` both for NULL and for absent columns).
fn image(row: &RowEvent, present: &[bool], counts: &mut Counts) {
    for (v, &p) in row.column_values.iter().zip(present) {
        if p {
            black_box(v);
            counts.values += 1;
        }
    }
}

fn walk(data: &EventData, counts: &mut Counts) {
    match data {
        EventData::WriteRows(e) => {
            for r in &e.rows {
                counts.rows += 1;
                image(r, &e.included_columns, counts);
            }
        }
        EventData::DeleteRows(e) => {
            for r in &e.rows {
                counts.rows += 1;
                image(r, &e.included_columns, counts);
            }
        }
        EventData::UpdateRows(e) => {
            for (b, a) in &e.rows {
                counts.rows += 1;
                image(b, &e.included_columns_before, counts);
                image(a, &e.included_columns_after, counts);
            }
        }
        EventData::TransactionPayload(p) => {
            for (_, inner) in &p.uncompressed_events {
                walk(inner, counts);
            }
        }
        _ => {}
    }
}

fn main() {
    let args = args(USAGE, &[]);
    let mut counts = Counts::default();
    for path in &args.files {
        let input = Input::open(path).unwrap_or_else(|e| fail(path, &counts, e));
        let bytes = input.bytes();
        let len = bytes.len() as u64;
        let mut stream = Cursor::new(bytes);
        // The checksum length is the one the crate's own client and tests
        // start with; the FORMAT_DESCRIPTION then sets it.
        let mut parser = BinlogParser { checksum_length: 4, table_map_event_by_table_id: HashMap::new() };
        parser.check_magic(&mut stream).unwrap_or_else(|e| fail(path, &counts, format!("{e:?}")));
        while stream.position() < len {
            let offset = stream.position();
            let (_, data) = parser
                .next(&mut stream)
                .unwrap_or_else(|e| fail(path, &counts, format!("event at {offset}: {e:?}")));
            walk(&data, &mut counts);
            drop(data);
            input.release_before(stream.position() as usize);
        }
        counts.files += 1;
        counts.bytes += len;
    }
    counts.print();
}
