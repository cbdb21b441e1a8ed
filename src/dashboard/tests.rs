//! Dashboard answers, driven without sockets: memory store and firewall,
//! a presence shell fed sightings by hand.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::*;
use crate::access::session::SessionPolicy;
use crate::access::{AuthMethod, MemoryFirewall, gate::LogSink};
use crate::daemon::PresenceShell;
use crate::net::MacAddr;
use crate::portal::{ClientResolver, Site, SyntheticResolver};
use crate::presence::{
    DhcpInfo, DhcpMessageType, Presence, PresenceConfig, Sighting, SightingKind,
};
use crate::store::MemoryStore;
use crate::uplink::Outbox;

const PASSWORD: &str = "manager-pass-1";
const PEER: &str = "192.0.2.50";

fn fixture() -> Dashboard {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let outbox = Arc::new(Outbox::open(store.clone(), "wulin-01").unwrap());
    let policy = SessionPolicy {
        session_timeout: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(600),
        max_preauth: 100,
    };
    let fw = Arc::new(MemoryFirewall::new());
    let (gate, _) = Gate::open(policy, fw, store.clone(), Arc::new(LogSink)).unwrap();
    let gate = Arc::new(gate);
    let key = crate::privacy::DeviceKey::from_bytes([7; 32]);
    let shell = Arc::new(PresenceShell::new(
        Presence::new(PresenceConfig::default(), 1),
        store.clone(),
        outbox.clone(),
        key.clone(),
        (MacAddr([0; 6]), None, None),
    ));
    let site = Site::new(
        None,
        "127.0.0.1:2050".parse().unwrap(),
        None,
        "Wulin <Store>",
        Language::ZhCn,
    );
    let portal = Arc::new(Portal::new(
        site,
        gate.clone(),
        Arc::new(SyntheticResolver),
        key,
    ));
    let d = Dashboard::new(store, gate, shell, outbox, portal);
    d.set_password(PASSWORD).unwrap();
    d
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
    d.presence.observe(&s, None, &mut Vec::new());
}

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

