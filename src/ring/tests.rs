//! The ring without a server: append, reopen, cut torn tails, reuse
//! segments, find units, refuse damage.

use std::path::{Path, PathBuf};

use super::made_up::MadeUpBinlog;
use super::record::{SEGMENT_HEADER, UNIT_END};
use super::*;
use crate::stream::Received;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("gapless-ring-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(segment: u64, segments: u64) -> RingConfig {
    RingConfig {
        ring_bytes: segment * segments,
        segment_bytes: Some(segment),
        sync: SyncPolicy::Commit,
        source: "test".into(),
    }
}

fn read_all(dir: &Path) -> Vec<Vec<(String, u64, Vec<u8>)>> {
    let reader = RingReader::open(dir).unwrap();
    reader
        .units(reader.start())
        .map(|u| {
            u.unwrap()
                .records
                .iter()
                .map(|r| (r.meta.file.to_string(), r.meta.start, r.event.to_vec()))
                .collect()
        })
        .collect()
}

fn as_read(unit: &[Received]) -> Vec<(String, u64, Vec<u8>)> {
    unit.iter().map(|r| (r.file.to_string(), r.offset, r.bytes.to_vec())).collect()
}

#[test]
fn units_come_back_as_written_and_the_resume_point_survives_a_reopen() {
    let dir = Scratch::new("basic");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut written = Vec::new();
    {
        let mut w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
        assert!(w.recovery().empty);
        for i in 0..50 {
            let unit = if i == 25 { log.rotate() } else { log.trx(3, 100) };
            w.append(&unit).unwrap();
            written.push(as_read(&unit));
        }
        w.sync().unwrap();
    }
    assert_eq!(read_all(&dir.0), written);
    let w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
    assert!(!w.recovery().empty);
    assert_eq!(w.recovery().cut_bytes, 0);
    let resume = w.resume_point();
    assert_eq!((resume.file.as_str(), resume.position), ("mysql-bin.000002", log.pos));
    assert_eq!(resume.maria.to_string(), "0-1-49");
}

#[test]
fn a_full_ring_reuses_its_oldest_segments_and_keeps_whole_units() {
    let dir = Scratch::new("wrap");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut written = Vec::new();
    let mut w = RingWriter::open(&dir.0, &config(64 << 10, 4)).unwrap();
    for _ in 0..400 {
        let unit = log.trx(4, 200);
        w.append(&unit).unwrap();
        written.push(as_read(&unit));
    }
    w.sync().unwrap();
    let files = segment::list(&dir.0).unwrap();
    assert!(files.len() <= 4, "{files:?}");
    let held = read_all(&dir.0);
    assert!(held.len() > 50 && held.len() < 400, "{}", held.len());
    // What is held is the newest units, whole and in order.
    assert_eq!(held[..], written[written.len() - held.len()..]);
    let status = w.status().load();
    assert_eq!(status.first.as_ref().unwrap().position, held[0][0].1);
    assert!(status.used_bytes <= status.capacity_bytes);
}

#[test]
fn lookups_by_position_and_gtid_find_the_unit() {
    let dir = Scratch::new("lookup");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut starts = Vec::new();
    let mut w = RingWriter::open(&dir.0, &config(256 << 10, 8)).unwrap();
    for _ in 0..600 {
        let unit = log.trx(2, 300);
        starts.push((unit[0].offset, unit[0].gtid.clone().unwrap()));
        w.append(&unit).unwrap();
    }
    w.sync().unwrap();
    let reader = RingReader::open(&dir.0).unwrap();
    let first = reader.first().unwrap().start;
    for &(pos, ref gtid) in starts.iter().filter(|(pos, _)| *pos >= first).step_by(37) {
        let at = reader.find_position("mysql-bin.000001", pos).unwrap().unwrap();
        let unit = reader.units(at).next().unwrap().unwrap();
        assert_eq!(unit.records[0].meta.start, pos);
        // Just after a unit's start: the next unit.
        let at = reader.find_position("mysql-bin.000001", pos + 1).unwrap().unwrap();
        assert!(reader.units(at).next().unwrap().unwrap().records[0].meta.start > pos);
        let at = reader.find_gtid(gtid).unwrap().unwrap();
        assert_eq!(reader.units(at).next().unwrap().unwrap().gtid(), &**gtid);
    }
    assert_eq!(reader.find_gtid("0-1-100000").unwrap(), None);
    assert_eq!(reader.find_position("mysql-bin.000002", 4).unwrap(), None);
}

