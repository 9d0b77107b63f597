//! Carries out a switchover [`Plan`] (or a dual-primary one), step by step,
//! each step a line a DBA can read, with its time.
//!
//! Before the point of no return, any failure rolls back: the candidate's
//! replication is started again when it was stopped, and the old primary
//! is made writable again (`read_only = OFF`, and `super_read_only = OFF`
//! on MySQL); the outcome names the step that failed. After the point of
//! no return the switch goes on as far as it can (a replica that cannot be
//! re-pointed does not stop the others, nor the VIP) and ends with what
//! failed, which server takes the writes (none, when the promotion itself
//! failed), and for each step not done, what to run by hand.
//!
//! `CHANGE MASTER TO` carries the replication password: it is sent by
//! [`exec_secret`], whose errors show the statement with `'****'` and are
//! scrubbed of the password, and it is never logged.
//!
//! The pure parts, tested on made-up rows: which connections are writers
//! ([`writers`]), and the replication status of a re-pointed replica
//! ([`follows`]).

use std::fmt;
use std::time::{Duration, Instant};

use gapless_protocol::client::Password;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::Serialize;

use super::config::WritersPolicy;
use super::conn::{self, Login, Record};
use super::discover::parse_channels;
use super::instance::{BinlogPosition, Replication};
use super::plan::{
    wait_target, waited, Action, Dialect, FinalPosition, Kind, Node, Plan, Source, Step, WaitKind, Waited,
};
use crate::vip::{self, MovePlan};

/// The replication user replicas are re-pointed with.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// Its password (redacted in `Debug`).
    pub password: Password,
}

/// How the steps reach the servers.
#[derive(Debug, Clone)]
pub struct Context {
    /// The login on every server (it needs the grants of docs/topology.md).
    pub login: Login,
    /// The replication user, needed to re-point replicas.
    pub replication: Option<Credentials>,
    /// The limit of each connect and statement (waits get their own).
    pub limit: Duration,
}

/// How a line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Done.
    Ok,
    /// Done, or going on, with something to know.
    Warn,
    /// Not done.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// One line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// How it went.
    pub status: Status,
    /// The step it belongs to.
    pub step: Option<usize>,
    /// What happened, naming the server.
    pub text: String,
    /// How long it took, in seconds.
    pub seconds: f64,
}

impl fmt::Display for Line {
    /// `ok   [3] 127.0.0.1:3306: final position GTID 0-1-57, … (0.01 s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = self.step.map_or(String::new(), |n| format!("[{n}] "));
        write!(f, "{:<4} {step}{} ({:.2} s)", self.status.to_string(), self.text, self.seconds)
    }
}

/// How the switch ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Every step done and verified.
    Done,
    /// A step before the point of no return failed; the old primary is
    /// writable again.
    RolledBack {
        /// The step.
        step: usize,
        /// What failed.
        error: String,
    },
    /// A step before the point of no return failed, and so did the rollback.
    RollbackFailed {
        /// The step.
        step: usize,
        /// What failed.
        error: String,
        /// What the rollback could not do.
        rollback: Vec<String>,
    },
    /// Past the point of no return, something failed: not everything is in
    /// place.
    Incomplete {
        /// The server that takes the writes now: the new primary, or none
        /// when its promotion failed.
        primary: Option<String>,
        /// What failed.
        failed: Vec<String>,
        /// What is left to do by hand.
        left: Vec<String>,
    },
}

impl Outcome {
    /// The exit code: 0 done, 1 rolled back, 3 the cluster needs a hand
    /// (after the point of no return, or a rollback that failed).
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Done => 0,
            Outcome::RolledBack { .. } => 1,
            Outcome::RollbackFailed { .. } | Outcome::Incomplete { .. } => 3,
        }
    }

    /// The closing words.
    pub fn summary(&self, plan: &Plan) -> String {
        let (old, new) = (&plan.old_primary.addr, &plan.new_primary.addr);
        let dual = plan.kind == Kind::Dual;
        match self {
            Outcome::Done if dual => {
                format!("done: {new} is the active primary; {old} is passive (read_only), the pair replicates both ways")
            }
            Outcome::Done => format!("done: {new} is the primary; {old} replicates from it, read_only"),
            Outcome::RolledBack { step, error } => format!(
                "failed at step {step}, before the point of no return, and rolled back: {old} is the primary \
                 and writable again; nothing else was changed. Cause: {error}"
            ),
            Outcome::RollbackFailed { step, error, rollback } => format!(
                "failed at step {step} ({error}), and the rollback failed too: {}. {old} may still be \
                 read_only: once the cause is found, undo what the rollback could not (SET GLOBAL read_only \
                 = OFF on {old}, START SLAVE on a stopped replica)",
                rollback.join("; ")
            ),
            Outcome::Incomplete { primary: Some(p), failed, left } => format!(
                "past the point of no return, {p} is the primary and takes the writes, but {} failed and {} \
                 left to do by hand (below)",
                steps(failed.len()),
                steps(left.len())
            ),
            Outcome::Incomplete { primary: None, failed, left } => format!(
                "past the point of no return, NO server takes writes: {old} is read_only and {new} {}was not \
                 made writable; {} failed and {} left to do by hand (below)",
                if dual { "" } else { "stopped replicating but " },
                steps(failed.len()),
                steps(left.len())
            ),
        }
    }
}

