//! `POST /v1/positions`, `GET /v1/positions` and `GET /v1/positions/UID`:
//! record every replica's executed coordinates and GTIDs before a failover,
//! and whether the ring covers what each replica lacks.
//!
//! orchestrator runs `RESET SLAVE ALL` on the promoted replica before its
//! post-failover hook, which erases `Relay_Master_Log_File` and
//! `Exec_Master_Log_Pos`: without GTIDs those are the only way to know
//! where its replay starts. So the pre-failover hook asks the sidecar to
//! record them while they still exist, keyed by orchestrator's recovery
//! UID, and the post hook reads them back.
//!
//! A snapshot is taken on its own thread (one per replica, each with its
//! own timeout), so the API answers 202 at once and the caller polls. It is
//! kept in memory and, when the sidecar has a ring, written to
//! `RING/positions/UID.json`, so a sidecar restart between the two hooks
//! loses nothing. A snapshot once taken is never taken again for the same
//! UID: by the time a second request comes the promoted replica may have
//! been reset already.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use gapless_decoder::gtid::{Gtid, MariaGtid};
use gapless_protocol::client::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{info, warn};

use super::http::{Response, Status};
use super::replay::{json_response, parse_target, Login};
use super::time;
use crate::atomic_file;
use crate::replay::{executed_on, replica_status, Executed, ReplicaStatus};
use crate::ring::index::cmp_coords;
use crate::ring::index::UnitStart;
use crate::ring::RingReader;

/// How long one replica may take to answer (connect and queries).
pub const REPLICA_TIMEOUT: Duration = Duration::from_secs(5);

/// Most replicas in one snapshot.
pub const MAX_REPLICAS: usize = 64;

/// The snapshots taken through the API.
pub struct Positions {
    ring: Option<PathBuf>,
    source: String,
    login: Option<Login>,
    snapshots: Arc<Mutex<BTreeMap<String, Taken>>>,
}

impl std::fmt::Debug for Positions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Positions").field("ring", &self.ring).field("source", &self.source).finish()
    }
}

/// A snapshot, being taken or done.
#[derive(Debug, Clone)]
enum Taken {
    Running { started: u64, replicas: Vec<String> },
    Done(Arc<Snapshot>),
}

/// What was recorded for one recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// orchestrator's recovery UID.
    pub recovery_uid: String,
    /// When it was taken (RFC 3339).
    pub taken: String,
    /// The primary the ring holds (`HOST:PORT`).
    pub source: String,
    /// The oldest transaction the ring holds, when it holds one.
    pub ring_first: Option<RingFirst>,
    /// One entry per replica asked for, in the order given.
    pub replicas: Vec<ReplicaPosition>,
}

/// The oldest transaction the ring holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingFirst {
    /// `FILE:POS` of its first event.
    pub at: String,
    /// Its GTID, or "".
    pub gtid: String,
}

/// One replica's recorded state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaPosition {
    /// `HOST:PORT` as asked.
    pub replica: String,
    /// Why it could not be recorded (unreachable, not a replica, …).
    pub error: Option<String>,
    /// The primary it replicates from.
    pub primary: Option<String>,
    /// Its IO thread.
    pub io_running: Option<String>,
    /// Its SQL thread.
    pub sql_running: Option<String>,
    /// `Master_Log_File:Read_Master_Log_Pos`.
    pub received: Option<String>,
    /// `Relay_Master_Log_File:Exec_Master_Log_Pos`: where a replay onto it
    /// starts when it has no GTIDs.
    pub executed: Option<String>,
    /// Its executed GTIDs ("" when it has none).
    pub executed_gtids: Option<String>,
    /// `Using_Gtid` / `Auto_Position`.
    pub using_gtid: Option<String>,
    /// Whether the ring starts at or before what it lacks (`None`: cannot
    /// be told).
    pub covered: Option<bool>,
    /// Why `covered` is what it is.
    pub coverage: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    recovery_uid: String,
    replicas: Vec<String>,
}

/// A checked `POST /v1/positions` body: the UID and the replicas.
pub(crate) fn parse_body(body: &[u8]) -> Result<(String, Vec<(String, u16)>), String> {
    let body: Body = serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))?;
    let uid = body.recovery_uid.trim().to_string();
    if uid.is_empty() {
        return Err("recovery_uid: empty".into());
    }
    if uid.len() > 200 {
        return Err("recovery_uid: longer than 200 bytes".into());
    }
    if body.replicas.is_empty() {
        return Err("replicas: empty; give the replicas' HOST:PORT".into());
    }
    if body.replicas.len() > MAX_REPLICAS {
        return Err(format!("replicas: more than {MAX_REPLICAS}"));
    }
    let mut replicas = Vec::new();
    for r in &body.replicas {
        let hp = parse_target(r).map_err(|e| format!("replicas: {e}"))?;
        if !replicas.contains(&hp) {
            replicas.push(hp);
        }
    }
    Ok((uid, replicas))
}

