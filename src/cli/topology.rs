//! `gapless topology`, `gapless precheck` and `gapless switchover`: the
//! flags, the cluster file, and the checked plan
//! ([`crate::topology::ClusterPlan`]) built from them before any
//! connection.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use gapless_protocol::client::Password;
use gapless_protocol::tls::{SslMode, TlsOptions};
use serde::Serialize;

use super::stream::{read_password, LoginArgs};
use crate::detect::Endpoint;
use crate::topology::config::{ClusterConfig, ClusterFile, MetaDbConfig, DEFAULT_PATH};
use crate::topology::meta::{MetaPlan, Queries, Template};
use crate::topology::plan::{self as switch_plan, Plan, Refusal, VipSettings};
use crate::topology::precheck::{self, Settings, DEFAULT_MAX_LAG};
use crate::topology::switchover::{self, Context, Credentials, Report};
use crate::topology::{self as topo, dual, table, ClusterPlan, Login, SidecarPlan, Survey};

/// Shown under both commands' help.
pub const CLUSTER_HELP: &str = "\
The cluster file (--config, default /etc/gapless/clusters.toml) describes each cluster:

  [cluster.shop]
  seed = \"db1.example:3306\"          # any server; discovery climbs to the primary
  user = \"gapless_check\"
  password_file = \"/etc/gapless/check-password\"   # mode 0600; or $GAPLESS_PASSWORD
  vip = \"10.0.0.100\"                 # precheck connects to it and expects the primary
  sidecar = \"http://sidecar1.example:9306\"
  sidecar_token_file = \"/etc/gapless/sidecar-token\"
  prevent_cross_dc = true            # PreventCrossDataCenterMasterFailover
  max_lag_seconds = 10
  [cluster.shop.datacenter]
  \"db1.example\" = \"dc1\"
  [cluster.shop.promotion]
  \"db4.example:3306\" = \"must_not\"    # prefer, neutral, prefer_not, must_not

or a [meta_db] table with query templates (:host and :port are bound parameters)
looks the datacenter, VIP and alias up. Without a file: --seed HOST:PORT --user USER.

The user needs, on every server: PROCESS, SLAVE MONITOR, BINLOG MONITOR and REPLICATION
MASTER ADMIN (MariaDB 10.5+), or PROCESS, REPLICATION CLIENT and REPLICATION SLAVE (MySQL).
Exit status: topology 0 shown, 1 failed; precheck 0 all required checks passed, 1 one failed,
2 bad flags or cluster file. See docs/topology.md.";

/// Which cluster, and how to reach it: the flags both commands take.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The cluster: its [cluster.NAME] table in the cluster file.
    #[arg(long, value_name = "NAME", required_unless_present = "seed")]
    pub cluster: Option<String>,
    /// The cluster file (default: /etc/gapless/clusters.toml, read when
    /// --cluster is given).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Start discovery at this server instead of the file's seed; with no
    /// --cluster no file is needed.
    #[arg(long, value_name = "HOST:PORT")]
    pub seed: Option<Endpoint>,
    /// The user to log in as on every server (default: the file's).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The limit for each connect, statement and request, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = positive_seconds)]
    pub timeout: Duration,
    /// Password and TLS (given flags win over the file; --ssl-mode
    /// PREFERRED, the default, leaves the file's mode).
    #[command(flatten)]
    pub login: LoginArgs,
}

/// The flags of `gapless topology`.
#[derive(Debug, Args)]
pub struct TopologyArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The flags of `gapless precheck`.
#[derive(Debug, Args)]
pub struct PrecheckArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The most replication lag accepted, in seconds (default: the file's
    /// max_lag_seconds, else 10).
    #[arg(long, value_name = "SECS")]
    pub max_lag: Option<u64>,
}

/// Shown under `gapless switchover --help`.
pub const SWITCHOVER_HELP: &str = "\
Steps: precheck; choose the candidate; SET GLOBAL read_only = ON on the old primary
(super_read_only on MySQL); wait for or kill its writers; read its final position; wait
until the candidate has executed it (MASTER_GTID_WAIT, WAIT_FOR_EXECUTED_GTID_SET or
MASTER_POS_WAIT); stop the candidate's replication -- POINT OF NO RETURN -- promote it (RESET
SLAVE ALL; read_only = OFF); re-point every other replica, then the old primary, under it
(CHANGE MASTER TO ... MASTER_USE_GTID = slave_pos, or auto-positioning on MySQL); move the
VIP; verify. A failure before the point of no return rolls back: the candidate replicates
again, the old primary is writable again.

