//! Traffic to other hosts: the redirect to sign-in before it, the OS
//! probes' answers after it; the RFC 8908 captive-portal API that follows
//! the session; which Hosts are the portal's own; the made-up MACs used
//! where there is no LAN.

use super::*;

#[tokio::test]
async fn foreign_host_is_redirected_to_sign_in_without_caching() {
    let f = fixture();
    let a = f.get("captive.apple.com", "/hotspot-detect.html").await;
    assert_eq!(a.status, StatusCode::FOUND);
    assert_eq!(
        a.header("location"),
        "http://192.0.2.1:2050/login?dst=http%3A%2F%2Fcaptive.apple.com%2Fhotspot-detect.html"
    );
    assert_eq!(a.header("cache-control"), "no-store");
    // An unknown device is redirected the same way.
    let a = f.ask(STRANGER, get("example.com", "/")).await;
    assert_eq!(a.status, StatusCode::FOUND);
}

#[tokio::test]
async fn captive_api_follows_the_session() {
    let f = fixture();
    let a = f.page("/api/captive").await;
    assert_eq!(a.header("content-type"), "application/captive+json");
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["captive"], true);
    assert_eq!(v["user-portal-url"], "http://192.0.2.1:2050/login");
    f.click_through();
    let v: serde_json::Value = serde_json::from_str(&f.page("/api/captive").await.body).unwrap();
    assert_eq!(v["captive"], false);
    let left = v["seconds-remaining"].as_u64().unwrap();
    assert!((3590..=3600).contains(&left), "{left}");
}

#[tokio::test]
async fn after_sign_in_stale_connections_get_probe_answers() {
    let f = signed_in();
    let apple = f.get("captive.apple.com", "/hotspot-detect.html").await;
    assert_eq!(apple.status, StatusCode::OK);
    assert!(apple.body.contains("<TITLE>Success</TITLE>"));
    assert_eq!(apple.header("connection"), "close");
    let android = f
        .get("connectivitycheck.gstatic.com", "/generate_204")
        .await;
    assert_eq!(android.status, StatusCode::NO_CONTENT);
    let other = f.get("example.com", "/page?x=1").await;
    assert_eq!(other.status, StatusCode::FOUND);
    assert_eq!(other.header("location"), "http://example.com/page?x=1");
    assert_eq!(other.header("connection"), "close");
}

#[test]
fn own_host_recognition() {
    let site = lan_site("s", Language::En);
    assert_eq!(site.url, "http://192.0.2.1:2050/");
    assert!(site.is_own_host("192.0.2.1:2050"));
    assert!(site.is_own_host("[2001:db8::1]:2050"));
    assert!(
        site.is_own_host("10.0.0.1:2050"),
        "the box on another address"
    );
    // Another name with the portal's port is not the portal: DNS rebinding.
    assert!(!site.is_own_host("portal.lan:2050"));
    assert!(!site.is_own_host("evil.example:2050"));
    assert!(!site.is_own_host("192.0.2.1.evil.example:2050"));
    assert!(!site.is_own_host("[not-an-ip]:2050"));
    assert!(!site.is_own_host("192.0.2.1"));
    assert!(!site.is_own_host("example.com"));
    assert!(!site.is_own_host("[2001:db8::1]"));
    assert!(!site.is_own_host("example.com:80"));
    // A configured portal URL's own name is the portal.
    let named = Site::new(
        Some("http://Portal.Store.lan:2050/"),
        "0.0.0.0:2050".parse().unwrap(),
        None,
        "s",
        Language::En,
    );
    assert!(named.is_own_host("portal.store.lan:2050"));
    assert!(!named.is_own_host("other.store.lan:2050"));
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
