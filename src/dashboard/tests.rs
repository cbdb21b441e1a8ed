//! Dashboard answers, driven without sockets, over the shared test rig
//! (`app::rig`: memory store and firewall, a presence shell fed
//! sightings by hand).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::access::AuthMethod;
use crate::mac::MacAddr;
use crate::portal::{ClientResolver, Portal, Site, SyntheticResolver};
use crate::presence::{DhcpInfo, DhcpMessageType, Sighting, SightingKind};

const PASSWORD: &str = "manager-pass-1";
const PEER: &str = "192.0.2.50";

/// The shared rig's hub behind a dashboard, signed in with [`PASSWORD`].
fn fixture() -> Dashboard {
    let d = Dashboard::new(crate::app::rig::rig().app, Language::ZhCn);
    d.set_password(PASSWORD).unwrap();
    d
}

/// A portal over the same hub (gate, block list, sync document).
fn portal_of(d: &Dashboard) -> Portal {
    let site = Site::new(
        None,
        "127.0.0.1:2050".parse().unwrap(),
        None,
        "Wulin <Store>",
        Language::ZhCn,
    );
    Portal {
        sync: d.app.sync.clone(),
        blocklist: d.app.blocklist.clone(),
        stats: d.app.portal_stats.clone(),
        ..Portal::new(
            site,
            d.app.gate.clone(),
            Arc::new(SyntheticResolver),
            crate::privacy::DeviceKey::from_bytes(crate::app::rig::KEY),
        )
    }
}

fn mac(n: u8) -> MacAddr {
    MacAddr([0x00, 0x11, 0x22, 0, 0, n])
}

/// A DHCP request from device `n`.
fn join(d: &Dashboard, n: u8, hostname: &str) {
    let s = Sighting {
        mac: mac(n),
        kind: SightingKind::DhcpClient(DhcpInfo {
            message_type: DhcpMessageType::Request,
            requested_ip: Some(Ipv4Addr::new(192, 0, 2, n)),
            hostname: Some(hostname.to_string()),
            ..DhcpInfo::default()
        }),
    };
    d.app.presence.observe(&s, &mut Vec::new());
}

/// DHCP requests from devices 1, 2, … with these host names.
fn join_all(d: &Dashboard, hostnames: &[&str]) {
    for (n, hostname) in (1..).zip(hostnames) {
        join(d, n, hostname);
    }
}

