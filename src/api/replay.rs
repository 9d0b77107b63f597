//! `POST /v1/replay`, `GET /v1/replay` and `GET /v1/replay/N`: start a
//! replay of the ring onto a target (see [`crate::replay`]) and follow it.
//!
//! Each replay runs on its own OS thread with its own current-thread tokio
//! runtime (the replay's future is not `Send`), so it never holds up the
//! stream or the API. The jobs are kept in a registry shared with the API
//! behind a mutex (taken briefly, never across I/O); the most recent
//! [`MAX_JOBS`] are kept. A dry run's SQL is discarded: its report lists the
//! transactions it would apply.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gapless_decoder::gtid::{GtidSet, MariaGtidList};
use gapless_protocol::client::ConnectOptions;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::info;

use super::http::{Response, Status};
use super::time;
use crate::replay::{self, Executed, Mode, ReplayPlan, ReplayStart, Report};

/// Connection options for a target `HOST`, `PORT`: the apply user, its
/// password and the TLS settings (`--apply-user`, `--apply-password-file`,
/// `--ssl-*`).
pub type Login = Arc<dyn Fn(&str, u16) -> ConnectOptions + Send + Sync>;

/// Jobs kept (finished ones beyond this are forgotten, oldest first).
pub const MAX_JOBS: usize = 100;

/// The replays started through the API, and what starting one needs.
pub struct Replays {
    ring: Option<PathBuf>,
    login: Option<Login>,
    jobs: Arc<Mutex<Jobs>>,
}

impl std::fmt::Debug for Replays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replays").field("ring", &self.ring).field("login", &self.login.is_some()).finish()
    }
}

#[derive(Default)]
struct Jobs {
    last_id: u64,
    list: VecDeque<Job>,
}

struct Job {
    id: u64,
    target: String,
    mode: Mode,
    dry_run: bool,
    started: u64,
    finished: Option<u64>,
    progress: Arc<AtomicUsize>,
    outcome: Outcome,
}

enum Outcome {
    Running,
    Succeeded(Box<Report>),
    Failed(String),
}

/// A checked `POST /v1/replay` body.
#[derive(Debug, Clone)]
pub(crate) struct StartRequest {
    host: String,
    port: u16,
    mode: Mode,
    start: ReplayStart,
    dry_run: bool,
    deadline: Option<Duration>,
    relaxed_durability: bool,
}

/// The body as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    target: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    after_gtid: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    deadline: Option<f64>,
    #[serde(default)]
    relaxed_durability: bool,
}

/// Parses and checks a `POST /v1/replay` body; the error is the message
/// for a 400.
pub(crate) fn parse_start(body: &[u8]) -> Result<StartRequest, String> {
    let body: Body = serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))?;
    let (host, port) = parse_target(&body.target)?;
    let mode = match body.mode.as_deref() {
        None | Some("sql") => Mode::Sql,
        Some("binlog") => Mode::Binlog,
        Some(other) => return Err(format!("mode {other:?}: expected \"sql\" or \"binlog\"")),
    };
    let start = match (body.after_gtid, body.after) {
        (Some(_), Some(_)) => return Err("give after_gtid or after, not both".into()),
        (Some(text), None) => ReplayStart::AfterGtid(parse_executed(&text)?),
        (None, Some(at)) => {
            let bad = || format!("after {at:?}: expected FILE:POS with POS >= 4");
            let (file, pos) = at.rsplit_once(':').ok_or_else(bad)?;
            let position: u64 = pos.parse().map_err(|_| bad())?;
            if file.is_empty() || position < 4 {
                return Err(bad());
            }
            ReplayStart::AfterPosition { file: file.to_string(), position }
        }
        (None, None) => ReplayStart::Auto,
    };
    let deadline = match body.deadline {
        Some(s) => Some(
            Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("deadline {s}: expected a positive number of seconds"))?,
        ),
        None => None,
    };
    Ok(StartRequest {
        host,
        port,
        mode,
        start,
        dry_run: body.dry_run,
        deadline,
        relaxed_durability: body.relaxed_durability,
    })
}

