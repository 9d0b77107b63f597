//! The decider, transition by transition, on a made-up clock.

use std::time::{Duration, Instant};

use super::decide::*;

const DEAD_AFTER: Duration = Duration::from_secs(10);
const SILENCE: Duration = Duration::from_secs(3);
const INTERVAL: Duration = Duration::from_secs(1);
const R1: &str = "127.0.0.1:3307";
const R2: &str = "127.0.0.1:3308";

/// A decider and a clock that only moves forward when told.
struct World {
    d: Decider,
    t0: Instant,
    now: Instant,
}

impl World {
    fn new() -> World {
        let config =
            DeciderConfig { dead_after: DEAD_AFTER, stream_silence: SILENCE, sample_interval: INTERVAL };
        let t0 = Instant::now();
        World { d: Decider::new(config), t0, now: t0 }
    }

    fn at(&mut self, ms: u64) -> &mut Self {
        self.now = self.t0 + Duration::from_millis(ms);
        self
    }

    fn stream(&mut self, connected: bool, silent_ms: Option<u64>) -> &mut Self {
        let silent_for = silent_ms.map(Duration::from_millis);
        self.d.observe(self.now, Observation::Stream { connected, silent_for });
        self
    }

    /// A probe that took `took_ms` and ended now.
    fn probe(&mut self, took_ms: u64, result: Result<(), ProbeFailure>) -> &mut Self {
        let started = self.now - Duration::from_millis(took_ms);
        self.d.observe(self.now, Observation::Probe { started, result });
        self
    }

    fn fail(&mut self, stage: Stage) -> &mut Self {
        self.probe(0, Err(failure(stage)))
    }

    fn replica(&mut self, addr: &str, seen: ReplicaSeen) -> &mut Self {
        self.d.observe(self.now, Observation::Replica { addr: addr.into(), seen });
        self
    }

    fn known(&mut self, addr: &str) -> &mut Self {
        self.d.observe(self.now, Observation::ReplicaKnown { addr: addr.into() });
        self
    }

    fn decide(&mut self) -> Option<Change> {
        self.d.decide(self.now)
    }

    fn state(&mut self) -> Option<PrimaryState> {
        self.decide();
        self.d.verdict().map(|v| v.state)
    }

    fn reason(&self) -> String {
        self.d.verdict().map(|v| v.reason.clone()).unwrap_or_default()
    }

    /// Probes failing every second from `from_ms` to `to_ms` (inclusive).
    fn failing(&mut self, from_ms: u64, to_ms: u64) -> &mut Self {
        let mut t = from_ms;
        while t <= to_ms {
            self.at(t).fail(Stage::Connect);
            t += 1000;
        }
        self
    }
}

fn failure(stage: Stage) -> ProbeFailure {
    ProbeFailure { stage, error: "db1:3306: connection refused".into() }
}

fn replicating(heartbeats: u64) -> ReplicaSeen {
    ReplicaSeen::Status(ReplicaSample {
        io: IoThread::Yes,
        io_error: None,
        heartbeat_period: Some(Duration::from_secs(1)),
        heartbeats: Some(heartbeats),
        read_position: Some(("mariadb-bin.000001".into(), 330)),
    })
}

fn connecting() -> ReplicaSeen {
    ReplicaSeen::Status(ReplicaSample {
        io: IoThread::Connecting,
        io_error: Some("error 2003: Can't connect to server".into()),
        heartbeat_period: Some(Duration::from_secs(1)),
        heartbeats: Some(8),
        read_position: Some(("mariadb-bin.000001".into(), 330)),
    })
}

fn with(io: IoThread, io_error: Option<&str>, period: Option<u64>) -> ReplicaSeen {
    ReplicaSeen::Status(ReplicaSample {
        io,
        io_error: io_error.map(Into::into),
        heartbeat_period: period.map(Duration::from_secs),
        heartbeats: Some(1),
        read_position: None,
    })
}

use PrimaryState::{Alive, Dead, Unreachable};

