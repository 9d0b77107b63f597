//! The discovered cluster: one [`Instance`] per server (and per sidecar)
//! with what the checks and the table need, gathered once so that every
//! later step (the table, the precheck, a switchover's candidate choice) is
//! a pure function over it.
//!
//! Values the server did not show stay `None`: an unreadable variable is
//! never guessed. Everything serializes for `--json`.

use serde::Serialize;

/// What an instance is in the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The writable top of the tree.
    Primary,
    /// A replica of the primary (or of an intermediate primary) that has
    /// replicas of its own.
    IntermediatePrimary,
    /// A replica.
    Replica,
    /// A gapless sidecar (`gapless stream`) registered as a replica: it
    /// receives the binlog but applies nothing, so it is never judged as a
    /// replica.
    Sidecar,
    /// A replication client seen only in the processlist, which could not
    /// be identified (no `report_host`, nothing answered where it was
    /// looked for).
    Unknown,
}

impl Role {
    /// The name shown in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::IntermediatePrimary => "intermediate",
            Role::Replica => "replica",
            Role::Sidecar => "sidecar",
            Role::Unknown => "unknown",
        }
    }

    /// A replica that applies changes (an intermediate primary is one too).
    pub fn is_replica(self) -> bool {
        matches!(self, Role::Replica | Role::IntermediatePrimary)
    }
}

/// The server software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// MariaDB (`@@version` says so).
    MariaDb,
    /// MySQL or Percona Server.
    MySql,
}

/// How an instance was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// It is the seed.
    Seed,
    /// A replica's `Master_Host`/`Master_Port` named it.
    Source,
    /// Its parent's `SHOW SLAVE HOSTS` (`SHOW REPLICAS`) listed it.
    SlaveHosts,
    /// Only its parent's processlist showed its binlog dump connection.
    Processlist,
}

/// A binlog file and position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BinlogPosition {
    /// The file name.
    pub file: String,
    /// The position in it.
    pub position: u64,
}

impl std::fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.position)
    }
}

/// The GTID settings and positions of a server, as its variables show
/// them (empty strings are kept: an empty `gtid_binlog_state` is a fact).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GtidState {
    /// MySQL `gtid_mode` (`ON`, `OFF`, `ON_PERMISSIVE`, `OFF_PERMISSIVE`).
    pub mode: Option<String>,
    /// MySQL `enforce_gtid_consistency`.
    pub enforce_consistency: Option<String>,
    /// MariaDB `gtid_strict_mode`.
    pub strict_mode: Option<bool>,
    /// MySQL `gtid_executed`: every transaction it has.
    pub executed: Option<String>,
    /// MariaDB `gtid_binlog_pos`: the last GTID of each domain in its binlog.
    pub binlog_pos: Option<String>,
    /// MariaDB `gtid_binlog_state`: the last GTID of each (domain, server)
    /// in its binlog, what errant-transaction detection compares.
    pub binlog_state: Option<String>,
    /// MariaDB `gtid_current_pos`.
    pub current_pos: Option<String>,
    /// MariaDB `gtid_slave_pos`.
    pub slave_pos: Option<String>,
}

/// One replication channel of a replica: a row of `SHOW ALL SLAVES STATUS`
/// (MariaDB) or `SHOW REPLICA STATUS` (MySQL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Replication {
    /// MariaDB's `Connection_name` or MySQL's `Channel_Name` (empty for
    /// the default one).
    pub name: String,
    /// `Master_Host`.
    pub source_host: String,
    /// `Master_Port`.
    pub source_port: u16,
    /// `Master_Server_Id` (0 or absent until it has connected once).
    pub source_server_id: Option<u32>,
    /// `Slave_IO_Running`: `Yes`, `No`, `Connecting` or `Preparing`.
    pub io_running: String,
    /// `Slave_SQL_Running`: `Yes` or `No`.
    pub sql_running: String,
    /// `Seconds_Behind_Master`; `None` (NULL) while a thread is stopped.
    pub seconds_behind: Option<u64>,
    /// `SQL_Delay`: a deliberate `MASTER_DELAY`.
    pub sql_delay: Option<u64>,
    /// MariaDB `Using_Gtid` (`No`, `Slave_Pos`, `Current_Pos`); MySQL
    /// `Auto_Position` shown as `auto_position` or `No`.
    pub using_gtid: Option<String>,
    /// `Last_IO_Errno: Last_IO_Error` when the errno is not 0.
    pub last_io_error: Option<String>,
    /// `Last_SQL_Errno: Last_SQL_Error` when the errno is not 0.
    pub last_sql_error: Option<String>,
    /// `Relay_Master_Log_File` / `Exec_Master_Log_Pos`: where in the
    /// source's binlog it has executed up to.
    pub executed: Option<BinlogPosition>,
}

