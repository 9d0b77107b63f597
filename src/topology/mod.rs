//! Cluster topology, metadata and precheck, straight from the servers
//! (through mysql_async), with or without orchestrator.
//!
//! - [`config`]: the cluster file (`[cluster.NAME]`, `[meta_db]`);
//! - [`discover`]: from a seed to the primary and down through every
//!   replica, into the [`instance`] model;
//! - [`meta`]: datacenter, VIP and alias from a metadata database, with
//!   bound parameters only;
//! - [`candidates`]: which replica may become the primary (shared with a
//!   switchover);
//! - [`errant`]: GTIDs a replica has and its primary lacks;
//! - [`precheck`]: the checks, pure functions over a [`Survey`];
//! - [`table`]: the text output;
//! - [`sidecar`]: the sidecar's status;
//! - [`plan`], [`switchover`], [`dual`]: `gapless switchover`, planned as a
//!   pure function of the survey, then carried out step by step.
//!
//! The I/O is in [`survey`]: it reads the sidecar's status, discovers the
//! topology, asks the metadata database, puts the datacenters on the
//! instances and probes the VIP. Everything after it is pure.

pub mod candidates;
pub mod config;
pub mod conn;
pub mod discover;
pub mod dual;
pub mod errant;
pub mod instance;
pub mod meta;
pub mod plan;
pub mod precheck;
pub mod sidecar;
pub mod switchover;
pub mod table;

use std::time::Duration;

use serde::Serialize;

pub use candidates::{candidates, Candidate};
pub use config::{HostMap, PromotionRule, Rules};
pub use conn::Login;
pub use discover::{discover, DiscoverError, DiscoverOptions};
pub use instance::{Instance, Role, Topology};
pub use meta::{MetaAnswers, MetaPlan};
pub use sidecar::{SidecarPlan, SidecarReport};

/// Everything needed to survey one cluster, checked before any connection.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    /// The cluster's name.
    pub name: String,
    /// Where discovery starts.
    pub seed: (String, u16),
    /// How to log in to its servers.
    pub login: Login,
    /// The VIP from the config (wins over the metadata's cluster domain).
    pub vip: Option<String>,
    /// The interface of the VIP.
    pub interface: Option<String>,
    /// The sidecar's API.
    pub sidecar: Option<SidecarPlan>,
    /// Datacenters from the config (win over the metadata's).
    pub datacenters: HostMap<String>,
    /// Candidate rules.
    pub rules: Rules,
    /// The metadata database.
    pub meta: Option<MetaPlan>,
    /// The limit for each connect, statement and request.
    pub limit: Duration,
}

/// Who answered on the VIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipAnswer {
    /// Its `@@server_id`.
    pub server_id: Option<u32>,
    /// Its `@@hostname`.
    pub hostname: Option<String>,
}

/// A connection to the VIP at the primary's port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipProbe {
    /// The VIP (or cluster domain).
    pub vip: String,
    /// Who answered, or why nobody did.
    #[serde(serialize_with = "crate::topology::instance::value_or_error")]
    pub answer: Result<VipAnswer, String>,
}

/// A surveyed cluster: what precheck and a switchover start from.
#[derive(Debug, Clone, Serialize)]
pub struct Survey {
    /// The cluster's name.
    pub cluster: String,
    /// The topology, with datacenters filled in.
    pub topology: Topology,
    /// The metadata database's answers (when one is configured).
    pub meta: Option<MetaAnswers>,
    /// The VIP probe (when a VIP is known).
    pub vip: Option<VipProbe>,
    /// The sidecar's status (when one is configured).
    pub sidecar: Option<SidecarReport>,
    /// The alias: the metadata's, else none.
    pub alias: Option<String>,
}

/// Why there is no survey.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SurveyError {
    /// Discovery failed.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
}

/// Puts a datacenter on every instance: the config's, else the metadata's.
pub fn apply_datacenters(t: &mut Topology, config: &HostMap<String>, meta: Option<&MetaAnswers>) {
    for i in &mut t.instances {
        if let Some(dc) = config.get(&i.host, i.port) {
            i.datacenter = Some(dc.clone());
            i.datacenter_from = Some(instance::DcSource::Config);
        } else if let Some(dc) =
            meta.and_then(|m| m.datacenters.iter().find(|a| a.instance == i.addr())).and_then(|a| a.found())
        {
            i.datacenter = Some(dc.to_string());
            i.datacenter_from = Some(instance::DcSource::MetaDb);
        }
    }
}

