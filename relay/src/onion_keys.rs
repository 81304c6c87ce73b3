//! The ntor onion keys: the current one and, for a grace period after a rotation, the previous.
//!
//! A client names the onion key `B` it took from its consensus in every CREATE2, so a relay
//! that just rotated still answers clients whose consensus is older: it accepts the current
//! key and, until `onion_key_grace_secs` after the rotation, the previous one. A key is
//! replaced once it is `onion_key_lifetime_secs` old, and the new descriptor is published at
//! once. The identity key never rotates.
//!
//! On disk, in `data_dir`: the secrets in [`CURRENT_FILE`] and [`PREVIOUS_FILE`] (mode 0600,
//! written by `onionlab_link::keystore`), and their creation times in [`TIMES_FILE`], each line
//! naming the public key it dates. A rotation renames the current file to the previous one
//! before creating the new key, so a crash at any point leaves usable keys.

use crate::relay::{Relay, unix_now};
use crate::state_file;
use crate::stats::RelayStats;
use onionlab_link::keystore::{self, KeyStoreError};
use onionlab_proto::keys::{IdentityBytes, OnionPublicKey, OnionSecret, fresh_x25519};
use onionlab_proto::ntor::{KeyMaterial, NtorError, NtorParams, server_respond};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use thiserror::Error;

/// The current onion key's secret.
pub const CURRENT_FILE: &str = "onion_x25519.key";
/// The previous onion key's secret, during its grace period.
pub const PREVIOUS_FILE: &str = "onion_x25519.previous.key";
/// When each key was created.
pub const TIMES_FILE: &str = "onion_keys.state";
const TIMES_HEADER: &str = "onionlab onion key times v1";
/// Longest the rotation task sleeps before looking at the clock again.
const RECHECK: Duration = Duration::from_secs(60);

/// Why the onion keys could not be loaded or rotated.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OnionKeyError {
    /// A key file could not be used.
    #[error(transparent)]
    Key(#[from] KeyStoreError),
    /// A file could not be renamed, removed or written.
    #[error("onion key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OnionKeyError + '_ {
    move |source| OnionKeyError::Io {
        path: path.to_owned(),
        source,
    }
}

struct DatedKey {
    secret: OnionSecret,
    public: OnionPublicKey,
    created: u64,
}

impl DatedKey {
    fn new(secret: OnionSecret, created: u64) -> Self {
        DatedKey {
            public: OnionPublicKey::from(&secret),
            secret,
            created,
        }
    }
}

/// What the keys need next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStep {
    /// The current key is older than its lifetime: replace it.
    Rotate,
    /// The previous key's grace period is over: forget it.
    RetirePrevious,
}

/// The keys in memory, without I/O: which ones answer handshakes and when they change.
struct KeyRing {
    current: DatedKey,
    previous: Option<DatedKey>,
}

impl KeyRing {
    /// When the next step is due (Unix seconds). The previous key's grace runs from the
    /// rotation, which is when the current key was made.
    fn next_step_at(&self, lifetime: u64, grace: u64) -> u64 {
        let rotate = self.current.created.saturating_add(lifetime);
        match self.previous {
            Some(_) => rotate.min(self.current.created.saturating_add(grace)),
            None => rotate,
        }
    }

    fn due(&self, now: u64, lifetime: u64, grace: u64) -> Option<KeyStep> {
        if self.previous.is_some() && now >= self.current.created.saturating_add(grace) {
            Some(KeyStep::RetirePrevious)
        } else if now >= self.current.created.saturating_add(lifetime) {
            Some(KeyStep::Rotate)
        } else {
            None
        }
    }

    /// Answers a CREATE2 with whichever key the client named; true if it was the previous one.
    fn respond(&self, identity: &IdentityBytes, hdata: &[u8]) -> Result<(Vec<u8>, KeyMaterial, bool), NtorError> {
        let answer =
            |key: &DatedKey| server_respond(NtorParams::ONIONLAB, identity, &key.secret, hdata, fresh_x25519());
        match (answer(&self.current), &self.previous) {
            (Err(NtorError::WrongRelay), Some(previous)) => answer(previous).map(|(r, k)| (r, k, true)),
            (result, _) => result.map(|(r, k)| (r, k, false)),
        }
    }

    fn times_text(&self) -> String {
        let mut text = format!("{TIMES_HEADER}\n");
        for k in std::iter::once(&self.current).chain(&self.previous) {
            text.push_str(&format!("{} {}\n", hex::encode(k.public.as_bytes()), k.created));
        }
        text
    }
}

