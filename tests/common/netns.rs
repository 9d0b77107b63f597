//! A LAN of network namespaces the test makes itself, never the machine's
//! own interfaces: a "switch" namespace holding a bridge, and one namespace
//! per host role, each with a veth (`eth0`) plugged into that bridge, on
//! 10.213.X.0/24. Names carry the process id, so parallel runs don't
//! clash; a guard deletes them all, even on panic.
//!
//! TCP listeners and clients are made by threads that enter a namespace
//! (setns), so nothing but ip and arping is needed.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

/// The namespaces of one test, deleted when it ends.
pub struct Lan {
    /// Prefix of every namespace name: `gv<pid><test>`.
    tag: String,
    /// X of 10.213.X.0/24.
    subnet: u8,
    /// The namespaces made so far, in order.
    made: Vec<String>,
}

/// The port the listeners answer on.
pub const PORT: u16 = 3306;

impl Lan {
    /// Makes the switch and one namespace per role, the n-th (from 0)
    /// at 10.213.`subnet`.(n+1) on its `eth0`, plugged into the bridge as
    /// `p<role>` in the switch namespace.
    pub fn new(test: &str, subnet: u8, roles: &[&str]) -> Lan {
        let mut lan = Lan { tag: format!("gv{}{test}", std::process::id()), subnet, made: Vec::new() };
        let switch = lan.ns("switch");
        lan.add_ns(&switch);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        for (role, last) in roles.iter().zip(1u8..) {
            let ns = lan.ns(role);
            lan.add_ns(&ns);
            let port = format!("p{role}");
            ip(&["-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &switch, "link", "set", &port, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            let cidr = format!("{}/24", lan.addr(last));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
        }
        lan
    }

    pub fn add_ns(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.made.push(name.to_string());
    }

    /// The namespace of `role`.
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    /// The host spec of `role`.
    pub fn spec(&self, role: &str) -> String {
        format!("netns:{}", self.ns(role))
    }

    pub fn addr(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, last)
    }

    /// The virtual IP.
    pub fn vip(&self) -> Ipv4Addr {
        self.addr(100)
    }

    /// Puts the VIP on `role` by hand (as the old primary had it).
    pub fn give_vip(&self, role: &str) {
        ip(&["-n", &self.ns(role), "addr", "add", &format!("{}/32", self.vip()), "dev", "eth0"]);
    }

    /// Whether `role` has the VIP on eth0.
    pub fn holds(&self, role: &str) -> bool {
        let out = ip(&["-n", &self.ns(role), "-o", "-4", "addr", "show", "dev", "eth0"]);
        out.split_whitespace().any(|w| w == format!("{}/32", self.vip()))
    }

    /// The MAC address of `role`'s eth0.
    pub fn mac(&self, role: &str) -> String {
        let out = ip(&["-n", &self.ns(role), "-o", "link", "show", "dev", "eth0"]);
        word_after(&out, "link/ether").unwrap_or_else(|| panic!("no MAC in {out}"))
    }

    /// The MAC the client's neighbour table has for the VIP, if any.
    pub fn client_neighbour(&self) -> Option<String> {
        let out = ip(&["-n", &self.ns("client"), "neigh", "show", &self.vip().to_string(), "dev", "eth0"]);
        word_after(&out, "lladdr")
    }

    /// Starts a TCP listener in `role` (on every address, so it answers on
    /// the VIP once the host has it) that sends `reply` to each client.
    pub fn serve(&self, role: &str, reply: &'static str) {
        let listener = in_netns(&self.ns(role), || TcpListener::bind(("0.0.0.0", PORT)))
            .unwrap_or_else(|e| panic!("listen in {role}: {e}"));
        // The thread ends with the test process.
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let _ = conn.write_all(reply.as_bytes());
            }
        });
    }

    /// Connects from the client namespace to the VIP; what the listener
    /// there sent.
    pub fn fetch(&self) -> String {
        let to = SocketAddr::from((self.vip(), PORT));
        in_netns(&self.ns("client"), move || {
            let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
            conn.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut text = String::new();
            conn.read_to_string(&mut text)?;
            Ok::<_, std::io::Error>(text)
        })
        .unwrap_or_else(|e| panic!("client to {to}: {e}"))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces, and with one end of
        // a veth pair gone the other goes too: nothing is left behind.
        for ns in self.made.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// `ip ARGS`, which must succeed; its stdout.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn word_after(text: &str, key: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    words.by_ref().find(|w| *w == key)?;
    words.next().map(str::to_ascii_lowercase)
}

/// Runs `f` on a thread that has entered the network namespace `ns`
/// (sockets made there belong to it, whatever thread uses them later).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns(2) reads only the descriptor, which `file` keeps
        // open for the call. It changes the network namespace of this
        // thread alone: a thread spawned here that ends with `f`.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

/// True when namespaces can be made here (root, `ip netns` works). When
/// not: a loud skip outside CI, a failure in CI (a skipped check is not a
/// passed one). arping must be there either way.
pub fn netns_here(test: &str) -> bool {
    let root =
        Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let probe = format!("gv{}{test}-probe", std::process::id());
    let netns =
        root && Command::new("ip").args(["netns", "add", &probe]).output().is_ok_and(|o| o.status.success());
    if netns {
        let _ = Command::new("ip").args(["netns", "del", &probe]).output();
        let arping = Command::new("arping").arg("-V").output();
        let version = arping.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        assert!(version.contains("iputils"), "arping from iputils is needed: apt-get install iputils-arping");
        return true;
    }
    let why = if root { "`ip netns add` does not work here" } else { "not running as root" };
    assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "VIP tests can't run in CI: {why}");
    eprintln!("SKIPPED (not passed): {why}; the VIP tests need network namespaces");
    false
}
