//! SQL connections for discovery and look-ups, through mysql_async: the
//! login (user, password, TLS as `--ssl-mode` means it), a bounded connect,
//! and result rows turned into [`Record`]s so that parsing them is a pure
//! function, tested on made-up rows.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use gapless_protocol::client::Password;
use gapless_protocol::tls::{SslMode, TlsOptions};
use mysql_async::prelude::Queryable;
use mysql_async::{ClientIdentity, Conn, Opts, OptsBuilder, Row, SslOpts, Value};

use super::instance::addr;

/// How discovery logs in to every server of a cluster (and the metadata
/// database to its own).
#[derive(Clone)]
pub struct Login {
    /// The user.
    pub user: String,
    /// The password (never shown: its `Debug` is redacted).
    pub password: Password,
    /// TLS, with the meaning of `--ssl-mode`.
    pub tls: TlsOptions,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &self.password)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A failed connection or statement, naming the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// Could not connect or log in.
    #[error("{addr}: cannot connect: {source}")]
    Connect {
        /// `HOST:PORT`.
        addr: String,
        /// What mysql_async said.
        source: mysql_async::Error,
    },
    /// No answer in time.
    #[error("{addr}: no answer within {}s ({what})", after.as_secs_f64())]
    Timeout {
        /// `HOST:PORT`.
        addr: String,
        /// The limit.
        after: Duration,
        /// What was being done.
        what: String,
    },
    /// A statement failed.
    #[error("{addr}: {sql}: {source}")]
    Query {
        /// `HOST:PORT`.
        addr: String,
        /// The statement (never carries a password: discovery's are fixed
        /// text, look-ups bind their values).
        sql: String,
        /// What the server said.
        source: mysql_async::Error,
    },
}

impl SqlError {
    /// The server's error code, when the server refused the statement.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            SqlError::Query { source: mysql_async::Error::Server(e), .. } => Some(e.code),
            _ => None,
        }
    }
}

/// The mysql_async TLS settings for a mode; `None` for no TLS.
///
/// | mode | chain verified against | host name checked |
/// |---|---|---|
/// | `DISABLED` | no TLS | – |
/// | `PREFERRED` | `ssl_ca`, else the built-in web roots | no |
/// | `REQUIRED` | `ssl_ca` when given, else nothing (encrypt only) | no |
/// | `VERIFY_CA` | `ssl_ca`, else the built-in web roots | no |
/// | `VERIFY_IDENTITY` | `ssl_ca`, else the built-in web roots | yes |
///
/// `PREFERRED` falls back to plain text only when the server offers no TLS
/// at all ([`connect`]), never after a failed verification.
pub fn ssl_opts(tls: &TlsOptions) -> Option<SslOpts> {
    if tls.mode == SslMode::Disabled {
        return None;
    }
    let mut opts = SslOpts::default();
    if let Some(ca) = &tls.ca {
        opts = opts.with_root_certs(vec![ca.clone().into()]).with_disable_built_in_roots(true);
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        opts = opts.with_client_identity(Some(ClientIdentity::new(cert.clone().into(), key.clone().into())));
    }
    match tls.mode {
        SslMode::Required if tls.ca.is_none() => opts.with_danger_accept_invalid_certs(true),
        SslMode::VerifyIdentity => opts,
        _ => opts.with_danger_skip_domain_validation(true),
    }
    .into()
}

impl Login {
    /// mysql_async options for `host:port`, in database `db`, with or
    /// without TLS.
    pub fn opts(&self, host: &str, port: u16, db: Option<&str>, with_tls: bool) -> Opts {
        let builder = OptsBuilder::default()
            .ip_or_hostname(host)
            .tcp_port(port)
            .user(Some(self.user.clone()))
            .pass(
                (!self.password.expose().is_empty())
                    .then(|| String::from_utf8_lossy(self.password.expose()).into_owned()),
            )
            .db_name(db)
            .prefer_socket(false)
            .ssl_opts(if with_tls { ssl_opts(&self.tls) } else { None });
        builder.into()
    }

    /// Checks the TLS files now, so that a bad path is reported once, before
    /// any connection.
    pub fn check_files(&self) -> Result<(), String> {
        let files = [("ssl-ca", &self.tls.ca), ("ssl-cert", &self.tls.cert), ("ssl-key", &self.tls.key)];
        for (what, path) in files {
            if let Some(path) = path {
                readable(what, path)?;
            }
        }
        Ok(())
    }
}

fn readable(what: &str, path: &Path) -> Result<(), String> {
    std::fs::metadata(path).map(|_| ()).map_err(|e| format!("--{what} {}: {e}", path.display()))
}

