//! The cluster file (`/etc/gapless/clusters.toml` by default): one
//! `[cluster.NAME]` table per cluster and an optional `[meta_db]` shared by
//! them. Parsing only; the command line turns a cluster into a checked plan
//! (passwords read, TLS files checked) before any connection.
//!
//! ```toml
//! [meta_db]
//! host = "cmdb.example"
//! port = 3306
//! name = "inventory"
//! user = "gapless_ro"
//! password_file = "/etc/gapless/cmdb-password"
//! datacenter_query = "SELECT dc FROM hosts WHERE hostname = :host AND port = :port"
//! cluster_domain_query = "SELECT vip FROM clusters c JOIN hosts h ON h.cluster = c.name WHERE h.hostname = :host AND h.port = :port"
//! cluster_alias_query = "SELECT cluster FROM hosts WHERE hostname = :host AND port = :port"
//!
//! [cluster.shop]
//! seed = "db1.example:3306"
//! user = "gapless_check"
//! password_file = "/etc/gapless/check-password"
//! vip = "10.0.0.100"
//! interface = "eth0"
//! sidecar = "https://sidecar1.example:9306"
//! sidecar_token_file = "/etc/gapless/sidecar-token"
//! prevent_cross_dc = true
//! max_lag_seconds = 10
//! replication_user = "repl"             # a switchover re-points replicas with it
//! replication_password_file = "/etc/gapless/repl-password"
//! writers = "wait"                      # or "kill"
//! writers_timeout_seconds = 10
//!
//! [cluster.shop.datacenter]
//! "db1.example" = "dc1"
//! "db3.example:3306" = "dc2"
//!
//! [cluster.shop.promotion]
//! "db2.example" = "prefer"
//! "db4.example" = "must_not"
//!
//! [cluster.shop.vip_hosts]             # where a switchover runs `ip addr`
//! "db1.example" = "ssh:db1.example"
//! ```
//!
//! Hosts are keyed `HOST:PORT` or `HOST` (any port), spelled as discovery
//! shows them (the replicas' `report_host`). The names of the earlier Go
//! tool and of orchestrator are accepted beside ours:
//! `PreventCrossDataCenterMasterFailover`, `DetectDataCenterQuery`,
//! `DetectClusterDomainQuery`, `DetectClusterAliasQuery`. A password never
//! belongs in the file: it names a password file (mode 0600).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The default place of the cluster file.
pub const DEFAULT_PATH: &str = "/etc/gapless/clusters.toml";

/// Why the cluster file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not TOML, or not the expected shape.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// A password was written into the file.
    #[error(
        "{table}: {key}: keep passwords out of the cluster file; name a password_file (mode 0600) instead"
    )]
    Password {
        /// `[cluster.NAME]` or `[meta_db]`.
        table: String,
        /// The key.
        key: String,
    },
    /// No `[cluster.NAME]` table for the name asked for.
    #[error("no [cluster.{name}] in the cluster file (it has: {known})")]
    NoSuchCluster {
        /// The name asked for.
        name: String,
        /// The names it has.
        known: String,
    },
}

/// How much a host is wanted as the new primary (orchestrator's promotion
/// rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionRule {
    /// Chosen first.
    Prefer,
    /// No preference.
    #[default]
    Neutral,
    /// Chosen only when nothing better is valid.
    PreferNot,
    /// Never promoted.
    MustNot,
}

impl PromotionRule {
    /// The spelling of the file.
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionRule::Prefer => "prefer",
            PromotionRule::Neutral => "neutral",
            PromotionRule::PreferNot => "prefer_not",
            PromotionRule::MustNot => "must_not",
        }
    }
}

/// Values keyed by `HOST:PORT` or by `HOST` (any port).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HostMap<T>(pub BTreeMap<String, T>);

