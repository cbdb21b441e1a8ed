//! Devices: the list as a page and as JSON, with what devices call
//! themselves escaped wherever it is shown, and the actions on them
//! (marking staff; blocking, which signs the device out and makes the
//! portal refuse it).

use super::*;

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