/// Connects to `host:port` within `limit`; `PREFERRED` retries without TLS
/// when the server offers none.
pub async fn connect(
    login: &Login,
    host: &str,
    port: u16,
    db: Option<&str>,
    limit: Duration,
) -> Result<Conn, SqlError> {
    let at = addr(host, port);
    let attempt = |with_tls: bool| {
        let opts = login.opts(host, port, db, with_tls);
        let at = at.clone();
        async move {
            match tokio::time::timeout(limit, Conn::new(opts)).await {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(source)) => Err(SqlError::Connect { addr: at, source }),
                Err(_) => Err(SqlError::Timeout { addr: at, after: limit, what: "connecting".into() }),
            }
        }
    };
    match attempt(login.tls.mode != SslMode::Disabled).await {
        Err(SqlError::Connect {
            source: mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer),
            ..
        }) if login.tls.mode == SslMode::Preferred => attempt(false).await,
        other => other,
    }
}

/// One row as column name → text (`None` for NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record(pub BTreeMap<String, Option<String>>);

impl Record {
    /// A record from `(column, value)` pairs (for tests and look-ups).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Record {
        Record(pairs.into_iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect())
    }

    /// The text of the first of `names` that the row has and is not NULL.
    pub fn text(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.0.get(*n)?.as_deref())
    }

    /// The first of `names` parsed as a number.
    pub fn number<T: FromStr>(&self, names: &[&str]) -> Option<T> {
        self.text(names)?.trim().parse().ok()
    }
}

/// The text of a value: the text protocol sends everything as bytes.
pub fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        Value::Float(x) => Some(x.to_string()),
        Value::Double(x) => Some(x.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

fn record(row: &Row) -> Record {
    let columns = row.columns_ref();
    Record(
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name_str().into_owned(), row.as_ref(i).and_then(value_text)))
            .collect(),
    )
}

/// Runs `sql` within `limit` and returns its rows.
pub async fn query(conn: &mut Conn, at: &str, sql: &str, limit: Duration) -> Result<Vec<Record>, SqlError> {
    match tokio::time::timeout(limit, conn.query::<Row, _>(sql)).await {
        Ok(Ok(rows)) => Ok(rows.iter().map(record).collect()),
        Ok(Err(source)) => Err(SqlError::Query { addr: at.to_string(), sql: sql.to_string(), source }),
        Err(_) => Err(SqlError::Timeout { addr: at.to_string(), after: limit, what: sql.to_string() }),
    }
}

/// Closes a connection politely (errors do not matter any more).
pub async fn close(conn: Conn) {
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.disconnect()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(mode: SslMode, ca: bool) -> TlsOptions {
        TlsOptions { mode, ca: ca.then(|| "/ca.pem".into()), cert: None, key: None }
    }

    #[test]
    fn ssl_modes_map_onto_mysql_async() {
        assert!(ssl_opts(&tls(SslMode::Disabled, true)).is_none());
        let preferred = ssl_opts(&tls(SslMode::Preferred, false)).unwrap();
        assert!(!preferred.accept_invalid_certs() && preferred.skip_domain_validation());
        assert!(!preferred.disable_built_in_roots());
        let required = ssl_opts(&tls(SslMode::Required, false)).unwrap();
        assert!(required.accept_invalid_certs(), "REQUIRED without a CA only encrypts");
        let required_ca = ssl_opts(&tls(SslMode::Required, true)).unwrap();
        assert!(!required_ca.accept_invalid_certs() && required_ca.disable_built_in_roots());
        assert_eq!(required_ca.root_certs().len(), 1);
        let verify_ca = ssl_opts(&tls(SslMode::VerifyCa, true)).unwrap();
        assert!(!verify_ca.accept_invalid_certs() && verify_ca.skip_domain_validation());
        let identity = ssl_opts(&tls(SslMode::VerifyIdentity, false)).unwrap();
        assert!(!identity.accept_invalid_certs() && !identity.skip_domain_validation());
        let mut with_cert = tls(SslMode::VerifyCa, true);
        with_cert.cert = Some("/c.pem".into());
        with_cert.key = Some("/k.pem".into());
        assert!(ssl_opts(&with_cert).unwrap().client_identity().is_some());
    }

    #[test]
    fn the_password_is_never_shown() {
        let login = Login {
            user: "u".into(),
            password: Password::new(b"s3cret".to_vec()),
            tls: TlsOptions::default(),
        };
        assert!(!format!("{login:?}").contains("s3cret"));
        let opts = login.opts("db1", 3307, Some("meta"), false);
        assert_eq!((opts.ip_or_hostname(), opts.tcp_port(), opts.db_name()), ("db1", 3307, Some("meta")));
        assert!(opts.ssl_opts().is_none());
    }

    #[test]
    fn records() {
        let r = Record::from_pairs([("Seconds_Behind_Master", Some(" 7 ")), ("Master_Port", None)]);
        assert_eq!(r.number::<u64>(&["Seconds_Behind_Source", "Seconds_Behind_Master"]), Some(7));
        assert_eq!(r.text(&["Master_Port"]), None);
        assert_eq!(value_text(&Value::Bytes(b"ROW".to_vec())).as_deref(), Some("ROW"));
        assert_eq!(value_text(&Value::NULL), None);
        assert_eq!(value_text(&Value::UInt(3)).as_deref(), Some("3"));
    }
}