#[test]
fn nothing_to_go_on_means_no_verdict() {
    let mut w = World::new();
    assert_eq!(w.decide(), None);
    assert!(w.d.wants_checks(), "an unobserved stream is not up");
    w.stream(false, None);
    assert_eq!(w.state(), None, "the stream is down, but nothing was probed yet");
    assert!(w.d.wants_checks());
    assert_eq!(w.d.changes(), 0);
    assert!(w.d.verdict().is_none());
}

#[test]
fn a_streaming_primary_is_alive_and_not_probed() {
    let mut w = World::new();
    w.stream(true, Some(0));
    let change = w.decide().expect("first judgement");
    assert_eq!(change.previous, None);
    assert_eq!(change.number, 1);
    assert_eq!(change.verdict.state, Alive);
    assert_eq!(change.verdict.reason, "streaming");
    assert_eq!(change.verdict.since, w.t0);
    assert!(!w.d.wants_checks());
    // Connected before the first event: up too.
    let mut w = World::new();
    assert_eq!(w.stream(true, None).state(), Some(Alive));
}

#[test]
fn the_same_state_is_no_change_and_keeps_its_since() {
    let mut w = World::new();
    w.stream(true, Some(0)).decide();
    assert_eq!(w.at(5_000).stream(true, Some(1_000)).decide(), None);
    assert_eq!(w.d.verdict().unwrap().since, w.t0);
    assert_eq!(w.d.changes(), 1);
}

#[test]
fn stream_silence_edges() {
    let mut w = World::new();
    // Exactly the silence allowed: still up.
    assert_eq!(w.stream(true, Some(3_000)).state(), Some(Alive));
    assert!(!w.d.wants_checks());
    // A millisecond more: down, and probing starts.
    w.at(1).stream(true, Some(3_001));
    assert!(w.d.wants_checks());
    assert_eq!(w.state(), Some(Alive), "no probe yet: the judgement stands");
    assert_eq!(w.at(2).fail(Stage::Login).state(), Some(Unreachable));
}

#[test]
fn a_probe_answer_while_the_stream_is_down_is_alive() {
    let mut w = World::new();
    w.stream(false, None).probe(5, Ok(()));
    assert_eq!(w.state(), Some(Alive));
    assert!(w.reason().contains("answers probes"), "{}", w.reason());
    assert!(w.d.wants_checks(), "keeps probing while the stream is down");
}

#[test]
fn alive_unreachable_dead_alive_without_replicas() {
    let mut w = World::new();
    w.stream(true, Some(0)).decide();
    w.at(1_000).stream(false, None).fail(Stage::Connect);
    let change = w.decide().expect("to unreachable");
    assert_eq!((change.previous, change.verdict.state, change.number), (Some(Alive), Unreachable, 2));
    assert_eq!(change.verdict.since, w.t0 + Duration::from_secs(1));
    assert!(change.verdict.reason.contains("TCP connect failed: db1:3306: connection refused"), "{change:?}");
    assert!(change.verdict.reason.contains("dead after 10 s"), "{change:?}");

    // Failing up to 9.999 s after the first failure: still unreachable.
    w.at(10_999).fail(Stage::Connect);
    assert_eq!(w.decide(), None);
    assert!(w.reason().starts_with("no answer for 9.9 s"), "{}", w.reason());
    // At 10 s exactly: dead.
    w.at(11_000).fail(Stage::Connect);
    let change = w.decide().expect("to dead");
    assert_eq!((change.previous, change.verdict.state, change.number), (Some(Unreachable), Dead, 3));
    assert!(change.verdict.reason.contains("no replicas known"), "{change:?}");
    assert_eq!(change.verdict.since, w.t0 + Duration::from_secs(11));

    // Back: one answer is enough.
    w.at(12_000).probe(3, Ok(()));
    let change = w.decide().expect("to alive");
    assert_eq!((change.previous, change.verdict.state, change.number), (Some(Dead), Alive, 4));
    // And the failures start over.
    w.at(13_000).fail(Stage::Query);
    assert_eq!(w.state(), Some(Unreachable));
    w.at(14_000).fail(Stage::Query);
    assert_eq!(w.state(), Some(Unreachable), "only 1 s of failures since the answer");
    assert!(w.reason().contains("SELECT 1 failed"), "{}", w.reason());
}

