//! One replication session: log in, prepare the session the way a replica
//! does, register, and send the dump command.

use std::time::Duration;

use gapless_decoder::events::gtid::encode_gtid_set;
use gapless_decoder::gtid::{GtidSet, MariaGtidList};
use gapless_protocol::client::{BinlogStream, ClientError, ConnectOptions, Connection};
use gapless_protocol::command::{
    BinlogDump, BinlogDumpGtid, Command, RegisterSlave, DUMP_SEND_ANNOTATE_ROWS,
};
use gapless_protocol::response::ResultSet;
use tracing::{info, warn};

use super::StreamError;

/// MariaDB replica capability: understands GTID events (anything lower and
/// the primary rewrites them into BEGIN statements for old replicas).
const MARIA_SLAVE_CAPABILITY_GTID: u32 = 4;

/// How to open sessions with the primary.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Where and as whom.
    pub connect: ConnectOptions,
    /// The name shown in `SHOW SLAVE HOSTS`.
    pub report_host: String,
    /// How often the primary sends a heartbeat when it has nothing else.
    pub heartbeat: Duration,
    /// Ask for semi-sync (when the primary has it on).
    pub semi_sync: bool,
}

/// Where a dump starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpFrom {
    /// A binlog file and position.
    Position {
        /// File name.
        file: String,
        /// Position (4 for the first event).
        position: u64,
    },
    /// MariaDB: after these GTIDs (one per domain).
    MariaGtid(MariaGtidList),
    /// MySQL: everything not in this set.
    MysqlGtid(GtidSet),
}

impl std::fmt::Display for DumpFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpFrom::Position { file, position } => write!(f, "{file}:{position}"),
            DumpFrom::MariaGtid(list) if list.is_empty() => write!(f, "the first GTID"),
            DumpFrom::MariaGtid(list) => write!(f, "after GTID {list}"),
            DumpFrom::MysqlGtid(set) => write!(f, "after GTID set {set}"),
        }
    }
}

/// A logged-in connection to the primary (for the set-up queries).
pub async fn connect(config: &SessionConfig) -> Result<Connection, StreamError> {
    Ok(Connection::connect(&config.connect).await?)
}

/// The primary's current binlog file and position (`SHOW BINARY LOG STATUS`
/// on MySQL 8.2+, where `SHOW MASTER STATUS` is gone; `SHOW MASTER STATUS`
/// elsewhere).
pub async fn current_position(conn: &mut Connection) -> Result<DumpFrom, StreamError> {
    let set = if conn.server().is_mariadb() {
        conn.query_rows("SHOW MASTER STATUS").await?
    } else {
        match conn.query_rows("SHOW BINARY LOG STATUS").await {
            Ok(set) => set,
            // 1064: syntax error, the statement is newer than the server.
            Err(e) if e.server_error().is_some_and(|e| e.code == 1064) => {
                conn.query_rows("SHOW MASTER STATUS").await?
            }
            Err(e) => return Err(e.into()),
        }
    };
    let file = text(&set, 0, "File");
    let position = text(&set, 0, "Position").and_then(|p| p.parse().ok());
    match (file, position) {
        (Some(file), Some(position)) => Ok(DumpFrom::Position { file, position }),
        _ => Err(StreamError::NoBinlog { addr: conn.addr().to_string() }),
    }
}

/// Checks a GTID start against the server family: MariaDB takes
/// domain-server-seq positions, MySQL UUID sets; the empty start ("from the
/// beginning") fits both.
pub fn fit_flavor(from: &DumpFrom, conn: &Connection) -> Result<DumpFrom, StreamError> {
    let mariadb = conn.server().is_mariadb();
    let mismatch = |given: String| StreamError::GtidFlavor {
        addr: conn.addr().to_string(),
        server: if mariadb { "MariaDB" } else { "MySQL" },
        given,
    };
    match from {
        DumpFrom::MariaGtid(list) if !mariadb && list.is_empty() => Ok(DumpFrom::MysqlGtid(GtidSet::new())),
        DumpFrom::MysqlGtid(set) if mariadb && set.is_empty() => {
            Ok(DumpFrom::MariaGtid(MariaGtidList::new()))
        }
        DumpFrom::MariaGtid(list) if !mariadb => Err(mismatch(format!("MariaDB GTIDs ({list})"))),
        DumpFrom::MysqlGtid(set) if mariadb => Err(mismatch(format!("a MySQL GTID set ({set})"))),
        other => Ok(other.clone()),
    }
}

/// A server id no replica of the primary uses, and not the primary's own.
pub async fn pick_server_id(conn: &mut Connection) -> Result<u32, StreamError> {
    let taken = replica_ids(conn).await?;
    let own: u32 = conn.query_value("SELECT @@server_id").await?.and_then(|v| v.parse().ok()).unwrap_or(0);
    // Start from a value derived from the process and time, well away from
    // the small ids DBAs hand out, and walk past those in use.
    let seed = std::process::id()
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()));
    let mut id = 0x4000_0000 | (seed & 0x3fff_ffff);
    while id == own || taken.iter().any(|(t, _)| *t == id) {
        id = 0x4000_0000 | (id.wrapping_add(1) & 0x3fff_ffff);
    }
    Ok(id)
}

