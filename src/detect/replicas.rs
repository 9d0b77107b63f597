//! The primary's replicas as witnesses: their addresses (`--replica`, and
//! `SHOW SLAVE HOSTS` while the primary is alive), and what their
//! replication status says (`SHOW ALL SLAVES STATUS`, which unlike `SHOW
//! SLAVE STATUS` shows `Slave_heartbeat_period` and
//! `Slave_received_heartbeats` on MariaDB).
//!
//! Parsing is separate from the queries so that it is tested on made-up
//! result sets.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use gapless_protocol::client::{ClientError, Connection};
use gapless_protocol::response::ResultSet;

use super::decide::{IoThread, ReplicaSample, ReplicaSeen};

/// The most replicas consulted: a bound on what `SHOW SLAVE HOSTS` can add.
pub const MAX_REPLICAS: usize = 64;

/// A server's address, `HOST:PORT` (IPv6 in brackets).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// A `HOST:PORT` that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No `:PORT`.
    #[error("{input:?}: expected HOST:PORT")]
    NoPort {
        /// What was given.
        input: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("{input:?}: bad port {port:?} (expected 1 to 65535)")]
    BadPort {
        /// What was given.
        input: String,
        /// The port part.
        port: String,
    },
    /// Nothing before the colon.
    #[error("{input:?}: empty host")]
    EmptyHost {
        /// What was given.
        input: String,
    },
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(input: &str) -> Result<Endpoint, EndpointError> {
        let s = input.trim();
        let (host, port) = if let Some(v6) = s.strip_prefix('[') {
            let (host, after) =
                v6.split_once(']').ok_or_else(|| EndpointError::NoPort { input: input.into() })?;
            (host, after.strip_prefix(':'))
        } else {
            match s.rsplit_once(':') {
                // A bare IPv6 address has more than one colon: it needs brackets.
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                _ => (s, None),
            }
        };
        let port = port.ok_or_else(|| EndpointError::NoPort { input: input.into() })?;
        if host.is_empty() {
            return Err(EndpointError::EmptyHost { input: input.into() });
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| EndpointError::BadPort { input: input.into(), port: port.into() })?;
        Ok(Endpoint { host: host.to_string(), port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&gapless_protocol::client::host_port(&self.host, self.port))
    }
}

/// One replication connection of a replica (a row of its status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// `Master_Server_Id`: the server id of the primary it last talked to
    /// (kept after the primary goes away).
    pub master_server_id: Option<u32>,
    /// `Master_Port`.
    pub master_port: Option<u16>,
    /// What it says about the replication.
    pub sample: ReplicaSample,
}

/// The text of the first of `names` present in row `row`.
fn text<'a>(set: &'a ResultSet, row: usize, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        let col = set.column(name)?;
        let value = set.rows.get(row)?.get(col)?.as_deref()?;
        std::str::from_utf8(value).ok()
    })
}

fn number<T: FromStr>(set: &ResultSet, row: usize, names: &[&str]) -> Option<T> {
    text(set, row, names)?.trim().parse().ok()
}

/// Reads the rows of `SHOW ALL SLAVES STATUS` (or MySQL's `SHOW REPLICA
/// STATUS`, whose columns say Source and Replica instead).
pub fn parse_status(set: &ResultSet) -> Vec<Channel> {
    (0..set.rows.len())
        .map(|row| {
            let io = text(set, row, &["Slave_IO_Running", "Replica_IO_Running"])
                .map_or_else(|| IoThread::Other("not shown".into()), IoThread::parse);
            let errno: u32 = number(set, row, &["Last_IO_Errno"]).unwrap_or(0);
            let io_error = (errno != 0).then(|| {
                let message = text(set, row, &["Last_IO_Error"]).unwrap_or("").trim();
                format!("error {errno}: {message}")
            });
            let heartbeat_period = number::<f64>(set, row, &["Slave_heartbeat_period"])
                .and_then(|p| Duration::try_from_secs_f64(p).ok());
            let file = text(set, row, &["Master_Log_File", "Source_Log_File"]);
            let pos = number(set, row, &["Read_Master_Log_Pos", "Read_Source_Log_Pos"]);
            Channel {
                master_server_id: number(set, row, &["Master_Server_Id", "Source_Server_Id"]),
                master_port: number(set, row, &["Master_Port", "Source_Port"]),
                sample: ReplicaSample {
                    io,
                    io_error,
                    heartbeat_period,
                    heartbeats: number(set, row, &["Slave_received_heartbeats"]),
                    read_position: file.zip(pos).map(|(f, p)| (f.to_string(), p)),
                },
            }
        })
        .collect()
}

