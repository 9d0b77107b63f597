//! `gapless decode` as a DBA runs it: errors that name the file and offset,
//! `--force`, the filters, several files in order, unknown events.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value as Json;

fn run(args: &[&str], files: &[PathBuf]) -> Output {
    common::gapless().arg("decode").args(args).args(files).output().expect("run gapless")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn jsonl(o: &Output) -> Vec<Json> {
    assert!(o.status.success(), "decode failed: {}", stderr(o));
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

fn rows(lines: &[Json]) -> Vec<&Json> {
    lines.iter().filter(|l| l.get("op").is_some()).collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("decode-cli");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

/// The full-crc variant's binlogs, or None when MariaDB is unavailable.
fn full_crc() -> Option<Vec<PathBuf>> {
    common::generated().map(|g| common::variant_binlogs(&g.join("full-crc")))
}

#[test]
fn bad_magic_names_the_file() {
    let f = scratch("not-a-binlog");
    std::fs::write(&f, b"hello world").unwrap();
    let o = run(&[], std::slice::from_ref(&f));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("not-a-binlog") && e.contains("magic") && e.contains("68 65 6c 6c"), "{e}");
}

#[test]
fn checksum_mismatch_names_offset_and_force_skips_it() {
    let Some(files) = full_crc() else { return };
    let mut bytes = std::fs::read(&files[0]).unwrap();
    // Find the first Query event by walking headers, and flip a byte of its
    // statement text.
    let mut pos = 4usize;
    let query_at = loop {
        let size = u32::from_le_bytes(bytes[pos + 9..pos + 13].try_into().unwrap()) as usize;
        if bytes[pos + 4] == 2 {
            break pos;
        }
        pos += size;
    };
    let size = u32::from_le_bytes(bytes[query_at + 9..query_at + 13].try_into().unwrap()) as usize;
    bytes[query_at + size - 6] ^= 0x20;
    let f = scratch("flipped.000001");
    std::fs::write(&f, &bytes).unwrap();

    let o = run(&["--format", "jsonl"], std::slice::from_ref(&f));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("flipped.000001")
            && e.contains(&format!("checksum mismatch in event at offset {query_at}")),
        "{e}"
    );

    let o = run(&["--format", "jsonl", "--force"], std::slice::from_ref(&f));
    assert_eq!(o.status.code(), Some(1), "skipping is reported as a failure exit");
    let e = stderr(&o);
    assert!(
        e.contains(&format!("skipping event at offset {query_at}")) && e.contains("skipped 1 event"),
        "{e}"
    );
    // Everything after the damaged event was still decoded.
    let clean = jsonl(&run(&["--format", "jsonl"], &files[..1]));
    let forced: Vec<Json> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows(&forced).len(), rows(&clean).len());

    let o = run(&["--format", "jsonl", "--no-verify-checksums"], &[f]);
    assert!(o.status.success(), "without verification the flipped text decodes: {}", stderr(&o));
}

#[test]
fn truncated_file_names_offset() {
    let Some(files) = full_crc() else { return };
    let bytes = std::fs::read(&files[1]).unwrap();
    let cut = bytes.len() - 7;
    let f = scratch("cut.000002");
    std::fs::write(&f, &bytes[..cut]).unwrap();
    let o = run(&[], &[f]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("cut.000002") && e.contains("the file ends inside it"), "{e}");
}

