//! Dual-primary (active/passive master-master) switch: two servers that
//! replicate from each other, one writable (active), the other read_only
//! (passive). `gapless switchover --dual` makes the active read_only, waits
//! until the passive has executed everything the active wrote, makes the
//! passive writable and moves the VIP. Nothing is re-pointed: the pair keeps
//! replicating both ways and each member's replicas stay under it.
//! Switching back is the same command again.
//!
//! The shape is checked first, and anything else is refused: exactly one
//! member writable, each replicating from the other with both threads
//! running. Two writable members already take writes on both sides, and
//! making one of them "the" primary would hide that; a pair with a stopped
//! direction would lose the active's last writes.
//!
//! The catch-up waits for the active's position without the GTIDs the
//! passive wrote itself (see [`super::plan::without_server`]): MariaDB's
//! advice for multi-master is one `gtid_domain_id` per member, and a
//! member's own transactions come back from its peer only to be ignored.
//!
//! Only the plan is here ([`plan`], pure); [`super::switchover::execute`]
//! carries it out with the same steps and the same rollback.

use super::instance::{Instance, Replication, Topology};
use super::plan::{
    hand_over, judge_precheck, number, vip_step, wait_kind, Action, Follows, Kind, Node, Plan, Refusal,
    Settings,
};
use super::precheck;
use super::Survey;

/// The two members.
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    /// The writable one.
    pub active: &'a Instance,
    /// The read_only one.
    pub passive: &'a Instance,
}

/// Whether `r` replicates from `source` (by port, and server id when both
/// are known, else host).
fn points_at(r: &Replication, source: &Instance) -> bool {
    r.source_port == source.port
        && match (r.source_server_id, source.server_id) {
            (Some(a), Some(b)) => a == b,
            _ => r.source_host.eq_ignore_ascii_case(&source.host),
        }
}

fn replicates(member: &Instance, peer: &Instance) -> Result<(), String> {
    match &member.replication {
        Some(r) if points_at(r, peer) && r.running() => Ok(()),
        Some(r) if points_at(r, peer) => Err(format!(
            "{}'s replication from {} is not running (IO/SQL {}): the pair must replicate both ways",
            member.addr(),
            peer.addr(),
            r.threads()
        )),
        Some(r) => Err(format!(
            "{} replicates from {}, not from its peer {}",
            member.addr(),
            r.source_addr(),
            peer.addr()
        )),
        None => Err(format!("{} does not replicate from its peer {}", member.addr(), peer.addr())),
    }
}

/// The active/passive pair of `t`, or why it is not one.
pub fn pair(t: &Topology) -> Result<Pair<'_>, String> {
    let Some(co) = &t.co_primary else {
        return Err(format!(
            "{} is not one of a dual-primary pair (it replicates from none of its replicas); \
             a plain switchover (without --dual) promotes a replica",
            t.primary
        ));
    };
    let (Some(a), Some(b)) = (t.primary(), t.get(co)) else {
        return Err(format!("the dual-primary pair {} and {co} was not fully discovered", t.primary));
    };
    for m in [a, b] {
        if let Some(e) = &m.error {
            return Err(format!("{} cannot be read: {e}", m.addr()));
        }
    }
    if a.flavor != b.flavor {
        return Err(format!("{} and {} run different software", a.addr(), b.addr()));
    }
    let (active, passive) = match (a.read_only, b.read_only) {
        (Some(false), Some(true)) => (a, b),
        (Some(true), Some(false)) => (b, a),
        (Some(false), Some(false)) => {
            return Err(format!(
                "both {} and {} are writable: a dual-primary switch needs one active (writable) and one \
                 passive (read_only) member; set read_only on the one that should not take writes first",
                a.addr(),
                b.addr()
            ))
        }
        (Some(true), Some(true)) => {
            return Err(format!(
                "neither {} nor {} is writable: nothing is active to switch from",
                a.addr(),
                b.addr()
            ))
        }
        _ => return Err(format!("the read_only of {} or {} is not known", a.addr(), b.addr())),
    };
    replicates(active, passive)?;
    replicates(passive, active)?;
    Ok(Pair { active, passive })
}

