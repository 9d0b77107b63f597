//! The stream tracker fed what a MariaDB primary sends on a GTID dump after
//! a reconnect: a made-up ROTATE, then the file from its start (the
//! FORMAT_DESCRIPTION, GTID_LIST, BINLOG_CHECKPOINT and the transactions
//! the replica already has) before the new ones. The already-handed-out
//! events must not come out again, and the FORMAT_DESCRIPTION must still
//! reach the decoder (as resent), or the events after it are misread.

mod common;

use bytes::Bytes;
use gapless::stream::{Received, ResumePoint, Tracker};
use gapless_decoder::checksum;
use gapless_decoder::gtid::MariaGtid;

/// The events of a binlog file: (offset, bytes).
fn events(file: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 4;
    while at + 19 <= file.len() {
        let size = u32::from_le_bytes(file[at + 9..at + 13].try_into().unwrap()) as usize;
        out.push((at as u64, file[at..at + size].to_vec()));
        at += size;
    }
    out
}

/// The ROTATE a primary makes up at the start of a dump.
fn fake_rotate(name: &str) -> Vec<u8> {
    let size = 19 + 8 + name.len() + 4;
    let mut ev = Vec::with_capacity(size);
    ev.extend_from_slice(&0u32.to_le_bytes());
    ev.push(4);
    ev.extend_from_slice(&1u32.to_le_bytes());
    ev.extend_from_slice(&(size as u32).to_le_bytes());
    ev.extend_from_slice(&0u32.to_le_bytes());
    ev.extend_from_slice(&0x20u16.to_le_bytes());
    ev.extend_from_slice(&4u64.to_le_bytes());
    ev.extend_from_slice(name.as_bytes());
    checksum::append(&mut ev);
    ev
}

#[test]
fn a_gtid_dump_restarting_at_the_file_start_repeats_nothing_and_keeps_the_format() {
    let Some(dir) = common::shared_fixtures() else { return };
    let name = "mariadb-bin.000001";
    let file = std::fs::read(dir.join("rust_mysql_common").join(name)).expect("fixture");
    let all = events(&file);

    // First pass: everything, from a fresh start.
    let mut first = Tracker::new(ResumePoint { file: name.into(), position: 4, ..Default::default() });
    first.reconnected(true);
    let mut units: Vec<Received> = Vec::new();
    first.push(Bytes::from(fake_rotate(name)), &mut units).unwrap();
    for (_, ev) in &all {
        first.push(Bytes::from(ev.clone()), &mut units).unwrap();
    }
    let gtids: Vec<&str> = units.iter().filter_map(|r| r.gtid.as_deref()).collect();
    assert!(!gtids.is_empty(), "the fixture has GTID transactions");

    // Resume after the first transaction, as a ring would.
    let first_gtid = gtids[0].to_string();
    let end_of_first =
        units.iter().filter(|r| r.gtid.as_deref() == Some(&first_gtid)).map(|r| r.end).max().unwrap();
    let mut resume = ResumePoint { file: name.into(), position: end_of_first, ..Default::default() };
    resume.maria.set(first_gtid.parse::<MariaGtid>().unwrap());
    let mut again = Tracker::new(resume);
    again.reconnected(true);
    let mut out: Vec<Received> = Vec::new();
    again.push(Bytes::from(fake_rotate(name)), &mut out).unwrap();
    // The primary skips the transactions the replica has, but not the
    // events before the first GTID.
    let first_trx_start = units.iter().find(|r| r.gtid.as_deref() == Some(&first_gtid)).unwrap().offset;
    for (offset, ev) in &all {
        if *offset >= first_trx_start && *offset < end_of_first {
            continue;
        }
        again.push(Bytes::from(ev.clone()), &mut out).expect("every event decodes after the resent format");
    }
    let resent: Vec<&Received> = out.iter().filter(|r| r.resent).collect();
    assert_eq!(resent.len(), 1, "the FORMAT_DESCRIPTION comes out once, as resent");
    assert_eq!(resent[0].offset, 4);
    let new: Vec<(u64, u64)> = out.iter().filter(|r| !r.resent).map(|r| (r.offset, r.end)).collect();
    let expected: Vec<(u64, u64)> =
        units.iter().filter(|r| r.offset >= end_of_first && !r.resent).map(|r| (r.offset, r.end)).collect();
    assert!(!expected.is_empty());
    assert_eq!(new, expected, "exactly the events after the resume point");
}

/// An XA transaction's rows are one unit that ends at its XA_PREPARE (not
/// at the XA END just before it), and the stream resumes after it with its
/// GTID; its XA COMMIT is a unit of its own. Events of a corpus seed cut
/// from the generated workload's binlog (fixtures/workload/types.sql).
#[test]
fn an_xa_group_is_one_unit_and_the_stream_resumes_after_its_xa_prepare() {
    let seed = common::repo().join("fuzz/corpus/sql_render/seed-mariadb-xa-groups");
    let file = std::fs::read(seed).expect("seed");
    let name = "mariadb-bin.000002";
    let mut tracker = Tracker::new(ResumePoint { file: name.into(), position: 4, ..Default::default() });
    tracker.reconnected(true);
    let mut units: Vec<Received> = Vec::new();
    tracker.push(Bytes::from(fake_rotate(name)), &mut units).unwrap();
    // (event type, the resume point's position and GTIDs after it)
    let mut after = Vec::new();
    for (_, ev) in events(&file) {
        let log_pos = u32::from_le_bytes(ev[13..17].try_into().unwrap());
        let kind = ev[4];
        tracker.push(Bytes::from(ev), &mut units).unwrap();
        let resume = tracker.resume_point();
        after.push((kind, log_pos, resume.position, resume.maria.to_string()));
    }
    const QUERY: u8 = 2;
    const XA_PREPARE: u8 = 38;
    let xa_end = after.iter().position(|a| a.0 == QUERY).expect("the first XA group's XA END");
    let prepare = after.iter().position(|a| a.0 == XA_PREPARE).expect("its XA_PREPARE");
    assert_eq!(prepare, xa_end + 1, "{after:?}");
    // Inside the group, the resume point stays before it.
    assert!(!after[xa_end].3.contains("0-1-74"), "{after:?}");
    assert!(after[xa_end].2 < u64::from(after[xa_end].1), "{after:?}");
    // At its XA_PREPARE, the stream resumes after it, with its GTID.
    assert_eq!(after[prepare].2, u64::from(after[prepare].1), "{after:?}");
    assert_eq!(after[prepare].3, "0-1-74");
    // Every unit handed out carries its transaction's GTID.
    assert!(
        units.iter().filter(|r| !r.resent && r.offset > 4).all(|r| r.gtid.is_some()),
        "a unit without its GTID"
    );
    let unit_gtids: Vec<&str> = units.iter().filter_map(|r| r.gtid.as_deref()).collect();
    assert!(unit_gtids.contains(&"0-1-75") && unit_gtids.contains(&"0-1-77"), "{unit_gtids:?}");
}
