//! The member forms against a hostile guest: a code is texted only for the
//! ticket of a sign-in page fetched by that device, only to the store's
//! countries; a member number is told apart on the page, carries no
//! consent and binds nothing by default, and is limited per device.
//! Every refusal is a page in the shopper's language with a 4xx status.

use super::*;
use crate::config::MembersConfig;

/// A code request as CLIENT's sign-in page posts it: `body`, CLIENT's
/// form token and the code ticket of a sign-in page just fetched.
pub(super) async fn code_post(f: &Fixture, body: &str) -> Request<Full<Bytes>> {
    let page = f.ask(CLIENT, get("192.0.2.1:2050", "/login")).await;
    let ticket = code_ticket(&page.body);
    assert!(!ticket.is_empty(), "no code ticket on {}", page.body);
    post("/signin/code", &format!("{body}&code_ticket={ticket}"))
}

/// The phone form's code ticket on a page ("" when there is none).
pub(super) fn code_ticket(body: &str) -> String {
    let field = "name=\"code_ticket\" value=\"";
    body.find(field)
        .map(|i| &body[i + field.len()..])
        .and_then(|v| v.find('"').map(|end| v[..end].to_string()))
        .unwrap_or_default()
}

fn trusted() -> MembersConfig {
    MembersConfig {
        member_number_trusted: true,
        ..MembersConfig::default()
    }
}

