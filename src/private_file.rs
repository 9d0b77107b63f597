//! Files that hold secrets (a password, the API token, a TLS key) must not
//! be readable by anyone but their owner.

use std::path::Path;

/// Refuses a secret file group or others can read. The error says why
/// (the caller names the file and its flag), never the file's content.
pub fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!("mode {mode:04o} lets others read it; chmod 600 it first"));
        }
    }
    Ok(())
}