/// The newest segment file and the offset just past its data.
fn tail(dir: &Path) -> (PathBuf, usize) {
    let (seq, path) = segment::list(dir).unwrap().pop().unwrap();
    let seg = segment::ReadableSegment::open(&path).unwrap().unwrap();
    let (end, _) = segment::walk(&seg.map, seq, SEGMENT_HEADER, 0, |_| {});
    (path, end)
}

fn patch(path: &Path, at: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new().write(true).open(path).unwrap().write_all_at(bytes, at as u64).unwrap();
}

#[test]
fn a_torn_tail_is_cut_back_to_the_last_whole_unit() {
    for (name, damage) in [("cut", 0u8), ("garbage", 1)] {
        let dir = Scratch::new(name);
        let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
        let mut written = Vec::new();
        {
            let mut w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
            for _ in 0..20 {
                let unit = log.trx(3, 500);
                w.append(&unit).unwrap();
                written.push(as_read(&unit));
            }
            w.crash();
        }
        // Damage the last unit's last record: as if the process died while
        // copying it.
        let (path, end) = tail(&dir.0);
        let bytes = if damage == 0 { vec![0u8; 40] } else { vec![0xa5; 40] };
        patch(&path, end - 40, &bytes);
        let mut w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
        assert!(w.recovery().cut_bytes > 1500, "{name}: {:?}", w.recovery());
        written.pop();
        let last = written.last().unwrap().last().unwrap();
        let resume = w.resume_point();
        assert_eq!(resume.position, last.1 + last.2.len() as u64, "{name}");
        assert_eq!(resume.maria.to_string(), "0-1-19");
        // The stream goes on from there: the cut unit comes again.
        log.pos = resume.position;
        log.seq = 19;
        let unit = log.trx(1, 10);
        w.append(&unit).unwrap();
        written.push(as_read(&unit));
        drop(w);
        assert_eq!(read_all(&dir.0), written, "{name}");
    }
}

#[test]
fn a_unit_torn_across_segments_is_cut_and_the_newer_segment_dropped() {
    let dir = Scratch::new("span");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut written = Vec::new();
    {
        let mut w = RingWriter::open(&dir.0, &config(64 << 10, 8)).unwrap();
        for _ in 0..3 {
            let unit = log.trx(10, 1000);
            w.append(&unit).unwrap();
            written.push(as_read(&unit));
        }
        // Bigger than a segment: spans two.
        w.append(&log.trx(100, 1000)).unwrap();
        w.crash();
    }
    let before = segment::list(&dir.0).unwrap().len();
    let (path, end) = tail(&dir.0);
    patch(&path, end - 40, &[0u8; 40]);
    let w = RingWriter::open(&dir.0, &config(64 << 10, 8)).unwrap();
    assert!(segment::list(&dir.0).unwrap().len() < before);
    assert_eq!(w.resume_point().maria.to_string(), "0-1-3");
    drop(w);
    assert_eq!(read_all(&dir.0), written);
}