#[test]
fn dead_is_measured_from_the_start_of_the_first_failed_probe_to_the_end_of_the_last() {
    let mut w = World::new();
    w.stream(false, None);
    // The first probe started at 0 and took 2 s to time out.
    w.at(2_000).probe(2_000, Err(failure(Stage::Login)));
    assert_eq!(w.state(), Some(Unreachable));
    // The second ended at 10 s: 10 s of failures.
    w.at(10_000).probe(2_000, Err(failure(Stage::Login)));
    assert_eq!(w.state(), Some(Dead));
}

#[test]
fn one_long_failure_is_not_repeated_failures() {
    let mut w = World::new();
    w.stream(false, None);
    // A single probe that hung for longer than dead_after.
    w.at(30_000).probe(30_000, Err(failure(Stage::Login)));
    assert_eq!(w.state(), Some(Unreachable));
    assert!(w.reason().starts_with("no answer for 30 s"), "{}", w.reason());
    w.at(31_000).fail(Stage::Login);
    assert_eq!(w.state(), Some(Dead));
}

#[test]
fn the_clock_does_not_move_on_its_own() {
    let mut w = World::new();
    w.stream(false, None).fail(Stage::Connect).at(0).fail(Stage::Connect);
    // Deciding much later, with no new probe, does not make it dead: only
    // failures count, not the wait.
    w.at(60_000);
    assert_eq!(w.state(), Some(Unreachable));
}

#[test]
fn observations_out_of_order_do_not_panic_or_shrink_the_failure() {
    let mut w = World::new();
    w.stream(false, None);
    w.at(10_000).fail(Stage::Connect);
    // A probe that ran from 0 to 1 s but is reported after the one that
    // ended at 10 s: the failures span 10 s.
    w.at(1_000).probe(1_000, Err(failure(Stage::Connect)));
    assert_eq!(w.state(), Some(Dead), "{}", w.reason());
    // A probe whose start is after its end is taken as instant.
    let mut w = World::new();
    w.stream(false, None);
    w.d.observe(
        w.t0,
        Observation::Probe { started: w.t0 + Duration::from_secs(5), result: Err(failure(Stage::Connect)) },
    );
    assert_eq!(w.state(), Some(Unreachable));
    assert!(w.reason().starts_with("no answer for 0 s"), "{}", w.reason());
}

#[test]
fn the_stream_coming_back_is_alive_and_forgets_the_failures() {
    let mut w = World::new();
    w.stream(false, None).failing(0, 10_000);
    assert_eq!(w.state(), Some(Dead));
    w.at(10_500).stream(true, Some(0));
    assert_eq!(w.state(), Some(Alive));
    assert_eq!(w.reason(), "streaming");
    // Down again: a fresh count, so not dead at once.
    w.at(11_000).stream(false, None).fail(Stage::Connect);
    w.at(12_000).fail(Stage::Connect);
    assert_eq!(w.state(), Some(Unreachable));
}

#[test]
fn a_stream_up_wins_over_a_failed_probe_seen_after_it() {
    let mut w = World::new();
    w.stream(true, Some(0)).fail(Stage::Connect).at(20_000).fail(Stage::Connect);
    assert_eq!(w.state(), Some(Alive));
}

#[test]
fn a_replica_that_still_replicates_keeps_it_unreachable() {
    let mut w = World::new();
    w.stream(false, None);
    for (i, t) in (0..=20_000).step_by(1_000).enumerate() {
        w.at(t).fail(Stage::Connect).replica(R1, replicating(i as u64));
    }
    assert_eq!(w.state(), Some(Unreachable));
    let reason = w.reason();
    assert!(reason.starts_with("unreachable from the sidecar: replica 127.0.0.1:3307"), "{reason}");
    assert!(reason.contains("still replicates"), "{reason}");
    assert!(reason.contains("no answer for 20 s"), "{reason}");
    let views = w.d.replicas();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].testimony, Testimony::Replicates);
    assert_eq!(views[0].io.as_deref(), Some("Yes"));
    // Two of them: the plural.
    w.at(21_000).fail(Stage::Connect).replica(R1, replicating(100)).replica(R2, replicating(1));
    w.decide();
    assert!(w.reason().contains("replicas 127.0.0.1:3307"), "{}", w.reason());
    assert!(w.reason().contains("still replicate;"), "{}", w.reason());
}

