//! What the crawler records: one [`Visit`] per probe attempt (successful or not, raw), and the
//! facts visits reveal: [`Sighting`]s (who told us about which peer or node), [`PeerState`]s
//! (what a peer held when we looked) and [`PieceCheck`]s (whether a piece it served was genuine).
//!
//! These rows are the only thing probes hand to the store; analyses read them back. Times are
//! microseconds since the Unix epoch ([`now_micros`]), so rows from different processes and runs
//! line up.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::infohash::InfoHash;

/// Microseconds since the Unix epoch.
pub type Micros = i64;

/// The current wall-clock time in microseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The kind of probe a [`Visit`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProbeKind {
    /// KRPC `ping`.
    DhtPing,
    /// KRPC `find_node`.
    DhtFindNode,
    /// KRPC `get_peers`.
    DhtGetPeers,
    /// KRPC `announce_peer`.
    DhtAnnounce,
    /// KRPC `sample_infohashes` (BEP 51).
    DhtSampleInfohashes,
    /// HTTP tracker announce.
    HttpAnnounce,
    /// HTTP tracker scrape.
    HttpScrape,
    /// UDP tracker connect.
    UdpConnect,
    /// UDP tracker announce.
    UdpAnnounce,
    /// UDP tracker scrape.
    UdpScrape,
    /// Peer wire handshake (BEP 3, with the BEP 10 extension handshake when offered).
    PeerHandshake,
    /// `ut_metadata` fetch (BEP 9).
    PeerMetadata,
    /// A piece download and its SHA-1 check.
    PeerPiece,
    /// Gnutella 0.6 crawler handshake (`Crawler: 0.1`, answered with `Peers:` and `Leaves:`).
    GnutellaCrawl,
    /// Gnutella 0.6 leaf connection that sends one Query and collects the QueryHits.
    GnutellaQuery,
    /// An HTTP download of a Gnutella query hit, checked against its advertised size and SHA-1.
    GnutellaDownload,
    /// An HTTP fetch of an onion directory authority's view of the consensus.
    OnionConsensus,
}

impl ProbeKind {
    /// Every kind, in declaration order.
    pub const ALL: [ProbeKind; 17] = [
        ProbeKind::DhtPing,
        ProbeKind::DhtFindNode,
        ProbeKind::DhtGetPeers,
        ProbeKind::DhtAnnounce,
        ProbeKind::DhtSampleInfohashes,
        ProbeKind::HttpAnnounce,
        ProbeKind::HttpScrape,
        ProbeKind::UdpConnect,
        ProbeKind::UdpAnnounce,
        ProbeKind::UdpScrape,
        ProbeKind::PeerHandshake,
        ProbeKind::PeerMetadata,
        ProbeKind::PeerPiece,
        ProbeKind::GnutellaCrawl,
        ProbeKind::GnutellaQuery,
        ProbeKind::GnutellaDownload,
        ProbeKind::OnionConsensus,
    ];

