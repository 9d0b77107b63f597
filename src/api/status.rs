//! The `/status` document: one JSON object with what an operator wants to
//! know first (is it connected, how far behind, what failed), then where
//! the stream and the ring are.
//!
//! ```json
//! {
//!   "time": "2023-11-14T22:13:25Z",
//!   "source": "db1:3306",
//!   "connected": true,
//!   "server_id": 4242,
//!   "last_error": null,
//!   "lag": { "seconds": 0, "bytes": 0 },
//!   "last_received": { "file": "binlog.000042", "position": 1234, "gtid": "0-1-77",
//!                      "timestamp": 1700000000, "time": "2023-11-14T22:13:20Z" },
//!   "last_durable": { ... },
//!   "primary": { "file": "binlog.000042", "position": 1234,
//!                "last_contact": 1700000004, "seconds_since_contact": 1,
//!                "state": "dead", "since": "2023-11-14T22:13:20Z", "since_timestamp": 1700000000,
//!                "reason": "no answer for 10 s (...); no replica hears from it: ...",
//!                "state_changes": 3,
//!                "replicas": [ { "addr": "db2:3306", "testimony": "cannot_replicate",
//!                                "io_running": "Connecting", "detail": "..." } ] },
//!   "semi_sync": { "requested": true, "active": true, "acks_sent": 77 },
//!   "counters": { "events": 4000, "units": 77, "connections": 1 },
//!   "ring": { "dir": "/var/lib/gapless/ring", "first": { ... }, "last_written": { ... },
//!             "last_durable": { ... }, "used_bytes": 1048576, "capacity_bytes": 1073741824,
//!             "segments": 1, "paused": null }
//! }
//! ```
//!
//! Places in the binlog carry their event timestamp both as seconds since
//! the epoch and as RFC 3339 text; a GTID is null when the unit has none.
//! Unknown values are null, never made up: `lag` is null when it cannot be
//! computed, `ring` when the stream runs without one.
//!
//! `primary.state` is the dead-primary detector's judgement (`alive`,
//! `unreachable` or `dead`, see [`crate::detect`]), with when it began, why,
//! and what each replica consulted says; all null when the detector does not
//! run (or has not judged yet).

use serde::Serialize;

use super::time::rfc3339;
use crate::detect::{PrimaryHealth, PrimaryState, Testimony};
use crate::ring::{Coordinates, RingStatus};
use crate::stream::StreamStatus;

/// The `/status` JSON document (pretty-printed, with a final newline) for
/// the stream's and the ring's current state and the detector's judgement
/// of the primary; `now` is seconds since the epoch, for the lag and the
/// ages.
pub fn render(
    stream: &StreamStatus,
    ring: Option<&RingStatus>,
    primary: Option<&PrimaryHealth>,
    now: u64,
) -> Vec<u8> {
    let doc = Document::new(stream, ring, primary, now);
    // Plain structs of strings and numbers: serializing cannot fail.
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

#[derive(Serialize)]
struct Document<'a> {
    time: String,
    source: &'a str,
    connected: bool,
    server_id: Option<u32>,
    last_error: Option<&'a str>,
    lag: Lag,
    last_received: Option<Place<'a>>,
    last_durable: Option<Place<'a>>,
    primary: Primary<'a>,
    semi_sync: SemiSync,
    counters: Counters,
    ring: Option<Ring<'a>>,
}

#[derive(Serialize)]
struct Lag {
    seconds: Option<u64>,
    bytes: Option<u64>,
}

#[derive(Serialize)]
struct Place<'a> {
    file: &'a str,
    position: u64,
    gtid: Option<&'a str>,
    timestamp: u32,
    time: String,
}

#[derive(Serialize)]
struct Primary<'a> {
    file: Option<&'a str>,
    position: Option<u64>,
    last_contact: Option<u64>,
    seconds_since_contact: Option<u64>,
    state: Option<PrimaryState>,
    since: Option<String>,
    since_timestamp: Option<u64>,
    reason: Option<&'a str>,
    state_changes: Option<u64>,
    replicas: Option<Vec<Replica<'a>>>,
}