impl Positions {
    /// Snapshots of the replicas of `source` (the primary the ring holds),
    /// logged in to with `login`, kept under `ring/positions`.
    pub fn new(ring: Option<PathBuf>, source: String, login: Option<Login>) -> Positions {
        Positions { ring, source, login, snapshots: Arc::default() }
    }

    fn snapshots(&self) -> MutexGuard<'_, BTreeMap<String, Taken>> {
        self.snapshots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn file(&self, uid: &str) -> Option<PathBuf> {
        let name = format!("{}.json", atomic_file::safe_name(uid));
        self.ring.as_ref().map(|r| r.join("positions").join(name))
    }

    /// A snapshot taken earlier, from memory or the ring directory.
    fn find(&self, uid: &str) -> Option<Taken> {
        if let Some(t) = self.snapshots().get(uid) {
            return Some(t.clone());
        }
        let text = std::fs::read(self.file(uid)?).ok()?;
        let snapshot: Snapshot = serde_json::from_slice(&text).ok()?;
        // The file name is the UID made safe: check it is this UID.
        (snapshot.recovery_uid == uid).then(|| Taken::Done(Arc::new(snapshot)))
    }
}

impl super::Jobs for Positions {
    /// `POST /v1/positions` with `body`.
    fn start(&self, body: &[u8]) -> Response {
        let Some(login) = &self.login else {
            return Response::text(
                Status::UNAVAILABLE,
                "recording replica positions needs a login for the replicas: start gapless stream with \
                 --apply-password-file FILE (and --apply-user USER)",
            );
        };
        let (uid, replicas) = match parse_body(body) {
            Ok(b) => b,
            Err(message) => return Response::text(Status::BAD_REQUEST, &message),
        };
        let url = format!("/v1/positions/{}", percent_encode(&uid));
        match self.find(&uid) {
            Some(Taken::Done(_)) => {
                return json_response(
                    Status::OK,
                    &json!({ "recovery_uid": uid, "url": url, "state": "done" }),
                )
            }
            Some(Taken::Running { .. }) => {
                return json_response(
                    Status::ACCEPTED,
                    &json!({ "recovery_uid": uid, "url": url, "state": "running" }),
                )
            }
            None => {}
        }
        let addrs: Vec<String> =
            replicas.iter().map(|(h, p)| gapless_protocol::client::host_port(h, *p)).collect();
        {
            let mut all = self.snapshots();
            if all.contains_key(&uid) {
                return json_response(
                    Status::ACCEPTED,
                    &json!({ "recovery_uid": uid, "url": url, "state": "running" }),
                );
            }
            all.insert(uid.clone(), Taken::Running { started: time::unix_now(), replicas: addrs.clone() });
        }
        info!(recovery = %uid, replicas = %addrs.join(","), "recording replica positions");
        let work = Work {
            uid: uid.clone(),
            ring: self.ring.clone(),
            source: self.source.clone(),
            file: self.file(&uid),
            login: Arc::clone(login),
            replicas,
            snapshots: Arc::clone(&self.snapshots),
        };
        if let Err(e) = std::thread::Builder::new().name("positions".into()).spawn(move || work.run()) {
            self.snapshots().remove(&uid);
            return Response::text(Status::INTERNAL_ERROR, &format!("cannot start a thread: {e}"));
        }
        json_response(Status::ACCEPTED, &json!({ "recovery_uid": uid, "url": url, "state": "running" }))
    }

    /// `GET /v1/positions/UID` (the UID percent-encoded).
    fn get(&self, encoded: &str) -> Response {
        let Some(uid) = percent_decode(encoded) else {
            return Response::text(Status::BAD_REQUEST, &format!("{encoded:?}: bad percent-encoding"));
        };
        match self.find(&uid) {
            Some(taken) => json_response(Status::OK, &taken_json(&uid, &taken)),
            None => Response::text(
                Status::NOT_FOUND,
                &format!("no positions recorded for recovery {uid:?} (GET /v1/positions lists them)"),
            ),
        }
    }

    /// `GET /v1/positions`: the snapshots of this run, by UID.
    fn list(&self) -> Response {
        let all = self.snapshots();
        json_response(Status::OK, &Value::Array(all.iter().map(|(uid, t)| taken_json(uid, t)).collect()))
    }
}

