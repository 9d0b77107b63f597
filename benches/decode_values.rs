//! Criterion benches of the decoder's hot paths.
//!
//! - `values/<type>`: one synthetic WRITE_ROWS v2 event body (about 8 KiB of
//!   rows, the size servers cut row events at) of a table whose columns all
//!   have that type, built in memory with its TABLE_MAP and decoded with the
//!   decoder's own types (`TableMap::parse`, `RowsEvent::parse`,
//!   `RowIter::next_into` reusing one `Row`). Throughput is the bytes of the
//!   rows part; every value is passed to `black_box`. Values are made by a
//!   fixed pseudo-random sequence, so every run decodes the same bytes; each
//!   event is decoded and checked once (DECIMAL, temporal and JSON values
//!   also rendered) before it is timed, so the bytes are valid.
//! - `reader/<file>`: the whole `BinlogReader` over a real binlog (CRC32
//!   verified, every row value decoded), read in place from
//!   ../shared/fixtures (the sakila file is gunzipped in memory).
//! - `jsonl/<file>`: the same files rendered as JSON lines into
//!   `io::sink()` through `gapless::render::renderer(Format::Jsonl, ..)`.
//!
//! Run: `cargo bench --bench decode_values` (filters work:
//! `cargo bench --bench decode_values -- values/DECIMAL`).

use std::hint::black_box;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gapless::render::{renderer, Context, Format, Options};
use gapless_decoder::cursor::Cursor;
use gapless_decoder::events::{Row, RowsEvent, TableMap};
use gapless_decoder::header::EventType;
use gapless_decoder::values::json::write_json;
use gapless_decoder::{BinlogReader, Decoder, EventData, Value};

// ---------------------------------------------------------------------------
// Synthetic events.

/// A small deterministic generator (SplitMix64), so the bytes are the same
/// on every run and every machine.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One column type of a bench: its TABLE_MAP type code and metadata bytes
/// (as written in the event), whether it is UNSIGNED, how many such columns
/// the table has, and how to write one value.
struct Spec {
    name: &'static str,
    ty: u8,
    meta: &'static [u8],
    unsigned: bool,
    columns: usize,
    value: fn(&mut Gen, &mut Vec<u8>),
}

const TINY: u8 = 1;
const SHORT: u8 = 2;
const LONG: u8 = 3;
const FLOAT: u8 = 4;
const DOUBLE: u8 = 5;
const LONGLONG: u8 = 8;
const DATE: u8 = 10;
const INT24: u8 = 9;
const YEAR: u8 = 13;
const VARCHAR: u8 = 15;
const BIT: u8 = 16;
const TIMESTAMP2: u8 = 17;
const DATETIME2: u8 = 18;
const TIME2: u8 = 19;
const JSON: u8 = 245;
const NEWDECIMAL: u8 = 246;
const ENUM: u8 = 247;
const SET: u8 = 248;
const BLOB: u8 = 252;
const STRING: u8 = 254;

fn int_le(g: &mut Gen, out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&g.next().to_le_bytes()[..n]);
}

