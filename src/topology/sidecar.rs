//! The sidecar as precheck sees it: its `/status` document (through the
//! hook's API client), read before discovery so that its server id marks
//! its registration with the primary as the sidecar's.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::instance::BinlogPosition;
use crate::hook::client::Sidecar;

/// Where the sidecar's API is.
#[derive(Debug, Clone)]
pub struct SidecarPlan {
    /// `http(s)://HOST:PORT`.
    pub url: String,
    /// Its token file.
    pub token_file: Option<PathBuf>,
    /// The CA of an https API.
    pub ca_file: Option<PathBuf>,
}

impl SidecarPlan {
    /// The API's host (where the sidecar's binlog dump connection comes
    /// from, usually).
    pub fn host(&self) -> Option<String> {
        crate::hook::client::parse_url(&self.url).ok().map(|(_, host, _)| host)
    }
}

/// A place in the binlog as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    /// File and position.
    pub at: BinlogPosition,
    /// The GTID of the transaction there, if any.
    pub gtid: Option<String>,
}

/// What `/status` says (the fields precheck uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SidecarStatus {
    /// `HOST:PORT` of the primary it follows, as it was told.
    pub source: String,
    /// Its stream is connected.
    pub connected: bool,
    /// The server id it registered with.
    pub server_id: Option<u32>,
    /// Its last error.
    pub last_error: Option<String>,
    /// `lag.seconds`: 0 when caught up.
    pub lag_seconds: Option<u64>,
    /// The last event received.
    pub last_received: Option<Place>,
    /// It keeps a ring.
    pub has_ring: bool,
    /// The last transaction the ring holds on disk.
    pub ring_last_durable: Option<Place>,
}

/// The sidecar's answer, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SidecarReport {
    /// The API's URL.
    pub url: String,
    /// Its status.
    #[serde(serialize_with = "crate::topology::instance::value_or_error")]
    pub status: Result<SidecarStatus, String>,
}

fn place(v: &Value) -> Option<Place> {
    Some(Place {
        at: BinlogPosition {
            file: v.get("file")?.as_str()?.to_string(),
            position: v.get("position")?.as_u64()?,
        },
        gtid: v.get("gtid").and_then(Value::as_str).map(str::to_string),
    })
}

/// Reads a `/status` document.
pub fn parse_status(body: &str) -> Result<SidecarStatus, String> {
    let doc: Value = serde_json::from_str(body).map_err(|e| format!("/status is not JSON: {e}"))?;
    let ring = doc.get("ring").filter(|r| !r.is_null());
    Ok(SidecarStatus {
        source: doc.get("source").and_then(Value::as_str).unwrap_or("").to_string(),
        connected: doc.get("connected").and_then(Value::as_bool).unwrap_or(false),
        server_id: doc.get("server_id").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()),
        last_error: doc.get("last_error").and_then(Value::as_str).map(str::to_string),
        lag_seconds: doc.pointer("/lag/seconds").and_then(Value::as_u64),
        last_received: doc.get("last_received").and_then(place),
        has_ring: ring.is_some(),
        ring_last_durable: ring.and_then(|r| r.get("last_durable")).and_then(place),
    })
}

/// Asks the sidecar for its status (blocking: call it outside the async
/// runtime or from a blocking task).
pub fn fetch(plan: &SidecarPlan, timeout: Duration) -> SidecarReport {
    let status = Sidecar::new(&plan.url, plan.token_file.as_deref(), plan.ca_file.as_deref())
        .map_err(|e| format!("{e:#}"))
        .and_then(|client| {
            let (code, body) =
                client.request("GET", "/status", None, timeout).map_err(|e| format!("{e:#}"))?;
            if code != 200 {
                return Err(format!("{}/status answered {code}: {}", client.base(), body.trim()));
            }
            parse_status(&body)
        });
    SidecarReport { url: plan.url.clone(), status }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_documents() {
        let body = r#"{"time":"2023-11-14T22:13:25Z","source":"db1:3306","connected":true,"server_id":1234,
            "last_error":null,"lag":{"seconds":0,"bytes":0},
            "last_received":{"file":"b.000002","position":900,"gtid":"0-1-7","timestamp":1,"time":"x"},
            "ring":{"dir":"/r","last_durable":{"file":"b.000002","position":800,"gtid":null,"timestamp":1,"time":"x"}}}"#;
        let s = parse_status(body).unwrap();
        assert!(s.connected && s.has_ring);
        assert_eq!((s.server_id, s.lag_seconds, s.source.as_str()), (Some(1234), Some(0), "db1:3306"));
        assert_eq!(s.last_received.unwrap().gtid.as_deref(), Some("0-1-7"));
        assert_eq!(s.ring_last_durable.unwrap().at.to_string(), "b.000002:800");
        let bare =
            parse_status(r#"{"source":"db1:3306","connected":false,"ring":null,"lag":{"seconds":null}}"#)
                .unwrap();
        assert!(!bare.connected && !bare.has_ring && bare.lag_seconds.is_none() && bare.server_id.is_none());
        assert!(parse_status("<html>").is_err());
    }
}
