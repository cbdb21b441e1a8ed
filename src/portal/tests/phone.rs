//! Phone sign-in: a code texted through HQ, then checked; wrong codes and
//! the lock-out, too many code requests, a text HQ will not send; no phone
//! sign-in without HQ texts, and no member sign-in without members.

use super::*;

/// The codes HQ was asked to text, oldest first.
fn texted_codes(f: &Fixture) -> Vec<String> {
    f.hq()
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

#[tokio::test]
async fn phone_sign_in_end_to_end() {
    let f = with_hq(fixture()).await;
    let dst = "http%3A%2F%2Fexample.com%2Fa";
    let a = f
        .request_code(&format!("remember_device=yes&staff=QR7&dst={dst}&lang=en"))
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
    let seen = f.hq().seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/storegate/messages");
    let text: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(text["phone"], "+8613812345678");
    assert_eq!(text["locale"], "en");
    let code = texted_codes(&f).remove(0);
    assert_eq!(code.len(), 6);

    let verify = format!(
        "phone={PHONE_Q}&code={code}&remember_device=yes&marketing=&staff=QR7&dst={dst}&lang=en"
    );
    let a = f.post("/signin/verify", &verify).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.header("location"), format!("/welcome?lang=en&dst={dst}"));
    assert!(f.fw.is_allowed(MAC1), "authorised before the answer");
    let (method, member_id) = member_method_and_id(&f);
    assert_eq!(method, Some(AuthMethod::Otp));
    let member_id = member_id.expect("a member session");
    assert!(member_id.starts_with("m_"), "{member_id}");

    let views = f.members().list();
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
        f.members().recognise(MAC1, Timestamp::now()),
        Some(member_id.clone()),
        "remembered, as the shopper asked"
    );

    let w = f.page(&format!("/welcome?lang=en&dst={dst}")).await;
    assert_eq!(w.status, StatusCode::OK);
    assert!(
        w.body.contains("Welcome back \u{2022}\u{2022}5678"),
        "{}",
        w.body
    );
    assert!(w.body.contains("1 h 0 min") || w.body.contains("60 min"));
    assert!(w.body.contains("action=\"/logout\""));
    assert!(w.body.contains("href=\"http://example.com/a\""));
    let zh = f.page("/welcome").await;
    assert!(zh.body.contains("欢迎回来"), "{}", zh.body);
}

#[tokio::test]
async fn wrong_codes_say_how_many_tries_are_left_then_lock_the_phone() {
    let f = with_hq(fixture()).await;
    let a = f.request_code("marketing=yes&lang=en").await;
    assert_eq!(a.status, StatusCode::OK);
    let code = texted_codes(&f).remove(0);
    let bad = format!(
        "phone={PHONE_Q}&code={}&marketing=yes&lang=en",
        wrong(&code)
    );
    let a = f.post("/signin/verify", &bad).await;
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
    let empty = f
        .post("/signin/verify", &format!("phone={PHONE_Q}&code=&lang=en"))
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
        last = f.post("/signin/verify", &bad).await;
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
    let a = f.post("/signin/verify", &right).await;
    assert!(a.status.is_client_error(), "{}", a.status);
    assert!(!f.fw.is_allowed(MAC1));
}

#[tokio::test]
async fn too_many_code_requests_are_refused_with_retry_after() {
    let f = with_hq(fixture()).await;
    let mut last = None;
    for _ in 0..30 {
        let a = f.request_code("lang=en").await;
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
    let a = f.request_code("from=code&lang=en").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.body.contains("name=\"code\""), "{}", a.body);
}

#[tokio::test]
async fn a_text_hq_will_not_send_is_a_503_that_keeps_the_number() {
    let f = with_hq(fixture()).await;
    f.hq().script(vec![Reply::status(400)]);
    let a = f.request_code("lang=en&staff=QR7").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.body.contains("could not send the code"), "{}", a.body);
    assert!(a.body.contains(&format!("value=\"{PHONE}\"")));
    assert!(a.body.contains("name=\"staff\" value=\"QR7\""));
    // A bad number never reaches HQ.
    let a = f
        .request_code_for("phone=12ab&lang=en&remember_device=yes")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("not a mobile number"), "{}", a.body);
    assert!(a.body.contains("value=\"12ab\""));
    assert!(
        a.body
            .contains("name=\"remember_device\" value=\"yes\" checked")
    );
    assert_eq!(f.hq().seen().len(), 1);
}

#[tokio::test]
async fn without_hq_texts_there_is_no_phone_sign_in() {
    let f = fixture();
    let page = f.page("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("name=\"phone\""), "{}", page.body);
    assert!(page.body.contains("name=\"member_number\""));
    assert!(page.body.contains("action=\"/signin/member\""));
    let a = f.post("/signin/code", &format!("phone={PHONE_Q}")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // And without members at all, only click-through.
    let mut f = fixture();
    f.portal.members = None;
    let page = f.page("/login").await;
    assert!(!page.body.contains("member_number"));
    assert!(page.body.contains("name=\"accept_terms\""));
    let a = f.post("/signin/member", "member_number=12345678").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
