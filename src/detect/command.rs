//! `--on-primary-state CMD`: run through `sh -c` at each change of state,
//! with the change in environment variables. The detector never waits for
//! it: the command is spawned, and a thread of its own logs how it ended.

use std::os::fd::AsFd as _;
use std::process::{Command, Stdio};

use tracing::{info, warn};

use super::decide::Change;
use crate::api::time::rfc3339;

/// The variables the command gets, for the change `change` of the primary
/// at `primary` (host:port), entered at `since` (seconds since the epoch).
pub fn environment(change: &Change, primary: &str, since: u64) -> Vec<(&'static str, String)> {
    vec![
        ("GAPLESS_PRIMARY_STATE", change.verdict.state.to_string()),
        ("GAPLESS_PREVIOUS_STATE", change.previous.map(|s| s.to_string()).unwrap_or_default()),
        ("GAPLESS_PRIMARY", primary.to_string()),
        ("GAPLESS_REASON", change.verdict.reason.clone()),
        ("GAPLESS_SINCE", rfc3339(since)),
        ("GAPLESS_SINCE_EPOCH", since.to_string()),
        ("GAPLESS_STATE_CHANGE", change.number.to_string()),
    ]
}

/// `sh -c command` with `env` added and the variables named in `hidden`
/// (the password's) removed; its stdout goes to stderr, so that it never
/// mixes with a stream printed on stdout.
fn build(command: &str, env: &[(&'static str, String)], hidden: &[String]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command).stdin(Stdio::null());
    if let Ok(err) = std::io::stderr().as_fd().try_clone_to_owned() {
        cmd.stdout(Stdio::from(err));
    }
    for name in hidden {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Starts the command (see [`build`]) and returns at once; a thread logs
/// how it ended.
pub fn spawn(command: &str, env: Vec<(&'static str, String)>, hidden: &[String]) {
    let state = env.first().map(|(_, v)| v.clone()).unwrap_or_default();
    let mut child = match build(command, &env, hidden).spawn() {
        Ok(child) => child,
        Err(e) => {
            warn!(%state, "--on-primary-state: cannot start sh: {e}");
            return;
        }
    };
    let pid = child.id();
    // A thread, not a blocking task: a command that never ends must not
    // hold up the runtime's shutdown.
    let waiter = {
        let state = state.clone();
        std::thread::Builder::new().name("on-primary-state".into()).spawn(move || match child.wait() {
            Ok(status) if status.success() => info!(%state, pid, "--on-primary-state command finished"),
            Ok(status) => warn!(%state, pid, "--on-primary-state command failed: {status}"),
            Err(e) => warn!(%state, pid, "--on-primary-state command: cannot wait for it: {e}"),
        })
    };
    if let Err(e) = waiter {
        // The child runs on; it is reaped when gapless exits.
        warn!(%state, pid, "--on-primary-state: cannot watch the command: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::detect::decide::{PrimaryState, Verdict};

    fn change(previous: Option<PrimaryState>) -> Change {
        Change {
            previous,
            verdict: Verdict {
                state: PrimaryState::Dead,
                since: Instant::now(),
                reason: "no answer for 10 s (TCP connect failed: refused); no replicas known to ask".into(),
            },
            number: 3,
        }
    }

    #[test]
    fn environment_of_a_change() {
        let env = environment(&change(Some(PrimaryState::Unreachable)), "db1:3306", 1_700_000_000);
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str()).unwrap();
        assert_eq!(get("GAPLESS_PRIMARY_STATE"), "dead");
        assert_eq!(get("GAPLESS_PREVIOUS_STATE"), "unreachable");
        assert_eq!(get("GAPLESS_PRIMARY"), "db1:3306");
        assert!(get("GAPLESS_REASON").starts_with("no answer for 10 s"));
        assert_eq!(get("GAPLESS_SINCE"), "2023-11-14T22:13:20Z");
        assert_eq!(get("GAPLESS_SINCE_EPOCH"), "1700000000");
        assert_eq!(get("GAPLESS_STATE_CHANGE"), "3");
        let first = environment(&change(None), "db1:3306", 0);
        assert_eq!(first[1], ("GAPLESS_PREVIOUS_STATE", String::new()));
    }

    #[test]
    fn the_password_variable_is_removed() {
        let env = environment(&change(None), "db1:3306", 0);
        let cmd = build("true", &env, &["GAPLESS_PASSWORD".to_string()]);
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&(std::ffi::OsStr::new("GAPLESS_PASSWORD"), None)), "{envs:?}");
        assert!(
            envs.contains(&(std::ffi::OsStr::new("GAPLESS_PRIMARY"), Some(std::ffi::OsStr::new("db1:3306"))))
        );
        assert_eq!(cmd.get_program(), "sh");
        assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["-c", "true"]);
    }

    #[test]
    fn the_command_runs_with_the_change() {
        let dir = std::env::temp_dir().join(format!("gapless-onstate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let script = format!(
            "echo \"$GAPLESS_PREVIOUS_STATE>$GAPLESS_PRIMARY_STATE $GAPLESS_PRIMARY\" > {0}.tmp && mv {0}.tmp {0}",
            out.display()
        );
        spawn(&script, environment(&change(Some(PrimaryState::Alive)), "db1:3306", 0), &[]);
        let start = Instant::now();
        while !out.exists() {
            assert!(start.elapsed() < Duration::from_secs(30), "the command did not run");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "alive>dead db1:3306\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
