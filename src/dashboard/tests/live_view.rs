//! The live view: the event stream's snapshots, the poller that takes
//! them only while someone watches (`/api/live` is current regardless),
//! and how long a connection or an event stream may stay open.

use super::*;

#[tokio::test]
async fn the_event_stream_sends_a_new_snapshot_after_a_change() {
    let d = fixture();
    let (id, _) = sign_in(&d).await;
    let resp = routes::route(
        &d,
        PEER.parse().unwrap(),
        req("GET", "/api/events", Some(&id), ""),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    let mut next = async || -> String {
        let frame = tokio::time::timeout(Duration::from_secs(2), body.frame())
            .await
            .expect("an event within 2 s")
            .unwrap()
            .unwrap();
        String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
    };
    let first = next().await;
    assert!(first.starts_with("id: "), "{first}");
    assert!(first.contains("\"present_now\":0"), "{first}");
    join(&d, 3, "new-phone");
    assert!(d.live.refresh(&d.app.presence));
    let second = next().await;
    assert!(second.contains("event: snapshot"));
    assert!(second.contains("\"present_now\":1"), "{second}");
    assert!(second.contains("new-phone"));
    assert!(!d.live.refresh(&d.app.presence), "no change, nothing sent");
}

#[tokio::test]
async fn the_poller_leaves_presence_alone_without_viewers_and_api_live_is_current() {
    let d = Arc::new(fixture());
    let shutdown = CancellationToken::new();
    let poller = tokio::spawn(live::run(d.clone(), shutdown.clone()));
    join(&d, 1, "phone-1");
    tokio::time::sleep(live::POLL_EVERY * 3).await;
    assert_eq!(d.live.current().seq, 0, "no stream open: no snapshot taken");
    let (id, _) = sign_in(&d).await;
    let (status, _, body) = get(&d, "/api/live", Some(&id)).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["live"]["present_now"], 1, "{body}");
    join(&d, 2, "phone-2");
    let (_, _, page) = get(&d, "/", Some(&id)).await;
    let (_, _, body) = get(&d, "/api/live", Some(&id)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["live"]["present_now"], 2, "{body}");
    assert!(page.contains("data-seq"), "{page}");
    shutdown.cancel();
    poller.await.unwrap();
}

/// Writes `request` on a fresh in-memory connection served with
/// `lifetimes`; returns the client end after the answer's head.
async fn open_with(
    d: &Arc<Dashboard>,
    lifetimes: server::Lifetimes,
    request: &str,
) -> tokio::io::DuplexStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client, server_end) = tokio::io::duplex(64 * 1024);
    tokio::spawn(server::serve_io_for(
        server_end,
        format!("{PEER}:40000").parse().unwrap(),
        d.clone(),
        tokio_util::sync::CancellationToken::new(),
        lifetimes,
    ));
    client.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut b))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(n, 1, "closed before the answer: {head:?}");
        head.push(b[0]);
    }
    client
}

/// How long until the server closes `client` (at most 10 s).
async fn time_to_close(client: &mut tokio::io::DuplexStream) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut sink))
        .await
        .expect("the server closes the connection")
        .unwrap();
    started.elapsed()
}

#[tokio::test]
async fn connections_have_a_lifetime_and_event_streams_a_longer_one() {
    let d = Arc::new(fixture());
    let (id, _) = sign_in(&d).await;
    let lifetimes = server::Lifetimes {
        connection: Duration::from_millis(300),
        event_stream: Duration::from_millis(1500),
        grace: Duration::from_millis(100),
    };
    // A kept-alive connection is closed at the end of its lifetime.
    let mut plain = open_with(&d, lifetimes, "GET /login HTTP/1.1\r\nHost: d\r\n\r\n").await;
    assert!(time_to_close(&mut plain).await < Duration::from_millis(1200));
    // An event stream outlives that, but not its own bound.
    let events = format!(
        "GET /api/events HTTP/1.1\r\nHost: d\r\nCookie: {}={id}\r\n\r\n",
        auth::COOKIE
    );
    let mut stream = open_with(&d, lifetimes, &events).await;
    let open_for = time_to_close(&mut stream).await;
    assert!(open_for > Duration::from_millis(900), "{open_for:?}");
    assert!(open_for < Duration::from_millis(4000), "{open_for:?}");
    // A form body that never arrives holds a connection no longer either.
    let mut stalled = open_with(&d, lifetimes, "GET /login HTTP/1.1\r\nHost: d\r\n\r\n").await;
    use tokio::io::AsyncWriteExt;
    stalled
        .write_all(b"POST /login HTTP/1.1\r\nHost: d\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    assert!(time_to_close(&mut stalled).await < Duration::from_millis(2000));
}

#[tokio::test(flavor = "multi_thread")]
async fn arrivals_say_how_a_member_was_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let rig = crate::app::rig::rig_with_wifi(dir.path());
    let d = Dashboard::new(rig.app, Language::En);
    let members = d.app.members.clone().unwrap();
    let now = crate::time::Timestamp::now();
    let phone = "13812345678";
    let issued = members.request_code(phone, mac(41), now).unwrap();
    let member = members
        .verify_code(phone, &issued.code, mac(41), now)
        .unwrap();
    let consent = crate::members::Consent {
        remember_device: true,
        marketing: false,
    };
    members.link(&member, mac(41), consent, None, now).unwrap();
    members.issue_wifi_key(&member, now).unwrap();
    // The member's phone joins the members' SSID with its key.
    let mut events = Vec::new();
    d.app
        .presence
        .station_joined(mac(40), Some(member.clone()), &mut events);
    let live = super::super::live::snapshot(&d.app.presence, now);
    let arrival = live
        .feed
        .iter()
        .find(|a| a.member_id.as_deref() == Some(member.as_str()))
        .expect("the member's arrival");
    assert_eq!(arrival.recognised_by, Some("wifi_key"));
    let html = views::live_body(Language::En, &live, 1);
    assert!(html.contains("by Wi-Fi key"), "{html}");
}
