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
use crate::access::{AuthMethod, Gate, MemoryFirewall};
use crate::members::{MemberError, Members};
use crate::store::{MemoryStore, Store, StoreError};
use crate::time::Timestamp;
use crate::uplink::Outbox;
use crate::uplink::messages::{MessageSender, MessagesConfig};
use crate::uplink::signing::SigningKey;
use crate::uplink::sink::LogSink;
use crate::uplink::sync::test_hq::{self, Reply, TestHq};
use crate::uplink::sync::{SyncConfig, Syncer};

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
    store: Arc<dyn Store>,
    outbox: Arc<Outbox>,
    /// The in-process HQ that takes the OTP texts (`with_hq`).
    hq: Option<TestHq>,
}

const SECRET: &str = "whsec_c3RvcmVnYXRlIHNpZ25pbmcgdGVzdCBrZXkgMzJieQ==";
const KEY: [u8; 32] = [7; 32];

/// Click-through and member-number sign-in; no texts, no sync document.
fn fixture() -> Fixture {
    fixture_with(crate::config::MembersConfig::default())
}

/// [`fixture`] with members configured so.
fn fixture_with(config: crate::config::MembersConfig) -> Fixture {
    let fw = Arc::new(MemoryFirewall::new());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let outbox = Arc::new(Outbox::open(store.clone(), "wulin-01").unwrap());
    let policy = SessionPolicy {
        session_timeout: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(600),
        max_preauth: 100,
    };
    let (gate, _) = Gate::open(policy, fw.clone(), store.clone(), Arc::new(LogSink)).unwrap();
    let key = crate::privacy::DeviceKey::from_bytes(KEY);
    let members = Members::open(
        store.clone(),
        key.clone(),
        config,
        Arc::new(crate::uplink::sink::OutboxSink {
            outbox: outbox.clone(),
            key: key.clone(),
        }),
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
            members: Some(Arc::new(members)),
            ..Portal::new(site, Arc::new(gate), Arc::new(OneClient), key)
        },
        fw,
        store,
        outbox,
        hq: None,
    }
}

/// Adds phone sign-in: texts go to an in-process HQ that accepts them.
async fn with_hq(mut f: Fixture) -> Fixture {
    let hq = TestHq::start().await;
    hq.script(vec![Reply::status(202)]);
    f.portal.messages = Some(MessageSender::new(
        MessagesConfig::new(&hq.url, "wulin-01"),
        SigningKey::from_secret(SECRET).unwrap(),
        test_hq::client(),
    ));
    f.hq = Some(hq);
    f
}

/// Puts a sync document in force the way the daemon does: fetched from
/// (another) in-process HQ, signed.
async fn install_sync(f: &Fixture, campaigns: serde_json::Value, blocked: &[String]) {
    let hq = TestHq::start().await;
    let body = serde_json::to_vec(&serde_json::json!({
        "version": "t1",
        "campaigns": campaigns,
        "staff_devices": [],
        "blocked_devices": blocked,
    }))
    .unwrap();
    let key = SigningKey::from_secret(SECRET).unwrap();
    let mut reply = Reply::status(200)
        .header("content-type", "application/json")
        .header("etag", "\"t1\"")
        .body(&body);
    for (name, value) in key.headers("sync_t1", Timestamp::now().millis() / 1000, &body) {
        reply = reply.header(name, &value);
    }
    hq.script(vec![reply]);
    Syncer {
        state: f.portal.sync.clone(),
        store: f.store.clone(),
        config: SyncConfig::new(&hq.url, Duration::from_secs(60)),
        key,
        client: test_hq::client(),
    }
    .fetch_once()
    .await
    .expect("the sync document is taken");
}

/// The codes HQ was asked to text, oldest first.
fn texted_codes(f: &Fixture) -> Vec<String> {
    f.hq.as_ref()
        .unwrap()
        .seen()
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["code"].as_str().unwrap().to_string()
        })
        .collect()
}

/// A code that is not `code`.
fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

const PHONE: &str = "138 1234 5678";
const PHONE_Q: &str = "138+1234+5678";

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
    let resp = routes::route(&f.portal, from.parse().unwrap(), req).await;
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

/// Today's form token of `mac` (what the pages it is shown carry).
fn token(mac: MacAddr) -> String {
    routes::csrf_token(
        &crate::privacy::DeviceKey::from_bytes(KEY),
        mac,
        routes::utc_day(Timestamp::now()),
    )
}

