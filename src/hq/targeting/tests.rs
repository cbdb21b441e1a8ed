//! The shared decision (consent, windows, caps, staleness, never twice)
//! and the in-memory messenger that uses it.

use std::collections::{HashMap, HashSet};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::local::LocalMessenger;
use super::rules::Campaign;
use super::*;

/// 2026-12-01 (a Tuesday) 02:00 UTC: 10:00 in Shanghai.
const TUE_10_SHANGHAI: i64 = 1_796_090_400_000;

fn shanghai() -> TimeZone {
    crate::time::timezone_by_name("Asia/Shanghai").unwrap()
}

fn campaign(json: &str) -> Campaign {
    Campaign::parse(json.as_bytes()).unwrap()
}

fn arrival(id: &str, member: Option<&str>, at: i64) -> Arrival {
    Arrival {
        event_id: id.into(),
        store_id: "s1".into(),
        member_id: member.map(str::to_string),
        time: Some(Timestamp(at)),
    }
}

#[derive(Default)]
struct Book {
    consent: HashSet<String>,
    handled: HashSet<String>,
    sent: HashMap<(String, String, Date), u32>,
}

impl Ledger for Book {
    fn consented(&self, member: &str) -> bool {
        self.consent.contains(member)
    }
    fn handled(&self, event_id: &str) -> bool {
        self.handled.contains(event_id)
    }
    fn sent_today(&self, campaign: &str, member: &str, day: Date) -> u32 {
        let key = (campaign.to_string(), member.to_string(), day);
        self.sent.get(&key).copied().unwrap_or(0)
    }
}

fn book(members: &[&str]) -> Book {
    Book {
        consent: members.iter().map(|m| m.to_string()).collect(),
        ..Book::default()
    }
}

#[test]
fn the_local_time_is_the_stores() {
    assert_eq!(
        local_time(Timestamp(TUE_10_SHANGHAI), &shanghai()),
        jiff::civil::date(2026, 12, 1).at(10, 0, 0, 0)
    );
}

#[test]
fn consent_and_member_are_required() {
    let cs = [campaign(
        r#"{"id":"c","text":"t","audience":{"all_members":true}}"#,
    )];
    let now = Timestamp(TUE_10_SHANGHAI);
    let b = book(&["m1"]);
    let tz = shanghai();
    let d = |a: &Arrival| decide(&cs, a, &tz, now, &b).map(|c| c.campaign.id.clone());
    assert_eq!(d(&arrival("e1", Some("m1"), now.0)), Ok("c".into()));
    assert_eq!(
        d(&arrival("e2", Some("m2"), now.0)),
        Err(Outcome::NoConsent)
    );
    assert_eq!(d(&arrival("e3", None, now.0)), Err(Outcome::NoMember));
}

#[test]
fn windows_are_in_the_stores_zone() {
    // 10:00 to 14:00 in Shanghai is 02:00 to 06:00 UTC.
    let cs = [campaign(
        r#"{"id":"lunch","text":"t","audience":{"all_members":true},
            "windows":[{"days":["tue"],"from":"10:00","to":"14:00"}]}"#,
    )];
    let b = book(&["m1"]);
    let at_10 = Timestamp(TUE_10_SHANGHAI);
    let at_9 = Timestamp(TUE_10_SHANGHAI - 3_600_000);
    let tz = shanghai();
    assert!(decide(&cs, &arrival("e", Some("m1"), at_10.0), &tz, at_10, &b).is_ok());
    assert_eq!(
        decide(&cs, &arrival("e", Some("m1"), at_9.0), &tz, at_9, &b).err(),
        Some(Outcome::NoCampaign)
    );
    // In UTC, 02:00 is outside the window.
    assert_eq!(
        decide(
            &cs,
            &arrival("e", Some("m1"), at_10.0),
            &TimeZone::UTC,
            at_10,
            &b
        )
        .err(),
        Some(Outcome::NoCampaign)
    );
}