impl Replication {
    /// Both threads run.
    pub fn running(&self) -> bool {
        self.io_running.eq_ignore_ascii_case("yes") && self.sql_running.eq_ignore_ascii_case("yes")
    }

    /// `IO/SQL` as the table shows it, e.g. `Yes/No`.
    pub fn threads(&self) -> String {
        format!("{}/{}", self.io_running, self.sql_running)
    }

    /// `HOST:PORT` of the source.
    pub fn source_addr(&self) -> String {
        addr(&self.source_host, self.source_port)
    }
}

/// Where an instance's datacenter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DcSource {
    /// The cluster's `[cluster.NAME.datacenter]` table.
    Config,
    /// The metadata database's datacenter query.
    MetaDb,
}

/// One server of the cluster (or a sidecar) as discovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    /// Host as reached (for a sidecar: the name it registered with).
    pub host: String,
    /// Port as reached (for a sidecar: the port it registered, often 0).
    pub port: u16,
    /// What it is.
    pub role: Role,
    /// 0 for the primary, 1 for its replicas, and so on.
    pub depth: u32,
    /// `HOST:PORT` of what it replicates from in this tree.
    pub parent: Option<String>,
    /// How it was found.
    pub found_by: FoundBy,
    /// Why it could not be read (connection or query failure); its other
    /// facts are then unknown.
    pub error: Option<String>,
    /// `@@server_id` (for a sidecar: the id it registered with).
    pub server_id: Option<u32>,
    /// MySQL `@@server_uuid`.
    pub server_uuid: Option<String>,
    /// `@@hostname`: the machine's own name.
    pub hostname: Option<String>,
    /// `@@version`.
    pub version: Option<String>,
    /// MariaDB or MySQL.
    pub flavor: Option<Flavor>,
    /// `@@read_only`.
    pub read_only: Option<bool>,
    /// MySQL `@@super_read_only` (MariaDB has none).
    pub super_read_only: Option<bool>,
    /// `@@log_bin`.
    pub log_bin: Option<bool>,
    /// `@@log_slave_updates` (`log_replica_updates`).
    pub log_slave_updates: Option<bool>,
    /// `@@binlog_format`.
    pub binlog_format: Option<String>,
    /// `@@binlog_row_image`.
    pub binlog_row_image: Option<String>,
    /// GTID settings and positions.
    pub gtid: GtidState,
    /// `SHOW MASTER STATUS`: where its binlog ends.
    pub binlog_position: Option<BinlogPosition>,
    /// Its replication channel towards its parent (the first one when none
    /// points there).
    pub replication: Option<Replication>,
    /// The names of its other replication channels (multi-source).
    pub other_channels: Vec<String>,
    /// Its datacenter, from the config or the metadata database.
    pub datacenter: Option<String>,
    /// Where [`Self::datacenter`] came from.
    pub datacenter_from: Option<DcSource>,
}

/// `HOST:PORT`, with an IPv6 address in brackets.
pub fn addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Instance {
    /// An instance with only its place known.
    pub fn new(host: &str, port: u16, role: Role, found_by: FoundBy) -> Instance {
        Instance {
            host: host.to_string(),
            port,
            role,
            depth: 0,
            parent: None,
            found_by,
            error: None,
            server_id: None,
            server_uuid: None,
            hostname: None,
            version: None,
            flavor: None,
            read_only: None,
            super_read_only: None,
            log_bin: None,
            log_slave_updates: None,
            binlog_format: None,
            binlog_row_image: None,
            gtid: GtidState::default(),
            binlog_position: None,
            replication: None,
            other_channels: Vec::new(),
            datacenter: None,
            datacenter_from: None,
        }
    }

    /// `HOST:PORT`.
    pub fn addr(&self) -> String {
        addr(&self.host, self.port)
    }

    /// The `(major, minor)` of [`Self::version`], e.g. `(10, 11)` for
    /// `10.11.6-MariaDB-log`.
    pub fn major_version(&self) -> Option<(u32, u32)> {
        major_version(self.version.as_deref()?)
    }
}