fn steps(n: usize) -> String {
    if n == 1 {
        "1 step".into()
    } else {
        format!("{n} steps")
    }
}

/// The log and the outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every line, in order.
    pub lines: Vec<Line>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The processlist with each connection's InnoDB transaction: what
/// [`writers`] reads (the statement text only for its first word).
pub const WRITERS_SQL: &str = "SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.COMMAND AS command, \
     p.TIME AS time, LEFT(p.INFO, 64) AS info, t.trx_rows_modified AS rows_modified \
     FROM information_schema.PROCESSLIST p LEFT JOIN information_schema.INNODB_TRX t \
     ON t.trx_mysql_thread_id = p.ID WHERE p.ID <> CONNECTION_ID()";

/// A client connection that still writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Writer {
    /// Its connection id.
    pub id: u64,
    /// `user@host`.
    pub who: String,
    /// What it does (never the statement's text: it may hold secrets).
    pub what: String,
}

impl fmt::Display for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection {} ({}: {})", self.id, self.who, self.what)
    }
}

/// Statements that change something (the first word).
const WRITES: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD", "CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE",
    "COMMIT", "CALL", "GRANT", "REVOKE", "OPTIMIZE", "REPAIR", "XA",
];

/// The first word of a statement, upper case, after blanks, comments and
/// opening parentheses.
pub fn first_word(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else if rest.starts_with("-- ") || rest.starts_with('#') {
            rest = rest.split_once('\n').map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    rest.chars().take_while(char::is_ascii_alphabetic).collect::<String>().to_ascii_uppercase()
}

/// The client connections of [`WRITERS_SQL`] rows that still write: an
/// InnoDB transaction that changed rows, or a write statement running.
/// Replication threads, system users, binlog dump threads (replicas, the
/// sidecar) and the asking connection itself are not clients.
pub fn writers(rows: &[Record]) -> Vec<Writer> {
    rows.iter()
        .filter_map(|r| {
            let id = r.number::<u64>(&["id"])?;
            let user = r.text(&["user"]).unwrap_or("");
            let command = r.text(&["command"]).unwrap_or("");
            let system = matches!(user, "" | "system user" | "event_scheduler" | "unauthenticated user")
                || command.starts_with("Binlog Dump")
                || command.starts_with("Slave_")
                || matches!(command, "Daemon" | "Killed");
            if system {
                return None;
            }
            let who = format!("{user}@{}", r.text(&["host"]).unwrap_or("?"));
            let changed = r.number::<u64>(&["rows_modified"]).unwrap_or(0);
            let word = first_word(r.text(&["info"]).unwrap_or(""));
            let what = if changed > 0 {
                format!("a transaction with {changed} changed rows")
            } else if command == "Query" && WRITES.contains(&word.as_str()) {
                format!("{word} running for {} s", r.number::<u64>(&["time"]).unwrap_or(0))
            } else {
                return None;
            };
            Some(Writer { id, who, what })
        })
        .collect()
}

/// Whether `channel` (the replica's status) replicates from `source` with
/// both threads running; `Err` says what is wrong.
pub fn follows(channel: Option<&Replication>, source: &Node) -> Result<(), String> {
    let Some(c) = channel else { return Err("no replication configured".into()) };
    if c.source_port != source.port || !c.source_host.eq_ignore_ascii_case(&source.host) {
        return Err(format!("replicates from {}, not {}", c.source_addr(), source.addr));
    }
    if !c.running() {
        let errors: Vec<&str> =
            [&c.last_io_error, &c.last_sql_error].into_iter().flatten().map(String::as_str).collect();
        let errors = if errors.is_empty() { String::new() } else { format!(": {}", errors.join(", ")) };
        return Err(format!("IO/SQL {}{errors}", c.threads()));
    }
    Ok(())
}

/// `text` without the password (as given, and as quoted).
fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_string();
    }
    let quoted = super::plan::quote(secret);
    let inner = quoted.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')).unwrap_or(&quoted);
    text.replace(inner, "****").replace(secret, "****")
}

/// Runs a statement that holds a secret: an error shows `shown` instead
/// of the statement, and never the secret.
async fn exec_secret(
    conn: &mut Conn,
    at: &str,
    sql: &str,
    shown: &str,
    secret: &str,
    limit: Duration,
) -> Result<(), String> {
    match tokio::time::timeout(limit, conn.query_drop(sql)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(scrub(&format!("{at}: {shown}: {e}"), secret)),
        Err(_) => Err(format!("{at}: no answer within {}s ({shown})", limit.as_secs_f64())),
    }
}