/// The plan of a dual-primary switch (see the module docs).
pub fn plan(survey: &Survey, s: &Settings) -> Result<Plan, Refusal> {
    let t = &survey.topology;
    let p = pair(t).map_err(|reason| Refusal { reason, checks: Vec::new(), candidates: Vec::new() })?;
    // The candidate check judges a replica's promotion, not this switch.
    let checks: Vec<_> =
        precheck::run(survey, &s.precheck).into_iter().filter(|c| c.name != "candidate").collect();
    let refuse = |reason: String| Refusal { reason, checks: checks.clone(), candidates: Vec::new() };
    let mut warnings = judge_precheck(&checks, s.force).map_err(refuse)?;
    let (Some(old), Some(new)) = (Node::of(p.active), Node::of(p.passive)) else {
        return Err(refuse("the pair's software is not known".into()));
    };
    let (vip, note) = vip_step(survey, &s.vip, &old, &new).map_err(refuse)?;
    warnings.extend(note);
    let mut actions = hand_over(&old.addr, &new.addr, s, wait_kind(p.active, p.passive));
    actions.push(Action::Writable { on: new.addr.clone() });
    actions.extend(vip);
    actions.push(Action::Verify {
        primary: new.addr.clone(),
        read_only: vec![old.addr.clone()],
        replicating: vec![
            Follows { replica: old.addr.clone(), source: new.addr.clone() },
            Follows { replica: new.addr.clone(), source: old.addr.clone() },
        ],
    });
    let nodes = vec![old.clone(), new.clone()];
    // Nothing is re-pointed: no replication user is needed.
    let steps = number(actions, 4, &nodes, "");
    Ok(Plan {
        cluster: survey.cluster.clone(),
        kind: Kind::Dual,
        skip_server: new.server_id,
        old_primary: old,
        new_primary: new,
        nodes,
        steps,
        warnings,
        checks,
        candidates: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::candidates::tests::get;
    use crate::topology::instance::Role;
    use crate::topology::plan::tests::{healthy, settings, survey};

    /// h:1 (active, dc1) and h:2 (passive) replicate from each other; h:3
    /// and h:4 are replicas of h:1.
    fn dual() -> Topology {
        let mut t = healthy();
        t.co_primary = Some("h:2".into());
        let back = get(&mut t, 2).replication.clone().map(|mut r| {
            r.source_port = 2;
            r.source_server_id = Some(2);
            r
        });
        get(&mut t, 1).replication = back;
        get(&mut t, 2).role = Role::IntermediatePrimary;
        t
    }

    #[test]
    fn an_active_passive_pair() {
        let t = dual();
        let p = pair(&t).unwrap();
        assert_eq!((p.active.addr(), p.passive.addr()), ("h:1".into(), "h:2".into()));
        let plan = plan(&survey(dual()), &settings()).unwrap();
        let text = plan.describe();
        assert!(text.starts_with("dual-primary switch of shop: active h:1 -> passive h:2\n"), "{text}");
        assert!(text.contains("  1. h:1: SET GLOBAL read_only = ON"), "{text}");
        assert!(text.contains("  5. h:2: SET GLOBAL read_only = OFF: it takes the writes"), "{text}");
        assert!(text.contains(
            "  6. verify: h:2 writable; h:1 read_only; h:1 replicates from h:2, h:2 replicates from h:1"
        ));
        assert!(
            !text.contains("CHANGE MASTER") && !text.contains("RESET SLAVE"),
            "nothing re-pointed: {text}"
        );
        assert_eq!(plan.steps.iter().filter(|s| !s.after_point_of_no_return).count(), 4);
        assert_eq!(plan.skip_server, Some(2), "the passive's own GTIDs are not waited for");
        assert!(plan.checks.iter().all(|c| c.name != "candidate"));
    }

    #[test]
    fn refused_shapes() {
        let mut t = dual();
        get(&mut t, 2).read_only = Some(false);
        assert!(pair(&t).unwrap_err().starts_with("both h:1 and h:2 are writable"));
        let mut t = dual();
        get(&mut t, 1).read_only = Some(true);
        assert!(pair(&t).unwrap_err().starts_with("neither h:1 nor h:2 is writable"));
        let mut t = dual();
        get(&mut t, 1).replication.as_mut().unwrap().io_running = "Connecting".into();
        assert_eq!(
            pair(&t).unwrap_err(),
            "h:1's replication from h:2 is not running (IO/SQL Connecting/Yes): the pair must replicate both ways"
        );
        let mut t = dual();
        get(&mut t, 1).replication = None;
        assert_eq!(pair(&t).unwrap_err(), "h:1 does not replicate from its peer h:2");
        let e = plan(&survey(healthy()), &settings()).unwrap_err();
        assert!(e.reason.starts_with("h:1 is not one of a dual-primary pair"), "{e}");
        // Discovery takes the writable one as the primary; a pair found
        // the other way round is judged the same.
        let mut t = dual();
        get(&mut t, 1).read_only = Some(true);
        get(&mut t, 2).read_only = Some(false);
        let p = pair(&t).unwrap();
        assert_eq!(p.active.addr(), "h:2");
    }
}
