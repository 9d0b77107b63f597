//! gapless's decoder (`gapless-decoder`, by path) decoding every row value.
//!
//! Per file: map it, read it event by event with `BinlogReader` (CRC32 of
//! every event verified, as `gapless decode` does by default; `--no-verify-checksums`
//! turns that off, which is what both peers do), and for every row event walk
//! `RowsEvent::rows()` with `RowIter::next_into`, passing every value of every
//! image to `std::hint::black_box`.
//!
//! What "decoding a value" is here (the decoder's `Value`, no output):
//! integers, FLOAT/DOUBLE, YEAR, ENUM index, SET bitmap are read into
//! numbers; DATE/TIME2/DATETIME2/TIMESTAMP2 into their fields (year, month,
//! ..., microseconds), no text; DECIMAL is checked for its length and kept as
//! the stored bytes (digits are unpacked only when rendered); CHAR/VARCHAR,
//! BLOB/TEXT, BIT, JSON, GEOMETRY are slices of the file's bytes (no copy, no
//! charset conversion, JSON not parsed). Transaction payloads (MySQL zstd)
//! and MariaDB compressed row events are inflated.

use std::hint::black_box;

use gapless_bench_peers::{args, fail, Counts, Input};
use gapless_decoder::events::Row;
use gapless_decoder::{BinlogReader, Decoder, EventData};

const USAGE: &str = "\
Usage: gapless-values [--no-verify-checksums] FILE...

Decodes every row value of every row event of the binlog FILEs with
gapless-decoder and prints: files=N bytes=N rows=N values=N
";

fn main() {
    let args = args(USAGE, &["--no-verify-checksums"]);
    let verify = !args.flags.iter().any(|f| f == "--no-verify-checksums");
    let mut counts = Counts::default();
    for path in &args.files {
        let input = Input::open(path).unwrap_or_else(|e| fail(path, &counts, e));
        let bytes = input.bytes();
        let mut reader = BinlogReader::new(bytes, Decoder::new().verify_checksums(verify))
            .unwrap_or_else(|e| fail(path, &counts, e));
        while let Some(next) = reader.next() {
            let ev = next.unwrap_or_else(|e| fail(path, &counts, e));
            if let EventData::Rows(rows) = &ev.data {
                let mut it = rows.rows().unwrap_or_else(|e| fail(path, &counts, e));
                let mut row = Row::default();
                while it.next_into(&mut row).unwrap_or_else(|e| fail(path, &counts, e)) {
                    counts.rows += 1;
                    for v in row.before.iter().chain(row.after.iter()).flatten() {
                        black_box(v);
                        counts.values += 1;
                    }
                }
            }
            drop(ev);
            input.release_before(reader.position() as usize);
        }
        counts.files += 1;
        counts.bytes += bytes.len() as u64;
    }
    counts.print();
}
