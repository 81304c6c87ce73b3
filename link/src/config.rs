//! Loading the daemons' YAML configuration files, with limits and located errors.
//!
//! Every daemon (`onionlab-dirauth`, `onionlab-relay`, `onionlab-client`, `onionlab`) reads its
//! configuration through [`load`]: at most 1 MiB, parsed by serde-saphyr with its budgets on,
//! unknown fields refused by the structs themselves, and errors that show the line and column.

use onionlab_proto::keys::{IdentityBytes, KeyError, parse_fingerprint};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use thiserror::Error;

/// A directory authority as relays and clients name it in their configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthorityEntry {
    /// Its HTTP address.
    pub address: SocketAddr,
    /// Its identity fingerprint (64 hex digits), as `onionlab-dirauth --print-fingerprint` shows.
    pub identity: String,
}

impl AuthorityEntry {
    /// The identity as bytes.
    pub fn identity_bytes(&self) -> Result<IdentityBytes, KeyError> {
        parse_fingerprint(&self.identity)
    }
}

/// Largest configuration file read.
pub const MAX_CONFIG_LEN: u64 = 1024 * 1024;

/// Why a configuration could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_LEN`].
    #[error("{0} is larger than 1 MiB; is it really a configuration file?")]
    TooLarge(String),
    /// The YAML does not match the expected structure (the message has line and column).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// serde-saphyr's message with the location and a snippet.
        message: String,
    },
}

/// Parses YAML text into `T`; `origin` names the source in errors.
pub fn parse<T: DeserializeOwned>(yaml: &str, origin: &str) -> Result<T, ConfigError> {
    if yaml.len() as u64 > MAX_CONFIG_LEN {
        return Err(ConfigError::TooLarge(origin.to_owned()));
    }
    serde_saphyr::from_str(yaml).map_err(|e| ConfigError::Invalid {
        path: origin.to_owned(),
        message: e.to_string(),
    })
}

/// Reads and parses a YAML file into `T`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    if meta.len() > MAX_CONFIG_LEN {
        return Err(ConfigError::TooLarge(shown));
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialised, to see which fields are refused")]
    struct Sample {
        port: u16,
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = parse::<Sample>("# comment\nport: many\n", "sample.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sample.yaml") && err.contains("line 2"), "{err}");
        let err = parse::<Sample>("port: 1\nprot: 2\n", "x.yaml").unwrap_err().to_string();
        assert!(err.contains("unknown field") && err.contains("line 2"), "{err}");
    }
}
