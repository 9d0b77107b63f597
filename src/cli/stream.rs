//! `gapless stream`: flags, the password, signals, and the call into
//! [`crate::stream`].

use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use gapless_decoder::gtid::{GtidSet, MariaGtidList};
use gapless_protocol::client::{ConnectOptions, Password};
use gapless_protocol::tls::{SslMode, TlsOptions};
use tracing::{info, warn};

use crate::ring::{Published, RingConfig, RingSink, SyncPolicy};
use crate::stream::StreamStatus;
use crate::{api, detect};

use crate::render::{renderer, Format, Options};
use crate::stream::{
    self, DumpFrom, ParallelJsonlSink, RawSink, RenderSink, SessionConfig, Sink, Start, StreamPlan,
};

/// Environment variable holding the replication user's password.
pub const PASSWORD_ENV: &str = "GAPLESS_PASSWORD";

/// Output formats of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamFormat {
    /// Like `mysqlbinlog -v`.
    Text,
    /// One JSON object per changed row (docs/jsonl.md).
    Jsonl,
    /// Executable SQL that redoes the changes, with the original GTIDs.
    Sql,
    /// The events as received, after the binlog magic (a binlog file).
    Raw,
}

/// When the ring syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsyncArg {
    /// At each transaction commit (grouped when several arrive together).
    Commit,
    /// Every --fsync-interval milliseconds at most.
    Interval,
    /// Never: the operating system writes when it likes.
    Never,
}

/// Parses a size: bytes, or with a K, M, G or T suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{s:?}: unknown size suffix {c:?} (use K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 =
        digits.trim().parse().map_err(|_| format!("{s:?}: expected a size like 4G, 512M or 1048576"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?}: too large"))
}

