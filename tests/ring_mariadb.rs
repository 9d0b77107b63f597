//! The sidecar (`gapless stream --ring`) against live MariaDB primaries:
//! the ring holds the primary's binlog byte for byte; torn tails are cut
//! and fetched again; twenty kill -9s in a row lose and repeat nothing; a
//! full disk pauses the stream without damage; with semi-sync every
//! acknowledged commit is in the ring.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::server::{Server, Streamer};
use common::{mariadb_here, repo, row_lines, wait_until};
use gapless::ring::record::{RESENT, SEGMENT_HEADER};
use gapless::ring::{segment, RingReader};

const PASSWORD: &str = "ring-pw-41c9";
const FORMAT_DESCRIPTION: u8 = 15;
const LOG_EVENT_BINLOG_IN_USE_F: u8 = 1;

/// A fresh ring directory for one test.
fn ring_dir(tag: &str) -> PathBuf {
    let dir = repo().join("target/tmp").join(format!("ring-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A small xorshift generator: the tests' random moments and offsets,
/// printed seed first so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn new(tag: &str) -> Rng {
        let seed =
            std::env::var("GAPLESS_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
                    | 1
            });
        eprintln!("{tag}: GAPLESS_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Records of the ring that stand for binlog events (not the copies of
/// FORMAT_DESCRIPTION the ring keeps per segment), in order:
/// (file, start, end, bytes).
fn ring_events(dir: &Path) -> Vec<(String, u64, u64, Vec<u8>)> {
    let reader = RingReader::open(dir).expect("open ring");
    let mut out = Vec::new();
    for unit in reader.units(reader.start()) {
        for r in unit.expect("ring unit").records {
            if r.meta.flags & RESENT == 0 {
                out.push((r.meta.file.to_string(), r.meta.start, r.meta.end, r.event.to_vec()));
            }
        }
    }
    out
}

/// The end of the newest whole unit the ring holds.
fn ring_end(dir: &Path) -> Option<(String, u64)> {
    let reader = RingReader::open(dir).ok()?;
    reader.last().map(|e| (e.file.clone(), e.end))
}

/// Waits until the ring holds everything up to the end of the primary's
/// newest binlog file.
fn wait_caught_up(dir: &Path, primary: &Server, s: &Streamer) {
    let newest = primary.binlogs().pop().expect("a binlog");
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    let size = std::fs::metadata(&newest).unwrap().len();
    let start = Instant::now();
    while ring_end(dir) != Some((name.clone(), size)) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the ring ends at {:?}, the primary at {name}:{size}; log:\n{}",
            ring_end(dir),
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every event record is byte for byte the event at its place in the
/// primary's binlog files, and together they cover the files with no gap
/// and no repeat, from the first record to the end of the newest file.
/// Returns the number of events compared.
fn assert_ring_is_binlog(dir: &Path, files: &[PathBuf]) -> usize {
    let events = ring_events(dir);
    assert!(!events.is_empty(), "the ring is empty");
    let content = |name: &str| -> Vec<u8> {
        let path = files
            .iter()
            .find(|f| f.file_name().unwrap() == name)
            .unwrap_or_else(|| panic!("no binlog {name}"));
        std::fs::read(path).unwrap()
    };
    let mut current = (String::new(), Vec::new());
    let mut next = 0u64;
    for (i, (file, start, end, bytes)) in events.iter().enumerate() {
        if *file != current.0 {
            if !current.0.is_empty() {
                assert_eq!(
                    next,
                    current.1.len() as u64,
                    "{}: the ring stops before the end of the file",
                    current.0
                );
            }
            current = (file.clone(), content(file));
            // The FORMAT_DESCRIPTION at 4 may have come as a resent copy.
            let fde_end = 4 + u64::from(u32::from_le_bytes(current.1[13..17].try_into().unwrap()));
            assert!(i == 0 || *start == 4 || *start == fde_end, "{file} starts at {start}");
            next = *start;
        }
        assert_eq!(*start, next, "{file}: gap or repeat at {start} (expected {next})");
        let mut want = current
            .1
            .get(*start as usize..*end as usize)
            .unwrap_or_else(|| panic!("{file}:{start}..{end} past the end"))
            .to_vec();
        if *start == 4 && want[4] == FORMAT_DESCRIPTION {
            // The primary clears LOG_EVENT_BINLOG_IN_USE_F in the
            // FORMAT_DESCRIPTION it sends (the replica has no use for it);
            // the file keeps it set until the file is closed. The checksum
            // is computed without it.
            want[17] &= !LOG_EVENT_BINLOG_IN_USE_F;
        }
        assert!(want == bytes[..], "{file}:{start}: the ring's event differs from the binlog's");
        next = *end;
    }
    assert_eq!(
        next,
        current.1.len() as u64,
        "{}: the ring stops before the end of the newest file",
        current.0
    );
    let last = files.last().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(current.0, last, "the ring should reach the newest file");
    events.len()
}

/// Inserts ids `from..to`, one transaction each.
fn insert_script(from: u32, to: u32) -> String {
    (from..to).map(|i| format!("INSERT INTO d.t VALUES ({i}, REPEAT('x', {}));\n", i % 200)).collect()
}

fn sidecar(primary: &Server, dir: &Path, extra: &[&str], tag: &str) -> Streamer {
    let source = primary.url("repl");
    let dir = dir.display().to_string();
    let mut args = vec!["--source", &source, "--ring", &dir, "--heartbeat", "1", "--max-backoff", "1"];
    args.extend_from_slice(extra);
    Streamer::spawn(&args, PASSWORD, tag)
}

fn decode(args: &[&str]) -> String {
    let out = common::gapless().arg("decode").args(args).output().expect("gapless decode");
    assert!(out.status.success(), "decode {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The newest segment, the end of its data, and the checkpoint offset when
/// the checkpoint is in that segment.
fn newest_segment(dir: &Path) -> (PathBuf, usize, usize) {
    let (seq, path) = segment::list(dir).unwrap().pop().unwrap();
    let seg = segment::ReadableSegment::open(&path).unwrap().unwrap();
    let (end, _) = segment::walk(&seg.map, seq, SEGMENT_HEADER, 0, |_| {});
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    let checkpoint = &state["checkpoint"];
    let at = if checkpoint["seq"].as_u64() == Some(seq) {
        checkpoint["offset"].as_u64().unwrap() as usize
    } else {
        SEGMENT_HEADER
    };
    (path, end, at)
}

/// A GET to the status API: the status line and headers, then the body.
fn http_get(port: u16, path: &str) -> String {
    let (status, body) = common::sidecar::http(port, "GET", path, None, None);
    format!("HTTP/1.1 {status}\r\n\r\n{body}")
}

fn patch(path: &Path, at: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new().write(true).open(path).unwrap().write_all_at(bytes, at as u64).unwrap();
}

#[test]
fn the_ring_is_the_primary_binlog_byte_for_byte_and_torn_tails_are_fetched_again() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start(
        "ringeq",
        1,
        22100,
        &["--binlog-row-metadata=FULL", "--binlog-checksum=CRC32", "--max-binlog-size=65536"],
    );
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    let dir = ring_dir("eq");
    let port = common::sidecar::free_port();
    let listen = format!("127.0.0.1:{port}");
    let start = ["--from", "mariadb-bin.000001:4", "--ring-size", "64M", "--listen", &listen];
    let mut s = sidecar(&primary, &dir, &start, "ringeq");
    let workload = std::fs::read_to_string(repo().join("fixtures/workload/types.sql")).expect("workload");
    primary.sql(&workload);
    primary.sql("FLUSH BINARY LOGS");
    let files = primary.binlogs();
    assert!(files.len() >= 3, "the workload should span several binlogs: {files:?}");
    wait_caught_up(&dir, &primary, &s);
    let compared = assert_ring_is_binlog(&dir, &files);
    assert!(compared > 200, "only {compared} events");

    // The status API says the same.
    let newest = files.last().unwrap();
    let (name, size) =
        (newest.file_name().unwrap().to_str().unwrap(), std::fs::metadata(newest).unwrap().len());
    wait_until(Duration::from_secs(10), "the status to show the end", || {
        let status = http_get(port, "/status");
        status.contains(&format!("\"position\": {size}")) && status.contains(name)
    });
    let status: serde_json::Value =
        serde_json::from_str(http_get(port, "/status").split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(status["connected"], true, "{status}");
    assert_eq!(status["ring"]["last_durable"]["file"], name, "{status}");
    assert_eq!(status["ring"]["last_durable"]["position"], size, "{status}");
    assert_eq!(status["last_received"]["position"], size, "{status}");
    assert!(status["ring"]["used_bytes"].as_u64().unwrap() > 0, "{status}");
    let metrics = http_get(port, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("gapless_connected") && l.ends_with(" 1")), "{metrics}");
    assert!(metrics.contains("gapless_ring_used_bytes "), "{metrics}");

    // `gapless decode --ring` reads the ring like the files, while the
    // sidecar runs.
    let file_args: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut args = vec!["--format", "jsonl"];
    args.extend(file_args.iter().map(String::as_str));
    let from_files = decode(&args);
    let from_ring = decode(&["--format", "jsonl", "--ring", &dir.display().to_string()]);
    assert!(row_lines(&from_files).len() > 100);
    assert_eq!(row_lines(&from_ring), row_lines(&from_files), "decode --ring vs decode of the files");

    // Torn tails, as a crash leaves them: zeros from a random place, then
    // garbage. On start the sidecar cuts back to the last whole
    // transaction and fetches the rest again.
    primary.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(255)) ENGINE=InnoDB;");
    let mut rng = Rng::new("torn tails");
    for (round, damage) in ["zeros", "garbage"].into_iter().enumerate() {
        let base = 1000 * (round as u32 + 1);
        primary.sql(&insert_script(base, base + 200));
        wait_caught_up(&dir, &primary, &s);
        drop(s); // kill -9
        let (path, end, checkpoint) = newest_segment(&dir);
        let from = checkpoint.max(end.saturating_sub(4000)).max(SEGMENT_HEADER);
        let at = from + rng.below((end - from) as u64) as usize;
        let bytes: Vec<u8> = match damage {
            "zeros" => vec![0; end - at],
            _ => (0..(end - at + 64)).map(|_| rng.below(256) as u8).collect(),
        };
        patch(&path, at, &bytes);
        s = sidecar(&primary, &dir, &start, &format!("ringeq-{damage}"));
        wait_until(Duration::from_secs(30), "the sidecar to start", || s.log().contains("streaming"));
        let log = s.log();
        assert!(
            log.contains("cut an incomplete transaction") || log.contains("ring recovered"),
            "{damage}: {log}"
        );
        primary.sql(&insert_script(base + 200, base + 300));
        wait_caught_up(&dir, &primary, &s);
        assert_ring_is_binlog(&dir, &primary.binlogs());
    }
    assert_eq!(s.stop(), 0, "{}", s.log());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn twenty_kill_9s_during_a_heavy_workload_lose_and_repeat_nothing() {
    if !mariadb_here() {
        return;
    }
    let primary =
        Server::start("ringkill", 1, 22200, &["--binlog-checksum=CRC32", "--binlog-row-metadata=FULL"]);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    primary.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(255)) ENGINE=InnoDB;");
    let dir = ring_dir("kill");
    // Small segments: kills land in every phase, rotation included.
    let args = ["--from-gtid", "", "--ring-size", "64M", "--segment-size", "1M"];
    let mut s = sidecar(&primary, &dir, &args, "ringkill-0");
    wait_until(Duration::from_secs(30), "the sidecar to stream", || s.log().contains("streaming"));

    // Two sessions inserting in the background all along.
    let writers: Vec<_> = (0..2u32)
        .map(|w| {
            let mut child = primary
                .client("-N -B")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("writer");
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                use std::io::Write;
                let _ =
                    stdin.write_all(insert_script(100_000 * (w + 1), 100_000 * (w + 1) + 6000).as_bytes());
            });
            child
        })
        .collect();
    let mut rng = Rng::new("kill -9");
    for kill in 1..=20 {
        std::thread::sleep(Duration::from_millis(150 + rng.below(500)));
        assert!(s.is_running(), "the sidecar exited before kill {kill}:\n{}", s.log());
        drop(s); // kill -9
        s = sidecar(&primary, &dir, &args, &format!("ringkill-{kill}"));
    }
    wait_until(Duration::from_secs(30), "the last sidecar to stream", || s.log().contains("streaming"));
    for mut w in writers {
        assert!(w.wait().unwrap().success(), "a writer failed");
    }
    wait_caught_up(&dir, &primary, &s);
    assert_eq!(s.stop(), 0, "{}", s.log());

    // Every transaction exactly once, in order: the GTIDs run 0-1-N without
    // a gap or a repeat, and the bytes are the primary's.
    let reader = RingReader::open(&dir).unwrap();
    let seqs: Vec<u64> = reader
        .units(reader.start())
        .map(|u| u.unwrap())
        .filter(|u| !u.gtid().is_empty())
        .map(|u| u.gtid().rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "GTIDs in the ring");
    let binlog_pos = primary.value("SELECT @@gtid_binlog_pos");
    assert_eq!(format!("0-1-{}", seqs.last().unwrap()), binlog_pos);
    assert!(seqs.len() > 12_000, "{} transactions", seqs.len());
    assert_ring_is_binlog(&dir, &primary.binlogs());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tmpfs mounted for one test, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(tag: &str, size: &str) -> SmallDisk {
        let dir = repo().join("target/tmp").join(format!("disk-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "mounting a {size} tmpfs on {} failed (the test needs root)", dir.display());
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_pauses_the_stream_and_it_resumes_when_space_is_freed() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start("ringfull", 1, 22300, &["--binlog-checksum=CRC32"]);
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    primary.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(255)) ENGINE=InnoDB;");
    let disk = SmallDisk::mount("full", "8m");
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![1u8; 13 << 19]).unwrap();
    let dir = disk.0.join("ring");
    let port = common::sidecar::free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--from",
        "mariadb-bin.000001:4",
        "--ring-size",
        "64M",
        "--segment-size",
        "256K",
        "--listen",
        &listen,
    ];
    let mut s = sidecar(&primary, &dir, &args, "ringfull");
    // About 2.5 MB of binlog: more than the 1.5 MB left.
    primary.sql(&insert_script(1, 7000));
    wait_until(Duration::from_secs(30), "the sidecar to say the disk is full", || {
        s.log().contains("No space left on device")
    });
    let log = s.log();
    assert!(log.contains("paused"), "the log should say the stream is paused:\n{log}");
    let status = http_get(port, "/status");
    assert!(status.contains("No space left on device"), "the status should show the pause:\n{status}");
    // What is stored is intact while paused.
    let held = ring_events(&dir).len();
    assert!(held > 100, "{held} events stored before the disk filled");

    std::fs::remove_file(&filler).unwrap();
    wait_caught_up(&dir, &primary, &s);
    assert!(s.log().contains("resuming the stream"), "{}", s.log());
    let status = http_get(port, "/status");
    assert!(status.contains("\"paused\": null"), "{status}");
    assert_ring_is_binlog(&dir, &primary.binlogs());
    assert_eq!(s.stop(), 0, "{}", s.log());
}

#[test]
fn with_semi_sync_every_acknowledged_commit_is_in_the_ring() {
    if !mariadb_here() {
        return;
    }
    let primary = Server::start(
        "ringsemi",
        1,
        22400,
        &[
            "--binlog-checksum=CRC32",
            "--binlog-row-metadata=FULL",
            "--rpl-semi-sync-master-enabled=ON",
            "--rpl-semi-sync-master-timeout=60000",
            "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
        ],
    );
    primary.create_repl_user("repl", &format!("IDENTIFIED BY '{PASSWORD}'"));
    let dir = ring_dir("semi");
    let source = primary.url("repl");
    let ring = dir.display().to_string();
    // --fsync never: the ACK must still wait for a sync of its own.
    let mut s = Streamer::spawn_with_log(
        &["--source", &source, "--ring", &ring, "--semi-sync", "--fsync", "never", "--heartbeat", "1"],
        PASSWORD,
        "ringsemi",
        "info,gapless::ring=debug,gapless::stream=debug",
    );
    let count = |name: &str| -> u64 {
        primary
            .value(&format!(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = '{name}'"
            ))
            .parse()
            .unwrap_or(u64::MAX)
    };
    wait_until(Duration::from_secs(30), "gapless as a semi-sync replica", || {
        count("RPL_SEMI_SYNC_MASTER_CLIENTS") == 1
    });
    primary.sql("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(255)) ENGINE=InnoDB;");
    let no_before = count("RPL_SEMI_SYNC_MASTER_NO_TX");

    // A client commits one row at a time and prints each id once its
    // COMMIT has returned; the primary dies in the middle.
    let acked_file = dir.with_extension("acked");
    let mut client = primary
        .client("-N -B --unbuffered")
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&acked_file).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("client");
    let mut stdin = client.stdin.take().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        let script: String =
            (1..20_000).map(|i| format!("INSERT INTO d.t VALUES ({i}, 'x'); SELECT {i};\n")).collect();
        let _ = stdin.write_all(script.as_bytes());
    });
    wait_until(Duration::from_secs(30), "some commits", || {
        std::fs::read_to_string(&acked_file).map_or(0, |t| t.lines().count()) > 200
    });
    assert_eq!(count("RPL_SEMI_SYNC_MASTER_NO_TX"), no_before, "no commit fell back to asynchronous");
    primary.kill9();
    let _ = client.wait();
    let acked: Vec<u32> =
        std::fs::read_to_string(&acked_file).unwrap().lines().map(|l| l.trim().parse().unwrap()).collect();
    assert!(acked.len() > 200);
    // Give the sidecar a moment for what was in flight, then stop it.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.stop(), 0, "{}", s.log());

    let rows = decode(&["--format", "jsonl", "--ring", &dir.display().to_string()]);
    let in_ring: std::collections::BTreeSet<u32> = row_lines(&rows)
        .iter()
        .map(|l| {
            let after = &l[l.find("\"after\":{\"id\":").expect("after") + 14..];
            after[..after.find(',').unwrap()].parse().unwrap()
        })
        .collect();
    let missing: Vec<u32> = acked.iter().copied().filter(|id| !in_ring.contains(id)).collect();
    assert!(missing.is_empty(), "acknowledged commits missing from the ring: {missing:?}");

    // In gapless's own order of events: every ACK went out after a sync
    // that covered its position.
    let log = s.log();
    let (mut durable, mut acks) = (None::<(String, u64)>, 0);
    for line in log.lines() {
        let field = |key: &str| -> Option<String> {
            let at = line.find(&format!(" {key}="))? + key.len() + 2;
            Some(line[at..].split_whitespace().next()?.to_string())
        };
        let place = || Some((field("file")?, field("position")?.parse::<u64>().ok()?));
        if line.contains("durable") {
            durable = place();
        } else if line.contains("semi-sync ACK sent") {
            let (file, pos) = place().expect("ACK line with file and position");
            let covered = durable.as_ref().is_some_and(|(f, p)| *f == file && *p >= pos);
            assert!(covered, "ACK for {file}:{pos} before a sync covered it (last durable: {durable:?})");
            acks += 1;
        }
    }
    assert!(acks >= acked.len() / 4, "{acks} ACKs logged for {} commits", acked.len());
    let _ = std::fs::remove_dir_all(&dir);
}
