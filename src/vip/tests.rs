//! Parsing of VIPs, interfaces, host specs and command output, and the
//! command runner's timeout. The moves themselves are tested in network
//! namespaces (tests/vip_netns.rs).

use std::time::{Duration, Instant};

use super::executor::{remote_command, shell_quote, tidy};
use super::*;

#[test]
fn vips_are_one_ipv4_address() {
    assert_eq!(parse_vip("10.0.0.100").unwrap(), Ipv4Addr::new(10, 0, 0, 100));
    assert_eq!(parse_vip("10.0.0.100/32").unwrap(), Ipv4Addr::new(10, 0, 0, 100));
    assert_eq!(parse_vip(" 192.168.1.5 ").unwrap(), Ipv4Addr::new(192, 168, 1, 5));
    for (input, says) in [
        ("10.0.0.100/24", "ADDR/32"),
        ("10.0.0.100/", "ADDR/32"),
        ("10.0.0.100/32/32", "ADDR/32"),
        ("fe80::1", "IPv6"),
        ("2001:db8::1/128", "ADDR/32"),
        ("10.0.0", "IPv4 address"),
        ("db1.example.com", "IPv4 address"),
        ("", "IPv4 address"),
        ("0.0.0.0", "loopback"),
        ("127.0.0.1", "loopback"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("{VipAddr}", "IPv4 address"),
    ] {
        let e = parse_vip(input).expect_err(input);
        assert!(matches!(e, VipError::BadAddress { .. }), "{input}: {e:?}");
        let text = e.to_string();
        assert!(text.contains(says) && text.contains(&format!("{input:?}")), "{input}: {text}");
    }
}

#[test]
fn interface_names() {
    for ok in ["eth0", "bond0.100", "enp3s0f1", "br-lan", "veth_a1", "abcdefghijklmno"] {
        assert_eq!(ok.parse::<Device>().unwrap().as_str(), ok);
    }
    for (bad, says) in [
        ("", "empty"),
        ("abcdefghijklmnop", "15 bytes"),
        ("eth0:1", "label"),
        ("-eth0", "not an interface"),
        ("..", "not an interface"),
        ("eth 0", "only letters"),
        ("eth0;reboot", "only letters"),
        ("eth/0", "only letters"),
    ] {
        let e = bad.parse::<Device>().expect_err(bad);
        assert!(e.to_string().contains(says), "{bad}: {e}");
    }
}

#[test]
fn host_specs() {
    let ssh = |t: &str, sudo: bool| Executor::Ssh { target: t.to_string(), sudo };
    for (spec, want) in [
        ("local", Executor::Local),
        ("LOCAL", Executor::Local),
        ("netns:hostA", Executor::Netns { name: "hostA".into() }),
        ("netns:gv-123.b_2", Executor::Netns { name: "gv-123.b_2".into() }),
        ("ssh:db1", ssh("db1", false)),
        ("ssh:root@db1.example.com", ssh("root@db1.example.com", false)),
        ("ssh+sudo:gapless@db2", ssh("gapless@db2", true)),
        ("db1", ssh("db1", false)),
        ("admin@10.0.0.5", ssh("admin@10.0.0.5", false)),
        ("fe80::1", ssh("fe80::1", false)),
        ("ssh:root@2001:db8::5", ssh("root@2001:db8::5", false)),
        (" db3 ", ssh("db3", false)),
    ] {
        let got: Executor = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(got, want, "{spec}");
        // Display gives a spec that parses back to the same thing.
        assert_eq!(got.to_string().parse::<Executor>().unwrap(), got, "{spec}");
    }
    assert_eq!(ssh("db1", false).to_string(), "ssh:db1");
    assert_eq!(ssh("db1", true).to_string(), "ssh+sudo:db1");
    assert_eq!(Executor::Netns { name: "x".into() }.to_string(), "netns:x");
}

#[test]
fn bad_host_specs_say_why() {
    for (spec, says) in [
        ("", "empty"),
        ("netns:", "name is empty"),
        ("netns:../etc", "only letters"),
        ("netns:a/b", "only letters"),
        ("ssh:", "host name is empty"),
        ("ssh:-oProxyCommand=evil", "start with '-'"),
        ("-oProxyCommand=evil", "start with '-'"),
        ("ssh:db1;reboot", "only letters"),
        ("db1 db2", "only letters"),
        ("ssh:@db1", "user name is empty"),
        ("ssh:ro ot@db1", "only letters"),
        ("db1:22", "port"),
        ("ssh:db1:22", "port"),
        ("docker:db1", "unknown kind \"docker\""),
        ("{failedHost}", "only letters"),
    ] {
        let e = spec.parse::<Executor>().expect_err(spec);
        let text = e.to_string();
        assert!(matches!(e, VipError::BadHost { .. }), "{spec}: {e:?}");
        assert!(text.contains(says), "{spec}: {text}");
        assert!(text.contains("netns:NAME"), "the error lists the forms: {text}");
    }
}

#[test]
fn ip_addr_output() {
    let text = "2: eth0    inet 10.213.9.2/24 brd 10.213.9.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                2: eth0    inet 10.213.9.100/32 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                2: eth0    inet6 fe80::2033:adff:fea6:8ca1/64 scope link \\       valid_lft forever preferred_lft forever\n\
                2: eth0    inet garbage/xx scope global\n\
                2: eth0    inet 10.0.0.1/40 scope global\n\
                \n";
    assert_eq!(
        parse_addresses(text),
        vec![(Ipv4Addr::new(10, 213, 9, 2), 24), (Ipv4Addr::new(10, 213, 9, 100), 32)]
    );
    assert!(parse_addresses("").is_empty());
}

#[test]
fn arping_replies() {
    let out = "ARPING 10.213.9.100 from 0.0.0.0 eth0\n\
               Unicast reply from 10.213.9.100 [F6:6D:98:15:82:DD]  0.554ms\n\
               Unicast reply from 10.213.9.100 [f6:6d:98:15:82:dd]  0.601ms\n\
               Unicast reply from 10.213.9.100 [22:33:AD:A6:8C:A1]  0.7ms\n\
               Broadcast reply from 10.213.9.100 [nonsense]  0.7ms\n\
               Sent 2 probes (2 broadcast(s))\n\
               Received 3 response(s)\n";
    assert_eq!(parse_replies(out), vec!["f6:6d:98:15:82:dd".to_string(), "22:33:ad:a6:8c:a1".to_string()]);
    assert!(parse_replies("Sent 2 probes (2 broadcast(s))\nReceived 0 response(s)\n").is_empty());
    assert!(parse_replies("Usage: arping [-fqbDUAV] [-c count] ...\n").is_empty());
}

#[test]
fn remote_commands_are_quoted() {
    assert_eq!(
        remote_command(&["ip", "addr", "add", "10.0.0.1/32", "dev", "eth0"], false),
        "PATH=\"$PATH:/usr/sbin:/sbin\" ip addr add 10.0.0.1/32 dev eth0"
    );
    assert_eq!(
        remote_command(&["arping", "-U", "-c", "3", "-I", "eth0", "10.0.0.1"], true),
        "PATH=\"$PATH:/usr/sbin:/sbin\" sudo -n arping -U -c 3 -I eth0 10.0.0.1"
    );
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
    assert_eq!(shell_quote("$(reboot)"), "'$(reboot)'");
    assert_eq!(shell_quote(""), "''");
}

#[test]
fn output_is_folded_onto_one_line() {
    assert_eq!(
        tidy("  RTNETLINK answers: File exists\n\n  second\n"),
        "RTNETLINK answers: File exists; second"
    );
    let long = "é".repeat(1000);
    let folded = tidy(&long);
    assert!(folded.contains(" … ") && folded.len() < 700, "{}", folded.len());
    // The end, where the conclusion is, stays.
    let banner = format!("{}\nHost key verification failed.\n", "@ WARNING @\n".repeat(100));
    let folded = tidy(&banner);
    assert!(
        folded.starts_with("@ WARNING @") && folded.ends_with("Host key verification failed."),
        "{folded}"
    );
    assert!(folded.len() < 700, "{}", folded.len());
}

#[test]
fn a_failed_command_names_host_command_status_and_stderr() {
    let e = Executor::Local
        .run_ok(&["sh", "-c", "echo 'Device \"eth9\" does not exist.' >&2; exit 3"], Duration::from_secs(5))
        .expect_err("exit 3");
    let text = e.to_string();
    assert!(matches!(e, VipError::Failed { .. }), "{e:?}");
    for part in ["on local", "`sh -c ", "exit status 3", "Device \"eth9\" does not exist."] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
}

#[test]
fn a_missing_program_is_named() {
    let e = Executor::Local.run(&["gapless-no-such-tool", "x"], Duration::from_secs(5)).expect_err("missing");
    assert!(matches!(e, VipError::Spawn { .. }), "{e:?}");
    assert!(e.to_string().contains("`gapless-no-such-tool x` could not be started"), "{e}");
}

#[test]
fn a_command_past_its_timeout_is_killed() {
    let started = Instant::now();
    // The shell's child (sleep) is in the same process group: killed too,
    // or the pipes would stay open until it ended.
    let e = Executor::Local
        .run(&["sh", "-c", "echo starting >&2; sleep 30; echo never"], Duration::from_millis(300))
        .expect_err("timeout");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    match &e {
        VipError::Timeout { timeout, stderr, .. } => {
            assert_eq!(*timeout, Duration::from_millis(300));
            assert_eq!(stderr, "starting");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("was still running after 0.3 s and was killed (stderr: starting)"), "{e}");
}

#[test]
fn a_passed_deadline_stops_before_running_anything() {
    let dev: Device = "eth0".parse().unwrap();
    let e = holds(Ipv4Addr::new(10, 0, 0, 1), &dev, &Executor::Local, Instant::now()).expect_err("deadline");
    assert!(matches!(e, VipError::Deadline { .. }), "{e:?}");
    assert!(e.to_string().contains("no time left for listing the addresses"), "{e}");
}

#[test]
fn a_move_plan_from_text() {
    let plan =
        MovePlan::parse("10.0.0.100/32", "eth0", Some("db1"), "ssh+sudo:ops@db2", false, DEFAULT_TIMEOUT)
            .unwrap();
    assert_eq!(plan.vip, Ipv4Addr::new(10, 0, 0, 100));
    assert_eq!(plan.from, Some(Executor::Ssh { target: "db1".into(), sudo: false }));
    assert_eq!(plan.to, Executor::Ssh { target: "ops@db2".into(), sudo: true });
    assert!(MovePlan::parse("10.0.0.100/24", "eth0", None, "db2", false, DEFAULT_TIMEOUT).is_err());
    assert!(MovePlan::parse("10.0.0.100", "eth0:1", None, "db2", false, DEFAULT_TIMEOUT).is_err());
    assert!(MovePlan::parse("10.0.0.100", "eth0", Some("db1:3306"), "db2", false, DEFAULT_TIMEOUT).is_err());
}

#[test]
fn moving_to_the_same_host_is_refused_before_any_command() {
    // A deadline too far to represent is capped, not a panic.
    let plan = MovePlan::parse("10.0.0.100", "eth0", Some("ssh:db1"), "db1", false, Duration::MAX).unwrap();
    let mut logged = Vec::new();
    let e = move_vip_with(&plan, &mut |s| logged.push(s.clone())).expect_err("same host");
    assert!(matches!(e, VipError::SameHost { .. }), "{e:?}");
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].outcome, Outcome::Failed);
    assert!(logged[0].to_string().starts_with("FAIL --from and --to are both ssh:db1"), "{}", logged[0]);
}

