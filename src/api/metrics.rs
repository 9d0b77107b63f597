//! The `/metrics` page, in the Prometheus text exposition format 0.0.4.
//!
//! Stream series carry a `source` label (the primary, host:port); ring
//! series have no labels and are only present when the stream writes a
//! ring. A series whose value is unknown (the lag before anything was
//! received, say) is left out rather than given a made-up value.
//!
//! The dead-primary detector's series (`gapless_primary_*`) are present
//! when it runs: `gapless_primary_state` has one sample per state, 1 for
//! the current one (none before its first judgement), so that
//! `gapless_primary_state{state="dead"} == 1` is an alert rule.

use std::fmt::Write as _;

use crate::detect::{PrimaryHealth, PrimaryState, Testimony};
use crate::ring::RingStatus;
use crate::stream::StreamStatus;

/// The Content-Type of the page.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `/metrics` page for the stream's and the ring's current state and
/// the detector's judgement of the primary; `now` is seconds since the
/// epoch, for the lag.
pub fn render(
    stream: &StreamStatus,
    ring: Option<&RingStatus>,
    primary: Option<&PrimaryHealth>,
    now: u64,
) -> String {
    let mut page = Page { out: String::with_capacity(2048) };
    let source = [("source", stream.source.as_str())];
    let labels = &source[..];

    page.one(
        "gapless_connected",
        "1 while connected to the primary and streaming, else 0.",
        Kind::Gauge,
        labels,
        u64::from(stream.connected),
    );
    page.one(
        "gapless_events_received_total",
        "Binlog events received from the primary (heartbeats not counted).",
        Kind::Counter,
        labels,
        stream.events,
    );
    page.one(
        "gapless_units_total",
        "Units (transactions and lone events) received whole and handed on.",
        Kind::Counter,
        labels,
        stream.units,
    );
    page.one(
        "gapless_connections_total",
        "Connections opened to the primary.",
        Kind::Counter,
        labels,
        stream.connections,
    );
    page.one(
        "gapless_semi_sync_acks_total",
        "Semi-sync ACKs sent to the primary.",
        Kind::Counter,
        labels,
        stream.acks_sent,
    );
    page.one(
        "gapless_semi_sync_active",
        "1 while the primary asks for semi-sync ACKs on this connection, else 0.",
        Kind::Gauge,
        labels,
        u64::from(stream.semi_sync_active),
    );
    if let Some(lag) = stream.lag_seconds(now) {
        page.one(
            "gapless_lag_seconds",
            "Seconds behind the primary: 0 when caught up, else the age of the last event received.",
            Kind::Gauge,
            labels,
            lag,
        );
    }
    if let Some(lag) = stream.lag_bytes() {
        page.one(
            "gapless_lag_bytes",
            "Bytes behind the primary's binlog position (only known within the same binlog file).",
            Kind::Gauge,
            labels,
            lag,
        );
    }
    if let Some(t) = stream.last_contact {
        page.one(
            "gapless_last_contact_timestamp_seconds",
            "When the last event or heartbeat arrived from the primary (seconds since the epoch).",
            Kind::Gauge,
            labels,
            t,
        );
    }
    if let Some(health) = primary {
        primary_series(&mut page, &source, health);
    }

    if let Some(ring) = ring {
        page.one(
            "gapless_ring_used_bytes",
            "Bytes of records held in the ring.",
            Kind::Gauge,
            &[],
            ring.used_bytes,
        );
        page.one(
            "gapless_ring_capacity_bytes",
            "Bytes the ring may use on disk.",
            Kind::Gauge,
            &[],
            ring.capacity_bytes,
        );
        page.one("gapless_ring_segments", "Ring segment files in use.", Kind::Gauge, &[], ring.segments);
        page.one(
            "gapless_ring_paused",
            "1 while writing to the ring is paused (a full disk, an I/O error), else 0.",
            Kind::Gauge,
            &[],
            u64::from(ring.paused.is_some()),
        );
        if let Some(durable) = &ring.last_durable {
            page.one(
                "gapless_ring_last_durable_timestamp_seconds",
                "Event timestamp of the last unit known to be on disk in the ring (seconds since the epoch).",
                Kind::Gauge,
                &[],
                u64::from(durable.timestamp),
            );
        }
    }
    page.out
}