/// A form POST from CLIENT's pages: `body` and CLIENT's form token.
fn post(path: &str, body: &str) -> Request<Full<Bytes>> {
    let sep = if body.is_empty() { "" } else { "&" };
    post_raw(path, &format!("{body}{sep}csrf={}", token(MAC1)))
}

/// A form POST of exactly `body` (no token unless it has one).
fn post_raw(path: &str, body: &str) -> Request<Full<Bytes>> {
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

fn member_method_and_id(f: &Fixture) -> (Option<AuthMethod>, Option<String>) {
    let c = f.portal.gate.client(MAC1).expect("the client is known");
    (c.method, c.member_id)
}

fn linked_events(f: &Fixture) -> Vec<serde_json::Value> {
    f.outbox
        .recent(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.ty == "com.storegate.member.linked")
        .map(|e| e.data)
        .collect()
}

#[tokio::test]
async fn login_page_offers_member_sign_in_with_unticked_consents_and_the_staff_code() {
    let f = with_hq(fixture()).await;
    let page = ask(
        &f,
        CLIENT,
        get("192.0.2.1:2050", "/login?staff=QR_wulin-07&lang=en"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let b = &page.body;
    for field in ["remember_device", "marketing"] {
        let at = b
            .find(&format!("name=\"{field}\""))
            .unwrap_or_else(|| panic!("no {field} box"));
        let tag_end = at + b[at..].find('>').unwrap();
        assert!(!b[at..tag_end].contains("checked"), "{field} is unticked");
    }
    assert!(b.contains("Remember this device") && b.contains("Marketing messages"));
    assert!(b.contains("Consent text version 1"), "{b}");
    assert!(b.contains("name=\"phone\"") && b.contains("formaction=\"/signin/code\""));
    assert!(b.contains("name=\"member_number\""));
    assert!(b.contains("name=\"accept_terms\""), "click-through stays");
    assert!(b.contains("name=\"staff\" value=\"QR_wulin-07\""), "{b}");
    assert!(
        b.contains("&amp;staff=QR_wulin-07"),
        "the language link keeps it"
    );
    assert!(!b.contains("<script"), "no JavaScript");

    // A bad staff code is dropped without a word.
    for bad in ["QR%20x", "a%3Cb", "x%22y", &"a".repeat(33), ""] {
        let page = ask(
            &f,
            CLIENT,
            get("192.0.2.1:2050", &format!("/login?staff={bad}")),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{bad}");
        assert!(page.body.contains("name=\"staff\" value=\"\""), "{bad}");
        assert!(!page.body.contains("staff="), "{bad}");
    }
    // And so is one posted with a sign-in.
    let a = ask(
        &f,
        CLIENT,
        post(
            "/signin/member",
            "member_number=12345678&staff=bad%20code&remember_device=yes",
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let views = f.portal.members.as_ref().unwrap().list();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].staff_code, None);
    assert_eq!(linked_events(&f)[0]["staff_code"], serde_json::Value::Null);
}

#[tokio::test]
async fn phone_sign_in_end_to_end() {
    let f = with_hq(fixture()).await;
    let dst = "http%3A%2F%2Fexample.com%2Fa";
    let a = ask(
        &f,
        CLIENT,
        code_post(
            &f,
            &format!("phone={PHONE_Q}&remember_device=yes&staff=QR7&dst={dst}&lang=en"),
        )
        .await,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let b = &a.body;
    assert!(b.contains("name=\"code\""), "{b}");
    assert!(b.contains("ending in 5678"), "{b}");
    for hidden in [
        format!("name=\"phone\" value=\"{PHONE}\""),
        "name=\"remember_device\" value=\"yes\"".into(),
        "name=\"marketing\" value=\"\"".into(),
        "name=\"staff\" value=\"QR7\"".into(),
        "name=\"dst\" value=\"http://example.com/a\"".into(),
    ] {
        assert!(b.contains(&hidden), "{hidden} in {b}");
    }
    assert!(!f.fw.is_allowed(MAC1));
    let seen = f.hq.as_ref().unwrap().seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/storegate/messages");
    let text: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(text["phone"], "+8613812345678");
    assert_eq!(text["locale"], "en");
    let code = texted_codes(&f).remove(0);
    assert_eq!(code.len(), 6);

    let a = ask(
        &f,
        CLIENT,
        post(
            "/signin/verify",
            &format!(
                "phone={PHONE_Q}&code={code}&remember_device=yes&marketing=&staff=QR7&dst={dst}&lang=en"
            ),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.header("location"), format!("/welcome?lang=en&dst={dst}"));
    assert!(f.fw.is_allowed(MAC1), "authorised before the answer");
    let (method, member_id) = member_method_and_id(&f);
    assert_eq!(method, Some(AuthMethod::Otp));
    let member_id = member_id.expect("a member session");
    assert!(member_id.starts_with("m_"), "{member_id}");

    let views = f.portal.members.as_ref().unwrap().list();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].member_id, member_id);
    assert_eq!(views[0].staff_code.as_deref(), Some("QR7"));
    assert_eq!(views[0].phone_last4.as_deref(), Some("5678"));
    let linked = linked_events(&f);
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["member_id"], member_id.as_str());
    assert_eq!(linked[0]["staff_code"], "QR7");
    assert_eq!(linked[0]["remember_device"], true);
    assert_eq!(linked[0]["marketing"], false);
    assert_eq!(
        f.portal
            .members
            .as_ref()
            .unwrap()
            .recognise(MAC1, Timestamp::now()),
        Some(member_id.clone()),
        "remembered, as the shopper asked"
    );

    let w = ask(
        &f,
        CLIENT,
        get("192.0.2.1:2050", &format!("/welcome?lang=en&dst={dst}")),
    )
    .await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(
        w.body.contains("Welcome back \u{2022}\u{2022}5678"),
        "{}",
        w.body
    );
    assert!(w.body.contains("1 h 0 min") || w.body.contains("60 min"));
    assert!(w.body.contains("action=\"/logout\""));
    assert!(w.body.contains("href=\"http://example.com/a\""));
    let zh = ask(&f, CLIENT, get("192.0.2.1:2050", "/welcome")).await;
    assert!(zh.body.contains("欢迎回来"), "{}", zh.body);
}

#[tokio::test]
async fn wrong_codes_say_how_many_tries_are_left_then_lock_the_phone() {
    let f = with_hq(fixture()).await;
    let a = ask(
        &f,
        CLIENT,
        code_post(&f, &format!("phone={PHONE_Q}&marketing=yes&lang=en")).await,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let code = texted_codes(&f).remove(0);
    let bad = format!(
        "phone={PHONE_Q}&code={}&marketing=yes&lang=en",
        wrong(&code)
    );
    let a = ask(&f, CLIENT, post("/signin/verify", &bad)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("attempts left"), "{}", a.body);
    assert!(a.body.contains("name=\"code\""), "the code page again");
    assert!(
        a.body
            .contains(&format!("name=\"phone\" value=\"{PHONE}\""))
    );
    assert!(a.body.contains("name=\"marketing\" value=\"yes\""));
    assert!(!f.fw.is_allowed(MAC1));

    // An empty code costs no attempt.
    let empty = ask(
        &f,
        CLIENT,
        post("/signin/verify", &format!("phone={PHONE_Q}&code=&lang=en")),
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(
        empty.body.contains("Please enter the code"),
        "{}",
        empty.body
    );

    let mut last = a;
    for _ in 0..10 {
        if last.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        last = ask(&f, CLIENT, post("/signin/verify", &bad)).await;
    }
    assert_eq!(last.status, StatusCode::TOO_MANY_REQUESTS, "{}", last.body);
    assert!(last.body.contains("Too many wrong codes"), "{}", last.body);
    assert!(last.body.contains("15 minutes"), "{}", last.body);
    let retry: u64 = last.header("retry-after").parse().unwrap();
    assert!((14 * 60..=15 * 60).contains(&retry), "{retry}");
    assert!(
        last.body.contains(&format!("value=\"{PHONE}\"")),
        "the number is kept"
    );
    // Locked: even the right code does not sign in now.
    let right = format!("phone={PHONE_Q}&code={code}&lang=en");
    let a = ask(&f, CLIENT, post("/signin/verify", &right)).await;
    assert!(a.status.is_client_error(), "{}", a.status);
    assert!(!f.fw.is_allowed(MAC1));
}

#[tokio::test]
async fn too_many_code_requests_are_refused_with_retry_after() {
    let f = with_hq(fixture()).await;
    let mut last = None;
    for _ in 0..30 {
        let a = ask(
            &f,
            CLIENT,
            code_post(&f, &format!("phone={PHONE_Q}&lang=en")).await,
        )
        .await;
        if a.status != StatusCode::OK {
            last = Some(a);
            break;
        }
    }
    let a = last.expect("code requests are rate limited");
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(a.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(a.body.contains("Please try again in"), "{}", a.body);
    assert!(a.body.contains(&format!("value=\"{PHONE}\"")));
    // A resend from the code page keeps that page.
    let a = ask(
        &f,
        CLIENT,
        code_post(&f, &format!("phone={PHONE_Q}&from=code&lang=en")).await,
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.body.contains("name=\"code\""), "{}", a.body);
}

#[tokio::test]
async fn a_text_hq_will_not_send_is_a_503_that_keeps_the_number() {
    let f = with_hq(fixture()).await;
    f.hq.as_ref().unwrap().script(vec![Reply::status(400)]);
    let a = ask(
        &f,
        CLIENT,
        code_post(&f, &format!("phone={PHONE_Q}&lang=en&staff=QR7")).await,
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body.contains("could not send the code"), "{}", a.body);
    assert!(a.body.contains(&format!("value=\"{PHONE}\"")));
    assert!(a.body.contains("name=\"staff\" value=\"QR7\""));
    // A bad number never reaches HQ.
    let a = ask(
        &f,
        CLIENT,
        code_post(&f, "phone=12ab&lang=en&remember_device=yes").await,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("not a mobile number"), "{}", a.body);
    assert!(a.body.contains("value=\"12ab\""));
    assert!(
        a.body
            .contains("name=\"remember_device\" value=\"yes\" checked")
    );
    assert_eq!(f.hq.as_ref().unwrap().seen().len(), 1);
}

#[tokio::test]
async fn member_number_sign_in() {
    // Consent and "remember" from a member number need the operator's
    // trust (see `abuse` for the default).
    let f = fixture_with(crate::config::MembersConfig {
        member_number_trusted: true,
        ..crate::config::MembersConfig::default()
    });
    let a = ask(
        &f,
        CLIENT,
        post("/signin/member", "member_number=12&lang=en&staff=S1"),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("not a valid member number"), "{}", a.body);
    assert!(a.body.contains("name=\"member_number\""));
    assert!(a.body.contains("value=\"12\""), "what was typed is kept");
    assert!(a.body.contains("name=\"staff\" value=\"S1\""));
    assert!(!f.fw.is_allowed(MAC1));

    let a = ask(
        &f,
        CLIENT,
        post(
            "/signin/member",
            "member_number=8800+1234+5678&marketing=yes&staff=S1&lang=en",
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.header("location"), "/welcome?lang=en");
    assert!(f.fw.is_allowed(MAC1));
    let (method, member_id) = member_method_and_id(&f);
    assert_eq!(method, Some(AuthMethod::MemberNumber));
    let member_id = member_id.unwrap();
    let views = f.portal.members.as_ref().unwrap().list();
    assert_eq!(views[0].member_id, member_id);
    assert_eq!(views[0].method, "member_number");
    let linked = linked_events(&f);
    assert_eq!(linked[0]["staff_code"], "S1");
    assert_eq!(linked[0]["marketing"], true);
    assert_eq!(linked[0]["remember_device"], false);
    assert_eq!(
        f.portal
            .members
            .as_ref()
            .unwrap()
            .recognise(MAC1, Timestamp::now()),
        None,
        "not remembered: the box was not ticked"
    );
    let w = ask(&f, CLIENT, get("192.0.2.1:2050", "/welcome?lang=en")).await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(
        w.body.contains("Welcome back<"),
        "no phone digits: {}",
        w.body
    );
}

#[tokio::test]
async fn enter_in_the_member_number_field_signs_in_by_number() {
    let f = with_hq(fixture()).await;
    let a = ask(
        &f,
        CLIENT,
        post("/signin/code", "phone=&member_number=12345678&lang=en"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(member_method_and_id(&f).0, Some(AuthMethod::MemberNumber));
    assert!(f.hq.as_ref().unwrap().seen().is_empty());
}

#[tokio::test]
async fn without_hq_texts_there_is_no_phone_sign_in() {
    let f = fixture();
    let page = ask(&f, CLIENT, get("192.0.2.1:2050", "/login")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("name=\"phone\""), "{}", page.body);
    assert!(page.body.contains("name=\"member_number\""));
    assert!(page.body.contains("action=\"/signin/member\""));
    let a = ask(
        &f,
        CLIENT,
        post("/signin/code", &format!("phone={PHONE_Q}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // And without members at all, only click-through.
    let mut f = fixture();
    f.portal.members = None;
    let page = ask(&f, CLIENT, get("192.0.2.1:2050", "/login")).await;
    assert!(!page.body.contains("member_number"));
    assert!(page.body.contains("name=\"accept_terms\""));
    let a = ask(&f, CLIENT, post("/signin/member", "member_number=12345678")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_device_hq_blocked_cannot_sign_in_by_any_method() {
    let f = with_hq(fixture()).await;
    let id = f.portal.device_key.device_id(MAC1);
    install_sync(&f, serde_json::json!([]), &[id]).await;
    let page = ask(&f, CLIENT, get("192.0.2.1:2050", "/login?lang=en")).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("cannot sign in here"), "{}", page.body);
    for (path, body) in [
        ("/login", "accept_terms=yes&lang=en".to_string()),
        ("/signin/code", format!("phone={PHONE_Q}&lang=en")),
        (
            "/signin/verify",
            format!("phone={PHONE_Q}&code=123456&lang=en"),
        ),
        (
            "/signin/member",
            "member_number=12345678&lang=en".to_string(),
        ),
    ] {
        let a = ask(&f, CLIENT, post(path, &body)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
        assert!(a.body.contains("cannot sign in here"), "{path}");
    }
    assert!(!f.fw.is_allowed(MAC1));
    assert!(f.hq.as_ref().unwrap().seen().is_empty(), "no text sent");
    assert!(f.portal.members.as_ref().unwrap().list().is_empty());
}

#[tokio::test]
async fn the_welcome_page_shows_the_campaign_for_the_member() {
    let f = fixture();
    install_sync(
        &f,
        serde_json::json!([
            {"id": "gold", "name": "Gold lounge", "audience": {"tiers": ["gold"]}},
            {"id": "cafe", "name": "Café <20%> off", "audience": {"all_members": true}},
        ]),
        &[],
    )
    .await;
    let a = ask(
        &f,
        CLIENT,
        post("/signin/member", "member_number=12345678&lang=en"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let w = ask(&f, CLIENT, get("192.0.2.1:2050", "/welcome?lang=en")).await;
    assert!(w.body.contains("For you today"), "{}", w.body);
    assert!(w.body.contains("Café &lt;20%&gt; off"), "{}", w.body);
    assert!(!w.body.contains("Gold lounge"));

    // Click-through guests have no welcome page: /status instead.
    let f = fixture();
    f.portal
        .gate
        .authorize(MAC1, None, AuthMethod::ClickThrough, None)
        .unwrap();
    let w = ask(&f, CLIENT, get("192.0.2.1:2050", "/welcome?lang=en")).await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(w.body.contains("You are connected") && !w.body.contains("Welcome back"));
    let f = fixture();
    let w = ask(&f, CLIENT, get("192.0.2.1:2050", "/welcome")).await;
    assert_eq!(w.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn member_forms_have_the_same_limits_as_click_through() {
    let f = with_hq(fixture()).await;
    for path in ["/signin/code", "/signin/verify", "/signin/member"] {
        let mut cross = post(path, &format!("phone={PHONE_Q}&member_number=12345678"));
        cross
            .headers_mut()
            .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert_eq!(ask(&f, CLIENT, cross).await.status, StatusCode::FORBIDDEN);
        let big = "a".repeat(routes::MAX_BODY_BYTES + 1);
        let a = ask(&f, CLIENT, post(path, &format!("phone={big}"))).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let a = ask(&f, CLIENT, post(path, "phone=%zz")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
        let a = ask(&f, STRANGER, post(path, "member_number=12345678")).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let a = ask(&f, CLIENT, get("192.0.2.1:2050", path)).await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    // Odd input is refused, never a panic.
    for body in [
        "phone=%E4%B8%AD%E6%96%87",
        "phone=+&code=%00",
        "member_number=%F0%9F%98%80",
        "phone=1&phone=2&code=1&code=2",
    ] {
        for path in ["/signin/code", "/signin/verify", "/signin/member"] {
            let a = ask(&f, CLIENT, post(path, body)).await;
            assert!(a.status.is_client_error(), "{path} {body}: {}", a.status);
        }
    }
    assert!(!f.fw.is_allowed(MAC1));
    assert!(f.hq.as_ref().unwrap().seen().is_empty());
}

#[test]
fn every_member_error_is_translated() {
    let all = [
        MemberError::BadPhone,
        MemberError::RateLimited {
            retry_after: Duration::from_secs(60),
        },
        MemberError::NoCode,
        MemberError::WrongCode { attempts_left: 2 },
        MemberError::LockedOut {
            until: Timestamp::now(),
        },
        MemberError::BadMemberNumber,
        MemberError::UnknownMember,
        MemberError::Store(StoreError::Backend("x".into())),
        MemberError::CountryNotAllowed,
        MemberError::PageExpired,
        MemberError::NumberLimited {
            retry_after: Duration::from_secs(60),
        },
    ];
    for e in all {
        for lang in [Language::En, Language::ZhCn] {
            assert_ne!(
                crate::web::t(lang, e.key()),
                e.key(),
                "{lang:?} lacks {}",
                e.key()
            );
        }
    }
}

/// The `csrf` hidden field of every form on a page.
fn form_tokens(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("<form ") {
        rest = &rest[at + 1..];
        let end = rest.find("</form>").expect("a closed form");
        let form = &rest[..end];
        let field = "name=\"csrf\" value=\"";
        let v = form
            .find(field)
            .map(|i| &form[i + field.len()..])
            .expect("a csrf field");
        out.push(v[..v.find('"').unwrap()].to_string());
    }
    out
}

#[tokio::test]
async fn every_portal_form_carries_the_client_token() {
    let f = with_hq(fixture()).await;
    let want = token(MAC1);
    assert_eq!(want.len(), 22);
    let login = ask(&f, CLIENT, get("192.0.2.1:2050", "/login?lang=en")).await;
    assert_eq!(
        form_tokens(&login.body),
        vec![want.clone(); 2],
        "member and guest forms"
    );
    let code = ask(
        &f,
        CLIENT,
        code_post(&f, &format!("phone={PHONE_Q}&lang=en")).await,
    )
    .await;
    assert_eq!(code.status, StatusCode::OK, "{}", code.body);
    assert_eq!(
        form_tokens(&code.body),
        vec![want.clone(); 1],
        "verify (a new code is asked for on the sign-in page)"
    );
    let ok = ask(
        &f,
        CLIENT,
        post("/signin/member", "member_number=12345678&lang=en"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let welcome = ask(&f, CLIENT, get("192.0.2.1:2050", "/welcome?lang=en")).await;
    assert_eq!(form_tokens(&welcome.body), vec![want.clone()], "sign-out");
    f.portal
        .gate
        .end(MAC1, crate::access::EndReason::Logout)
        .unwrap();
    f.portal
        .gate
        .authorize(MAC1, None, AuthMethod::ClickThrough, None)
        .unwrap();
    let status = ask(&f, CLIENT, get("192.0.2.1:2050", "/status?lang=en")).await;
    assert_eq!(form_tokens(&status.body), vec![want.clone()], "sign-out");
    // A refused form comes back with the token.
    let refused = ask(&f, CLIENT, post("/login", "lang=en")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(form_tokens(&refused.body), vec![want; 2]);
    // Nobody else's token; an unknown device gets none.
    let other = ask(&f, STRANGER, get("192.0.2.1:2050", "/login")).await;
    assert_eq!(form_tokens(&other.body), vec![String::new(); 2]);
}

#[tokio::test]
async fn forms_without_this_clients_token_are_refused_and_change_nothing() {
    let f = with_hq(fixture()).await;
    let other = token(MacAddr([2, 0, 0, 0, 0, 2]));
    let key = crate::privacy::DeviceKey::from_bytes(KEY);
    let today = routes::utc_day(Timestamp::now());
    let stale = routes::csrf_token(&key, MAC1, today - 2);
    let wrong_key =
        routes::csrf_token(&crate::privacy::DeviceKey::from_bytes([8; 32]), MAC1, today);
    let forms = [
        ("/login", "accept_terms=yes&lang=en".to_string()),
        (
            "/signin/member",
            "member_number=12345678&lang=en".to_string(),
        ),
        ("/signin/code", format!("phone={PHONE_Q}&lang=en")),
        (
            "/signin/verify",
            format!("phone={PHONE_Q}&code=123456&lang=en"),
        ),
    ];
    for (path, body) in &forms {
        for bad in [
            String::new(),
            "&csrf=".to_string(),
            format!("&csrf={other}"),
            format!("&csrf={stale}"),
            format!("&csrf={wrong_key}"),
            format!("&csrf={}", &token(MAC1)[..21]),
        ] {
            let a = ask(&f, CLIENT, post_raw(path, &format!("{body}{bad}"))).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path} {bad}");
            assert!(a.body.contains("reload the page"), "{path}: {}", a.body);
        }
    }
    assert!(!f.fw.is_allowed(MAC1), "nothing authorised");
    assert!(
        f.portal.members.as_ref().unwrap().list().is_empty(),
        "nothing bound"
    );
    assert!(linked_events(&f).is_empty());
    assert!(f.hq.as_ref().unwrap().seen().is_empty(), "no text sent");
    // In Chinese too.
    let a = ask(
        &f,
        CLIENT,
        post_raw("/login", "accept_terms=yes&lang=zh-CN"),
    )
    .await;
    assert!(a.body.contains("刷新页面"), "{}", a.body);

    // Sign-out needs it as well.
    f.portal
        .gate
        .authorize(MAC1, None, AuthMethod::ClickThrough, None)
        .unwrap();
    let a = ask(
        &f,
        CLIENT,
        post_raw("/logout", &format!("lang=en&csrf={other}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(f.fw.is_allowed(MAC1), "still signed in");
}

#[tokio::test]
async fn our_own_pages_post_with_origin_null_and_yesterdays_token_works() {
    let f = fixture();
    let login = ask(&f, CLIENT, get("192.0.2.1:2050", "/login")).await;
    let csrf = form_tokens(&login.body).pop().unwrap();
    let mut own = post_raw("/login", &format!("accept_terms=yes&csrf={csrf}"));
    own.headers_mut()
        .insert(header::ORIGIN, "null".parse().unwrap());
    let a = ask(&f, CLIENT, own).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(f.fw.is_allowed(MAC1));
    // A page left open over midnight.
    let key = crate::privacy::DeviceKey::from_bytes(KEY);
    let yesterday = routes::csrf_token(&key, MAC1, routes::utc_day(Timestamp::now()) - 1);
    let mut own = post_raw("/logout", &format!("lang=en&csrf={yesterday}"));
    own.headers_mut()
        .insert(header::ORIGIN, "http://192.0.2.1:2050".parse().unwrap());
    assert_eq!(ask(&f, CLIENT, own).await.status, StatusCode::SEE_OTHER);
    assert!(!f.fw.is_allowed(MAC1));
    // An explicit foreign origin is still refused, token or not.
    let mut cross = post_raw("/login", &format!("accept_terms=yes&csrf={csrf}"));
    cross
        .headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    assert_eq!(ask(&f, CLIENT, cross).await.status, StatusCode::FORBIDDEN);
    assert!(!f.fw.is_allowed(MAC1));
}

#[test]
fn tokens_differ_by_client_day_and_key() {
    let key = crate::privacy::DeviceKey::from_bytes(KEY);
    let t = routes::csrf_token(&key, MAC1, 20_000);
    assert_eq!(t, routes::csrf_token(&key, MAC1, 20_000));
    assert_ne!(t, routes::csrf_token(&key, MAC1, 20_001));
    assert_ne!(
        t,
        routes::csrf_token(&key, MacAddr([2, 0, 0, 0, 0, 2]), 20_000)
    );
    assert_ne!(
        t,
        routes::csrf_token(
            &crate::privacy::DeviceKey::from_bytes([8; 32]),
            MAC1,
            20_000
        )
    );
    assert!(
        t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(routes::utc_day(Timestamp::from_secs(86_399)), 0);
    assert_eq!(routes::utc_day(Timestamp::from_secs(86_400)), 1);
}

mod abuse;
use abuse::code_post;