impl<T> HostMap<T> {
    /// The value for `host:port`, else for `host`. Host names compare
    /// without regard to case.
    pub fn get(&self, host: &str, port: u16) -> Option<&T> {
        let full = super::instance::addr(host, port);
        let find = |key: &str| self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v);
        find(&full).or_else(|| find(host))
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How a switchover may choose the new primary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rules {
    /// orchestrator's `PreventCrossDataCenterMasterFailover`: only a
    /// replica in the primary's datacenter may be promoted.
    pub prevent_cross_dc: bool,
    /// Promotion rules by host.
    pub promotion: HostMap<PromotionRule>,
}

impl Rules {
    /// The rule for `host:port` (neutral unless set).
    pub fn rule(&self, host: &str, port: u16) -> PromotionRule {
        self.promotion.get(host, port).copied().unwrap_or_default()
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// `[cluster.NAME]` tables.
    #[serde(default)]
    pub cluster: BTreeMap<String, ClusterConfig>,
    /// `[meta_db]`.
    pub meta_db: Option<MetaDbConfig>,
    /// `[topology]` and `[precheck]`: flags, as every command's `--config`
    /// file holds them (read by the command line, ignored here).
    #[serde(default)]
    pub topology: Option<toml::Table>,
    /// See [`Self::topology`].
    #[serde(default)]
    pub precheck: Option<toml::Table>,
    /// See [`Self::topology`].
    #[serde(default)]
    pub switchover: Option<toml::Table>,
}

/// What a switchover does about clients still writing to the old primary
/// once it is read_only (their commits fail from then on, but an open
/// transaction holds locks and a privileged client may still write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WritersPolicy {
    /// Wait until they are gone, up to the timeout; then roll back.
    #[default]
    Wait,
    /// `KILL CONNECTION` them.
    Kill,
}

impl WritersPolicy {
    /// The spelling of the file.
    pub fn as_str(self) -> &'static str {
        match self {
            WritersPolicy::Wait => "wait",
            WritersPolicy::Kill => "kill",
        }
    }
}

/// How long a switchover waits for writers by default, in seconds.
pub const DEFAULT_WRITERS_TIMEOUT: u64 = 10;

/// `[cluster.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Any server of the cluster, `HOST:PORT`: discovery starts there and
    /// climbs to the primary.
    pub seed: Option<String>,
    /// The user discovery logs in as on every server.
    pub user: Option<String>,
    /// The file holding that user's password (first line, mode 0600).
    pub password_file: Option<PathBuf>,
    /// TLS: `DISABLED`, `PREFERRED`, `REQUIRED`, `VERIFY_CA` or
    /// `VERIFY_IDENTITY` (as `--ssl-mode`).
    pub ssl_mode: Option<String>,
    /// CA certificates (PEM).
    pub ssl_ca: Option<PathBuf>,
    /// Client certificate (PEM).
    pub ssl_cert: Option<PathBuf>,
    /// Client key (PEM).
    pub ssl_key: Option<PathBuf>,
    /// The cluster's VIP (or the name clients connect to); when the
    /// metadata database also gives one, this one wins.
    pub vip: Option<String>,
    /// The interface that carries the VIP (for `gapless vip`).
    pub interface: Option<String>,
    /// The sidecar's API, `http(s)://HOST:PORT`.
    pub sidecar: Option<String>,
    /// The file holding the sidecar API's token.
    pub sidecar_token_file: Option<PathBuf>,
    /// The CA (PEM) of an https sidecar.
    pub sidecar_ca: Option<PathBuf>,
    /// Only a replica in the primary's datacenter may become primary.
    #[serde(default, alias = "PreventCrossDataCenterMasterFailover")]
    pub prevent_cross_dc: bool,
    /// The most replication lag precheck accepts, in seconds (default 10).
    pub max_lag_seconds: Option<u64>,
    /// Datacenter by host.
    #[serde(default)]
    pub datacenter: HostMap<String>,
    /// Promotion rules by host.
    #[serde(default)]
    pub promotion: HostMap<PromotionRule>,
    /// A switchover's policy for clients still writing to the old primary
    /// (default `wait`).
    pub writers: Option<WritersPolicy>,
    /// How long that policy may take, in seconds (default 10); also the
    /// longest `SET GLOBAL read_only = ON` waits for a running write.
    pub writers_timeout_seconds: Option<u64>,
    /// The user replicas replicate as: a switchover re-points them with it
    /// (`CHANGE MASTER TO MASTER_USER`; the servers do not show the
    /// password, so it must be given).
    pub replication_user: Option<String>,
    /// The file holding that user's password (first line, mode 0600).
    pub replication_password_file: Option<PathBuf>,
    /// Where the VIP commands run for each server (a `gapless vip` host
    /// spec: `ssh:db1`, `netns:NAME`, `local`); default `ssh:HOST`.
    #[serde(default)]
    pub vip_hosts: HostMap<String>,
    /// Refused with a clear message (see [`ConfigError::Password`]).
    password: Option<toml::Value>,
    /// Refused too.
    replication_password: Option<toml::Value>,
}