#[test]
fn the_cap_counts_per_campaign_member_and_local_day() {
    let cs = [
        campaign(
            r#"{"id":"a","text":"t","audience":{"all_members":true},"priority":2,"daily_cap":2}"#,
        ),
        campaign(r#"{"id":"b","text":"t","audience":{"all_members":true}}"#),
    ];
    let now = Timestamp(TUE_10_SHANGHAI);
    let tz = shanghai();
    let mut b = book(&["m1"]);
    let day = jiff::civil::date(2026, 12, 1);
    let pick = |b: &Book| {
        decide(&cs, &arrival("e", Some("m1"), now.0), &tz, now, b).map(|c| c.campaign.id.clone())
    };
    assert_eq!(pick(&b), Ok("a".into()));
    b.sent.insert(("a".into(), "m1".into(), day), 1);
    assert_eq!(pick(&b), Ok("a".into()));
    b.sent.insert(("a".into(), "m1".into(), day), 2);
    assert_eq!(pick(&b), Ok("b".into()), "the next best campaign");
    b.sent.insert(("b".into(), "m1".into(), day), 1);
    assert_eq!(pick(&b), Err(Outcome::Capped));
    // Another member, or another local day, is not capped.
    b.consent.insert("m2".into());
    assert!(decide(&cs, &arrival("e", Some("m2"), now.0), &tz, now, &b).is_ok());
    let tomorrow = Timestamp(now.0 + 86_400_000);
    assert!(
        decide(
            &cs,
            &arrival("e", Some("m1"), tomorrow.0),
            &tz,
            tomorrow,
            &b
        )
        .is_ok()
    );
    assert!(cap_allows(&cs[1], 0) && !cap_allows(&cs[1], 1));
}

#[test]
fn an_old_arrival_is_stale() {
    let cs = [campaign(
        r#"{"id":"c","text":"t","audience":{"all_members":true}}"#,
    )];
    let now = Timestamp(TUE_10_SHANGHAI);
    let b = book(&["m1"]);
    let tz = shanghai();
    let max = MAX_AGE.as_millis() as i64;
    let at = |t: i64| decide(&cs, &arrival("e", Some("m1"), t), &tz, now, &b).err();
    assert_eq!(at(now.0 - max), None, "just within the limit");
    assert_eq!(at(now.0 - max - 1), Some(Outcome::Stale));
    assert_eq!(at(now.0 - 35 * 86_400_000), Some(Outcome::Stale));
    assert_eq!(at(now.0 + 60_000), None, "a box clock a little ahead");
    // Without a time, the arrival is now.
    let mut no_time = arrival("e", Some("m1"), 0);
    no_time.time = None;
    assert!(decide(&cs, &no_time, &tz, now, &b).is_ok());
    // Stale comes before consent: nothing is looked up for it.
    assert_eq!(
        screen(&arrival("e", Some("m9"), 0), now),
        Err(Outcome::Stale)
    );
    assert_eq!(screen(&arrival("e", None, 0), now), Err(Outcome::NoMember));
}

#[test]
fn an_arrival_handled_before_is_not_decided_again() {
    let cs = [campaign(
        r#"{"id":"c","text":"t","audience":{"all_members":true}}"#,
    )];
    let now = Timestamp(TUE_10_SHANGHAI);
    let mut b = book(&["m1"]);
    b.handled.insert("e1".into());
    let tz = shanghai();
    assert_eq!(
        decide(&cs, &arrival("e1", Some("m1"), now.0), &tz, now, &b).err(),
        Some(Outcome::AlreadyHandled)
    );
}

#[test]
fn arrivals_read_from_cloudevents() {
    let e = json!({"id": "e1", "source": "/stores/wulin-01", "type": "com.storegate.visit.started",
                   "time": "2026-12-01T02:00:00Z", "data": {"member_id": "m1"}});
    let a = Arrival::from_event(&e).unwrap();
    assert_eq!(a.store_id, "wulin-01");
    assert_eq!(a.member_id.as_deref(), Some("m1"));
    assert_eq!(a.time, Some(Timestamp(TUE_10_SHANGHAI)));
    let odd = json!({"id": "e2", "source": 5, "time": "yesterday", "data": {"member_id": null}});
    let a = Arrival::from_event(&odd).unwrap();
    assert_eq!((a.store_id.as_str(), a.member_id, a.time), ("", None, None));
    assert!(Arrival::from_event(&json!({"id": ""})).is_none());
    assert!(Arrival::from_event(&json!([1, 2])).is_none());
}

// The in-memory messenger.

fn event(id: &str, ty: &str, at: i64, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/stores/s1",
           "type": format!("com.storegate.{ty}"), "time": Timestamp(at).rfc3339(), "data": data})
}

