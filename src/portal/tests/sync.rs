//! What HQ's sync document does at the portal: a device it blocks cannot
//! sign in by any method; a member's welcome page shows the campaign meant
//! for them (a click-through guest has no welcome page).

use super::*;
use crate::uplink::sync::{SyncConfig, Syncer};

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

#[tokio::test]
async fn a_device_hq_blocked_cannot_sign_in_by_any_method() {
    let f = with_hq(fixture()).await;
    let id = f.portal.device_key.device_id(MAC1);
    install_sync(&f, serde_json::json!([]), &[id]).await;
    let page = f.page("/login?lang=en").await;
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
        let a = f.post(path, &body).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
        assert!(a.body.contains("cannot sign in here"), "{path}");
    }
    assert!(!f.fw.is_allowed(MAC1));
    assert!(f.hq().seen().is_empty(), "no text sent");
    assert!(f.members().list().is_empty());
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
    let a = f.member_number("12345678", "lang=en").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let w = f.page("/welcome?lang=en").await;
    assert!(w.body.contains("For you today"), "{}", w.body);
    assert!(w.body.contains("Café &lt;20%&gt; off"), "{}", w.body);
    assert!(!w.body.contains("Gold lounge"));

    // Click-through guests have no welcome page: /status instead.
    let f = signed_in();
    let w = f.page("/welcome?lang=en").await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(w.body.contains("You are connected") && !w.body.contains("Welcome back"));
    let f = fixture();
    let w = f.page("/welcome").await;
    assert_eq!(w.status, StatusCode::SEE_OTHER);
}
