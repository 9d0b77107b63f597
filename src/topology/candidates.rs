//! Which replicas may become the primary, and in what order: a pure
//! function of the discovered topology and the cluster's rules, shared by
//! `gapless precheck` (is there at least one?) and a switchover (which
//! one?).
//!
//! A candidate is a replica of the primary itself (not of an intermediate
//! primary) that
//!
//! - could be read, and replicates (IO and SQL threads running);
//! - runs the primary's software (MariaDB or MySQL) at the same major
//!   version or a newer one: a replica may be newer than its primary, never
//!   older, so after the switch the old primary can replicate from it;
//! - writes a binlog with the changes it replicates (`log_bin`,
//!   `log_slave_updates`), or the other replicas could not follow it;
//! - has no errant GTIDs;
//! - is not ruled out (`must_not`);
//! - is in the primary's datacenter when `prevent_cross_dc`
//!   (orchestrator's `PreventCrossDataCenterMasterFailover`) is set: an
//!   unknown datacenter on either side rules it out then.
//!
//! Valid candidates come first, ordered by promotion rule (`prefer`,
//! `neutral`, `prefer_not`), then the most up to date (the most
//! transactions executed, by GTID; then the furthest executed position in
//! the primary's binlog), then the primary's datacenter, then the least
//! lag, then the address. Being up to date comes before the datacenter as
//! in orchestrator: the datacenter breaks ties between replicas that have
//! executed as much, and `prevent_cross_dc` is the rule that forbids
//! leaving it.
//!
//! A few reasons may be overridden by a switchover's `--force` when the
//! operator names the replica ([`Candidate::forceable`]): its `must_not`
//! rule, and stopped replication (the switchover then waits for it to
//! catch up, and rolls back when it does not). The others never are: a
//! replica that cannot be read, runs other software or an older version,
//! writes no binlog of what it replicates, has errant GTIDs, or sits in
//! another datacenter under `prevent_cross_dc` would leave a broken or
//! forbidden cluster behind.

use gapless_decoder::gtid::{GtidSet, MariaGtidList};
use serde::Serialize;

use super::config::{PromotionRule, Rules};
use super::errant::errant;
use super::instance::{BinlogPosition, Flavor, Instance, Topology};

/// One replica judged as the next primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// `HOST:PORT`.
    pub instance: String,
    /// It may be promoted.
    pub ok: bool,
    /// Every reason it may not (empty when `ok`).
    pub why_not: Vec<String>,
    /// Its promotion rule.
    pub rule: PromotionRule,
    /// Its datacenter.
    pub datacenter: Option<String>,
    /// In the primary's datacenter (`None` when either is unknown).
    pub same_datacenter: Option<bool>,
    /// `Seconds_Behind_Master`.
    pub lag: Option<u64>,
    /// Transactions executed from replication: the sum of the sequence
    /// numbers of MariaDB's `gtid_slave_pos`, or the size of MySQL's
    /// `gtid_executed`.
    pub executed: Option<u64>,
    /// `Relay_Master_Log_File:Exec_Master_Log_Pos`: how far in the
    /// primary's binlog it has executed.
    pub executed_position: Option<BinlogPosition>,
    /// Not `ok`, but only for reasons a switchover's `--force` may
    /// override when the replica is named with `--to` (see the module
    /// docs).
    pub forceable: bool,
}

/// Transactions `i` has executed (see [`Candidate::executed`]).
pub fn executed(i: &Instance) -> Option<u64> {
    match i.flavor? {
        Flavor::MariaDb => {
            let pos: MariaGtidList = i.gtid.slave_pos.as_deref()?.parse().ok()?;
            Some(pos.iter().fold(0u64, |n, g| n.saturating_add(g.seq_no)))
        }
        Flavor::MySql => {
            let set: GtidSet = i.gtid.executed.as_deref()?.parse().ok()?;
            Some(
                set.iter()
                    .flat_map(|(_, ivs)| ivs.iter())
                    .fold(0u64, |n, iv| n.saturating_add(iv.end() - iv.start() + 1)),
            )
        }
    }
}