/// The `(major, minor)` of a version string (`8.0.36`, `10.11.6-MariaDB`).
pub fn major_version(version: &str) -> Option<(u32, u32)> {
    // MariaDB 10.x once prefixed "5.5.5-" for old clients.
    let v = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The discovered cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// The seed discovery started from.
    pub seed: String,
    /// `HOST:PORT` of the primary.
    pub primary: String,
    /// Every instance, the primary first, then depth first (replicas by
    /// address, sidecars after the replicas of the same parent).
    pub instances: Vec<Instance>,
    /// Dual-primary (master-master): the primary replicates from this
    /// instance, which replicates from the primary. The writable one of
    /// the pair is [`Self::primary`].
    pub co_primary: Option<String>,
    /// What discovery noticed that belongs to no one instance.
    pub notes: Vec<String>,
}

impl Topology {
    /// The primary.
    pub fn primary(&self) -> Option<&Instance> {
        self.instances.iter().find(|i| i.role == Role::Primary)
    }

    /// The instance at `HOST:PORT`.
    pub fn get(&self, addr: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.addr() == addr)
    }

    /// The replicas (intermediate primaries included), not sidecars.
    pub fn replicas(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| i.role.is_replica())
    }

    /// The sidecars.
    pub fn sidecars(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| i.role == Role::Sidecar)
    }

    /// The replicas that replicate straight from the primary.
    pub fn direct_replicas(&self) -> impl Iterator<Item = &Instance> {
        let primary = self.primary.clone();
        self.replicas().filter(move |i| i.parent.as_deref() == Some(primary.as_str()))
    }
}

/// Serializes a `Result<T, String>` for `--json` as the value itself, or
/// `{"error": "..."}`.
pub fn value_or_error<S: serde::Serializer, T: Serialize>(
    r: &Result<T, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Failed<'a> {
        error: &'a str,
    }
    match r {
        Ok(v) => v.serialize(s),
        Err(e) => Failed { error: e }.serialize(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_json() {
        #[derive(Serialize)]
        struct Doc {
            #[serde(serialize_with = "value_or_error")]
            v: Result<Option<String>, String>,
        }
        let json = |v| serde_json::to_string(&Doc { v }).unwrap();
        assert_eq!(json(Ok(Some("dc1".into()))), r#"{"v":"dc1"}"#);
        assert_eq!(json(Ok(None)), r#"{"v":null}"#);
        assert_eq!(json(Err("refused".into())), r#"{"v":{"error":"refused"}}"#);
    }

    #[test]
    fn versions() {
        assert_eq!(major_version("10.11.6-MariaDB-0+deb12u1-log"), Some((10, 11)));
        assert_eq!(major_version("5.5.5-10.6.12-MariaDB"), Some((10, 6)));
        assert_eq!(major_version("8.0.36"), Some((8, 0)));
        assert_eq!(major_version("8.4.0-commercial"), Some((8, 4)));
        assert_eq!(major_version("junk"), None);
        assert_eq!(major_version("8"), None);
    }

    #[test]
    fn addresses_and_threads() {
        assert_eq!(addr("db1", 3306), "db1:3306");
        assert_eq!(addr("::1", 3306), "[::1]:3306");
        let r = Replication { io_running: "Yes".into(), sql_running: "No".into(), ..Replication::default() };
        assert!(!r.running());
        assert_eq!(r.threads(), "Yes/No");
        assert_eq!(Role::IntermediatePrimary.as_str(), "intermediate");
        assert!(Role::IntermediatePrimary.is_replica() && !Role::Sidecar.is_replica());
    }
}