/// The flags of `gapless stream` (its help text is on [`super::Command`]).
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// The primary: mysql://USER@HOST[:PORT] (no password here).
    #[arg(long, value_name = "URL")]
    pub source: String,
    /// Replica server id to register with (default: a free one is picked).
    #[arg(long, value_name = "N")]
    pub server_id: Option<u32>,
    /// Start at a binlog file and position, e.g. mysql-bin.000003:4.
    #[arg(long, value_name = "FILE:POS", conflicts_with = "from_gtid")]
    pub from: Option<String>,
    /// Start after a GTID position: MariaDB GTIDs (0-1-42,1-2-7) or a MySQL
    /// GTID set (uuid:1-42); the empty string is the beginning.
    #[arg(long, value_name = "SET")]
    pub from_gtid: Option<String>,
    /// Output format on stdout (default: text; nothing with --ring).
    #[arg(long, value_enum, conflicts_with = "ring")]
    pub format: Option<StreamFormat>,
    /// Keep the events in a crash-safe ring in this directory (the
    /// sidecar): a restart resumes after the last transaction it holds.
    #[arg(long, value_name = "DIR")]
    pub ring: Option<PathBuf>,
    /// The most disk the ring takes, e.g. 4G, 512M; the oldest events are
    /// dropped to make room.
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = parse_size, requires = "ring")]
    pub ring_size: u64,
    /// Bytes per segment file (default: a sixteenth of --ring-size, 1M to 256M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "ring", hide = true)]
    pub segment_size: Option<u64>,
    /// When the ring syncs to disk: at each commit (commits that arrive
    /// together share a sync), every --fsync-interval, or never (left to the
    /// OS). With --semi-sync the ACK always waits for a sync.
    #[arg(long, value_enum, default_value = "commit", requires = "ring")]
    pub fsync: FsyncArg,
    /// With --fsync interval: the most time between syncs, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "1000", requires = "ring")]
    pub fsync_interval: u64,
    /// Serve /status (JSON) and /metrics (Prometheus) on this address, e.g.
    /// 127.0.0.1:9306 (and /v1/replay with --apply-password-file). Without --api-token-file only a loopback address is
    /// accepted.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// File holding the --listen API's bearer token (first line: at least 16
    /// printable ASCII characters, no spaces, e.g. `openssl rand -hex 32`);
    /// must not be readable by group or others. Every request must then send
    /// `Authorization: Bearer TOKEN` (otherwise 401). Required to listen on a
    /// non-loopback address.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub api_token_file: Option<PathBuf>,
    /// Serve the --listen API over HTTPS with this certificate chain (PEM,
    /// the server's certificate first); needs --api-tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["listen", "api_tls_key"])]
    pub api_tls_cert: Option<PathBuf>,
    /// The private key (PEM, unencrypted) of --api-tls-cert.
    #[arg(long, value_name = "FILE", requires_all = ["listen", "api_tls_cert"])]
    pub api_tls_key: Option<PathBuf>,
    /// Replays through the --listen API (boxed: they are seldom given).
    #[command(flatten)]
    pub apply: Box<ApplyArgs>,
    /// Acknowledge semi-sync transactions once written out (when the primary
    /// has semi-sync enabled).
    #[arg(long)]
    pub semi_sync: bool,
    /// Heartbeat period asked of the primary, in seconds; three periods of
    /// silence mean a dead connection.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub heartbeat: f64,
    /// The longest wait between reconnect attempts, in seconds.
    #[arg(long, value_name = "SECS", default_value = "30")]
    pub max_backoff: f64,
    /// Host name shown in SHOW SLAVE HOSTS (default: gapless@<this host>).
    #[arg(long, value_name = "NAME")]
    pub report_host: Option<String>,
    /// Dead-primary detection (with --listen or --on-primary-state): call
    /// the primary dead once probes have failed for this many seconds while
    /// the stream is down, and no replica still hears from it.
    #[arg(long, value_name = "SECS", default_value = "10")]
    pub dead_after: f64,
    /// How often to probe the primary (and ask its replicas) while the
    /// stream is down, in seconds.
    #[arg(long, value_name = "SECS", default_value = "1")]
    pub probe_interval: f64,
    /// A replica of the primary to ask before calling it dead (repeatable;
    /// those in SHOW SLAVE HOSTS are asked too). Logged in to like the
    /// source: the user needs SLAVE MONITOR there.
    #[arg(long = "replica", value_name = "HOST:PORT")]
    pub replicas: Vec<detect::Endpoint>,
    /// Run this through `sh -c` at each change of the primary's state
    /// (alive, unreachable, dead), with GAPLESS_PRIMARY_STATE,
    /// GAPLESS_PREVIOUS_STATE, GAPLESS_PRIMARY, GAPLESS_REASON and
    /// GAPLESS_SINCE set (docs/sidecar.md).
    #[arg(long, value_name = "CMD")]
    pub on_primary_state: Option<String>,
    /// Login and TLS.
    #[command(flatten)]
    pub login: LoginArgs,
}

/// How replays started through the `--listen` API (`POST /v1/replay`) log
/// in to their target.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The user replays started through the --listen API (POST /v1/replay)
    /// log in to their target as: mysql://USER@TARGET, with
    /// --apply-password-file and the --ssl-* options of the source.
    #[arg(long, value_name = "USER", default_value = "gapless_apply")]
    pub apply_user: String,
    /// File holding --apply-user's password (first line); must not be
    /// readable by group or others. Enables POST /v1/replay on the --listen
    /// API (without it that answers 503).
    #[arg(long, value_name = "FILE", requires_all = ["listen", "ring"])]
    pub apply_password_file: Option<PathBuf>,
}

/// How to log in to a server: the password's source and TLS (shared by the
/// commands that connect).
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// File holding the password (first line); must not be readable by
    /// group or others.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// TLS: DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY.
    #[arg(long, value_name = "MODE", default_value = "PREFERRED")]
    pub ssl_mode: SslMode,
    /// CA certificates (PEM) to verify the server with.
    #[arg(long, value_name = "FILE")]
    pub ssl_ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, value_name = "FILE", requires = "ssl_key")]
    pub ssl_cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, value_name = "FILE", requires = "ssl_cert")]
    pub ssl_key: Option<PathBuf>,
    /// The server's RSA public key (PEM) for caching_sha2_password and
    /// sha256_password without TLS (otherwise asked from the server).
    #[arg(long, value_name = "FILE")]
    pub server_public_key: Option<PathBuf>,
}

impl LoginArgs {
    /// The TLS settings of the flags.
    pub fn tls(&self) -> TlsOptions {
        TlsOptions {
            mode: self.ssl_mode,
            ca: self.ssl_ca.clone(),
            cert: self.ssl_cert.clone(),
            key: self.ssl_key.clone(),
        }
    }