#[tokio::test]
async fn a_code_request_needs_the_ticket_of_a_sign_in_page_this_device_fetched() {
    let f = with_hq(fixture()).await;
    // The day's form token alone (what a script gets once) sends nothing.
    for extra in ["", "&code_ticket=", "&code_ticket=AAAA"] {
        let a = f
            .ask(
                CLIENT,
                post("/signin/code", &format!("phone={PHONE_Q}&lang=en{extra}")),
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{extra}");
        assert!(a.body.contains("sign-in page has expired"), "{}", a.body);
        assert_eq!(code_ticket(&a.body), "", "no new ticket with a refusal");
    }
    let zh = f
        .ask(CLIENT, post("/signin/code", &format!("phone={PHONE_Q}")))
        .await;
    assert_eq!(zh.status, StatusCode::FORBIDDEN);
    assert!(zh.body.contains("登录页面已过期"), "{}", zh.body);
    assert!(f.hq.as_ref().unwrap().seen().is_empty(), "no text sent");

    // A page fetched: one ticket, one text.
    let page = f.ask(CLIENT, get("192.0.2.1:2050", "/login?lang=en")).await;
    let ticket = code_ticket(&page.body);
    assert_eq!(ticket.len(), 43, "{}", page.body);
    let again = f.ask(CLIENT, get("192.0.2.1:2050", "/login?lang=en")).await;
    assert_ne!(code_ticket(&again.body), ticket, "a fresh one per page");
    // A refusal before sending shows the form with the same ticket.
    let body = format!("phone=12ab&lang=en&code_ticket={ticket}");
    let a = f.ask(CLIENT, post("/signin/code", &body)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(code_ticket(&a.body), ticket);
    let body = format!("phone={PHONE_Q}&lang=en&code_ticket={ticket}");
    let a = f.ask(CLIENT, post("/signin/code", &body)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(
        !a.body.contains("action=\"/signin/code\""),
        "no resend form"
    );
    assert!(a.body.contains("ask for a new code"), "{}", a.body);
    // Spent: the same page cannot pay for another text.
    let a = f.ask(CLIENT, post("/signin/code", &body)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    // Nor can another device's page.
    let other = crate::members::Members::code_ticket(
        f.portal.members.as_ref().unwrap(),
        &token(MacAddr([2, 0, 0, 0, 0, 2])),
        Timestamp::now(),
    );
    let body = format!("phone=13900001111&lang=en&code_ticket={other}");
    let a = f.ask(CLIENT, post("/signin/code", &body)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(f.hq.as_ref().unwrap().seen().len(), 1, "one text in all");
}

#[tokio::test]
async fn a_number_of_another_country_is_refused_with_a_clear_page_and_no_text() {
    let f = with_hq(fixture()).await;
    let a = f
        .ask(
            CLIENT,
            code_post(&f, "phone=%2B1+415+555+0100&lang=en").await,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.body.contains("from +86 here"), "{}", a.body);
    assert!(a.body.contains("value=\"+1 415 555 0100\""), "{}", a.body);
    let zh = f
        .ask(CLIENT, code_post(&f, "phone=%2B44+7700+900123").await)
        .await;
    assert_eq!(zh.status, StatusCode::FORBIDDEN);
    assert!(zh.body.contains("+86 的手机号码"), "{}", zh.body);
    assert!(f.hq.as_ref().unwrap().seen().is_empty(), "no text sent");
}

#[tokio::test]
async fn the_member_number_form_says_it_remembers_nothing_unless_trusted() {
    let f = with_hq(fixture()).await;
    let page = f.ask(CLIENT, get("192.0.2.1:2050", "/login?lang=en")).await;
    assert!(
        page.body
            .contains("Signing in with a member number does not remember this device"),
        "{}",
        page.body
    );
    assert!(page.body.contains("sign in with your mobile number"));
    let zh = f.ask(CLIENT, get("192.0.2.1:2050", "/login")).await;
    assert!(
        zh.body.contains("使用会员卡号登录不会记住此设备"),
        "{}",
        zh.body
    );
    // Without texts there is no phone sign-in to point to.
    let plain = fixture();
    let page = plain
        .ask(CLIENT, get("192.0.2.1:2050", "/login?lang=en"))
        .await;
    assert!(page.body.contains("does not remember this device"));
    assert!(!page.body.contains("mobile number"), "{}", page.body);
    // Trusted: nothing to warn of.
    let f = fixture_with(trusted());
    let page = f.ask(CLIENT, get("192.0.2.1:2050", "/login?lang=en")).await;
    assert!(!page.body.contains("does not remember"), "{}", page.body);
}

#[tokio::test]
async fn an_untrusted_member_number_signs_in_for_the_session_only() {
    let f = fixture();
    let a = f
        .ask(
            CLIENT,
            post(
                "/signin/member",
                "member_number=88001234&remember_device=yes&marketing=yes&lang=en",
            ),
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(f.fw.is_allowed(MAC1), "signed in");
    let members = f.portal.members.as_ref().unwrap();
    assert_eq!(members.recognise(MAC1, Timestamp::now()), None);
    let views = members.list();
    assert!(views[0].devices.is_empty());
    assert!(
        views[0].consents["marketing"].is_null(),
        "{}",
        views[0].consents
    );
    let linked = linked_events(&f);
    assert_eq!(linked[0]["remember_device"], false);
    assert_eq!(linked[0]["marketing"], false);
}

#[tokio::test]
async fn member_number_sign_ins_are_limited_per_device_with_a_clear_429() {
    let f = fixture();
    for i in 0..10 {
        let body = format!("member_number={}&lang=en", 90_000_000 + i);
        let a = f.ask(CLIENT, post("/signin/member", &body)).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{i}: {}", a.body);
    }
    let a = f
        .ask(
            CLIENT,
            post("/signin/member", "member_number=90000099&lang=en"),
        )
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(
        a.body.contains("Too many member-number sign-ins"),
        "{}",
        a.body
    );
    assert!(a.header("retry-after").parse::<u64>().unwrap() > 3000);
    assert!(
        a.body.contains("value=\"90000099\""),
        "what was typed is kept"
    );
    let zh = f
        .ask(CLIENT, post("/signin/member", "member_number=90000099"))
        .await;
    assert!(zh.body.contains("会员卡号登录尝试过于频繁"), "{}", zh.body);
    assert_eq!(f.portal.members.as_ref().unwrap().list().len(), 10);
}
