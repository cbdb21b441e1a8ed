//! The visits export (CSV by local date range): what it contains, the
//! ranges it refuses, and dates the box may no longer have every visit for.

use super::*;

#[tokio::test]
async fn visits_export_by_date_range() {
    let d = fixture();
    join_all(&d, &["phone-1", "=cmd|calc"]);
    let (id, _) = sign_in(&d).await;
    let today = {
        let m = d.app.presence.machine();
        crate::presence::local::local_date(crate::time::Timestamp::now(), m.timezone()).to_string()
    };
    let path = format!("/api/visits.csv?from={today}&to={today}");
    let (status, headers, csv) = get(&d, &path, Some(&id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type(&headers).starts_with("text/csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("visit_id,mac,started_at"));
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(csv.contains(&mac(1).to_string()));
    let (_, _, empty) = get(
        &d,
        "/api/visits.csv?from=2001-01-01&to=2001-01-31",
        Some(&id),
    )
    .await;
    assert_eq!(empty.lines().count(), 1);
    for bad in [
        "from=2024-13-01&to=2024-12-31",
        "from=yesterday&to=2024-01-01",
        "from=2024-01-02&to=2024-01-01",
        "from=2024-01-01",
        "from=2020-01-01&to=2024-01-01",
    ] {
        let (status, _, msg) = get(&d, &format!("/api/visits.csv?{bad}"), Some(&id)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!msg.is_empty());
    }
}

#[tokio::test]
async fn the_visits_export_refuses_dates_the_box_may_have_dropped() {
    use crate::presence::local::days_before;
    use crate::presence::visit::MAX_RECENT_VISITS;
    use crate::presence::{Classification, Visit};
    use crate::time::Timestamp;
    let d = fixture();
    let (id, _) = sign_in(&d).await;
    let now = Timestamp::now();
    let days_ago = |days: i64, mins: i64| {
        Timestamp::from_secs(now.millis() / 1000 - days * 86_400 + mins * 60)
    };
    let tz = d.app.presence.machine().timezone().clone();
    let local = |t: Timestamp| crate::presence::local::local_date(t, &tz);
    let visit = |i: usize| {
        let started = days_ago(10, i as i64);
        Visit {
            visit_id: format!("v{i}"),
            mac: MacAddr([0x02, 0, 0, 0, (i >> 8) as u8, i as u8]),
            started_at: started,
            ended_at: Some(started.plus(Duration::from_secs(60))),
            dwell_seconds: 60,
            classification: Classification::Visitor,
            returning: false,
            mac_randomized: false,
            os_family: "ios".into(),
            member_id: None,
        }
    };
    let restore = |n: usize| {
        let mut m = d.app.presence.machine();
        let mut saved = m.snapshot();
        // Newest first, as the machine keeps them.
        saved.recent_visits = (0..n).rev().map(visit).collect();
        m.restore(saved, now);
    };
    let oldest_end = visit(0).ended_at.unwrap();
    let first_complete = local(oldest_end).tomorrow().unwrap();
    let today = local(now);
    let ask = |from: String| format!("/api/visits.csv?from={from}&to={today}");

    // Fewer than the cap: nothing was dropped, every date is answered.
    restore(MAX_RECENT_VISITS - 1);
    let (status, _, csv) = get(&d, &ask(local(oldest_end).to_string()), Some(&id)).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert_eq!(csv.lines().count(), MAX_RECENT_VISITS);

    // At the cap, older visits may be gone: no silently short file.
    restore(MAX_RECENT_VISITS);
    let (status, _, msg) = get(&d, &ask(local(oldest_end).to_string()), Some(&id)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(msg.contains(&first_complete.to_string()), "{msg}");
    let (status, _, msg) = get(
        &d,
        &ask(days_before(local(oldest_end), 30).to_string()),
        Some(&id),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{msg}");
    let (status, _, csv) = get(&d, &ask(first_complete.to_string()), Some(&id)).await;
    assert_eq!(status, StatusCode::OK, "{csv}");
    assert!(csv.starts_with("visit_id,"));
}