/// What a replica's channels say about this primary: the channel that
/// replicates from it (by server id when the primary's is known, else by
/// port), preferring one whose IO thread runs.
pub fn testimony(channels: Vec<Channel>, primary_id: Option<u32>, primary_port: u16) -> ReplicaSeen {
    if channels.is_empty() {
        return ReplicaSeen::NotAReplica("not a replica (no replication configured)".into());
    }
    let ours = |c: &Channel| match primary_id {
        Some(id) => c.master_server_id == Some(id),
        None => c.master_port == Some(primary_port),
    };
    let mut mine: Vec<Channel> = channels.into_iter().filter(ours).collect();
    if mine.is_empty() {
        let which = match primary_id {
            Some(id) => format!("server id {id}"),
            None => format!("port {primary_port}"),
        };
        return ReplicaSeen::NotAReplica(format!("replicates from another primary (not {which})"));
    }
    let best = mine.iter().position(|c| c.sample.io == IoThread::Yes).unwrap_or(0);
    ReplicaSeen::Status(mine.swap_remove(best).sample)
}

/// The replica status query for this server.
pub async fn query_status(conn: &mut Connection) -> Result<Vec<Channel>, ClientError> {
    let set = if conn.server().is_mariadb() {
        conn.query_rows("SHOW ALL SLAVES STATUS").await?
    } else {
        match conn.query_rows("SHOW REPLICA STATUS").await {
            // 1064: a server older than the statement.
            Err(e) if e.server_error().is_some_and(|e| e.code == 1064) => {
                conn.query_rows("SHOW SLAVE STATUS").await?
            }
            other => other?,
        }
    };
    Ok(parse_status(&set))
}

/// Reads `SHOW SLAVE HOSTS` (or `SHOW REPLICAS`): the replicas with a host
/// and a port, other than the server id `own` (the sidecar itself).
pub fn parse_hosts(set: &ResultSet, own: Option<u32>) -> Vec<Endpoint> {
    (0..set.rows.len())
        .filter_map(|row| {
            let id: Option<u32> = number(set, row, &["Server_id"]);
            if id.is_some() && id == own {
                return None;
            }
            let host = text(set, row, &["Host"])?.trim();
            let port: u16 = number(set, row, &["Port"]).filter(|p| *p != 0)?;
            // A name that is no host (a sidecar's "gapless@db1") is skipped.
            let plausible = !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
            plausible.then(|| Endpoint { host: host.to_string(), port })
        })
        .collect()
}

/// The server's own id.
pub async fn query_server_id(conn: &mut Connection) -> Result<Option<u32>, ClientError> {
    Ok(conn.query_value("SELECT @@server_id").await?.and_then(|v| v.trim().parse().ok()))
}

/// The replicas registered with the primary (see [`parse_hosts`]).
pub async fn query_hosts(conn: &mut Connection, own: Option<u32>) -> Result<Vec<Endpoint>, ClientError> {
    let set = if conn.server().is_mariadb() {
        conn.query_rows("SHOW SLAVE HOSTS").await?
    } else {
        match conn.query_rows("SHOW REPLICAS").await {
            Err(e) if e.server_error().is_some_and(|e| e.code == 1064) => {
                conn.query_rows("SHOW SLAVE HOSTS").await?
            }
            other => other?,
        }
    };
    Ok(parse_hosts(&set, own))
}