/// Server ids and hosts of the replicas registered with the primary
/// (empty, with a warning, when the user may not list them).
pub(super) async fn replica_ids(conn: &mut Connection) -> Result<Vec<(u32, String)>, StreamError> {
    let mut result = if conn.server().is_mariadb() {
        conn.query_rows("SHOW SLAVE HOSTS").await
    } else {
        match conn.query_rows("SHOW REPLICAS").await {
            Err(e) if e.server_error().is_some_and(|e| e.code == 1064) => {
                conn.query_rows("SHOW SLAVE HOSTS").await
            }
            other => other,
        }
    };
    // 1227: missing privilege (MariaDB 10.5+ wants REPLICATION MASTER ADMIN).
    if let Err(e) = &result {
        if e.server_error().is_some_and(|e| e.code == 1227) {
            warn!("{e}; cannot check which server ids other replicas use");
            result = Ok(ResultSet::default());
        }
    }
    let set = result?;
    Ok((0..set.rows.len())
        .filter_map(|i| {
            let id = text(&set, i, "Server_id")?.parse().ok()?;
            Some((id, text(&set, i, "Host").unwrap_or_default()))
        })
        .collect())
}

/// Opens a session and returns the stream and whether its events carry
/// checksums. It checks the server id is free (a replica of ours that
/// lingers from a dropped connection does not count), asks for checksums,
/// heartbeats, GTID events and semi-sync, registers, and sends the dump.
pub async fn open(
    config: &SessionConfig,
    server_id: u32,
    from: &DumpFrom,
) -> Result<(BinlogStream, bool), StreamError> {
    let mut conn = connect(config).await?;
    let addr = conn.addr().to_string();
    let mariadb = conn.server().is_mariadb();

    if let Some((_, host)) = replica_ids(&mut conn).await?.into_iter().find(|(id, _)| *id == server_id) {
        if host != config.report_host {
            return Err(StreamError::DuplicateServerId { addr, server_id, host });
        }
    }

    // Checksums: without this the primary strips them (or refuses).
    conn.execute("SET @master_binlog_checksum = @@global.binlog_checksum").await?;
    // What was agreed: the made-up ROTATE that opens the stream comes before
    // any FORMAT_DESCRIPTION, so this is the only way to know its layout.
    let checksums = conn
        .query_value("SELECT @master_binlog_checksum")
        .await?
        .is_some_and(|v| !v.eq_ignore_ascii_case("NONE"));
    let heartbeat_ns = config.heartbeat.as_nanos().min(u128::from(u64::MAX)) as u64;
    conn.execute(&format!("SET @master_heartbeat_period = {heartbeat_ns}")).await?;
    if mariadb {
        conn.execute(&format!("SET @mariadb_slave_capability = {MARIA_SLAVE_CAPABILITY_GTID}")).await?;
    } else {
        // MySQL 8.0.26+ also reads the new names.
        conn.execute("SET @source_binlog_checksum = @@global.binlog_checksum").await?;
        conn.execute(&format!("SET @source_heartbeat_period = {heartbeat_ns}")).await?;
    }
    if let DumpFrom::MariaGtid(list) = from {
        conn.execute(&format!("SET @slave_connect_state = '{list}'")).await?;
        conn.execute("SET @slave_gtid_strict_mode = 1").await?;
        conn.execute("SET @slave_gtid_ignore_duplicates = 0").await?;
    }
    let semi_sync = config.semi_sync && semi_sync_enabled(&mut conn).await?;
    if config.semi_sync && !semi_sync {
        warn!(%addr, "--semi-sync: the primary does not have semi-sync enabled; streaming without ACKs");
    }
    if semi_sync {
        conn.execute("SET @rpl_semi_sync_slave = 1").await?;
        if !mariadb {
            conn.execute("SET @rpl_semi_sync_replica = 1").await?;
        }
    }

    conn.register_replica(RegisterSlave {
        server_id,
        hostname: config.report_host.as_bytes().to_vec(),
        user: Vec::new(),
        password: Vec::new(),
        port: 0,
    })
    .await?;

    // Everything the primary wrote, ANNOTATE_ROWS included (MariaDB leaves
    // them out unless asked): the stream keeps the binlog as it is.
    let flags = if mariadb { DUMP_SEND_ANNOTATE_ROWS } else { 0 };
    let dump = match from {
        DumpFrom::Position { file, position } => {
            let position = u32::try_from(*position)
                .map_err(|_| StreamError::PositionTooLarge { file: file.clone(), position: *position })?;
            Command::BinlogDump(BinlogDump { position, flags, server_id, file: file.as_bytes().to_vec() })
        }
        // MariaDB takes the start from @slave_connect_state.
        DumpFrom::MariaGtid(_) => {
            Command::BinlogDump(BinlogDump { position: 4, flags, server_id, file: Vec::new() })
        }
        DumpFrom::MysqlGtid(set) => Command::BinlogDumpGtid(BinlogDumpGtid {
            flags: 0,
            server_id,
            file: Vec::new(),
            position: 4,
            gtid_set: encode_gtid_set(set),
        }),
    };
    // Silence for three heartbeat periods (and some slack) means the link
    // or the primary is gone.
    let idle = config.heartbeat * 3 + Duration::from_secs(2);
    let stream = conn.binlog_stream(dump, semi_sync, Some(idle)).await?;
    info!(%addr, server_id, from = %from, semi_sync, "streaming");
    Ok((stream, checksums))
}

async fn semi_sync_enabled(conn: &mut Connection) -> Result<bool, ClientError> {
    for name in ["rpl_semi_sync_master_enabled", "rpl_semi_sync_source_enabled"] {
        let set = conn.query_rows(&format!("SHOW GLOBAL VARIABLES LIKE '{name}'")).await?;
        if let Some(value) = text(&set, 0, "Value") {
            return Ok(value.eq_ignore_ascii_case("ON") || value == "1");
        }
    }
    Ok(false)
}

/// The text of column `name` in row `row`.
fn text(set: &ResultSet, row: usize, name: &str) -> Option<String> {
    let col = set.column(name)?;
    let value = set.rows.get(row)?.get(col)?.as_ref()?;
    Some(String::from_utf8_lossy(value).into_owned())
}
