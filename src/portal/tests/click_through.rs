//! Click-through sign-in: the page, the terms box, the session it
//! starts and ends, the page's language, and a device the portal cannot
//! place.

use super::*;

#[tokio::test]
async fn click_through_authorises_before_answering() {
    let f = fixture();
    let page = f.page("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"accept_terms\""));
    assert!(
        page.body.contains("Wulin &lt;Store&gt;"),
        "store name is escaped"
    );
    assert!(page.body.contains("lang=\"zh-CN\""), "zh-CN by default");

    let refused = f.post("/login", "dst=").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("请勾选同意使用条款"),
        "{}",
        refused.body
    );
    assert!(!f.fw.is_allowed(MAC1));

    let ok = f.post("/login", "accept_terms=yes").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), "/status");
    assert!(f.fw.is_allowed(MAC1), "authorised before the answer");

    let status = f.page("/status?lang=en").await;
    assert_eq!(status.status, StatusCode::OK);
    assert!(
        status.body.contains("1 h 0 min") || status.body.contains("60 min"),
        "{}",
        status.body
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let f = signed_in();
    let a = f.post("/logout", "lang=en").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.header("location"), "/login?lang=en");
    assert!(!f.fw.is_allowed(MAC1));
    let status = f.page("/status").await;
    assert_eq!(status.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn unknown_device_cannot_sign_in_and_is_told_why() {
    let f = fixture();
    let a = f.ask(STRANGER, post("/login", "accept_terms=yes")).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body.contains("Wi-Fi"), "{}", a.body);
}

#[tokio::test]
async fn language_comes_from_query_then_accept_language() {
    let f = fixture();
    let req = with(
        header::ACCEPT_LANGUAGE,
        "fr-FR, en-GB;q=0.8",
        get(HOST, "/login"),
    );
    assert!(f.ask(CLIENT, req).await.body.contains("lang=\"en\""));
    let req = with(
        header::ACCEPT_LANGUAGE,
        "en",
        get(HOST, "/login?lang=zh-CN"),
    );
    assert!(f.ask(CLIENT, req).await.body.contains("lang=\"zh-CN\""));
}