#[test]
fn a_replica_whose_io_thread_reconnects_confirms_death() {
    let mut w = World::new();
    w.stream(false, None).failing(0, 9_000);
    w.at(9_000).replica(R1, connecting());
    assert_eq!(w.state(), Some(Unreachable), "not yet 10 s");
    w.at(10_000).fail(Stage::Connect).replica(R1, connecting());
    assert_eq!(w.state(), Some(Dead));
    let reason = w.reason();
    assert!(
        reason.contains("no replica hears from it: 127.0.0.1:3307 (IO thread Connecting: error 2003"),
        "{reason}"
    );
    assert_eq!(w.d.replicas()[0].testimony, Testimony::CannotReplicate);
}

#[test]
fn a_paused_primary_dies_once_its_replica_hears_nothing_for_two_periods() {
    // Heartbeat period 1 s, sampled every second: the window is 3 s.
    let mut w = World::new();
    w.stream(false, None);
    w.at(0).fail(Stage::Login).replica(R1, replicating(5));
    // The count never moves again (SIGSTOP): the IO thread still says Yes.
    for t in [1_000, 2_000, 3_000] {
        w.at(t).fail(Stage::Login).replica(R1, replicating(5));
        assert_eq!(w.state(), Some(Unreachable), "at {t} ms");
    }
    // 3 s without a change is still within the window...
    w.at(10_000).fail(Stage::Login);
    w.at(3_000).replica(R1, replicating(5));
    assert_eq!(w.state(), Some(Unreachable), "{}", w.reason());
    assert_eq!(w.d.replicas()[0].testimony, Testimony::Replicates);
    // ...a millisecond more is not.
    w.at(3_001).replica(R1, replicating(5));
    assert_eq!(w.state(), Some(Dead), "{}", w.reason());
    let reason = w.reason();
    assert!(
        reason.contains("IO thread Yes, but nothing from the primary for 3 s (heartbeat period 1 s)"),
        "{reason}"
    );
}

#[test]
fn a_moving_read_position_counts_as_hearing_the_primary() {
    let sample = |pos: u64| {
        ReplicaSeen::Status(ReplicaSample {
            io: IoThread::Yes,
            io_error: None,
            heartbeat_period: Some(Duration::from_secs(1)),
            heartbeats: None,
            read_position: Some(("b.000001".into(), pos)),
        })
    };
    let mut w = World::new();
    w.stream(false, None).failing(0, 10_000);
    for (i, t) in (0..=10_000).step_by(2_000).enumerate() {
        w.at(t).replica(R1, sample(i as u64 * 100));
    }
    assert_eq!(w.state(), Some(Unreachable));
    // A new file at the same position is a change too.
    w.at(11_000).fail(Stage::Connect).replica(
        R1,
        ReplicaSeen::Status(ReplicaSample {
            io: IoThread::Yes,
            io_error: None,
            heartbeat_period: Some(Duration::from_secs(1)),
            heartbeats: None,
            read_position: Some(("b.000002".into(), 500)),
        }),
    );
    w.at(14_000).replica(R1, sample(500));
    assert_eq!(w.state(), Some(Unreachable), "{}", w.reason());
    w.at(14_001).replica(R1, sample(500));
    assert_eq!(w.state(), Some(Unreachable), "file changed back at 14 s: that is a change too");
    w.at(17_002).fail(Stage::Connect).replica(R1, sample(500));
    assert_eq!(w.state(), Some(Dead), "{}", w.reason());
}

#[test]
fn replicas_without_a_heartbeat_period_are_trusted_on_their_io_thread() {
    for period in [None, Some(0)] {
        let mut w = World::new();
        w.stream(false, None).failing(0, 30_000);
        for t in (0..=30_000).step_by(1_000) {
            w.at(t).replica(R1, with(IoThread::Yes, None, period));
        }
        assert_eq!(w.state(), Some(Unreachable), "{period:?}");
        assert!(w.reason().contains("no heartbeat period"), "{}", w.reason());
    }
}