#[test]
fn records_of_an_older_run_after_a_cut_are_not_read_as_data() {
    let dir = Scratch::new("stale");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
    let (a, b, d) = (log.trx(1, 64), log.trx(3, 64), log.trx(1, 64));
    for unit in [&a, &b, &d] {
        w.append(unit).unwrap();
    }
    w.crash();
    // Break b's last record (as a power loss may, with d already on disk):
    // b is cut on open, and d after it is unreachable.
    // Sizes as stored: the names only in a unit's first record.
    let len = |r: &Received, first: bool| {
        let names = if first { r.file.len() + r.gtid.as_deref().map_or(0, str::len) } else { 0 };
        (record::RECORD_HEADER + names + r.bytes.len() + 7) & !7
    };
    let (path, end) = tail(&dir.0);
    let d_len: usize = d.iter().enumerate().map(|(i, r)| len(r, i == 0)).sum();
    let b_len: usize = b.iter().enumerate().map(|(i, r)| len(r, i == 0)).sum();
    patch(&path, end - d_len - 8, &[0xff; 8]);
    let mut w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
    assert_eq!(w.resume_point().maria.to_string(), "0-1-1");
    // The stream goes on with a unit exactly as long as b: it ends where d,
    // a valid record of the older run, starts.
    log.pos = w.resume_point().position;
    log.seq = 1;
    let mut c = log.trx(0, 0);
    c.truncate(1);
    let body =
        vec![0u8; b_len - record::RECORD_HEADER - c[0].file.len() - c[0].gtid.as_ref().unwrap().len() - 23];
    c[0] = log.event(162, &body, c[0].gtid.as_ref());
    assert_eq!(len(&c[0], true), b_len);
    w.append(&c).unwrap();
    w.crash();
    // d is not read: it would be a duplicate of what the stream sends next.
    assert_eq!(read_all(&dir.0), vec![as_read(&a), as_read(&c)]);
    let w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
    assert_eq!(w.resume_point().maria.to_string(), "0-1-2");
}

#[test]
fn damage_inside_the_ring_is_reported_with_its_place() {
    let dir = Scratch::new("corrupt");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut w = RingWriter::open(&dir.0, &config(64 << 10, 8)).unwrap();
    for _ in 0..250 {
        w.append(&log.trx(3, 300)).unwrap();
    }
    drop(w);
    let files = segment::list(&dir.0).unwrap();
    assert!(files.len() >= 3);
    // A flipped byte in the middle of a full segment.
    let (_, ref path) = files[1];
    let mut byte = [0u8; 1];
    std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(path).unwrap(), &mut byte, 5000).unwrap();
    patch(path, 5000, &[byte[0] ^ 0x10]);
    let reader = RingReader::open(&dir.0).unwrap();
    let err = reader.units(reader.start()).find_map(|u| u.err()).expect("an error");
    let text = err.to_string();
    assert!(matches!(err, RingError::Corrupt { .. }), "{text}");
    assert!(text.contains(&path.display().to_string()) && text.contains("offset"), "{text}");
    // The writer only walks from its checkpoint, which is past the damage;
    // damage after the checkpoint stops it from opening.
    let (_, ref newest) = files[files.len() - 2];
    patch(newest, SEGMENT_HEADER + 20, &[0x55]);
    let err = RingWriter::open(&dir.0, &config(64 << 10, 8)).err();
    assert!(matches!(err, Some(RingError::Corrupt { .. }) | None), "{err:?}");
}

#[test]
fn one_writer_at_a_time() {
    let dir = Scratch::new("lock");
    let _w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
    assert!(matches!(RingWriter::open(&dir.0, &config(1 << 20, 4)), Err(RingError::Locked(_))));
}

#[test]
fn sizes_that_cannot_work_are_refused() {
    let dir = Scratch::new("sizes");
    let err = RingWriter::open(&dir.0, &config(1 << 20, 3)).err().unwrap().to_string();
    assert!(err.contains("4 at least"), "{err}");
    let mut w = RingWriter::open(&dir.0, &config(64 << 10, 4)).unwrap();
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let err = w.append(&log.trx(1, 70 << 10)).unwrap_err().to_string();
    assert!(err.contains("more than a segment"), "{err}");
    let err = w.append(&log.trx(200, 1000)).unwrap_err().to_string();
    assert!(err.contains("more than the ring holds"), "{err}");
}

