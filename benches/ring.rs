//! Criterion benches of the on-disk ring (`gapless::ring`).
//!
//! - `ring/append`: `RingWriter::append` of sysbench-like transactions that
//!   are already in memory, into a ring of 1 GiB in 64 MiB segments with
//!   `SyncPolicy::Interval(100 ms)`. One iteration appends 512 MiB of
//!   events and then calls `sync()`, so everything it appended is on disk
//!   when it ends. The ring is filled once before timing, so every timed
//!   append wraps: it reuses the oldest segment files, as a long-running
//!   ring does. The 512 MiB are a set of 32 MiB of distinct transactions
//!   appended 16 times: the sidecar appends each transaction right after
//!   the tracker built it, so its events and their descriptions are in the
//!   CPU caches, as they are here.
//! - `ring/append_cold`: the same with 512 MiB of distinct transactions,
//!   each appended once: every event and its description comes from main
//!   memory (the worst case, not the sidecar's).
//! - `ring/read`: `RingReader::open` of a filled ring plus every unit from
//!   `start()` through `units()` (`next_into`, reusing one buffer), each event's length summed and one of its
//!   bytes read (the reader itself checks the CRC32C of every record, so
//!   every byte is read). Warm page cache: the ring was just written.
//!
//! Throughput is in bytes of events (header to CRC32 trailer), not of ring
//! records (which add 24 bytes of header and padding per event, and the
//! file name and GTID per transaction).
//!
//! The rings are made under `$GAPLESS_BENCH_DIR` if set, else
//! `target/ring-bench` of this package, on a real disk: on the machine of
//! the numbers in benches/README.md both that and /tmp are ext4 on the VM's
//! disk (/tmp is not a tmpfs there), and `target/ring-bench` was used. The
//! directory is removed at the start and at the end.
//!
//! Run: `cargo bench --bench ring` (about 40 s after the build).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use gapless::ring::made_up::MadeUpBinlog;
use gapless::ring::{RingConfig, RingReader, RingWriter, SyncPolicy};
use gapless::stream::Received;

const SEGMENT: u64 = 64 << 20;
const RING: u64 = 1 << 30;
/// Event bytes appended per iteration.
const PER_ITERATION: usize = 512 << 20;

/// A small deterministic generator (SplitMix64): the same bytes every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

const GTID_EVENT: u8 = 162; // MariaDB GTID
const TABLE_MAP: u8 = 19;
const WRITE_ROWS: u8 = 30; // v2
const UPDATE_ROWS: u8 = 31;
const DELETE_ROWS: u8 = 32;
const XID: u8 = 16;
const FORMAT_DESCRIPTION: u8 = 15;

/// A made-up MariaDB binlog of sysbench-like transactions: GTID 0-1-N,
/// TABLE_MAP of an sbtest table, 1–4 row events of 200–500 bytes, XID;
/// after the FORMAT_DESCRIPTION that starts the file.
/// Every event has a v4 header with its real size and end position, and a
/// CRC32 trailer.
struct Binlog {
    log: MadeUpBinlog,
    gen: Gen,
}

impl Binlog {
    fn new() -> Binlog {
        Binlog { log: MadeUpBinlog::new("mariadb-bin.000001", 0), gen: Gen(1) }
    }

    fn event(&mut self, type_code: u8, body: &[u8], gtid: Option<&Arc<str>>) -> Received {
        self.log.event(type_code, body, gtid)
    }