#[test]
fn an_unreachable_replica_proves_nothing() {
    let mut w = World::new();
    w.stream(false, None).failing(0, 20_000);
    w.at(20_000).replica(R1, ReplicaSeen::Unreachable("127.0.0.1:3307: connection refused".into()));
    assert_eq!(w.state(), Some(Unreachable));
    let reason = w.reason();
    assert!(reason.contains("no replica could confirm it is dead"), "{reason}");
    assert!(reason.contains("the sidecar may be the one cut off"), "{reason}");
    assert!(reason.contains("127.0.0.1:3307 (127.0.0.1:3307: connection refused)"), "{reason}");
    assert_eq!(w.d.replicas()[0].testimony, Testimony::ProvesNothing);
    assert_eq!(w.d.replicas()[0].io, None);

    // One that cannot replicate beside it is enough for dead.
    w.at(21_000).fail(Stage::Connect).replica(R2, connecting());
    assert_eq!(w.state(), Some(Dead));
    assert!(w.reason().contains("not counted: 127.0.0.1:3307"), "{}", w.reason());
}

#[test]
fn known_but_unchecked_replicas_prove_nothing() {
    let mut w = World::new();
    w.known(R1).stream(false, None).failing(0, 10_000);
    assert_eq!(w.state(), Some(Unreachable));
    assert!(w.reason().contains("127.0.0.1:3307 (not checked yet)"), "{}", w.reason());
    // Made known twice: still one.
    w.known(R1);
    assert_eq!(w.d.replicas().len(), 1);
}

#[test]
fn replicas_that_replicate_elsewhere_or_were_stopped_by_hand_prove_nothing() {
    for seen in [
        ReplicaSeen::NotAReplica("replicates from another primary (not server id 1)".into()),
        with(IoThread::No, None, Some(1)),
        with(IoThread::Other("Preparing".into()), None, Some(1)),
    ] {
        let mut w = World::new();
        w.stream(false, None).failing(0, 10_000);
        w.at(10_000).replica(R1, seen.clone());
        assert_eq!(w.state(), Some(Unreachable), "{seen:?}");
        assert_eq!(w.d.replicas()[0].testimony, Testimony::ProvesNothing, "{seen:?}");
    }
    // Stopped by an error: it cannot replicate.
    let mut w = World::new();
    w.stream(false, None).failing(0, 10_000);
    w.at(10_000).replica(R1, with(IoThread::No, Some("error 1236: binlog purged"), Some(1)));
    assert_eq!(w.state(), Some(Dead));
    assert!(w.reason().contains("IO thread stopped: error 1236"), "{}", w.reason());
}

#[test]
fn replicas_switch_the_verdict_both_ways() {
    let mut w = World::new();
    w.stream(false, None).failing(0, 10_000);
    w.at(10_000).replica(R1, connecting());
    assert_eq!(w.state(), Some(Dead));
    // The replica reconnects (the primary was only cut off from us and it).
    w.at(11_000).fail(Stage::Connect).replica(R1, replicating(9));
    let change = w.decide().expect("dead to unreachable");
    assert_eq!((change.previous, change.verdict.state), (Some(Dead), Unreachable));
    // Its replica becomes unreachable too: nobody can confirm.
    w.at(12_000).fail(Stage::Connect).replica(R1, ReplicaSeen::Unreachable("timeout".into()));
    assert_eq!(w.state(), Some(Unreachable));
    assert!(w.reason().contains("no replica could confirm"), "{}", w.reason());
    // Reached again, still silent since 11 s: after the window, dead.
    w.at(15_001).fail(Stage::Connect).replica(R1, replicating(9));
    assert_eq!(w.state(), Some(Dead), "{}", w.reason());
}

