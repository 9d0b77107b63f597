//! Records that must survive a crash whole or not at all: written to a
//! temporary file, synced, renamed into place, the directory synced.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

/// Writes `value` as JSON to a temporary file next to `path`, syncs it,
/// renames it over `path` and syncs the directory.
pub fn write_json(path: &Path, value: &Value) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("record"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, value)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A name (say, orchestrator's recovery UID) made safe as a file name:
/// anything but `[A-Za-z0-9._-]` becomes `_`, and it never starts with a
/// dot (no hidden files, no `..`).
pub fn safe_name(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if safe.starts_with('.') || safe.is_empty() {
        format!("_{safe}")
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_written_whole() {
        let dir = std::env::temp_dir().join(format!("gapless-atomic-{}", std::process::id()));
        let path = dir.join("u-1.done");
        write_json(&path, &json!({"a": 1})).unwrap();
        write_json(&path, &json!({"a": 2})).unwrap();
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, json!({"a": 2}));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn safe_names() {
        assert_eq!(safe_name("1700000000:abc-1.x"), "1700000000_abc-1.x");
        assert_eq!(safe_name("../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_name(""), "_");
    }
}