--force goes on past failed prechecks and promotes a --to replica whose only faults are its
must_not rule or stopped replication. It never overrides prevent_cross_dc, nor a candidate
that cannot be read, runs other software or an older version, lacks log_bin or
log_slave_updates, or has errant GTIDs; it never chooses a faulty replica by itself.

--dual switches an active/passive pair of primaries replicating from each other: the active
becomes read_only, the passive catches up and becomes writable, the VIP moves; nothing is
re-pointed. The same command switches back.

The cluster needs, beside what topology reads:
  replication_user = \"repl\"                      # replicas are re-pointed with it
  replication_password_file = \"/etc/gapless/repl-password\"   # mode 0600
  writers = \"wait\"                               # or \"kill\"
  writers_timeout_seconds = 10
  [cluster.NAME.vip_hosts]                        # default ssh:HOST
  \"db1.example:3306\" = \"ssh:db1.example\"
The user needs, beside the topology grants: READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, RELOAD
and CONNECTION ADMIN (MariaDB 10.11), or SYSTEM_VARIABLES_ADMIN (or SUPER),
REPLICATION_SLAVE_ADMIN, RELOAD and CONNECTION_ADMIN (MySQL).

Exit status: 0 done (or --dry-run planned); 1 refused, or failed before the point of no
return and rolled back (nothing left changed); 2 bad flags or cluster file; 3 failed after the
point of no return (or the rollback failed): the output says what is done and what is left.
See docs/topology.md.";

/// The flags of `gapless switchover`.
#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The replica to promote, as discovery shows it (default: the best
    /// valid candidate).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "dual")]
    pub to: Option<Endpoint>,
    /// Go on past failed prechecks, and promote a --to replica whose only
    /// faults are its must_not rule or stopped replication (never past a
    /// datacenter rule).
    #[arg(long)]
    pub force: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Switch an active/passive pair of primaries that replicate from each
    /// other.
    #[arg(long)]
    pub dual: bool,
    /// How long the candidate may take to execute the old primary's last
    /// writes (and the replicas to run under the new one), in seconds.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = positive_seconds)]
    pub wait_timeout: Duration,
    /// The most replication lag the precheck accepts, in seconds (default:
    /// the file's max_lag_seconds, else 10).
    #[arg(long, value_name = "SECS")]
    pub max_lag: Option<u64>,
}

fn positive_seconds(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 3600.0)
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("{s:?}: expected a number of seconds, more than 0 and at most 3600"))
}

/// The password on the first line of a file only its owner may read.
fn password_file(path: &Path, what: &str) -> anyhow::Result<Password> {
    crate::private_file::check_private(path)
        .map_err(|why| anyhow::anyhow!("{what} {}: {why}", path.display()))?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{what}: reading {}", path.display()))?;
    Ok(Password::new(text.lines().next().unwrap_or("").as_bytes()))
}

fn ssl_mode(text: &str, table: &str) -> anyhow::Result<SslMode> {
    text.parse().map_err(|e| anyhow::anyhow!("{table} ssl_mode: {e}"))
}

/// The TLS settings: the file's, with the flags given on top.
fn tls(flags: &LoginArgs, file: Option<&ClusterConfig>, table: &str) -> anyhow::Result<TlsOptions> {
    let mut tls = TlsOptions::default();
    if let Some(c) = file {
        if let Some(mode) = &c.ssl_mode {
            tls.mode = ssl_mode(mode, table)?;
        }
        tls.ca = c.ssl_ca.clone();
        tls.cert = c.ssl_cert.clone();
        tls.key = c.ssl_key.clone();
    }
    if flags.ssl_mode != SslMode::Preferred {
        tls.mode = flags.ssl_mode;
    }
    tls.ca = flags.ssl_ca.clone().or(tls.ca);
    if flags.ssl_cert.is_some() {
        tls.cert = flags.ssl_cert.clone();
        tls.key = flags.ssl_key.clone();
    }
    if tls.mode != SslMode::Disabled && (tls.ca.is_some() || tls.cert.is_some()) {
        tls.client_config().with_context(|| format!("{table}: TLS options"))?;
    }
    Ok(tls)
}