#[test]
fn without_the_check_nothing_is_added() {
    // A namespace that does not exist: the probe can't run, so the move
    // stops before adding anything (and says --force would skip the check).
    let ns = format!("gapless-unit-absent-{}", std::process::id());
    let plan =
        MovePlan::parse("10.213.250.1", "eth0", None, &format!("netns:{ns}"), false, Duration::from_secs(5))
            .unwrap();
    let mut logged = Vec::new();
    let e = move_vip_with(&plan, &mut |s| logged.push(s.to_string())).expect_err("no check");
    assert!(matches!(e, VipError::Unchecked { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("could not check from netns:") && text.contains("--force skips it"), "{text}");
    assert!(text.contains("`arping -D -c 2 -w 3 -I eth0 10.213.250.1`"), "{text}");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].starts_with("FAIL "), "{logged:?}");
}

#[test]
fn report_lines() {
    let report = Report {
        steps: vec![
            Step {
                outcome: Outcome::Ok,
                text: "netns:b: added 10.0.0.1/32 to eth0".into(),
                elapsed: Duration::from_millis(210),
            },
            Step {
                outcome: Outcome::Warning,
                text: "netns:a: could not remove 10.0.0.1".into(),
                elapsed: Duration::from_secs(5),
            },
        ],
    };
    assert_eq!(
        report.lines(),
        vec![
            "ok   netns:b: added 10.0.0.1/32 to eth0 (0.21 s)".to_string(),
            "WARN netns:a: could not remove 10.0.0.1 (5.00 s)".to_string()
        ]
    );
    assert_eq!(report.warnings(), 1);
    assert_eq!(report.to_string().lines().count(), 2);
}
