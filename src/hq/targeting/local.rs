//! An in-memory messenger: `storegate-hq`'s messenger role without NATS,
//! for the demo's in-process HQ. It is fed the events HQ accepted (the
//! reference receiver's observer), learns marketing consent from
//! `member.linked` and forgets it on `member.erased`, and answers each
//! `visit.started` with the targeted message the shared decision
//! (`super::decide`) picks, or none.
//!
//! Never twice for one event id (the last [`REMEMBERED_ARRIVALS`]
//! arrivals handled are remembered); caps count per campaign, member and
//! local day, and only today's and yesterday's counts are kept. Nothing
//! is sent anywhere: the caller shows the message.

use std::collections::HashMap;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::rules::Campaign;
use super::{Arrival, Ledger, Outcome, decide};
use crate::hq::receiver::Dedupe;
use crate::time::Timestamp;
use crate::uplink::event::{MEMBER_ERASED, MEMBER_LINKED, VISIT_STARTED};

/// How many handled arrivals' ids are remembered.
pub const REMEMBERED_ARRIVALS: usize = 100_000;

/// A targeted message, as the provider would get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetedMessage {
    pub campaign_id: String,
    pub text: String,
    pub member_id: String,
    pub store_id: String,
    /// The `visit.started` event's id.
    pub visit_event_id: String,
    /// When the member arrived.
    pub arrival: Timestamp,
    /// The same, in the store's time zone.
    pub arrival_local: DateTime,
}

impl TargetedMessage {
    /// `{"kind": "targeted", "campaign_id", "text", "member_id",
    /// "store_id", "visit_event_id", "arrival" (RFC 3339), "arrival_local"
    /// ("2026-11-23T11:42:05")}`: the provider's fields and the time.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": "targeted",
            "campaign_id": self.campaign_id,
            "text": self.text,
            "member_id": self.member_id,
            "store_id": self.store_id,
            "visit_event_id": self.visit_event_id,
            "arrival": self.arrival.rfc3339(),
            "arrival_local": self.arrival_local.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        })
    }
}

/// The in-memory messenger (see the module docs).
pub struct LocalMessenger {
    campaigns: Vec<Campaign>,
    /// Each member's latest marketing consent.
    consent: HashMap<String, bool>,
    handled: Dedupe,
    /// Messages sent per (campaign, member, local day).
    sent: HashMap<(String, String, Date), u32>,
    /// The latest local day a message was sent on.
    today: Option<Date>,
}

impl Ledger for LocalMessenger {
    fn consented(&self, member: &str) -> bool {
        self.consent.get(member).copied().unwrap_or(false)
    }

    fn handled(&self, event_id: &str) -> bool {
        self.handled.contains(event_id)
    }

    fn sent_today(&self, campaign: &str, member: &str, day: Date) -> u32 {
        self.sent
            .get(&(campaign.to_string(), member.to_string(), day))
            .copied()
            .unwrap_or(0)
    }
}

impl LocalMessenger {
    pub fn new(campaigns: Vec<Campaign>) -> Self {
        LocalMessenger {
            campaigns,
            consent: HashMap::new(),
            handled: Dedupe::new(REMEMBERED_ARRIVALS),
            sent: HashMap::new(),
            today: None,
        }
    }

    pub fn campaigns(&self) -> &[Campaign] {
        &self.campaigns
    }

    /// One accepted CloudEvent: consent is learned from `member.linked`
    /// and `member.erased`; a `visit.started` may produce a message.
    /// `tz` is the store's time zone, `now` the clock arrivals are aged
    /// against. Other events, and events without the fields they need,
    /// change nothing.
    pub fn handle(
        &mut self,
        event: &Value,
        tz: &TimeZone,
        now: Timestamp,
    ) -> Option<TargetedMessage> {
        match event["type"].as_str()? {
            VISIT_STARTED => self.arrival(&Arrival::from_event(event)?, tz, now).ok(),
            MEMBER_LINKED => {
                let member = event["data"]["member_id"].as_str()?;
                let marketing = event["data"]["marketing"].as_bool().unwrap_or(false);
                self.consent.insert(member.to_string(), marketing);
                None
            }
            MEMBER_ERASED => {
                let member = event["data"]["member_id"].as_str()?;
                self.consent.remove(member);
                self.sent.retain(|(_, m, _), _| m != member);
                None
            }
            _ => None,
        }
    }

    /// One arrival: the message, or why there is none.
    pub fn arrival(
        &mut self,
        arrival: &Arrival,
        tz: &TimeZone,
        now: Timestamp,
    ) -> Result<TargetedMessage, Outcome> {
        let chosen = decide(&self.campaigns, arrival, tz, now, self);
        if matches!(chosen, Ok(_) | Err(Outcome::Capped)) {
            // Handled: it may not come again, whether it was sent or not.
            self.handled.insert(&arrival.event_id);
        }
        let chosen = chosen?;
        let message = TargetedMessage {
            campaign_id: chosen.campaign.id.clone(),
            text: chosen.campaign.text.clone(),
            member_id: chosen.member,
            store_id: arrival.store_id.clone(),
            visit_event_id: arrival.event_id.clone(),
            arrival: arrival.time_or(now),
            arrival_local: chosen.local,
        };
        self.count(&message);
        Ok(message)
    }

    /// Counts a message against its cap; counts older than yesterday go.
    fn count(&mut self, m: &TargetedMessage) {
        let day = m.arrival_local.date();
        if self.today.is_none_or(|t| day > t) {
            self.today = Some(day);
            let yesterday = day.yesterday().unwrap_or(day);
            self.sent.retain(|(_, _, d), _| *d >= yesterday);
        }
        *self
            .sent
            .entry((m.campaign_id.clone(), m.member_id.clone(), day))
            .or_insert(0) += 1;
    }
}