fn judge(replica: &Instance, primary: &Instance, rules: &Rules) -> Candidate {
    let mut why = Vec::new();
    // The reasons --force may override.
    let mut forceable = 0;
    let rule = rules.rule(&replica.host, replica.port);
    if let Some(e) = &replica.error {
        why.push(format!("cannot be read ({e})"));
    }
    if rule == PromotionRule::MustNot {
        why.push("its promotion rule is must_not".into());
        forceable += 1;
    }
    match &replica.replication {
        Some(r) if r.running() => {}
        Some(r) => {
            why.push(format!("replication is not running (IO/SQL {})", r.threads()));
            forceable += 1;
        }
        None if replica.error.is_none() => why.push("does not replicate".into()),
        None => {}
    }
    if replica.error.is_none() {
        if replica.flavor != primary.flavor {
            why.push("runs other software than the primary (MariaDB and MySQL do not mix)".into());
        }
        match (replica.major_version(), primary.major_version()) {
            (Some(mine), Some(theirs)) if mine < theirs => why.push(format!(
                "version {}.{} is older than the primary's {}.{}",
                mine.0, mine.1, theirs.0, theirs.1
            )),
            (None, _) | (_, None) => why.push("version not known".into()),
            _ => {}
        }
        if replica.log_bin != Some(true) {
            why.push("log_bin is OFF".into());
        }
        if replica.log_slave_updates != Some(true) {
            why.push("log_slave_updates is OFF".into());
        }
        match errant(replica, primary) {
            Ok(e) if e.is_empty() => {}
            Ok(e) => why.push(format!("has errant GTIDs {e}")),
            Err(e) => why.push(format!("errant GTIDs unknown: {e}")),
        }
    }
    let same = match (&replica.datacenter, &primary.datacenter) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    if rules.prevent_cross_dc {
        match (&replica.datacenter, &primary.datacenter, same) {
            (_, None, _) => why.push("the primary's datacenter is not known (prevent_cross_dc)".into()),
            (None, _, _) => why.push("its datacenter is not known (prevent_cross_dc)".into()),
            (Some(mine), Some(theirs), Some(false)) => {
                why.push(format!("in {mine}, not in the primary's {theirs} (prevent_cross_dc)"))
            }
            _ => {}
        }
    }
    Candidate {
        instance: replica.addr(),
        ok: why.is_empty(),
        forceable: !why.is_empty() && forceable == why.len(),
        why_not: why,
        rule,
        datacenter: replica.datacenter.clone(),
        same_datacenter: same,
        lag: replica.replication.as_ref().and_then(|r| r.seconds_behind),
        executed: executed(replica),
        executed_position: replica.replication.as_ref().and_then(|r| r.executed.clone()),
    }
}

