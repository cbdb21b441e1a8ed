//! Portal answers, driven without sockets, over the shared test rig
//! (`app::rig`: memory store and firewall, members, block list, sync
//! document); a fixed resolver that knows one client stands in for the LAN.
//!
//! This file holds the fixture and the request helpers; the tests are in
//! one file per topic.

mod capture;
mod click_through;
mod forms;
mod member;
mod phone;
mod sync;
mod wifi;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::*;
use crate::access::session::SessionPolicy;
use crate::access::{AuthMethod, Gate, MemoryFirewall};
use crate::app::rig;
use crate::members::Members;
use crate::store::Store;
use crate::time::Timestamp;
use crate::uplink::Outbox;
use crate::uplink::messages::{MessageSender, MessagesConfig};
use crate::uplink::signing::SigningKey;
use crate::uplink::sink::LogSink;
use crate::uplink::sync::test_hq::{self, Reply, TestHq};

/// The one device the fixture's resolver knows.
const CLIENT: &str = "192.0.2.101";
/// CLIENT's MAC.
const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
/// A device the resolver does not know.
const STRANGER: &str = "192.0.2.199";
/// The portal's own Host.
const HOST: &str = "192.0.2.1:2050";
/// A cross-site Origin.
const EVIL: &str = "http://evil.example";
/// A shopper's phone number as typed, and form-encoded.
const PHONE: &str = "138 1234 5678";
const PHONE_Q: &str = "138+1234+5678";
/// Signs the texts sent to HQ and HQ's sync documents.
const SECRET: &str = "whsec_c3RvcmVnYXRlIHNpZ25pbmcgdGVzdCBrZXkgMzJieQ==";

/// Knows one client; everyone else is unknown.
struct OneClient;

impl ClientResolver for OneClient {
    fn mac_of(&self, ip: IpAddr) -> Option<MacAddr> {
        (ip == CLIENT.parse::<IpAddr>().unwrap()).then_some(MAC1)
    }
}

/// A portal and the pieces of the rig the tests look into.
struct Fixture {
    portal: Portal,
    fw: Arc<MemoryFirewall>,
    store: Arc<dyn Store>,
    outbox: Arc<Outbox>,
    /// The in-process HQ that takes the OTP texts (`with_hq`).
    hq: Option<TestHq>,
}

/// Click-through and member-number sign-in; no texts, no sync document.
/// The rig supplies the store, firewall, outbox, members, sync document,
/// block list and counters. Its gate keeps sessions for eight hours; the
/// pages here are checked for a one-hour session, so the portal gets a
/// gate of its own with that policy, over the rig's firewall and store.
fn fixture() -> Fixture {
    fixture_with(crate::config::MembersConfig::default())
}

/// [`fixture`] with members configured so.
fn fixture_with(config: crate::config::MembersConfig) -> Fixture {
    let rig::Rig {
        app,
        store,
        firewall,
        outbox,
    } = rig::rig_with_members(config);
    let policy = SessionPolicy {
        session_timeout: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(600),
        max_preauth: 100,
    };
    let (gate, _) = Gate::open(policy, firewall.clone(), store.clone(), Arc::new(LogSink)).unwrap();
    let site = lan_site("Wulin <Store>", Language::ZhCn);
    let key = device_key();
    Fixture {
        portal: Portal {
            members: app.members.clone(),
            sync: app.sync.clone(),
            blocklist: app.blocklist.clone(),
            stats: app.portal_stats.clone(),
            ..Portal::new(site, Arc::new(gate), Arc::new(OneClient), key)
        },
        fw: firewall,
        store,
        outbox,
        hq: None,
    }
}

/// The fixture with CLIENT signed in by click-through.
fn signed_in() -> Fixture {
    let f = fixture();
    f.click_through();
    f
}