/// What a step did (for its line), or why it failed.
type StepResult = Result<String, String>;

/// Carries out `plan`, handing each line to `log` as it happens.
pub async fn execute(plan: &Plan, ctx: &Context, log: &mut dyn FnMut(&Line)) -> Report {
    let (policy, writers_timeout) = plan
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Writers { policy, timeout, .. } => Some((*policy, *timeout)),
            _ => None,
        })
        .unwrap_or((WritersPolicy::Wait, Duration::from_secs(10)));
    let (wait_timeout, wait_kind) = plan
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::CatchUp { timeout, kind, .. } => Some((*timeout, *kind)),
            _ => None,
        })
        .unwrap_or((Duration::from_secs(30), WaitKind::MariaGtid));
    let now = Instant::now();
    let mut run = Run {
        plan,
        ctx,
        log,
        lines: Vec::new(),
        since: now,
        started: now,
        policy,
        writers_timeout,
        wait_timeout,
        wait_kind,
        final_pos: None,
        read_only_touched: false,
        candidate_stopped: None,
        unverified: Vec::new(),
    };
    let outcome = run.go().await;
    let summary = outcome.summary(plan);
    let status = if outcome == Outcome::Done { Status::Ok } else { Status::Fail };
    run.since = run.started;
    run.line(status, None, summary);
    if let Outcome::Incomplete { failed, left, .. } = &outcome {
        for f in failed {
            run.line(Status::Fail, None, format!("failed: {f}"));
        }
        for l in left {
            run.line(Status::Fail, None, format!("left: {l}"));
        }
    }
    Report { lines: run.lines, outcome }
}

struct Run<'a> {
    plan: &'a Plan,
    ctx: &'a Context,
    log: &'a mut dyn FnMut(&Line),
    lines: Vec<Line>,
    /// When the current line started.
    since: Instant,
    started: Instant,
    policy: WritersPolicy,
    writers_timeout: Duration,
    wait_timeout: Duration,
    /// How the catch-up counts writes.
    wait_kind: WaitKind,
    /// The old primary's final position (step `FinalPosition`).
    final_pos: Option<FinalPosition>,
    /// `read_only` was (or may have been) set on the old primary.
    read_only_touched: bool,
    /// The candidate whose replication was (or may have been) stopped.
    candidate_stopped: Option<String>,
    /// The servers the verification found at fault.
    unverified: Vec<String>,
}

