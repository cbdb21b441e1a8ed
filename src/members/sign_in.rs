//! Sign-in: proving who the shopper is, by a texted code (`request_code`,
//! then `verify_code`) or by a member number (`verify_member_number`).
//! A success leaves a pending sign-in that `link` (in `bindings`) turns
//! into a member record.
//!
//! Every code is paid for: by a ticket from the sign-in page (the
//! portal's `request_code_for_page`), within the per-phone and per-device
//! limits (`otp`), and within the caps per block of numbers and per box
//! (`limits`, on disk, written and flushed before the code is handed
//! out). Only numbers of `members.otp_countries` get one. Every
//! member-number attempt, good or bad, counts against the device's and
//! the box's hourly budget.

use rand::{Rng, RngCore};

use super::limits::BLOCK_DIGITS;
use super::record::Method;
use super::{CodeIssued, MemberError, MemberId, Members, Pending, phone, ticket};
use crate::mac::MacAddr;
use crate::time::Timestamp;

/// Six digits from the OS's CSPRNG.
fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// A ticket the page handed out, and the device name it was minted for.
struct Proof<'a> {
    holder: &'a str,
    ticket: &'a str,
}

impl Members {
    /// A ticket for the phone form of a sign-in page shown to `holder`
    /// (whatever names the device to the caller: the portal passes the
    /// page's per-device form token). Good for `ticket::TICKET_TTL` and
    /// for one texted code.
    pub fn code_ticket(&self, holder: &str, now: Timestamp) -> String {
        let mut nonce = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        ticket::mint(&self.key, holder, now, nonce)
    }

    /// Phone sign-in, step 1, as the portal asks for it: like
    /// [`Self::request_code`], and only with a live, unspent `ticket`
    /// minted for `holder` ([`MemberError::PageExpired`] otherwise). An
    /// issued code spends the ticket.
    pub fn request_code_for_page(
        &self,
        phone: &str,
        mac: MacAddr,
        holder: &str,
        ticket: &str,
        now: Timestamp,
    ) -> Result<CodeIssued, MemberError> {
        self.issue_code(phone, mac, Some(Proof { holder, ticket }), now)
    }

    /// Makes a ticket spent on a code good again: HQ did not send the
    /// code, so the shopper may try again from the same page.
    pub fn return_code_ticket(&self, holder: &str, ticket: &str, now: Timestamp) {
        if let Some(nonce) = ticket::check(&self.key, holder, ticket, now) {
            self.lock().spent.unspend(&nonce);
        }
    }

    /// Phone sign-in, step 1: a fresh code for the phone. Only for numbers
    /// of `members.otp_countries`; rate-limited per phone (one per 30 s,
    /// five per hour), per device (ten per hour), per block of numbers
    /// (`members.otp_per_prefix_per_hour`) and per box
    /// (`members.otp_per_hour`); refused while the phone is locked out.
    /// Asks for no ticket: for callers that are not a web page.
    pub fn request_code(
        &self,
        phone: &str,
        mac: MacAddr,
        now: Timestamp,
    ) -> Result<CodeIssued, MemberError> {
        self.issue_code(phone, mac, None, now)
    }

    fn issue_code(
        &self,
        phone: &str,
        mac: MacAddr,
        proof: Option<Proof>,
        now: Timestamp,
    ) -> Result<CodeIssued, MemberError> {
        let nonce = match &proof {
            Some(p) => Some(
                ticket::check(&self.key, p.holder, p.ticket, now)
                    .ok_or(MemberError::PageExpired)?,
            ),
            None => None,
        };
        let digits = phone::normalise_phone(phone, &self.config.default_country_code)
            .ok_or(MemberError::BadPhone)?;
        let block = self.block_of(&digits)?;
        let member_id = self.id_for("phone", &digits);
        let code = new_code();
        let expires_at = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            if nonce.is_some_and(|n| inner.spent.contains(&n)) {
                return Err(MemberError::PageExpired);
            }
            inner.otp.may_request(&member_id, mac, now)?;
            let limited = |retry_after| MemberError::RateLimited { retry_after };
            let (per_block, per_box) = (
                self.config.otp_per_prefix_per_hour,
                self.config.otp_per_hour,
            );
            inner
                .limits
                .check_text(&block, per_block, per_box, now)
                .map_err(limited)?;
            if let Some(n) = nonce
                && !inner.spent.spend(n, now)
            {
                return Err(limited(std::time::Duration::from_secs(60)));
            }
            // Counted in memory even should the write fail: a cap errs
            // on the side of sending less.
            inner.limits.count_text(&block, now);
            self.save_limits(&inner.limits)?;
            inner.otp.issue(&member_id, mac, code.clone(), now)
        };
        // On disk before HQ is asked to send anything; outside the lock,
        // so recognition never waits for the disk.
        self.store.flush()?;
        Ok(CodeIssued {
            phone_e164: format!("+{digits}"),
            code,
            member_id,
            expires_at,
        })
    }

    /// The keyed hash of the block of numbers `digits` (E.164) is in, if
    /// its country is one the store texts.
    fn block_of(&self, digits: &str) -> Result<String, MemberError> {
        let cc = self
            .config
            .otp_countries
            .iter()
            .find(|cc| digits.starts_with(cc.as_str()))
            .ok_or(MemberError::CountryNotAllowed)?;
        let national = digits.get(cc.len()..).unwrap_or_default();
        let head = national.get(..BLOCK_DIGITS).unwrap_or(national);
        let id = self.id_for("block", &format!("{cc}:{head}"));
        Ok(id.get(2..14).unwrap_or(&id).to_string())
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
    /// `members.member_number_check`). Every attempt, good or bad, counts
    /// against the device's hourly budget (shared with code requests) and
    /// the box's (`members.member_number_per_hour`): a well-formed number
    /// proves nothing, so successes must be bounded as much as failures.
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
        let limited = |retry_after| MemberError::NumberLimited { retry_after };
        let saved = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            inner.otp.device_allowed(mac, now).map_err(|e| match e {
                MemberError::RateLimited { retry_after } => limited(retry_after),
                other => other,
            })?;
            inner
                .limits
                .check_number(self.config.member_number_per_hour, now)
                .map_err(limited)?;
            inner.otp.count_device(mac, now);
            inner.limits.count_number(now);
            let saved = self.save_limits(&inner.limits);
            if let (Some(id), Ok(())) = (&member_id, &saved) {
                inner.add_pending(
                    id.clone(),
                    Pending {
                        method: Method::MemberNumber,
                        last4: None,
                        at: now,
                    },
                );
            }
            saved
        };
        saved?;
        // Durable soon in any case (the store flushes on its own and at
        // shutdown); flushed now so a crash does not hand out a new hour.
        if let Err(e) = self.store.flush() {
            tracing::warn!("could not flush the member-number count: {e}");
        }
        member_id.ok_or(MemberError::BadMemberNumber)
    }
}
