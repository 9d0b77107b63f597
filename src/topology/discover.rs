//! Discovery: from a seed, climb to the primary (following each replica's
//! `Master_Host`/`Master_Port`), then walk down through every server's
//! replicas (`SHOW SLAVE HOSTS`, or MySQL's `SHOW REPLICAS`, which list the
//! replicas that set `report_host`; the processlist's `Binlog Dump` threads
//! find the others), reading each server's variables and replication
//! status on the way.
//!
//! The parsing of every result is a pure function over [`Record`]s, tested
//! on made-up rows; the I/O is in [`probe`] and [`discover`].
//!
//! A gapless sidecar registers as a replica (its report host is
//! `gapless@HOST` unless told otherwise, its port 0): it is recognised by
//! that name, or by the server id its status API reports, and shown as a
//! sidecar, never probed as a broken replica.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use mysql_async::Conn;

use super::conn::{self, query, Login, Record, SqlError};
use super::instance::{addr, BinlogPosition, Flavor, FoundBy, Instance, Replication, Role, Topology};

/// The most instances one discovery reads.
pub const MAX_INSTANCES: usize = 256;
/// The most hops from the seed up to the primary.
pub const MAX_HOPS: usize = 16;

/// How to discover.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// The login for every server.
    pub login: Login,
    /// The limit for each connect and each statement.
    pub limit: Duration,
    /// Server ids of known sidecars (from their status API).
    pub sidecar_ids: Vec<u32>,
    /// Hosts of known sidecars (their API's host): their binlog dump
    /// connections are not taken for unregistered replicas.
    pub sidecar_hosts: Vec<String>,
    /// Instances known from the configuration (`HOST`, `PORT`): where a
    /// replica seen only in the processlist is looked for first.
    pub hints: Vec<(String, u16)>,
}

/// Why discovery could not give a topology.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// The seed could not be read.
    #[error("seed {seed}: {why}")]
    Seed {
        /// `HOST:PORT`.
        seed: String,
        /// Why.
        why: String,
    },
    /// A replica's source (on the way up to the primary) could not be read.
    #[error("{replica} replicates from {upstream}, which cannot be read: {why}")]
    Source {
        /// The replica.
        replica: String,
        /// Its source.
        upstream: String,
        /// Why.
        why: String,
    },
    /// The chain of sources is longer than [`MAX_HOPS`].
    #[error("more than {MAX_HOPS} hops from the seed {seed} up to a primary")]
    TooDeep {
        /// The seed.
        seed: String,
    },
}

/// A replica registered with a server (a row of `SHOW SLAVE HOSTS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// `Server_id`.
    pub server_id: Option<u32>,
    /// `Host`: its `report_host`.
    pub host: String,
    /// `Port`: its `report_port`.
    pub port: u16,
}

/// What one connection to a server found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Its facts (with [`Instance::error`] set when it could not be read).
    pub instance: Instance,
    /// Every replication channel.
    pub channels: Vec<Replication>,
    /// The replicas registered with it.
    pub registered: Vec<Registered>,
    /// The client hosts of its binlog dump threads.
    pub dump_clients: Vec<String>,
    /// Lesser failures (a listing the user may not read).
    pub notes: Vec<String>,
}

/// The variables read from every server (missing ones are simply absent).
pub const VARIABLES: &[&str] = &[
    "version",
    "version_comment",
    "server_id",
    "server_uuid",
    "hostname",
    "port",
    "read_only",
    "super_read_only",
    "log_bin",
    "log_slave_updates",
    "log_replica_updates",
    "binlog_format",
    "binlog_row_image",
    "gtid_mode",
    "enforce_gtid_consistency",
    "gtid_strict_mode",
    "gtid_executed",
    "gtid_binlog_pos",
    "gtid_binlog_state",
    "gtid_current_pos",
    "gtid_slave_pos",
];

fn flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_uppercase().as_str() {
        "ON" | "1" | "YES" | "TRUE" => Some(true),
        "OFF" | "0" | "NO" | "FALSE" => Some(false),
        _ => None,
    }
}

/// GTID sets as the server prints them, on one line.
fn one_line(v: &str) -> String {
    v.split(',').map(str::trim).collect::<Vec<_>>().join(",")
}