    /// Connection options for the server at `url` (`flag` names it in
    /// messages), with the password and TLS files read and checked now.
    pub fn connect_options(&self, flag: &str, url: &str) -> anyhow::Result<ConnectOptions> {
        let url = SourceUrl::parse(url).with_context(|| format!("--{flag}"))?;
        let mut connect = ConnectOptions::new(url.host, url.port, url.user);
        connect.password = read_password(self.password_file.as_deref())?;
        connect.tls = self.tls();
        // Bad certificate or key files are found now, not at the first connect.
        if self.ssl_ca.is_some() || self.ssl_cert.is_some() {
            connect.tls.client_config().context("TLS options")?;
        }
        if let Some(path) = &self.server_public_key {
            connect.server_public_key =
                Some(std::fs::read(path).with_context(|| format!("--server-public-key {}", path.display()))?);
        }
        Ok(connect)
    }
}

/// A parsed `mysql://USER@HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUrl {
    /// User name.
    pub user: String,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl SourceUrl {
    /// Parses the URL; a password in it is refused.
    pub fn parse(url: &str) -> anyhow::Result<SourceUrl> {
        let rest = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
            .with_context(|| format!("{url:?}: expected mysql://USER@HOST[:PORT]"))?;
        let rest = rest.trim_end_matches('/');
        let Some((user, hostport)) = rest.rsplit_once('@') else {
            bail!("{url:?}: no user; expected mysql://USER@HOST[:PORT]");
        };
        if user.contains(':') {
            bail!(
                "a password does not belong on the command line (other users can read it); \
                 set ${PASSWORD_ENV} or use --password-file"
            );
        }
        if user.is_empty() {
            bail!("{url:?}: empty user name");
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').with_context(|| format!("{url:?}: unclosed ["))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            bail!("{url:?}: empty host");
        }
        let port = match port {
            None => 3306,
            Some(p) => p.parse().with_context(|| format!("{url:?}: bad port {p:?}"))?,
        };
        Ok(SourceUrl { user: user.to_string(), host: host.to_string(), port })
    }
}

/// Reads the password: --password-file, else $GAPLESS_PASSWORD, else none.
pub fn read_password(file: Option<&Path>) -> anyhow::Result<Password> {
    match file {
        Some(path) => password_from_file(path, "--password-file"),
        None => Ok(std::env::var_os(PASSWORD_ENV)
            .map(|p| Password::new(p.into_encoded_bytes()))
            .unwrap_or_default()),
    }
}

/// The password on the first line of a file only its owner may read
/// (`flag` names it in messages).
fn password_from_file(path: &Path, flag: &str) -> anyhow::Result<Password> {
    crate::private_file::check_private(path)
        .map_err(|why| anyhow::anyhow!("{flag} {}: {why}", path.display()))?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{flag}: reading {}", path.display()))?;
    Ok(Password::new(text.lines().next().unwrap_or("").as_bytes()))
}

/// How replays started through the API log in to a target: `--apply-user`
/// with the password of `--apply-password-file` (read and checked now), and
/// the TLS settings of the source. `None` without `--apply-password-file`.
fn apply_login(args: &StreamArgs) -> anyhow::Result<Option<api::Login>> {
    let Some(path) = &args.apply.apply_password_file else { return Ok(None) };
    let password = password_from_file(path, "--apply-password-file")?;
    let user = args.apply.apply_user.clone();
    if user.is_empty() {
        bail!("--apply-user: empty user name");
    }
    let tls = args.login.tls();
    // --server-public-key is the source's key, not a target's: a target's
    // is asked from it when needed.
    Ok(Some(Arc::new(move |host: &str, port| {
        let mut connect = ConnectOptions::new(host, port, user.clone());
        connect.password = password.clone();
        connect.tls = tls.clone();
        connect
    })))
}

/// Parses `FILE:POS`.
fn parse_file_pos(s: &str) -> anyhow::Result<DumpFrom> {
    let (file, pos) = s.rsplit_once(':').with_context(|| format!("--from {s:?}: expected FILE:POS"))?;
    let position: u64 = pos.parse().with_context(|| format!("--from {s:?}: bad position {pos:?}"))?;
    if file.is_empty() || position < 4 {
        bail!("--from {s:?}: expected FILE:POS with POS >= 4 (4 is the first event)");
    }
    Ok(DumpFrom::Position { file: file.to_string(), position })
}

