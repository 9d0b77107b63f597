//! `gapless precheck`: one check per line, each a pure function over the
//! [`Survey`] (the discovered topology, the metadata answers, the VIP probe
//! and the sidecar's status). Precheck passes when every required check
//! passes; checks of things the cluster does not use (no metadata
//! database, no VIP, no sidecar) pass as "not configured" and are not
//! required.
//!
//! Each condition is judged by exactly one check, so that a broken cluster
//! shows its cause once: a replica that cannot be read fails
//! `instances-readable` only; a stopped replica fails
//! `replication-threads`, and `replication-lag` leaves it out (its lag is
//! unknown, not large).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::candidates::candidates;
use super::config::{PromotionRule, Rules};
use super::errant::errant;
use super::instance::{Flavor, Instance, Role, Topology};
use super::meta::MetaAnswers;
use super::sidecar::SidecarReport;
use super::{Survey, VipProbe};

/// The lag precheck accepts by default, in seconds (orchestrator's
/// `ReasonableReplicationLagSeconds`).
pub const DEFAULT_MAX_LAG: u64 = 10;

/// One line of the precheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Its name (stable: scripts match on it).
    pub name: &'static str,
    /// Precheck fails when this one fails.
    pub required: bool,
    /// It passed.
    pub passed: bool,
    /// What was found, short.
    pub value: String,
    /// More: the instances at fault and why, or what was compared.
    pub detail: String,
}

impl Check {
    fn pass(name: &'static str, value: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { name, required: true, passed: true, value: value.into(), detail: detail.into() }
    }

    fn fail(name: &'static str, value: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { name, required: true, passed: false, value: value.into(), detail: detail.into() }
    }

    fn not_configured(name: &'static str, detail: impl Into<String>) -> Check {
        Check { name, required: false, passed: true, value: "not configured".into(), detail: detail.into() }
    }
}

/// What precheck is asked to hold the cluster to.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The most `Seconds_Behind_Master` accepted.
    pub max_lag: u64,
    /// Candidate rules.
    pub rules: Rules,
}

/// True when every required check passed.
pub fn all_required_pass(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.passed || !c.required)
}

/// Every check, in the order shown.
pub fn run(survey: &Survey, settings: &Settings) -> Vec<Check> {
    let t = &survey.topology;
    vec![
        instances_readable(t),
        replication_threads(t),
        replication_lag(t, settings.max_lag),
        binlog_format(t),
        binlog_row_image(t),
        gtid_mode(t),
        errant_gtids(t),
        read_only(t),
        log_slave_updates(t, &settings.rules),
        server_ids(t),
        candidate(t, &settings.rules),
        metadata(survey.meta.as_ref()),
        vip(survey.vip.as_ref(), t),
        sidecar(survey.sidecar.as_ref(), t, settings.max_lag),
    ]
}

/// The primary and the replicas that could be read.
fn servers(t: &Topology) -> impl Iterator<Item = &Instance> {
    t.instances.iter().filter(|i| (i.role == Role::Primary || i.role.is_replica()) && i.error.is_none())
}

fn readable_replicas(t: &Topology) -> impl Iterator<Item = &Instance> {
    t.replicas().filter(|i| i.error.is_none())
}

fn list(items: &[String]) -> String {
    items.join("; ")
}

/// Every instance found could be read (and every binlog client is known).
pub fn instances_readable(t: &Topology) -> Check {
    const NAME: &str = "instances-readable";
    let bad: Vec<String> = t
        .instances
        .iter()
        .filter(|i| i.role != Role::Sidecar)
        .filter_map(|i| i.error.as_ref().map(|e| format!("{} ({}): {e}", i.addr(), i.role.as_str())))
        .collect();
    let total = t.instances.iter().filter(|i| i.role != Role::Sidecar).count();
    if bad.is_empty() {
        Check::pass(NAME, format!("{total} of {total}"), "")
    } else {
        Check::fail(NAME, format!("{} of {total} unreadable", bad.len()), list(&bad))
    }
}