/// Fills `inst` from `SHOW GLOBAL VARIABLES` rows (`Variable_name`, `Value`).
pub fn apply_variables(inst: &mut Instance, rows: &[Record]) {
    let vars: BTreeMap<String, String> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.text(&["Variable_name"])?.to_ascii_lowercase(),
                r.text(&["Value"]).unwrap_or("").to_string(),
            ))
        })
        .collect();
    let get = |name: &str| vars.get(name).map(String::as_str);
    inst.version = get("version").map(str::to_string);
    let mariadb = [get("version"), get("version_comment")]
        .into_iter()
        .flatten()
        .any(|v| v.to_ascii_lowercase().contains("mariadb"));
    inst.flavor = inst.version.as_ref().map(|_| if mariadb { Flavor::MariaDb } else { Flavor::MySql });
    inst.server_id = get("server_id").and_then(|v| v.trim().parse().ok());
    inst.server_uuid = get("server_uuid").filter(|v| !v.is_empty()).map(str::to_string);
    inst.hostname = get("hostname").map(str::to_string);
    inst.read_only = get("read_only").and_then(flag);
    inst.super_read_only = get("super_read_only").and_then(flag);
    inst.log_bin = get("log_bin").and_then(flag);
    inst.log_slave_updates = get("log_replica_updates").or(get("log_slave_updates")).and_then(flag);
    inst.binlog_format = get("binlog_format").map(str::to_ascii_uppercase);
    inst.binlog_row_image = get("binlog_row_image").map(str::to_ascii_uppercase);
    let g = &mut inst.gtid;
    g.mode = get("gtid_mode").map(str::to_ascii_uppercase);
    g.enforce_consistency = get("enforce_gtid_consistency").map(str::to_ascii_uppercase);
    g.strict_mode = get("gtid_strict_mode").and_then(flag);
    g.executed = get("gtid_executed").map(one_line);
    g.binlog_pos = get("gtid_binlog_pos").map(one_line);
    g.binlog_state = get("gtid_binlog_state").map(one_line);
    g.current_pos = get("gtid_current_pos").map(one_line);
    g.slave_pos = get("gtid_slave_pos").map(one_line);
}

/// `errno: message` when the errno is not 0.
fn error_of(r: &Record, errno: &str, message: &str) -> Option<String> {
    let n: u32 = r.number(&[errno]).unwrap_or(0);
    (n != 0).then(|| format!("{n}: {}", r.text(&[message]).unwrap_or("").trim()))
}

/// Reads `SHOW ALL SLAVES STATUS` / `SHOW REPLICA STATUS` / `SHOW SLAVE
/// STATUS` rows (old and new column names).
pub fn parse_channels(rows: &[Record]) -> Vec<Replication> {
    rows.iter()
        .filter(|r| r.text(&["Master_Host", "Source_Host"]).is_some_and(|h| !h.is_empty()))
        .map(|r| {
            let using_gtid = match r.text(&["Using_Gtid"]) {
                Some(v) => Some(v.to_string()),
                None => r.number::<u32>(&["Auto_Position"]).map(|a| {
                    if a == 1 {
                        "auto_position".into()
                    } else {
                        "No".into()
                    }
                }),
            };
            let file = r.text(&["Relay_Master_Log_File", "Relay_Source_Log_File"]);
            let pos = r.number(&["Exec_Master_Log_Pos", "Exec_Source_Log_Pos"]);
            Replication {
                name: r.text(&["Connection_name", "Channel_Name", "Channel_name"]).unwrap_or("").to_string(),
                source_host: r.text(&["Master_Host", "Source_Host"]).unwrap_or("").to_string(),
                source_port: r.number(&["Master_Port", "Source_Port"]).unwrap_or(0),
                source_server_id: r.number(&["Master_Server_Id", "Source_Server_Id"]).filter(|id| *id != 0),
                io_running: r.text(&["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or("?").to_string(),
                sql_running: r.text(&["Slave_SQL_Running", "Replica_SQL_Running"]).unwrap_or("?").to_string(),
                seconds_behind: r.number(&["Seconds_Behind_Master", "Seconds_Behind_Source"]),
                sql_delay: r.number(&["SQL_Delay"]),
                using_gtid,
                last_io_error: error_of(r, "Last_IO_Errno", "Last_IO_Error"),
                last_sql_error: error_of(r, "Last_SQL_Errno", "Last_SQL_Error"),
                executed: file
                    .filter(|f| !f.is_empty())
                    .zip(pos)
                    .map(|(f, p)| BinlogPosition { file: f.to_string(), position: p }),
            }
        })
        .collect()
}

/// Reads `SHOW SLAVE HOSTS` / `SHOW REPLICAS` rows.
pub fn parse_registered(rows: &[Record]) -> Vec<Registered> {
    rows.iter()
        .map(|r| Registered {
            server_id: r.number(&["Server_id", "Server_Id"]),
            host: r.text(&["Host"]).unwrap_or("").trim().to_string(),
            port: r.number(&["Port"]).unwrap_or(0),
        })
        .collect()
}

/// The client host (without its port) of each binlog dump thread in
/// processlist rows (`HOST`, `COMMAND`).
pub fn parse_dump_clients(rows: &[Record]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.text(&["COMMAND", "Command"]).is_some_and(|c| c.starts_with("Binlog Dump")))
        .filter_map(|r| {
            let host = r.text(&["HOST", "Host"])?.trim();
            // "10.0.0.5:51234", "[::1]:51234" or a bare name.
            let bare = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(v6),
                None if host.matches(':').count() == 1 => host.split(':').next().unwrap_or(host),
                None => host,
            };
            (!bare.is_empty()).then(|| bare.to_string())
        })
        .collect()
}