/// Every replica of the primary, judged and ordered best first (see the
/// module docs). Empty when the topology has no primary.
pub fn candidates(topology: &Topology, rules: &Rules) -> Vec<Candidate> {
    use std::cmp::Reverse;
    let Some(primary) = topology.primary() else { return Vec::new() };
    let mut out: Vec<Candidate> = topology.direct_replicas().map(|r| judge(r, primary, rules)).collect();
    out.sort_by(|a, b| {
        // Unknown progress sorts after any known one.
        let key = |c: &Candidate| {
            (
                !c.ok,
                c.rule,
                c.executed.is_none(),
                Reverse(c.executed),
                c.executed_position.is_none(),
                Reverse(c.executed_position.clone()),
                c.same_datacenter != Some(true),
                c.lag.is_none(),
                c.lag,
            )
        };
        key(a).cmp(&key(b)).then_with(|| a.instance.cmp(&b.instance))
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::topology::config::HostMap;
    use crate::topology::instance::{Flavor, FoundBy, Replication, Role};

    /// A healthy MariaDB cluster: primary h:1 in dc1, replicas h:2 (dc1),
    /// h:3 and h:4 (dc2), all replicating with no lag.
    pub(crate) fn cluster() -> Topology {
        let server = |port: u16, role: Role, dc: &str| {
            let mut i = Instance::new("h", port, role, FoundBy::SlaveHosts);
            i.server_id = Some(u32::from(port));
            i.hostname = Some("vm".into());
            i.version = Some("10.11.6-MariaDB-log".into());
            i.flavor = Some(Flavor::MariaDb);
            i.read_only = Some(role != Role::Primary);
            i.log_bin = Some(true);
            i.log_slave_updates = Some(true);
            i.binlog_format = Some("ROW".into());
            i.binlog_row_image = Some("FULL".into());
            i.gtid.strict_mode = Some(true);
            i.gtid.binlog_state = Some("0-1-10".into());
            i.datacenter = Some(dc.into());
            if role != Role::Primary {
                i.depth = 1;
                i.parent = Some("h:1".into());
                i.replication = Some(Replication {
                    source_host: "h".into(),
                    source_port: 1,
                    source_server_id: Some(1),
                    io_running: "Yes".into(),
                    sql_running: "Yes".into(),
                    seconds_behind: Some(0),
                    using_gtid: Some("Slave_Pos".into()),
                    ..Replication::default()
                });
            }
            i
        };
        Topology {
            seed: "h:1".into(),
            primary: "h:1".into(),
            instances: vec![
                server(1, Role::Primary, "dc1"),
                server(2, Role::Replica, "dc1"),
                server(3, Role::Replica, "dc2"),
                server(4, Role::Replica, "dc2"),
            ],
            co_primary: None,
            notes: Vec::new(),
        }
    }

    pub(crate) fn get(t: &mut Topology, port: u16) -> &mut Instance {
        t.instances.iter_mut().find(|i| i.port == port).expect("instance")
    }

    fn rules(prevent_cross_dc: bool, promotion: &[(&str, PromotionRule)]) -> Rules {
        Rules {
            prevent_cross_dc,
            promotion: HostMap(promotion.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
        }
    }

    fn order(c: &[Candidate]) -> Vec<(String, bool)> {
        c.iter().map(|c| (c.instance.clone(), c.ok)).collect()
    }

    #[test]
    fn healthy_replicas_are_all_candidates() {
        let c = candidates(&cluster(), &Rules::default());
        assert_eq!(order(&c), [("h:2".into(), true), ("h:3".into(), true), ("h:4".into(), true)]);
        assert_eq!(c[0].same_datacenter, Some(true), "the primary's datacenter first");
    }

    #[test]
    fn rules_order_and_exclude() {
        let c = candidates(
            &cluster(),
            &rules(false, &[("h:4", PromotionRule::Prefer), ("h:2", PromotionRule::MustNot)]),
        );
        assert_eq!(order(&c), [("h:4".into(), true), ("h:3".into(), true), ("h:2".into(), false)]);
        assert_eq!(c[2].why_not, ["its promotion rule is must_not"]);
    }

    #[test]
    fn prevent_cross_dc_keeps_the_datacenter() {
        let r = rules(true, &[("h", PromotionRule::Neutral), ("h:2", PromotionRule::MustNot)]);
        let c = candidates(&cluster(), &r);
        assert!(c.iter().all(|c| !c.ok), "{c:?}");
        assert!(c
            .iter()
            .any(|c| c.why_not.iter().any(|w| w == "in dc2, not in the primary's dc1 (prevent_cross_dc)")));
        let mut t = cluster();
        get(&mut t, 2).datacenter = None;
        let c = candidates(&t, &rules(true, &[]));
        assert!(!c.iter().any(|c| c.ok));
        assert!(c.iter().any(|c| c.why_not == ["its datacenter is not known (prevent_cross_dc)"]), "{c:?}");
    }

    #[test]
    fn versions_software_binlogs_and_replication() {
        let mut t = cluster();
        get(&mut t, 2).version = Some("10.6.12-MariaDB".into());
        get(&mut t, 3).log_slave_updates = Some(false);
        get(&mut t, 4).replication.as_mut().unwrap().sql_running = "No".into();
        let c = candidates(&t, &Rules::default());
        assert!(c.iter().all(|c| !c.ok));
        let why = |addr: &str| c.iter().find(|c| c.instance == addr).unwrap().why_not.clone();
        assert_eq!(why("h:2"), ["version 10.6 is older than the primary's 10.11"]);
        assert_eq!(why("h:3"), ["log_slave_updates is OFF"]);
        assert_eq!(why("h:4"), ["replication is not running (IO/SQL Yes/No)"]);
        let mut t = cluster();
        get(&mut t, 2).version = Some("11.4.2-MariaDB".into());
        get(&mut t, 3).flavor = Some(Flavor::MySql);
        get(&mut t, 4).gtid.binlog_state = Some("0-1-10,0-4-11".into());
        let c = candidates(&t, &Rules::default());
        assert_eq!(order(&c)[0], ("h:2".into(), true), "newer is fine");
        assert!(c[1..].iter().all(|c| !c.ok));
        assert!(c.iter().any(|c| c.why_not.iter().any(|w| w == "has errant GTIDs 0-4-11")));
    }

    #[test]
    fn the_most_up_to_date_first_then_the_datacenter() {
        let mut t = cluster();
        for (port, pos) in [(2, "0-1-10"), (3, "0-1-12"), (4, "0-1-11")] {
            get(&mut t, port).gtid.slave_pos = Some(pos.into());
        }
        let c = candidates(&t, &Rules::default());
        assert_eq!(order(&c).iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["h:3", "h:4", "h:2"]);
        assert_eq!(c[0].executed, Some(12));
        // The rule still comes first; the datacenter breaks a tie.
        let c = candidates(&t, &rules(false, &[("h:2", PromotionRule::Prefer)]));
        assert_eq!(c[0].instance, "h:2");
        get(&mut t, 2).gtid.slave_pos = Some("0-1-12".into());
        let c = candidates(&t, &Rules::default());
        assert_eq!(c[0].instance, "h:2", "as up to date as h:3, and in the primary's datacenter");
        // Several domains add up; without GTIDs the executed position decides.
        get(&mut t, 4).gtid.slave_pos = Some("0-1-12,1-7-3".into());
        assert_eq!(candidates(&t, &Rules::default())[0].instance, "h:4");
        let mut t = cluster();
        for (port, pos) in [(2, 100), (3, 300), (4, 200)] {
            get(&mut t, port).replication.as_mut().unwrap().executed =
                Some(BinlogPosition { file: "b.000001".into(), position: pos });
        }
        get(&mut t, 2).replication.as_mut().unwrap().executed =
            Some(BinlogPosition { file: "b.000002".into(), position: 4 });
        let c = candidates(&t, &Rules::default());
        assert_eq!(order(&c).iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["h:2", "h:3", "h:4"]);
    }

    #[test]
    fn what_force_may_override() {
        let mut t = cluster();
        get(&mut t, 3).replication.as_mut().unwrap().sql_running = "No".into();
        get(&mut t, 4).log_slave_updates = Some(false);
        let r = rules(true, &[("h:2", PromotionRule::MustNot)]);
        let c = candidates(&t, &r);
        let find = |addr: &str| c.iter().find(|c| c.instance == addr).unwrap();
        assert!(find("h:2").forceable, "must_not alone");
        assert!(!find("h:3").forceable, "stopped, but in another datacenter: {:?}", find("h:3"));
        assert!(!find("h:4").forceable);
        let c = candidates(&t, &rules(false, &[]));
        assert!(c.iter().find(|c| c.instance == "h:3").unwrap().forceable, "stopped replication alone");
        assert!(c.iter().all(|c| c.ok != c.forceable || !c.ok), "an ok candidate needs no force");
        assert!(!c.iter().find(|c| c.instance == "h:2").unwrap().forceable);
    }

    #[test]
    fn executed_transactions() {
        let mut i = cluster().instances.remove(1);
        i.gtid.slave_pos = Some("0-1-10,2-5-7".into());
        assert_eq!(executed(&i), Some(17));
        i.gtid.slave_pos = Some(String::new());
        assert_eq!(executed(&i), Some(0));
        i.gtid.slave_pos = None;
        assert_eq!(executed(&i), None);
        i.flavor = Some(Flavor::MySql);
        i.gtid.executed =
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:8,4e11fa47-71ca-11e1-9e33-c80aa9429562:1".into());
        assert_eq!(executed(&i), Some(7));
    }

    #[test]
    fn lag_breaks_ties() {
        let mut t = cluster();
        get(&mut t, 3).replication.as_mut().unwrap().seconds_behind = Some(5);
        let c = candidates(&t, &Rules::default());
        assert_eq!(order(&c).iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["h:2", "h:4", "h:3"]);
    }
}