/// Parses a GTID start: MariaDB's D-S-N list, or a MySQL set.
fn parse_gtid_start(s: &str) -> anyhow::Result<DumpFrom> {
    if s.trim().is_empty() {
        return Ok(DumpFrom::MariaGtid(MariaGtidList::new()));
    }
    if let Ok(list) = s.parse::<MariaGtidList>() {
        return Ok(DumpFrom::MariaGtid(list));
    }
    let set: GtidSet = s
        .parse()
        .with_context(|| format!("--from-gtid {s:?}: neither MariaDB GTIDs nor a MySQL GTID set"))?;
    Ok(DumpFrom::MysqlGtid(set))
}

fn seconds(flag: &str, secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--{flag} {secs}: expected a positive number of seconds"))
}

/// Turns the flags into a plan.
pub fn plan(args: &StreamArgs) -> anyhow::Result<StreamPlan> {
    let connect = args.login.connect_options("source", &args.source)?;
    let start = match (&args.from, &args.from_gtid) {
        (Some(from), _) => Start::At(parse_file_pos(from)?),
        (None, Some(gtid)) => Start::At(parse_gtid_start(gtid)?),
        (None, None) => Start::Current,
    };
    let report_host = args.report_host.clone().unwrap_or_else(default_report_host);
    Ok(StreamPlan {
        session: SessionConfig {
            connect,
            report_host,
            heartbeat: seconds("heartbeat", args.heartbeat)?,
            semi_sync: args.semi_sync,
        },
        server_id: args.server_id,
        start,
        max_backoff: seconds("max-backoff", args.max_backoff)?,
    })
}

/// The dead-primary detector's settings; `None` when neither --listen nor
/// --on-primary-state asks for it.
fn detect_config(args: &StreamArgs, plan: &StreamPlan) -> anyhow::Result<Option<detect::DetectConfig>> {
    if args.listen.is_none() && args.on_primary_state.is_none() {
        return Ok(None);
    }
    let mut config = detect::DetectConfig::new(
        plan.session.connect.clone(),
        seconds("dead-after", args.dead_after)?,
        seconds("probe-interval", args.probe_interval)?,
        plan.session.heartbeat,
    );
    config.replicas = args.replicas.clone();
    config.command = args.on_primary_state.clone();
    config.hidden_env = vec![PASSWORD_ENV.to_string()];
    Ok(Some(config))
}

/// Threads rendering JSON lines: the CPUs, at most 4.
fn render_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

fn default_report_host() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        "gapless".into()
    } else {
        format!("gapless@{host}")
    }
}

/// Runs `gapless stream`.
pub fn run(args: StreamArgs) -> anyhow::Result<i32> {
    let mut plan = plan(&args)?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let status = Arc::new(Published::new(StreamStatus::default()));
    let mut ring_status = None;
    let mut sink: Box<dyn Sink> = match &args.ring {
        Some(dir) => {
            let sink = open_ring(dir, &args, &mut plan)?;
            ring_status = Some(sink.status());
            Box::new(sink)
        }
        None => stdout_sink(args.format.unwrap_or(StreamFormat::Text))?,
    };
    let (replays, positions) = match &args.listen {
        Some(_) => {
            let login = apply_login(&args)?;
            let source = plan.session.connect.addr();
            (
                Some(Arc::new(api::Replays::new(args.ring.clone(), login.clone()))),
                Some(Arc::new(api::Positions::new(args.ring.clone(), source, login))),
            )
        }
        None => (None, None),
    };
    let listener = match &args.listen {
        Some(addr) => {
            let security = api::Security::load(
                args.api_token_file.as_deref(),
                args.api_tls_cert.as_deref(),
                args.api_tls_key.as_deref(),
            )?;
            Some((runtime.block_on(api::bind(addr, &security))?, security))
        }
        None => None,
    };
    let detection = detect_config(&args, &plan)?;
    let health =
        detection.as_ref().map(|c| Arc::new(Published::new(detect::PrimaryHealth::new(c.login.addr()))));
    let summary = runtime.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = tx.send(true);
        });
        if let (Some(config), Some(health)) = (detection, &health) {
            tokio::spawn(detect::watch(config, Arc::clone(&status), Arc::clone(health), rx.clone()));
        }
        if let Some((listener, security)) = listener {
            let sources = api::Sources {
                stream: Arc::clone(&status),
                ring: ring_status.clone(),
                replay: replays,
                positions,
                primary: health.clone(),
            };
            let stop = rx.clone();
            tokio::spawn(async move {
                if let Err(e) = api::serve(listener, sources, security, stop).await {
                    tracing::error!("status API stopped: {e}");
                }
            });
            // The primary's own position, for the lag shown there.
            tokio::spawn(stream::watch_primary(plan.session.clone(), Arc::clone(&status), rx.clone()));
        }
        stream::run(&plan, sink.as_mut(), &status, rx).await
    })?;
    let resume = &summary.resume;
    info!(
        events = summary.events,
        units = summary.units,
        connections = summary.connections,
        resume = %format!("{}:{}", resume.file, resume.position),
        "stopped"
    );
    Ok(0)
}

