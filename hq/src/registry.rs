//! The store registry: each store's id, time zone and secrets.
//!
//! A store may have several secrets at once, for rotation with an
//! overlap window: give the store its new secret next to the old one,
//! with `not_after` on the old; change the box's `hq.secret`; once
//! `not_after` has passed the old secret is refused. While both are in
//! force HQ accepts either, and signs what it serves (`/sync`) with
//! both (`webhook-signature` holds one `v1,` entry per secret; the box
//! accepts any that matches).

use std::collections::HashMap;
use std::sync::Arc;

use storegate::uplink::signing::{self, SignedHeaders, SigningKey, VerifyError};

/// One secret of a store, and when it stops being accepted.
#[derive(Debug, Clone)]
pub struct StoreSecret {
    pub key: SigningKey,
    /// `None`: no end.
    pub not_after: Option<jiff::Timestamp>,
}

/// A store as HQ knows it.
#[derive(Debug, Clone)]
pub struct StoreEntry {
    pub id: String,
    /// The store's time zone, for campaign time windows and caps.
    pub timezone: jiff::tz::TimeZone,
    pub secrets: Vec<StoreSecret>,
}

impl StoreEntry {
    /// The secrets in force at `now` (Unix seconds).
    fn live(&self, now_secs: i64) -> impl Iterator<Item = &SigningKey> {
        self.secrets
            .iter()
            .filter(move |s| s.not_after.is_none_or(|t| t.as_second() > now_secs))
            .map(|s| &s.key)
    }

    /// Checks a request signed by this store: any secret in force whose
    /// signature matches accepts.
    pub fn verify(
        &self,
        headers: SignedHeaders<'_>,
        body: &[u8],
        now_secs: i64,
        tolerance_secs: i64,
    ) -> Result<(), VerifyError> {
        signing::check_headers(headers, now_secs, tolerance_secs)?;
        let mut last = VerifyError::NoMatch;
        for key in self.live(now_secs) {
            match key.verify(headers, body, now_secs, tolerance_secs) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// `webhook-signature` for an answer to this store: one `v1,` entry
    /// per secret in force. `None` if none is.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
        let parts: Vec<String> = self
            .live(timestamp)
            .map(|k| k.sign(id, timestamp, body))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// Every store, by id. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    stores: Arc<HashMap<String, StoreEntry>>,
}

impl Registry {
    /// Refuses a store id given twice.
    pub fn new(entries: Vec<StoreEntry>) -> Result<Registry, String> {
        let mut stores = HashMap::with_capacity(entries.len());
        for e in entries {
            let id = e.id.clone();
            if stores.insert(id.clone(), e).is_some() {
                return Err(format!("store {id:?} is listed twice"));
            }
        }
        Ok(Registry {
            stores: Arc::new(stores),
        })
    }

    pub fn get(&self, id: &str) -> Option<&StoreEntry> {
        self.stores.get(id)
    }

    pub fn len(&self) -> usize {
        self.stores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        use base64::Engine;
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([b; 24])
        );
        SigningKey::from_secret(&secret).unwrap()
    }

    fn entry(secrets: Vec<StoreSecret>) -> StoreEntry {
        StoreEntry {
            id: "s1".into(),
            timezone: jiff::tz::TimeZone::UTC,
            secrets,
        }
    }

    #[test]
    fn rotation_accepts_both_until_not_after() {
        let (old, new) = (key(1), key(2));
        let now = 1_800_000_000;
        let e = entry(vec![
            StoreSecret {
                key: old.clone(),
                not_after: Some(jiff::Timestamp::from_second(now + 60).unwrap()),
            },
            StoreSecret {
                key: new.clone(),
                not_after: None,
            },
        ]);
        let body = b"[]";
        for k in [&old, &new] {
            let sig = k.sign("id1", now, body);
            let ts = now.to_string();
            let h = SignedHeaders {
                id: Some("id1"),
                timestamp: Some(&ts),
                signature: Some(&sig),
            };
            assert_eq!(e.verify(h, body, now, 300), Ok(()));
        }
        // After not_after only the new one.
        let later = now + 120;
        let ts = later.to_string();
        let sig = old.sign("id1", later, body);
        let h = SignedHeaders {
            id: Some("id1"),
            timestamp: Some(&ts),
            signature: Some(&sig),
        };
        assert_eq!(e.verify(h, body, later, 300), Err(VerifyError::NoMatch));
        // The answer is signed with both while both are in force.
        let sig = e.sign("x", now, body).unwrap();
        assert_eq!(sig.split(' ').count(), 2);
        assert_eq!(e.sign("x", later, body).unwrap().split(' ').count(), 1);
    }
}