fn template(text: &Option<String>, key: &str) -> anyhow::Result<Option<Template>> {
    text.as_deref().map(|t| Template::parse(t).with_context(|| format!("[meta_db] {key}"))).transpose()
}

fn meta_plan(m: &MetaDbConfig, cluster_login: &Login) -> anyhow::Result<MetaPlan> {
    if m.host.is_empty() {
        bail!("[meta_db] host is empty");
    }
    let password = match &m.password_file {
        Some(path) => password_file(path, "[meta_db] password_file")?,
        None => cluster_login.password.clone(),
    };
    let mut tls = cluster_login.tls.clone();
    if let Some(mode) = &m.ssl_mode {
        tls.mode = ssl_mode(mode, "[meta_db]")?;
    }
    if let Some(ca) = &m.ssl_ca {
        tls.ca = Some(ca.clone());
    }
    let queries = Queries {
        datacenter: template(&m.datacenter_query, "datacenter_query")?,
        cluster_domain: template(&m.cluster_domain_query, "cluster_domain_query")?,
        cluster_alias: template(&m.cluster_alias_query, "cluster_alias_query")?,
    };
    Ok(MetaPlan {
        host: m.host.clone(),
        port: m.port,
        database: m.name.clone(),
        login: Login { user: m.user.clone().unwrap_or_else(|| cluster_login.user.clone()), password, tls },
        queries,
    })
}

/// Turns the flags and the cluster file into a plan; also returns the
/// file's lag limit.
pub fn plan(args: &ClusterArgs, config: Option<&Path>) -> anyhow::Result<(ClusterPlan, Option<u64>)> {
    let (plan, cluster) = load(args, config)?;
    Ok((plan, cluster.max_lag_seconds))
}

/// [`plan`], and the cluster's table of the file (empty without one).
fn load(args: &ClusterArgs, config: Option<&Path>) -> anyhow::Result<(ClusterPlan, ClusterConfig)> {
    if args.login.server_public_key.is_some() {
        bail!("--server-public-key is not used by topology and precheck (TLS or the server's own key is)");
    }
    let path =
        config.map(Path::to_path_buf).or_else(|| args.cluster.as_ref().map(|_| PathBuf::from(DEFAULT_PATH)));
    let file = match &path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("the cluster file {}", p.display()))?;
            ClusterFile::parse(&text).with_context(|| format!("the cluster file {}", p.display()))?
        }
        None => ClusterFile::default(),
    };
    let cluster = match &args.cluster {
        Some(name) => Some(file.cluster(name).with_context(|| format!("--cluster {name}"))?.clone()),
        None => None,
    };
    let table = args.cluster.as_ref().map_or("the command line".to_string(), |n| format!("[cluster.{n}]"));
    let seed = match (&args.seed, cluster.as_ref().and_then(|c| c.seed.as_deref())) {
        (Some(e), _) => e.clone(),
        (None, Some(s)) => s.parse::<Endpoint>().with_context(|| format!("{table} seed"))?,
        (None, None) => bail!("{table} has no seed: add seed = \"HOST:PORT\" or give --seed"),
    };
    let user = match (&args.user, cluster.as_ref().and_then(|c| c.user.clone())) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => u,
        (None, None) => bail!("no user: add user = \"NAME\" to {table} or give --user"),
    };
    if user.is_empty() {
        bail!("{table}: empty user name");
    }
    let password =
        match (&args.login.password_file, cluster.as_ref().and_then(|c| c.password_file.as_deref())) {
            (Some(_), _) | (None, None) => read_password(args.login.password_file.as_deref())?,
            (None, Some(path)) => password_file(path, &format!("{table} password_file"))?,
        };
    let login = Login { user, password, tls: tls(&args.login, cluster.as_ref(), &table)? };
    let meta = file.meta_db.as_ref().map(|m| meta_plan(m, &login)).transpose()?;
    let c = cluster.unwrap_or_default();
    let sidecar = c.sidecar.as_ref().map(|url| SidecarPlan {
        url: url.clone(),
        token_file: c.sidecar_token_file.clone(),
        ca_file: c.sidecar_ca.clone(),
    });
    if let Some(s) = &sidecar {
        crate::hook::client::parse_url(&s.url).with_context(|| format!("{table} sidecar"))?;
    }
    let plan = ClusterPlan {
        name: args.cluster.clone().unwrap_or_else(|| format!("seed {seed}")),
        seed: (seed.host, seed.port),
        login,
        vip: c.vip.clone(),
        interface: c.interface.clone(),
        sidecar,
        datacenters: c.datacenter.clone(),
        rules: c.rules(),
        meta,
        limit: args.timeout,
    };
    Ok((plan, c))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is no failure of the command.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn json<T: Serialize>(value: &T) -> String {
    // Plain structs of strings and numbers: serializing cannot fail.
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

fn config_path(args: &ClusterArgs) -> Option<PathBuf> {
    args.config.clone()
}

fn survey(plan: &ClusterPlan) -> anyhow::Result<Survey> {
    let survey = runtime()?.block_on(topo::survey(plan)).with_context(|| format!("cluster {}", plan.name))?;
    Ok(survey)
}

/// Runs `gapless topology`: exit 0 with the table (or JSON), 1 when the
/// cluster could not be discovered or the flags and file are wrong.
pub fn run_topology(args: TopologyArgs) -> anyhow::Result<i32> {
    let (plan, _) = plan(&args.cluster, config_path(&args.cluster).as_deref())?;
    let survey = survey(&plan)?;
    if args.cluster.json {
        print(&json(&survey));
    } else {
        print(&table::topology(&survey.topology));
    }
    Ok(0)
}

/// What `gapless precheck --json` prints.
#[derive(Serialize)]
struct PrecheckReport<'a> {
    cluster: &'a str,
    passed: bool,
    max_lag_seconds: u64,
    checks: &'a [precheck::Check],
    candidates: Vec<topo::Candidate>,
    survey: &'a Survey,
}

