//! Errant transactions: what a replica has executed that its primary never
//! had. Such a transaction exists only on that replica; promoting it would
//! send the transaction to every other replica (or break replication when
//! the new primary's binlog no longer holds it).
//!
//! MySQL: `gtid_executed(replica) − gtid_executed(primary)`, as
//! `GTID_SUBTRACT` computes it.
//!
//! MariaDB has no executed set, only positions, so the comparison is made
//! on `gtid_binlog_state`, which keeps the last GTID of every
//! (domain, server id) pair the server's binlog ever held. Everything a
//! replica receives comes from its primary, so for each pair the primary's
//! sequence number is at least the replica's. A pair on the replica is
//! errant when
//!
//! - the primary has no GTID of that (domain, server id) at all (a local
//!   write on the replica, or a domain only the replica has), or
//! - the replica's sequence number for it is beyond the primary's.
//!
//! Comparing per (domain, server id) rather than per domain matters: after
//! an errant write `0-3-11` on a replica, the primary goes on to `0-1-20`,
//! so the domain's highest number no longer gives it away, but the pair
//! `0-3` is still missing on the primary. A replica without a binlog
//! (`log_bin=OFF`) gives its writes no GTID and cannot be judged this way.

use std::collections::BTreeMap;

use gapless_decoder::gtid::{GnoInterval, GtidSet, MariaGtid};

use super::instance::{Flavor, Instance};

/// A `gtid_binlog_state` value: several GTIDs per domain are allowed.
pub fn parse_binlog_state(text: &str) -> Result<Vec<MariaGtid>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<MariaGtid>().map_err(|e| format!("{s:?}: {e}")))
        .collect()
}

/// The MariaDB GTIDs of `replica_state` that `primary_state` does not
/// account for (see the module docs).
pub fn errant_mariadb(replica_state: &str, primary_state: &str) -> Result<Vec<MariaGtid>, String> {
    let primary: BTreeMap<(u32, u32), u64> = parse_binlog_state(primary_state)?
        .into_iter()
        .map(|g| ((g.domain_id, g.server_id), g.seq_no))
        .collect();
    Ok(parse_binlog_state(replica_state)?
        .into_iter()
        .filter(|g| primary.get(&(g.domain_id, g.server_id)).is_none_or(|seq| *seq < g.seq_no))
        .collect())
}

/// `a − b` for one interval against sorted, disjoint intervals.
fn minus(iv: GnoInterval, theirs: &[GnoInterval]) -> Vec<GnoInterval> {
    let mut out = Vec::new();
    let mut start = iv.start();
    let end = iv.end();
    for t in theirs {
        if t.end() < start {
            continue;
        }
        if t.start() > end {
            break;
        }
        if t.start() > start {
            out.extend(GnoInterval::new(start, t.start() - 1));
        }
        match t.end().checked_add(1) {
            Some(next) if next <= end => start = next,
            _ => return out,
        }
    }
    out.extend(GnoInterval::new(start, end));
    out
}

/// `a − b` for MySQL GTID sets (`GTID_SUBTRACT(a, b)`).
pub fn subtract(a: &GtidSet, b: &GtidSet) -> GtidSet {
    let mut out = GtidSet::new();
    for (tsid, ivs) in a {
        let theirs = b.intervals(&tsid.uuid, tsid.tag.as_ref());
        for iv in ivs {
            for piece in minus(*iv, theirs) {
                out.add_interval(tsid.uuid, tsid.tag.clone(), piece);
            }
        }
    }
    out
}

