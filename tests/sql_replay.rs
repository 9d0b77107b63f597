//! `gapless decode --format sql`, end to end: the SQL it writes for the
//! generated binlogs is run on a fresh MariaDB server (fixtures/apply-sql.sh),
//! which must end with exactly the tables the original server had, and the
//! same GTID position (the SQL keeps each transaction's GTID).

mod common;

use std::path::Path;

fn read_dir_sorted(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("tsv"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn replaying_the_sql_rebuilds_the_same_tables_and_gtids() {
    let Some(generated) = common::generated() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for variant in ["full-crc", "compressed", "image-minimal"] {
        let dir = generated.join(variant);
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sql-replay-{variant}"));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).expect("work dir");
        let sql = work.join("replay.sql");
        let out = common::gapless()
            .args(["decode", "--format", "sql"])
            .args(common::variant_binlogs(&dir))
            .output()
            .expect("run gapless");
        assert!(out.status.success(), "{variant}: decode failed: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&sql, &out.stdout).expect("write sql");
        let applied = std::process::Command::new(root.join("fixtures/apply-sql.sh"))
            .arg(&sql)
            .arg(work.join("result"))
            .output()
            .expect("run apply-sql.sh");
        assert!(
            applied.status.success(),
            "{variant}: the SQL did not apply cleanly: {}\n{}",
            sql.display(),
            String::from_utf8_lossy(&applied.stderr)
        );
        let ours = read_dir_sorted(&work.join("result/expected"));
        let theirs = read_dir_sorted(&dir.join("expected"));
        assert_eq!(ours.len(), theirs.len(), "{variant}: table count");
        for ((name, got), (_, want)) in ours.iter().zip(&theirs) {
            assert_eq!(got, want, "{variant}: table {name} differs after replaying {}", sql.display());
        }
        let gtid = std::fs::read_to_string(work.join("result/gtid.txt")).expect("gtid.txt");
        let server = std::fs::read_to_string(dir.join("server.txt")).expect("server.txt");
        let original =
            server.lines().find_map(|l| l.strip_prefix("gtid_binlog_pos=")).expect("gtid_binlog_pos");
        assert_eq!(gtid.trim(), original, "{variant}: GTID position after replay");
    }
}

#[test]
fn sql_without_column_names_is_refused_clearly() {
    let Some(generated) = common::generated() else { return };
    let dir = generated.join("minimal-nocrc");
    let out = common::gapless()
        .args(["decode", "--format", "sql"])
        .args(common::variant_binlogs(&dir))
        .output()
        .expect("run gapless");
    assert!(!out.status.success(), "UPDATE without column names cannot be SQL");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("column names") && err.contains("binlog_row_metadata"), "unclear error: {err}");
    assert!(err.contains("mariadb-bin.00000"), "error names the file: {err}");
}