/// Runs `gapless precheck`: exit 0 when every required check passes, 1
/// when one fails (or the cluster cannot be discovered), 2 when the flags
/// or the cluster file are wrong.
pub fn run_precheck(args: PrecheckArgs) -> i32 {
    let planned = plan(&args.cluster, config_path(&args.cluster).as_deref());
    let (plan, file_lag) = match planned {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gapless: error: {e:#}");
            return 2;
        }
    };
    let survey = match survey(&plan) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gapless: error: {e:#}");
            return 1;
        }
    };
    let settings =
        Settings { max_lag: args.max_lag.or(file_lag).unwrap_or(DEFAULT_MAX_LAG), rules: plan.rules.clone() };
    let checks = precheck::run(&survey, &settings);
    let passed = precheck::all_required_pass(&checks);
    if args.cluster.json {
        print(&json(&PrecheckReport {
            cluster: &plan.name,
            passed,
            max_lag_seconds: settings.max_lag,
            checks: &checks,
            candidates: topo::candidates(&survey.topology, &settings.rules),
            survey: &survey,
        }));
    } else {
        print(&table::precheck(&checks));
    }
    if passed {
        0
    } else {
        1
    }
}

/// What `gapless switchover` needs beside the cluster plan, from the flags
/// and the file, checked before any connection.
struct SwitchSetup {
    settings: switch_plan::Settings,
    context: Context,
    replication_user: String,
}

fn switch_setup(args: &SwitchoverArgs, plan: &ClusterPlan, c: &ClusterConfig) -> anyhow::Result<SwitchSetup> {
    let table =
        args.cluster.cluster.as_ref().map_or("the command line".to_string(), |n| format!("[cluster.{n}]"));
    // A dual-primary switch re-points nothing: no replication user needed.
    let replication = match (&c.replication_user, &c.replication_password_file) {
        (Some(user), Some(path)) => {
            if user.is_empty() {
                bail!("{table} replication_user is empty");
            }
            let password = password_file(path, &format!("{table} replication_password_file"))?;
            if std::str::from_utf8(password.expose()).is_err() {
                bail!("{table} replication_password_file {}: the password is not UTF-8", path.display());
            }
            Some(Credentials { user: user.clone(), password })
        }
        (None, None) if args.dual => None,
        (None, _) => bail!(
            "{table} has no replication_user: a switchover re-points the replicas with CHANGE MASTER TO, \
             which needs the replication user and its password (replication_password_file)"
        ),
        (Some(_), None) => bail!("{table} has no replication_password_file (mode 0600) for replication_user"),
    };
    let (writers, writers_timeout) = c.writers();
    if writers_timeout.is_zero() {
        bail!("{table} writers_timeout_seconds must be at least 1");
    }
    let settings = switch_plan::Settings {
        to: args.to.as_ref().map(|e| topo::instance::addr(&e.host, e.port)),
        force: args.force,
        wait_timeout: args.wait_timeout,
        writers,
        writers_timeout,
        precheck: Settings {
            max_lag: args.max_lag.or(c.max_lag_seconds).unwrap_or(DEFAULT_MAX_LAG),
            rules: plan.rules.clone(),
        },
        vip: VipSettings {
            configured: plan.vip.is_some(),
            interface: plan.interface.clone(),
            hosts: c.vip_hosts.clone(),
        },
    };
    let replication_user = replication.as_ref().map_or(String::new(), |r| r.user.clone());
    Ok(SwitchSetup {
        settings,
        context: Context { login: plan.login.clone(), replication, limit: args.cluster.timeout },
        replication_user,
    })
}