/// True for a sidecar's registration: a report host of `gapless` or
/// `gapless@…` (what `gapless stream` registers by default), or a server id
/// a sidecar's status reports.
pub fn is_sidecar(reg: &Registered, sidecar_ids: &[u32]) -> bool {
    let host = reg.host.to_ascii_lowercase();
    host == "gapless"
        || host.starts_with("gapless@")
        || reg.server_id.is_some_and(|id| sidecar_ids.contains(&id))
}

/// The client hosts of binlog dump threads that no registration accounts
/// for, once: each registered replica accounts for one thread from its
/// host, and each sidecar's registration (which names no reachable host)
/// for one more, taken first from the sidecars' own hosts. A replica
/// registered without a host accounts for none: its thread is looked for.
pub fn unregistered_clients(
    clients: &[String],
    registered: &[Registered],
    sidecar_ids: &[u32],
    sidecar_hosts: &[String],
) -> Vec<String> {
    let mut left: Vec<String> = clients.to_vec();
    let take = |left: &mut Vec<String>, host: &str| {
        if let Some(i) = left.iter().position(|c| c.eq_ignore_ascii_case(host)) {
            left.remove(i);
            true
        } else {
            false
        }
    };
    let mut nameless = 0usize;
    for reg in registered {
        if is_sidecar(reg, sidecar_ids) {
            nameless += 1;
        } else if reg.port != 0 {
            take(&mut left, &reg.host);
        }
    }
    for _ in 0..nameless {
        if !sidecar_hosts.iter().any(|h| take(&mut left, h)) {
            left.pop();
        }
    }
    let mut out: Vec<String> = Vec::new();
    for c in left {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&c)) {
            out.push(c);
        }
    }
    out
}

/// The channel that points at `parent` (by port and server id, else by
/// port), else the first; and the names of the others.
pub fn pick_channel(
    channels: &[Replication],
    parent: Option<(&str, u16, Option<u32>)>,
) -> (Option<Replication>, Vec<String>) {
    let at = parent.and_then(|(host, port, id)| {
        let by_id =
            channels.iter().position(|c| c.source_port == port && id.is_some() && c.source_server_id == id);
        by_id
            .or_else(|| {
                channels
                    .iter()
                    .position(|c| c.source_port == port && c.source_host.eq_ignore_ascii_case(host))
            })
            .or_else(|| channels.iter().position(|c| c.source_port == port))
    });
    let at = at.or(if channels.is_empty() { None } else { Some(0) });
    let chosen = at.and_then(|i| channels.get(i).cloned());
    let others =
        channels
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != at)
            .map(|(_, c)| {
                if c.name.is_empty() {
                    c.source_addr()
                } else {
                    format!("{} ({})", c.name, c.source_addr())
                }
            })
            .collect();
    (chosen, others)
}

/// Whether a replication channel points at the instance `parent`.
fn points_at(channel: &Replication, parent: &Instance) -> bool {
    channel.source_port == parent.port
        && match (channel.source_server_id, parent.server_id) {
            (Some(a), Some(b)) => a == b,
            _ => channel.source_host.eq_ignore_ascii_case(&parent.host),
        }
}

/// One statement whose failure is only noted (a listing the user may not
/// read); MySQL's newer spelling first when `modern` is given.
async fn optional(
    conn: &mut Conn,
    at: &str,
    modern: Option<&str>,
    sql: &str,
    limit: Duration,
    notes: &mut Vec<String>,
) -> Vec<Record> {
    if let Some(modern) = modern {
        match query(conn, at, modern, limit).await {
            Ok(rows) => return rows,
            // 1064: a server older than the statement.
            Err(e) if e.server_code() == Some(1064) => {}
            Err(e) => {
                notes.push(e.to_string());
                return Vec::new();
            }
        }
    }
    match query(conn, at, sql, limit).await {
        Ok(rows) => rows,
        Err(e) => {
            notes.push(e.to_string());
            Vec::new()
        }
    }
}

