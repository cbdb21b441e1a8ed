//! Quotas on texts (the SMS-pumping defence), shared by every gateway
//! through NATS KV: a counter per store and per country calling code per
//! window (`q.s.<store>.<window>`, `q.c.<code>.<window>`), raised with
//! compare-and-set on the key's revision (`update` with the revision
//! read; create-only for the first), so two gateways that race both
//! retry and neither over-counts or lets one through over the limit.
//! Old windows expire with the bucket's max age.

use async_nats::jetstream::kv;
use bytes::Bytes;

/// The result of asking for one unit of a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Granted,
    /// The limit is reached for this window.
    Exhausted,
}

/// Most compare-and-set attempts before giving up (only under extreme
/// contention on one key).
const MAX_ATTEMPTS: usize = 64;

/// Takes one unit of `key`'s counter if it is below `limit`.
pub async fn take(store: &kv::Store, key: &str, limit: u64) -> Result<Take, String> {
    for _ in 0..MAX_ATTEMPTS {
        let entry = store
            .entry(key)
            .await
            .map_err(|e| format!("reading quota {key}: {e}"))?;
        let current = entry.as_ref().filter(|e| e.operation == kv::Operation::Put);
        let count: u64 = current
            .and_then(|e| std::str::from_utf8(&e.value).ok()?.parse().ok())
            .unwrap_or(0);
        if count >= limit {
            return Ok(Take::Exhausted);
        }
        let next = Bytes::from((count + 1).to_string());
        let written = match &entry {
            // Absent (or deleted): only one of racing creators wins.
            None => store.create(key, next).await.map(|_| ()).map_err(|e| {
                matches!(e.kind(), kv::CreateErrorKind::AlreadyExists)
                    .then_some(())
                    .ok_or_else(|| e.to_string())
            }),
            Some(e) => store
                .update(key, next, e.revision)
                .await
                .map(|_| ())
                .map_err(|err| {
                    matches!(err.kind(), kv::UpdateErrorKind::WrongLastRevision)
                        .then_some(())
                        .ok_or_else(|| err.to_string())
                }),
        };
        match written {
            Ok(()) => return Ok(Take::Granted),
            Err(Ok(())) => continue, // lost a race: read again
            Err(Err(e)) => return Err(format!("raising quota {key}: {e}")),
        }
    }
    Err(format!("quota {key}: too much contention"))
}

/// The ITU calling code of an E.164 number (`+8613800000000` → `86`):
/// 1 for North America, 7 for Russia and Kazakhstan, the two-digit codes
/// listed below, and three digits for every other. `None` if the number
/// is not `+` and 8 to 15 digits.
pub fn calling_code(phone: &str) -> Option<&str> {
    let digits = phone.strip_prefix('+')?;
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    const TWO: [&str; 44] = [
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        return Some(&digits[..1]);
    }
    let two = &digits[..2];
    if TWO.contains(&two) {
        return Some(two);
    }
    Some(&digits[..3])
}

/// The window a moment falls in: its start, in whole windows since the
/// epoch.
pub fn window_index(now_secs: i64, window_secs: u64) -> i64 {
    now_secs.div_euclid(window_secs.max(1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calling_codes() {
        assert_eq!(calling_code("+8613800000000"), Some("86"));
        assert_eq!(calling_code("+14155550100"), Some("1"));
        assert_eq!(calling_code("+447700900123"), Some("44"));
        assert_eq!(calling_code("+85291234567"), Some("852"));
        assert_eq!(calling_code("+88112345678"), Some("881"));
        assert_eq!(calling_code("8613800000000"), None);
        assert_eq!(calling_code("+86 138"), None);
        assert_eq!(calling_code("+123"), None);
    }
}
