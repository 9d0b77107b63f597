use std::io;
use std::time::Duration;

use thiserror::Error;

use crate::error::{ProtocolError, ServerError};

/// What went wrong talking to a server; every variant names it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("{addr}: {what} timed out after {after:?}")]
    Timeout { addr: String, what: &'static str, after: Duration },
    #[error("{addr}: connection lost: {source}")]
    Io { addr: String, source: io::Error },
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    #[error("{addr}: protocol error: {source}")]
    Protocol { addr: String, source: ProtocolError },
    #[error("{addr}: {error}")]
    Server { addr: String, error: ServerError },
    #[error("{addr}: {error} (query: {sql})")]
    Query { addr: String, sql: String, error: ServerError },
    #[error("{addr}: cannot log in as '{user}': {source}")]
    Auth { addr: String, user: String, source: crate::auth::AuthError },
    #[error("{addr}: TLS: {source}")]
    Tls { addr: String, source: Box<crate::tls::TlsError> },
    #[error("{addr} does not offer TLS, and --ssl-mode {mode} requires it")]
    TlsUnavailable { addr: String, mode: String },
    #[error(
        "{addr}: nothing received for {after:?} (heartbeats should come more often): the connection is dead"
    )]
    Silent { addr: String, after: Duration },
}

/// The statement as an error shows it: whole when short, otherwise its
/// start and its length (a batch or a `BINLOG` statement can be megabytes).
pub(crate) fn shown_query(sql: &str) -> String {
    const SHOWN: usize = 500;
    if sql.len() <= SHOWN {
        return sql.to_string();
    }
    let mut end = SHOWN;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &sql[..end], sql.len())
}

impl ClientError {
    /// The server's error, when the server sent one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            ClientError::Server { error, .. } | ClientError::Query { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether trying again later may help: the connection broke or the
    /// server is away, as opposed to a refusal that will repeat (bad
    /// password, TLS mismatch, a purged position).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::Io { .. }
            | ClientError::Closed { .. }
            | ClientError::Silent { .. } => true,
            // Shutdown in progress, connection killed, too many connections,
            // server is starting.
            ClientError::Server { error, .. } | ClientError::Query { error, .. } => {
                matches!(error.code, 1040 | 1053 | 1077 | 1152 | 1317 | 1927 | 2013)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shown_query;

    #[test]
    fn long_statements_are_shown_by_their_start_and_length() {
        assert_eq!(shown_query("SELECT 1"), "SELECT 1");
        let short = "x".repeat(500);
        assert_eq!(shown_query(&short), short);
        let long = format!("INSERT INTO t VALUES {}", "(1),".repeat(100_000));
        let shown = shown_query(&long);
        assert!(shown.starts_with("INSERT INTO t VALUES (1),"), "{shown}");
        assert!(shown.ends_with(&format!("… ({} bytes in all)", long.len())), "{shown}");
        assert!(shown.len() < 600);
        // Never cut inside a character.
        let emoji = "😀".repeat(200);
        let shown = shown_query(&emoji);
        assert!(shown.starts_with(&"😀".repeat(125)), "{shown}");
    }
}
