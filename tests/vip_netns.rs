//! `gapless vip` in network namespaces the test makes itself, never on the
//! machine's own interfaces (tests/common/netns.rs): hosts hostA and hostB
//! and a client on one bridge.

mod common;

use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::gapless;
use common::netns::{in_netns, ip, netns_here, Lan};

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
    assert_moved_to_b(&lan, &run, &from, &to);

    // A second run changes nothing and succeeds.
    let again = gapless_vip(&["move", "--vip", &vip, "--dev", "eth0", "--from", &from, "--to", &to]);
    again.assert_code(0);
    again.assert_line(&["ok ", &from, "nothing to remove"]);
    again.assert_line(&["ok ", &to, &format!("already held {vip}/32 on eth0")]);
}

/// `run` moved the LAN's VIP from hostA (`from`) to hostB (`to`): every
/// step said so, A no longer holds it, B does, and the client, before it
/// sent anything (so only the gratuitous ARP can have told it), has B's
/// MAC for it and reaches B's listener.
fn assert_moved_to_b(lan: &Lan, run: &Run, from: &str, to: &str) {
    let vip = lan.vip();
    run.assert_code(0);
    run.assert_line(&["ok ", from, &format!("removed {vip}/32 from eth0")]);
    run.assert_line(&["ok ", to, &format!("nothing answers for {vip}")]);
    run.assert_line(&["ok ", to, &format!("added {vip}/32 to eth0")]);
    run.assert_line(&["ok ", to, "gratuitous ARP"]);
    run.assert_line(&["ok ", to, &format!("holds {vip} on eth0")]);
    run.assert_line(&["ok ", &format!("done: {vip} moved from {from} to {to}")]);
    assert!(!run.stdout.contains("WARN") && !run.stdout.contains("FAIL"), "{}", run.stdout);
    assert!(!lan.holds("hostA"), "A still holds the VIP");
    assert!(lan.holds("hostB"), "B does not hold the VIP");
    assert_eq!(lan.client_neighbour(), Some(lan.mac("hostB")), "the client did not learn B's MAC");
    assert_eq!(lan.fetch(), "B");
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

/// The VIP moves to a host reached over ssh, as between real machines: a
/// real sshd in hostB's namespace, and gapless in the client's, where it
/// checks sshd's host key against known_hosts and logs in with a key
/// (BatchMode). With a host key it does not know, ssh does not log in and
/// the move says why.
#[test]
fn a_move_to_a_host_reached_over_ssh() {
    if !netns_here("ssh") || !sshd_here() {
        return;
    }
    let lan = Lan::new("ssh", 74, HOSTS);
    let vip = lan.vip().to_string();
    lan.give_vip("hostA");
    lan.serve("hostA", "A");
    lan.serve("hostB", "B");
    assert_eq!(lan.fetch(), "A");
    let sshd = Sshd::start(&lan, "hostB", lan.addr(2));

    let (from, to) = (lan.spec("hostA"), format!("ssh:root@{}", lan.addr(2)));
    let run = sshd.gapless_vip(
        &lan,
        "client",
        &["move", "--vip", &vip, "--dev", "eth0", "--from", &from, "--to", &to],
    );
    assert_moved_to_b(&lan, &run, &from, &to);

    // Another host key in known_hosts: refused, and nothing changes.
    sshd.know_another_host_key(lan.addr(2));
    let run = sshd.gapless_vip(&lan, "client", &["del", "--vip", &vip, "--dev", "eth0", "--on", &to]);
    assert_ne!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("Host key verification failed") && said.contains("ssh could not connect or log in"),
        "{said}"
    );
    assert!(lan.holds("hostB"), "the VIP stays where it was");
}

/// True when sshd is installed; a loud skip outside CI, a failure in CI.
fn sshd_here() -> bool {
    if std::path::Path::new(SSHD).exists() {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "{SSHD} is needed: apt-get install openssh-server"
    );
    eprintln!("SKIPPED (not passed): {SSHD} is not installed (openssh-server)");
    false
}

const SSHD: &str = "/usr/sbin/sshd";

/// A real sshd listening in one namespace of a LAN, with keys made for the
/// test, and a home for root whose `.ssh` holds the client key and sshd's
/// host key as known: gapless runs with it mounted over /root, in a mount
/// namespace of its own, so the machine's /root/.ssh is not touched.
struct Sshd {
    dir: PathBuf,
    child: Child,
}

impl Sshd {
    fn start(lan: &Lan, role: &str, addr: Ipv4Addr) -> Sshd {
        let dir = std::env::temp_dir().join(format!("gapless-sshd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ssh = dir.join("home/.ssh");
        std::fs::create_dir_all(&ssh).expect("home");
        let keygen = |path: &PathBuf| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .output()
                .expect("ssh-keygen");
            assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
        };
        keygen(&dir.join("host_key"));
        keygen(&ssh.join("id_ed25519"));
        std::fs::copy(ssh.join("id_ed25519.pub"), dir.join("authorized_keys")).expect("authorized_keys");
        let host_key = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
        std::fs::write(ssh.join("known_hosts"), format!("{addr} {host_key}")).expect("known_hosts");
        let config = format!(
            "ListenAddress {addr}\nPort 22\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).expect("sshd_config");
        // sshd's privilege separation directory, which the package's
        // service would make.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let log = std::fs::File::create(dir.join("sshd.log")).expect("sshd.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &lan.ns(role), SSHD, "-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let sshd = Sshd { dir, child };
        let started = Instant::now();
        let client = lan.ns("client");
        while !in_netns(&client, move || {
            TcpStream::connect_timeout(&(addr, 22).into(), Duration::from_secs(1)).is_ok()
        }) {
            assert!(started.elapsed() < Duration::from_secs(15), "sshd did not listen: {}", sshd.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        sshd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// Puts a key sshd does not have in known_hosts for `addr`.
    fn know_another_host_key(&self, addr: Ipv4Addr) {
        let other = self.dir.join("other_key");
        let out =
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).output();
        assert!(out.is_ok_and(|o| o.status.success()), "ssh-keygen");
        let key = std::fs::read_to_string(other.with_extension("pub")).expect("other key");
        std::fs::write(self.dir.join("home/.ssh/known_hosts"), format!("{addr} {key}")).expect("known_hosts");
    }

    /// `gapless vip ARGS` in `role`'s namespace, with the test's home as
    /// /root.
    fn gapless_vip(&self, lan: &Lan, role: &str, args: &[&str]) -> Run {
        let mut argv = vec!["vip"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--timeout", "20"]);
        let out = Command::new("ip")
            .args(["netns", "exec", &lan.ns(role), "unshare", "--mount", "--propagation", "private"])
            .args(["sh", "-c", "mount --bind \"$0\" /root && exec \"$@\""])
            .arg(self.dir.join("home"))
            .arg(env!("CARGO_BIN_EXE_gapless"))
            .args(&argv)
            .output()
            .expect("run gapless");
        let run = Run::new(out, &argv);
        if run.code != Some(0) {
            eprintln!("sshd log:\n{}", self.log());
        }
        run
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