/// The creation time the times file records for `public`.
fn recorded_time(times: Option<&str>, public: &OnionPublicKey) -> Option<u64> {
    let mut lines = times?.lines();
    if lines.next()? != TIMES_HEADER {
        return None;
    }
    let wanted = hex::encode(public.as_bytes());
    lines
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == wanted)
        .and_then(|(_, t)| t.trim().parse().ok())
}

/// The relay's onion keys, on disk and in memory.
pub struct OnionKeys {
    dir: PathBuf,
    ring: RwLock<KeyRing>,
}

impl OnionKeys {
    /// Loads the keys from `dir`, creating the current one on first run. A key without a
    /// recorded creation time counts as created `now`; a previous key past its grace is deleted.
    pub fn load(dir: &Path, now: u64, grace: u64) -> Result<Self, OnionKeyError> {
        let times_path = dir.join(TIMES_FILE);
        let times = state_file::read(&times_path).map_err(io_err(&times_path))?;
        let dated = |secret: OnionSecret| {
            let created = recorded_time(times.as_deref(), &OnionPublicKey::from(&secret)).unwrap_or(now);
            DatedKey::new(secret, created)
        };
        let current = dated(keystore::onion_key(&dir.join(CURRENT_FILE))?);
        let previous_path = dir.join(PREVIOUS_FILE);
        let previous = if previous_path.exists() {
            let previous = dated(keystore::onion_key(&previous_path)?);
            if now < current.created.saturating_add(grace) {
                Some(previous)
            } else {
                std::fs::remove_file(&previous_path).map_err(io_err(&previous_path))?;
                None
            }
        } else {
            None
        };
        let keys = OnionKeys {
            dir: dir.to_owned(),
            ring: RwLock::new(KeyRing { current, previous }),
        };
        keys.save_times()?;
        Ok(keys)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeyRing> {
        self.ring.read().unwrap_or_else(|e| e.into_inner())
    }

    fn save_times(&self) -> Result<(), OnionKeyError> {
        let path = self.dir.join(TIMES_FILE);
        let text = self.read().times_text();
        state_file::write(&path, &text).map_err(io_err(&path))
    }

    /// The current public key (the one to publish).
    pub fn current_public(&self) -> OnionPublicKey {
        self.read().current.public
    }

    /// The previous public key, while it is still accepted.
    pub fn previous_public(&self) -> Option<OnionPublicKey> {
        self.read().previous.as_ref().map(|k| k.public)
    }

    /// Answers a CREATE2 handshake with the current key or, if the client named it, the
    /// previous one; the flag says which.
    pub fn respond(&self, identity: &IdentityBytes, hdata: &[u8]) -> Result<(Vec<u8>, KeyMaterial, bool), NtorError> {
        self.read().respond(identity, hdata)
    }

    /// When the keys next change (Unix seconds).
    pub fn next_step_at(&self, lifetime: u64, grace: u64) -> u64 {
        self.read().next_step_at(lifetime, grace)
    }

    /// Takes the step due at `now`, if any, on disk and then in memory.
    pub fn advance(&self, now: u64, lifetime: u64, grace: u64) -> Result<Option<KeyStep>, OnionKeyError> {
        let Some(step) = self.read().due(now, lifetime, grace) else {
            return Ok(None);
        };
        let current_path = self.dir.join(CURRENT_FILE);
        let previous_path = self.dir.join(PREVIOUS_FILE);
        match step {
            KeyStep::RetirePrevious => {
                self.ring.write().unwrap_or_else(|e| e.into_inner()).previous = None;
                match std::fs::remove_file(&previous_path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&previous_path)(e)),
                    _ => {}
                }
            }
            KeyStep::Rotate => {
                if previous_path.exists() {
                    std::fs::remove_file(&previous_path).map_err(io_err(&previous_path))?;
                }
                std::fs::rename(&current_path, &previous_path).map_err(io_err(&current_path))?;
                let fresh = keystore::onion_key(&current_path)?;
                let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
                let old = std::mem::replace(&mut ring.current, DatedKey::new(fresh, now));
                ring.previous = Some(old);
            }
        }
        self.save_times()?;
        Ok(Some(step))
    }
}