    /// The stable name stored in the database and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::DhtPing => "dht_ping",
            ProbeKind::DhtFindNode => "dht_find_node",
            ProbeKind::DhtGetPeers => "dht_get_peers",
            ProbeKind::DhtAnnounce => "dht_announce_peer",
            ProbeKind::DhtSampleInfohashes => "dht_sample_infohashes",
            ProbeKind::HttpAnnounce => "http_announce",
            ProbeKind::HttpScrape => "http_scrape",
            ProbeKind::UdpConnect => "udp_connect",
            ProbeKind::UdpAnnounce => "udp_announce",
            ProbeKind::UdpScrape => "udp_scrape",
            ProbeKind::PeerHandshake => "peer_handshake",
            ProbeKind::PeerMetadata => "peer_metadata",
            ProbeKind::PeerPiece => "peer_piece",
            ProbeKind::GnutellaCrawl => "gnutella_crawl",
            ProbeKind::GnutellaQuery => "gnutella_query",
            ProbeKind::GnutellaDownload => "gnutella_download",
            ProbeKind::OnionConsensus => "onion_consensus",
        }
    }

    /// A KRPC query of the Mainline DHT.
    pub fn is_dht(self) -> bool {
        matches!(
            self,
            ProbeKind::DhtPing
                | ProbeKind::DhtFindNode
                | ProbeKind::DhtGetPeers
                | ProbeKind::DhtAnnounce
                | ProbeKind::DhtSampleInfohashes
        )
    }

    /// The kind named `name` by [`ProbeKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// How one probe attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A well-formed answer arrived.
    Ok,
    /// Nothing (or not enough) arrived before the deadline.
    Timeout,
    /// The connection was refused, reset or could not be made (ICMP unreachable for UDP).
    Unreachable,
    /// The remote answered with bytes we could not accept (malformed, wrong info-hash, bad piece).
    ProtocolError,
    /// The remote answered with an error of its protocol (KRPC error, tracker failure reason).
    RemoteError,
    /// Not sent: the address is on the deny-list.
    Denied,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Timeout,
        Outcome::Unreachable,
        Outcome::ProtocolError,
        Outcome::RemoteError,
    ];

    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::Unreachable => "unreachable",
            Outcome::ProtocolError => "protocol_error",
            Outcome::RemoteError => "remote_error",
            Outcome::Denied => "denied",
        }
    }

    /// The outcome named `name` by [`Outcome::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// Whether another attempt may succeed (the remote did not answer), as opposed to an answer
    /// that will not change on retry.
    pub fn is_retryable(self) -> bool {
        matches!(self, Outcome::Timeout | Outcome::Unreachable)
    }
}

/// One probe attempt, whatever its outcome: the raw record every analysis can be re-run from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    /// What was asked.
    pub probe: ProbeKind,
    /// Who was asked: `ip:port` for DHT nodes and peers, the announce URL for trackers.
    pub target: String,
    /// The socket address asked, when there is one.
    pub addr: Option<SocketAddr>,
    /// The info-hash the probe was about, if any.
    pub info_hash: Option<InfoHash>,
    /// When the attempt started.
    pub at: Micros,
    /// Time from sending to the answer (or to giving up), in microseconds.
    pub rtt_us: i64,
    /// 1 for the first attempt, 2 for the first retry, and so on.
    pub attempt: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// The error in words, for every outcome but [`Outcome::Ok`].
    pub error: Option<String>,
    /// The DHT node id or the peer id the remote gave.
    pub remote_id: Option<[u8; 20]>,
    /// The client the remote named: KRPC `v`, or BEP 10 `v` (raw bytes; often not UTF-8).
    pub client: Option<Vec<u8>>,
    /// How many non-canonical forms the reply used (unsorted keys and the like).
    pub deviations: u32,
    /// The reply as received, when the probe keeps it (bounded by the probe's size limit).
    pub raw: Option<Vec<u8>>,
}

impl Visit {
    /// A visit of `probe` to `target` starting now, with every answer field empty.
    pub fn start(probe: ProbeKind, target: impl Into<String>, addr: Option<SocketAddr>) -> Self {
        Visit {
            probe,
            target: target.into(),
            addr,
            info_hash: None,
            at: now_micros(),
            rtt_us: 0,
            attempt: 1,
            outcome: Outcome::Timeout,
            error: None,
            remote_id: None,
            client: None,
            deviations: 0,
            raw: None,
        }
    }
}

/// Where a sighting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// A tracker's announce reply.
    Tracker,
    /// A DHT node's `nodes`/`nodes6` (the neighbour graph) or `values` (peers).
    Dht,
    /// A peer's `ut_pex` message (BEP 11).
    Pex,
    /// A Gnutella servent's `Peers:` crawler header: its ultrapeer neighbours (a leaf lists its
    /// ultrapeers).
    GnutellaPeer,
    /// A Gnutella ultrapeer's `Leaves:` crawler header: its leaves.
    GnutellaLeaf,
    /// A Gnutella servent's `X-Try-Ultrapeers:` header: ultrapeers it knows, not neighbours.
    GnutellaTry,
    /// A Gnutella QueryHit relayed by the ultrapeer `source`: the responding servent.
    GnutellaHit,
    /// A relay listed in the consensus an onion directory authority `source` served.
    OnionListed,
    /// A relay the onion directory authority `source` left out of its consensus.
    OnionExcluded,
}

