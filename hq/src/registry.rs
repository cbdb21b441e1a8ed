//! The store registry: each store's id, time zone and secrets, from
//! `[[stores]]` in `hq.toml` ([`Registry`]) and from the stores KV bucket
//! ([`Directory`]: the file first, then KV, so stores can be added or
//! rotated without restarting the gateways). A KV entry is the JSON
//! `{"timezone": "Asia/Shanghai", "secrets": [{"secret": "whsec_...",
//! "not_after": "2027-01-31T00:00:00Z"}]}` under the store's id; lookups
//! are cached for 30 s (a store not found, for 5 s).
//!
//! A store may have several secrets at once, for rotation with an
//! overlap window: give the store its new secret next to the old one,
//! with `not_after` on the old; change the box's `hq.secret`; once
//! `not_after` has passed the old secret is refused. While both are in
//! force HQ accepts either, and signs what it serves (`/sync`) with
//! both (`webhook-signature` holds one `v1,` entry per secret; the box
//! accepts any that matches).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use serde::Deserialize;

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

/// A secret as written in `hq.toml` or in KV.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    pub secret: String,
    pub not_after: Option<String>,
}

/// A store as written in the stores KV bucket.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKvStore {
    timezone: Option<String>,
    secrets: Vec<RawSecret>,
}

impl StoreEntry {
    /// Checks and resolves a store's time zone and secrets; errors name
    /// the field (`secrets[1].not_after: ...`).
    pub fn build(
        id: &str,
        timezone: Option<&str>,
        secrets: Vec<RawSecret>,
    ) -> Result<StoreEntry, String> {
        crate::config::check_store_id(id).map_err(|e| format!("id: {e}"))?;
        let timezone = match timezone {
            None => jiff::tz::TimeZone::UTC,
            Some(name) => {
                storegate::time::timezone_by_name(name).map_err(|e| format!("timezone: {e}"))?
            }
        };
        if secrets.is_empty() {
            return Err("secrets: give at least one { secret = \"whsec_...\" }".into());
        }
        let mut out = Vec::with_capacity(secrets.len());
        for (j, sec) in secrets.into_iter().enumerate() {
            let key = SigningKey::from_secret(&sec.secret)
                .map_err(|e| format!("secrets[{j}].secret: {e}"))?;
            let not_after = match sec.not_after {
                None => None,
                Some(t) => Some(t.parse::<jiff::Timestamp>().map_err(|e| {
                    format!("secrets[{j}].not_after: {t:?} is not an RFC 3339 time ({e})")
                })?),
            };
            out.push(StoreSecret { key, not_after });
        }
        Ok(StoreEntry {
            id: id.to_string(),
            timezone,
            secrets: out,
        })
    }
}

/// Every store of the file, by id. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    stores: Arc<HashMap<String, Arc<StoreEntry>>>,
}

impl Registry {
    /// Refuses a store id given twice.
    pub fn new(entries: Vec<StoreEntry>) -> Result<Registry, String> {
        let mut stores = HashMap::with_capacity(entries.len());
        for e in entries {
            let id = e.id.clone();
            if stores.insert(id.clone(), Arc::new(e)).is_some() {
                return Err(format!("store {id:?} is listed twice"));
            }
        }
        Ok(Registry {
            stores: Arc::new(stores),
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<StoreEntry>> {
        self.stores.get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.stores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }
}

/// How long a store read from KV is used before it is read again.
const KV_TTL: Duration = Duration::from_secs(30);
/// And a store KV did not have.
const KV_MISS_TTL: Duration = Duration::from_secs(5);
/// The cache is emptied when it holds this many stores.
const CACHE_MAX: usize = 100_000;

type Cached = (Instant, Option<Arc<StoreEntry>>);

/// The stores of the file, then of the KV bucket.
pub struct Directory {
    file: Registry,
    kv: Option<kv::Store>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Directory {
    pub fn new(file: Registry, kv: Option<kv::Store>) -> Self {
        Directory {
            file,
            kv,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The store `id`: `Ok(None)` if neither the file nor KV has it,
    /// `Err` if KV cannot be read now.
    pub async fn get(&self, id: &str) -> Result<Option<Arc<StoreEntry>>, String> {
        if let Some(e) = self.file.get(id) {
            return Ok(Some(e));
        }
        let Some(kv) = &self.kv else { return Ok(None) };
        if crate::config::check_store_id(id).is_err() {
            return Ok(None);
        }
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, entry)) = cache.get(id) {
                let ttl = if entry.is_some() { KV_TTL } else { KV_MISS_TTL };
                if at.elapsed() < ttl {
                    return Ok(entry.clone());
                }
            }
        }
        let value = kv
            .get(id)
            .await
            .map_err(|e| format!("reading store {id:?} from KV: {e}"))?;
        let entry = match value {
            None => None,
            Some(bytes) => {
                let parsed = serde_json::from_slice::<RawKvStore>(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|raw| StoreEntry::build(id, raw.timezone.as_deref(), raw.secrets));
                match parsed {
                    Ok(e) => Some(Arc::new(e)),
                    Err(e) => {
                        tracing::error!(store = %id, "the store's KV entry is not valid: {e}");
                        None
                    }
                }
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(id.to_string(), (Instant::now(), entry.clone()));
        Ok(entry)
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