/// Opens the ring; a ring that holds a stream already decides where the
/// stream resumes.
fn open_ring(dir: &Path, args: &StreamArgs, plan: &mut StreamPlan) -> anyhow::Result<RingSink> {
    let config = RingConfig {
        ring_bytes: args.ring_size,
        segment_bytes: args.segment_size,
        sync: match args.fsync {
            FsyncArg::Commit => SyncPolicy::Commit,
            FsyncArg::Interval => SyncPolicy::Interval(Duration::from_millis(args.fsync_interval.max(1))),
            FsyncArg::Never => SyncPolicy::Never,
        },
        source: plan.session.connect.addr(),
    };
    let sink = RingSink::open(dir.to_path_buf(), config)?;
    let writer = sink.writer().expect("just opened");
    let resume = writer.resume_point();
    if !resume.file.is_empty() || !resume.maria.is_empty() || !resume.mysql.is_empty() {
        let by_gtid = writer.by_gtid();
        let shown = if by_gtid {
            format!("{}{}", resume.maria, resume.mysql)
        } else {
            format!("{}:{}", resume.file, resume.position)
        };
        if args.from.is_some() || args.from_gtid.is_some() {
            warn!(ring = %dir.display(), resume = %shown, "the ring already holds this stream; resuming after its last transaction, not at --from/--from-gtid");
        } else {
            info!(ring = %dir.display(), resume = %shown, "resuming after the ring's last transaction");
        }
        plan.start = Start::Resume { point: resume.clone(), by_gtid };
    }
    Ok(sink)
}