/// The detector's series.
fn primary_series(page: &mut Page, source: &[(&str, &str); 1], health: &PrimaryHealth) {
    let [(source_label, source)] = *source;
    if let Some(current) = health.state {
        let samples: Vec<_> = PrimaryState::ALL
            .iter()
            .map(|s| (vec![(source_label, source), ("state", s.as_str())], u64::from(*s == current)))
            .collect();
        page.family(
            "gapless_primary_state",
            "The dead-primary detector's judgement: 1 for the current state (alive, unreachable, dead), else 0.",
            Kind::Gauge,
            &samples,
        );
    }
    page.one(
        "gapless_primary_state_changes_total",
        "Changes of the primary's state seen by the detector (its first judgement counts).",
        Kind::Counter,
        &[(source_label, source)],
        health.changes,
    );
    if let Some(since) = health.since {
        page.one(
            "gapless_primary_state_since_timestamp_seconds",
            "When the primary entered its current state (seconds since the epoch).",
            Kind::Gauge,
            &[(source_label, source)],
            since,
        );
    }
    let testimonies = [
        (Testimony::Replicates, "replicates"),
        (Testimony::CannotReplicate, "cannot_replicate"),
        (Testimony::ProvesNothing, "proves_nothing"),
    ];
    let samples: Vec<_> = testimonies
        .iter()
        .map(|(t, name)| {
            let n = health.replicas.iter().filter(|r| r.testimony == *t).count();
            (vec![(source_label, source), ("testimony", *name)], n as u64)
        })
        .collect();
    page.family(
        "gapless_primary_replicas",
        "Replicas the detector consults, by what they say of the primary (checked while the stream is down).",
        Kind::Gauge,
        &samples,
    );
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

struct Page {
    out: String,
}

impl Page {
    /// A metric family of one sample.
    fn one(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], value: u64) {
        self.family(name, help, kind, &[(labels.to_vec(), value)]);
    }

    /// A metric family of several samples (label sets and values).
    fn family(&mut self, name: &str, help: &str, kind: Kind, samples: &[(Vec<(&str, &str)>, u64)]) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            self.out.push_str(name);
            if !labels.is_empty() {
                self.out.push('{');
                for (i, (label, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{label}=\"{}\"", escape_label_value(value));
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {value}");
        }
    }
}

