//! Sign-in: proving who the shopper is, by a texted code (`request_code`,
//! then `verify_code`) or by a member number (`verify_member_number`).
//! A success leaves a pending sign-in that `link` (in `bindings`) turns
//! into a member record; the rate limits and lockouts live in `otp`.

use rand::Rng;

use super::phone;
use super::record::Method;
use super::{CodeIssued, MemberError, MemberId, Members, Pending};
use crate::mac::MacAddr;
use crate::time::Timestamp;

/// Six digits from the OS's CSPRNG.
fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

impl Members {
    /// Phone sign-in, step 1: a fresh code for the phone. Rate-limited
    /// per phone (one per 30 s, five per hour) and per device (ten per
    /// hour); refused while the phone is locked out.
    pub fn request_code(
        &self,
        phone: &str,
        mac: MacAddr,
        now: Timestamp,
    ) -> Result<CodeIssued, MemberError> {
        let digits = phone::normalise_phone(phone, &self.config.default_country_code)
            .ok_or(MemberError::BadPhone)?;
        let member_id = self.id_for("phone", &digits);
        let code = new_code();
        let expires_at = self
            .lock()
            .otp
            .request(&member_id, mac, code.clone(), now)?;
        Ok(CodeIssued {
            phone_e164: format!("+{digits}"),
            code,
            member_id,
            expires_at,
        })
    }

    /// Phone sign-in, step 2. Wrong codes are capped per code
    /// (`members.otp_max_attempts`); past the cap the phone is locked out
    /// for `members.otp_lockout`. A code is not tied to the device that
    /// asked for it (`mac` is accepted for symmetry).
    pub fn verify_code(
        &self,
        phone: &str,
        code: &str,
        mac: MacAddr,
        now: Timestamp,
    ) -> Result<MemberId, MemberError> {
        let _ = mac;
        let digits = phone::normalise_phone(phone, &self.config.default_country_code)
            .ok_or(MemberError::BadPhone)?;
        let member_id = self.id_for("phone", &digits);
        let mut inner = self.lock();
        inner.otp.verify(&member_id, code, now)?;
        inner.add_pending(
            member_id.clone(),
            Pending {
                method: Method::Otp,
                last4: Some(phone::last4(&digits)),
                at: now,
            },
        );
        Ok(member_id)
    }

    /// Member-number sign-in (`members.member_number_digits` and
    /// `members.member_number_check`). Failed numbers count against the
    /// device's hourly budget, shared with code requests.
    pub fn verify_member_number(
        &self,
        number: &str,
        mac: MacAddr,
        now: Timestamp,
    ) -> Result<MemberId, MemberError> {
        let checked = phone::check_member_number(
            number,
            self.config.member_number_digits,
            self.config.member_number_check,
        );
        let member_id = checked.as_deref().map(|n| self.id_for("number", n));
        let mut inner = self.lock();
        inner.otp.device_attempt(mac, now)?;
        let Some(member_id) = member_id else {
            inner.otp.device_failed(mac, now);
            return Err(MemberError::BadMemberNumber);
        };
        inner.add_pending(
            member_id.clone(),
            Pending {
                method: Method::MemberNumber,
                last4: None,
                at: now,
            },
        );
        Ok(member_id)
    }
}
