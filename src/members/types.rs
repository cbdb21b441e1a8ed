//! What the members API takes and gives back: the shopper's consents, an
//! issued code, every refusal (with its i18n key), and what `link`,
//! `list` and `erase` report. Kept apart from the `Members` methods so a
//! caller (the portal, `ctl`, the daemon) can read the contract in one
//! place.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::MemberId;
use crate::mac::MacAddr;
use crate::store::StoreError;
use crate::time::Timestamp;

/// What the shopper agreed to on the sign-in page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// Bind this device, so it is signed in by itself next time.
    pub remember_device: bool,
    /// Marketing messages from HQ.
    pub marketing: bool,
}

/// What `request_code` gives the caller, who posts it to HQ
/// (`uplink::messages::MessageSender::send_otp`). `Debug` hides the phone
/// and the code.
pub struct CodeIssued {
    /// `+` and the E.164 digits.
    pub phone_e164: String,
    /// Six digits.
    pub code: String,
    pub member_id: MemberId,
    pub expires_at: Timestamp,
}

impl fmt::Debug for CodeIssued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeIssued")
            .field("phone_e164", &"***")
            .field("code", &"***")
            .field("member_id", &self.member_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Every refusal. `key()` is a stable i18n key the portal translates;
/// `Display` is English for logs and `ctl`. Neither ever contains the
/// phone number or the code.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// Not a phone number the config accepts.
    #[error("not a phone number this store accepts")]
    BadPhone,
    /// A number of a country the store does not text
    /// (`members.otp_countries`).
    #[error("codes are not texted to numbers of that country here")]
    CountryNotAllowed,
    /// A code request without a live ticket from the sign-in page.
    #[error("the sign-in page has expired (no valid code ticket)")]
    PageExpired,
    /// Too many code requests for this phone, this device, this block of
    /// numbers or the whole box.
    #[error("too many requests; try again in {}s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// Too many member-number attempts from this device or on the box.
    #[error("too many member-number sign-ins; try again in {}s", .retry_after.as_secs())]
    NumberLimited { retry_after: Duration },
    /// Verify without a live code for that phone (none asked, or expired).
    #[error("no valid code for this phone (none was requested, or it expired)")]
    NoCode,
    #[error("wrong code; {attempts_left} attempts left")]
    WrongCode { attempts_left: u32 },
    /// Too many wrong codes: this phone is locked for a while.
    #[error("too many wrong codes; this phone is locked until {until}")]
    LockedOut { until: Timestamp },
    /// Fails the configured member-number format or check.
    #[error("not a valid member number")]
    BadMemberNumber,
    /// `link`/`erase` of an id the box does not know.
    #[error("unknown member")]
    UnknownMember,
    #[error("state database: {0}")]
    Store(#[from] StoreError),
}

impl MemberError {
    /// The i18n key of the message shown to the shopper.
    pub fn key(&self) -> &'static str {
        match self {
            MemberError::BadPhone => "err_bad_phone",
            MemberError::CountryNotAllowed => "err_country",
            MemberError::PageExpired => "err_page_expired",
            MemberError::RateLimited { .. } => "err_rate_limited",
            MemberError::NumberLimited { .. } => "err_number_limited",
            MemberError::NoCode => "err_no_code",
            MemberError::WrongCode { .. } => "err_code_wrong",
            MemberError::LockedOut { .. } => "err_locked_out",
            MemberError::BadMemberNumber => "err_bad_member_number",
            MemberError::UnknownMember => "err_unknown_member",
            MemberError::Store(_) => "err_store",
        }
    }
}

/// What `link` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub member_id: MemberId,
    /// The device is bound (it will be recognised).
    pub remembered: bool,
    /// The shopper's consents were stored. Not when the sign-in proved
    /// nothing (a member number, unless `members.member_number_trusted`)
    /// or the box holds `members.max_members` already and this member is
    /// new: then nothing is stored for them.
    pub consent_stored: bool,
    /// MACs whose binding moved away (no longer recognised): the member's
    /// oldest device past `max_devices`, or this device when it is no
    /// longer to be remembered.
    pub unbound: Vec<MacAddr>,
}

/// One member as `ctl members --json` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub member_id: String,
    pub phone_last4: Option<String>,
    /// `"otp"` or `"member_number"`.
    pub method: String,
    /// Bound MACs (box-local; never sent to HQ).
    pub devices: Vec<String>,
    /// `{"remember_device": {"granted", "at", "version"} | null, "marketing": …}`.
    pub consents: serde_json::Value,
    pub staff_code: Option<String>,
    pub created_at: String,
    /// The latest recognition of any bound device.
    pub last_seen: Option<String>,
    /// Whether the member holds a members' Wi-Fi key (never the key).
    pub has_wifi_key: bool,
}

/// What `erase` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub member_id: MemberId,
    /// The devices that were bound to the member.
    pub devices: Vec<MacAddr>,
}