/// The errant GTIDs of `replica` against `primary`, as text (empty when
/// there are none), or why they cannot be known.
pub fn errant(replica: &Instance, primary: &Instance) -> Result<String, String> {
    match (replica.flavor, primary.flavor) {
        (Some(Flavor::MariaDb), Some(Flavor::MariaDb)) => {
            if replica.log_bin == Some(false) {
                return Ok(String::new());
            }
            let (Some(r), Some(p)) = (&replica.gtid.binlog_state, &primary.gtid.binlog_state) else {
                return Err("gtid_binlog_state not readable".into());
            };
            let found = errant_mariadb(r, p)?;
            Ok(found.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
        }
        (Some(Flavor::MySql), Some(Flavor::MySql)) => {
            let (Some(r), Some(p)) = (&replica.gtid.executed, &primary.gtid.executed) else {
                return Err("gtid_executed not readable".into());
            };
            let r: GtidSet = r.parse().map_err(|e| format!("gtid_executed {r:?}: {e}"))?;
            let p: GtidSet = p.parse().map_err(|e| format!("gtid_executed {p:?}: {e}"))?;
            Ok(subtract(&r, &p).to_string())
        }
        (None, _) | (_, None) => Err("not readable".into()),
        _ => Err("MariaDB and MySQL GTIDs cannot be compared".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::instance::{FoundBy, Role};

    #[test]
    fn mariadb_pairs() {
        let none = errant_mariadb("0-1-10", "0-1-12").unwrap();
        assert!(none.is_empty(), "a lagging replica has nothing errant");
        let ahead = errant_mariadb("0-1-13", "0-1-12").unwrap();
        assert_eq!(ahead.len(), 1, "beyond the primary in a pair it has");
        // A local write, after which the primary went further in the domain.
        let local = errant_mariadb("0-1-20,0-3-11", "0-1-20").unwrap();
        assert_eq!(local.iter().map(ToString::to_string).collect::<Vec<_>>(), ["0-3-11"]);
        // An old primary's GTIDs that both have are not errant.
        assert!(errant_mariadb("0-2-5,0-1-20", "0-1-25,0-2-5").unwrap().is_empty());
        // A domain only the replica has.
        assert_eq!(errant_mariadb("0-1-5,7-3-1", "0-1-5").unwrap().len(), 1);
        assert!(errant_mariadb("", "0-1-5").unwrap().is_empty());
        assert!(errant_mariadb("x", "").is_err());
    }

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4e11fa47-71ca-11e1-9e33-c80aa9429562";

    #[test]
    fn mysql_sets() {
        let set = |s: &str| s.parse::<GtidSet>().unwrap();
        assert!(subtract(&set(&format!("{U1}:1-10")), &set(&format!("{U1}:1-20"))).is_empty());
        assert_eq!(
            subtract(&set(&format!("{U1}:1-20,{U2}:1-2")), &set(&format!("{U1}:1-5:8-9:15"))).to_string(),
            format!("{U1}:6-7:10-14:16-20,{U2}:1-2")
        );
        assert_eq!(
            subtract(&set(&format!("{U1}:5")), &set(&format!("{U1}:1-4:6-9"))).to_string(),
            format!("{U1}:5")
        );
        assert!(subtract(&set(""), &set(&format!("{U1}:1"))).is_empty());
    }

    fn server(flavor: Flavor, state: &str) -> Instance {
        let mut i = Instance::new("h", 1, Role::Replica, FoundBy::SlaveHosts);
        i.flavor = Some(flavor);
        i.log_bin = Some(true);
        match flavor {
            Flavor::MariaDb => i.gtid.binlog_state = Some(state.into()),
            Flavor::MySql => i.gtid.executed = Some(state.into()),
        }
        i
    }

    #[test]
    fn per_instance() {
        let p = server(Flavor::MariaDb, "0-1-20");
        assert_eq!(errant(&server(Flavor::MariaDb, "0-1-20,0-3-21"), &p).unwrap(), "0-3-21");
        assert_eq!(errant(&server(Flavor::MariaDb, "0-1-19"), &p).unwrap(), "");
        let mut nobinlog = server(Flavor::MariaDb, "");
        nobinlog.log_bin = Some(false);
        nobinlog.gtid.binlog_state = None;
        assert_eq!(errant(&nobinlog, &p).unwrap(), "");
        let m = server(Flavor::MySql, &format!("{U1}:1-5"));
        assert_eq!(errant(&server(Flavor::MySql, &format!("{U1}:1-6")), &m).unwrap(), format!("{U1}:6"));
        assert!(errant(&m, &p).is_err(), "flavors do not mix");
    }
}
