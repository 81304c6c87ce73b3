//! # onionlab-link: where sockets become cells
//!
//! The one crate that turns TCP sockets into onionlab cells and back, shared by the relay,
//! the client and the directory authority's reachability test:
//! - [`tls`]: TLS 1.3 configurations (self-signed relay certificates, ring provider).
//! - [`channel`]: a TLS link carrying 514-byte cells, bound to the responder's Ed25519
//!   identity by the LINK_AUTH proof; a reader with timeouts and a batching writer task.
//! - [`streams`]: the edge of a circuit: application TCP streams pumped into DATA cells and
//!   back under SENDME windows (the same code at the client and at the exit).
//! - [`registry`]: circuits by id on each link, and open links by relay identity.
//! - [`origin`]: circuits this process builds (the client's, the bandwidth scanner's).
//! - [`keystore`]: long-term keys on disk, created on first run, mode 0600.
//! - [`dirhttp`]: the small HTTP client relays and clients use to talk to authorities.
//!
//! Two daemon comforts live here too because every daemon links this crate and they would
//! otherwise be copied four times: [`config`] (YAML with limits and located errors) and
//! [`accept`] (the accept loop), [`logging`] (tracing setup that keeps SOCKS details out of logs), and [`metrics`] (Prometheus
//! text on a loopback port).
#![forbid(unsafe_code)]

pub mod accept;
pub mod channel;
pub mod config;
pub mod dirhttp;
pub mod keystore;
pub mod logging;
pub mod metrics;
pub mod origin;
pub mod registry;
pub mod streams;
pub mod tls;

pub use channel::{CellReader, Channel, ChannelSender, LinkError};
