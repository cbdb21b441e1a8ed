//! The members' Wi-Fi on the portal: the welcome page offers a key (QR
//! code, passphrase, Apple profile) only after a phone sign-in with
//! "remember this device", once; the profile; "Get a new key"; and the
//! `WIFI:` escaping.

use std::path::Path;

use super::*;
use crate::config::MembersConfig;
use crate::members::wifi::key::psk_hex;
use crate::portal::routes::wifi as w;

const SSID: &str = "Wulin \"Members\";";

fn config(dir: &Path, allow_member_number: bool) -> MembersConfig {
    crate::app::rig::wifi_members(dir, SSID, allow_member_number)
}

/// CLIENT signs in by phone with `fields` (e.g. `remember_device=yes`).
async fn phone_sign_in(f: &Fixture, fields: &str) {
    let a = f.request_code(&format!("{fields}&lang=en")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let seen = f.hq().seen();
    let text: serde_json::Value = serde_json::from_slice(&seen.last().unwrap().body).unwrap();
    let code = text["code"].as_str().unwrap();
    let a = f
        .post(
            "/signin/verify",
            &format!("phone={PHONE_Q}&code={code}&{fields}&lang=en"),
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
}

/// The passphrase the page shows, if any.
fn shown_passphrase(body: &str) -> Option<String> {
    let marker = "<code class=\"wifi-passphrase\">";
    let start = body.find(marker)? + marker.len();
    let len = body[start..].find("</code>")?;
    Some(body[start..start + len].to_string())
}

fn psk_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("members.psk")).unwrap()
}

/// A minimal well-formedness check: every tag closed in order.
fn well_formed_xml(xml: &str) -> bool {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        let Some(j) = rest[i..].find('>') else {
            return false;
        };
        let tag = &rest[i + 1..i + j];
        rest = &rest[i + j + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name = tag.split_whitespace().next().unwrap_or("");
        if let Some(closing) = name.strip_prefix('/') {
            if stack.pop().as_deref() != Some(closing) {
                return false;
            }
        } else {
            stack.push(name.to_string());
        }
    }
    stack.is_empty() && !rest.contains('>')
}

#[tokio::test]
async fn phone_sign_in_with_remember_gets_a_key_once_and_can_renew_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = with_hq(fixture_with(config(dir.path(), false))).await;
    phone_sign_in(&f, "remember_device=yes").await;
    let (_, member_id) = member_method_and_id(&f);
    let member_id = member_id.unwrap();

    let a = f.page("/welcome?lang=en").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("<svg"), "{}", a.body);
    assert!(!a.body.contains("<?xml"), "inline SVG, no XML declaration");
    assert!(
        a.body
            .contains("href=\"/wifi/profile.mobileconfig?lang=en\"")
    );
    assert!(!a.body.contains("<script"));
    // The SSID is escaped in HTML.
    assert!(a.body.contains("Wulin &quot;Members&quot;;"), "{}", a.body);
    let pass = shown_passphrase(&a.body).expect("the passphrase as text");
    assert_eq!(pass.len(), 19);
    let line = format!(
        "keyid={member_id} 00:00:00:00:00:00 {}\n",
        psk_hex(&pass, SSID)
    );
    assert_eq!(psk_file(dir.path()), line);
    assert!(f.members().list()[0].has_wifi_key);

    // The profile, for this device, for a while.
    let p = f.page("/wifi/profile.mobileconfig").await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(p.header("content-type"), "application/x-apple-aspen-config");
    assert!(p.header("content-disposition").starts_with("attachment"));
    assert_eq!(p.header("cache-control"), "no-store");
    assert!(well_formed_xml(&p.body), "{}", p.body);
    assert!(p.body.contains("<string>com.apple.wifi.managed</string>"));
    assert!(
        p.body
            .contains("<key>SSID_STR</key>\n      <string>Wulin &quot;Members&quot;;</string>")
    );
    assert!(p.body.contains(&format!(
        "<key>Password</key>\n      <string>{pass}</string>"
    )));
    assert!(
        p.body
            .contains("<key>EncryptionType</key>\n      <string>WPA2</string>")
    );
    assert!(p.body.contains("<key>AutoJoin</key>\n      <true/>"));
    let again = f.page("/wifi/profile.mobileconfig").await;
    assert_ne!(
        p.body.split("PayloadUUID").nth(1),
        again.body.split("PayloadUUID").nth(1),
        "random UUIDs"
    );

    // Shown once: the page now offers a new key instead.
    let a = f.page("/welcome?lang=en").await;
    assert!(!a.body.contains("<svg") && shown_passphrase(&a.body).is_none());
    assert!(a.body.contains("action=\"/wifi/renew\""), "{}", a.body);
    // No form token: refused, nothing renewed.
    let r = f.ask(CLIENT, post_raw("/wifi/renew", "lang=en")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(psk_file(dir.path()), line);

    let r = f.post("/wifi/renew", "lang=en").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), "/welcome?lang=en");
    let a = f.page("/welcome?lang=en").await;
    let new_pass = shown_passphrase(&a.body).expect("a new key");
    assert_ne!(new_pass, pass);
    assert_eq!(
        psk_file(dir.path()),
        format!(
            "keyid={member_id} 00:00:00:00:00:00 {}\n",
            psk_hex(&new_pass, SSID)
        )
    );
}

