//! The last accepted consensus on disk (`DATA_DIR/cached-consensus`), exactly the signed bytes
//! an authority served, so a restarted client is ready without asking any authority.
//!
//! The file is trusted no more than the network: on load it is decoded and its signatures and
//! validity period are checked again against the configured authorities, and it is used only
//! if it passes (a stale, corrupt or foreign file is ignored with a log line). Reads are
//! limited to [`MAX_CONSENSUS_LEN`]; writes go to a temporary file renamed into place.

use crate::directory::verified;
use onionlab_proto::consensus::{Consensus, MAX_CONSENSUS_LEN};
use onionlab_proto::keys::IdentityBytes;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the consensus is cached.
#[derive(Debug, Clone)]
pub struct ConsensusCache {
    path: PathBuf,
}

impl ConsensusCache {
    /// The cache in `data_dir/cached-consensus`.
    pub fn new(data_dir: &Path) -> Self {
        ConsensusCache {
            path: data_dir.join("cached-consensus"),
        }
    }

    /// The cached consensus if it verifies against `trusted` at `now`.
    pub fn load(&self, trusted: &[IdentityBytes], now: u64) -> Option<Consensus> {
        let bytes = match self.read() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("cannot read {}: {e}", self.path.display());
                return None;
            }
        };
        match verified(&bytes, trusted, now) {
            Ok(c) => {
                tracing::info!(relays = c.relays.len(), "using the cached consensus");
                Some(c)
            }
            Err(e) => {
                tracing::info!("ignoring the cached consensus: {e}");
                None
            }
        }
    }

    fn read(&self) -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::fs::File::open(&self.path)?
            .take(MAX_CONSENSUS_LEN as u64 + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Replaces the cached bytes (failures are logged: the cache is a convenience).
    pub fn store(&self, signed_bytes: &[u8]) {
        let write = || -> std::io::Result<()> {
            if let Some(d) = self.path.parent() {
                std::fs::create_dir_all(d)?;
            }
            let tmp = self.path.with_extension("tmp");
            std::fs::write(&tmp, signed_bytes)?;
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            tracing::warn!("cannot cache the consensus in {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use onionlab_proto::consensus::{ConsensusRelay, Flags, SignedConsensus};
    use onionlab_proto::descriptor::RelayInfo;
    use onionlab_proto::exit_policy::ExitPolicy;
    use onionlab_proto::keys::{OnionPublicKey, SigningKey, fresh_x25519};

    pub(crate) fn authority(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// Relay `i` of a test consensus: address 10.i.0.1, identity `[i; 32]`.
    pub(crate) fn relay(i: u8, flags: Flags, exit_policy: ExitPolicy) -> ConsensusRelay {
        ConsensusRelay {
            info: RelayInfo {
                nickname: format!("r{i}"),
                identity: [i; 32],
                onion_key: OnionPublicKey::from(&fresh_x25519()).to_bytes(),
                or_addr: format!("10.{i}.0.1:9001").parse().unwrap(),
                bandwidth: 1000,
                exit_policy,
                family: Vec::new(),
            },
            flags,
        }
    }

    /// A consensus of three relays with every flag, valid until `fresh_until` plus twice its
    /// freshness, signed by [`authority`]`(seed)`.
    pub(crate) fn signed(valid_after: u64, fresh_until: u64, seed: u8) -> SignedConsensus {
        let flags = Flags(Flags::ALL.iter().fold(0, |a, (f, _)| a | f.0) & !Flags::BAD_EXIT.0);
        let relays = (1..=3u8).map(|i| relay(i, flags, ExitPolicy::default_exit())).collect();
        let mut sc = SignedConsensus::new(Consensus {
            valid_after,
            fresh_until,
            valid_until: fresh_until + 2 * (fresh_until - valid_after),
            relays,
        });
        sc.add_signature(&authority(seed));
        sc
    }

    #[test]
    fn a_stored_consensus_is_reverified_on_load() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ConsensusCache::new(dir.path());
        let trusted = [authority(1).verifying_key().to_bytes()];
        assert!(cache.load(&trusted, 1000).is_none(), "nothing cached yet");
        let sc = signed(1000, 1060, 1);
        cache.store(&sc.encode());
        assert_eq!(cache.load(&trusted, 1010), Some(sc.consensus.clone()));
        // Still usable after fresh_until, not after valid_until.
        assert!(cache.load(&trusted, 1100).is_some());
        assert!(cache.load(&trusted, 1181).is_none(), "expired");
        // Not signed by a trusted authority.
        assert!(cache.load(&[authority(2).verifying_key().to_bytes()], 1010).is_none());
        // Tampered bytes.
        let mut bytes = sc.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        cache.store(&bytes);
        assert!(cache.load(&trusted, 1010).is_none());
        // Oversized files are not read whole.
        std::fs::write(dir.path().join("cached-consensus"), vec![0u8; MAX_CONSENSUS_LEN + 10]).unwrap();
        assert!(cache.load(&trusted, 1010).is_none());
    }
}