/// `[meta_db]`: where the datacenter, VIP and alias of each instance are
/// looked up. Each query is a template whose host and port placeholders are
/// bound as parameters (see [`super::meta::Template`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaDbConfig {
    /// Its host.
    pub host: String,
    /// Its port (default 3306).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The database the queries run in.
    pub name: Option<String>,
    /// The user (default: the cluster's).
    pub user: Option<String>,
    /// Its password file (default: the cluster's password).
    pub password_file: Option<PathBuf>,
    /// TLS mode for it (default: the cluster's).
    pub ssl_mode: Option<String>,
    /// CA for it (default: the cluster's).
    pub ssl_ca: Option<PathBuf>,
    /// The datacenter of an instance.
    #[serde(alias = "DetectDataCenterQuery")]
    pub datacenter_query: Option<String>,
    /// The cluster's domain, which is its VIP, asked for the primary.
    #[serde(alias = "DetectClusterDomainQuery")]
    pub cluster_domain_query: Option<String>,
    /// The cluster's alias, asked for the primary.
    #[serde(alias = "DetectClusterAliasQuery")]
    pub cluster_alias_query: Option<String>,
    /// Refused with a clear message.
    password: Option<toml::Value>,
}

fn default_port() -> u16 {
    3306
}

impl ClusterFile {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<ClusterFile, ConfigError> {
        let file: ClusterFile = toml::from_str(text)?;
        for (name, cluster) in &file.cluster {
            for (key, value) in
                [("password", &cluster.password), ("replication_password", &cluster.replication_password)]
            {
                if value.is_some() {
                    return Err(ConfigError::Password {
                        table: format!("[cluster.{name}]"),
                        key: key.into(),
                    });
                }
            }
        }
        if file.meta_db.as_ref().is_some_and(|m| m.password.is_some()) {
            return Err(ConfigError::Password { table: "[meta_db]".into(), key: "password".into() });
        }
        Ok(file)
    }

