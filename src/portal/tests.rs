//! Portal answers, driven without sockets: a MemoryFirewall, a MemoryStore
//! and a fixed resolver stand in for the LAN.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::*;
use crate::access::session::SessionPolicy;
use crate::access::{Gate, MemoryFirewall, gate::LogSink};
use crate::store::MemoryStore;

const CLIENT: &str = "192.0.2.101";
const STRANGER: &str = "192.0.2.199";

/// Knows one client; everyone else is unknown.
struct OneClient;

impl ClientResolver for OneClient {
    fn mac_of(&self, ip: IpAddr) -> Option<MacAddr> {
        (ip == CLIENT.parse::<IpAddr>().unwrap()).then_some(MacAddr([2, 0, 0, 0, 0, 1]))
    }
}

struct Fixture {
    portal: Portal,
    fw: Arc<MemoryFirewall>,
}

fn fixture() -> Fixture {
    let fw = Arc::new(MemoryFirewall::new());
    let policy = SessionPolicy {
        session_timeout: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(600),
        max_preauth: 100,
    };
    let (gate, _) = Gate::open(
        policy,
        fw.clone(),
        Arc::new(MemoryStore::new()),
        Arc::new(LogSink),
    )
    .unwrap();
    let listen: SocketAddr = "0.0.0.0:2050".parse().unwrap();
    let site = Site::new(
        None,
        listen,
        Some("192.0.2.1".parse().unwrap()),
        "Wulin <Store>",
        Language::ZhCn,
    );
    Fixture {
        portal: Portal {
            site,
            gate: Arc::new(gate),
            resolver: Arc::new(OneClient),
            stats: PortalStats::default(),
        },
        fw,
    }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn ask(f: &Fixture, from: &str, req: Request<Full<Bytes>>) -> Answer {
    let resp = routes::handle(&f.portal, from.parse().unwrap(), req).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get(host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header(header::HOST, host)
        .body(Full::default())
        .unwrap()
}

fn post(path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header(header::HOST, "192.0.2.1:2050")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

#[tokio::test]
async fn foreign_host_is_redirected_to_sign_in_without_caching() {
    let f = fixture();
    let a = ask(&f, CLIENT, get("captive.apple.com", "/hotspot-detect.html")).await;
    assert_eq!(a.status, StatusCode::FOUND);
    assert_eq!(
        a.header("location"),
        "http://192.0.2.1:2050/login?dst=http%3A%2F%2Fcaptive.apple.com%2Fhotspot-detect.html"
    );
    assert_eq!(a.header("cache-control"), "no-store");
    // An unknown device is redirected the same way.
    let a = ask(&f, STRANGER, get("example.com", "/")).await;
    assert_eq!(a.status, StatusCode::FOUND);
}

#[tokio::test]
async fn click_through_authorises_before_answering() {
    let f = fixture();
    let page = ask(&f, CLIENT, get("192.0.2.1:2050", "/login")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"accept_terms\""));
    assert!(
        page.body.contains("Wulin &lt;Store&gt;"),
        "store name is escaped"
    );
    assert!(page.body.contains("lang=\"zh-CN\""), "zh-CN by default");

    let refused = ask(&f, CLIENT, post("/login", "dst=")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("请勾选同意使用条款"),
        "{}",
        refused.body
    );
    assert!(!f.fw.is_allowed(MAC1));

    let ok = ask(&f, CLIENT, post("/login", "accept_terms=yes")).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), "/status");
    assert!(f.fw.is_allowed(MAC1), "authorised before the answer");

    let status = ask(&f, CLIENT, get("192.0.2.1:2050", "/status?lang=en")).await;
    assert_eq!(status.status, StatusCode::OK);
    assert!(
        status.body.contains("1 h 0 min") || status.body.contains("60 min"),
        "{}",
        status.body
    );
}

#[tokio::test]
async fn captive_api_follows_the_session() {
    let f = fixture();
    let a = ask(&f, CLIENT, get("192.0.2.1:2050", "/api/captive")).await;
    assert_eq!(a.header("content-type"), "application/captive+json");
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["captive"], true);
    assert_eq!(v["user-portal-url"], "http://192.0.2.1:2050/login");
    f.portal
        .gate
        .authorize(MAC1, None, crate::access::AuthMethod::ClickThrough, None)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(
        &ask(&f, CLIENT, get("192.0.2.1:2050", "/api/captive"))
            .await
            .body,
    )
    .unwrap();
    assert_eq!(v["captive"], false);
    let left = v["seconds-remaining"].as_u64().unwrap();
    assert!((3590..=3600).contains(&left), "{left}");
}