/// Prints to stdout in `format`.
fn stdout_sink(format: StreamFormat) -> anyhow::Result<Box<dyn Sink>> {
    // Standard output's own file descriptor, written directly: the standard
    // library's stdout would copy everything once more into its line buffer.
    let stdout =
        io::stdout().as_fd().try_clone_to_owned().map(File::from).context("using standard output")?;
    let buffered = |out: File| BufWriter::with_capacity(1 << 20, out);
    let rendered = |format, out| -> Box<dyn Sink> {
        Box::new(RenderSink::verified(renderer(format, Options::default(), Box::new(buffered(out)))))
    };
    Ok(match format {
        // Raw events are written from where they were received, not copied.
        StreamFormat::Raw => Box::new(RawSink::new(stdout)),
        // JSON lines carry no state between rows: render on several cores.
        StreamFormat::Jsonl if render_threads() > 1 => {
            Box::new(ParallelJsonlSink::new(buffered(stdout), render_threads()))
        }
        StreamFormat::Jsonl => rendered(Format::Jsonl, stdout),
        StreamFormat::Text => rendered(Format::Text, stdout),
        StreamFormat::Sql => rendered(Format::Sql, stdout),
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_urls() {
        let u = SourceUrl::parse("mysql://repl@db1.example:3307").unwrap();
        assert_eq!(u, SourceUrl { user: "repl".into(), host: "db1.example".into(), port: 3307 });
        assert_eq!(SourceUrl::parse("mysql://repl@127.0.0.1").unwrap().port, 3306);
        let v6 = SourceUrl::parse("mysql://repl@[::1]:3310/").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 3310));
        let err = SourceUrl::parse("mysql://repl:secret@db1").unwrap_err().to_string();
        assert!(err.contains("password") && !err.contains("secret"), "{err}");
        for bad in ["db1:3306", "mysql://db1", "mysql://@db1", "mysql://u@:3306", "mysql://u@h:x"] {
            assert!(SourceUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_points() {
        assert_eq!(
            parse_file_pos("mysql-bin.000003:1234").unwrap(),
            DumpFrom::Position { file: "mysql-bin.000003".into(), position: 1234 }
        );
        assert!(parse_file_pos("mysql-bin.000003").is_err());
        assert!(parse_file_pos("f:2").is_err());
        assert!(matches!(parse_gtid_start("0-1-42,1-2-7").unwrap(), DumpFrom::MariaGtid(l) if l.len() == 2));
        assert!(matches!(
            parse_gtid_start("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5").unwrap(),
            DumpFrom::MysqlGtid(_)
        ));
        assert!(parse_gtid_start("nonsense").is_err());
    }

    fn stream_args(extra: &[&str]) -> Result<StreamArgs, clap::Error> {
        let argv = ["gapless", "stream", "--source", "mysql://repl@db1:3306", "--ring", "/r"];
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(argv.iter().chain(extra))?;
        match cli.command {
            crate::cli::Command::Stream(args) => Ok(args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn detection_flags() {
        let args = stream_args(&[]).unwrap();
        assert_eq!((args.dead_after, args.probe_interval), (10.0, 1.0));
        assert!(args.replicas.is_empty() && args.on_primary_state.is_none());
        let planned = plan(&args).unwrap();
        assert!(detect_config(&args, &planned).unwrap().is_none(), "neither --listen nor --on-primary-state");

        let args = stream_args(&[
            "--dead-after",
            "3",
            "--probe-interval",
            "0.5",
            "--replica",
            "127.0.0.1:3307",
            "--replica",
            "[::1]:3308",
            "--on-primary-state",
            "logger -t gapless \"$GAPLESS_PRIMARY_STATE\"",
        ])
        .unwrap();
        assert_eq!(
            args.replicas.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["127.0.0.1:3307", "[::1]:3308"]
        );
        let config = detect_config(&args, &plan(&args).unwrap()).unwrap().expect("detection runs");
        assert_eq!(config.dead_after, Duration::from_secs(3));
        assert_eq!(config.probe_interval, Duration::from_millis(500));
        assert_eq!(config.replicas.len(), 2);
        assert_eq!(config.login.addr(), "db1:3306");
        assert_eq!(config.hidden_env, [PASSWORD_ENV]);
        // Two heartbeat periods (5 s by default) and a second of silence.
        assert_eq!(config.stream_silence, Duration::from_secs(11));
        assert!(config.command.unwrap().starts_with("logger"));

        let listen = stream_args(&["--listen", "127.0.0.1:9306"]).unwrap();
        assert!(detect_config(&listen, &plan(&listen).unwrap()).unwrap().is_some());

        assert!(stream_args(&["--replica", "db2"]).unwrap_err().to_string().contains("HOST:PORT"));
        assert!(stream_args(&["--replica", "db2:0"]).is_err());
        for bad in ["0", "-1", "inf", "NaN"] {
            let args = stream_args(&["--listen", "127.0.0.1:9306", &format!("--dead-after={bad}")]).unwrap();
            let err = detect_config(&args, &plan(&args).unwrap()).unwrap_err().to_string();
            assert!(err.contains("--dead-after"), "{err}");
        }
        assert!(stream_args(&["--dead-after", "x"]).is_err());
        let args = stream_args(&["--on-primary-state", "true", "--probe-interval", "0"]).unwrap();
        assert!(detect_config(&args, &plan(&args).unwrap())
            .unwrap_err()
            .to_string()
            .contains("--probe-interval"));
    }

    #[test]
    fn password_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("gapless-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pw");
        std::fs::write(&path, "s3cret\nignored\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_password(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("chmod 600") && !err.contains("s3cret"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password(Some(&path)).unwrap().expose(), b"s3cret");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