#[derive(Serialize)]
struct Replica<'a> {
    addr: &'a str,
    testimony: Testimony,
    io_running: Option<&'a str>,
    detail: &'a str,
}

#[derive(Serialize)]
struct SemiSync {
    requested: bool,
    active: bool,
    acks_sent: u64,
}

#[derive(Serialize)]
struct Counters {
    events: u64,
    units: u64,
    connections: u64,
}

#[derive(Serialize)]
struct Ring<'a> {
    dir: &'a str,
    first: Option<Place<'a>>,
    last_written: Option<Place<'a>>,
    last_durable: Option<Place<'a>>,
    used_bytes: u64,
    capacity_bytes: u64,
    segments: u64,
    paused: Option<&'a str>,
}

impl<'a> Place<'a> {
    fn new(c: &'a Coordinates) -> Self {
        Place {
            file: &c.file,
            position: c.position,
            gtid: (!c.gtid.is_empty()).then_some(c.gtid.as_str()),
            timestamp: c.timestamp,
            time: rfc3339(u64::from(c.timestamp)),
        }
    }
}

impl<'a> Document<'a> {
    fn new(
        s: &'a StreamStatus,
        ring: Option<&'a RingStatus>,
        health: Option<&'a PrimaryHealth>,
        now: u64,
    ) -> Self {
        Document {
            time: rfc3339(now),
            source: &s.source,
            connected: s.connected,
            server_id: s.server_id,
            last_error: s.last_error.as_deref(),
            lag: Lag { seconds: s.lag_seconds(now), bytes: s.lag_bytes() },
            last_received: s.last_received.as_ref().map(Place::new),
            last_durable: ring.and_then(|r| r.last_durable.as_ref()).map(Place::new),
            primary: Primary {
                file: s.primary_file.as_deref(),
                position: s.primary_position,
                last_contact: s.last_contact,
                seconds_since_contact: s.last_contact.map(|t| now.saturating_sub(t)),
                state: health.and_then(|h| h.state),
                since: health.and_then(|h| h.since).map(rfc3339),
                since_timestamp: health.and_then(|h| h.since),
                reason: health.and_then(|h| h.reason.as_deref()),
                state_changes: health.map(|h| h.changes),
                replicas: health.map(|h| {
                    h.replicas
                        .iter()
                        .map(|r| Replica {
                            addr: &r.addr,
                            testimony: r.testimony,
                            io_running: r.io_running.as_deref(),
                            detail: &r.detail,
                        })
                        .collect()
                }),
            },
            semi_sync: SemiSync {
                requested: s.semi_sync_requested,
                active: s.semi_sync_active,
                acks_sent: s.acks_sent,
            },
            counters: Counters { events: s.events, units: s.units, connections: s.connections },
            ring: ring.map(|r| Ring {
                dir: &r.dir,
                first: r.first.as_ref().map(Place::new),
                last_written: r.last_written.as_ref().map(Place::new),
                last_durable: r.last_durable.as_ref().map(Place::new),
                used_bytes: r.used_bytes,
                capacity_bytes: r.capacity_bytes,
                segments: r.segments,
                paused: r.paused.as_deref(),
            }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::detect::ReplicaHealth;

    pub(crate) fn coordinates(file: &str, position: u64, gtid: &str, timestamp: u32) -> Coordinates {
        Coordinates { file: file.into(), position, gtid: gtid.into(), timestamp }
    }

    /// A stream 100 bytes and 5 s behind, with semi-sync on.
    pub(crate) fn sample_stream() -> StreamStatus {
        StreamStatus {
            source: "db1:3306".into(),
            connected: true,
            server_id: Some(4242),
            last_received: Some(coordinates("binlog.000042", 1234, "0-1-77", 1_700_000_000)),
            primary_file: Some("binlog.000042".into()),
            primary_position: Some(1334),
            last_contact: Some(1_700_000_004),
            semi_sync_requested: true,
            semi_sync_active: true,
            acks_sent: 77,
            events: 4000,
            units: 77,
            connections: 2,
            last_error: None,
        }
    }

    pub(crate) fn sample_ring() -> RingStatus {
        RingStatus {
            dir: "/var/lib/gapless/ring".into(),
            first: Some(coordinates("binlog.000040", 4, "", 1_699_990_000)),
            last_written: Some(coordinates("binlog.000042", 1234, "0-1-77", 1_700_000_000)),
            last_durable: Some(coordinates("binlog.000042", 1000, "0-1-76", 1_699_999_999)),
            used_bytes: 1 << 20,
            capacity_bytes: 1 << 30,
            segments: 3,
            paused: None,
        }
    }

    /// A primary the detector calls dead, with one replica that cannot
    /// replicate and one it could not reach.
    pub(crate) fn sample_health() -> PrimaryHealth {
        PrimaryHealth {
            primary: "db1:3306".into(),
            state: Some(PrimaryState::Dead),
            since: Some(1_700_000_000),
            reason: Some("no answer for 10 s (TCP connect failed: refused); no replica hears from it".into()),
            changes: 3,
            replicas: vec![
                ReplicaHealth {
                    addr: "db2:3306".into(),
                    testimony: Testimony::CannotReplicate,
                    io_running: Some("Connecting".into()),
                    detail: "IO thread Connecting".into(),
                },
                ReplicaHealth {
                    addr: "db3:3306".into(),
                    testimony: Testimony::ProvesNothing,
                    io_running: None,
                    detail: "db3:3306: connection refused".into(),
                },
            ],
        }
    }

    fn parse(stream: &StreamStatus, ring: Option<&RingStatus>, now: u64) -> Value {
        parse_with(stream, ring, None, now)
    }

    fn parse_with(
        stream: &StreamStatus,
        ring: Option<&RingStatus>,
        primary: Option<&PrimaryHealth>,
        now: u64,
    ) -> Value {
        let out = render(stream, ring, primary, now);
        assert_eq!(out.last(), Some(&b'\n'));
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn full_document() {
        let doc = parse_with(&sample_stream(), Some(&sample_ring()), Some(&sample_health()), 1_700_000_005);
        assert_eq!(
            doc,
            json!({
                "time": "2023-11-14T22:13:25Z",
                "source": "db1:3306",
                "connected": true,
                "server_id": 4242,
                "last_error": null,
                "lag": { "seconds": 5, "bytes": 100 },
                "last_received": { "file": "binlog.000042", "position": 1234, "gtid": "0-1-77",
                                   "timestamp": 1_700_000_000, "time": "2023-11-14T22:13:20Z" },
                "last_durable": { "file": "binlog.000042", "position": 1000, "gtid": "0-1-76",
                                  "timestamp": 1_699_999_999, "time": "2023-11-14T22:13:19Z" },
                "primary": { "file": "binlog.000042", "position": 1334,
                             "last_contact": 1_700_000_004, "seconds_since_contact": 1,
                             "state": "dead", "since": "2023-11-14T22:13:20Z",
                             "since_timestamp": 1_700_000_000,
                             "reason": "no answer for 10 s (TCP connect failed: refused); no replica hears from it",
                             "state_changes": 3,
                             "replicas": [
                                 { "addr": "db2:3306", "testimony": "cannot_replicate",
                                   "io_running": "Connecting", "detail": "IO thread Connecting" },
                                 { "addr": "db3:3306", "testimony": "proves_nothing",
                                   "io_running": null, "detail": "db3:3306: connection refused" }
                             ] },
                "semi_sync": { "requested": true, "active": true, "acks_sent": 77 },
                "counters": { "events": 4000, "units": 77, "connections": 2 },
                "ring": {
                    "dir": "/var/lib/gapless/ring",
                    "first": { "file": "binlog.000040", "position": 4, "gtid": null,
                               "timestamp": 1_699_990_000, "time": "2023-11-14T19:26:40Z" },
                    "last_written": { "file": "binlog.000042", "position": 1234, "gtid": "0-1-77",
                                      "timestamp": 1_700_000_000, "time": "2023-11-14T22:13:20Z" },
                    "last_durable": { "file": "binlog.000042", "position": 1000, "gtid": "0-1-76",
                                      "timestamp": 1_699_999_999, "time": "2023-11-14T22:13:19Z" },
                    "used_bytes": 1_048_576,
                    "capacity_bytes": 1_073_741_824,
                    "segments": 3,
                    "paused": null
                }
            })
        );
        // Fields in the order written, for people reading it.
        let text = String::from_utf8(render(&sample_stream(), None, None, 0)).unwrap();
        let pos = |k: &str| text.find(&format!("\n  \"{k}\"")).unwrap_or_else(|| panic!("{k}"));
        assert!(
            pos("time") < pos("source") && pos("connected") < pos("lag") && pos("counters") < pos("ring")
        );
    }

    #[test]
    fn unknowns_are_null() {
        let stream = StreamStatus {
            source: "db1:3306".into(),
            last_error: Some("connecting: Connection refused".into()),
            ..StreamStatus::default()
        };
        let doc = parse(&stream, None, 1_700_000_000);
        assert_eq!(doc["connected"], false);
        assert_eq!(doc["server_id"], Value::Null);
        assert_eq!(doc["last_error"], "connecting: Connection refused");
        assert_eq!(doc["lag"], json!({ "seconds": null, "bytes": null }));
        assert_eq!(doc["last_received"], Value::Null);
        assert_eq!(doc["last_durable"], Value::Null);
        assert_eq!(
            doc["primary"],
            json!({ "file": null, "position": null, "last_contact": null, "seconds_since_contact": null,
                    "state": null, "since": null, "since_timestamp": null, "reason": null,
                    "state_changes": null, "replicas": null })
        );
        assert_eq!(doc["ring"], Value::Null);
    }

    #[test]
    fn a_detector_that_has_not_judged_yet() {
        let health = PrimaryHealth::new("db1:3306");
        let doc = parse_with(&StreamStatus::default(), None, Some(&health), 0);
        assert_eq!(doc["primary"]["state"], Value::Null);
        assert_eq!(doc["primary"]["since"], Value::Null);
        assert_eq!(doc["primary"]["reason"], Value::Null);
        assert_eq!(doc["primary"]["state_changes"], 0);
        assert_eq!(doc["primary"]["replicas"], json!([]));
    }

    #[test]
    fn every_state_by_name() {
        for (state, name) in [
            (PrimaryState::Alive, "alive"),
            (PrimaryState::Unreachable, "unreachable"),
            (PrimaryState::Dead, "dead"),
        ] {
            let health = PrimaryHealth { state: Some(state), ..sample_health() };
            let doc = parse_with(&sample_stream(), None, Some(&health), 0);
            assert_eq!(doc["primary"]["state"], name);
        }
    }

    #[test]
    fn a_paused_empty_ring() {
        let ring = RingStatus {
            dir: "/r".into(),
            paused: Some("disk full".into()),
            capacity_bytes: 10,
            ..RingStatus::default()
        };
        let doc = parse(&StreamStatus::default(), Some(&ring), 0);
        assert_eq!(doc["ring"]["paused"], "disk full");
        assert_eq!(doc["ring"]["first"], Value::Null);
        assert_eq!(doc["last_durable"], Value::Null);
    }

    #[test]
    fn lag_in_another_file_has_seconds_but_no_bytes() {
        let stream = StreamStatus { primary_file: Some("binlog.000043".into()), ..sample_stream() };
        let doc = parse(&stream, None, 1_700_000_060);
        assert_eq!(doc["lag"], json!({ "seconds": 60, "bytes": null }));
    }
}
