//! `--config FILE`: a TOML file that holds what flags hold.
//!
//! Each command reads the table named after it; keys are the long flag
//! names without the dashes:
//!
//! ```toml
//! [stream]
//! source = "mysql://gapless@db1.example:3306"
//! password-file = "/etc/gapless/password"
//! ring = "/var/lib/gapless/ring"
//! ring-size = "8G"
//! semi-sync = true
//! listen = "127.0.0.1:9306"
//! ```
//!
//! The file's values go in front of the command line's, so a flag given on
//! the command line wins. `true` turns a switch on, `false` leaves it out,
//! and an array repeats the flag. A password never belongs here: the file
//! names a password file instead.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context as _};

/// Expands `--config FILE` in `args` (the whole command line, program name
/// first) into the flags the file holds for the command.
pub fn expand(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some(at) = args.iter().position(|a| a == "--config" || a.to_string_lossy().starts_with("--config="))
    else {
        return Ok(args);
    };
    let (path, used) = match args[at].to_string_lossy().strip_prefix("--config=") {
        Some(p) => (OsString::from(p), 1),
        None => (args.get(at + 1).cloned().context("--config needs a file")?, 2),
    };
    // The command is the first argument that is not a flag.
    let Some(command) = args[1..at].iter().find(|a| !a.to_string_lossy().starts_with('-')) else {
        bail!("--config goes after the command, e.g. `gapless stream --config FILE`");
    };
    let command = command.to_string_lossy().into_owned();
    let flags = flags_from_file(Path::new(&path), &command)?;
    let command_at = args.iter().position(|a| *a == *command).expect("found above");
    // The cluster commands read the file themselves too (their clusters):
    // they keep the flag.
    let keep = if CLUSTER_COMMANDS.contains(&command.as_str()) { 0 } else { used };
    let mut out = Vec::with_capacity(args.len() + flags.len());
    out.extend(args[..=command_at].iter().cloned());
    out.extend(flags);
    out.extend(args[command_at + 1..at].iter().cloned());
    out.extend(args[at + keep..].iter().cloned());
    Ok(out)
}

/// Commands whose `--config` file also describes the clusters they work
/// on (docs/topology.md): they get `--config FILE` as well as its flags.
pub const CLUSTER_COMMANDS: &[&str] = &["topology", "precheck", "switchover"];

/// The flags the `[command]` table of the file at `path` holds.
pub fn flags_from_file(path: &Path, command: &str) -> anyhow::Result<Vec<OsString>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("--config {}", path.display()))?;
    flags_from_toml(&text, command).with_context(|| format!("--config {}", path.display()))
}

/// The flags the `[command]` table of a TOML text holds.
pub fn flags_from_toml(text: &str, command: &str) -> anyhow::Result<Vec<OsString>> {
    let doc: toml::Table = text.parse()?;
    let Some(table) = doc.get(command) else { return Ok(Vec::new()) };
    let Some(table) = table.as_table() else { bail!("[{command}] must be a table") };
    let mut flags = Vec::new();
    for (key, value) in table {
        if key == "password" {
            bail!("[{command}] password: keep passwords out of config files; use password-file (mode 0600) or $GAPLESS_PASSWORD");
        }
        if key == "api-token" {
            bail!(
                "[{command}] api-token: keep the token out of config files; use api-token-file (mode 0600)"
            );
        }
        let flag = OsString::from(format!("--{key}"));
        let values = match value {
            toml::Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for v in values {
            match v {
                toml::Value::Boolean(true) => flags.push(flag.clone()),
                toml::Value::Boolean(false) => {}
                toml::Value::String(s) => flags.extend([flag.clone(), s.into()]),
                toml::Value::Integer(n) => flags.extend([flag.clone(), n.to_string().into()]),
                toml::Value::Float(x) => flags.extend([flag.clone(), x.to_string().into()]),
                other => bail!("[{command}] {key}: {} values are not flags", other.type_str()),
            }
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn tables_become_flags() {
        let text = r#"
            [stream]
            source = "mysql://repl@db1:3306"
            semi-sync = true
            verbose = false
            heartbeat = 2.5
            server-id = 77
            [decode]
            table = ["a", "b"]
        "#;
        let flags = strings(&flags_from_toml(text, "stream").unwrap());
        assert_eq!(
            flags,
            ["--heartbeat", "2.5", "--semi-sync", "--server-id", "77", "--source", "mysql://repl@db1:3306"]
        );
        assert_eq!(strings(&flags_from_toml(text, "decode").unwrap()), ["--table", "a", "--table", "b"]);
        assert!(flags_from_toml(text, "replay").unwrap().is_empty());
    }

    #[test]
    fn passwords_and_bad_values_are_refused() {
        let err = flags_from_toml("[stream]\npassword = \"s3cret\"", "stream").unwrap_err().to_string();
        assert!(err.contains("password-file") && !err.contains("s3cret"), "{err}");
        let err =
            flags_from_toml("[stream]\napi-token = \"t0ken-t0ken-t0ken\"", "stream").unwrap_err().to_string();
        assert!(err.contains("api-token-file") && !err.contains("t0ken"), "{err}");
        assert!(flags_from_toml("[stream]\nx = { a = 1 }", "stream").is_err());
        assert!(flags_from_toml("stream = 1", "stream").is_err());
        assert!(flags_from_toml("[stream\n", "stream").is_err());
    }

    #[test]
    fn the_command_line_comes_after_the_file() {
        let dir = std::env::temp_dir().join(format!("gapless-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gapless.toml");
        std::fs::write(&path, "[stream]\nsource = \"mysql://a@h\"\nheartbeat = 9\n").unwrap();
        let args: Vec<OsString> =
            ["gapless", "stream", "--heartbeat", "1", "--config", path.to_str().unwrap(), "--semi-sync"]
                .iter()
                .map(OsString::from)
                .collect();
        let out = strings(&expand(args).unwrap());
        assert_eq!(
            out,
            [
                "gapless",
                "stream",
                "--heartbeat",
                "9",
                "--source",
                "mysql://a@h",
                "--heartbeat",
                "1",
                "--semi-sync"
            ]
        );
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&out).unwrap();
        let crate::cli::Command::Stream(s) = cli.command else { panic!() };
        assert_eq!((s.heartbeat, s.source.as_str()), (1.0, "mysql://a@h"), "the command line wins");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cluster_commands_keep_their_config_file() {
        let dir = std::env::temp_dir().join(format!("gapless-config-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clusters.toml");
        std::fs::write(
            &path,
            "[precheck]
max-lag = 5
",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let args: Vec<OsString> =
            ["gapless", "precheck", "--config", p, "--cluster", "shop"].iter().map(OsString::from).collect();
        let out = strings(&expand(args).unwrap());
        assert_eq!(out, ["gapless", "precheck", "--max-lag", "5", "--config", p, "--cluster", "shop"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