/// What `gapless switchover --json` prints.
#[derive(Serialize)]
struct SwitchoverJson<'a> {
    cluster: &'a str,
    dry_run: bool,
    refused: Option<&'a Refusal>,
    plan: Option<&'a Plan>,
    report: Option<&'a Report>,
    exit_code: i32,
}

/// Runs `gapless switchover`: exit 0 done (or planned with --dry-run), 1
/// refused or rolled back (or the cluster could not be discovered), 2 bad
/// flags or file, 3 failed after the point of no return.
pub fn run_switchover(args: SwitchoverArgs) -> i32 {
    let loaded = load(&args.cluster, config_path(&args.cluster).as_deref())
        .and_then(|(plan, c)| switch_setup(&args, &plan, &c).map(|s| (plan, s)));
    let (cluster, setup) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("gapless: error: {e:#}");
            return 2;
        }
    };
    let json = args.cluster.json;
    let emit = |doc: SwitchoverJson<'_>| {
        if json {
            print(&self::json(&doc));
        }
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gapless: error: {e:#}");
            return 1;
        }
    };
    let survey = runtime.block_on(async { topo::survey(&cluster).await.map_err(|e| e.to_string()) });
    let survey = match survey {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gapless: error: cluster {}: {e}", cluster.name);
            return 1;
        }
    };
    let built = if args.dual {
        dual::plan(&survey, &setup.settings)
    } else {
        switch_plan::switchover(&survey, &setup.settings, &setup.replication_user)
    };
    let base = SwitchoverJson {
        cluster: &cluster.name,
        dry_run: args.dry_run,
        refused: None,
        plan: None,
        report: None,
        exit_code: 1,
    };
    let plan = match built {
        Ok(p) => p,
        Err(refusal) => {
            eprintln!("gapless: switchover refused, nothing was changed: {refusal}");
            emit(SwitchoverJson { refused: Some(&refusal), ..base });
            return 1;
        }
    };
    // The plan first: what is about to happen (on stderr with --json).
    let say = |text: &str| {
        if json {
            eprint!("{text}");
        } else {
            print(text);
        }
    };
    say(&plan.describe());
    if args.dry_run {
        say("dry run: nothing was changed\n");
        emit(SwitchoverJson { plan: Some(&plan), exit_code: 0, ..base });
        return 0;
    }
    let report =
        runtime.block_on(switchover::execute(&plan, &setup.context, &mut |line| say(&format!("{line}\n"))));
    let code = report.outcome.exit_code();
    emit(SwitchoverJson { plan: Some(&plan), report: Some(&report), exit_code: code, ..base });
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(argv: &[&str]) -> Result<Command, clap::Error> {
        <Cli as clap::Parser>::try_parse_from(std::iter::once("gapless").chain(argv.iter().copied()))
            .map(|c| c.command)
    }

    fn topology(argv: &[&str]) -> ClusterArgs {
        match parse(&[&["topology"], argv].concat()).unwrap() {
            Command::Topology(a) => a.cluster,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags() {
        let a = topology(&["--cluster", "shop", "--config", "/x.toml", "--json", "--timeout", "2.5"]);
        assert_eq!((a.cluster.as_deref(), a.config.as_deref()), (Some("shop"), Some(Path::new("/x.toml"))));
        assert!(a.json);
        assert_eq!(a.timeout, Duration::from_millis(2500));
        let a = topology(&["--seed", "127.0.0.1:3307", "--user", "check", "--ssl-mode", "DISABLED"]);
        assert_eq!(a.seed.unwrap().to_string(), "127.0.0.1:3307");
        assert_eq!(a.login.ssl_mode, SslMode::Disabled);
        assert!(parse(&["topology"]).unwrap_err().to_string().contains("--cluster"), "a cluster or a seed");
        assert!(parse(&["topology", "--seed", "db1"]).is_err(), "HOST:PORT");
        assert!(parse(&["topology", "--cluster", "a", "--timeout", "0"]).is_err());
        match parse(&["precheck", "--cluster", "shop", "--max-lag", "5"]).unwrap() {
            Command::Precheck(p) => {
                assert_eq!((p.max_lag, p.cluster.cluster.as_deref()), (Some(5), Some("shop")))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["precheck", "--cluster", "shop", "--max-lag", "-1"]).is_err());
    }

    fn switchover(argv: &[&str]) -> Result<SwitchoverArgs, clap::Error> {
        parse(&[&["switchover"], argv].concat()).map(|c| match c {
            Command::Switchover(a) => a,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn switchover_flags() {
        let a = switchover(&[
            "--cluster",
            "shop",
            "--to",
            "db2:3306",
            "--force",
            "--dry-run",
            "--wait-timeout",
            "5",
        ])
        .unwrap();
        assert_eq!(a.to.unwrap().to_string(), "db2:3306");
        assert!(a.force && a.dry_run && !a.dual);
        assert_eq!(a.wait_timeout, Duration::from_secs(5));
        let a = switchover(&["--cluster", "shop", "--dual", "--json", "--max-lag", "3"]).unwrap();
        assert!(a.dual && a.cluster.json && a.to.is_none());
        assert_eq!((a.max_lag, a.wait_timeout), (Some(3), Duration::from_secs(30)));
        assert!(
            switchover(&["--cluster", "shop", "--dual", "--to", "db2:3306"]).is_err(),
            "--dual takes no --to"
        );
        assert!(switchover(&["--cluster", "shop", "--to", "db2"]).is_err(), "HOST:PORT");
        assert!(switchover(&["--cluster", "shop", "--wait-timeout", "0"]).is_err());
        assert!(switchover(&[]).is_err(), "a cluster or a seed");
    }

    #[test]
    fn switchover_setup_from_the_file() {
        let path = scratch(
            "switch",
            r#"
            [cluster.shop]
            seed = "db1:3306"
            user = "admin"
            password_file = "PWFILE"
            vip = "10.0.0.100"
            interface = "eth0"
            replication_user = "repl"
            replication_password_file = "PWFILE"
            writers = "kill"
            writers_timeout_seconds = 3
            [cluster.shop.vip_hosts]
            "db1" = "netns:one"
            [cluster.bare]
            seed = "db1:3306"
            user = "admin"
            password_file = "PWFILE"
            "#,
        );
        let a = switchover(&["--cluster", "shop", "--to", "db2:3306", "--max-lag", "7"]).unwrap();
        let (plan, c) = load(&a.cluster, Some(&path)).unwrap();
        let s = switch_setup(&a, &plan, &c).unwrap();
        assert_eq!(s.settings.to.as_deref(), Some("db2:3306"));
        assert_eq!(s.settings.writers, crate::topology::config::WritersPolicy::Kill);
        assert_eq!(s.settings.writers_timeout, Duration::from_secs(3));
        assert_eq!(s.settings.precheck.max_lag, 7);
        assert!(s.settings.vip.configured);
        assert_eq!(s.settings.vip.hosts.get("db1", 3306).map(String::as_str), Some("netns:one"));
        assert_eq!(s.replication_user, "repl");
        assert_eq!(s.context.replication.as_ref().unwrap().password.expose(), b"s3cret");
        assert!(!format!("{:?}", s.context).contains("s3cret"), "no password in debug output");
        // Without a replication user only --dual goes.
        let a = switchover(&["--cluster", "bare"]).unwrap();
        let (plan, c) = load(&a.cluster, Some(&path)).unwrap();
        let err = switch_setup(&a, &plan, &c).err().unwrap().to_string();
        assert!(err.contains("[cluster.bare] has no replication_user"), "{err}");
        let a = switchover(&["--cluster", "bare", "--dual"]).unwrap();
        assert!(switch_setup(&a, &plan, &c).unwrap().context.replication.is_none());
        // The password file must be private.
        use std::os::unix::fs::PermissionsExt;
        let pw = path.parent().unwrap().join("pw");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let a = switchover(&["--cluster", "shop"]).unwrap();
        let err = format!(
            "{:#}",
            load(&a.cluster, Some(&path))
                .and_then(|(p, c)| switch_setup(&a, &p, &c).map(|_| ()))
                .unwrap_err()
        );
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    fn scratch(name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("gapless-topo-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = dir.join("clusters.toml");
        std::fs::write(&path, text.replace("PWFILE", &pw.display().to_string())).unwrap();
        path
    }

    #[test]
    fn a_plan_from_the_file() {
        let path = scratch(
            "plan",
            r#"
            [meta_db]
            host = "meta"
            port = 3310
            name = "cmdb"
            DetectDataCenterQuery = "SELECT dc FROM hosts WHERE host = '{host}' AND port = {port}"
            [cluster.shop]
            seed = "db1:3306"
            user = "check"
            password_file = "PWFILE"
            ssl_mode = "DISABLED"
            vip = "10.0.0.100"
            sidecar = "http://side:9306"
            max_lag_seconds = 4
            [cluster.shop.datacenter]
            "db1" = "dc1"
            "#,
        );
        let a = topology(&["--cluster", "shop"]);
        let (plan, lag) = plan(&a, Some(&path)).unwrap();
        assert_eq!(lag, Some(4));
        assert_eq!((plan.seed.0.as_str(), plan.seed.1), ("db1", 3306));
        assert_eq!(plan.login.user, "check");
        assert_eq!(plan.login.password.expose(), b"s3cret");
        assert_eq!(plan.login.tls.mode, SslMode::Disabled);
        assert_eq!(plan.vip.as_deref(), Some("10.0.0.100"));
        assert_eq!(plan.sidecar.as_ref().unwrap().host().as_deref(), Some("side"));
        let meta = plan.meta.as_ref().unwrap();
        assert_eq!((meta.host.as_str(), meta.port, meta.database.as_deref()), ("meta", 3310, Some("cmdb")));
        assert_eq!(meta.login.user, "check", "the cluster's user by default");
        assert_eq!(
            meta.queries.datacenter.as_ref().unwrap().sql,
            "SELECT dc FROM hosts WHERE host = ? AND port = ?"
        );
        assert!(!format!("{plan:?}").contains("s3cret"), "no password in debug output");

        // Flags win over the file.
        let a = topology(&[
            "--cluster",
            "shop",
            "--seed",
            "db2:3307",
            "--user",
            "other",
            "--ssl-mode",
            "REQUIRED",
        ]);
        let (plan, _) = super::plan(&a, Some(&path)).unwrap();
        assert_eq!((plan.seed.0.as_str(), plan.login.user.as_str()), ("db2", "other"));
        assert_eq!(plan.login.tls.mode, SslMode::Required);

        let err = super::plan(&topology(&["--cluster", "nope"]), Some(&path)).unwrap_err();
        assert!(format!("{err:#}").contains("[cluster.nope]"), "{err:#}");
        let err = super::plan(&topology(&["--cluster", "shop"]), Some(Path::new("/nonexistent/c.toml")))
            .unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/c.toml"), "{err:#}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_plan_from_flags_alone_and_bad_files() {
        let (plan, lag) = plan(&topology(&["--seed", "127.0.0.1:3307", "--user", "check"]), None).unwrap();
        assert_eq!((plan.name.as_str(), lag), ("seed 127.0.0.1:3307", None));
        assert!(plan.meta.is_none() && plan.sidecar.is_none());
        let err = super::plan(&topology(&["--seed", "127.0.0.1:3307"]), None).unwrap_err().to_string();
        assert!(err.contains("--user"), "{err}");
        let path = scratch("bad", "[meta_db]\nhost = \"m\"\ndatacenter_query = \"SELECT 1 WHERE x = :cluster\"\n[cluster.a]\nseed = \"h:1\"\nuser = \"u\"\n");
        let err = format!("{:#}", super::plan(&topology(&["--cluster", "a"]), Some(&path)).unwrap_err());
        assert!(err.contains("datacenter_query") && err.contains(":cluster"), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
