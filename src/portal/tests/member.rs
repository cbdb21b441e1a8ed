//! Member sign-in by number, and what the sign-in page offers members:
//! unticked consents and the staff code carried through; every member
//! error translated.

use super::*;
use crate::members::MemberError;
use crate::store::StoreError;

#[tokio::test]
async fn login_page_offers_member_sign_in_with_unticked_consents_and_the_staff_code() {
    let f = with_hq(fixture()).await;
    let page = f.page("/login?staff=QR_wulin-07&lang=en").await;
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
        let page = f.page(&format!("/login?staff={bad}")).await;
        assert_eq!(page.status, StatusCode::OK, "{bad}");
        assert!(page.body.contains("name=\"staff\" value=\"\""), "{bad}");
        assert!(!page.body.contains("staff="), "{bad}");
    }
    // And so is one posted with a sign-in.
    let a = f
        .member_number("12345678", "staff=bad%20code&remember_device=yes")
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let views = f.members().list();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].staff_code, None);
    assert_eq!(linked_events(&f)[0]["staff_code"], serde_json::Value::Null);
}

#[tokio::test]
async fn member_number_sign_in() {
    // Consent and "remember" from a member number need the operator's
    // trust (see `abuse` for the default).
    let f = fixture_with(crate::config::MembersConfig {
        member_number_trusted: true,
        ..crate::config::MembersConfig::default()
    });
    let a = f.member_number("12", "lang=en&staff=S1").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("not a valid member number"), "{}", a.body);
    assert!(a.body.contains("name=\"member_number\""));
    assert!(a.body.contains("value=\"12\""), "what was typed is kept");
    assert!(a.body.contains("name=\"staff\" value=\"S1\""));
    assert!(!f.fw.is_allowed(MAC1));

    let a = f
        .member_number("8800+1234+5678", "marketing=yes&staff=S1&lang=en")
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.header("location"), "/welcome?lang=en");
    assert!(f.fw.is_allowed(MAC1));
    let (method, member_id) = member_method_and_id(&f);
    assert_eq!(method, Some(AuthMethod::MemberNumber));
    let member_id = member_id.unwrap();
    let views = f.members().list();
    assert_eq!(views[0].member_id, member_id);
    assert_eq!(views[0].method, "member_number");
    let linked = linked_events(&f);
    assert_eq!(linked[0]["staff_code"], "S1");
    assert_eq!(linked[0]["marketing"], true);
    assert_eq!(linked[0]["remember_device"], false);
    assert_eq!(
        f.members().recognise(MAC1, Timestamp::now()),
        None,
        "not remembered: the box was not ticked"
    );
    let w = f.page("/welcome?lang=en").await;
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
    let a = f
        .post("/signin/code", "phone=&member_number=12345678&lang=en")
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(member_method_and_id(&f).0, Some(AuthMethod::MemberNumber));
    assert!(f.hq().seen().is_empty());
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
        MemberError::CountryNotAllowed,
        MemberError::PageExpired,
        MemberError::NumberLimited {
            retry_after: Duration::from_secs(60),
        },
        MemberError::Store(StoreError::Backend("x".into())),
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
