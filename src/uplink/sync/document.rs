//! The sync document itself: its shape (`SyncDocument`, `Campaign`), the
//! size limit, and the checks a body must pass before it is stored or put
//! in force, whether it comes from HQ or back from the store.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// Largest sync document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// A device id: base64url (no padding) of a 32-byte HMAC.
const DEVICE_ID_LEN: usize = 43;

/// The document HQ serves at `/sync`. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SyncDocument {
    pub version: String,
    pub campaigns: Vec<Campaign>,
    /// `device_id`s always classified as staff.
    pub staff_devices: Vec<String>,
    /// `device_id`s refused at the portal.
    pub blocked_devices: Vec<String>,
}

/// A campaign and its audience. The audience is HQ's to define: any JSON
/// object, kept as received.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub audience: serde_json::Map<String, serde_json::Value>,
}

/// True for what `DeviceKey::device_id` produces: 43 characters of
/// base64url. A MAC address (with `:` or `-`, 12 to 17 characters) never is.
pub fn is_device_id(s: &str) -> bool {
    s.len() == DEVICE_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SyncDocument {
    /// Parses and checks a document; the error is one line naming where
    /// it is wrong.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "the document is {} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit",
                body.len()
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let doc: SyncDocument = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                format!("the document is not valid: {inner}")
            } else {
                format!("the document is not valid at {path}: {inner}")
            }
        })?;
        de.end()
            .map_err(|e| format!("the document has trailing data: {e}"))?;
        doc.check()?;
        Ok(doc)
    }

    fn check(&self) -> Result<(), String> {
        if self.version.trim().is_empty() || self.version.len() > 256 {
            return Err("version must be a non-empty string of at most 256 bytes".into());
        }
        let mut ids = HashSet::new();
        for (i, c) in self.campaigns.iter().enumerate() {
            if c.id.trim().is_empty() {
                return Err(format!("campaigns[{i}].id is empty"));
            }
            if !ids.insert(c.id.as_str()) {
                return Err(format!(
                    "campaigns[{i}].id {:?} appears more than once",
                    c.id
                ));
            }
        }
        for (field, list) in [
            ("staff_devices", &self.staff_devices),
            ("blocked_devices", &self.blocked_devices),
        ] {
            if let Some(i) = list.iter().position(|d| !is_device_id(d)) {
                return Err(format!(
                    "{field}[{i}] is not a device_id (43 characters of base64url, the box's \
                     keyed hash of a MAC; raw MAC addresses are never used)"
                ));
            }
        }
        Ok(())
    }
}