#[test]
fn replica_history_starts_over_when_the_stream_is_back() {
    let mut w = World::new();
    w.stream(false, None).failing(0, 10_000);
    w.at(0).replica(R1, replicating(5));
    w.at(10_000).replica(R1, replicating(5));
    assert_eq!(w.state(), Some(Dead));
    w.at(11_000).stream(true, Some(0));
    assert_eq!(w.state(), Some(Alive));
    assert_eq!(w.d.replicas()[0].testimony, Testimony::ProvesNothing, "not checked since");
    assert_eq!(w.d.replicas()[0].detail, "not checked yet");
    // Down again much later with the same old count: its first sample
    // counts as fresh, not as 100 s of silence.
    w.at(100_000).stream(false, None).fail(Stage::Connect).replica(R1, replicating(5));
    w.at(110_000).fail(Stage::Connect).replica(R1, replicating(6));
    assert_eq!(w.state(), Some(Unreachable));
}

#[test]
fn every_transition_between_the_three_states() {
    // (from, to) through the observations that cause it.
    let mut w = World::new();
    let mut seen = Vec::new();
    let mut note = |c: Option<Change>| {
        if let Some(c) = c {
            seen.push((c.previous, c.verdict.state));
        }
    };
    w.stream(true, Some(0));
    note(w.decide()); // none -> alive
    w.at(1_000).stream(false, None).fail(Stage::Connect);
    note(w.decide()); // alive -> unreachable
    w.at(2_000).probe(1, Ok(()));
    note(w.decide()); // unreachable -> alive
    w.at(3_000).fail(Stage::Connect);
    note(w.decide()); // alive -> unreachable
    w.failing(4_000, 13_000);
    note(w.decide()); // unreachable -> dead
    w.at(14_000).stream(true, Some(0));
    note(w.decide()); // dead -> alive
    w.at(15_000).stream(false, None).failing(15_000, 25_000);
    w.at(25_000).replica(R1, connecting());
    note(w.decide()); // alive -> dead in one step (all evidence at once)
    w.at(26_000).fail(Stage::Connect).replica(R1, replicating(1));
    note(w.decide()); // dead -> unreachable
    assert_eq!(
        seen,
        [
            (None, Alive),
            (Some(Alive), Unreachable),
            (Some(Unreachable), Alive),
            (Some(Alive), Unreachable),
            (Some(Unreachable), Dead),
            (Some(Dead), Alive),
            (Some(Alive), Dead),
            (Some(Dead), Unreachable),
        ]
    );
    assert_eq!(w.d.changes(), 8);
}

#[test]
fn no_verdict_from_failures_alone_first_is_unreachable() {
    // The sidecar starts while the primary is down.
    let mut w = World::new();
    w.stream(false, None).fail(Stage::Connect);
    let change = w.decide().unwrap();
    assert_eq!((change.previous, change.verdict.state), (None, Unreachable));
    w.failing(1_000, 10_000);
    assert_eq!(w.state(), Some(Dead));
}

#[test]
fn durations_for_people() {
    assert_eq!(secs(Duration::ZERO), "0 s");
    assert_eq!(secs(Duration::from_millis(2_500)), "2.5 s");
    assert_eq!(secs(Duration::from_millis(2_599)), "2.5 s");
    assert_eq!(secs(Duration::from_secs(10)), "10 s");
    assert!(!secs(Duration::MAX).is_empty());
}

#[test]
fn names_of_states_and_stages() {
    assert_eq!(PrimaryState::ALL.map(PrimaryState::as_str), ["alive", "unreachable", "dead"]);
    assert_eq!(serde_json::to_string(&Dead).unwrap(), "\"dead\"");
    assert_eq!(serde_json::to_string(&Testimony::CannotReplicate).unwrap(), "\"cannot_replicate\"");
    assert_eq!(Stage::Connect.to_string(), "TCP connect");
    assert_eq!(failure(Stage::Login).to_string(), "login failed: db1:3306: connection refused");
    assert_eq!(IoThread::parse(" yes "), IoThread::Yes);
    assert_eq!(IoThread::parse("Connecting"), IoThread::Connecting);
    assert_eq!(IoThread::parse("NO"), IoThread::No);
    assert_eq!(IoThread::parse("Preparing").to_string(), "Preparing");
}
