//! `gapless vip` in network namespaces the test makes itself, never on the
//! machine's own interfaces (tests/common/netns.rs): hosts hostA and hostB
//! and a client on one bridge.

mod common;

use std::process::Output;

use common::gapless;
use common::netns::{ip, netns_here, Lan};

/// The hosts of each test's LAN.
const HOSTS: &[&str] = &["hostA", "hostB", "client"];

/// `gapless vip ARGS`, with a deadline that keeps a hung test short.
fn gapless_vip(args: &[&str]) -> Run {
    let mut argv = vec!["vip"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--timeout", "20"]);
    Run::new(gapless().args(&argv).output().expect("run gapless"), &argv)
}

/// A finished `gapless` run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn new(out: Output, argv: &[&str]) -> Run {
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("$ gapless {}\n{}{}(exit {:?})", argv.join(" "), run.stdout, run.stderr, run.code);
        run
    }

    fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "stdout:\n{}stderr:\n{}", self.stdout, self.stderr);
    }

    /// Panics unless some stdout line contains every one of `parts`.
    fn assert_line(&self, parts: &[&str]) {
        assert!(
            self.stdout.lines().any(|l| parts.iter().all(|p| l.contains(p))),
            "no stdout line with {parts:?}:\n{}",
            self.stdout
        );
    }
}

/// The VIP moves from A to B: A no longer holds it, B does, the client's
/// neighbour table has B's MAC (gratuitous ARP replaced A's, which the
/// client had cached) and the client reaches B's listener through it.
#[test]
fn a_move_takes_the_vip_and_neighbours_learn_the_new_owner() {
    if !netns_here("mv") {
        return;
    }
    let lan = Lan::new("mv", 71, HOSTS);
    let vip = lan.vip().to_string();
    lan.give_vip("hostA");
    lan.serve("hostA", "A");
    lan.serve("hostB", "B");
    assert_eq!(lan.fetch(), "A");
    assert_eq!(lan.client_neighbour(), Some(lan.mac("hostA")), "the client cached A's MAC");

    let (from, to) = (lan.spec("hostA"), lan.spec("hostB"));
    let run = gapless_vip(&["move", "--vip", &vip, "--dev", "eth0", "--from", &from, "--to", &to]);
    run.assert_code(0);
    run.assert_line(&["ok ", &from, &format!("removed {vip}/32 from eth0")]);
    run.assert_line(&["ok ", &to, &format!("nothing answers for {vip}")]);
    run.assert_line(&["ok ", &to, &format!("added {vip}/32 to eth0")]);
    run.assert_line(&["ok ", &to, "gratuitous ARP"]);
    run.assert_line(&["ok ", &to, &format!("holds {vip} on eth0")]);
    run.assert_line(&["ok ", &format!("done: {vip} moved from {from} to {to}")]);
    assert!(!run.stdout.contains("WARN") && !run.stdout.contains("FAIL"), "{}", run.stdout);

    assert!(!lan.holds("hostA"), "A still holds the VIP");
    assert!(lan.holds("hostB"), "B does not hold the VIP");
    // Before the client sends anything: only the gratuitous ARP can have
    // told it.
    assert_eq!(lan.client_neighbour(), Some(lan.mac("hostB")), "the client did not learn B's MAC");
    assert_eq!(lan.fetch(), "B");

    // A second run changes nothing and succeeds.
    let again = gapless_vip(&["move", "--vip", &vip, "--dev", "eth0", "--from", &from, "--to", &to]);
    again.assert_code(0);
    again.assert_line(&["ok ", &from, "nothing to remove"]);
    again.assert_line(&["ok ", &to, &format!("already held {vip}/32 on eth0")]);
}

/// The old primary is dead: its link is down (it holds the VIP but can't
/// answer) and its host can't be reached (--from names a namespace that
/// does not exist). The move goes on, says so, and the client reaches B.
#[test]
fn a_move_goes_on_when_the_old_host_is_unreachable() {
    if !netns_here("dead") {
        return;
    }
    let lan = Lan::new("dead", 72, HOSTS);
    let vip = lan.vip().to_string();
    lan.give_vip("hostA");
    lan.serve("hostB", "B");
    ip(&["-n", &lan.ns("hostA"), "link", "set", "eth0", "down"]);

    let (gone, to) = (lan.spec("gone"), lan.spec("hostB"));
    let run = gapless_vip(&["move", "--vip", &vip, "--dev", "eth0", "--from", &gone, "--to", &to]);
    run.assert_code(0);
    run.assert_line(&[
        "WARN",
        &gone,
        &format!("could not remove {vip} from eth0"),
        "Cannot open network namespace",
    ]);
    run.assert_line(&["ok ", &to, &format!("nothing answers for {vip}")]);
    run.assert_line(&["ok ", &format!("done: {vip} moved from {gone} to {to}"), "with 1 warning"]);
    assert!(lan.holds("hostB"));
    assert_eq!(lan.fetch(), "B");
    assert_eq!(lan.client_neighbour(), Some(lan.mac("hostB")));
}

/// A still holds the VIP and answers for it: a move that does not remove
/// it there (no --from, or --from naming another host) is refused and B
/// is left without it; `vip add` is refused the same way; --force goes
/// on and says so; `vip del` removes it.
#[test]
fn a_move_is_refused_while_the_vip_still_answers() {
    if !netns_here("dup") {
        return;
    }
    let lan = Lan::new("dup", 73, HOSTS);
    let vip = lan.vip().to_string();
    lan.give_vip("hostA");
    let (a, b, client) = (lan.spec("hostA"), lan.spec("hostB"), lan.spec("client"));
    let mac_a = lan.mac("hostA");

    let run = gapless_vip(&["move", "--vip", &vip, "--dev", "eth0", "--to", &b]);
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!("{vip} still answers")) && run.stderr.contains(&mac_a),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    run.assert_line(&["FAIL", "still answers", &mac_a]);
    assert!(!lan.holds("hostB"), "B got the VIP although A answers for it");

    let wrong = gapless_vip(&["move", "--vip", &vip, "--dev", "eth0", "--from", &client, "--to", &b]);
    wrong.assert_code(1);
    wrong.assert_line(&["ok ", &client, "nothing to remove"]);
    assert!(wrong.stderr.contains("still answers"), "{}", wrong.stderr);
    assert!(!lan.holds("hostB"));

    let add = gapless_vip(&["add", "--vip", &vip, "--dev", "eth0", "--on", &b]);
    add.assert_code(1);
    assert!(add.stderr.contains("still answers"), "{}", add.stderr);
    assert!(!lan.holds("hostB"));

    let forced = gapless_vip(&["move", "--vip", &vip, "--dev", "eth0", "--to", &b, "--force"]);
    forced.assert_code(0);
    forced.assert_line(&["WARN", &b, "still answers", &mac_a, "going on because of --force"]);
    forced.assert_line(&["ok ", &b, &format!("added {vip}/32 to eth0")]);
    assert!(lan.holds("hostB") && lan.holds("hostA"), "--force adds it without touching A");

    let del = gapless_vip(&["del", "--vip", &vip, "--dev", "eth0", "--on", &a]);
    del.assert_code(0);
    del.assert_line(&["ok ", &a, &format!("removed {vip}/32 from eth0")]);
    del.assert_line(&["ok ", &a, "no longer holds"]);
    assert!(!lan.holds("hostA"));
}
