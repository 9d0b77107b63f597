//! The MySQL/MariaDB wire protocol as gapless speaks it: enough of the client
//! protocol to log in and run set-up queries, and the replication commands
//! that turn a connection into a binlog stream.
//!
//! The crate is split the way `postgres-protocol` / `tokio-postgres` are:
//!
//! * a **sans-IO core** ([`packet`], [`handshake`], [`auth`], [`command`],
//!   [`response`], [`binlog`]): every message is a type with `encode` and
//!   `decode`, framing is a pure function of bytes, nothing here blocks or
//!   touches a socket, so all of it is tested exhaustively and fuzzed;
//! * a **thin tokio client** ([`client`]) that moves those messages over TCP,
//!   optionally upgraded to TLS ([`tls`]).
//!
//! It hands out raw binlog event bytes and knows nothing of row formats: the
//! `gapless-decoder` crate does that.

pub mod auth;
pub mod binlog;
pub mod client;
pub mod command;
pub mod error;
pub mod fuzzing;
pub mod handshake;
pub mod packet;
pub mod response;
pub mod tls;
pub mod wire;

pub use error::{ProtocolError, ServerError};
