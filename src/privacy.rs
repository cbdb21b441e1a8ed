//! What HQ may see of a device: `device_id`, a keyed hash of its MAC.
//!
//! `device_id = base64url(HMAC-SHA256(key, "storegate-device-v1" || mac))`.
//! Without the key, an id cannot be turned back into a MAC, even by trying
//! every MAC of a vendor (2^24 guesses would otherwise suffice). The key is
//! `privacy.device_key_file` when set (any file of at least 16 bytes; its
//! SHA-256 is the key, so retailers can share one file across stores and
//! recognise a device chain-wide), else 32 random bytes made at first start
//! and kept with the state.

use std::path::Path;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::mac::MacAddr;
use crate::store::{Store, StoreError, Tree};

const META_KEY: &[u8] = b"device_key";
const DOMAIN: &[u8] = b"storegate-device-v1";
const MIN_KEY_FILE_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("privacy.device_key_file {path}: {reason}")]
    File { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key behind every `device_id`. `Debug` never shows it.
#[derive(Clone)]
pub struct DeviceKey([u8; 32]);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(***)")
    }
}

impl DeviceKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DeviceKey(bytes)
    }

    /// The configured key file, else the key kept in the store (made on
    /// first use).
    pub fn load(file: Option<&Path>, store: &dyn Store) -> Result<Self, KeyError> {
        if let Some(path) = file {
            let file_err = |reason: String| KeyError::File {
                path: path.display().to_string(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| file_err(e.to_string()))?;
            if bytes.len() < MIN_KEY_FILE_BYTES {
                return Err(file_err(format!(
                    "holds {} bytes; it needs at least {MIN_KEY_FILE_BYTES} random bytes \
                     (e.g. head -c 32 /dev/urandom > FILE)",
                    bytes.len()
                )));
            }
            return Ok(DeviceKey(Sha256::digest(&bytes).into()));
        }
        if let Some(v) = store.get(Tree::Meta, META_KEY)?
            && let Ok(k) = <[u8; 32]>::try_from(v.as_slice())
        {
            return Ok(DeviceKey(k));
        }
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        store.put(Tree::Meta, META_KEY, &k)?;
        store.flush()?;
        Ok(DeviceKey(k))
    }

    /// The id HQ sees for `mac`.
    pub fn device_id(&self, mac: MacAddr) -> String {
        // A 32-byte key is always a valid HMAC key.
        let mut m =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(DOMAIN);
        m.update(&mac.octets());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    }

    /// HMAC-SHA256 of `data` under this key, separated by `domain` (a
    /// short constant such as `b"storegate-member-v1"`, without NUL), so
    /// ids made for one purpose can never equal ids made for another.
    pub fn keyed_hash(&self, domain: &[u8], data: &[u8]) -> [u8; 32] {
        let mut m =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(domain);
        m.update(&[0]);
        m.update(data);
        m.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const MAC: MacAddr = MacAddr([0x3c, 0x22, 0xfb, 0x12, 0x34, 0x56]);

    #[test]
    fn ids_are_stable_keyed_and_do_not_show_the_mac() {
        let a = DeviceKey::from_bytes([1; 32]);
        let b = DeviceKey::from_bytes([2; 32]);
        let id = a.device_id(MAC);
        assert_eq!(id, a.device_id(MAC));
        assert_ne!(id, b.device_id(MAC), "another key, another id");
        assert_ne!(
            id,
            a.device_id(MacAddr([0x3c, 0x22, 0xfb, 0x12, 0x34, 0x57]))
        );
        assert_eq!(id.len(), 43);
        let hex: String = MAC.octets().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!id.to_lowercase().contains(&hex[6..]));
        assert!(!format!("{a:?}").contains("01"));
    }

    #[test]
    fn keyed_hashes_are_separated_by_domain() {
        let k = DeviceKey::from_bytes([1; 32]);
        let a = k.keyed_hash(b"storegate-member-v1", b"phone:8613812345678");
        assert_eq!(
            a,
            k.keyed_hash(b"storegate-member-v1", b"phone:8613812345678")
        );
        assert_ne!(
            a,
            k.keyed_hash(b"storegate-other-v1", b"phone:8613812345678")
        );
        assert_ne!(
            a,
            DeviceKey::from_bytes([2; 32])
                .keyed_hash(b"storegate-member-v1", b"phone:8613812345678")
        );
        // The separator keeps "ab" + "c" apart from "a" + "bc".
        assert_ne!(k.keyed_hash(b"ab", b"c"), k.keyed_hash(b"a", b"bc"));
    }

    #[test]
    fn the_stored_key_is_made_once_and_kept() {
        let store = MemoryStore::new();
        let first = DeviceKey::load(None, &store).unwrap().device_id(MAC);
        let again = DeviceKey::load(None, &store).unwrap().device_id(MAC);
        assert_eq!(first, again);
        let other = DeviceKey::load(None, &MemoryStore::new())
            .unwrap()
            .device_id(MAC);
        assert_ne!(first, other, "each box makes its own random key");
    }

    #[test]
    fn a_shared_key_file_gives_the_same_ids_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        std::fs::write(&path, b"retailer-wide secret, 32+ bytes!!").unwrap();
        let one = DeviceKey::load(Some(&path), &MemoryStore::new()).unwrap();
        let two = DeviceKey::load(Some(&path), &MemoryStore::new()).unwrap();
        assert_eq!(one.device_id(MAC), two.device_id(MAC));
        std::fs::write(&path, b"short").unwrap();
        let err = DeviceKey::load(Some(&path), &MemoryStore::new()).unwrap_err();
        assert!(err.to_string().contains("at least 16"), "{err}");
        let err =
            DeviceKey::load(Some(&dir.path().join("missing")), &MemoryStore::new()).unwrap_err();
        assert!(err.to_string().contains("privacy.device_key_file"), "{err}");
    }
}