async fn call(d: &Dashboard, r: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, String) {
    let resp = routes::handle(d, PEER.parse::<IpAddr>().unwrap(), r).await;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Signs in; returns (session id, CSRF token).
async fn sign_in(d: &Dashboard) -> (String, String) {
    let (status, headers, _) = call(
        d,
        req("POST", "/login", None, &format!("password={PASSWORD}")),
    )
    .await;
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
        let (status, _, _) = call(&d, req("GET", path, None, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, _, _) = call(
        &d,
        req("POST", "/api/devices/00:11:22:00:00:01/block", None, ""),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for path in ["/", "/devices"] {
        let (status, headers, _) = call(&d, req("GET", path, None, "")).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/login");
    }
    let (status, _, _) = call(&d, req("GET", "/api/devices", Some("forged"), "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_sets_a_strict_session_cookie() {
    let d = fixture();
    let (status, headers, _) =
        call(&d, req("POST", "/login", None, "password=wrong-password")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::SET_COOKIE).is_none());
    let (status, headers, _) = call(
        &d,
        req("POST", "/login", None, &format!("password={PASSWORD}")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(id.len(), 64, "32 random bytes, hex");
    let (status, _, page) = call(&d, req("GET", "/", Some(id), "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"present-now\""));
    assert!(page.contains("Wulin &lt;Store&gt;"));
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited() {
    let d = fixture();
    for _ in 0..auth::MAX_ATTEMPTS {
        let (status, _, _) = call(&d, req("POST", "/login", None, "password=nope-nope")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, _) = call(
        &d,
        req("POST", "/login", None, &format!("password={PASSWORD}")),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn posts_need_the_csrf_token() {
    let d = fixture();
    let (id, csrf) = sign_in(&d).await;
    let path = format!("/api/devices/{}/block", mac(1));
    let (status, _, _) = call(&d, req("POST", &path, Some(&id), "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&d, req("POST", &path, Some(&id), "csrf=wrong")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!d.blocked().contains(mac(1)));
    let mut r = req("POST", &path, Some(&id), "");
    r.headers_mut()
        .insert("x-csrf-token", csrf.parse().unwrap());
    let (status, _, _) = call(&d, r).await;
    assert_eq!(status, StatusCode::OK);
    assert!(d.blocked().contains(mac(1)));
    let (status, _, _) = call(&d, req("POST", "/logout", Some(&id), "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn hostnames_are_escaped() {
    let d = fixture();
    join(&d, 1, "<script>alert(1)</script>");
    let (id, _) = sign_in(&d).await;
    let (status, _, page) = call(&d, req("GET", "/devices", Some(&id), "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<script>alert"), "raw host name in the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let (_, _, live) = call(&d, req("GET", "/", Some(&id), "")).await;
    assert!(!live.contains("<script>alert"));
    assert!(live.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let (_, headers, json) = call(&d, req("GET", "/api/devices", Some(&id), "")).await;
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[0]["hostname"], "<script>alert(1)</script>");
    assert_eq!(rows[0]["present"], true);
    assert_eq!(rows[0]["classification"], "visitor");
}

#[tokio::test]
async fn visits_export_by_date_range() {
    let d = fixture();
    join(&d, 1, "phone-1");
    join(&d, 2, "=cmd|calc");
    let (id, _) = sign_in(&d).await;
    let today = {
        let m = d.presence.machine();
        crate::presence::local::local_date(crate::time::Timestamp::now(), m.timezone()).to_string()
    };
    let path = format!("/api/visits.csv?from={today}&to={today}");
    let (status, headers, csv) = call(&d, req("GET", &path, Some(&id), "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("visit_id,mac,started_at"));
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(csv.contains(&mac(1).to_string()));
    let (_, _, empty) = call(
        &d,
        req(
            "GET",
            "/api/visits.csv?from=2001-01-01&to=2001-01-31",
            Some(&id),
            "",
        ),
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
        let (status, _, msg) = call(
            &d,
            req("GET", &format!("/api/visits.csv?{bad}"), Some(&id), ""),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!msg.is_empty());
    }
}

#[tokio::test]
async fn marking_staff_drops_present_now() {
    let d = fixture();
    join(&d, 1, "phone-1");
    join(&d, 2, "till-tablet");
    let (id, csrf) = sign_in(&d).await;
    let present = |d: &Dashboard| {
        d.presence
            .machine()
            .footfall(crate::time::Timestamp::now())
            .present_now
    };
    assert_eq!(present(&d), 2);
    let path = format!("/api/devices/{}/staff", mac(2));
    let (status, _, _) = call(&d, req("POST", &path, Some(&id), &format!("csrf={csrf}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(present(&d), 1);
    let (_, _, json) = call(&d, req("GET", "/api/live", Some(&id), "")).await;
    let live: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(live["live"]["present_now"], 1);
    // Persisted: a new machine restored from the store keeps the mark.
    d.presence.persist_all();
    assert!(d.presence.machine().is_staff(mac(2)));
}

#[tokio::test]
async fn a_blocked_device_is_signed_out_and_refused_by_the_portal() {
    let d = fixture();
    let ip: IpAddr = "192.0.2.77".parse().unwrap();
    let m = SyntheticResolver.mac_of(ip).unwrap();
    d.gate
        .authorize(m, Some(ip), AuthMethod::ClickThrough, None)
        .unwrap();
    let (id, csrf) = sign_in(&d).await;
    let path = format!("/api/devices/{m}/block");
    let (status, _, body) = call(&d, req("POST", &path, Some(&id), &format!("csrf={csrf}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!d.gate.client(m).is_some_and(|c| c.is_authorized()));
    assert!(d.portal.is_blocked(m));
    // The portal itself refuses the device's sign-in.
    let r = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::HOST, "127.0.0.1:2050")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(b"accept_terms=yes")))
        .unwrap();
    let resp = crate::portal::routes::handle(&d.portal, ip, r).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(!d.gate.client(m).is_some_and(|c| c.is_authorized()));
}

#[tokio::test]
async fn the_event_stream_sends_a_new_snapshot_after_a_change() {
    let d = fixture();
    let (id, _) = sign_in(&d).await;
    let resp = routes::handle(
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
    assert!(d.live.refresh(&d.presence));
    let second = next().await;
    assert!(second.contains("event: snapshot"));
    assert!(second.contains("\"present_now\":1"), "{second}");
    assert!(second.contains("new-phone"));
    assert!(!d.live.refresh(&d.presence), "no change, nothing sent");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let d = fixture();
    join(&d, 1, "phone-1");
    let (status, headers, text) = call(&d, req("GET", "/metrics", None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
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
    let private = Dashboard {
        metrics_public: false,
        ..fixture()
    };
    let (status, _, _) = call(&private, req("GET", "/metrics", None, "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_new_password_signs_everyone_out() {
    let d = fixture();
    let (id, _) = sign_in(&d).await;
    d.set_password("another-pass-2").unwrap();
    let (status, _, _) = call(&d, req("GET", "/api/devices", Some(&id), "")).await;
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
