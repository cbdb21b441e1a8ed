//! Member ids and staff codes: the keyed hash that turns a phone or
//! member number into a member id (so no phone number is ever stored),
//! the shape check `erase` makes before it looks anything up, and the
//! staff code a QR poster carries, cleaned before it is kept.

use base64::Engine;

use super::Members;

/// `"m_"` + 22 base64url characters: 128 bits of a keyed hash of
/// `phone:<E.164 digits>` or `number:<member number>`. Stable for a given
/// key (chain-wide when stores share `privacy.device_key_file`), never
/// the phone itself.
pub type MemberId = String;

const MEMBER_DOMAIN: &[u8] = b"storegate-member-v1";

/// Longest staff code kept (a QR poster's `?staff=`).
const MAX_STAFF_CODE: usize = 32;

/// Whether `s` has the shape of a member id.
pub fn is_member_id(s: &str) -> bool {
    s.len() == 24
        && s.starts_with("m_")
        && s.bytes()
            .skip(2)
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A staff code as printed on a QR poster: 1 to 32 of `A-Za-z0-9_-`.
/// Anything else is not a staff code (ignored, never an error).
pub(super) fn clean_staff_code(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = (1..=MAX_STAFF_CODE).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| s.to_string())
}

impl Members {
    /// The member id for `kind:value`.
    pub(super) fn id_for(&self, kind: &str, value: &str) -> MemberId {
        let h = self
            .key
            .keyed_hash(MEMBER_DOMAIN, format!("{kind}:{value}").as_bytes());
        format!(
            "m_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&h[..16])
        )
    }
}