/// Bytes of a DECIMAL group of `digits` (< 9) digits.
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Writes a random DECIMAL(precision, scale) in MySQL's binary format:
/// big-endian groups of 9 digits in 4 bytes, partial groups in fewer, the
/// sign bit flipped, every byte inverted for a negative number.
fn decimal(g: &mut Gen, out: &mut Vec<u8>, precision: usize, scale: usize) {
    let intg = precision - scale;
    let start = out.len();
    let group = |g: &mut Gen, digits: usize, out: &mut Vec<u8>| {
        let bytes = if digits == 9 { 4 } else { DIG2BYTES[digits] };
        let v = g.below(10u64.pow(digits as u32)) as u32;
        out.extend_from_slice(&v.to_be_bytes()[4 - bytes..]);
    };
    let (lead, tail) = (intg % 9, scale % 9);
    if lead > 0 {
        group(g, lead, out);
    }
    for _ in 0..intg / 9 {
        group(g, 9, out);
    }
    for _ in 0..scale / 9 {
        group(g, 9, out);
    }
    if tail > 0 {
        group(g, tail, out);
    }
    out[start] ^= 0x80;
    if g.below(4) == 0 {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
}

fn text(g: &mut Gen, out: &mut Vec<u8>, len_bytes: usize, min: u64, max: u64) {
    let len = min + g.below(max - min + 1);
    out.extend_from_slice(&len.to_le_bytes()[..len_bytes]);
    for _ in 0..len {
        out.push(b"abcdefghijklmnopqrstuvwxyz0123456789 ,.-"[g.below(40) as usize]);
    }
}

/// A small binary JSON object: `{"id": <int16>, "name": "<text>"}`.
fn json(g: &mut Gen, out: &mut Vec<u8>) {
    let name_len = 5 + g.below(20) as usize;
    // type, then the object: count, size, 2 key entries, 2 value entries,
    // keys "id" "name", then the string value (length byte + bytes).
    let size = 4 + 2 * 4 + 2 * 3 + 2 + 4 + 1 + name_len;
    let mut doc = vec![0x00];
    doc.extend_from_slice(&2u16.to_le_bytes());
    doc.extend_from_slice(&(size as u16).to_le_bytes());
    doc.extend_from_slice(&18u16.to_le_bytes());
    doc.extend_from_slice(&2u16.to_le_bytes());
    doc.extend_from_slice(&20u16.to_le_bytes());
    doc.extend_from_slice(&4u16.to_le_bytes());
    doc.push(0x05); // int16, inlined
    doc.extend_from_slice(&(g.below(30000) as u16).to_le_bytes());
    doc.push(0x0c); // string at offset 24
    doc.extend_from_slice(&24u16.to_le_bytes());
    doc.extend_from_slice(b"idname");
    doc.push(name_len as u8);
    for _ in 0..name_len {
        doc.push(b'a' + g.below(26) as u8);
    }
    out.extend_from_slice(&(doc.len() as u32).to_le_bytes());
    out.extend_from_slice(&doc);
}

/// A [`Spec`], positionally.
fn s(
    name: &'static str,
    ty: u8,
    meta: &'static [u8],
    unsigned: bool,
    columns: usize,
    value: fn(&mut Gen, &mut Vec<u8>),
) -> Spec {
    Spec { name, ty, meta, unsigned, columns, value }
}

fn date(g: &mut Gen, o: &mut Vec<u8>) {
    let v = ((1990 + g.below(40)) << 9) | ((1 + g.below(12)) << 5) | (1 + g.below(28));
    o.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
}

fn time2_0(g: &mut Gen, o: &mut Vec<u8>) {
    let v = 0x80_0000 + ((g.below(24) << 12) | (g.below(60) << 6) | g.below(60));
    o.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
}

fn datetime2_6(g: &mut Gen, o: &mut Vec<u8>) {
    let ym = (1990 + g.below(40)) * 13 + 1 + g.below(12);
    let v = 0x80_0000_0000
        + ((ym << 22) | ((1 + g.below(28)) << 17) | (g.below(24) << 12) | (g.below(60) << 6) | g.below(60));
    o.extend_from_slice(&v.to_be_bytes()[3..]);
    o.extend_from_slice(&(g.below(1_000_000) as u32).to_be_bytes()[1..]);
}

fn specs() -> Vec<Spec> {
    vec![
        s("TINYINT", TINY, &[], false, 8, |g, o| int_le(g, o, 1)),
        s("TINYINT_UNSIGNED", TINY, &[], true, 8, |g, o| int_le(g, o, 1)),
        s("SMALLINT", SHORT, &[], false, 8, |g, o| int_le(g, o, 2)),
        s("SMALLINT_UNSIGNED", SHORT, &[], true, 8, |g, o| int_le(g, o, 2)),
        s("MEDIUMINT", INT24, &[], false, 8, |g, o| int_le(g, o, 3)),
        s("MEDIUMINT_UNSIGNED", INT24, &[], true, 8, |g, o| int_le(g, o, 3)),
        s("INT", LONG, &[], false, 8, |g, o| int_le(g, o, 4)),
        s("INT_UNSIGNED", LONG, &[], true, 8, |g, o| int_le(g, o, 4)),
        s("BIGINT", LONGLONG, &[], false, 8, |g, o| int_le(g, o, 8)),
        s("BIGINT_UNSIGNED", LONGLONG, &[], true, 8, |g, o| int_le(g, o, 8)),
        s("FLOAT", FLOAT, &[4], false, 8, |g, o| {
            o.extend_from_slice(&((g.below(2_000_000) as f32 - 1e6) / 7.0).to_le_bytes())
        }),
        s("DOUBLE", DOUBLE, &[8], false, 8, |g, o| {
            o.extend_from_slice(&((g.below(2_000_000_000) as f64 - 1e9) / 7.0).to_le_bytes())
        }),
        s("DECIMAL(10,2)", NEWDECIMAL, &[10, 2], false, 8, |g, o| decimal(g, o, 10, 2)),
        s("DECIMAL(65,30)", NEWDECIMAL, &[65, 30], false, 8, |g, o| decimal(g, o, 65, 30)),
        s("DATE", DATE, &[], false, 8, date),
        s("TIME2(0)", TIME2, &[0], false, 8, time2_0),
        s("DATETIME2(6)", DATETIME2, &[6], false, 8, datetime2_6),
        s("TIMESTAMP2(0)", TIMESTAMP2, &[0], false, 8, |g, o| {
            o.extend_from_slice(&(1_000_000_000 + g.below(1_000_000_000) as u32).to_be_bytes())
        }),
        s("YEAR", YEAR, &[], false, 8, |g, o| o.push(1 + g.below(255) as u8)),
        // BIT(12): 4 bits past whole bytes, 1 whole byte.
        s("BIT(12)", BIT, &[4, 1], false, 8, |g, o| int_le(g, o, 2)),
        // ENUM and SET travel as STRING: real type, then length in bytes.
        s("ENUM", STRING, &[ENUM, 1], false, 8, |g, o| o.push(1 + g.below(5) as u8)),
        s("SET(16)", STRING, &[SET, 2], false, 8, |g, o| int_le(g, o, 2)),
        // VARCHAR(32) utf8mb4: 128 bytes at most, 1-byte length.
        s("VARCHAR_short", VARCHAR, &[128, 0], false, 8, |g, o| text(g, o, 1, 4, 30)),
        // VARCHAR(1000) utf8mb4: 4000 bytes at most, 2-byte length.
        s("VARCHAR_long", VARCHAR, &[0xa0, 0x0f], false, 4, |g, o| text(g, o, 2, 200, 800)),
        // BLOB: 2-byte length.
        s("BLOB", BLOB, &[2], false, 2, |g, o| text(g, o, 2, 500, 3000)),
        // MySQL binary JSON, 4-byte length.
        s("JSON", JSON, &[4], false, 4, json),
    ]
}

fn lenenc(out: &mut Vec<u8>, n: usize) {
    assert!(n < 251, "bench tables are small");
    out.push(n as u8);
}

/// TABLE_MAP body (post-header length 8): table id 1, `bench`.`t`, every
/// column of `spec`'s type, none nullable, SIGNEDNESS metadata when UNSIGNED.
fn table_map(spec: &Spec) -> Vec<u8> {
    let n = spec.columns;
    let mut b = vec![1, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&[5, b'b', b'e', b'n', b'c', b'h', 0, 1, b't', 0]);
    lenenc(&mut b, n);
    b.extend(std::iter::repeat_n(spec.ty, n));
    lenenc(&mut b, n * spec.meta.len());
    for _ in 0..n {
        b.extend_from_slice(spec.meta);
    }
    b.extend(std::iter::repeat_n(0u8, n.div_ceil(8)));
    if spec.unsigned {
        // SIGNEDNESS: one bit per numeric column, most significant first.
        b.push(1);
        lenenc(&mut b, n.div_ceil(8));
        let mut bits = vec![0u8; n.div_ceil(8)];
        for i in 0..n {
            bits[i / 8] |= 0x80 >> (i % 8);
        }
        b.extend_from_slice(&bits);
    }
    b
}

/// Size of the rows part of a synthetic event: what a server puts in one row
/// event (binlog_row_event_max_size = 8 KiB), at least one row.
const EVENT_ROWS_BYTES: usize = 8 << 10;

/// WRITE_ROWS v2 body: table id 1, STMT_END_F, no extra data, every column
/// present, rows of non-NULL values until about [`EVENT_ROWS_BYTES`].
/// Returns the body, the offset where the rows start and the row count.
fn write_rows(spec: &Spec, g: &mut Gen) -> (Vec<u8>, usize, usize) {
    let n = spec.columns;
    let mut b = vec![1, 0, 0, 0, 0, 0, 1, 0, 2, 0];
    lenenc(&mut b, n);
    let mut present = vec![0xffu8; n.div_ceil(8)];
    let spare = n % 8;
    if spare > 0 {
        *present.last_mut().unwrap() = (1u8 << spare) - 1;
    }
    b.extend_from_slice(&present);
    let rows_at = b.len();
    let mut rows = 0;
    loop {
        let mut row = vec![0u8; n.div_ceil(8)];
        for _ in 0..n {
            (spec.value)(g, &mut row);
        }
        if rows > 0 && b.len() - rows_at + row.len() > EVENT_ROWS_BYTES {
            break;
        }
        b.extend_from_slice(&row);
        rows += 1;
    }
    (b, rows_at, rows)
}

/// Decodes every row once, checks the counts and renders the values whose
/// bytes the decoder only wraps (DECIMAL, JSON) or unpacks into fields, so a
/// mistake in the synthetic bytes shows up here and not as a fast bench.
fn check(spec: &Spec, ev: &RowsEvent<'_>, rows: usize) {
    let mut it = ev.rows().expect("table map attached");
    let mut row = Row::default();
    let mut seen = 0;
    let mut text = String::new();
    while it.next_into(&mut row).unwrap_or_else(|e| panic!("{}: {e}", spec.name)) {
        seen += 1;
        assert_eq!(row.after.len(), spec.columns, "{}", spec.name);
        for v in row.after.iter() {
            text.clear();
            match v.as_ref().expect("present") {
                Value::Null => panic!("{}: NULL where none was written", spec.name),
                Value::Decimal(d) => text = d.to_string(),
                Value::Json(j) => write_json(j, &mut text).unwrap_or_else(|e| panic!("{}: {e}", spec.name)),
                Value::Date(d) => text = d.to_string(),
                Value::Time(t) => text = t.to_string(),
                Value::DateTime(d) => text = d.to_string(),
                Value::Timestamp(t) => text = t.to_string(),
                Value::UInt(_) => assert!(spec.unsigned, "{}", spec.name),
                Value::Int(_) => assert!(!spec.unsigned, "{}", spec.name),
                _ => {}
            }
        }
    }
    assert_eq!(seen, rows, "{}: rows", spec.name);
    black_box(text);
}

fn bench_values(c: &mut Criterion) {
    let mut group = c.benchmark_group("values");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    for spec in specs() {
        let mut g = Gen(0x5eed ^ u64::from(spec.ty));
        let map_body = table_map(&spec);
        let map = TableMap::parse(&mut Cursor::new(&map_body, 0), 8)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        let (body, rows_at, rows) = write_rows(&spec, &mut g);
        let mut ev = RowsEvent::parse(&mut Cursor::new(&body, 0), EventType::WRITE_ROWS_V2, 10)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
        ev.table = Some(Arc::new(map));
        check(&spec, &ev, rows);
        let values = rows * spec.columns;
        group.throughput(Throughput::Bytes((body.len() - rows_at) as u64));
        let label =
            format!("{} ({} rows x {} cols = {values} values / event)", spec.name, rows, spec.columns);
        let mut row = Row::default();
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut it = ev.rows().unwrap();
                while it.next_into(&mut row).unwrap() {
                    for v in row.after.iter() {
                        black_box(v);
                    }
                }
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Real files.

fn fixtures() -> PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/mysql");
    std::env::var_os("GAPLESS_FIXTURES").map(PathBuf::from).unwrap_or(shared)
}

/// The real files: name and bytes. Missing files are skipped with a note.
fn files() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    // MySQL 5.5.27, the sakila sample database loaded: 47k rows, 1.4 MB.
    let sakila = fixtures().join("mysql-binlog-connector-java/mysql-bin.sakila.gz");
    match std::fs::File::open(&sakila) {
        Ok(f) => {
            let mut bytes = Vec::new();
            flate2::read::GzDecoder::new(f).read_to_end(&mut bytes).expect("gunzip sakila");
            out.push(("sakila-mysql5.5", bytes));
        }
        Err(e) => eprintln!("skipping {}: {e}", sakila.display()),
    }
    // MariaDB 10.11, every column type, FULL metadata, CRC32 (this repo's fixture).
    let types = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/generated/full-crc/mariadb-bin.000002");
    match std::fs::read(&types) {
        Ok(bytes) => out.push(("mariadb-types", bytes)),
        Err(e) => eprintln!("skipping {}: {e}", types.display()),
    }
    out
}

/// Reads a whole file, decoding every value of every row; returns the rows.
fn read_all(bytes: &[u8]) -> u64 {
    let mut reader = BinlogReader::new(bytes, Decoder::new()).unwrap();
    let mut rows = 0;
    while let Some(ev) = reader.next() {
        let ev = ev.unwrap();
        if let EventData::Rows(r) = &ev.data {
            let mut it = r.rows().unwrap();
            let mut row = Row::default();
            while it.next_into(&mut row).unwrap() {
                rows += 1;
                for v in row.before.iter().chain(row.after.iter()) {
                    black_box(v);
                }
            }
        }
    }
    rows
}

fn bench_reader(c: &mut Criterion) {
    let mut group = c.benchmark_group("reader");
    group.measurement_time(Duration::from_secs(5));
    for (name, bytes) in files() {
        let rows = read_all(&bytes);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("{name} ({rows} rows)"), |b| b.iter(|| read_all(black_box(&bytes))));
    }
    group.finish();
}

fn render_all(bytes: &[u8], name: &str) {
    let mut render = renderer(Format::Jsonl, Options::default(), Box::new(std::io::sink()));
    let mut reader = BinlogReader::new(bytes, Decoder::new()).unwrap();
    let cx = Context { file: name, gtid: None, in_trx: None };
    while let Some(ev) = reader.next() {
        render.event(&cx, &ev.unwrap()).unwrap();
    }
    render.finish().unwrap();
}

fn bench_jsonl(c: &mut Criterion) {
    let mut group = c.benchmark_group("jsonl");
    group.measurement_time(Duration::from_secs(5));
    for (name, bytes) in files() {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| b.iter(|| render_all(black_box(&bytes), name)));
    }
    group.finish();
}

criterion_group!(benches, bench_values, bench_reader, bench_jsonl);
criterion_main!(benches);