/// Every replica's IO and SQL threads run.
pub fn replication_threads(t: &Topology) -> Check {
    const NAME: &str = "replication-threads";
    let mut bad = Vec::new();
    let mut n = 0;
    for r in readable_replicas(t) {
        n += 1;
        match &r.replication {
            Some(c) if c.running() => {}
            Some(c) => {
                let errors: Vec<&str> =
                    [&c.last_io_error, &c.last_sql_error].into_iter().flatten().map(String::as_str).collect();
                let errors =
                    if errors.is_empty() { String::new() } else { format!(" ({})", errors.join(", ")) };
                bad.push(format!("{} IO/SQL {}{errors}", r.addr(), c.threads()));
            }
            None => bad.push(format!("{}: replication is not configured", r.addr())),
        }
    }
    if bad.is_empty() {
        Check::pass(NAME, format!("{n} of {n} running"), "")
    } else {
        Check::fail(NAME, format!("{} of {n} not running", bad.len()), list(&bad))
    }
}

/// Every running replica's `Seconds_Behind_Master` is at most `max_lag`.
pub fn replication_lag(t: &Topology, max_lag: u64) -> Check {
    const NAME: &str = "replication-lag";
    let mut worst: Option<(u64, String)> = None;
    let mut bad = Vec::new();
    let mut skipped = Vec::new();
    for r in readable_replicas(t) {
        let Some(c) = r.replication.as_ref().filter(|c| c.running()) else {
            skipped.push(r.addr());
            continue;
        };
        let Some(lag) = c.seconds_behind else {
            skipped.push(r.addr());
            continue;
        };
        let delay = c.sql_delay.filter(|d| *d > 0).map_or(String::new(), |d| format!(" (MASTER_DELAY {d})"));
        if lag > max_lag {
            bad.push(format!("{} {lag}s{delay}", r.addr()));
        }
        if worst.as_ref().is_none_or(|(w, _)| *w < lag) {
            worst = Some((lag, r.addr()));
        }
    }
    let mut detail = format!("at most {max_lag}s");
    if !skipped.is_empty() {
        detail.push_str(&format!(
            "; not judged (not replicating, see replication-threads): {}",
            skipped.join(", ")
        ));
    }
    let value = worst.map_or("-".to_string(), |(lag, at)| format!("max {lag}s ({at})"));
    if bad.is_empty() {
        Check::pass(NAME, value, detail)
    } else {
        Check::fail(NAME, value, format!("{}; {detail}", list(&bad)))
    }
}

/// `binlog_format=ROW` on the primary and every replica.
pub fn binlog_format(t: &Topology) -> Check {
    const NAME: &str = "binlog-format";
    let mut n = 0;
    let bad: Vec<String> = servers(t)
        .inspect(|_| n += 1)
        .filter(|i| i.binlog_format.as_deref() != Some("ROW"))
        .map(|i| format!("{} {}", i.addr(), i.binlog_format.as_deref().unwrap_or("unknown")))
        .collect();
    if bad.is_empty() {
        Check::pass(NAME, format!("ROW on {n} servers"), "")
    } else {
        Check::fail(NAME, format!("{} not ROW", bad.len()), list(&bad))
    }
}

/// Servers grouped by a value.
fn groups<'a>(items: impl Iterator<Item = (&'a Instance, String)>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, v) in items {
        out.entry(v).or_default().push(i.addr());
    }
    out
}

fn describe(groups: &BTreeMap<String, Vec<String>>) -> String {
    groups.iter().map(|(v, who)| format!("{v} on {}", who.join(", "))).collect::<Vec<_>>().join("; ")
}

/// The same `binlog_row_image` everywhere.
pub fn binlog_row_image(t: &Topology) -> Check {
    const NAME: &str = "binlog-row-image";
    let g = groups(servers(t).map(|i| (i, i.binlog_row_image.clone().unwrap_or_else(|| "unknown".into()))));
    match g.len() {
        0 | 1 => Check::pass(NAME, g.keys().next().cloned().unwrap_or_else(|| "-".into()), ""),
        _ => Check::fail(NAME, "differs", describe(&g)),
    }
}