/// Rotates the onion key when it is due, republishing the descriptor at once, and retires
/// the previous key after its grace period.
pub async fn rotation_loop(relay: Arc<Relay>) {
    loop {
        let (lifetime, grace) = {
            let settings = relay.settings();
            (
                settings.config.onion_key_lifetime_secs,
                settings.config.onion_key_grace_secs,
            )
        };
        let wait = relay
            .onion_keys
            .next_step_at(lifetime, grace)
            .saturating_sub(unix_now());
        if wait > 0 {
            tokio::time::sleep(Duration::from_secs(wait).min(RECHECK)).await;
            continue;
        }
        match relay.onion_keys.advance(unix_now(), lifetime, grace) {
            Ok(Some(KeyStep::Rotate)) => {
                RelayStats::bump(&relay.stats.onion_key_rotations);
                tracing::info!(
                    grace_secs = grace,
                    "onion key rotated; the previous one stays valid for the grace period"
                );
                relay.republish.notify_one();
            }
            Ok(Some(KeyStep::RetirePrevious)) => tracing::debug!("previous onion key retired"),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("onion key rotation failed: {e}");
                tokio::time::sleep(RECHECK).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    #[test]
    fn schedule_rotates_after_lifetime_and_retires_after_grace() {
        let ring = KeyRing {
            current: DatedKey::new(fresh_x25519(), 1000),
            previous: None,
        };
        assert_eq!(ring.next_step_at(7 * DAY, DAY), 1000 + 7 * DAY);
        assert_eq!(ring.due(1000 + 7 * DAY - 1, 7 * DAY, DAY), None);
        assert_eq!(ring.due(1000 + 7 * DAY, 7 * DAY, DAY), Some(KeyStep::Rotate));
        let ring = KeyRing {
            previous: Some(ring.current),
            current: DatedKey::new(fresh_x25519(), 5000),
        };
        assert_eq!(ring.next_step_at(7 * DAY, DAY), 5000 + DAY);
        assert_eq!(ring.due(5000 + DAY, 7 * DAY, DAY), Some(KeyStep::RetirePrevious));
        // With grace equal to lifetime, the old previous goes before the next rotation.
        assert_eq!(ring.due(5000 + DAY, DAY, DAY), Some(KeyStep::RetirePrevious));
    }

    #[test]
    fn handshakes_name_current_or_previous_key() {
        use onionlab_proto::ntor::ClientHandshake;
        let id = [9u8; 32];
        let ring = KeyRing {
            current: DatedKey::new(fresh_x25519(), 2),
            previous: Some(DatedKey::new(fresh_x25519(), 1)),
        };
        let stranger = OnionPublicKey::from(&fresh_x25519());
        let previous = ring.previous.as_ref().unwrap().public;
        for (b, expect_previous) in [
            (ring.current.public, Some(false)),
            (previous, Some(true)),
            (stranger, None),
        ] {
            let (client, msg) = ClientHandshake::start(NtorParams::ONIONLAB, &id, &b, fresh_x25519()).unwrap();
            match (ring.respond(&id, &msg), expect_previous) {
                (Ok((reply, _, used_previous)), Some(expected)) => {
                    assert_eq!(used_previous, expected);
                    client.finish(&reply).unwrap();
                }
                (Err(e), None) => assert_eq!(e, NtorError::WrongRelay),
                (other, _) => panic!("unexpected {:?}", other.map(|(_, _, p)| p)),
            }
        }
    }

    #[test]
    fn disk_rotation_keeps_previous_for_grace_and_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let keys = OnionKeys::load(dir.path(), 100, 50).unwrap();
        let first = keys.current_public();
        assert_eq!(keys.advance(150, 100, 50).unwrap(), None);
        assert_eq!(keys.advance(200, 100, 50).unwrap(), Some(KeyStep::Rotate));
        let second = keys.current_public();
        assert_ne!(first, second);
        assert_eq!(keys.previous_public(), Some(first));

        // A restart within the grace period finds both keys and their times.
        let reloaded = OnionKeys::load(dir.path(), 220, 50).unwrap();
        assert_eq!(reloaded.current_public(), second);
        assert_eq!(reloaded.previous_public(), Some(first));
        assert_eq!(reloaded.next_step_at(100, 50), 250);

        assert_eq!(reloaded.advance(250, 100, 50).unwrap(), Some(KeyStep::RetirePrevious));
        assert_eq!(reloaded.previous_public(), None);
        assert!(!dir.path().join(PREVIOUS_FILE).exists());

        // A restart after the grace period deletes a leftover previous key.
        drop(keys);
        assert_eq!(reloaded.advance(300, 100, 50).unwrap(), Some(KeyStep::Rotate));
        assert!(dir.path().join(PREVIOUS_FILE).exists());
        let late = OnionKeys::load(dir.path(), 10_000, 50).unwrap();
        assert_eq!(late.previous_public(), None);
        assert!(!dir.path().join(PREVIOUS_FILE).exists());
    }
}