/// `HOST:PORT` or `[IPV6]:PORT`, the port required.
pub(super) fn parse_target(target: &str) -> Result<(String, u16), String> {
    let bad =
        |why: &str| format!("target {target:?}: {why}; expected HOST:PORT (an IPv6 address in brackets)");
    let (host, port) = match target.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = after.strip_prefix(':').ok_or_else(|| bad("no port"))?;
            if !host.contains(':') || !host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
                return Err(bad("not an IPv6 address in the brackets"));
            }
            (host, port)
        }
        None => {
            let (host, port) = target.rsplit_once(':').ok_or_else(|| bad("no port"))?;
            if host.contains(':') {
                return Err(bad("an IPv6 address goes in brackets"));
            }
            if !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_') {
                return Err(bad("invalid host name"));
            }
            (host, port)
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port = port.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad("bad port"))?;
    Ok((host.to_string(), port))
}

/// A GTID position: MariaDB's D-S-N list, or a MySQL set.
pub(super) fn parse_executed(text: &str) -> Result<Executed, String> {
    if let Ok(list) = text.parse::<MariaGtidList>() {
        return Ok(Executed::Maria(list));
    }
    match text.parse::<GtidSet>() {
        Ok(set) => Ok(Executed::Mysql(set)),
        Err(_) => Err(format!("after_gtid {text:?}: neither MariaDB GTIDs nor a MySQL GTID set")),
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Sql => "sql",
        Mode::Binlog => "binlog",
    }
}

pub(super) fn json_response(status: Status, value: &Value) -> Response {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    Response::new(status, "application/json", body)
}

impl Replays {
    /// Replays of the ring in `ring` that log in to their target with
    /// `login`; without either, starting one answers 503.
    pub fn new(ring: Option<PathBuf>, login: Option<Login>) -> Replays {
        Replays { ring, login, jobs: Arc::default() }
    }

    fn jobs(&self) -> MutexGuard<'_, Jobs> {
        lock(&self.jobs)
    }
}

impl super::Jobs for Replays {
    /// `POST /v1/replay` with `body`.
    fn start(&self, body: &[u8]) -> Response {
        let Some(ring) = &self.ring else {
            return Response::text(
                Status::UNAVAILABLE,
                "replay through the API needs the ring: start with --ring DIR",
            );
        };
        let Some(login) = &self.login else {
            return Response::text(
                Status::UNAVAILABLE,
                "replay through the API is not enabled: start gapless stream with --apply-password-file FILE \
                 (and --apply-user USER, default gapless_apply)",
            );
        };
        let request = match parse_start(body) {
            Ok(r) => r,
            Err(message) => return Response::text(Status::BAD_REQUEST, &message),
        };
        let target = login(&request.host, request.port);
        let addr = target.addr();
        let progress = Arc::new(AtomicUsize::new(0));
        let plan = ReplayPlan {
            ring: ring.clone(),
            target,
            start: request.start,
            mode: request.mode,
            dry_run: request.dry_run,
            deadline: request.deadline,
            progress: Some(Arc::clone(&progress)),
            relaxed_durability: request.relaxed_durability,
        };
        let id = {
            let mut jobs = self.jobs();
            if let Some(running) =
                jobs.list.iter().find(|j| j.target == addr && matches!(j.outcome, Outcome::Running))
            {
                let message =
                    format!("replay {} onto {addr} is still running: /v1/replay/{}", running.id, running.id);
                return Response::text(Status::CONFLICT, &message);
            }
            jobs.last_id += 1;
            let id = jobs.last_id;
            jobs.list.push_back(Job {
                id,
                target: addr.clone(),
                mode: request.mode,
                dry_run: request.dry_run,
                started: time::unix_now(),
                finished: None,
                progress,
                outcome: Outcome::Running,
            });
            while jobs.list.len() > MAX_JOBS {
                match jobs.list.iter().position(|j| !matches!(j.outcome, Outcome::Running)) {
                    Some(oldest) => drop(jobs.list.remove(oldest)),
                    None => break,
                }
            }
            id
        };
        info!(id, target = %addr, mode = mode_name(plan.mode), dry_run = plan.dry_run, "replay started through the API");
        let jobs = Arc::clone(&self.jobs);
        let spawned =
            std::thread::Builder::new().name(format!("replay-{id}")).spawn(move || run_job(&jobs, id, &plan));
        if let Err(e) = spawned {
            let message = format!("cannot start a thread for the replay: {e}");
            finish(&self.jobs, id, Err(message.clone()));
            return Response::text(Status::INTERNAL_ERROR, &message);
        }
        json_response(Status::ACCEPTED, &json!({ "id": id, "url": format!("/v1/replay/{id}") }))
    }

