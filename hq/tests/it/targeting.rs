//! Targeted messages: a consenting member's arrival → exactly one
//! message at the provider within a second, and one event on
//! `storegate.messages.<store>`; a second arrival the same day is
//! capped; no message without marketing consent, nor for an arrival
//! more than 15 minutes old; a messenger restart,
//! even one that replays every arrival, sends nothing again.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

fn sent(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn metric(port: u16, name: &str) -> u64 {
    let text = request(port, "GET", "/metrics", &[], b"").unwrap().text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_arrival_gets_one_message_capped_and_consented() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::single(dir.path());
    let s = secret(9);
    let port = free_port();
    let sink = dir.path().join("sent.jsonl");
    let extra = format!(
        "[provider]\nfile = \"{}\"\n[targeting]\nrefresh = \"200ms\"\n",
        sink.display()
    );
    let toml = hq_toml(port, &[nats.url()], 1, &[("mall-01", &s)], &extra);
    let mut hq = Hq::start(dir.path(), "hq", port, &toml, "all");

    // The campaign, in the campaigns bucket.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let campaigns = js.get_key_value("STOREGATE_CAMPAIGNS").await.unwrap();
    let campaign = json!({"id": "cafe-20", "text": "Welcome back: 20% off at the café today",
                          "audience": {"all_members": true}, "stores": ["mall-01"], "daily_cap": 1});
    campaigns
        .put("cafe-20", campaign.to_string().into())
        .await
        .unwrap();

    let mut seq = 0;
    let mut post = |ty: &str, data: Value| {
        seq += 1;
        let e = event("mall-01", ty, seq, data);
        let r = post_batch(port, "/events", &s, std::slice::from_ref(&e)).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        e
    };
    // m1 consents to marketing, m2 does not; m3 never linked here.
    post(
        "member.linked",
        json!({"member_id": "m1", "device_id": "d1", "staff_code": null,
                                 "remember_device": true, "marketing": true}),
    );
    post(
        "member.linked",
        json!({"member_id": "m2", "device_id": "d2", "staff_code": null,
                                 "remember_device": true, "marketing": false}),
    );
    std::thread::sleep(Duration::from_millis(500)); // campaign loaded, consent learned
    let visit = |m: Option<&str>| {
        json!({"visit_id": "v", "device_id": "d", "member_id": m,
        "recognised_by": "wifi_key", "returning": true, "mac_randomized": false, "os_family": "ios"})
    };

    // A visit 20 minutes ago (a backlog after an outage) is not messaged.
    let mut stale = event("mall-01", "visit.started", 100, visit(Some("m1")));
    stale["time"] =
        json!((jiff::Timestamp::now() - jiff::SignedDuration::from_mins(20)).to_string());
    let r = post_batch(port, "/events", &s, std::slice::from_ref(&stale)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until("the stale arrival", Duration::from_secs(5), || {
        metric(port, "storegate_hq_messages_suppressed_stale_total") == 1
    });
    assert!(sent(&sink).is_empty());

    let arrived = Instant::now();
    let first = post("visit.started", visit(Some("m1")));
    wait_until("the targeted message", Duration::from_secs(1), || {
        !sent(&sink).is_empty()
    });
    let latency = arrived.elapsed();
    let msgs = sent(&sink);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["kind"], "targeted");
    assert_eq!(msgs[0]["member_id"], "m1");
    assert_eq!(msgs[0]["campaign_id"], "cafe-20");
    assert_eq!(msgs[0]["visit_event_id"], first["id"]);
    eprintln!("arrival → provider: {latency:?}");

    // Capped the same day; no consent; no member; never linked.
    post("visit.started", visit(Some("m1")));
    post("visit.started", visit(Some("m2")));
    post("visit.started", visit(None));
    post("visit.started", visit(Some("m3")));
    wait_until("the arrivals to be handled", Duration::from_secs(5), || {
        metric(port, "storegate_hq_messages_suppressed_cap_total") == 1
            && metric(port, "storegate_hq_messages_suppressed_consent_total") == 2
    });
    assert_eq!(sent(&sink).len(), 1);
    assert_eq!(metric(port, "storegate_hq_messages_sent_total"), 1);
    let announced = stream_events(&nats.url(), "storegate.messages.>").await;
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert_eq!(announced[0]["data"]["visit_event_id"], first["id"]);

    // A restart resumes after the acknowledged arrivals: nothing again.
    hq.proc.stop();
    hq.restart();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(sent(&sink).len(), 1);
    // Even with the consumers gone (every arrival delivered again), the
    // create-only markers hold.
    hq.proc.stop();
    let stream = js.get_stream("STOREGATE").await.unwrap();
    for c in ["targeting-visits", "targeting-members"] {
        stream.delete_consumer(c).await.unwrap();
    }
    hq.restart();
    wait_until("the replay", Duration::from_secs(5), || {
        metric(port, "storegate_hq_messages_suppressed_redelivery_total") >= 1
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sent(&sink).len(), 1);
    assert_eq!(
        stream_events(&nats.url(), "storegate.messages.>")
            .await
            .len(),
        1
    );
    assert!(!hq.log_text().contains("panicked"));
}