    /// The FORMAT_DESCRIPTION at the start of the file: binlog version 4,
    /// server version, header length 19, post-header lengths, CRC32.
    fn format_description(&mut self) -> Vec<Received> {
        let mut body = 4u16.to_le_bytes().to_vec();
        let mut version = [0u8; 50];
        version[..20].copy_from_slice(b"10.11.19-MariaDB-log");
        body.extend_from_slice(&version);
        body.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        body.push(19);
        body.extend_from_slice(&[0, 13, 0, 8, 0, 0, 0, 0, 4, 0, 0, 0, 97, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(&[0; 170 - 23]);
        body.push(1);
        vec![self.event(FORMAT_DESCRIPTION, &body, None)]
    }

    fn trx(&mut self) -> Vec<Received> {
        self.log.seq += 1;
        let seq = self.log.seq;
        let gtid: Arc<str> = Arc::from(format!("0-1-{seq}"));
        let table = 1 + self.gen.next() % 8;
        // GTID: seq_no, domain, flags (standalone off, transactional).
        let mut body = seq.to_le_bytes().to_vec();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.push(0x08);
        body.extend_from_slice(&[0; 6]);
        let mut unit = vec![self.event(GTID_EVENT, &body, Some(&gtid))];
        // TABLE_MAP of sbtest<N> (id INT, k INT, c CHAR(120), pad CHAR(60)).
        let mut body = (100 + table).to_le_bytes()[..6].to_vec();
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(b"\x06sbtest\x00");
        body.extend_from_slice(format!("\x07sbtest{table}\x00").as_bytes());
        body.extend_from_slice(&[4, 3, 3, 254, 254, 4, 254, 120, 254, 60, 0b1100]);
        unit.push(self.event(TABLE_MAP, &body, Some(&gtid)));
        for _ in 0..self.gen.between(1, 4) {
            let ty = [WRITE_ROWS, UPDATE_ROWS, DELETE_ROWS][(self.gen.next() % 3) as usize];
            let len = self.gen.between(200, 500) as usize - 23;
            let mut body = (100 + table).to_le_bytes()[..6].to_vec();
            body.extend_from_slice(&1u16.to_le_bytes());
            while body.len() < len {
                body.extend_from_slice(&self.gen.next().to_le_bytes());
            }
            body.truncate(len);
            unit.push(self.event(ty, &body, Some(&gtid)));
        }
        unit.push(self.event(XID, &seq.to_le_bytes(), Some(&gtid)));
        unit
    }
}

/// Transactions totalling at least `bytes` bytes of events.
fn transactions(bytes: usize) -> (Vec<Vec<Received>>, u64) {
    let mut log = Binlog::new();
    let (mut units, mut total) = (vec![log.format_description()], 0usize);
    total += units[0][0].bytes.len();
    while total < bytes {
        let unit = log.trx();
        total += unit.iter().map(|r| r.bytes.len()).sum::<usize>();
        units.push(unit);
    }
    (units, total as u64)
}

fn bench_dir() -> PathBuf {
    std::env::var_os("GAPLESS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ring-bench"))
}

fn config() -> RingConfig {
    RingConfig {
        ring_bytes: RING,
        segment_bytes: Some(SEGMENT),
        sync: SyncPolicy::Interval(Duration::from_millis(100)),
        source: "bench".into(),
    }
}

fn append_all(w: &mut RingWriter, units: &[Vec<Received>]) {
    for unit in units {
        w.append(unit).expect("append");
    }
}

/// Every unit of the ring: (units, events, event bytes, a checksum of one
/// byte per event).
fn read_all(dir: &std::path::Path) -> (u64, u64, u64, u8) {
    let reader = RingReader::open(dir).expect("open the ring for reading");
    let (mut units, mut events, mut bytes, mut sum) = (0u64, 0u64, 0u64, 0u8);
    let mut all = reader.units(reader.start());
    let mut records = Vec::new();
    while let Some(unit) = all.next_into(&mut records) {
        unit.expect("a valid unit");
        units += 1;
        for r in &records {
            events += 1;
            bytes += r.event.len() as u64;
            sum = sum.wrapping_add(r.event[r.event.len() - 1]);
        }
    }
    (units, events, bytes, sum)
}

fn ring(c: &mut Criterion) {
    let root = bench_dir();
    let _ = std::fs::remove_dir_all(&root);
    let (units, total) = transactions(PER_ITERATION);
    let events: usize = units.iter().map(Vec::len).sum();
    eprintln!(
        "ring bench in {}: {} transactions, {events} events, {total} bytes of events per append iteration",
        root.display(),
        units.len()
    );

    let mut group = c.benchmark_group("ring");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(8));

    // Append: fill the ring once (untimed), so every timed append wraps.
    let dir = root.join("append");
    let mut w = RingWriter::open(&dir, &config()).expect("open the ring");
    append_all(&mut w, &units);
    append_all(&mut w, &units);
    append_all(&mut w, &units);
    w.sync().expect("sync");
    group.throughput(Throughput::Bytes(total));
    group.bench_function("append_cold", |b| {
        b.iter(|| {
            append_all(&mut w, &units);
            w.sync().expect("sync");
        })
    });
    // The same bytes per iteration from a cache-sized set, appended 16 times.
    let (hot, hot_total) = transactions(PER_ITERATION / 16);
    group.throughput(Throughput::Bytes(hot_total * 16));
    group.bench_function("append", |b| {
        b.iter(|| {
            for _ in 0..16 {
                append_all(&mut w, &hot);
            }
            w.sync().expect("sync");
        })
    });
    drop(hot);
    drop(w);

    // Read: the ring the appends filled, with its writer closed.
    let (held_units, held_events, held_bytes, _) = read_all(&dir);
    assert!(held_units > 0 && held_bytes > (RING / 2), "the ring holds {held_bytes} bytes");
    eprintln!("ring read: {held_units} units, {held_events} events, {held_bytes} bytes of events held");
    drop(units);
    group.throughput(Throughput::Bytes(held_bytes));
    group.bench_function("read", |b| b.iter(|| black_box(read_all(black_box(&dir)))));
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, ring);
criterion_main!(benches);