/// A request as a browser sends it: `cookie` is a session id, a POST's
/// body a form.
fn req(method: &str, path: &str, cookie: Option<&str>, body: &str) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, format!("{}={c}", auth::COOKIE));
    }
    if method == "POST" {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    b.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

/// A dashboard answer: status, headers and body.
type Answer = (StatusCode, http::HeaderMap, String);

/// The dashboard's answer to `r` from [`PEER`], read in full.
async fn call(d: &Dashboard, r: Request<Full<Bytes>>) -> Answer {
    let resp = routes::route(d, PEER.parse::<IpAddr>().unwrap(), r).await;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// A GET with the session cookie `session`, if any.
async fn get(d: &Dashboard, path: &str, session: Option<&str>) -> Answer {
    call(d, req("GET", path, session, "")).await
}

/// A form POST of `body` with the session cookie `session`, if any.
async fn post(d: &Dashboard, path: &str, session: Option<&str>, body: &str) -> Answer {
    call(d, req("POST", path, session, body)).await
}

/// A sign-in with `password`.
async fn try_password(d: &Dashboard, password: &str) -> Answer {
    post(d, "/login", None, &format!("password={password}")).await
}

/// The Content-Type of an answer.
fn content_type(headers: &http::HeaderMap) -> &str {
    headers[header::CONTENT_TYPE].to_str().unwrap()
}

/// Signs in; returns (session id, CSRF token).
async fn sign_in(d: &Dashboard) -> (String, String) {
    let (status, headers, _) = try_password(d, PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    let id = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    let csrf = d
        .auth
        .sessions
        .get(&id, crate::time::Timestamp::now())
        .unwrap()
        .csrf;
    (id, csrf)
}

#[tokio::test]
async fn without_a_session_apis_answer_401_and_pages_redirect() {
    let d = fixture();
    for path in [
        "/api/devices",
        "/api/live",
        "/api/events",
        "/api/visits.csv",
    ] {
        let (status, _, _) = get(&d, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, _, _) = post(&d, "/api/devices/00:11:22:00:00:01/block", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for path in ["/", "/devices"] {
        let (status, headers, _) = get(&d, path, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/login");
    }
    let (status, _, _) = get(&d, "/api/devices", Some("forged")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_sets_a_strict_session_cookie() {
    let d = fixture();
    let (status, headers, _) = try_password(&d, "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    let (status, headers, _) = try_password(&d, PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(id.len(), 64, "32 random bytes, hex");
    let (status, _, page) = get(&d, "/", Some(id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"present-now\""));
    assert!(page.contains("Wulin &lt;Store&gt;"));
}

/// Even the right password is refused for now, with a time to come back.
async fn assert_locked_out(d: &Dashboard) {
    let (status, headers, _) = try_password(d, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn sign_in_attempts_are_limited_in_all_too() {
    let d = fixture();
    let mut last = StatusCode::OK;
    for i in 0..=auth::MAX_ATTEMPTS_TOTAL {
        let peer: IpAddr = format!("2001:db8:{i:x}::1").parse().unwrap();
        let resp = routes::route(&d, peer, req("POST", "/login", None, "password=nope-nope")).await;
        last = resp.status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert_locked_out(&d).await;
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() {
    let d = fixture();
    for _ in 0..auth::MAX_ATTEMPTS {
        let (status, _, _) = try_password(&d, "nope-nope").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_locked_out(&d).await;
}

#[tokio::test]
async fn posts_need_the_csrf_token() {
    let d = fixture();
    let (id, csrf) = sign_in(&d).await;
    let path = format!("/api/devices/{}/block", mac(1));
    let (status, _, _) = post(&d, &path, Some(&id), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post(&d, &path, Some(&id), "csrf=wrong").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!d.app.blocklist.manager().contains(mac(1)));
    let mut r = req("POST", &path, Some(&id), "");
    r.headers_mut()
        .insert("x-csrf-token", csrf.parse().unwrap());
    let (status, _, _) = call(&d, r).await;
    assert_eq!(status, StatusCode::OK);
    assert!(d.app.blocklist.manager().contains(mac(1)));
    let (status, _, _) = post(&d, "/logout", Some(&id), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn hostnames_are_escaped() {
    let d = fixture();
    join(&d, 1, "<script>alert(1)</script>");
    let (id, _) = sign_in(&d).await;
    let (status, _, page) = get(&d, "/devices", Some(&id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<script>alert"), "raw host name in the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let (_, _, live) = get(&d, "/", Some(&id)).await;
    assert!(!live.contains("<script>alert"));
    assert!(live.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let (_, headers, json) = get(&d, "/api/devices", Some(&id)).await;
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[0]["hostname"], "<script>alert(1)</script>");
    assert_eq!(rows[0]["present"], true);
    assert_eq!(rows[0]["classification"], "visitor");
}

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
async fn marking_staff_drops_present_now() {
    let d = fixture();
    join_all(&d, &["phone-1", "till-tablet"]);
    let (id, csrf) = sign_in(&d).await;
    let present = |d: &Dashboard| {
        d.app
            .presence
            .machine()
            .footfall(crate::time::Timestamp::now())
            .present_now
    };
    assert_eq!(present(&d), 2);
    let path = format!("/api/devices/{}/staff", mac(2));
    let (status, _, _) = post(&d, &path, Some(&id), &format!("csrf={csrf}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(present(&d), 1);
    let (_, _, json) = get(&d, "/api/live", Some(&id)).await;
    let live: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(live["live"]["present_now"], 1);
    // Persisted: a new machine restored from the store keeps the mark.
    d.app.presence.persist_all();
    assert!(d.app.presence.machine().is_staff(mac(2)));
}

#[tokio::test]
async fn a_blocked_device_is_signed_out_and_refused_by_the_portal() {
    let d = fixture();
    let ip: IpAddr = "192.0.2.77".parse().unwrap();
    let m = SyntheticResolver.mac_of(ip).unwrap();
    d.app
        .gate
        .authorize(m, Some(ip), AuthMethod::ClickThrough, None)
        .unwrap();
    let (id, csrf) = sign_in(&d).await;
    let path = format!("/api/devices/{m}/block");
    let (status, _, body) = post(&d, &path, Some(&id), &format!("csrf={csrf}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!d.app.gate.client(m).is_some_and(|c| c.is_authorized()));
    assert!(d.app.blocklist.is_blocked(m));
    let portal = portal_of(&d);
    // The portal itself refuses the device's sign-in.
    let today = crate::portal::routes::utc_day(crate::time::Timestamp::now());
    let token = crate::portal::routes::csrf_token(&portal.device_key, m, today);
    let form = format!("accept_terms=yes&lang=en&csrf={token}");
    let mut r = req("POST", "/login", None, &form);
    let host = header::HeaderValue::from_static("127.0.0.1:2050");
    r.headers_mut().insert(header::HOST, host);
    let resp = crate::portal::routes::route(&portal, ip, r).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&body).contains("cannot sign in here"),
        "refused as blocked, not for a missing form token"
    );
    assert!(!d.app.gate.client(m).is_some_and(|c| c.is_authorized()));
}

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

#[tokio::test]
async fn a_sign_in_while_passwords_are_being_checked_gets_429() {
    let d = fixture();
    let busy = d
        .auth
        .verifying
        .clone()
        .try_acquire_many_owned(auth::MAX_VERIFYING as u32)
        .unwrap();
    let (status, headers, _) = try_password(&d, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert!(!headers.contains_key(header::SET_COOKIE));
    drop(busy);
    sign_in(&d).await;
    assert_eq!(
        d.auth.verifying.available_permits(),
        auth::MAX_VERIFYING,
        "permits come back"
    );
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

#[tokio::test]
async fn a_new_password_signs_everyone_out() {
    let d = fixture();
    let (id, _) = sign_in(&d).await;
    d.set_password("another-pass-2").unwrap();
    let (status, _, _) = get(&d, "/api/devices", Some(&id)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(matches!(
        d.set_password("short"),
        Err(AuthError::BadPassword)
    ));
}

#[test]
fn every_dashboard_text_is_translated_in_both_languages() {
    let parse =
        |src: &str| -> std::collections::BTreeMap<String, String> { toml::from_str(src).unwrap() };
    let en = parse(include_str!("../../web/i18n/en.toml"));
    let zh = parse(include_str!("../../web/i18n/zh-CN.toml"));
    let code = [
        include_str!("views.rs"),
        include_str!("routes.rs"),
        include_str!("routes/devices.rs"),
        include_str!("routes/export.rs"),
        include_str!("routes/live.rs"),
        include_str!("routes/sign_in.rs"),
        views::LAYOUT,
        views::LOGIN,
    ]
    .concat();
    for piece in code.split("dash_").skip(1) {
        let key: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if key.is_empty() || key.ends_with('_') {
            continue;
        }
        let key = format!("dash_{key}");
        assert!(en.contains_key(&key), "en lacks {key}");
        assert!(zh.contains_key(&key), "zh-CN lacks {key}");
    }
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