    /// `GET /v1/replay/N`; 404 for an unknown id.
    fn get(&self, id: &str) -> Response {
        let jobs = self.jobs();
        let job = id.parse::<u64>().ok().and_then(|id| jobs.list.iter().find(|j| j.id == id));
        match job {
            Some(job) => json_response(Status::OK, &job_json(job)),
            None => Response::text(Status::NOT_FOUND, &format!("no replay {id} (GET /v1/replay lists them)")),
        }
    }

    /// `GET /v1/replay`: every job kept, oldest first.
    fn list(&self) -> Response {
        let jobs = self.jobs();
        json_response(Status::OK, &Value::Array(jobs.list.iter().map(job_json).collect()))
    }
}

fn lock(jobs: &Mutex<Jobs>) -> MutexGuard<'_, Jobs> {
    jobs.lock().unwrap_or_else(PoisonError::into_inner)
}

fn job_json(job: &Job) -> Value {
    let (state, report, error) = match &job.outcome {
        Outcome::Running => ("running", Value::Null, Value::Null),
        Outcome::Succeeded(report) => {
            ("succeeded", serde_json::to_value(report).unwrap_or(Value::Null), Value::Null)
        }
        Outcome::Failed(error) => ("failed", Value::Null, Value::String(error.clone())),
    };
    let applied = match &job.outcome {
        Outcome::Succeeded(report) => report.applied.len(),
        _ => job.progress.load(Ordering::Relaxed),
    };
    json!({
        "id": job.id,
        "target": job.target,
        "mode": mode_name(job.mode),
        "dry_run": job.dry_run,
        "state": state,
        "applied": applied,
        "started": time::rfc3339(job.started),
        "finished": job.finished.map(time::rfc3339),
        "report": report,
        "error": error,
    })
}

/// The replay's thread: runs it, records the outcome.
fn run_job(jobs: &Mutex<Jobs>, id: u64, plan: &ReplayPlan) {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
        .and_then(|runtime| {
            runtime.block_on(replay::run(plan, &mut std::io::sink())).map_err(|e| e.to_string())
        });
    finish(jobs, id, result);
}

