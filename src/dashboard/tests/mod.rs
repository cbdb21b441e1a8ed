//! Dashboard answers, driven without sockets, over the shared test rig
//! (`app::rig`: memory store and firewall, a presence shell fed
//! sightings by hand).
//!
//! This file holds the fixture and the request helpers; the tests are in
//! one file per topic.

mod devices;
mod export;
mod live_view;
mod prometheus;
mod sign_in;
mod translations;

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
    d.app.set_dashboard_password(PASSWORD).unwrap();
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
