//! The members' Wi-Fi on the portal: the welcome page's "Join the
//! members' Wi-Fi" (a QR code, the passphrase as text, an Apple profile),
//! `GET /wifi/profile.mobileconfig` and `POST /wifi/renew` ("Get a new
//! key").
//!
//! Everything is made on the box: the QR code is inline SVG (no script,
//! no CDN; the guest has no internet before sign-in and the page's CSP
//! allows neither). The passphrase is on the page once, after a sign-in
//! that earned it (`Members::take_wifi_offer`); the profile is served
//! from the same in-memory copy for a few minutes, to that device only.

use qrcode::QrCode;
use qrcode::render::svg;
use rand::RngCore;
use rand::rngs::OsRng;

use super::*;
use crate::members::Passphrase;

/// The Apple profile's content type.
const PROFILE_TYPE: &str = "application/x-apple-aspen-config";

/// A value in a `WIFI:` QR string: `\`, `;`, `,`, `:` and `"` get a
/// backslash (the format's own escaping).
pub(crate) fn wifi_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ';' | ',' | ':' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What the QR code holds: `WIFI:T:WPA;S:<ssid>;P:<passphrase>;;`.
pub(crate) fn wifi_qr_text(ssid: &str, passphrase: &str) -> String {
    format!(
        "WIFI:T:WPA;S:{};P:{};;",
        wifi_escape(ssid),
        wifi_escape(passphrase)
    )
}

/// `text` as an inline `<svg>` QR code, or nothing if it cannot be one
/// (it always can: an SSID and passphrase are far under the limit).
pub(crate) fn qr_svg(text: &str) -> String {
    let Ok(code) = QrCode::new(text.as_bytes()) else {
        return String::new();
    };
    let image = code
        .render::<svg::Color>()
        .min_dimensions(220, 220)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Inline in HTML: no XML declaration.
    match image.find("<svg") {
        Some(i) => image[i..].to_string(),
        None => String::new(),
    }
}

/// A random (version 4) UUID, upper case as Apple writes them.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .to_string()
        .to_uppercase()
}

/// An iPhone/Mac configuration profile that joins the members' SSID:
/// one `com.apple.wifi.managed` payload (WPA2, auto-join).
pub(crate) fn mobileconfig(ssid: &str, passphrase: &str, store_name: &str) -> String {
    let (ssid, pass, store) = (
        crate::web::escape(ssid),
        crate::web::escape(passphrase),
        crate::web::escape(store_name),
    );
    let (outer, inner) = (random_uuid(), random_uuid());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>AutoJoin</key>
      <true/>
      <key>EncryptionType</key>
      <string>WPA2</string>
      <key>HIDDEN_NETWORK</key>
      <false/>
      <key>Password</key>
      <string>{pass}</string>
      <key>PayloadDisplayName</key>
      <string>{ssid}</string>
      <key>PayloadIdentifier</key>
      <string>com.storegate.wifi.{inner}</string>
      <key>PayloadType</key>
      <string>com.apple.wifi.managed</string>
      <key>PayloadUUID</key>
      <string>{inner}</string>
      <key>PayloadVersion</key>
      <integer>1</integer>
      <key>SSID_STR</key>
      <string>{ssid}</string>
    </dict>
  </array>
  <key>PayloadDisplayName</key>
  <string>{ssid}</string>
  <key>PayloadIdentifier</key>
  <string>com.storegate.profile.{outer}</string>
  <key>PayloadOrganization</key>
  <string>{store}</string>
  <key>PayloadRemovalDisallowed</key>
  <false/>
  <key>PayloadType</key>
  <string>Configuration</string>
  <key>PayloadUUID</key>
  <string>{outer}</string>
  <key>PayloadVersion</key>
  <integer>1</integer>
</dict>
</plist>
"#
    )
}

/// Whether the device's session came from a sign-in with proof (a code
/// or a member number), not from recognition of its MAC alone.
fn proven_session(client: &Client) -> bool {
    matches!(
        client.method,
        Some(AuthMethod::Otp | AuthMethod::MemberNumber)
    )
}

/// The welcome page's members' Wi-Fi section for this device: the new
/// key when the sign-in earned one and this is a `GET` (shown once),
/// "Get a new key" for a member holding one, else nothing.
pub(super) async fn welcome_section(
    cx: &Cx<'_>,
    client: &Client,
    member_id: &str,
    lang: Language,
    get: bool,
) -> String {
    let portal = cx.portal;
    let Some(members) = portal.members.clone() else {
        return String::new();
    };
    let Some(ssid) = members.wifi().map(|w| w.config().ssid.clone()) else {
        return String::new();
    };
    let mac = client.mac;
    if get {
        let id = member_id.to_string();
        let m = members.clone();
        let now = cx.asker.now;
        let shown = tokio::task::spawn_blocking(move || m.take_wifi_offer(mac, &id, now))
            .await
            .ok()
            .flatten();
        if let Some(p) = shown {
            return key_html(lang, &ssid, &p);
        }
    }
    if proven_session(client)
        && members.has_wifi_key(member_id)
        && members.wifi_eligible(mac, member_id)
    {
        return render(
            pages::WIFI_RENEW,
            lang,
            &[("ssid", &ssid), ("csrf", &current_csrf(portal, Some(mac)))],
            &[],
        );
    }
    String::new()
}

/// The new key: QR code, passphrase, profile link.
fn key_html(lang: Language, ssid: &str, passphrase: &Passphrase) -> String {
    let qr = qr_svg(&wifi_qr_text(ssid, passphrase.expose()));
    render(
        pages::WIFI_KEY,
        lang,
        &[("ssid", ssid), ("passphrase", passphrase.expose())],
        &[("qr", &qr)],
    )
}

/// `GET /wifi/profile.mobileconfig`: the Apple profile for the key just
/// shown to this device.
pub(super) fn profile(cx: &Cx) -> Resp {
    let (portal, lang) = (cx.portal, cx.page_lang());
    let found = (|| {
        let client = cx.asker.client.as_ref()?;
        let member_id = client.member_id.as_deref()?;
        let members = portal.members.as_ref()?;
        let ssid = members.wifi()?.config().ssid.clone();
        let p = members.shown_wifi_key(client.mac, member_id, cx.asker.now)?;
        Some((ssid, p))
    })();
    let Some((ssid, p)) = found.filter(|_| cx.asker.authorized()) else {
        return message(
            portal,
            StatusCode::NOT_FOUND,
            lang,
            "error_title",
            "wifi_profile_gone",
        );
    };
    let body = mobileconfig(&ssid, p.expose(), &portal.site.store_name);
    let mut resp = plain(StatusCode::OK, PROFILE_TYPE, &body);
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"members-wifi.mobileconfig\""),
    );
    resp
}

/// `POST /wifi/renew`: "Get a new key"; the welcome page then shows it.
pub(super) async fn renew<B: crate::http::Body>(cx: &Cx<'_>, req: Request<B>) -> Resp {
    let portal = cx.portal;
    let (lang, _) = match posted_form(cx, req).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let welcome = format!("/welcome?lang={}", lang.tag());
    let eligible = (|| {
        let client = cx.asker.client.as_ref().filter(|_| cx.asker.authorized())?;
        let member_id = client.member_id.as_deref()?;
        let members = portal.members.as_ref()?;
        proven_session(client).then_some(())?;
        members
            .renew_wifi_key(client.mac, member_id, cx.asker.now)
            .ok()
    })();
    match eligible {
        Some(()) => see_other(&welcome),
        None => bad(portal, StatusCode::FORBIDDEN, lang, "wifi_renew_refused"),
    }
}