#[test]
fn files_in_order_with_positions_and_filters() {
    let Some(files) = full_crc() else { return };
    let all = jsonl(&run(&["--format", "jsonl"], &files));
    let all_rows = rows(&all);
    assert!(all_rows.len() > 50);
    // Rows come file by file, positions increasing within each file.
    let mut last = (String::new(), 0u64);
    for r in &all_rows {
        let key = (r["file"].as_str().unwrap().to_owned(), r["pos"].as_u64().unwrap());
        assert!(key >= last, "rows out of order: {key:?} after {last:?}");
        last = key;
    }
    assert!(all_rows.iter().any(|r| r["file"] == "mariadb-bin.000002"), "second file decoded");

    // --database / --table.
    let other = jsonl(&run(&["--format", "jsonl", "--database", "gapless_other"], &files));
    assert!(!rows(&other).is_empty());
    assert!(rows(&other).iter().all(|r| r["db"] == "gapless_other"));
    let t_int = jsonl(&run(&["--format", "jsonl", "--table", "t_int"], &files));
    assert_eq!(
        rows(&t_int).len(),
        all_rows.iter().filter(|r| r["table"] == "t_int").count(),
        "--table keeps exactly that table's rows"
    );

    // --start-position / --stop-position on one file: the rows between.
    let first: Vec<&&Json> = all_rows.iter().filter(|r| r["file"] == "mariadb-bin.000001").collect();
    let (a, b) = (first[3]["pos"].as_u64().unwrap(), first[10]["pos"].as_u64().unwrap());
    let part = jsonl(&run(
        &["--format", "jsonl", "--start-position", &a.to_string(), "--stop-position", &b.to_string()],
        &files[..1],
    ));
    let want = first.iter().filter(|r| (a..b).contains(&r["pos"].as_u64().unwrap())).count();
    assert_eq!(rows(&part).len(), want);

    // --include-gtids: one MariaDB GTID, only its rows.
    let g = all_rows[5]["gtid"].as_str().unwrap().to_owned();
    let one = jsonl(&run(&["--format", "jsonl", "--include-gtids", &g], &files));
    assert!(!rows(&one).is_empty());
    assert!(rows(&one).iter().all(|r| r["gtid"] == g.as_str()));
    assert_eq!(rows(&one).len(), all_rows.iter().filter(|r| r["gtid"] == g.as_str()).count());

    // --start-datetime after everything: nothing.
    let none = jsonl(&run(&["--format", "jsonl", "--start-datetime", "2099-01-01 00:00:00"], &files));
    assert!(rows(&none).is_empty());
}

#[test]
fn unknown_event_types_are_shown_and_reported() {
    let Some(root) = common::shared_fixtures() else { return };
    // An Aurora file with an ignorable event of type 100.
    let f = root.join("mysql-binlog-connector-java/mysql-bin.aurora-padding");
    let o = run(&["--format", "jsonl"], &[f]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("event type 100") && e.contains("unknown to this decoder"), "{e}");
    let lines = jsonl(&o);
    assert!(lines.iter().any(|l| l["event"] == "unknown" && l["type_code"] == 100));
}

#[test]
fn progress_bar_only_on_a_terminal() {
    let Some(files) = full_crc() else { return };
    // stderr is a pipe here: no progress output at all on success.
    let o = run(&["--format", "jsonl"], &files);
    assert!(o.status.success());
    assert!(stderr(&o).is_empty(), "unexpected stderr: {}", stderr(&o));
}

#[test]
fn encrypted_binlogs_are_refused_clearly() {
    let Some(g) = common::generated() else { return };
    let files = common::variant_binlogs(&g.join("encrypted"));
    let o = run(&[], &files[..1]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("encrypted") && e.contains("mariadb-bin.000001") && e.contains("offset"), "{e}");
    // The events before encryption starts are still shown.
    assert!(String::from_utf8_lossy(&o.stdout).contains("Start_encryption"));
}

#[test]
fn parallel_jsonl_is_byte_for_byte_the_sequential_output() {
    let Some(g) = common::generated() else { return };
    for variant in ["full-crc", "compressed", "image-minimal"] {
        let files = common::variant_binlogs(&g.join(variant));
        let one = run(&["--format", "jsonl", "--threads", "1"], &files);
        let many = run(&["--format", "jsonl", "--threads", "3", "--chunk-size", "4096"], &files);
        assert!(one.status.success() && many.status.success(), "{}", stderr(&many));
        assert!(one.stdout.len() > 100_000);
        assert!(one.stdout == many.stdout, "{variant}: parallel output differs");
    }
    // An error half-way: the same output up to it, and the same message.
    let bytes = std::fs::read(&common::variant_binlogs(&g.join("full-crc"))[0]).unwrap();
    let f = scratch("cut-for-parallel.000001");
    std::fs::write(&f, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let one = run(&["--format", "jsonl", "--threads", "1"], std::slice::from_ref(&f));
    let many =
        run(&["--format", "jsonl", "--threads", "2", "--chunk-size", "4096"], std::slice::from_ref(&f));
    assert_eq!(one.status.code(), Some(1));
    assert_eq!(many.status.code(), Some(1));
    assert!(one.stdout == many.stdout, "output before the error differs");
    assert_eq!(stderr(&one), stderr(&many));
}