#[test]
fn every_record_of_a_unit_carries_its_flags() {
    let dir = Scratch::new("flags");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
    w.append(&log.trx(2, 10)).unwrap();
    drop(w);
    let reader = RingReader::open(&dir.0).unwrap();
    let unit = reader.units(reader.start()).next().unwrap().unwrap();
    let flags: Vec<u16> =
        unit.records.iter().map(|r| r.meta.flags & (record::UNIT_START | UNIT_END)).collect();
    assert_eq!(flags, [record::UNIT_START, 0, 0, UNIT_END]);
    assert!(unit.records.iter().all(|r| r.meta.flags & record::CRC32 != 0 && r.meta.gtid == "0-1-1"));
}

#[test]
fn every_segment_starts_with_the_format_description_in_force() {
    let dir = Scratch::new("fde");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut w = RingWriter::open(&dir.0, &config(64 << 10, 4)).unwrap();
    let fde = vec![log.event(15, &[4, 0, 0, 0, 0, 0, 0, 0], None)];
    w.append(&fde).unwrap();
    for _ in 0..300 {
        w.append(&log.trx(4, 200)).unwrap();
    }
    drop(w);
    // The first segments were reused: the original FORMAT_DESCRIPTION is
    // gone, and each segment held starts with a copy of it.
    let reader = RingReader::open(&dir.0).unwrap();
    assert!(reader.first().unwrap().start > fde[0].end);
    let units: Vec<_> = reader.units(reader.start()).map(|u| u.unwrap()).collect();
    let copies: Vec<_> = units.iter().filter(|u| u.records[0].meta.flags & record::RESENT != 0).collect();
    assert_eq!(copies.len(), segment::list(&dir.0).unwrap().len());
    for c in copies {
        assert_eq!(c.records.len(), 1);
        assert_eq!((c.records[0].event, c.records[0].meta.start), (&fde[0].bytes[..], 4));
    }
    // Copies are not data: the resume point and the range ignore them.
    let w = RingWriter::open(&dir.0, &config(64 << 10, 4)).unwrap();
    assert_eq!(w.resume_point().maria.to_string(), "0-1-300");
}

#[test]
fn damage_before_the_checkpoint_is_not_taken_for_a_torn_tail() {
    let dir = Scratch::new("before-checkpoint");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut w = RingWriter::open(&dir.0, &config(1 << 20, 4)).unwrap();
    for _ in 0..20 {
        w.append(&log.trx(3, 300)).unwrap();
    }
    // A clean stop: the checkpoint is at the end of the data.
    drop(w);
    let (path, end) = tail(&dir.0);
    patch(&path, end / 2, &[0x5a; 16]);
    let err = RingWriter::open(&dir.0, &config(1 << 20, 4)).err().expect("damage refused");
    let text = err.to_string();
    assert!(matches!(err, RingError::Corrupt { .. }) && text.contains("before the checkpoint"), "{text}");
}

#[test]
fn a_damaged_header_of_the_checkpointed_segment_is_refused_not_removed() {
    let dir = Scratch::new("header");
    let mut log = MadeUpBinlog::new("mysql-bin.000001", 0);
    let mut w = RingWriter::open(&dir.0, &config(64 << 10, 8)).unwrap();
    for _ in 0..100 {
        w.append(&log.trx(3, 300)).unwrap();
    }
    drop(w);
    let (_, newest) = segment::list(&dir.0).unwrap().pop().unwrap();
    patch(&newest, 9, &[0xee]);
    let err = RingWriter::open(&dir.0, &config(64 << 10, 8)).err().expect("refused");
    assert!(matches!(err, RingError::Corrupt { .. }), "{err}");
    assert!(newest.exists(), "the damaged segment is kept for inspection");
}