impl Run<'_> {
    fn line(&mut self, status: Status, step: Option<usize>, text: String) {
        let now = Instant::now();
        let line = Line { status, step, text, seconds: now.duration_since(self.since).as_secs_f64() };
        self.since = now;
        (self.log)(&line);
        self.lines.push(line);
    }

    fn node(&self, addr: &str) -> Result<&Node, String> {
        self.plan.node(addr).ok_or_else(|| format!("{addr} is not in the plan"))
    }

    async fn connect(&self, addr: &str) -> Result<(Conn, Node), String> {
        let node = self.node(addr)?.clone();
        let c = conn::connect(&self.ctx.login, &node.host, node.port, None, self.ctx.limit)
            .await
            .map_err(|e| e.to_string())?;
        Ok((c, node))
    }

    async fn query(&self, c: &mut Conn, at: &str, sql: &str) -> Result<Vec<Record>, String> {
        conn::query(c, at, sql, self.ctx.limit).await.map_err(|e| e.to_string())
    }

    async fn value(&self, c: &mut Conn, at: &str, sql: &str, column: &str) -> Result<Option<String>, String> {
        let rows = self.query(c, at, sql).await?;
        Ok(rows.first().and_then(|r| r.text(&[column])).map(str::to_string))
    }

    async fn go(&mut self) -> Outcome {
        let plan = self.plan;
        for step in plan.steps.iter().filter(|s| !s.after_point_of_no_return) {
            self.since = Instant::now();
            match self.before(step).await {
                Ok(text) => self.line(Status::Ok, Some(step.number), text),
                Err(error) => {
                    self.line(Status::Fail, Some(step.number), error.clone());
                    let error = format!("step {} ({}) failed: {error}", step.number, name(&step.action));
                    let rollback = self.roll_back().await;
                    return if rollback.is_empty() {
                        Outcome::RolledBack { step: step.number, error }
                    } else {
                        Outcome::RollbackFailed { step: step.number, error, rollback }
                    };
                }
            }
        }
        self.since = Instant::now();
        self.line(
            Status::Ok,
            None,
            format!(
                "point of no return: {} has everything {} wrote",
                plan.new_primary.addr, plan.old_primary.addr
            ),
        );
        let mut failed = Vec::new();
        let mut left = Vec::new();
        let mut stopped = false;
        let mut primary = Some(plan.new_primary.addr.clone());
        for step in plan.steps.iter().filter(|s| s.after_point_of_no_return) {
            if stopped {
                left.push(format!("step {}: {}", step.number, step.text));
                continue;
            }
            self.since = Instant::now();
            match self.after(step).await {
                Ok(text) => self.line(Status::Ok, Some(step.number), text),
                Err(error) => {
                    self.line(Status::Fail, Some(step.number), error.clone());
                    failed.push(format!("step {} ({}): {error}", step.number, name(&step.action)));
                    match &step.action {
                        Action::Verify { .. } => left.extend(self.unverified.iter().map(|addr| {
                            match plan
                                .steps
                                .iter()
                                .find(|s| matches!(&s.action, Action::Repoint { on, .. } if on == addr))
                            {
                                Some(s) => format!(
                                    "{addr}: fix the cause above, then run again what step {} ran: {}",
                                    s.number, s.text
                                ),
                                None => format!("{addr}: fix the cause above"),
                            }
                        })),
                        _ => left.push(format!("step {}: {}", step.number, step.text)),
                    }
                    // Without a writable new primary the rest has nothing to point at.
                    if matches!(step.action, Action::Promote { .. } | Action::Writable { .. }) {
                        stopped = true;
                        primary = None;
                    }
                }
            }
        }
        if failed.is_empty() {
            Outcome::Done
        } else {
            Outcome::Incomplete { primary, failed, left }
        }
    }

    async fn before(&mut self, step: &Step) -> StepResult {
        match &step.action {
            Action::ReadOnly { on } => self.read_only(on).await,
            Action::Writers { on, policy, timeout } => self.writers(step.number, on, *policy, *timeout).await,
            Action::FinalPosition { on } => {
                let (mut c, node) = self.connect(on).await?;
                let pos = self.position(&mut c, &node).await;
                conn::close(c).await;
                let pos = pos?;
                let text = format!("{on}: final position {pos}");
                self.final_pos = Some(pos);
                Ok(text)
            }
            Action::CatchUp { on, from, kind, timeout } => {
                self.catch_up(step.number, on, from, *kind, *timeout).await
            }
            Action::StopReplication { on, from } => self.stop_replication(on, from).await,
            other => Err(format!("{} cannot come before the point of no return", name(other))),
        }
    }

    async fn after(&mut self, step: &Step) -> StepResult {
        match &step.action {
            Action::Promote { on } => {
                let (mut c, node) = self.connect(on).await?;
                let done = async {
                    self.query(&mut c, on, &node.dialect.reset_all(&node.channel)).await?;
                    self.writable(&mut c, &node).await
                }
                .await;
                conn::close(c).await;
                done.map(|()| {
                    format!("{on}: promoted: replication reset, read_only = OFF: it takes the writes")
                })
            }
            Action::Writable { on } => {
                let (mut c, node) = self.connect(on).await?;
                let done = self.writable(&mut c, &node).await;
                conn::close(c).await;
                done.map(|()| format!("{on}: read_only = OFF: it takes the writes"))
            }
            Action::Repoint { on, to, demoted } => self.repoint(on, to, *demoted).await,
            Action::MoveVip { vip, interface, from, to } => {
                self.move_vip(step.number, vip, interface, from, to).await
            }
            Action::Verify { primary, read_only, replicating } => {
                let deadline = Instant::now() + self.wait_timeout;
                loop {
                    let problems = self.problems(primary, read_only, replicating).await;
                    if problems.is_empty() {
                        return Ok(format!(
                            "verified: {primary} writable; {} read_only; {} replicating with both threads running",
                            read_only.join(", "),
                            replicating.iter().map(|f| f.replica.as_str()).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if Instant::now() >= deadline {
                        self.unverified = problems.iter().map(|(addr, _)| addr.clone()).collect();
                        let text: Vec<String> = problems
                            .into_iter()
                            .map(|(addr, e)| if e.starts_with(&addr) { e } else { format!("{addr}: {e}") })
                            .collect();
                        return Err(text.join("; "));
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            other => Err(format!("{} cannot come after the point of no return", name(other))),
        }
    }

    /// `SET GLOBAL read_only = ON`, waiting at most the writers' timeout
    /// for a running write (lock_wait_timeout); with `kill`, the writers in
    /// its way are killed and it is tried once more.
    async fn read_only(&mut self, on: &str) -> StepResult {
        let (mut c, node) = self.connect(on).await?;
        let done = async {
            let wait = self.writers_timeout.as_secs().max(1);
            self.query(&mut c, on, &format!("SET SESSION lock_wait_timeout = {wait}")).await?;
            // From here a rollback is due: a statement that timed out here
            // may still be applied by the server.
            self.read_only_touched = true;
            let limit = self.ctx.limit + self.writers_timeout;
            for sql in node.dialect.read_only_on() {
                let mut tries = 0;
                loop {
                    match conn::query(&mut c, on, sql, limit).await {
                        Ok(_) => break,
                        Err(e) if e.server_code() == Some(1205) && self.policy == WritersPolicy::Kill && tries == 0 => {
                            tries += 1;
                            let killed = self.kill(&mut c, on).await?;
                            self.line(Status::Warn, None, format!("{on}: {sql} waited for a running write: killed {killed}"));
                        }
                        Err(e) if e.server_code() == Some(1205) => {
                            return Err(format!(
                                "{on}: {sql} waited {wait} s for a running write (writers_timeout_seconds) and gave up: {e}"
                            ))
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            match self.value(&mut c, on, "SELECT @@GLOBAL.read_only AS ro", "ro").await?.as_deref() {
                Some("1") => Ok(format!("{on}: read_only = ON: its clients can no longer write")),
                other => Err(format!("{on}: read_only is {} after setting it", other.unwrap_or("NULL"))),
            }
        }
        .await;
        conn::close(c).await;
        done
    }

    /// Kills the writers now; their descriptions.
    async fn kill(&mut self, c: &mut Conn, on: &str) -> Result<String, String> {
        let found = writers(&self.query(c, on, WRITERS_SQL).await?);
        let mut killed = Vec::new();
        for w in &found {
            match conn::query(c, on, &format!("KILL CONNECTION {}", w.id), self.ctx.limit).await {
                Ok(_) => killed.push(w.to_string()),
                // 1094: gone meanwhile.
                Err(e) if e.server_code() == Some(1094) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(if killed.is_empty() { "nothing".into() } else { killed.join(", ") })
    }

    /// Waits for (or kills) the clients that still write.
    async fn writers(
        &mut self,
        number: usize,
        on: &str,
        policy: WritersPolicy,
        timeout: Duration,
    ) -> StepResult {
        let (mut c, _) = self.connect(on).await?;
        let deadline = Instant::now() + timeout;
        let mut killed = 0usize;
        let mut told = false;
        let mut failure = None;
        let done = loop {
            let found = match self.query(&mut c, on, WRITERS_SQL).await {
                Ok(rows) => writers(&rows),
                Err(e) => break Err(e),
            };
            if found.is_empty() {
                break Ok(match killed {
                    0 => format!("{on}: no client is writing"),
                    1 => format!("{on}: killed 1 connection; no client is writing now"),
                    n => format!("{on}: killed {n} connections; no client is writing now"),
                });
            }
            let list = found.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            if Instant::now() >= deadline {
                let who = if found.len() == 1 {
                    "1 client still writes".into()
                } else {
                    format!("{} clients still write", found.len())
                };
                break Err(format!(
                    "{on}: after {} s, {who} (writers = {}, writers_timeout_seconds): {list}",
                    timeout.as_secs_f64(),
                    policy.as_str()
                ));
            }
            match policy {
                WritersPolicy::Kill => {
                    for w in &found {
                        match conn::query(&mut c, on, &format!("KILL CONNECTION {}", w.id), self.ctx.limit)
                            .await
                        {
                            Ok(_) => {
                                killed += 1;
                                self.line(Status::Warn, Some(number), format!("{on}: killed {w}"));
                            }
                            // 1094: gone meanwhile.
                            Err(e) if e.server_code() == Some(1094) => {}
                            Err(e) => {
                                failure = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    if let Some(e) = failure.take() {
                        break Err(e);
                    }
                }
                WritersPolicy::Wait if !told => {
                    told = true;
                    self.line(Status::Ok, Some(number), format!("{on}: waiting for {list}"));
                }
                WritersPolicy::Wait => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        conn::close(c).await;
        done
    }

    /// The GTID position and the binlog coordinates of a server.
    async fn position(&self, c: &mut Conn, node: &Node) -> Result<FinalPosition, String> {
        let at = &node.addr;
        let gtid = self.value(c, at, node.dialect.gtid_position(), "gtid").await?;
        let gtid = gtid.map(|g| g.split(',').map(str::trim).collect::<Vec<_>>().join(","));
        let rows = if node.dialect == Dialect::MySql {
            match conn::query(c, at, "SHOW BINARY LOG STATUS", self.ctx.limit).await {
                // 1064: before MySQL 8.2.
                Err(e) if e.server_code() == Some(1064) => self.query(c, at, "SHOW MASTER STATUS").await?,
                other => other.map_err(|e| e.to_string())?,
            }
        } else {
            self.query(c, at, "SHOW MASTER STATUS").await?
        };
        let file = rows.first().and_then(|r| {
            Some(BinlogPosition { file: r.text(&["File"])?.to_string(), position: r.number(&["Position"])? })
        });
        Ok(FinalPosition { gtid, file })
    }

    /// Waits until `on` has executed the old primary's final position, and
    /// until that position is still the old primary's (a client that
    /// read_only does not stop may have written meanwhile).
    async fn catch_up(
        &mut self,
        number: usize,
        on: &str,
        from: &str,
        kind: WaitKind,
        timeout: Duration,
    ) -> StepResult {
        let deadline = Instant::now() + timeout;
        let mut pos = self.final_pos.clone().ok_or("the final position was not read")?;
        let (mut c, node) = self.connect(on).await?;
        let done = loop {
            let target = match wait_target(kind, &pos, self.plan.skip_server) {
                Ok(t) => t,
                Err(e) => break Err(format!("{from}: {e}")),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let sql = node.dialect.wait(&target, &node.channel, left);
            let answer = match conn::query(&mut c, on, &sql, self.ctx.limit + left).await {
                Ok(rows) => rows.first().and_then(|r| r.text(&["r"])).map(str::to_string),
                Err(e) => break Err(e.to_string()),
            };
            match waited(&target, answer.as_deref()) {
                Waited::Reached => {}
                Waited::TimedOut => {
                    let state = self.replication_state(&mut c, &node).await;
                    break Err(format!(
                        "{on} had not executed {target} of {from} after {:.1} s{state}",
                        timeout.as_secs_f64()
                    ));
                }
                Waited::NotReplicating => {
                    let state = self.replication_state(&mut c, &node).await;
                    break Err(format!(
                        "{on}: the wait for {target} returned NULL: it does not replicate{state}"
                    ));
                }
            }
            let (mut o, old) = match self.connect(from).await {
                Ok(x) => x,
                Err(e) => break Err(e),
            };
            let now = self.position(&mut o, &old).await;
            conn::close(o).await;
            match now {
                Ok(now) if now.same_writes(&pos, kind) => {
                    break Ok(format!("{on} has executed {target} of {from}"))
                }
                Ok(now) => {
                    self.line(
                        Status::Warn,
                        Some(number),
                        format!(
                            "{from} moved on to {now} after read_only (a client read_only does not stop wrote, \
                             e.g. one with READ_ONLY ADMIN or SUPER): waiting for that too"
                        ),
                    );
                    self.final_pos = Some(now.clone());
                    pos = now;
                }
                Err(e) => break Err(e),
            }
        };
        conn::close(c).await;
        done
    }

    /// Stops the candidate's replication, then checks the old primary is
    /// still at the position the candidate caught up with: a write that
    /// slipped in since would be on the old primary alone.
    async fn stop_replication(&mut self, on: &str, from: &str) -> StepResult {
        let pos = self.final_pos.clone().ok_or("the final position was not read")?;
        let (mut c, node) = self.connect(on).await?;
        self.candidate_stopped = Some(on.to_string());
        let stopped = self.query(&mut c, on, &node.dialect.stop(&node.channel)).await;
        conn::close(c).await;
        stopped?;
        let (mut o, old) = self.connect(from).await?;
        let now = self.position(&mut o, &old).await;
        conn::close(o).await;
        match now? {
            now if now.same_writes(&pos, self.wait_kind) => {
                Ok(format!("{on}: replication stopped; {from} is still at {pos}"))
            }
            now => Err(format!(
                "{from} moved on to {now} after {on} caught up with {pos} (a client read_only does not stop \
                 wrote, e.g. one with READ_ONLY ADMIN or SUPER)"
            )),
        }
    }

    /// ` (its replication: IO/SQL …, delay …, errors …)`, for a message.
    async fn replication_state(&self, c: &mut Conn, node: &Node) -> String {
        let Ok(rows) = self.query(c, &node.addr, &node.dialect.status(&node.channel)).await else {
            return String::new();
        };
        let Some(r) = parse_channels(&rows).into_iter().next() else {
            return " (it has no replication configured)".into();
        };
        let mut parts = vec![format!("IO/SQL {}", r.threads())];
        if let Some(d) = r.sql_delay.filter(|d| *d > 0) {
            parts.push(format!("MASTER_DELAY {d} s"));
        }
        parts.extend(r.last_io_error.iter().chain(&r.last_sql_error).cloned());
        format!(" (its replication: {})", parts.join(", "))
    }

    async fn writable(&self, c: &mut Conn, node: &Node) -> Result<(), String> {
        for sql in node.dialect.writable() {
            self.query(c, &node.addr, sql).await?;
        }
        match self.value(c, &node.addr, "SELECT @@GLOBAL.read_only AS ro", "ro").await?.as_deref() {
            Some("0") => Ok(()),
            other => {
                Err(format!("{}: read_only is {} after turning it off", node.addr, other.unwrap_or("NULL")))
            }
        }
    }

    /// Starts the candidate's replication again when it was stopped, and
    /// makes the old primary writable again; what could not be done.
    async fn roll_back(&mut self) -> Vec<String> {
        self.since = Instant::now();
        let mut errors = Vec::new();
        if let Some(on) = self.candidate_stopped.clone() {
            let started = async {
                let (mut c, node) = self.connect(&on).await?;
                let done = self.query(&mut c, &on, &node.dialect.start(&node.channel)).await;
                conn::close(c).await;
                done
            }
            .await;
            match started {
                Ok(_) => self.line(Status::Ok, None, format!("rolled back: {on} replicates again")),
                Err(e) => {
                    self.line(
                        Status::Fail,
                        None,
                        format!("rollback: {on}'s replication not started again: {e}"),
                    );
                    errors.push(e);
                }
            }
        }
        if !self.read_only_touched {
            if errors.is_empty() {
                self.line(Status::Ok, None, "rollback: nothing to undo: nothing was changed".into());
            }
            return errors;
        }
        let old = self.plan.old_primary.addr.clone();
        let done = async {
            let (mut c, node) = self.connect(&old).await?;
            let done = self.writable(&mut c, &node).await;
            conn::close(c).await;
            done
        }
        .await;
        match done {
            Ok(()) => {
                self.line(Status::Ok, None, format!("rolled back: {old} is writable again (read_only = OFF)"))
            }
            Err(e) => {
                self.line(Status::Fail, None, format!("rollback failed: {e}"));
                errors.push(e);
            }
        }
        errors
    }

    async fn repoint(&mut self, on: &str, to: &str, demoted: bool) -> StepResult {
        let Some(creds) = &self.ctx.replication else {
            return Err(format!(
                "{on}: no replication user (replication_user and replication_password_file in the cluster)"
            ));
        };
        let source = self.node(to)?.clone();
        let password = String::from_utf8_lossy(creds.password.expose()).into_owned();
        let (mut c, node) = self.connect(on).await?;
        let d = node.dialect;
        let done = async {
            // The quoting of plan::quote relies on backslash escapes.
            self.query(
                &mut c,
                on,
                "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
            )
            .await?;
            self.query(&mut c, on, &d.stop(&node.channel)).await?;
            if demoted && d == Dialect::MariaDb {
                // Its own writes are in its binlog, not in gtid_slave_pos.
                self.query(&mut c, on, "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos").await?;
            }
            let to_source =
                |password| Source { host: &source.host, port: source.port, user: &creds.user, password };
            let sql = d.change_source(&node.channel, to_source(Some(&password)));
            let shown = d.change_source(&node.channel, to_source(None));
            exec_secret(&mut c, on, &sql, &shown, &password, self.ctx.limit).await?;
            self.query(&mut c, on, &d.start(&node.channel)).await?;
            Ok(())
        }
        .await;
        conn::close(c).await;
        done.map(|()| {
            if demoted {
                format!("{on}: the old primary replicates from {to} now (read_only)")
            } else {
                format!("{on}: replicates from {to} now")
            }
        })
    }

    async fn move_vip(&mut self, number: usize, vip: &str, dev: &str, from: &str, to: &str) -> StepResult {
        let plan = MovePlan::parse(vip, dev, Some(from), to, false, vip::DEFAULT_TIMEOUT)
            .map_err(|e| e.to_string())?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<vip::Step>();
        let job = tokio::task::spawn_blocking(move || {
            vip::move_vip_with(&plan, &mut |s| {
                let _ = tx.send(s.clone());
            })
        });
        while let Some(s) = rx.recv().await {
            let status = match s.outcome {
                vip::Outcome::Ok => Status::Ok,
                vip::Outcome::Warning => Status::Warn,
                vip::Outcome::Failed => Status::Fail,
            };
            let line = Line {
                status,
                step: Some(number),
                text: format!("vip: {}", s.text),
                seconds: s.elapsed.as_secs_f64(),
            };
            (self.log)(&line);
            self.lines.push(line);
        }
        self.since = Instant::now();
        match job.await {
            Ok(Ok(_)) => Ok(format!("VIP {vip} moved from {from} to {to}")),
            Ok(Err(e)) => Err(format!("the VIP {vip} was not moved: {e}")),
            Err(e) => Err(format!("the VIP move did not finish: {e}")),
        }
    }

    /// What is not as the plan wants it: each server at fault, and what.
    async fn problems(
        &self,
        primary: &str,
        read_only: &[String],
        replicating: &[super::plan::Follows],
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let want: Vec<(&str, &str)> =
            std::iter::once((primary, "0")).chain(read_only.iter().map(|r| (r.as_str(), "1"))).collect();
        for (addr, ro) in want {
            let got = async {
                let (mut c, _) = self.connect(addr).await?;
                let v = self.value(&mut c, addr, "SELECT @@GLOBAL.read_only AS ro", "ro").await;
                conn::close(c).await;
                v
            }
            .await;
            match got {
                Ok(Some(v)) if v == ro => {}
                Ok(v) => {
                    out.push((addr.to_string(), format!("read_only is {}", v.as_deref().unwrap_or("NULL"))))
                }
                Err(e) => out.push((addr.to_string(), e)),
            }
        }
        for f in replicating {
            let got = async {
                let source = self.node(&f.source)?.clone();
                let (mut c, node) = self.connect(&f.replica).await?;
                let rows = self.query(&mut c, &f.replica, &node.dialect.status(&node.channel)).await;
                conn::close(c).await;
                let channels = parse_channels(&rows?);
                follows(channels.first(), &source)
            }
            .await;
            if let Err(e) = got {
                out.push((f.replica.clone(), e));
            }
        }
        out
    }
}

/// The name of an action, for messages.
pub fn name(action: &Action) -> &'static str {
    match action {
        Action::ReadOnly { .. } => "read_only",
        Action::Writers { .. } => "writers",
        Action::FinalPosition { .. } => "final position",
        Action::CatchUp { .. } => "catch-up",
        Action::StopReplication { .. } => "stop replication",
        Action::Promote { .. } => "promote",
        Action::Writable { .. } => "writable",
        Action::Repoint { demoted: false, .. } => "re-point",
        Action::Repoint { demoted: true, .. } => "demote",
        Action::MoveVip { .. } => "VIP",
        Action::Verify { .. } => "verify",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Option<&str>)]) -> Record {
        Record::from_pairs(pairs.iter().copied())
    }

    fn conn_row(id: &str, user: &str, command: &str, info: Option<&str>, rows: Option<&str>) -> Record {
        row(&[
            ("id", Some(id)),
            ("user", Some(user)),
            ("host", Some("10.0.0.5:51000")),
            ("command", Some(command)),
            ("time", Some("3")),
            ("info", info),
            ("rows_modified", rows),
        ])
    }

    #[test]
    fn who_still_writes() {
        let rows = [
            conn_row("1", "system user", "Slave_SQL", None, Some("4")),
            conn_row("2", "repl", "Binlog Dump GTID", None, None),
            conn_row("3", "app", "Sleep", None, None),
            conn_row("4", "app", "Sleep", None, Some("2")),
            conn_row("5", "app", "Query", Some("  /* tag */ INSERT INTO t VALUES ('secret')"), Some("0")),
            conn_row("6", "report", "Query", Some("SELECT * FROM t"), None),
            conn_row("7", "event_scheduler", "Daemon", None, None),
            conn_row("8", "app", "Query", Some("(UPDATE t SET a = 1)"), None),
        ];
        let w = writers(&rows);
        assert_eq!(w.iter().map(|w| w.id).collect::<Vec<_>>(), [4, 5, 8]);
        assert_eq!(w[0].to_string(), "connection 4 (app@10.0.0.5:51000: a transaction with 2 changed rows)");
        assert_eq!(w[1].what, "INSERT running for 3 s");
        assert!(!w.iter().any(|w| w.to_string().contains("secret")), "never the statement");
        assert_eq!(first_word("-- c\n# d\n  delete from t"), "DELETE");
        assert_eq!(first_word("/* unterminated"), "");
    }

    #[test]
    fn a_replica_follows_its_new_source() {
        let node = Node {
            addr: "h:2".into(),
            host: "h".into(),
            port: 2,
            dialect: Dialect::MariaDb,
            server_id: Some(2),
            channel: String::new(),
            datacenter: None,
        };
        let mut r = Replication {
            source_host: "H".into(),
            source_port: 2,
            io_running: "Yes".into(),
            sql_running: "Yes".into(),
            ..Replication::default()
        };
        assert_eq!(follows(Some(&r), &node), Ok(()));
        r.io_running = "Connecting".into();
        r.last_io_error = Some("1045: Access denied".into());
        assert_eq!(follows(Some(&r), &node), Err("IO/SQL Connecting/Yes: 1045: Access denied".into()));
        r.source_port = 1;
        assert_eq!(follows(Some(&r), &node), Err("replicates from H:1, not h:2".into()));
        assert_eq!(follows(None, &node), Err("no replication configured".into()));
    }

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(scrub("near 'pa\\'ss' at line 1", "pa'ss"), "near '****' at line 1");
        assert_eq!(scrub("x pa'ss y", "pa'ss"), "x **** y");
        assert_eq!(scrub("x", ""), "x");
    }

    #[test]
    fn outcomes() {
        assert_eq!(Outcome::Done.exit_code(), 0);
        assert_eq!(Outcome::RolledBack { step: 4, error: "x".into() }.exit_code(), 1);
        assert_eq!(Outcome::RollbackFailed { step: 4, error: "x".into(), rollback: vec![] }.exit_code(), 3);
        assert_eq!(Outcome::Incomplete { primary: None, failed: vec![], left: vec![] }.exit_code(), 3);
        let line = Line { status: Status::Warn, step: Some(2), text: "h:1: waiting".into(), seconds: 0.5 };
        assert_eq!(line.to_string(), "WARN [2] h:1: waiting (0.50 s)");
        let json = serde_json::to_value(Report {
            lines: vec![line],
            outcome: Outcome::RolledBack { step: 4, error: "e".into() },
        })
        .unwrap();
        assert_eq!((json["outcome"].as_str(), json["step"].as_u64()), (Some("rolled_back"), Some(4)));
    }
}
