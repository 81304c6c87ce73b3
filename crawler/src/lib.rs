//! # onionlab-crawler: measurement probes for real P2P overlays
//!
//! Sans-I/O codecs for the BitTorrent side of the toolkit; the crawler depends on no onion crate.
//!
//! - [`bencode`]: a lenient, bounded decoder that records every non-canonical form it accepts
//!   (with byte offsets) and keeps raw byte spans; a canonical encoder.
#![forbid(unsafe_code)]

pub mod bencode;