fn linked(id: &str, member: &str, marketing: bool) -> Value {
    event(
        id,
        "member.linked",
        TUE_10_SHANGHAI,
        json!({"member_id": member, "device_id": "d", "staff_code": null, "marketing": marketing}),
    )
}

fn visit(id: &str, member: Option<&str>, at: i64) -> Value {
    event(
        id,
        "visit.started",
        at,
        json!({"visit_id": "v", "member_id": member}),
    )
}

fn welcome() -> LocalMessenger {
    LocalMessenger::new(vec![campaign(
        r#"{"id":"welcome-back","text":"Welcome back!","audience":{"all_members":true},"daily_cap":1}"#,
    )])
}

#[test]
fn the_local_messenger_sends_once_per_member_and_day() {
    let mut m = welcome();
    let tz = shanghai();
    let now = Timestamp(TUE_10_SHANGHAI);
    assert!(m.handle(&linked("l1", "m1", true), &tz, now).is_none());
    assert!(m.handle(&linked("l2", "m2", false), &tz, now).is_none());

    let sent = m.handle(&visit("v1", Some("m1"), now.0), &tz, now).unwrap();
    assert_eq!(sent.campaign_id, "welcome-back");
    assert_eq!(sent.text, "Welcome back!");
    assert_eq!(sent.member_id, "m1");
    assert_eq!(sent.store_id, "s1");
    assert_eq!(sent.visit_event_id, "v1");
    assert_eq!(sent.arrival, now);
    let j = sent.to_json();
    assert_eq!(j["arrival_local"], "2026-12-01T10:00:00");
    assert_eq!(j["arrival"], "2026-12-01T02:00:00Z");

    // The same event again, and the member again that day: nothing.
    assert!(
        m.handle(&visit("v1", Some("m1"), now.0), &tz, now)
            .is_none()
    );
    assert!(
        m.handle(&visit("v2", Some("m1"), now.0), &tz, now)
            .is_none()
    );
    // No consent, no member, another event type: nothing.
    assert!(
        m.handle(&visit("v3", Some("m2"), now.0), &tz, now)
            .is_none()
    );
    assert!(m.handle(&visit("v4", None, now.0), &tz, now).is_none());
    assert!(m.handle(&json!({"type": 7}), &tz, now).is_none());
    // The next local day, once.
    let next = Timestamp(now.0 + 86_400_000);
    assert!(
        m.handle(&visit("v5", Some("m1"), next.0), &tz, next)
            .is_some()
    );
    assert!(
        m.handle(&visit("v6", Some("m1"), next.0), &tz, next)
            .is_none()
    );
}

#[test]
fn the_local_messenger_ignores_history_and_follows_consent() {
    let mut m = welcome();
    let tz = shanghai();
    let now = Timestamp(TUE_10_SHANGHAI);
    m.handle(&linked("l1", "m1", true), &tz, now);
    // A visit five weeks ago, replayed now.
    let old = visit("v0", Some("m1"), now.0 - 35 * 86_400_000);
    let a = Arrival::from_event(&old).unwrap();
    assert_eq!(m.arrival(&a, &tz, now), Err(Outcome::Stale));
    // Consent withdrawn by a later link, then erased, then given again.
    m.handle(&linked("l2", "m1", false), &tz, now);
    let a = Arrival::from_event(&visit("v1", Some("m1"), now.0)).unwrap();
    assert_eq!(m.arrival(&a, &tz, now), Err(Outcome::NoConsent));
    m.handle(&linked("l3", "m1", true), &tz, now);
    let erased = event("x1", "member.erased", now.0, json!({"member_id": "m1"}));
    m.handle(&erased, &tz, now);
    assert_eq!(m.arrival(&a, &tz, now), Err(Outcome::NoConsent));
    m.handle(&linked("l4", "m1", true), &tz, now);
    assert!(m.arrival(&a, &tz, now).is_ok());
    assert_eq!(m.arrival(&a, &tz, now), Err(Outcome::AlreadyHandled));
}
