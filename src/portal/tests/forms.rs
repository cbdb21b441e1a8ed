//! Bad input, and the checks every form passes before it is acted on: the
//! same origin, size and encoding limits, the right method, a device the
//! portal knows, and that device's form token of today or yesterday (CSRF).

use super::*;

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let f = fixture();
    let big = "a".repeat(routes::MAX_BODY_BYTES + 1);
    let a = f.post("/login", &format!("accept_terms=yes&x={big}")).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let a = f.post("/login", "accept_terms=%zz").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let cross = with(header::ORIGIN, EVIL, post("/login", "accept_terms=yes"));
    assert_eq!(f.ask(CLIENT, cross).await.status, StatusCode::FORBIDDEN);
    assert!(!f.fw.is_allowed(MAC1));
    let a = f.page("/nope").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = f
        .ask(CLIENT, request(http::Method::DELETE, HOST, "/login"))
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn member_forms_have_the_same_limits_as_click_through() {
    let f = with_hq(fixture()).await;
    for path in ["/signin/code", "/signin/verify", "/signin/member"] {
        let body = format!("phone={PHONE_Q}&member_number=12345678");
        let cross = with(header::ORIGIN, EVIL, post(path, &body));
        assert_eq!(f.ask(CLIENT, cross).await.status, StatusCode::FORBIDDEN);
        let big = "a".repeat(routes::MAX_BODY_BYTES + 1);
        let a = f.post(path, &format!("phone={big}")).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let a = f.post(path, "phone=%zz").await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
        let a = f.ask(STRANGER, post(path, "member_number=12345678")).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let a = f.page(path).await;
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
            let a = f.post(path, body).await;
            assert!(a.status.is_client_error(), "{path} {body}: {}", a.status);
        }
    }
    assert!(!f.fw.is_allowed(MAC1));
    assert!(f.hq().seen().is_empty());
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
    let login = f.page("/login?lang=en").await;
    assert_eq!(
        form_tokens(&login.body),
        vec![want.clone(); 2],
        "member and guest forms"
    );
    let code = f.request_code("lang=en").await;
    assert_eq!(code.status, StatusCode::OK, "{}", code.body);
    assert_eq!(
        form_tokens(&code.body),
        vec![want.clone(); 1],
        "verify (a new code is asked for on the sign-in page)"
    );
    let ok = f.member_number("12345678", "lang=en").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let welcome = f.page("/welcome?lang=en").await;
    assert_eq!(form_tokens(&welcome.body), vec![want.clone()], "sign-out");
    f.portal
        .gate
        .end(MAC1, crate::access::EndReason::Logout)
        .unwrap();
    f.click_through();
    let status = f.page("/status?lang=en").await;
    assert_eq!(form_tokens(&status.body), vec![want.clone()], "sign-out");
    // A refused form comes back with the token.
    let refused = f.post("/login", "lang=en").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(form_tokens(&refused.body), vec![want; 2]);
    // Nobody else's token; an unknown device gets none.
    let other = f.ask(STRANGER, get(HOST, "/login")).await;
    assert_eq!(form_tokens(&other.body), vec![String::new(); 2]);
}

#[tokio::test]
async fn forms_without_this_clients_token_are_refused_and_change_nothing() {
    let f = with_hq(fixture()).await;
    let other = token(MacAddr([2, 0, 0, 0, 0, 2]));
    let key = device_key();
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
            let a = f.ask(CLIENT, post_raw(path, &format!("{body}{bad}"))).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{path} {bad}");
            assert!(a.body.contains("reload the page"), "{path}: {}", a.body);
        }
    }
    assert!(!f.fw.is_allowed(MAC1), "nothing authorised");
    assert!(f.members().list().is_empty(), "nothing bound");
    assert!(linked_events(&f).is_empty());
    assert!(f.hq().seen().is_empty(), "no text sent");
    // In Chinese too.
    let a = f
        .ask(CLIENT, post_raw("/login", "accept_terms=yes&lang=zh-CN"))
        .await;
    assert!(a.body.contains("刷新页面"), "{}", a.body);

    // Sign-out needs it as well.
    f.click_through();
    let a = f
        .ask(
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
    let login = f.page("/login").await;
    let csrf = form_tokens(&login.body).pop().unwrap();
    let own = with(
        header::ORIGIN,
        "null",
        post_raw("/login", &format!("accept_terms=yes&csrf={csrf}")),
    );
    let a = f.ask(CLIENT, own).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(f.fw.is_allowed(MAC1));
    // A page left open over midnight.
    let key = device_key();
    let yesterday = routes::csrf_token(&key, MAC1, routes::utc_day(Timestamp::now()) - 1);
    let own = with(
        header::ORIGIN,
        "http://192.0.2.1:2050",
        post_raw("/logout", &format!("lang=en&csrf={yesterday}")),
    );
    assert_eq!(f.ask(CLIENT, own).await.status, StatusCode::SEE_OTHER);
    assert!(!f.fw.is_allowed(MAC1));
    // An explicit foreign origin is still refused, token or not.
    let cross = with(
        header::ORIGIN,
        EVIL,
        post_raw("/login", &format!("accept_terms=yes&csrf={csrf}")),
    );
    assert_eq!(f.ask(CLIENT, cross).await.status, StatusCode::FORBIDDEN);
    assert!(!f.fw.is_allowed(MAC1));
}

#[test]
fn tokens_differ_by_client_day_and_key() {
    let key = device_key();
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
