//! `/metrics`: Prometheus text with every series, private unless made
//! public, and read from the live snapshot.

use super::*;

/// A dashboard that serves `/metrics` without a session.
fn public_metrics() -> Dashboard {
    Dashboard {
        metrics_public: true,
        ..fixture()
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let d = public_metrics();
    join(&d, 1, "phone-1");
    let (status, headers, text) = get(&d, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type(&headers).starts_with("text/plain; version=0.0.4"));
    let mut names = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            assert!(matches!(parts.next(), Some("HELP" | "TYPE")), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        names.insert(name.to_string());
    }
    for n in [
        "storegate_portal_requests_total",
        "storegate_portal_redirects_total",
        "storegate_clients",
        "storegate_presence_frames_total",
        "storegate_presence_sightings_total",
        "storegate_presence_malformed_total",
        "storegate_present_now",
        "storegate_outbox_queued",
        "storegate_outbox_dropped_total",
        "storegate_outbox_oldest_age_seconds",
        "storegate_delivery_delivered_total",
        "storegate_delivery_retries_total",
        "storegate_delivery_dead_lettered_total",
        "storegate_members_bound_devices",
    ] {
        assert!(names.contains(n), "missing {n}");
    }
    assert!(text.contains("storegate_present_now 1"));
    assert!(text.contains("storegate_devices_known 1"));
    // Private by default: guests and passers-by get nothing.
    let private = fixture();
    assert!(!private.metrics_public);
    let (status, _, _) = get(&private, "/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (id, _) = sign_in(&private).await;
    let (status, _, _) = get(&private, "/metrics", Some(&id)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_read_the_live_snapshot_not_the_presence_machine() {
    let d = public_metrics();
    join(&d, 1, "phone-1");
    let (_, _, text) = get(&d, "/metrics", None).await;
    assert!(text.contains("storegate_present_now 1"), "{text}");
    let seq = d.live.current().seq;
    // Within the snapshot's age limit a scrape reuses it...
    join(&d, 2, "phone-2");
    let (_, _, text) = get(&d, "/metrics", None).await;
    assert_eq!(d.live.current().seq, seq, "no new snapshot");
    assert!(text.contains("storegate_present_now 1"), "{text}");
    // ...and takes a new one once it is older.
    tokio::time::sleep(live::POLL_EVERY).await;
    let (_, _, text) = get(&d, "/metrics", None).await;
    assert!(text.contains("storegate_present_now 2"), "{text}");
    assert!(text.contains("storegate_devices_known 2"), "{text}");
}