/// A portal on every address, port 2050, of a box whose LAN address is
/// 192.0.2.1.
fn lan_site(store_name: &str, language: Language) -> Site {
    Site::new(
        None,
        "0.0.0.0:2050".parse().unwrap(),
        Some("192.0.2.1".parse().unwrap()),
        store_name,
        language,
    )
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

/// A portal answer, read in full.
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

impl Fixture {
    /// The portal's answer to `req` from the device at `from`.
    async fn ask(&self, from: &str, req: Request<Full<Bytes>>) -> Answer {
        let resp = routes::route(&self.portal, from.parse().unwrap(), req).await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// CLIENT asks `host` for `path` (a captured request unless `host`
    /// is the portal's own).
    async fn get(&self, host: &str, path: &str) -> Answer {
        self.ask(CLIENT, get(host, path)).await
    }

    /// CLIENT opens the portal's page `path`.
    async fn page(&self, path: &str) -> Answer {
        self.get(HOST, path).await
    }

    /// CLIENT sends a form from its pages (see [`post`]).
    async fn post(&self, path: &str, body: &str) -> Answer {
        self.ask(CLIENT, post(path, body)).await
    }

    /// CLIENT asks for a code texted to [`PHONE`], sending `fields` too,
    /// from a sign-in page it just fetched (with that page's code ticket).
    async fn request_code(&self, fields: &str) -> Answer {
        self.request_code_for(&format!("phone={PHONE_Q}&{fields}"))
            .await
    }

    /// CLIENT's phone form sent with `body`, from a sign-in page it just
    /// fetched.
    async fn request_code_for(&self, body: &str) -> Answer {
        let req = abuse::code_post(self, body).await;
        self.ask(CLIENT, req).await
    }

    /// CLIENT signs in with member number `number`, sending `fields` too.
    async fn member_number(&self, number: &str, fields: &str) -> Answer {
        let body = format!("member_number={number}&{fields}");
        self.post("/signin/member", &body).await
    }

    /// CLIENT signs in by click-through, without the portal.
    fn click_through(&self) {
        self.portal
            .gate
            .authorize(MAC1, None, AuthMethod::ClickThrough, None)
            .unwrap();
    }

    fn members(&self) -> &Members {
        self.portal
            .members
            .as_deref()
            .expect("member sign-in is on")
    }

    fn hq(&self) -> &TestHq {
        self.hq.as_ref().expect("a fixture `with_hq`")
    }
}

/// A request without a body.
fn request(method: http::Method, host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host)
        .body(Full::default())
        .unwrap()
}

fn get(host: &str, path: &str) -> Request<Full<Bytes>> {
    request(http::Method::GET, host, path)
}

/// `req` with the header `name: value` added.
fn with(
    name: header::HeaderName,
    value: &'static str,
    mut req: Request<Full<Bytes>>,
) -> Request<Full<Bytes>> {
    req.headers_mut()
        .insert(name, header::HeaderValue::from_static(value));
    req
}

/// The rig's device key, which the portal uses too.
fn device_key() -> crate::privacy::DeviceKey {
    crate::privacy::DeviceKey::from_bytes(rig::KEY)
}

/// Today's form token of `mac` (what the pages it is shown carry).
fn token(mac: MacAddr) -> String {
    routes::csrf_token(&device_key(), mac, routes::utc_day(Timestamp::now()))
}

/// A form POST from CLIENT's pages: `body` and CLIENT's form token.
fn post(path: &str, body: &str) -> Request<Full<Bytes>> {
    let sep = if body.is_empty() { "" } else { "&" };
    post_raw(path, &format!("{body}{sep}csrf={}", token(MAC1)))
}

/// A form POST of exactly `body` (no token unless it has one).
fn post_raw(path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// How CLIENT's session was started, and for which member.
fn member_method_and_id(f: &Fixture) -> (Option<AuthMethod>, Option<String>) {
    let c = f.portal.gate.client(MAC1).expect("the client is known");
    (c.method, c.member_id)
}

/// The data of the `member.linked` events in the outbox, oldest first.
fn linked_events(f: &Fixture) -> Vec<serde_json::Value> {
    f.outbox
        .recent(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.ty == "com.storegate.member.linked")
        .map(|e| e.data)
        .collect()
}

mod abuse;