async fn read(conn: &mut Conn, probe: &mut Probe, limit: Duration) -> Result<(), SqlError> {
    let at = probe.instance.addr();
    let names = VARIABLES.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(",");
    let vars =
        query(conn, &at, &format!("SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})"), limit).await?;
    apply_variables(&mut probe.instance, &vars);
    let mariadb = probe.instance.flavor == Some(Flavor::MariaDb);
    let notes = &mut probe.notes;
    // The replication status is needed: a failure here is the instance's.
    let status = if mariadb {
        query(conn, &at, "SHOW ALL SLAVES STATUS", limit).await?
    } else {
        match query(conn, &at, "SHOW REPLICA STATUS", limit).await {
            Err(e) if e.server_code() == Some(1064) => query(conn, &at, "SHOW SLAVE STATUS", limit).await?,
            other => other?,
        }
    };
    probe.channels = parse_channels(&status);
    let hosts_modern = (!mariadb).then_some("SHOW REPLICAS");
    probe.registered =
        parse_registered(&optional(conn, &at, hosts_modern, "SHOW SLAVE HOSTS", limit, notes).await);
    let master_modern = (!mariadb).then_some("SHOW BINARY LOG STATUS");
    let master = optional(conn, &at, master_modern, "SHOW MASTER STATUS", limit, notes).await;
    probe.instance.binlog_position = master.first().and_then(|r| {
        Some(BinlogPosition { file: r.text(&["File"])?.to_string(), position: r.number(&["Position"])? })
    });
    let dumps = "SELECT HOST, COMMAND FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'";
    probe.dump_clients = parse_dump_clients(&optional(conn, &at, None, dumps, limit, notes).await);
    Ok(())
}

/// Connects to `host:port` and reads what discovery needs; a failure is
/// kept in the instance's `error`.
pub async fn probe(login: &Login, host: &str, port: u16, found_by: FoundBy, limit: Duration) -> Probe {
    let mut probe = Probe {
        instance: Instance::new(host, port, Role::Replica, found_by),
        channels: Vec::new(),
        registered: Vec::new(),
        dump_clients: Vec::new(),
        notes: Vec::new(),
    };
    match conn::connect(login, host, port, None, limit).await {
        Ok(mut c) => {
            if let Err(e) = read(&mut c, &mut probe, limit).await {
                probe.instance.error = Some(e.to_string());
            }
            conn::close(c).await;
        }
        Err(e) => probe.instance.error = Some(e.to_string()),
    }
    probe
}

/// Probes several servers at once; the answers in the order asked.
async fn probe_all(login: &Login, eps: Vec<(String, u16, FoundBy)>, limit: Duration) -> Vec<Probe> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (host, port, found_by)) in eps.into_iter().enumerate() {
        let login = login.clone();
        set.spawn(async move { (i, probe(&login, &host, port, found_by, limit).await) });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        // A panicked probe task is a bug; it loses only that probe.
        if let Ok(pair) = done {
            out.push(pair);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, p)| p).collect()
}

/// The same server reached under two names: same `@@hostname` and port
/// variable, or the same `@@server_uuid`.
fn same_server(a: &Instance, b: &Instance) -> bool {
    if a.error.is_some() || b.error.is_some() {
        return a.addr().eq_ignore_ascii_case(&b.addr());
    }
    if let (Some(x), Some(y)) = (&a.server_uuid, &b.server_uuid) {
        return x == y;
    }
    a.hostname.is_some() && a.hostname == b.hostname && a.server_id == b.server_id && a.port == b.port
}

/// What the climb from the seed found.
struct Climb {
    /// `HOST:PORT` of the primary.
    primary: String,
    /// Every server read on the way, the primary included, by address.
    probes: HashMap<String, Probe>,
    /// The other half of a dual-primary pair.
    co_primary: Option<String>,
    /// What it noticed.
    notes: Vec<String>,
}