/// GTID settings agree: MariaDB `gtid_strict_mode` on every server and
/// `Using_Gtid` on every replica; MySQL `gtid_mode` and
/// `enforce_gtid_consistency` everywhere, auto-positioning on every replica.
pub fn gtid_mode(t: &Topology) -> Check {
    const NAME: &str = "gtid-mode";
    let show = |v: Option<bool>| match v {
        Some(true) => "ON".to_string(),
        Some(false) => "OFF".to_string(),
        None => "unknown".to_string(),
    };
    let mut settings: Vec<(&str, BTreeMap<String, Vec<String>>)> = Vec::new();
    let flavors: BTreeSet<&str> = servers(t)
        .map(|i| match i.flavor {
            Some(Flavor::MariaDb) => "MariaDB",
            Some(Flavor::MySql) => "MySQL",
            None => "unknown",
        })
        .collect();
    if flavors.len() > 1 {
        return Check::fail(
            NAME,
            "mixed",
            format!("servers run {}", flavors.into_iter().collect::<Vec<_>>().join(" and ")),
        );
    }
    if flavors.contains("MySQL") {
        settings.push((
            "gtid_mode",
            groups(servers(t).map(|i| (i, i.gtid.mode.clone().unwrap_or_else(|| "unknown".into())))),
        ));
        settings.push((
            "enforce_gtid_consistency",
            groups(
                servers(t)
                    .map(|i| (i, i.gtid.enforce_consistency.clone().unwrap_or_else(|| "unknown".into()))),
            ),
        ));
    } else {
        settings.push(("gtid_strict_mode", groups(servers(t).map(|i| (i, show(i.gtid.strict_mode))))));
    }
    let using = groups(readable_replicas(t).map(|i| {
        (i, i.replication.as_ref().and_then(|r| r.using_gtid.clone()).unwrap_or_else(|| "unknown".into()))
    }));
    settings.push((if flavors.contains("MySQL") { "Auto_Position" } else { "Using_Gtid" }, using));
    let value = settings
        .iter()
        .filter(|(_, g)| g.len() == 1)
        .map(|(name, g)| format!("{name}={}", g.keys().next().map_or("", String::as_str)))
        .collect::<Vec<_>>()
        .join(", ");
    let differing: Vec<String> = settings
        .iter()
        .filter(|(_, g)| g.len() > 1)
        .map(|(name, g)| format!("{name}: {}", describe(g)))
        .collect();
    if differing.is_empty() {
        Check::pass(NAME, value, "")
    } else {
        Check::fail(NAME, "differs", list(&differing))
    }
}

/// No replica has a GTID its primary lacks (see [`super::errant`]).
pub fn errant_gtids(t: &Topology) -> Check {
    const NAME: &str = "errant-gtids";
    let Some(primary) = t.primary() else { return Check::fail(NAME, "no primary", "") };
    let mut bad = Vec::new();
    for r in readable_replicas(t) {
        match errant(r, primary) {
            Ok(e) if e.is_empty() => {}
            Ok(e) => bad.push(format!("{} {e}", r.addr())),
            Err(why) => bad.push(format!("{}: cannot tell ({why})", r.addr())),
        }
    }
    if bad.is_empty() {
        Check::pass(NAME, "none", "")
    } else {
        Check::fail(NAME, format!("on {} replicas", bad.len()), list(&bad))
    }
}

/// Every replica is `read_only` (and `super_read_only`, where it exists).
pub fn read_only(t: &Topology) -> Check {
    const NAME: &str = "read-only";
    let mut n = 0;
    let bad: Vec<String> = readable_replicas(t)
        .inspect(|_| n += 1)
        .filter_map(|i| match (i.read_only, i.super_read_only) {
            (Some(true), None | Some(true)) => None,
            (Some(true), Some(false)) => Some(format!("{} super_read_only=OFF", i.addr())),
            (Some(false), _) => Some(format!("{} read_only=OFF", i.addr())),
            (None, _) => Some(format!("{} read_only unknown", i.addr())),
        })
        .collect();
    if bad.is_empty() {
        Check::pass(NAME, format!("{n} of {n} replicas"), "")
    } else {
        Check::fail(NAME, format!("{} writable", bad.len()), list(&bad))
    }
}

/// The replicas that may be promoted (not `must_not`) and the intermediate
/// primaries write what they replicate to their binlog.
pub fn log_slave_updates(t: &Topology, rules: &Rules) -> Check {
    const NAME: &str = "log-slave-updates";
    let mut n = 0;
    let bad: Vec<String> = readable_replicas(t)
        .filter(|i| {
            i.role == Role::IntermediatePrimary
                || (i.parent.as_deref() == Some(t.primary.as_str())
                    && rules.rule(&i.host, i.port) != PromotionRule::MustNot)
        })
        .inspect(|_| n += 1)
        .filter_map(|i| match (i.log_bin, i.log_slave_updates) {
            (Some(true), Some(true)) => None,
            (Some(true), _) => Some(format!("{} log_slave_updates=OFF", i.addr())),
            _ => Some(format!("{} log_bin=OFF", i.addr())),
        })
        .collect();
    if bad.is_empty() {
        Check::pass(NAME, format!("{n} of {n} candidates"), "")
    } else {
        Check::fail(NAME, format!("{} without", bad.len()), list(&bad))
    }
}