fn finish(jobs: &Mutex<Jobs>, id: u64, result: Result<Report, String>) {
    let mut jobs = lock(jobs);
    let Some(job) = jobs.list.iter_mut().find(|j| j.id == id) else { return };
    job.finished = Some(time::unix_now());
    match result {
        Ok(report) => {
            job.progress.store(report.applied.len(), Ordering::Relaxed);
            info!(
                id,
                target = %job.target,
                applied = report.applied.len(),
                skipped = report.skipped_executed,
                seconds = report.seconds,
                "replay succeeded"
            );
            job.outcome = Outcome::Succeeded(Box::new(report));
        }
        Err(error) => {
            info!(id, target = %job.target, applied = job.progress.load(Ordering::Relaxed), %error, "replay failed");
            job.outcome = Outcome::Failed(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Jobs as _;

    fn start(body: &str) -> Result<StartRequest, String> {
        parse_start(body.as_bytes())
    }

    #[test]
    fn a_minimal_request_is_an_auto_sql_replay() {
        let r = start(r#"{"target": "db2.example:3306"}"#).unwrap();
        assert_eq!((r.host.as_str(), r.port), ("db2.example", 3306));
        assert_eq!(r.mode, Mode::Sql);
        assert!(matches!(r.start, ReplayStart::Auto));
        assert!(!r.dry_run);
        assert_eq!(r.deadline, None);
    }

    #[test]
    fn every_field() {
        let r = start(r#"{"target":"[::1]:3307","mode":"binlog","after_gtid":"0-1-42,1-2-7","dry_run":true,"deadline":2.5}"#)
            .unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", 3307));
        assert_eq!(r.mode, Mode::Binlog);
        assert!(matches!(&r.start, ReplayStart::AfterGtid(Executed::Maria(l)) if l.len() == 2));
        assert!(r.dry_run);
        assert_eq!(r.deadline, Some(Duration::from_millis(2500)));
        let r = start(r#"{"target":"10.0.0.2:3306","after":"mysql-bin.000003:1234","mode":"sql"}"#).unwrap();
        assert!(
            matches!(&r.start, ReplayStart::AfterPosition { file, position: 1234 } if file == "mysql-bin.000003")
        );
        let r = start(r#"{"target":"h:1","after_gtid":"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"}"#).unwrap();
        assert!(matches!(&r.start, ReplayStart::AfterGtid(Executed::Mysql(_))));
        // The empty position: everything the ring holds.
        let r = start(r#"{"target":"h:1","after_gtid":""}"#).unwrap();
        assert!(matches!(&r.start, ReplayStart::AfterGtid(e) if e.to_string().is_empty()));
        let r = start(r#"{"target":"h:1","after":null,"deadline":null}"#).unwrap();
        assert!(matches!(r.start, ReplayStart::Auto));
        assert!(!r.relaxed_durability);
        assert!(start(r#"{"target":"h:1","relaxed_durability":true}"#).unwrap().relaxed_durability);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let cases = [
            ("", "invalid request body"),
            ("not json", "invalid request body"),
            ("[]", "invalid request body"),
            ("{}", "missing field `target`"),
            (r#"{"target":"h:1","extra":1}"#, "unknown field `extra`"),
            (r#"{"target":3306}"#, "invalid type"),
            (r#"{"target":"h:1","dry_run":"yes"}"#, "invalid type"),
            (r#"{"target":"h:1"} trailing"#, "trailing characters"),
            (r#"{"target":"h"}"#, "no port"),
            (r#"{"target":""}"#, "no port"),
            (r#"{"target":":3306"}"#, "empty host"),
            (r#"{"target":"h:0"}"#, "bad port"),
            (r#"{"target":"h:65536"}"#, "bad port"),
            (r#"{"target":"h:x"}"#, "bad port"),
            (r#"{"target":"::1:3306"}"#, "brackets"),
            (r#"{"target":"[::1:3306"}"#, "unclosed"),
            (r#"{"target":"[db]:3306"}"#, "IPv6"),
            (r#"{"target":"user@h:3306"}"#, "invalid host"),
            (r#"{"target":"h/x:3306"}"#, "invalid host"),
            (r#"{"target":"h:1","mode":"rows"}"#, "\"sql\" or \"binlog\""),
            (r#"{"target":"h:1","after_gtid":"0-1-1","after":"f:4"}"#, "not both"),
            (r#"{"target":"h:1","after_gtid":"nonsense"}"#, "neither MariaDB GTIDs"),
            (r#"{"target":"h:1","after":"f"}"#, "FILE:POS"),
            (r#"{"target":"h:1","after":"f:3"}"#, "POS >= 4"),
            (r#"{"target":"h:1","after":":4"}"#, "FILE:POS"),
            (r#"{"target":"h:1","deadline":0}"#, "positive"),
            (r#"{"target":"h:1","deadline":-1}"#, "positive"),
            (r#"{"target":"h:1","deadline":"5"}"#, "invalid type"),
        ];
        for (body, expected) in cases {
            let err = start(body).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    fn login() -> Login {
        Arc::new(|host: &str, port| ConnectOptions::new(host, port, "gapless_apply"))
    }

    fn body_json(response: &Response) -> Value {
        serde_json::from_slice(&response.body).expect("JSON")
    }

    #[test]
    fn without_a_ring_or_a_password_file_it_is_unavailable() {
        let body = br#"{"target":"127.0.0.1:1"}"#;
        let r = Replays::new(None, Some(login())).start(body);
        assert_eq!(r.status, Status::UNAVAILABLE);
        assert!(String::from_utf8_lossy(&r.body).contains("--ring"));
        let r = Replays::new(Some("/nonexistent".into()), None).start(body);
        assert_eq!(r.status, Status::UNAVAILABLE);
        assert!(String::from_utf8_lossy(&r.body).contains("--apply-password-file"));
    }

    #[test]
    fn a_job_runs_on_its_thread_and_its_failure_is_reported() {
        let dir = std::env::temp_dir().join(format!("gapless-api-replay-{}", std::process::id()));
        let replays = Replays::new(Some(dir.join("no-ring")), Some(login()));
        assert_eq!(replays.start(b"{").status, Status::BAD_REQUEST);
        assert_eq!(body_json(&replays.list()), json!([]), "a bad request starts nothing");

        let started = replays.start(br#"{"target":"127.0.0.1:1","after_gtid":"0-1-5"}"#);
        assert_eq!(started.status, Status::ACCEPTED);
        assert_eq!(body_json(&started), json!({"id": 1, "url": "/v1/replay/1"}));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let job = loop {
            let job = body_json(&replays.get("1"));
            if job["state"] != "running" {
                break job;
            }
            assert!(std::time::Instant::now() < deadline, "still running: {job}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(job["state"], "failed", "{job}");
        assert_eq!(job["target"], "127.0.0.1:1");
        assert_eq!(job["mode"], "sql");
        assert_eq!(job["applied"], 0);
        assert_eq!(job["report"], Value::Null);
        assert!(job["error"].as_str().is_some_and(|e| !e.is_empty()), "{job}");
        assert!(job["started"].as_str().is_some_and(|s| s.ends_with('Z')), "{job}");
        assert!(job["finished"].is_string(), "{job}");
        assert_eq!(body_json(&replays.list()).as_array().map(Vec::len), Some(1));
        assert_eq!(replays.get("2").status, Status::NOT_FOUND);
        assert_eq!(replays.get("x").status, Status::NOT_FOUND);
    }

    #[test]
    fn a_second_replay_onto_a_target_still_running_is_refused() {
        let replays = Replays::new(Some("/nonexistent".into()), Some(login()));
        replays.jobs().list.push_back(Job {
            id: 7,
            target: "127.0.0.1:3306".into(),
            mode: Mode::Sql,
            dry_run: false,
            started: 0,
            finished: None,
            progress: Arc::new(AtomicUsize::new(3)),
            outcome: Outcome::Running,
        });
        replays.jobs().last_id = 7;
        let r = replays.start(br#"{"target":"127.0.0.1:3306"}"#);
        assert_eq!(r.status, Status::CONFLICT);
        assert!(String::from_utf8_lossy(&r.body).contains("/v1/replay/7"));
        let job = body_json(&replays.get("7"));
        assert_eq!((job["state"].as_str(), job["applied"].as_u64()), (Some("running"), Some(3)));
        assert_eq!(job["finished"], Value::Null);
        assert_eq!(replays.jobs().list.len(), 1, "nothing started");
    }
}
