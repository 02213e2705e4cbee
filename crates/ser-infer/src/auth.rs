//! API keys: when the service has some, every `/v1/*` request must present one. Keys are held as
//! SHA-256 hashes (the keys file holds nothing else) and a presented key is hashed and compared
//! with each of them in constant time. A request presents its key as `Authorization: Bearer
//! <key>`; a browser's WebSocket, which cannot set headers, as the subprotocol `bearer.<key>`
//! beside [`STREAM_PROTOCOL`], which the server answers with. Keys never reach a log: nothing
//! here formats one, and `ApiKeys`' `Debug` shows only how many there are.

use std::path::Path;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// The subprotocol the live page's WebSocket offers and the server answers with.
pub const STREAM_PROTOCOL: &str = "ser.v1";
/// A WebSocket subprotocol `bearer.<key>` carries a key.
pub const BEARER_PROTOCOL_PREFIX: &str = "bearer.";
/// The environment variable that gives keys themselves (comma-separated), hashed when read.
pub const KEYS_ENV: &str = "SER_API_KEYS";

/// The keys the service admits, as SHA-256 hashes.
#[derive(Clone, Default, PartialEq)]
pub struct ApiKeys {
    hashes: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.hashes.len())
    }
}

/// The SHA-256 of a key: what is kept of it.
pub(crate) fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether a key can travel in a WebSocket subprotocol (an HTTP token): letters, digits and
/// `-._~+!#$%&'*^` and backtick or pipe.
fn is_token(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+!#$%&'*^`|".contains(&b))
}

impl ApiKeys {
    /// A keys file: one SHA-256 of a key a line, in hex (`printf %s "$KEY" | sha256sum`), an
    /// optional `sha256:` before it; blank lines and `#` comments are skipped.
    pub fn read_hashes(path: &Path) -> Result<ApiKeys> {
        let text = fs_err::read_to_string(path)?;
        let mut hashes = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let hex_part = line.strip_prefix("sha256:").unwrap_or(line);
            let mut h = [0u8; 32];
            hex::decode_to_slice(hex_part, &mut h).map_err(|_| {
                Error::Invalid(format!(
                    "{}:{}: not the SHA-256 of a key in hex (64 characters); write one with \
                     `printf %s \"$KEY\" | sha256sum | cut -d' ' -f1`",
                    path.display(),
                    i + 1
                ))
            })?;
            hashes.push(h);
        }
        if hashes.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no key hashes; the service would refuse every request",
                path.display()
            )));
        }
        Ok(ApiKeys { hashes })
    }

    /// Keys themselves, comma-separated (the [`KEYS_ENV`] variable), hashed at once.
    pub fn from_keys(text: &str) -> Result<ApiKeys> {
        let mut hashes = Vec::new();
        for (i, key) in text.split(',').map(str::trim).filter(|k| !k.is_empty()).enumerate() {
            if !is_token(key) {
                return Err(Error::Invalid(format!(
                    "{KEYS_ENV}: key {} has characters a browser cannot send; use letters, digits and -._~ (e.g. \
                     `openssl rand -hex 32`)",
                    i + 1
                )));
            }
            hashes.push(key_hash(key));
        }
        if hashes.is_empty() {
            return Err(Error::Invalid(format!("{KEYS_ENV} is set but holds no key")));
        }
        Ok(ApiKeys { hashes })
    }

    /// Both sets of keys.
    pub fn with(mut self, other: ApiKeys) -> ApiKeys {
        self.hashes.extend(other.hashes);
        self
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `key` is one of the keys: its hash compared with every hash, in constant time.
    pub fn admits(&self, key: &str) -> bool {
        let presented = key_hash(key);
        let found = self.hashes.iter().fold(subtle::Choice::from(0), |found, h| found | h.ct_eq(&presented));
        found.into()
    }
}

/// The key a request presents: its `Authorization: Bearer` credentials, or a `bearer.<key>`
/// WebSocket subprotocol.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    bearer.or_else(|| {
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix(BEARER_PROTOCOL_PREFIX))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_admitted_by_hash_and_nothing_else() {
        let keys = ApiKeys::from_keys("alpha-1, beta_2").unwrap();
        assert!(keys.admits("alpha-1") && keys.admits("beta_2"));
        assert!(!keys.admits("alpha-2") && !keys.admits("") && !keys.admits("alpha-1 "));
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 keys)");
        assert!(ApiKeys::from_keys(" , ").unwrap_err().to_string().contains("holds no key"));
        assert!(ApiKeys::from_keys("a key").unwrap_err().to_string().contains("key 1"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        let hex_hash = hex::encode(Sha256::digest(b"gamma"));
        std::fs::write(&file, format!("# ops team\nsha256:{hex_hash}\n\n{}  # ci\n", hex::encode(key_hash("delta"))))
            .unwrap();
        let from_file = ApiKeys::read_hashes(&file).unwrap();
        assert!(from_file.admits("gamma") && from_file.admits("delta") && !from_file.admits(&hex_hash));
        assert!(from_file.clone().with(keys).admits("alpha-1"));
        std::fs::write(&file, "gamma\n").unwrap();
        let err = ApiKeys::read_hashes(&file).unwrap_err().to_string();
        assert!(err.contains(":1: not the SHA-256") && !err.contains("gamma"), "{err}");
    }

    #[test]
    fn a_key_is_presented_as_bearer_credentials_or_a_subprotocol() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented(&headers), None);
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, "ser.v1, bearer.k2".parse().unwrap());
        assert_eq!(presented(&headers), Some("k2"));
        headers.insert(header::AUTHORIZATION, "Bearer k1".parse().unwrap());
        assert_eq!(presented(&headers), Some("k1"));
        headers.insert(header::AUTHORIZATION, "Basic k1".parse().unwrap());
        assert_eq!(presented(&headers), Some("k2"));
    }
}
