//! gapless: a sidecar for MySQL and MariaDB primaries that keeps their
//! binlog and completes failovers without losing transactions.
//!
//! This crate holds the capabilities; `src/main.rs` only dispatches.
//! - [`decode`]: offline decoding of binlog files with filters;
//! - [`render`]: the text, JSON lines and SQL output formats;
//! - [`stream`]: following a primary as a replica;
//! - [`ring`]: the crash-safe on-disk ring of the primary's recent binlog;
//! - [`replay`]: applying what a promoted replica lacks from the ring;
//! - [`detect`]: the sidecar's own judgement of whether the primary is dead;
//! - [`api`]: the HTTP status API (`/status` JSON, `/metrics` for Prometheus);
//! - [`hook`]: the commands orchestrator runs in its failover hooks;
//! - [`vip`]: moving a virtual IP between hosts without making two owners;
//! - [`cli`]: command-line flags and their checks.
#![warn(missing_docs)]

pub mod api;
pub mod atomic_file;
pub mod cli;
pub mod decode;
pub mod detect;
pub mod hook;
pub mod private_file;
pub mod render;
pub mod replay;
pub mod ring;
pub mod stream;
pub mod topology;
pub mod vip;