#[tokio::test]
async fn a_head_request_does_not_spend_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = with_hq(fixture_with(config(dir.path(), false))).await;
    phone_sign_in(&f, "remember_device=yes").await;
    let head = f
        .ask(
            CLIENT,
            request(http::Method::HEAD, HOST, "/welcome?lang=en"),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(psk_file(dir.path()), "");
    let a = f.page("/welcome?lang=en").await;
    assert!(shown_passphrase(&a.body).is_some());
}

#[tokio::test]
async fn no_key_without_remember_nor_for_a_member_number_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let f = with_hq(fixture_with(config(dir.path(), false))).await;
    phone_sign_in(&f, "remember_device=").await;
    let a = f.page("/welcome?lang=en").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(!a.body.contains("<svg") && shown_passphrase(&a.body).is_none());
    assert!(!a.body.contains("mobileconfig") && !a.body.contains("/wifi/renew"));
    let p = f.page("/wifi/profile.mobileconfig").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let r = f.post("/wifi/renew", "lang=en").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let dir = tempfile::tempdir().unwrap();
    let f = fixture_with(config(dir.path(), false));
    let a = f
        .member_number("40000001", "remember_device=yes&lang=en")
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let a = f.page("/welcome?lang=en").await;
    assert!(!a.body.contains("<svg") && shown_passphrase(&a.body).is_none());
    assert_eq!(psk_file(dir.path()), "");

    // Allowed by the operator: a member number gets one too.
    let dir = tempfile::tempdir().unwrap();
    let f = fixture_with(config(dir.path(), true));
    f.member_number("40000001", "remember_device=yes&lang=en")
        .await;
    let a = f.page("/welcome?lang=en").await;
    assert!(a.body.contains("<svg") && shown_passphrase(&a.body).is_some());
}

#[test]
fn wifi_qr_text_escapes_the_special_characters() {
    assert_eq!(
        w::wifi_qr_text("Store Members", "k7m2-x9qa-3hfp-tw8e"),
        "WIFI:T:WPA;S:Store Members;P:k7m2-x9qa-3hfp-tw8e;;"
    );
    assert_eq!(
        w::wifi_qr_text(r#"a\b;c,d:e"f"#, "p;w"),
        r#"WIFI:T:WPA;S:a\\b\;c\,d\:e\"f;P:p\;w;;"#
    );
    let svg = w::qr_svg("WIFI:T:WPA;S:x;P:y;;");
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
}

#[test]
fn the_profile_escapes_xml() {
    let xml = w::mobileconfig("a<b&c", "p>q", "Wulin <Store>");
    assert!(well_formed_xml(&xml), "{xml}");
    assert!(xml.contains("<string>a&lt;b&amp;c</string>"));
    assert!(xml.contains("<string>p&gt;q</string>"));
    assert!(!xml.contains("Wulin <Store>"));
}