fn taken_json(uid: &str, taken: &Taken) -> Value {
    match taken {
        Taken::Running { started, replicas } => json!({
            "recovery_uid": uid,
            "state": "running",
            "started": time::rfc3339(*started),
            "replicas": replicas,
        }),
        Taken::Done(snapshot) => {
            let mut v = serde_json::to_value(snapshot.as_ref()).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("state".into(), "done".into());
            }
            v
        }
    }
}

/// A snapshot being taken.
struct Work {
    uid: String,
    ring: Option<PathBuf>,
    source: String,
    file: Option<PathBuf>,
    login: Login,
    replicas: Vec<(String, u16)>,
    snapshots: Arc<Mutex<BTreeMap<String, Taken>>>,
}

impl Work {
    fn run(self) {
        let ring_first = self.ring.as_ref().and_then(|dir| match RingReader::open(dir) {
            Ok(reader) => reader.first().cloned(),
            Err(e) => {
                warn!(ring = %dir.display(), "positions: cannot read the ring: {e}");
                None
            }
        });
        let replicas: Vec<ReplicaPosition> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .replicas
                .iter()
                .map(|(host, port)| scope.spawn(|| record(&self.login, host, *port)))
                .collect();
            handles
                .into_iter()
                .zip(&self.replicas)
                .map(|(h, (host, port))| {
                    h.join().unwrap_or_else(|_| ReplicaPosition {
                        replica: gapless_protocol::client::host_port(host, *port),
                        error: Some("recording it failed unexpectedly".into()),
                        ..Default::default()
                    })
                })
                .collect()
        });
        let replicas = replicas
            .into_iter()
            .map(|mut r| {
                (r.covered, r.coverage) = coverage(ring_first.as_ref(), &self.source, &r);
                r
            })
            .collect();
        let snapshot = Snapshot {
            recovery_uid: self.uid.clone(),
            taken: time::rfc3339(time::unix_now()),
            source: self.source.clone(),
            ring_first: ring_first.map(|f| RingFirst { at: format!("{}:{}", f.file, f.start), gtid: f.gtid }),
            replicas,
        };
        for r in &snapshot.replicas {
            info!(
                recovery = %self.uid,
                replica = %r.replica,
                executed = r.executed.as_deref().unwrap_or("-"),
                gtids = r.executed_gtids.as_deref().unwrap_or("-"),
                covered = ?r.covered,
                error = r.error.as_deref().unwrap_or("-"),
                "replica position recorded"
            );
        }
        if let Some(file) = &self.file {
            match serde_json::to_value(&snapshot) {
                Ok(v) => {
                    if let Err(e) = atomic_file::write_json(file, &v) {
                        warn!(file = %file.display(), "positions: cannot write the snapshot: {e}; kept in memory only");
                    }
                }
                Err(e) => warn!("positions: {e}"),
            }
        }
        let mut all = self.snapshots.lock().unwrap_or_else(PoisonError::into_inner);
        all.insert(self.uid, Taken::Done(Arc::new(snapshot)));
    }
}

