//! The entry guard: one relay the client enters the network through, kept across restarts.
//!
//! Using one guard for a long time means a client meets a hostile entry relay rarely, rather
//! than eventually with certainty. The guard's fingerprint is kept in `DATA_DIR/state.json`;
//! it is replaced only when the consensus no longer lists it as a Running guard.

use onionlab_proto::consensus::{Consensus, ConsensusRelay, Flags};
use onionlab_proto::keys::{fingerprint, parse_fingerprint};
use onionlab_proto::path::{PathError, choose_guard};
use onionlab_proto::random::ThreadRandom;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    guard: Option<String>,
}

/// Where the guard is kept.
#[derive(Debug, Clone)]
pub struct GuardStore {
    path: PathBuf,
}

impl GuardStore {
    /// State kept in `data_dir/state.json`.
    pub fn new(data_dir: &Path) -> Self {
        GuardStore {
            path: data_dir.join("state.json"),
        }
    }

    fn load(&self) -> State {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, state: &State) {
        let write = || -> std::io::Result<()> {
            if let Some(d) = self.path.parent() {
                std::fs::create_dir_all(d)?;
            }
            let tmp = self.path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?)?;
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            tracing::warn!("cannot save guard state to {}: {e}", self.path.display());
        }
    }

    /// The persisted guard if the consensus still lists it as a Running guard; otherwise a
    /// newly chosen one, which is persisted.
    pub fn guard(&self, consensus: &Consensus) -> Result<ConsensusRelay, PathError> {
        let state = self.load();
        if let Some(id) = state.guard.as_deref().and_then(|g| parse_fingerprint(g).ok()) {
            if let Some(r) = consensus.relay(&id)
                && r.flags.contains(Flags::RUNNING)
                && r.flags.contains(Flags::GUARD)
            {
                return Ok(r.clone());
            }
            tracing::info!("guard {} is no longer usable; choosing a new one", fingerprint(&id));
        }
        let chosen = choose_guard(consensus, &mut ThreadRandom)?.clone();
        self.save(&State {
            guard: Some(fingerprint(&chosen.info.identity)),
        });
        Ok(chosen)
    }
}