#[tokio::test]
async fn after_sign_in_stale_connections_get_probe_answers() {
    let f = fixture();
    f.portal
        .gate
        .authorize(MAC1, None, crate::access::AuthMethod::ClickThrough, None)
        .unwrap();
    let apple = ask(&f, CLIENT, get("captive.apple.com", "/hotspot-detect.html")).await;
    assert_eq!(apple.status, StatusCode::OK);
    assert!(apple.body.contains("<TITLE>Success</TITLE>"));
    assert_eq!(apple.header("connection"), "close");
    let android = ask(
        &f,
        CLIENT,
        get("connectivitycheck.gstatic.com", "/generate_204"),
    )
    .await;
    assert_eq!(android.status, StatusCode::NO_CONTENT);
    let other = ask(&f, CLIENT, get("example.com", "/page?x=1")).await;
    assert_eq!(other.status, StatusCode::FOUND);
    assert_eq!(other.header("location"), "http://example.com/page?x=1");
    assert_eq!(other.header("connection"), "close");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let f = fixture();
    f.portal
        .gate
        .authorize(MAC1, None, crate::access::AuthMethod::ClickThrough, None)
        .unwrap();
    let a = ask(&f, CLIENT, post("/logout", "lang=en")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.header("location"), "/login?lang=en");
    assert!(!f.fw.is_allowed(MAC1));
    let status = ask(&f, CLIENT, get("192.0.2.1:2050", "/status")).await;
    assert_eq!(status.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let f = fixture();
    let big = "a".repeat(routes::MAX_BODY_BYTES + 1);
    let a = ask(
        &f,
        CLIENT,
        post("/login", &format!("accept_terms=yes&x={big}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let a = ask(&f, CLIENT, post("/login", "accept_terms=%zz")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let mut cross = post("/login", "accept_terms=yes");
    cross
        .headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    assert_eq!(ask(&f, CLIENT, cross).await.status, StatusCode::FORBIDDEN);
    assert!(!f.fw.is_allowed(MAC1));
    let a = ask(&f, CLIENT, get("192.0.2.1:2050", "/nope")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = ask(
        &f,
        CLIENT,
        Request::delete("/login")
            .header(header::HOST, "192.0.2.1:2050")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn unknown_device_cannot_sign_in_and_is_told_why() {
    let f = fixture();
    let a = ask(&f, STRANGER, post("/login", "accept_terms=yes")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body.contains("Wi-Fi"), "{}", a.body);
}

#[tokio::test]
async fn language_comes_from_query_then_accept_language() {
    let f = fixture();
    let mut req = get("192.0.2.1:2050", "/login");
    req.headers_mut().insert(
        header::ACCEPT_LANGUAGE,
        "fr-FR, en-GB;q=0.8".parse().unwrap(),
    );
    assert!(ask(&f, CLIENT, req).await.body.contains("lang=\"en\""));
    let mut req = get("192.0.2.1:2050", "/login?lang=zh-CN");
    req.headers_mut()
        .insert(header::ACCEPT_LANGUAGE, "en".parse().unwrap());
    assert!(ask(&f, CLIENT, req).await.body.contains("lang=\"zh-CN\""));
}

#[test]
fn own_host_recognition() {
    let site = Site::new(
        None,
        "0.0.0.0:2050".parse().unwrap(),
        Some("192.0.2.1".parse().unwrap()),
        "s",
        Language::En,
    );
    assert_eq!(site.url, "http://192.0.2.1:2050/");
    assert!(site.is_own_host("192.0.2.1:2050"));
    assert!(site.is_own_host("[2001:db8::1]:2050"));
    assert!(site.is_own_host("portal.lan:2050"));
    assert!(!site.is_own_host("192.0.2.1"));
    assert!(!site.is_own_host("example.com"));
    assert!(!site.is_own_host("[2001:db8::1]"));
    assert!(!site.is_own_host("example.com:80"));
}

#[test]
fn synthetic_macs_are_locally_administered_and_stable() {
    let a = SyntheticResolver
        .mac_of("127.0.0.1".parse().unwrap())
        .unwrap();
    assert!(a.is_locally_administered() && a.is_unicast_client());
    assert_eq!(
        Some(a),
        SyntheticResolver.mac_of("::ffff:127.0.0.1".parse().unwrap())
    );
}