/// Climbs from the seed to the primary, following each server's first
/// replication channel; a chain that comes back to a server already seen
/// is a ring (dual-primary when two servers), whose writable member is the
/// primary.
async fn climb(seed: Probe, opts: &DiscoverOptions) -> Result<Climb, DiscoverError> {
    let seed_addr = seed.instance.addr();
    let mut chain: Vec<String> = vec![seed_addr.clone()];
    let mut probes: HashMap<String, Probe> = HashMap::new();
    probes.insert(seed_addr.clone(), seed);
    let mut notes = Vec::new();
    loop {
        let current = chain.last().expect("never empty").clone();
        let Some(channel) = probes[&current].channels.first().cloned() else {
            return Ok(Climb { primary: current, probes, co_primary: None, notes });
        };
        let source = channel.source_addr();
        let start = match chain.iter().position(|a| a.eq_ignore_ascii_case(&source)) {
            Some(at) => at,
            None => {
                if chain.len() > MAX_HOPS {
                    return Err(DiscoverError::TooDeep { seed: seed_addr });
                }
                let p = probe(
                    &opts.login,
                    &channel.source_host,
                    channel.source_port,
                    FoundBy::Source,
                    opts.limit,
                )
                .await;
                if let Some(why) = &p.instance.error {
                    return Err(DiscoverError::Source {
                        replica: current,
                        upstream: source,
                        why: why.clone(),
                    });
                }
                // The same server as one already seen, under another name.
                match chain.iter().position(|a| same_server(&probes[a.as_str()].instance, &p.instance)) {
                    Some(at) => {
                        notes.push(format!("{source} is {} under another name", chain[at]));
                        at
                    }
                    None => {
                        chain.push(source.clone());
                        probes.insert(source, p);
                        continue;
                    }
                }
            }
        };
        // A ring: dual-primary (two members) or circular replication.
        let members: Vec<String> = chain[start..].to_vec();
        let writable: Vec<&String> =
            members.iter().filter(|a| probes[a.as_str()].instance.read_only == Some(false)).collect();
        let primary = match writable.as_slice() {
            [one] => (*one).clone(),
            _ => {
                notes.push(format!(
                    "{} replicate from each other and {} of them is writable; taking {} as the primary",
                    members.join(" and "),
                    if writable.is_empty() { "none".to_string() } else { writable.len().to_string() },
                    members[0]
                ));
                members[0].clone()
            }
        };
        let co = match members.as_slice() {
            [a, b] => Some(if *a == primary { b.clone() } else { a.clone() }),
            _ => {
                notes.push(format!("circular replication through {}", members.join(" -> ")));
                None
            }
        };
        return Ok(Climb { primary, probes, co_primary: co, notes });
    }
}

/// Discovers the cluster that `host:port` belongs to.
pub async fn discover(host: &str, port: u16, opts: &DiscoverOptions) -> Result<Topology, DiscoverError> {
    let seed = probe(&opts.login, host, port, FoundBy::Seed, opts.limit).await;
    let seed_addr = seed.instance.addr();
    if let Some(why) = &seed.instance.error {
        return Err(DiscoverError::Seed { seed: seed_addr, why: why.clone() });
    }
    let Climb { primary: primary_addr, mut probes, co_primary, mut notes } = climb(seed, opts).await?;

    let mut found: Vec<Instance> = Vec::new();
    let mut queue: VecDeque<(Probe, u32)> = VecDeque::new();
    let mut primary = probes.remove(&primary_addr).expect("climb returns a probed primary");
    primary.instance.role = Role::Primary;
    let (channel, others) = pick_channel(&primary.channels, None);
    primary.instance.replication = channel;
    primary.instance.other_channels = others;
    found.push(primary.instance.clone());
    queue.push_back((primary, 0));

    while let Some((node, depth)) = queue.pop_front() {
        for note in &node.notes {
            notes.push(note.clone());
        }
        if found.len() >= MAX_INSTANCES {
            notes.push(format!("stopped at {MAX_INSTANCES} instances"));
            break;
        }
        let parent = node.instance.clone();
        let mut asks: Vec<(String, u16, FoundBy)> = Vec::new();
        for reg in &node.registered {
            if is_sidecar(reg, &opts.sidecar_ids) {
                let mut s = Instance::new(&reg.host, reg.port, Role::Sidecar, FoundBy::SlaveHosts);
                s.server_id = reg.server_id;
                s.depth = depth + 1;
                s.parent = Some(parent.addr());
                found.push(s);
            } else if reg.port == 0 || reg.host.is_empty() {
                notes.push(format!(
                    "{}: a replica with server id {} registered without a host and port (set its report_host)",
                    parent.addr(),
                    reg.server_id.map_or("?".into(), |i| i.to_string())
                ));
            } else {
                asks.push((reg.host.clone(), reg.port, FoundBy::SlaveHosts));
            }
        }
        for client in
            unregistered_clients(&node.dump_clients, &node.registered, &opts.sidecar_ids, &opts.sidecar_hosts)
        {
            let hinted: Vec<(String, u16)> =
                opts.hints.iter().filter(|(h, _)| h.eq_ignore_ascii_case(&client)).cloned().collect();
            let (host, port) = hinted.into_iter().next().unwrap_or((client.clone(), parent.port));
            asks.push((host, port, FoundBy::Processlist));
        }
        // Reuse what the climb read; probe the rest together.
        let mut answers: Vec<Probe> = Vec::new();
        let mut missing = Vec::new();
        for ask in asks {
            let key = addr(&ask.0, ask.1);
            match probes.remove(&key) {
                Some(mut p) => {
                    p.instance.found_by = ask.2;
                    answers.push(p);
                }
                None => missing.push(ask),
            }
        }
        answers.extend(probe_all(&opts.login, missing, opts.limit).await);
        let mut children = 0;
        for mut child in answers {
            if found.iter().any(|f| {
                f.addr().eq_ignore_ascii_case(&child.instance.addr()) || same_server(f, &child.instance)
            }) {
                continue;
            }
            let inst = &mut child.instance;
            inst.depth = depth + 1;
            inst.parent = Some(parent.addr());
            inst.role = Role::Replica;
            let (channel, others) =
                pick_channel(&child.channels, Some((&parent.host, parent.port, parent.server_id)));
            if inst.found_by == FoundBy::Processlist
                && !channel.as_ref().is_some_and(|c| points_at(c, &parent))
            {
                inst.role = Role::Unknown;
                let why = inst.error.clone().unwrap_or_else(|| "it does not replicate from it".into());
                inst.error = Some(format!(
                    "a binlog dump connection from {} to {} is in no SHOW SLAVE HOSTS (set report_host on that replica); {}: {why}",
                    inst.host,
                    parent.addr(),
                    inst.addr()
                ));
                found.push(child.instance);
                continue;
            }
            inst.replication = channel;
            inst.other_channels = others;
            children += 1;
            found.push(child.instance.clone());
            if child.instance.error.is_none() {
                queue.push_back((child, depth + 1));
            }
        }
        if children > 0 && depth > 0 {
            if let Some(me) = found.iter_mut().find(|f| f.addr() == parent.addr()) {
                me.role = Role::IntermediatePrimary;
            }
        }
    }
    // The primary was read before its replicas: read its variables again
    // now, so that under writes a replica read later cannot look ahead of
    // it (the errant-GTID check would take that for the replica's own).
    if let Some(p) = found.iter_mut().find(|f| f.role == Role::Primary) {
        if let Err(e) = reread_variables(p, &opts.login, opts.limit).await {
            notes.push(format!("{}: reading its variables again after its replicas: {e}", p.addr()));
        }
    }
    Ok(Topology { seed: seed_addr, primary: primary_addr, instances: tree_order(found), co_primary, notes })
}