impl SourceKind {
    /// Every kind, in declaration order.
    pub const ALL: [SourceKind; 9] = [
        SourceKind::Tracker,
        SourceKind::Dht,
        SourceKind::Pex,
        SourceKind::GnutellaPeer,
        SourceKind::GnutellaLeaf,
        SourceKind::GnutellaTry,
        SourceKind::GnutellaHit,
        SourceKind::OnionListed,
        SourceKind::OnionExcluded,
    ];

    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Tracker => "tracker",
            SourceKind::Dht => "dht",
            SourceKind::Pex => "pex",
            SourceKind::GnutellaPeer => "gnutella_peer",
            SourceKind::GnutellaLeaf => "gnutella_leaf",
            SourceKind::GnutellaTry => "gnutella_try",
            SourceKind::GnutellaHit => "gnutella_hit",
            SourceKind::OnionListed => "onion_listed",
            SourceKind::OnionExcluded => "onion_excluded",
        }
    }

    /// The kind named `name` by [`SourceKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// "`source` told us about `addr`": a DHT neighbour edge (no info-hash), a peer of a swarm, a
/// Gnutella neighbour, ultrapeer to try, or query responder, or an onion relay a directory
/// authority listed or left out (see [`SourceKind`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// When the reply arrived.
    pub at: Micros,
    /// Tracker, DHT node, PEX peer or Gnutella servent.
    pub source_kind: SourceKind,
    /// The tracker URL or the `ip:port` of the node, peer or servent that answered.
    pub source: String,
    /// The id of the node that answered, for DHT sources.
    pub source_id: Option<[u8; 20]>,
    /// The swarm the peer was given for; `None` for a DHT routing-table neighbour.
    pub info_hash: Option<InfoHash>,
    /// The address reported.
    pub addr: SocketAddr,
    /// The node id (DHT `nodes`), peer id (tracker dictionary peers) or relay fingerprint (its
    /// first 20 bytes) reported with it.
    pub id: Option<[u8; 20]>,
}

/// What a peer held when the swarm monitor connected to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    /// When the handshake completed.
    pub at: Micros,
    /// The peer.
    pub addr: SocketAddr,
    /// The swarm.
    pub info_hash: InfoHash,
    /// Its peer id.
    pub peer_id: [u8; 20],
    /// Its BEP 10 `v`, if it sent one.
    pub client: Option<Vec<u8>>,
    /// Pieces it announced (bitfield and `have`s); `None` if it sent neither in time.
    pub pieces_have: Option<u32>,
    /// Pieces of the torrent, when the monitor knows the metainfo.
    pub pieces_total: Option<u32>,
}

/// The result of downloading one piece from a peer and hashing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceCheck {
    /// When the last block arrived.
    pub at: Micros,
    /// The peer that served it.
    pub addr: SocketAddr,
    /// The swarm.
    pub info_hash: InfoHash,
    /// The piece index.
    pub piece: u32,
    /// Whether its SHA-1 matched the metainfo.
    pub ok: bool,
}

/// One row for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A probe attempt.
    Visit(Visit),
    /// A reported peer or node.
    Sighting(Sighting),
    /// A peer's state.
    PeerState(PeerState),
    /// A verified piece.
    PieceCheck(PieceCheck),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in ProbeKind::ALL {
            assert_eq!(ProbeKind::parse(k.as_str()), Some(k));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        for s in SourceKind::ALL {
            assert_eq!(SourceKind::parse(s.as_str()), Some(s));
        }
        assert_eq!(ProbeKind::parse("nope"), None);
    }

    #[test]
    fn clock_is_after_2020() {
        assert!(now_micros() > 1_577_836_800_000_000);
    }
}