/// One replica's state, within [`REPLICA_TIMEOUT`].
fn record(login: &Login, host: &str, port: u16) -> ReplicaPosition {
    let mut options = login(host, port);
    options.connect_timeout = REPLICA_TIMEOUT;
    let replica = options.addr();
    let mut out = ReplicaPosition { replica: replica.clone(), ..Default::default() };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(format!("starting the runtime: {e}"));
            return out;
        }
    };
    let result = runtime.block_on(async {
        tokio::time::timeout(REPLICA_TIMEOUT, async {
            let mut conn = Connection::connect(&options).await.map_err(|e| e.to_string())?;
            let status = replica_status(&mut conn).await.map_err(|e| e.to_string())?;
            let executed = executed_on(&mut conn).await.map_err(|e| e.to_string())?;
            conn.close().await;
            Ok::<_, String>((status, executed))
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", REPLICA_TIMEOUT.as_secs())))
    });
    match result {
        Ok((status, executed)) => {
            out.executed_gtids = Some(executed.to_string());
            match status {
                Some(ReplicaStatus { primary, io_running, sql_running, received, executed, using_gtid }) => {
                    let at = |c: Option<(String, u64)>| c.map(|(f, p)| format!("{f}:{p}"));
                    out.primary = primary;
                    out.io_running = io_running;
                    out.sql_running = sql_running;
                    out.received = at(received);
                    out.executed = at(executed);
                    out.using_gtid = using_gtid;
                }
                None => out.error = Some("not a replica (SHOW SLAVE STATUS is empty)".into()),
            }
        }
        Err(e) => out.error = Some(e),
    }
    out
}

/// Whether the ring, starting at `first`, holds everything the replica
/// lacks: by GTID when both have them, else by its place in the binlog of
/// the primary the ring holds.
pub fn coverage(first: Option<&UnitStart>, source: &str, r: &ReplicaPosition) -> (Option<bool>, String) {
    if r.error.is_some() {
        return (None, "not recorded".into());
    }
    let Some(first) = first else {
        return (None, "the ring holds no transaction yet".into());
    };
    let gtids = r.executed_gtids.as_deref().unwrap_or("");
    if !first.gtid.is_empty() && !gtids.is_empty() {
        if let Some(covered) = covered_by_gtid(&first.gtid, gtids) {
            let why = if covered {
                format!("it has every transaction before the ring's first, {}", first.gtid)
            } else {
                format!("it lacks transactions before the ring's first, {} (it has {gtids})", first.gtid)
            };
            return (Some(covered), why);
        }
    }
    let Some((file, pos)) = r.executed.as_deref().and_then(|e| e.rsplit_once(':')) else {
        return (None, "no GTIDs and no executed coordinates to compare".into());
    };
    let Ok(pos) = pos.parse::<u64>() else { return (None, format!("executed {file}:{pos}: bad position")) };
    if r.primary.as_deref() != Some(source) {
        return (
            None,
            format!(
                "it replicates from {}, the ring holds {source}: coordinates cannot be compared",
                r.primary.as_deref().unwrap_or("nothing")
            ),
        );
    }
    let ring_at = format!("{}:{}", first.file, first.start);
    if cmp_coords(&first.file, first.start, file, pos) == std::cmp::Ordering::Greater {
        (Some(false), format!("it executed up to {file}:{pos}, before the ring's first event at {ring_at}"))
    } else {
        (Some(true), format!("it executed up to {file}:{pos}; the ring starts at {ring_at}"))
    }
}

/// Whether `executed` holds everything before `first` in `first`'s
/// domain or source; `None` when they don't parse as the same flavour.
fn covered_by_gtid(first: &str, executed: &str) -> Option<bool> {
    if let (Ok(g), Ok(Executed::Maria(list))) = (first.parse::<MariaGtid>(), parse_executed(executed)) {
        return Some(g.seq_no <= 1 || list.get(g.domain_id).is_some_and(|have| have.seq_no + 1 >= g.seq_no));
    }
    if let (Ok(g), Ok(Executed::Mysql(set))) = (first.parse::<Gtid>(), parse_executed(executed)) {
        return Some(g.gno <= 1 || set.contains(&Gtid { gno: g.gno - 1, ..g }));
    }
    None
}

fn parse_executed(text: &str) -> Result<Executed, ()> {
    super::replay::parse_executed(text).map_err(|_| ())
}

/// Percent-encodes what is not `[A-Za-z0-9._~-]` (a UID in a URL path).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"._~-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`percent_encode`] (any `%XX` is accepted); `None` for a
/// broken escape or bytes that are not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Jobs as _;

    fn first(file: &str, start: u64, gtid: &str) -> UnitStart {
        UnitStart { offset: 0, file: file.into(), start, gtid: gtid.into(), timestamp: 0 }
    }

    fn replica(primary: &str, executed: &str, gtids: &str) -> ReplicaPosition {
        ReplicaPosition {
            replica: "r:3306".into(),
            primary: Some(primary.into()),
            executed: Some(executed.into()),
            executed_gtids: Some(gtids.into()),
            ..Default::default()
        }
    }

    #[test]
    fn bodies() {
        let (uid, r) = parse_body(br#"{"recovery_uid":"u-1","replicas":["a:1","[::1]:2","a:1"]}"#).unwrap();
        assert_eq!(uid, "u-1");
        assert_eq!(r, vec![("a".to_string(), 1), ("::1".to_string(), 2)]);
        for (bad, says) in [
            (&br#"{"recovery_uid":"","replicas":["a:1"]}"#[..], "empty"),
            (br#"{"recovery_uid":"u","replicas":[]}"#, "replicas: empty"),
            (br#"{"recovery_uid":"u","replicas":["a"]}"#, "no port"),
            (br#"{"recovery_uid":"u"}"#, "missing field"),
            (br#"{"recovery_uid":"u","replicas":["a:1"],"x":1}"#, "unknown field"),
            (b"not json", "invalid request body"),
        ] {
            let e = parse_body(bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn coverage_by_mariadb_gtid() {
        let f = first("bin.000002", 400, "0-1-10");
        // It has 0-1-9: the ring's first is the next one.
        assert_eq!(coverage(Some(&f), "p:1", &replica("p:1", "bin.000001:4", "0-1-9")).0, Some(true));
        assert_eq!(coverage(Some(&f), "p:1", &replica("p:1", "bin.000001:4", "0-1-12")).0, Some(true));
        let (c, why) = coverage(Some(&f), "p:1", &replica("p:1", "bin.000001:4", "0-1-8"));
        assert_eq!(c, Some(false), "{why}");
        assert!(why.contains("0-1-10") && why.contains("0-1-8"), "{why}");
        // Another domain only: it lacks domain 0 before 10.
        assert_eq!(coverage(Some(&f), "p:1", &replica("p:1", "bin.000003:4", "1-1-50")).0, Some(false));
        // The domain's first transaction is in the ring.
        let f1 = first("bin.000001", 4, "0-1-1");
        assert_eq!(coverage(Some(&f1), "p:1", &replica("p:1", "bin.000001:4", "1-1-50")).0, Some(true));
    }

    #[test]
    fn coverage_by_mysql_gtid() {
        let uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let f = first("bin.000002", 400, &format!("{uuid}:10"));
        let r = |set: &str| replica("p:1", "bin.000001:4", set);
        assert_eq!(coverage(Some(&f), "p:1", &r(&format!("{uuid}:1-9"))).0, Some(true));
        assert_eq!(coverage(Some(&f), "p:1", &r(&format!("{uuid}:1-8"))).0, Some(false));
        let f1 = first("bin.000001", 4, &format!("{uuid}:1"));
        assert_eq!(coverage(Some(&f1), "p:1", &r(&format!("{uuid}:1-8"))).0, Some(true));
    }

    #[test]
    fn coverage_by_coordinates() {
        let f = first("bin.000002", 400, "");
        assert_eq!(coverage(Some(&f), "p:1", &replica("p:1", "bin.000002:400", "")).0, Some(true));
        assert_eq!(coverage(Some(&f), "p:1", &replica("p:1", "bin.000003:4", "")).0, Some(true));
        let (c, why) = coverage(Some(&f), "p:1", &replica("p:1", "bin.000002:399", ""));
        assert_eq!(c, Some(false));
        assert!(why.contains("bin.000002:399") && why.contains("bin.000002:400"), "{why}");
        // Another primary's coordinates say nothing about this ring.
        let (c, why) = coverage(Some(&f), "p:1", &replica("q:1", "bin.000009:4", ""));
        assert_eq!(c, None);
        assert!(why.contains("q:1"), "{why}");
        // Nothing to compare, or nothing recorded.
        assert_eq!(coverage(None, "p:1", &replica("p:1", "bin.000002:400", "")).0, None);
        let unreachable = ReplicaPosition { error: Some("refused".into()), ..Default::default() };
        assert_eq!(coverage(Some(&f), "p:1", &unreachable).0, None);
    }

    #[test]
    fn uids_in_urls() {
        for uid in ["1700000000:abc-1", "a/b c", "ünï", "%41"] {
            assert_eq!(percent_decode(&percent_encode(uid)).as_deref(), Some(uid));
            assert!(!percent_encode(uid).contains('/'));
        }
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn a_snapshot_is_taken_once_and_found_on_disk() {
        let dir = std::env::temp_dir().join(format!("gapless-positions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let snapshot = Snapshot {
            recovery_uid: "u/1".into(),
            taken: "2026-11-26T00:00:00Z".into(),
            source: "p:1".into(),
            ring_first: None,
            replicas: vec![replica("p:1", "bin.000001:4", "")],
        };
        let login: Login = Arc::new(|h: &str, p| gapless_protocol::client::ConnectOptions::new(h, p, "u"));
        let positions = Positions::new(Some(dir.clone()), "p:1".into(), Some(login));
        let file = positions.file("u/1").unwrap();
        atomic_file::write_json(&file, &serde_json::to_value(&snapshot).unwrap()).unwrap();
        // A sidecar restarted between the hooks still has it.
        let got = positions.get(&percent_encode("u/1"));
        assert_eq!(got.status, Status::OK);
        let v: Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(v["state"], "done");
        assert_eq!(v["replicas"][0]["executed"], "bin.000001:4");
        // Asking again does not take it again (the replica may be reset by now).
        let again = positions.start(br#"{"recovery_uid":"u/1","replicas":["127.0.0.1:1"]}"#);
        assert_eq!(again.status, Status::OK);
        assert_eq!(serde_json::from_slice::<Value>(&again.body).unwrap()["state"], "done");
        assert_eq!(positions.get("other").status, Status::NOT_FOUND);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
