//! Targeted messages, HQ's side: the campaign rules (`rules`), the
//! decision one member's arrival comes to (this file), and an in-memory
//! messenger for the demo's in-process HQ (`local`). `storegate-hq`'s
//! messenger (KV-backed, on JetStream) and `local` make the same
//! decision through the same functions; only where they keep consent,
//! the arrivals already handled and the caps differs.
//!
//! The decision, in order (the first that holds is the outcome):
//!
//! 1. no `member_id` → [`Outcome::NoMember`];
//! 2. the arrival is more than [`MAX_AGE`] older than `now` →
//!    [`Outcome::Stale`] (a message about a visit long past is useless;
//!    a box delivers a backlog after an outage, and the demo replays
//!    weeks of history);
//! 3. the member's latest `member.linked` did not carry `marketing: true`
//!    → [`Outcome::NoConsent`];
//! 4. no active campaign matches the store, member and local time →
//!    [`Outcome::NoCampaign`];
//! 5. this arrival (its event id) was handled before →
//!    [`Outcome::AlreadyHandled`];
//! 6. every matching campaign already reached its `daily_cap` for this
//!    member this local day → [`Outcome::Capped`];
//! 7. else the best uncapped campaign is sent → [`Outcome::Sent`].
//!
//! Pure: no clock and no I/O. `now` is a parameter, and an arrival
//! without a readable `time` counts as arriving at `now`.

pub mod local;
pub mod rules;

use std::time::Duration;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::time::Timestamp;
use rules::Campaign;

/// An arrival older than this (relative to `now`) is not messaged.
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// What one arrival came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NoMember,
    Stale,
    NoConsent,
    NoCampaign,
    AlreadyHandled,
    Capped,
    Sent { campaign: String },
}

/// A `visit.started`, as the decision reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The event's `id`.
    pub event_id: String,
    /// From `source` (`/stores/{id}`); empty if it is not of that form.
    pub store_id: String,
    /// `data.member_id`; `None` when absent, null or empty.
    pub member_id: Option<String>,
    /// `time`; `None` when absent or not RFC 3339.
    pub time: Option<Timestamp>,
}

impl Arrival {
    /// Reads a `visit.started` CloudEvent (its `type` is not checked);
    /// `None` without a non-empty string `id`.
    pub fn from_event(event: &Value) -> Option<Arrival> {
        let event_id = event["id"].as_str().filter(|s| !s.is_empty())?;
        let store_id = event["source"]
            .as_str()
            .and_then(|s| s.strip_prefix("/stores/"))
            .unwrap_or_default();
        Some(Arrival {
            event_id: event_id.to_string(),
            store_id: store_id.to_string(),
            member_id: event["data"]["member_id"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(str::to_string),
            time: event["time"].as_str().and_then(Timestamp::parse_rfc3339),
        })
    }

    /// When it happened; `now` if the event did not say.
    pub fn time_or(&self, now: Timestamp) -> Timestamp {
        self.time.unwrap_or(now)
    }
}

/// Whether an arrival at `time` is too old to message at `now`.
pub fn is_stale(time: Timestamp, now: Timestamp) -> bool {
    time.until(now) > MAX_AGE
}

/// Steps 1 and 2, before anything is looked up: the member, if the
/// arrival is a member's and recent.
pub fn screen(arrival: &Arrival, now: Timestamp) -> Result<&str, Outcome> {
    let member = arrival.member_id.as_deref().ok_or(Outcome::NoMember)?;
    if is_stale(arrival.time_or(now), now) {
        return Err(Outcome::Stale);
    }
    Ok(member)
}

/// The campaigns an arrival matches, best first, and its local time.
#[derive(Debug, Clone)]
pub struct Candidates<'c> {
    pub campaigns: Vec<&'c Campaign>,
    /// The arrival's time in the store's zone.
    pub local: DateTime,
}

impl Candidates<'_> {
    /// The local day the caps count in.
    pub fn day(&self) -> Date {
        self.local.date()
    }
}

/// Steps 3 and 4: the campaigns for `member`'s arrival, given whether the
/// member consented to marketing and the store's time zone.
pub fn candidates<'c>(
    campaigns: &'c [Campaign],
    arrival: &Arrival,
    member: &str,
    consented: bool,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<Candidates<'c>, Outcome> {
    if !consented {
        return Err(Outcome::NoConsent);
    }
    let local = local_time(arrival.time_or(now), tz);
    let matched = rules::matching(campaigns, &arrival.store_id, member, local);
    if matched.is_empty() {
        return Err(Outcome::NoCampaign);
    }
    Ok(Candidates {
        campaigns: matched,
        local,
    })
}

/// `t` as a civil time in `tz` (the Unix epoch if `t` is out of range).
pub fn local_time(t: Timestamp, tz: &TimeZone) -> DateTime {
    jiff::Timestamp::from_millisecond(t.millis())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(tz.clone())
        .datetime()
}

/// Step 6, for one campaign: whether the member, having had `sent_today`
/// of its messages this local day, may have one more.
pub fn cap_allows(campaign: &Campaign, sent_today: u32) -> bool {
    sent_today < campaign.daily_cap
}

/// What a messenger keeping its state in memory knows.
pub trait Ledger {
    /// Whether the member's latest `member.linked` carried marketing
    /// consent.
    fn consented(&self, member: &str) -> bool;
    /// Whether this `visit.started` id was handled before.
    fn handled(&self, event_id: &str) -> bool;
    /// How many of `campaign`'s messages `member` had on local `day`.
    fn sent_today(&self, campaign: &str, member: &str, day: Date) -> u32;
}

/// The campaign to send, and when the arrival was in the store's zone.
#[derive(Debug, Clone)]
pub struct Chosen<'c> {
    pub campaign: &'c Campaign,
    pub member: String,
    pub local: DateTime,
}

/// The whole decision (steps 1 to 7) against a [`Ledger`]: the campaign
/// to send, or why none. The caller records what it sends.
pub fn decide<'c>(
    campaigns: &'c [Campaign],
    arrival: &Arrival,
    tz: &TimeZone,
    now: Timestamp,
    ledger: &impl Ledger,
) -> Result<Chosen<'c>, Outcome> {
    let member = screen(arrival, now)?;
    let found = candidates(
        campaigns,
        arrival,
        member,
        ledger.consented(member),
        tz,
        now,
    )?;
    if ledger.handled(&arrival.event_id) {
        return Err(Outcome::AlreadyHandled);
    }
    let day = found.day();
    found
        .campaigns
        .iter()
        .find(|c| cap_allows(c, ledger.sent_today(&c.id, member, day)))
        .map(|c| Chosen {
            campaign: c,
            member: member.to_string(),
            local: found.local,
        })
        .ok_or(Outcome::Capped)
}

#[cfg(test)]
mod tests;