    /// The cluster called `name`.
    pub fn cluster(&self, name: &str) -> Result<&ClusterConfig, ConfigError> {
        self.cluster.get(name).ok_or_else(|| ConfigError::NoSuchCluster {
            name: name.to_string(),
            known: if self.cluster.is_empty() {
                "none".into()
            } else {
                self.cluster.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
    }
}

impl ClusterConfig {
    /// The candidate rules it sets.
    pub fn rules(&self) -> Rules {
        Rules { prevent_cross_dc: self.prevent_cross_dc, promotion: self.promotion.clone() }
    }

    /// The writers policy and its timeout.
    pub fn writers(&self) -> (WritersPolicy, std::time::Duration) {
        (
            self.writers.unwrap_or_default(),
            std::time::Duration::from_secs(self.writers_timeout_seconds.unwrap_or(DEFAULT_WRITERS_TIMEOUT)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
        [meta_db]
        host = "cmdb.example"
        name = "inventory"
        DetectDataCenterQuery = "SELECT dc FROM hosts WHERE hostname = '{host}' AND port = {port}"
        cluster_domain_query = "SELECT vip FROM hosts WHERE hostname = ?"

        [precheck]
        max-lag = 5

        [cluster.shop]
        seed = "db1.example:3306"
        user = "check"
        password_file = "/etc/gapless/pw"
        vip = "10.0.0.100"
        interface = "eth0"
        sidecar = "http://127.0.0.1:9306"
        PreventCrossDataCenterMasterFailover = true
        max_lag_seconds = 3
        replication_user = "repl"
        replication_password_file = "/etc/gapless/repl"
        writers = "kill"
        writers_timeout_seconds = 4

        [cluster.shop.datacenter]
        "db1.example" = "dc1"
        "DB2.example:3307" = "dc2"

        [cluster.shop.promotion]
        "db2.example" = "prefer"
        "db3.example:3306" = "must_not"

        [cluster.shop.vip_hosts]
        "db1.example" = "ssh:admin@db1"

        [switchover]
        wait-timeout = 5

        [cluster.other]
        seed = "x:1"
    "#;

    #[test]
    fn a_full_file() {
        let file = ClusterFile::parse(FULL).unwrap();
        let meta = file.meta_db.as_ref().unwrap();
        assert_eq!((meta.host.as_str(), meta.port), ("cmdb.example", 3306));
        assert!(meta.datacenter_query.as_deref().unwrap().contains("{host}"));
        assert!(meta.cluster_alias_query.is_none());
        let shop = file.cluster("shop").unwrap();
        assert!(shop.prevent_cross_dc);
        assert_eq!(shop.max_lag_seconds, Some(3));
        assert_eq!(shop.datacenter.get("db1.example", 3306).map(String::as_str), Some("dc1"));
        assert_eq!(shop.datacenter.get("db2.example", 3307).map(String::as_str), Some("dc2"));
        assert_eq!(shop.datacenter.get("db2.example", 3306), None, "keyed by port");
        let rules = shop.rules();
        assert_eq!(rules.rule("db2.example", 1), PromotionRule::Prefer);
        assert_eq!(rules.rule("db3.example", 3306), PromotionRule::MustNot);
        assert_eq!(rules.rule("db3.example", 3307), PromotionRule::Neutral);
        assert!(!file.cluster("other").unwrap().prevent_cross_dc);
        assert_eq!(shop.writers(), (WritersPolicy::Kill, std::time::Duration::from_secs(4)));
        assert_eq!(shop.replication_user.as_deref(), Some("repl"));
        assert_eq!(shop.vip_hosts.get("DB1.example", 3306).map(String::as_str), Some("ssh:admin@db1"));
        let other = file.cluster("other").unwrap();
        assert_eq!(other.writers(), (WritersPolicy::Wait, std::time::Duration::from_secs(10)), "defaults");
    }

    #[test]
    fn mistakes_are_named() {
        let err = ClusterFile::parse(FULL).unwrap().cluster("nope").unwrap_err().to_string();
        assert!(err.contains("[cluster.nope]") && err.contains("other, shop"), "{err}");
        let err = ClusterFile::parse("[cluster.a]\npassword = \"s3cret\"\n").unwrap_err().to_string();
        assert!(err.contains("password_file") && !err.contains("s3cret"), "{err}");
        let err =
            ClusterFile::parse("[meta_db]\nhost = \"m\"\npassword = \"s3cret\"\n").unwrap_err().to_string();
        assert!(err.contains("[meta_db]") && !err.contains("s3cret"), "{err}");
        let err =
            ClusterFile::parse("[cluster.a]\nreplication_password = \"s3cret\"\n").unwrap_err().to_string();
        assert!(err.contains("replication_password") && !err.contains("s3cret"), "{err}");
        let err = ClusterFile::parse("[cluster.a]\nwriters = \"shoot\"\n").unwrap_err().to_string();
        assert!(err.contains("shoot") || err.contains("variant"), "{err}");
        let err = ClusterFile::parse("[cluster.a]\nsed = \"x:1\"\n").unwrap_err().to_string();
        assert!(err.contains("sed"), "a typo is named: {err}");
        let err = ClusterFile::parse("[cluster.a.promotion]\nx = \"maybe\"\n").unwrap_err().to_string();
        assert!(err.contains("maybe") || err.contains("variant"), "{err}");
    }
}
