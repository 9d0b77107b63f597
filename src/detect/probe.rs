//! One probe of the primary: TCP connect, login, `SELECT 1`, each step with
//! its own time limit, on a connection of its own (the stream's may be the
//! thing that is broken).

use std::time::Duration;

use gapless_protocol::client::{ClientError, ConnectOptions, Connection};

use super::decide::{ProbeFailure, Stage};

/// Probes the server `options` names; each stage may take `timeout`.
pub async fn probe(options: &ConnectOptions, timeout: Duration) -> Result<(), ProbeFailure> {
    let mut options = options.clone();
    // The client applies it to the TCP connect and to the login separately.
    options.connect_timeout = timeout;
    options.program_name = "gapless-probe".into();
    let mut conn = Connection::connect(&options)
        .await
        .map_err(|e| ProbeFailure { stage: connect_stage(&e), error: e.to_string() })?;
    let answer = tokio::time::timeout(timeout, conn.query_value("SELECT 1")).await;
    let result = match answer {
        Ok(Ok(Some(one))) if one == "1" => Ok(()),
        Ok(Ok(other)) => Err(ProbeFailure {
            stage: Stage::Query,
            error: format!("{}: SELECT 1 returned {other:?}", options.addr()),
        }),
        Ok(Err(e)) => Err(ProbeFailure { stage: Stage::Query, error: e.to_string() }),
        Err(_) => Err(ProbeFailure {
            stage: Stage::Query,
            error: format!("{}: SELECT 1 timed out after {timeout:?}", options.addr()),
        }),
    };
    if result.is_ok() {
        // A server that answered says goodbye politely; one that did not
        // is dropped without waiting.
        let _ = tokio::time::timeout(timeout, conn.close()).await;
    }
    result
}

/// The stage a failed [`Connection::connect`] stopped at: the TCP connect
/// (refused, unreachable, or timed out while "connecting"), else the login.
fn connect_stage(e: &ClientError) -> Stage {
    match e {
        ClientError::Connect { .. } | ClientError::Timeout { what: "connecting", .. } => Stage::Connect,
        _ => Stage::Login,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_of_connect_errors() {
        let addr = "db1:3306".to_string();
        let refused = ClientError::Connect {
            addr: addr.clone(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(connect_stage(&refused), Stage::Connect);
        let slow_tcp =
            ClientError::Timeout { addr: addr.clone(), what: "connecting", after: Duration::from_secs(2) };
        assert_eq!(connect_stage(&slow_tcp), Stage::Connect);
        let slow_login =
            ClientError::Timeout { addr: addr.clone(), what: "logging in", after: Duration::from_secs(2) };
        assert_eq!(connect_stage(&slow_login), Stage::Login);
        assert_eq!(connect_stage(&ClientError::Closed { addr }), Stage::Login);
    }

    #[tokio::test]
    async fn a_refused_connection_fails_at_the_tcp_stage() {
        // A port bound and held without listening: connecting is refused,
        // and no other test can take the port meanwhile (one released
        // could be bound again by a test that listens).
        let held = tokio::net::TcpSocket::new_v4().unwrap();
        held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = held.local_addr().unwrap().port();
        let options = ConnectOptions::new("127.0.0.1", port, "nobody");
        let failure = probe(&options, Duration::from_secs(2)).await.unwrap_err();
        assert_eq!(failure.stage, Stage::Connect, "{failure}");
        assert!(failure.error.contains(&format!("127.0.0.1:{port}")), "{failure}");
    }

    #[tokio::test]
    async fn a_silent_server_fails_at_the_login_stage() {
        // Accepts the connection (the kernel does) but never greets.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let options = ConnectOptions::new("127.0.0.1", port, "nobody");
        let failure = probe(&options, Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(failure.stage, Stage::Login, "{failure}");
        drop(listener);
    }
}