/// No two servers (sidecars included) share a server id.
pub fn server_ids(t: &Topology) -> Check {
    const NAME: &str = "server-ids";
    let mut by_id: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for i in &t.instances {
        if let Some(id) = i.server_id {
            by_id.entry(id).or_default().push(i.addr());
        }
    }
    let dup: Vec<String> = by_id
        .iter()
        .filter(|(_, who)| who.len() > 1)
        .map(|(id, who)| format!("{id} on {}", who.join(", ")))
        .collect();
    if dup.is_empty() {
        Check::pass(NAME, format!("{} unique", by_id.len()), "")
    } else {
        Check::fail(NAME, "duplicate", list(&dup))
    }
}

/// At least one replica may become the primary (see [`super::candidates`]).
pub fn candidate(t: &Topology, rules: &Rules) -> Check {
    const NAME: &str = "candidate";
    let all = candidates(t, rules);
    let why: Vec<String> =
        all.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.instance, c.why_not.join(", "))).collect();
    let dc =
        |c: &super::candidates::Candidate| c.datacenter.as_ref().map_or(String::new(), |d| format!(" ({d})"));
    match all.iter().find(|c| c.ok) {
        Some(best) => {
            let others = all.iter().filter(|c| c.ok).count() - 1;
            let value = format!(
                "{}{}{}",
                best.instance,
                dc(best),
                if others > 0 { format!(" +{others}") } else { String::new() }
            );
            let detail = if why.is_empty() { String::new() } else { format!("not valid: {}", list(&why)) };
            Check::pass(NAME, value, detail)
        }
        None if all.is_empty() => Check::fail(NAME, "none", "the primary has no replicas"),
        None => Check::fail(NAME, "none", list(&why)),
    }
}

/// The metadata database answered every look-up.
pub fn metadata(meta: Option<&MetaAnswers>) -> Check {
    const NAME: &str = "metadata";
    let Some(m) = meta else { return Check::not_configured(NAME, "no [meta_db]") };
    if let Some(e) = &m.error {
        return Check::fail(NAME, format!("{} unreachable", m.database), e.clone());
    }
    let mut bad = Vec::new();
    let mut found = Vec::new();
    let mut dcs = 0;
    for a in &m.datacenters {
        match &a.value {
            Ok(Some(_)) => dcs += 1,
            Ok(None) => bad.push(format!("no datacenter for {}", a.instance)),
            Err(e) => bad.push(format!("datacenter of {}: {e}", a.instance)),
        }
    }
    if !m.datacenters.is_empty() {
        found.push(format!("{dcs} datacenters"));
    }
    for (what, answer) in [("cluster domain", &m.cluster_domain), ("cluster alias", &m.cluster_alias)] {
        let Some(a) = answer else { continue };
        match &a.value {
            Ok(Some(v)) => found.push(format!("{what} {v}")),
            Ok(None) => bad.push(format!("no {what} for {}", a.instance)),
            Err(e) => bad.push(format!("{what} of {}: {e}", a.instance)),
        }
    }
    if bad.is_empty() {
        Check::pass(NAME, found.join(", "), format!("from {}", m.database))
    } else {
        Check::fail(NAME, format!("{} unanswered", bad.len()), list(&bad))
    }
}

/// The VIP reaches the primary: a connection to it, at the primary's port,
/// lands on the server with the primary's server id and host name.
pub fn vip(probe: Option<&VipProbe>, t: &Topology) -> Check {
    const NAME: &str = "vip";
    let Some(p) = probe else { return Check::not_configured(NAME, "no VIP in the config or the metadata") };
    let Some(primary) = t.primary() else { return Check::fail(NAME, &p.vip, "no primary") };
    let at = super::instance::addr(&p.vip, primary.port);
    match &p.answer {
        Err(e) => Check::fail(NAME, format!("{} not held", p.vip), e.clone()),
        Ok(seen) if seen.server_id == primary.server_id && seen.hostname == primary.hostname => Check::pass(
            NAME,
            format!("{} on the primary", p.vip),
            format!("{at} answers as {}", primary.addr()),
        ),
        Ok(seen) => Check::fail(
            NAME,
            format!("{} not on the primary", p.vip),
            format!(
                "{at} answers with server id {} on {}, the primary {} has server id {} on {}",
                seen.server_id.map_or("?".into(), |i| i.to_string()),
                seen.hostname.as_deref().unwrap_or("?"),
                primary.addr(),
                primary.server_id.map_or("?".into(), |i| i.to_string()),
                primary.hostname.as_deref().unwrap_or("?"),
            ),
        ),
    }
}