#[cfg(test)]
mod tests {
    use gapless_protocol::response::ColumnDefinition;

    use super::*;

    fn set(columns: &[&str], rows: &[&[Option<&str>]]) -> ResultSet {
        ResultSet {
            columns: columns
                .iter()
                .map(|c| ColumnDefinition { name: c.as_bytes().to_vec(), ..ColumnDefinition::default() })
                .collect(),
            rows: rows.iter().map(|r| r.iter().map(|v| v.map(|v| v.as_bytes().to_vec())).collect()).collect(),
        }
    }

    #[test]
    fn endpoints() {
        let e: Endpoint = "127.0.0.1:3307".parse().unwrap();
        assert_eq!(e, Endpoint { host: "127.0.0.1".into(), port: 3307 });
        assert_eq!(e.to_string(), "127.0.0.1:3307");
        let v6: Endpoint = "[::1]:3310".parse().unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 3310));
        assert_eq!(v6.to_string(), "[::1]:3310");
        assert_eq!(" db2.example:3306 ".parse::<Endpoint>().unwrap().host, "db2.example");
        for (bad, want) in [
            ("db2", EndpointError::NoPort { input: "db2".into() }),
            ("::1", EndpointError::NoPort { input: "::1".into() }),
            ("[::1", EndpointError::NoPort { input: "[::1".into() }),
            (":3306", EndpointError::EmptyHost { input: ":3306".into() }),
            ("db2:0", EndpointError::BadPort { input: "db2:0".into(), port: "0".into() }),
            ("db2:70000", EndpointError::BadPort { input: "db2:70000".into(), port: "70000".into() }),
            ("db2:x", EndpointError::BadPort { input: "db2:x".into(), port: "x".into() }),
        ] {
            assert_eq!(bad.parse::<Endpoint>(), Err(want), "{bad}");
        }
        assert!(EndpointError::NoPort { input: "db2".into() }.to_string().contains("HOST:PORT"));
    }

    /// The columns that matter, as MariaDB 10.11 names them.
    const MARIADB: &[&str] = &[
        "Connection_name",
        "Master_Port",
        "Master_Log_File",
        "Read_Master_Log_Pos",
        "Slave_IO_Running",
        "Last_IO_Errno",
        "Last_IO_Error",
        "Master_Server_Id",
        "Slave_received_heartbeats",
        "Slave_heartbeat_period",
    ];

    #[test]
    fn mariadb_status_rows() {
        let rows = set(
            MARIADB,
            &[
                &[
                    Some(""),
                    Some("3306"),
                    Some("mariadb-bin.000001"),
                    Some("330"),
                    Some("Yes"),
                    Some("0"),
                    Some(""),
                    Some("1"),
                    Some("5"),
                    Some("1.000"),
                ],
                &[
                    Some("other"),
                    Some("3308"),
                    Some("b.000002"),
                    Some("4"),
                    Some("Connecting"),
                    Some("2003"),
                    Some("Can't connect"),
                    Some("7"),
                    Some("0"),
                    Some("0.000"),
                ],
            ],
        );
        let channels = parse_status(&rows);
        assert_eq!(
            channels[0],
            Channel {
                master_server_id: Some(1),
                master_port: Some(3306),
                sample: ReplicaSample {
                    io: IoThread::Yes,
                    io_error: None,
                    heartbeat_period: Some(Duration::from_secs(1)),
                    heartbeats: Some(5),
                    read_position: Some(("mariadb-bin.000001".into(), 330)),
                },
            }
        );
        assert_eq!(channels[1].sample.io, IoThread::Connecting);
        assert_eq!(channels[1].sample.io_error.as_deref(), Some("error 2003: Can't connect"));
        assert_eq!(channels[1].sample.heartbeat_period, Some(Duration::ZERO));

        // By server id when known, else by port.
        let ReplicaSeen::Status(s) = testimony(channels.clone(), Some(7), 1) else { panic!() };
        assert_eq!(s.io, IoThread::Connecting);
        let ReplicaSeen::Status(s) = testimony(channels.clone(), None, 3306) else { panic!() };
        assert_eq!(s.io, IoThread::Yes);
        assert!(
            matches!(testimony(channels.clone(), Some(9), 3306), ReplicaSeen::NotAReplica(w) if w.contains("server id 9"))
        );
        assert!(matches!(testimony(channels, None, 1), ReplicaSeen::NotAReplica(w) if w.contains("port 1")));
        assert!(matches!(testimony(Vec::new(), Some(1), 1), ReplicaSeen::NotAReplica(_)));
    }

    #[test]
    fn of_two_channels_to_the_primary_the_running_one_counts() {
        let row = |io: &'static str| -> Vec<Option<&'static str>> {
            vec![Some(""), Some("3306"), None, None, Some(io), None, None, Some("1"), None, None]
        };
        let (stopped, running) = (row("No"), row("Yes"));
        let channels = parse_status(&set(MARIADB, &[&stopped, &running]));
        let ReplicaSeen::Status(s) = testimony(channels, Some(1), 0) else { panic!() };
        assert_eq!(s.io, IoThread::Yes);
        assert_eq!((s.heartbeats, s.heartbeat_period, s.read_position), (None, None, None));
    }

    #[test]
    fn mysql_names_and_garbage() {
        let rows = set(
            &[
                "Source_Port",
                "Replica_IO_Running",
                "Source_Server_Id",
                "Source_Log_File",
                "Read_Source_Log_Pos",
            ],
            &[&[Some("3306"), Some("Yes"), Some("1"), Some("binlog.000003"), Some("157")]],
        );
        let c = &parse_status(&rows)[0];
        assert_eq!((c.master_server_id, c.master_port), (Some(1), Some(3306)));
        assert_eq!(c.sample.read_position, Some(("binlog.000003".into(), 157)));
        assert_eq!(c.sample.heartbeat_period, None);

        // Values that do not parse are unknown, never a panic.
        let rows = set(
            &[
                "Slave_IO_Running",
                "Slave_heartbeat_period",
                "Master_Server_Id",
                "Last_IO_Errno",
                "Read_Master_Log_Pos",
            ],
            &[&[Some("Preparing"), Some("-1"), Some("x"), Some("oops"), Some("1e99")]],
        );
        let c = &parse_status(&rows)[0];
        assert_eq!(c.sample.io, IoThread::Other("Preparing".into()));
        assert_eq!(c.sample.heartbeat_period, None);
        assert_eq!((c.master_server_id, c.sample.io_error.as_ref()), (None, None));
        let c = &parse_status(&set(&["Slave_heartbeat_period"], &[&[Some("inf")], &[None]]))[0];
        assert_eq!(c.sample.io, IoThread::Other("not shown".into()));
        assert_eq!(c.sample.heartbeat_period, None);
    }

    #[test]
    fn slave_hosts() {
        let rows = set(
            &["Server_id", "Host", "Port", "Master_id"],
            &[
                &[Some("2"), Some("127.0.0.1"), Some("3307"), Some("1")],
                &[Some("1234567"), Some("gapless@db9"), Some("0"), Some("1")],
                &[Some("3"), Some("db3.example"), Some("3306"), Some("1")],
                &[Some("4"), Some(""), Some("3306"), Some("1")],
                &[Some("5"), Some("db5"), Some("x"), Some("1")],
                &[Some("6"), None, Some("3306"), Some("1")],
                &[Some("7"), Some("fe80::1"), Some("3306"), Some("1")],
            ],
        );
        let hosts = parse_hosts(&rows, Some(3));
        assert_eq!(
            hosts.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["127.0.0.1:3307", "[fe80::1]:3306"]
        );
        assert_eq!(parse_hosts(&rows, None).len(), 3);
    }
}