async fn probe_vip(login: &Login, vip: &str, port: u16, limit: Duration) -> VipProbe {
    let answer = async {
        let mut c = conn::connect(login, vip, port, None, limit).await.map_err(|e| e.to_string())?;
        let at = instance::addr(vip, port);
        let rows =
            conn::query(&mut c, &at, "SELECT @@server_id AS server_id, @@hostname AS hostname", limit).await;
        conn::close(c).await;
        let rows = rows.map_err(|e| e.to_string())?;
        let row = rows.first().ok_or_else(|| format!("{at}: no answer"))?;
        Ok(VipAnswer {
            server_id: row.number(&["server_id"]),
            hostname: row.text(&["hostname"]).map(str::to_string),
        })
    }
    .await;
    VipProbe { vip: vip.to_string(), answer }
}

/// Surveys the cluster: the sidecar's status first (its server id tells its
/// registration apart), then discovery, the metadata look-ups, the
/// datacenters and the VIP probe.
pub async fn survey(plan: &ClusterPlan) -> Result<Survey, SurveyError> {
    let sidecar = match &plan.sidecar {
        Some(s) => {
            let s = s.clone();
            let limit = plan.limit;
            let url = s.url.clone();
            Some(tokio::task::spawn_blocking(move || sidecar::fetch(&s, limit)).await.unwrap_or_else(|e| {
                SidecarReport { url, status: Err(format!("the status request failed: {e}")) }
            }))
        }
        None => None,
    };
    let sidecar_ids =
        sidecar.as_ref().and_then(|s| s.status.as_ref().ok()).and_then(|s| s.server_id).into_iter().collect();
    let options = DiscoverOptions {
        login: plan.login.clone(),
        limit: plan.limit,
        sidecar_ids,
        sidecar_hosts: plan.sidecar.iter().filter_map(SidecarPlan::host).collect(),
        hints: plan
            .datacenters
            .0
            .keys()
            .chain(plan.rules.promotion.0.keys())
            .filter_map(|k| k.parse::<crate::detect::Endpoint>().ok())
            .map(|e| (e.host, e.port))
            .collect(),
    };
    let mut topology = discover(&plan.seed.0, plan.seed.1, &options).await?;
    let meta = match &plan.meta {
        Some(m) => {
            let asked: Vec<(String, u16)> = topology
                .instances
                .iter()
                .filter(|i| i.role != Role::Sidecar && plan.datacenters.get(&i.host, i.port).is_none())
                .map(|i| (i.host.clone(), i.port))
                .collect();
            let primary = topology.primary().map(|p| (p.host.clone(), p.port));
            Some(
                meta::look_up_all(m, &asked, primary.as_ref().map(|(h, p)| (h.as_str(), *p)), plan.limit)
                    .await,
            )
        }
        None => None,
    };
    apply_datacenters(&mut topology, &plan.datacenters, meta.as_ref());
    let domain =
        meta.as_ref().and_then(|m| m.cluster_domain.as_ref()).and_then(|a| a.found()).map(str::to_string);
    let alias =
        meta.as_ref().and_then(|m| m.cluster_alias.as_ref()).and_then(|a| a.found()).map(str::to_string);
    let vip = match (plan.vip.clone().or(domain), topology.primary()) {
        (Some(vip), Some(p)) => Some(probe_vip(&plan.login, &vip, p.port, plan.limit).await),
        _ => None,
    };
    Ok(Survey { cluster: plan.name.clone(), topology, meta, vip, sidecar, alias })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::meta::Answer;

    #[test]
    fn datacenters_from_config_then_metadata() {
        let mut t = candidates::tests::cluster();
        for i in &mut t.instances {
            i.datacenter = None;
        }
        let config = HostMap([("h:1".to_string(), "dcA".to_string())].into());
        let meta = MetaAnswers {
            database: "m:3306".into(),
            datacenters: vec![
                Answer { instance: "h:1".into(), value: Ok(Some("ignored".into())) },
                Answer { instance: "h:2".into(), value: Ok(Some("dcB".into())) },
                Answer { instance: "h:3".into(), value: Ok(None) },
            ],
            ..MetaAnswers::default()
        };
        apply_datacenters(&mut t, &config, Some(&meta));
        let dcs: Vec<(Option<&str>, Option<instance::DcSource>)> =
            t.instances.iter().map(|i| (i.datacenter.as_deref(), i.datacenter_from)).collect();
        assert_eq!(
            dcs,
            [
                (Some("dcA"), Some(instance::DcSource::Config)),
                (Some("dcB"), Some(instance::DcSource::MetaDb)),
                (None, None),
                (None, None)
            ]
        );
    }
}