/// Reads an instance's variables again (GTID state and the rest of
/// [`VARIABLES`]).
pub async fn reread_variables(inst: &mut Instance, login: &Login, limit: Duration) -> Result<(), SqlError> {
    let at = inst.addr();
    let mut c = conn::connect(login, &inst.host, inst.port, None, limit).await?;
    let names = VARIABLES.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(",");
    let rows =
        query(&mut c, &at, &format!("SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})"), limit).await;
    conn::close(c).await;
    apply_variables(inst, &rows?);
    Ok(())
}

/// The instances depth first from the primary: children by address,
/// sidecars and unknown clients after the replicas of the same parent.
pub fn tree_order(mut all: Vec<Instance>) -> Vec<Instance> {
    all.sort_by(|a, b| {
        let rank = |i: &Instance| match i.role {
            Role::Sidecar => 1,
            Role::Unknown => 2,
            _ => 0,
        };
        (rank(a), a.host.as_str(), a.port).cmp(&(rank(b), b.host.as_str(), b.port))
    });
    let mut out = Vec::with_capacity(all.len());
    let mut used = vec![false; all.len()];
    let roots: Vec<usize> = (0..all.len()).filter(|i| all[*i].role == Role::Primary).collect();
    let mut stack: Vec<usize> = roots.into_iter().rev().collect();
    while let Some(i) = stack.pop() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let me = all[i].addr();
        let kids: Vec<usize> =
            (0..all.len()).filter(|j| !used[*j] && all[*j].parent.as_deref() == Some(me.as_str())).collect();
        stack.extend(kids.into_iter().rev());
        out.push(i);
    }
    // Anything not reached from the primary (should not happen) goes last.
    out.extend((0..all.len()).filter(|i| !used[*i]));
    let mut slots: Vec<Option<Instance>> = all.drain(..).map(Some).collect();
    out.into_iter().filter_map(|i| slots[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<Record> {
        pairs
            .iter()
            .map(|(k, v)| Record::from_pairs([("Variable_name", Some(*k)), ("Value", Some(*v))]))
            .collect()
    }

    #[test]
    fn mariadb_variables() {
        let mut i = Instance::new("db1", 3306, Role::Replica, FoundBy::Seed);
        apply_variables(
            &mut i,
            &vars(&[
                ("version", "10.11.6-MariaDB-log"),
                ("version_comment", "Debian 12"),
                ("server_id", "2"),
                ("hostname", "db1"),
                ("read_only", "ON"),
                ("log_bin", "ON"),
                ("log_slave_updates", "OFF"),
                ("binlog_format", "row"),
                ("binlog_row_image", "FULL"),
                ("gtid_strict_mode", "ON"),
                ("gtid_binlog_state", "0-1-10,0-2-3"),
                ("gtid_slave_pos", ""),
            ]),
        );
        assert_eq!(i.flavor, Some(Flavor::MariaDb));
        assert_eq!((i.server_id, i.read_only, i.super_read_only), (Some(2), Some(true), None));
        assert_eq!((i.log_bin, i.log_slave_updates), (Some(true), Some(false)));
        assert_eq!(i.binlog_format.as_deref(), Some("ROW"));
        assert_eq!(i.gtid.strict_mode, Some(true));
        assert_eq!(i.gtid.binlog_state.as_deref(), Some("0-1-10,0-2-3"));
        assert_eq!(i.gtid.slave_pos.as_deref(), Some(""), "an empty position is a fact");
        assert_eq!(i.gtid.mode, None);
    }

    #[test]
    fn mysql_variables() {
        let mut i = Instance::new("db1", 3306, Role::Replica, FoundBy::Seed);
        apply_variables(
            &mut i,
            &vars(&[
                ("version", "8.0.36"),
                ("version_comment", "MySQL Community Server - GPL"),
                ("super_read_only", "OFF"),
                ("log_replica_updates", "ON"),
                ("log_slave_updates", "OFF"),
                ("gtid_mode", "ON"),
                ("enforce_gtid_consistency", "ON"),
                (
                    "gtid_executed",
                    "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4e11fa47-71ca-11e1-9e33-c80aa9429562:1",
                ),
            ]),
        );
        assert_eq!(i.flavor, Some(Flavor::MySql));
        assert_eq!(i.super_read_only, Some(false));
        assert_eq!(i.log_slave_updates, Some(true), "the new name wins");
        assert_eq!(
            i.gtid.executed.as_deref(),
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4e11fa47-71ca-11e1-9e33-c80aa9429562:1")
        );
    }

    #[test]
    fn replication_channels() {
        let maria = Record::from_pairs([
            ("Connection_name", Some("")),
            ("Master_Host", Some("127.0.0.1")),
            ("Master_Port", Some("3306")),
            ("Slave_IO_Running", Some("Yes")),
            ("Slave_SQL_Running", Some("No")),
            ("Seconds_Behind_Master", None),
            ("SQL_Delay", Some("0")),
            ("Using_Gtid", Some("Slave_Pos")),
            ("Last_IO_Errno", Some("0")),
            ("Last_SQL_Errno", Some("1062")),
            ("Last_SQL_Error", Some("Duplicate entry")),
            ("Relay_Master_Log_File", Some("mariadb-bin.000002")),
            ("Exec_Master_Log_Pos", Some("1234")),
            ("Master_Server_Id", Some("1")),
        ]);
        let mysql = Record::from_pairs([
            ("Channel_Name", Some("")),
            ("Source_Host", Some("db1")),
            ("Source_Port", Some("3306")),
            ("Replica_IO_Running", Some("Connecting")),
            ("Replica_SQL_Running", Some("Yes")),
            ("Seconds_Behind_Source", Some("12")),
            ("Auto_Position", Some("1")),
            ("Source_Server_Id", Some("0")),
        ]);
        let unconfigured = Record::from_pairs([("Master_Host", Some(""))]);
        let c = parse_channels(&[maria, mysql, unconfigured]);
        assert_eq!(c.len(), 2, "a channel without a host is none");
        assert_eq!((c[0].threads(), c[0].seconds_behind), ("Yes/No".into(), None));
        assert_eq!(c[0].last_sql_error.as_deref(), Some("1062: Duplicate entry"));
        assert_eq!(c[0].last_io_error, None);
        assert_eq!(c[0].executed.as_ref().unwrap().to_string(), "mariadb-bin.000002:1234");
        assert_eq!(c[0].source_server_id, Some(1));
        assert_eq!(c[1].source_addr(), "db1:3306");
        assert_eq!((c[1].seconds_behind, c[1].using_gtid.as_deref()), (Some(12), Some("auto_position")));
        assert_eq!(c[1].source_server_id, None, "0 means not known yet");
    }

    fn reg(id: u32, host: &str, port: u16) -> Registered {
        Registered { server_id: Some(id), host: host.into(), port }
    }

    #[test]
    fn registered_replicas_and_sidecars() {
        let rows = [
            Record::from_pairs([
                ("Server_id", Some("2")),
                ("Host", Some("127.0.0.1")),
                ("Port", Some("28001")),
            ]),
            Record::from_pairs([
                ("Server_id", Some("1234567")),
                ("Host", Some("gapless@side1")),
                ("Port", Some("0")),
            ]),
        ];
        let r = parse_registered(&rows);
        assert_eq!(r, vec![reg(2, "127.0.0.1", 28001), reg(1234567, "gapless@side1", 0)]);
        assert!(!is_sidecar(&r[0], &[]));
        assert!(is_sidecar(&r[1], &[]), "by its report host");
        assert!(is_sidecar(&reg(77, "gapless", 0), &[]));
        assert!(is_sidecar(&reg(77, "side1.example", 0), &[77]), "by the server id its status reports");
        assert!(!is_sidecar(&reg(77, "gaplessdb.example", 3306), &[]), "a host merely named so is not");
    }

    #[test]
    fn dump_threads_nobody_registered() {
        let rows = [
            Record::from_pairs([("HOST", Some("10.0.0.2:51000")), ("COMMAND", Some("Binlog Dump GTID"))]),
            Record::from_pairs([("HOST", Some("10.0.0.3:51001")), ("COMMAND", Some("Binlog Dump"))]),
            Record::from_pairs([("HOST", Some("[fd00::9]:51002")), ("COMMAND", Some("Binlog Dump"))]),
            Record::from_pairs([("HOST", Some("10.0.0.9:51003")), ("COMMAND", Some("Binlog Dump"))]),
            Record::from_pairs([("HOST", Some("10.0.0.4:51004")), ("COMMAND", Some("Query"))]),
        ];
        let clients = parse_dump_clients(&rows);
        assert_eq!(clients, ["10.0.0.2", "10.0.0.3", "fd00::9", "10.0.0.9"]);
        let registered = [reg(2, "10.0.0.2", 3306), reg(9, "gapless@side", 0)];
        // The sidecar's thread comes from its own host when that is known.
        assert_eq!(
            unregistered_clients(&clients, &registered, &[], &["10.0.0.9".into()]),
            ["10.0.0.3", "fd00::9"]
        );
        // Everything accounted for: replicas on one host, one sidecar among them.
        let local = vec!["127.0.0.1".to_string(); 4];
        let registered =
            [reg(2, "127.0.0.1", 1), reg(3, "127.0.0.1", 2), reg(4, "127.0.0.1", 3), reg(9, "gapless@x", 0)];
        assert!(unregistered_clients(&local, &registered, &[], &[]).is_empty());
        assert_eq!(unregistered_clients(&local, &registered[..2], &[], &[]), ["127.0.0.1"], "once per host");
        // A replica registered without its port is looked for.
        let nameless = [reg(2, "127.0.0.1", 0)];
        assert_eq!(unregistered_clients(&local[..1], &nameless, &[], &[]), ["127.0.0.1"]);
    }

    #[test]
    fn the_channel_towards_the_parent() {
        let ch = |name: &str, host: &str, port: u16, id: Option<u32>| Replication {
            name: name.into(),
            source_host: host.into(),
            source_port: port,
            source_server_id: id,
            ..Replication::default()
        };
        let channels = [ch("a", "10.0.0.1", 3306, Some(7)), ch("b", "db1", 3306, Some(1))];
        let (chosen, others) = pick_channel(&channels, Some(("db1", 3306, Some(1))));
        assert_eq!(chosen.unwrap().name, "b");
        assert_eq!(others, ["a (10.0.0.1:3306)"]);
        let (chosen, _) = pick_channel(&channels, Some(("10.0.0.1", 3306, None)));
        assert_eq!(chosen.unwrap().name, "a", "by host when the id is not known");
        let (chosen, others) = pick_channel(&channels, None);
        assert_eq!((chosen.unwrap().name.as_str(), others.len()), ("a", 1));
        assert_eq!(pick_channel(&[], None), (None, vec![]));
    }

    #[test]
    fn tree_order_is_depth_first() {
        let mk = |host: &str, port: u16, role: Role, parent: Option<&str>| {
            let mut i = Instance::new(host, port, role, FoundBy::SlaveHosts);
            i.parent = parent.map(str::to_string);
            i
        };
        let all = vec![
            mk("h", 4, Role::Replica, Some("h:2")),
            mk("gapless@s", 0, Role::Sidecar, Some("h:1")),
            mk("h", 3, Role::Replica, Some("h:1")),
            mk("h", 2, Role::IntermediatePrimary, Some("h:1")),
            mk("h", 1, Role::Primary, None),
        ];
        let order: Vec<String> = tree_order(all).iter().map(Instance::addr).collect();
        assert_eq!(order, ["h:1", "h:2", "h:4", "h:3", "gapless@s:0"]);
    }
}