/// The sidecar is connected to the primary and its ring holds the
/// primary's recent binlog: its lag is at most `max_lag`, or its ring
/// reaches where the primary's binlog ended when discovery read it.
pub fn sidecar(report: Option<&SidecarReport>, t: &Topology, max_lag: u64) -> Check {
    const NAME: &str = "sidecar";
    let Some(report) = report else { return Check::not_configured(NAME, "no sidecar URL") };
    let s = match &report.status {
        Ok(s) => s,
        Err(e) => return Check::fail(NAME, "no status", e.clone()),
    };
    if !s.connected {
        let why = s.last_error.as_deref().unwrap_or("no error reported");
        return Check::fail(NAME, "not connected", format!("{} follows {}: {why}", report.url, s.source));
    }
    let registered = t.sidecars().any(|i| {
        i.server_id.is_some() && i.server_id == s.server_id && i.parent.as_deref() == Some(t.primary.as_str())
    });
    if !registered {
        return Check::fail(
            NAME,
            "not on the primary",
            format!(
                "its server id {} is not registered with the primary {} (it follows {})",
                s.server_id.map_or("?".into(), |i| i.to_string()),
                t.primary,
                s.source
            ),
        );
    }
    if !s.has_ring {
        return Check::fail(NAME, "no ring", format!("{} runs without --ring: it keeps nothing", report.url));
    }
    let primary_at = t.primary().and_then(|p| p.binlog_position.clone());
    let durable = s.ring_last_durable.as_ref().map(|p| p.at.clone());
    let reached = matches!((&durable, &primary_at), (Some(d), Some(p)) if d >= p);
    let fresh = s.lag_seconds.is_some_and(|l| l <= max_lag);
    let value = format!(
        "ring at {}, lag {}",
        durable.as_ref().map_or("nothing".into(), ToString::to_string),
        s.lag_seconds.map_or("unknown".into(), |l| format!("{l}s"))
    );
    let detail = format!(
        "primary's binlog at {} when read; at most {max_lag}s",
        primary_at.map_or("unknown".into(), |p| p.to_string())
    );
    if durable.is_some() && (reached || fresh) {
        Check::pass(NAME, value, detail)
    } else {
        Check::fail(NAME, value, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::candidates::tests::{cluster, get};
    use crate::topology::config::HostMap;
    use crate::topology::instance::{BinlogPosition, FoundBy};
    use crate::topology::meta::Answer;
    use crate::topology::sidecar::{Place, SidecarStatus};
    use crate::topology::VipAnswer;

    fn survey(t: Topology) -> Survey {
        Survey { cluster: "shop".into(), topology: t, meta: None, vip: None, sidecar: None, alias: None }
    }

    fn failing(s: &Survey, settings: &Settings) -> Vec<&'static str> {
        run(s, settings).into_iter().filter(|c| !c.passed).map(|c| c.name).collect()
    }

    fn settings() -> Settings {
        Settings { max_lag: 10, rules: Rules::default() }
    }

    #[test]
    fn a_healthy_cluster_passes() {
        let checks = run(&survey(cluster()), &settings());
        assert!(all_required_pass(&checks), "{checks:#?}");
        assert_eq!(checks.len(), 14);
        let names: BTreeSet<&str> = checks.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 14, "names are unique");
        for c in checks.iter().filter(|c| ["metadata", "vip", "sidecar"].contains(&c.name)) {
            assert!(!c.required && c.value == "not configured", "{c:?}");
        }
    }

    /// Breaks one thing and expects exactly one check to fail.
    fn only(name: &str, t: Topology, settings: &Settings) -> Check {
        let s = survey(t);
        assert_eq!(failing(&s, settings), [name]);
        let checks = run(&s, settings);
        assert!(!all_required_pass(&checks));
        checks.into_iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn each_broken_condition_fails_its_own_check() {
        let mut t = cluster();
        get(&mut t, 3).error = Some("h:3: cannot connect".into());
        let c = only("instances-readable", t, &settings());
        assert!(c.detail.contains("h:3"), "{c:?}");

        let mut t = cluster();
        get(&mut t, 3).replication.as_mut().unwrap().sql_running = "No".into();
        get(&mut t, 3).replication.as_mut().unwrap().seconds_behind = None;
        let c = only("replication-threads", t, &settings());
        assert_eq!(c.detail, "h:3 IO/SQL Yes/No");

        let mut t = cluster();
        get(&mut t, 4).replication.as_mut().unwrap().seconds_behind = Some(11);
        let c = only("replication-lag", t, &settings());
        assert_eq!(c.value, "max 11s (h:4)");

        let mut t = cluster();
        get(&mut t, 2).binlog_format = Some("STATEMENT".into());
        let c = only("binlog-format", t, &settings());
        assert_eq!(c.detail, "h:2 STATEMENT");

        let mut t = cluster();
        get(&mut t, 1).binlog_row_image = Some("MINIMAL".into());
        let c = only("binlog-row-image", t, &settings());
        assert_eq!(c.detail, "FULL on h:2, h:3, h:4; MINIMAL on h:1");

        let mut t = cluster();
        get(&mut t, 4).gtid.strict_mode = Some(false);
        let c = only("gtid-mode", t, &settings());
        assert!(c.detail.contains("gtid_strict_mode: OFF on h:4"), "{c:?}");

        let mut t = cluster();
        get(&mut t, 2).read_only = Some(false);
        let c = only("read-only", t, &settings());
        assert_eq!(c.detail, "h:2 read_only=OFF");

        let mut t = cluster();
        get(&mut t, 3).server_id = Some(2);
        let c = only("server-ids", t, &settings());
        assert_eq!(c.detail, "2 on h:2, h:3");
    }

    #[test]
    fn errant_and_log_slave_updates_also_touch_candidates() {
        // An errant replica or one without log_slave_updates is no
        // candidate either; with others left, only the one check fails.
        let mut t = cluster();
        get(&mut t, 3).gtid.binlog_state = Some("0-1-10,0-3-11".into());
        let c = only("errant-gtids", t, &settings());
        assert_eq!(c.detail, "h:3 0-3-11");

        let mut t = cluster();
        get(&mut t, 4).log_slave_updates = Some(false);
        let c = only("log-slave-updates", t.clone(), &settings());
        assert_eq!(c.detail, "h:4 log_slave_updates=OFF");
        // Ruled out of promotion, it need not write its binlog.
        let rules = Rules {
            prevent_cross_dc: false,
            promotion: HostMap([("h:4".to_string(), PromotionRule::MustNot)].into()),
        };
        assert!(failing(&survey(t), &Settings { max_lag: 10, rules }).is_empty());
    }

    #[test]
    fn a_stopped_replica_is_not_judged_for_lag() {
        let mut t = cluster();
        let r = get(&mut t, 2).replication.as_mut().unwrap();
        r.io_running = "Connecting".into();
        r.seconds_behind = None;
        let c = replication_lag(&t, 10);
        assert!(c.passed && c.detail.contains("not judged") && c.detail.contains("h:2"), "{c:?}");
    }

    #[test]
    fn no_candidate_in_the_primarys_datacenter() {
        let rules = Rules {
            prevent_cross_dc: true,
            promotion: HostMap([("h:2".to_string(), PromotionRule::MustNot)].into()),
        };
        let c = only("candidate", cluster(), &Settings { max_lag: 10, rules });
        assert_eq!(c.value, "none");
        assert!(c.detail.contains("h:3: in dc2, not in the primary's dc1 (prevent_cross_dc)"), "{c:?}");
        let c = candidate(&cluster(), &Rules { prevent_cross_dc: true, promotion: HostMap::default() });
        assert!(c.passed && c.value == "h:2 (dc1)", "{c:?}");
    }

    #[test]
    fn metadata_answers() {
        let mut m = MetaAnswers { database: "meta:3306".into(), ..MetaAnswers::default() };
        m.datacenters.push(Answer { instance: "h:1".into(), value: Ok(Some("dc1".into())) });
        m.cluster_domain = Some(Answer { instance: "h:1".into(), value: Ok(Some("10.0.0.100".into())) });
        let c = metadata(Some(&m));
        assert!(c.passed && c.required && c.value == "1 datacenters, cluster domain 10.0.0.100", "{c:?}");
        m.datacenters.push(Answer { instance: "h:2".into(), value: Ok(None) });
        m.cluster_alias =
            Some(Answer { instance: "h:1".into(), value: Err("meta:3306: table missing".into()) });
        let c = metadata(Some(&m));
        assert!(!c.passed, "{c:?}");
        assert_eq!(c.detail, "no datacenter for h:2; cluster alias of h:1: meta:3306: table missing");
        m.error = Some("meta:3306: cannot connect".into());
        assert_eq!(metadata(Some(&m)).value, "meta:3306 unreachable");
    }

    #[test]
    fn the_vip_must_reach_the_primary() {
        let t = cluster();
        let on = |id: u32| VipProbe {
            vip: "10.0.0.100".into(),
            answer: Ok(VipAnswer { server_id: Some(id), hostname: Some("vm".into()) }),
        };
        assert!(vip(Some(&on(1)), &t).passed);
        let c = vip(Some(&on(2)), &t);
        assert!(!c.passed && c.detail.contains("server id 2"), "{c:?}");
        let c = vip(Some(&VipProbe { vip: "10.0.0.100".into(), answer: Err("refused".into()) }), &t);
        assert!(!c.passed && c.value == "10.0.0.100 not held");
    }

    #[test]
    fn the_sidecar_must_follow_the_primary_and_keep_up() {
        let mut t = cluster();
        get(&mut t, 1).binlog_position = Some(BinlogPosition { file: "b.000002".into(), position: 900 });
        let mut side = Instance::new("gapless@side", 0, Role::Sidecar, FoundBy::SlaveHosts);
        side.server_id = Some(4242);
        side.parent = Some("h:1".into());
        t.instances.push(side);
        let at =
            |pos: u64| Place { at: BinlogPosition { file: "b.000002".into(), position: pos }, gtid: None };
        let status = SidecarStatus {
            source: "h:1".into(),
            connected: true,
            server_id: Some(4242),
            last_error: None,
            lag_seconds: Some(0),
            last_received: Some(at(900)),
            has_ring: true,
            ring_last_durable: Some(at(900)),
        };
        let report = |s: SidecarStatus| SidecarReport { url: "http://side:9306".into(), status: Ok(s) };
        let c = sidecar(Some(&report(status.clone())), &t, 10);
        assert!(c.passed && c.required, "{c:?}");
        assert_eq!(c.value, "ring at b.000002:900, lag 0s");
        let behind =
            SidecarStatus { lag_seconds: Some(60), ring_last_durable: Some(at(500)), ..status.clone() };
        assert!(!sidecar(Some(&report(behind)), &t, 10).passed);
        let down = SidecarStatus { connected: false, last_error: Some("refused".into()), ..status.clone() };
        assert_eq!(sidecar(Some(&report(down)), &t, 10).value, "not connected");
        let elsewhere = SidecarStatus { server_id: Some(7), ..status.clone() };
        assert_eq!(sidecar(Some(&report(elsewhere)), &t, 10).value, "not on the primary");
        let ringless = SidecarStatus { has_ring: false, ring_last_durable: None, ..status };
        assert_eq!(sidecar(Some(&report(ringless)), &t, 10).value, "no ring");
        let gone = SidecarReport { url: "http://side:9306".into(), status: Err("connection refused".into()) };
        assert_eq!(sidecar(Some(&gone), &t, 10).value, "no status");
        // The sidecar's own registration is no replica: the rest still passes.
        let s =
            Survey { sidecar: Some(report(SidecarStatus { connected: true, ..sidecar_ok() })), ..survey(t) };
        assert!(all_required_pass(&run(&s, &settings())), "{:#?}", run(&s, &settings()));
    }

    fn sidecar_ok() -> SidecarStatus {
        SidecarStatus {
            source: "h:1".into(),
            connected: true,
            server_id: Some(4242),
            last_error: None,
            lag_seconds: Some(0),
            last_received: None,
            has_ring: true,
            ring_last_durable: Some(Place {
                at: BinlogPosition { file: "b.000002".into(), position: 900 },
                gtid: None,
            }),
        }
    }
}
