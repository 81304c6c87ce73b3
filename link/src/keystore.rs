//! Long-term keys on disk: created on first run, kept across restarts, readable only by the owner.
//!
//! Each key is a small text file: a header line naming the key type, then 64 hex digits.
//! Files are written to a temporary name with mode 0600 and renamed into place, so a crash
//! never leaves half a key. A key file readable by group or others is refused, as ssh does.

use onionlab_proto::keys::{OnionSecret, SigningKey, fresh_signing_key, fresh_x25519};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;
use zeroize::Zeroizing;

const ED25519_HEADER: &str = "onionlab ed25519 identity secret v1";
const X25519_HEADER: &str = "onionlab x25519 onion secret v1";

/// Why a key file could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a key of the expected kind.
    #[error("key file {0} is not a valid key of this kind")]
    Malformed(PathBuf),
    /// The file's permissions let others read it.
    #[error("key file {0} is readable by group or others; run chmod 600 on it")]
    TooOpen(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn load_or_create(
    path: &Path,
    header: &str,
    fresh: impl FnOnce() -> Zeroizing<[u8; 32]>,
) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let mode = fs::metadata(path).map_err(io_err(path))?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(KeyStoreError::TooOpen(path.to_owned()));
            }
            let text = Zeroizing::new(text);
            let mut lines = text.lines();
            if lines.next() != Some(header) {
                return Err(KeyStoreError::Malformed(path.to_owned()));
            }
            let mut out = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(lines.next().unwrap_or("").trim(), &mut out[..])
                .map_err(|_| KeyStoreError::Malformed(path.to_owned()))?;
            Ok(out)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = fresh();
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(io_err(dir))?;
            }
            let tmp = path.with_extension("tmp");
            let _ = fs::remove_file(&tmp);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            let body = Zeroizing::new(format!("{header}\n{}\n", hex::encode(&key[..])));
            f.write_all(body.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(io_err(&tmp))?;
            fs::rename(&tmp, path).map_err(io_err(path))?;
            Ok(key)
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Loads the Ed25519 identity at `path`, creating it on first run.
pub fn identity_key(path: &Path) -> Result<SigningKey, KeyStoreError> {
    let seed = load_or_create(path, ED25519_HEADER, || Zeroizing::new(fresh_signing_key().to_bytes()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Loads the x25519 onion key at `path`, creating it on first run.
pub fn onion_key(path: &Path) -> Result<OnionSecret, KeyStoreError> {
    let bytes = load_or_create(path, X25519_HEADER, || Zeroizing::new(fresh_x25519().to_bytes()))?;
    Ok(OnionSecret::from(*bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/identity.key");
        let k1 = identity_key(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let k2 = identity_key(&path).unwrap();
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        // An onion-key file is not an identity.
        let onion = dir.path().join("onion.key");
        onion_key(&onion).unwrap();
        assert!(matches!(identity_key(&onion), Err(KeyStoreError::Malformed(_))));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(identity_key(&path), Err(KeyStoreError::TooOpen(_))));
    }
}
