//! BEP 9 metadata fetch on an open [`PeerSession`]: the info dictionary in 16 KiB pieces over
//! `ut_metadata`, checked against the info-hash.
//!
//! The peer must have offered `ut_metadata` and a `metadata_size` of 1 byte to
//! [`PeerConfig::max_metadata`](super::peer::PeerConfig::max_metadata). Up to
//! [`METADATA_WINDOW`] piece requests are outstanding at once. Each `data` message must be a
//! piece already requested, carry the announced `total_size` and exactly the piece's length
//! (16 KiB, the last one the rest); a `reject` is [`Outcome::RemoteError`]. The assembled bytes
//! must hash to the info-hash, else [`Outcome::ProtocolError`]. Memory grows only with the
//! pieces actually received.

use crate::engine::{Engine, ProbeError, Reply};
use crate::infohash::InfoHash;
use crate::metainfo::{Metainfo, MetainfoError, MetainfoLimits};
use crate::observe::{Outcome, ProbeKind};
use crate::peerwire::{Message, MetadataMessage};

use super::Error;
use super::peer::{PeerSession, UT_METADATA_ID};

/// The size of a metadata piece (BEP 9).
pub const METADATA_PIECE: usize = 16 << 10;
/// Metadata piece requests outstanding at once.
pub const METADATA_WINDOW: usize = 4;

/// A verified info dictionary, exactly as the peer sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The bencoded `info` dictionary; its SHA-1 is the info-hash.
    pub info: Vec<u8>,
}

impl Reply for Metadata {}

impl Metadata {
    /// A `.torrent` file around the info dictionary (kept byte for byte, so the info-hash is
    /// unchanged), with `announce` if given.
    pub fn to_torrent(&self, announce: Option<&str>) -> Vec<u8> {
        let mut out = b"d".to_vec();
        if let Some(url) = announce {
            out.extend_from_slice(format!("8:announce{}:{url}", url.len()).as_bytes());
        }
        out.extend_from_slice(b"4:info");
        out.extend_from_slice(&self.info);
        out.push(b'e');
        out
    }

    /// The parsed torrent (without trackers).
    pub fn metainfo(&self) -> Result<Metainfo, MetainfoError> {
        let mut limits = MetainfoLimits::default();
        limits.bencode.max_input = limits.bencode.max_input.max(self.info.len() + 64);
        Metainfo::parse_with(&self.to_torrent(None), limits)
    }
}

impl PeerSession {
    /// Whether the peer offered `ut_metadata` with a usable `metadata_size`.
    pub fn offers_metadata(&self) -> bool {
        let max = i64::from(self.config().max_metadata);
        self.hello().extension_id(b"ut_metadata").is_some()
            && self
                .hello()
                .ext
                .as_ref()
                .and_then(|e| e.metadata_size)
                .is_some_and(|n| (1..=max).contains(&n))
    }

    /// Fetches and verifies the info dictionary, as one [`ProbeKind::PeerMetadata`] probe.
    pub async fn fetch_metadata(&mut self, engine: &Engine) -> Result<Metadata, Error> {
        if !self.offers_metadata() {
            return Err(Error::Unusable(format!(
                "{} offers no ut_metadata with a metadata_size up to {} bytes",
                self.addr(),
                self.config().max_metadata
            )));
        }
        self.probe_op(engine, ProbeKind::PeerMetadata, |s| Box::pin(s.metadata_attempt()))
            .await
    }

    async fn metadata_attempt(&mut self) -> Result<Metadata, ProbeError> {
        self.begin_op().await?;
        let protocol = |what: String| ProbeError::new(Outcome::ProtocolError, what);
        let their_id = self
            .hello()
            .extension_id(b"ut_metadata")
            .ok_or_else(|| protocol("the peer no longer offers ut_metadata".into()))?;
        let size = self
            .hello()
            .ext
            .as_ref()
            .and_then(|e| e.metadata_size)
            .filter(|&n| n >= 1 && n <= i64::from(self.config().max_metadata))
            .ok_or_else(|| protocol("no usable metadata_size".into()))?;
        let total = usize::try_from(size).map_err(|_| protocol("metadata_size out of range".into()))?;
        let count = total.div_ceil(METADATA_PIECE);
        let mut pieces: Vec<Option<Vec<u8>>> = vec![None; count];
        let (mut requested, mut received) = (0usize, 0usize);
        while received < count {
            while requested < count && requested - received < METADATA_WINDOW {
                let piece = u32::try_from(requested).map_err(|_| protocol("too many pieces".into()))?;
                let payload = MetadataMessage::Request { piece }.encode();
                self.send(&Message::Extended { id: their_id, payload }).await?;
                requested += 1;
            }
            let Message::Extended {
                id: UT_METADATA_ID,
                payload,
            } = self.recv().await?
            else {
                continue;
            };
            let msg = MetadataMessage::decode(&payload)
                .map_err(|e| protocol(format!("ut_metadata: {e}")).with_raw(payload.clone()))?;
            match msg.value {
                MetadataMessage::Data {
                    piece,
                    total_size,
                    data,
                } => {
                    let i = piece as usize;
                    if i >= requested {
                        return Err(protocol(format!("metadata piece {piece} was not requested")));
                    }
                    if total_size != size {
                        return Err(protocol(format!("total_size {total_size}, but metadata_size {size}")));
                    }
                    let want = if i + 1 == count {
                        total - METADATA_PIECE * (count - 1)
                    } else {
                        METADATA_PIECE
                    };
                    if data.len() != want {
                        return Err(protocol(format!(
                            "metadata piece {piece} is {} bytes, expected {want}",
                            data.len()
                        )));
                    }
                    if pieces[i].is_none() {
                        pieces[i] = Some(data);
                        received += 1;
                    }
                }
                MetadataMessage::Reject { piece } => {
                    self.end_op();
                    return Err(ProbeError::new(
                        Outcome::RemoteError,
                        format!("the peer rejected metadata piece {piece}"),
                    ));
                }
                MetadataMessage::Request { .. } => {}
            }
        }
        let info: Vec<u8> = pieces.into_iter().flatten().flatten().collect();
        self.end_op();
        if InfoHash::of_info_bytes(&info) != self.info_hash() {
            return Err(protocol(format!(
                "the {} bytes of metadata do not hash to the info-hash",
                info.len()
            )));
        }
        Ok(Metadata { info })
    }
}
