//! `/messages` quotas hold across two gateways sharing NATS KV: of many
//! texts for one store sent to both at once, exactly the quota goes
//! through; a retried request is not texted twice; nothing of a phone
//! number reaches the logs.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

fn otp(port: u16, secret: &str, phone: &str, webhook_id: Option<&str>) -> u16 {
    let body = serde_json::to_vec(&json!({"kind": "otp", "phone": phone, "code": "493817",
        "store_id": "shop-01", "locale": "en"}))
    .unwrap();
    let mut h = signed(secret, &body);
    if let Some(id) = webhook_id {
        let key = storegate::uplink::signing::SigningKey::from_secret(secret).unwrap();
        h = key
            .headers(id, jiff::Timestamp::now().as_second(), &body)
            .to_vec();
    }
    h.push(("content-type", "application/json".into()));
    request(port, "POST", "/messages", &h, &body)
        .unwrap()
        .status
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_hold_across_two_gateways() {
    let dir = tempfile::tempdir().unwrap();
    let nats = Nats::single(dir.path());
    let s = secret(5);
    let sink = dir.path().join("texts.jsonl");
    let extra = format!(
        "[provider]\nfile = \"{}\"\n[quotas]\nper_store = 5\nper_country = 100\nblocked_prefixes = [\"+881\"]\n",
        sink.display()
    );
    let (p1, p2) = (free_port(), free_port());
    let h1 = Hq::start(
        dir.path(),
        "hq1",
        p1,
        &hq_toml(p1, &[nats.url()], 1, &[("shop-01", &s)], &extra),
        "gateway",
    );
    let h2 = Hq::start(
        dir.path(),
        "hq2",
        p2,
        &hq_toml(p2, &[nats.url()], 1, &[("shop-01", &s)], &extra),
        "gateway",
    );

    // A retried request (same webhook-id) is texted once.
    assert_eq!(otp(p1, &s, "+8613800000001", Some("msg_retry")), 200);
    assert_eq!(otp(p2, &s, "+8613800000001", Some("msg_retry")), 200);
    // Blocked prefix, and not E.164.
    assert_eq!(otp(p1, &s, "+88112345678", None), 403);
    assert_eq!(otp(p1, &s, "13800000000", None), 400);

    // 20 texts at once, alternating between the gateways: 4 more fit.
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            let port = if i % 2 == 0 { p1 } else { p2 };
            std::thread::spawn(move || otp(port, &s, &format!("+86138000001{i:02}"), None))
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        16,
        "{statuses:?}"
    );
    std::thread::sleep(Duration::from_millis(100));
    let texts = std::fs::read_to_string(&sink).unwrap();
    assert_eq!(texts.lines().count(), 5);
    for hq in [&h1, &h2] {
        let log = hq.log_text();
        assert!(
            !log.contains("13800000") && !log.contains("493817"),
            "{log}"
        );
    }
}
