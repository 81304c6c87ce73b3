//! # onionlab-client: the SOCKS5 (and HTTP CONNECT) client proxy
//!
//! Point a browser or curl at the SOCKS port and every connection leaves through a 3-hop
//! onion circuit:
//! - [`config`]: the YAML configuration.
//! - [`directory`]: fetching the consensus from any authority that answers, checking its
//!   signatures, and when to fetch again; [`consensus_cache`]: the last one on disk, so a
//!   restart is ready without the authorities.
//! - [`guard`]: the persisted guard sample and its primary guards (guard-spec, simplified).
//! - [`build_timeout`]: the circuit build timeout learned from build times (Tor's CBT).
//! - circuits themselves (telescoping build, streams, RESOLVE) are `onionlab_link::origin`.
//! - [`pool`]: which circuit a stream uses (isolation by SOCKS credentials, 10-minute reuse),
//!   building through the guards within the learned timeout, and clean circuits kept ready
//!   for common ports.
//! - [`exit_request`]: opening a stream or resolving a name at an exit, with one retry on a
//!   fresh circuit and one classification of failures, shared by both front ends:
//! - [`socks`]: the SOCKS5 server (hostnames go to the exit unresolved, Tor's RESOLVE
//!   extension, precise reply codes), with [`socks_codec`] for requests and replies;
//! - [`http_connect`]: the optional HTTP CONNECT proxy port;
//! - [`linger`]: closing after an error answer so that the answer arrives.
//! - [`stats`]: counters for `/metrics`.
//! - [`client`]: start-up and the handle tests and the testbed use.
#![forbid(unsafe_code)]

pub mod build_timeout;
pub mod client;
pub mod config;
pub mod consensus_cache;
pub mod directory;
pub mod exit_request;
pub mod guard;
pub mod http_connect;
pub mod linger;
pub mod pool;
pub mod socks;
pub mod socks_codec;
pub mod stats;

pub use client::{Client, ClientHandle};
pub use config::ClientConfig;