/// A label value as the format wants it: backslash, double quote and line
/// feed escaped.
fn escape_label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text as the format wants it: backslash and line feed escaped.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::status::tests::{sample_health, sample_ring, sample_stream};

    /// One sample line.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Sample {
        pub name: String,
        pub labels: BTreeMap<String, String>,
        pub value: f64,
    }

    /// Parses a page strictly enough to catch format mistakes: every sample
    /// preceded by HELP and TYPE lines for its name, label values unescaped.
    pub(crate) fn parse_page(page: &str) -> Result<Vec<Sample>, String> {
        let mut samples = Vec::new();
        let mut help: Option<String> = None;
        let mut typed: Option<String> = None;
        if !page.is_empty() && !page.ends_with('\n') {
            return Err("no final newline".into());
        }
        for line in page.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                help = Some(rest.split(' ').next().unwrap_or_default().to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
                if !["counter", "gauge"].contains(&kind) {
                    return Err(format!("bad type: {line}"));
                }
                if kind == "counter" && !name.ends_with("_total") {
                    return Err(format!("counter without _total: {line}"));
                }
                typed = Some(name.to_owned());
                continue;
            }
            let sample = parse_sample(line)?;
            if help.as_deref() != Some(&sample.name) || typed.as_deref() != Some(&sample.name) {
                return Err(format!("no HELP or TYPE for {line}"));
            }
            samples.push(sample);
        }
        Ok(samples)
    }

    fn parse_sample(line: &str) -> Result<Sample, String> {
        let bad = || format!("bad sample: {line:?}");
        let name_end = line.find(['{', ' ']).ok_or_else(bad)?;
        let name = &line[..name_end];
        let valid_name = |s: &str| {
            !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        if !valid_name(name) {
            return Err(bad());
        }
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            loop {
                if let Some(&(i, '}')) = chars.peek() {
                    rest = &after[i + 1..];
                    break;
                }
                let mut label = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    label.push(c);
                }
                if !valid_name(&label) || chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(bad());
                }
                let mut value = String::new();
                loop {
                    match chars.next().ok_or_else(bad)?.1 {
                        '"' => break,
                        '\\' => match chars.next().ok_or_else(bad)?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            _ => return Err(bad()),
                        },
                        '\n' => return Err(bad()),
                        c => value.push(c),
                    }
                }
                labels.insert(label, value);
                match chars.peek() {
                    Some((_, ',')) => {
                        chars.next();
                    }
                    Some((_, '}')) => {}
                    _ => return Err(bad()),
                }
            }
        }
        let value = rest.strip_prefix(' ').ok_or_else(bad)?;
        let value: f64 = value.parse().map_err(|_| bad())?;
        Ok(Sample { name: name.to_owned(), labels, value })
    }

    fn values(page: &str) -> BTreeMap<String, f64> {
        parse_page(page).unwrap().into_iter().map(|s| (s.name, s.value)).collect()
    }

    #[test]
    fn all_series_with_a_ring() {
        let page = render(&sample_stream(), Some(&sample_ring()), None, 1_700_000_005);
        let samples = parse_page(&page).unwrap_or_else(|e| panic!("{e}\n{page}"));
        let got: BTreeMap<_, _> = samples.iter().map(|s| (s.name.as_str(), s.value)).collect();
        let expected = [
            ("gapless_connected", 1.0),
            ("gapless_events_received_total", 4000.0),
            ("gapless_units_total", 77.0),
            ("gapless_connections_total", 2.0),
            ("gapless_semi_sync_acks_total", 77.0),
            ("gapless_semi_sync_active", 1.0),
            ("gapless_lag_seconds", 5.0),
            ("gapless_lag_bytes", 100.0),
            ("gapless_last_contact_timestamp_seconds", 1_700_000_004.0),
            ("gapless_ring_used_bytes", 1_048_576.0),
            ("gapless_ring_capacity_bytes", 1_073_741_824.0),
            ("gapless_ring_segments", 3.0),
            ("gapless_ring_paused", 0.0),
            ("gapless_ring_last_durable_timestamp_seconds", 1_699_999_999.0),
        ];
        assert_eq!(got, expected.into_iter().collect(), "{page}");
        for s in &samples {
            let want: &[_] = if s.name.starts_with("gapless_ring_") { &[] } else { &["source"] };
            assert_eq!(s.labels.keys().map(String::as_str).collect::<Vec<_>>(), want, "{}", s.name);
            if !want.is_empty() {
                assert_eq!(s.labels["source"], "db1:3306");
            }
        }
    }

    #[test]
    fn unknown_values_and_the_ring_are_left_out() {
        let stream = StreamStatus { source: "db1:3306".into(), ..StreamStatus::default() };
        let got = values(&render(&stream, None, None, 1_700_000_000));
        let names: Vec<_> = got.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "gapless_connected",
                "gapless_connections_total",
                "gapless_events_received_total",
                "gapless_semi_sync_acks_total",
                "gapless_semi_sync_active",
                "gapless_units_total",
            ]
        );
        assert_eq!(got["gapless_connected"], 0.0);

        let ring = RingStatus { paused: Some("disk full".into()), ..RingStatus::default() };
        let got = values(&render(&stream, Some(&ring), None, 0));
        assert_eq!(got["gapless_ring_paused"], 1.0);
        assert!(!got.contains_key("gapless_ring_last_durable_timestamp_seconds"));
    }

    #[test]
    fn label_values_are_escaped() {
        let source = "we\"ird\\host\nname:3306";
        let stream = StreamStatus { source: source.into(), ..StreamStatus::default() };
        let page = render(&stream, None, None, 0);
        assert!(page.contains(r#"gapless_connected{source="we\"ird\\host\nname:3306"} 0"#), "{page}");
        let samples = parse_page(&page).unwrap();
        assert!(samples.iter().all(|s| s.labels["source"] == source));
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }

    #[test]
    fn the_primary_state_one_sample_per_state() {
        let page = render(&sample_stream(), None, Some(&sample_health()), 1_700_000_005);
        let samples = parse_page(&page).unwrap_or_else(|e| panic!("{e}\n{page}"));
        let of = |name: &str, label: &str| -> BTreeMap<String, f64> {
            samples
                .iter()
                .filter(|s| s.name == name)
                .inspect(|s| assert_eq!(s.labels["source"], "db1:3306"))
                .map(|s| (s.labels[label].clone(), s.value))
                .collect()
        };
        let states = of("gapless_primary_state", "state");
        let want: BTreeMap<String, f64> =
            [("alive".into(), 0.0), ("unreachable".into(), 0.0), ("dead".into(), 1.0)].into_iter().collect();
        assert_eq!(states, want, "{page}");
        let replicas = of("gapless_primary_replicas", "testimony");
        let want: BTreeMap<String, f64> =
            [("replicates".into(), 0.0), ("cannot_replicate".into(), 1.0), ("proves_nothing".into(), 1.0)]
                .into_iter()
                .collect();
        assert_eq!(replicas, want, "{page}");
        let got = values(&page);
        assert_eq!(got["gapless_primary_state_changes_total"], 3.0);
        assert_eq!(got["gapless_primary_state_since_timestamp_seconds"], 1_700_000_000.0);
        // One HELP and TYPE per family, before its samples.
        assert_eq!(page.matches("# TYPE gapless_primary_state gauge").count(), 1, "{page}");

        for (state, name) in [(PrimaryState::Alive, "alive"), (PrimaryState::Unreachable, "unreachable")] {
            let health = PrimaryHealth { state: Some(state), ..sample_health() };
            let page = render(&sample_stream(), None, Some(&health), 0);
            let on: Vec<_> = parse_page(&page)
                .unwrap()
                .into_iter()
                .filter(|s| s.name == "gapless_primary_state" && s.value == 1.0)
                .map(|s| s.labels["state"].clone())
                .collect();
            assert_eq!(on, [name]);
        }
    }

    #[test]
    fn the_primary_series_before_a_judgement_and_without_the_detector() {
        let page = render(&sample_stream(), None, Some(&PrimaryHealth::new("db1:3306")), 0);
        let got = values(&page);
        assert!(!got.contains_key("gapless_primary_state"), "{page}");
        assert!(!got.contains_key("gapless_primary_state_since_timestamp_seconds"), "{page}");
        assert_eq!(got["gapless_primary_state_changes_total"], 0.0);
        assert_eq!(got["gapless_primary_replicas"], 0.0);
        let page = render(&sample_stream(), None, None, 0);
        assert!(!page.contains("gapless_primary_"), "{page}");
    }

    #[test]
    fn the_test_parser_refuses_broken_lines() {
        for line in ["x", "1x 1", "x{a=\"1} 1", "x{a=1} 1", "x{a=\"\\q\"} 1", "x 1 2 z", "x{a=\"1\" 1"] {
            assert!(parse_sample(line).is_err(), "{line}");
        }
        assert!(parse_page("x 1\n").is_err(), "no HELP/TYPE");
    }
}
