//! The portal's pages: the templates in `web/portal/`, filled by `web`'s
//! renderer with every page's stylesheet (`{{raw:style}}`) added.

use crate::config::Language;
use crate::web::template::Fields;

const STYLE: &str = include_str!("../../web/portal/style.css");
pub const LOGIN: &str = include_str!("../../web/portal/login.html");
pub const STATUS: &str = include_str!("../../web/portal/status.html");
pub const MESSAGE: &str = include_str!("../../web/portal/message.html");
/// The member section of the sign-in page (with `PHONE` when texts can
/// be sent).
pub const MEMBER: &str = include_str!("../../web/portal/member.html");
pub const PHONE: &str = include_str!("../../web/portal/phone.html");
/// Phone sign-in, step 2: enter the texted code.
pub const CODE: &str = include_str!("../../web/portal/code.html");
pub const WELCOME: &str = include_str!("../../web/portal/welcome.html");
pub const CAMPAIGN: &str = include_str!("../../web/portal/campaign.html");
/// The welcome page's new members' Wi-Fi key (QR code, passphrase,
/// Apple profile link).
pub const WIFI_KEY: &str = include_str!("../../web/portal/wifi_key.html");
/// The welcome page's "Get a new key" for a member holding one.
pub const WIFI_RENEW: &str = include_str!("../../web/portal/wifi_renew.html");

/// Fills a portal template (see `web::template`); `{{raw:style}}` is the
/// portal's stylesheet.
pub fn render(template: &str, lang: Language, vars: &Fields, raw: &Fields) -> String {
    let mut all = Vec::with_capacity(raw.len() + 1);
    all.push(("style", STYLE));
    all.extend_from_slice(raw);
    crate::web::render(template, lang, vars, &all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_key_is_translated() {
        for template in [
            LOGIN, STATUS, MESSAGE, MEMBER, PHONE, CODE, WELCOME, CAMPAIGN, WIFI_KEY, WIFI_RENEW,
        ] {
            for piece in template.split("{{t:").skip(1) {
                let key = piece.split("}}").next().unwrap();
                assert!(
                    crate::web::i18n::has(Language::En, key),
                    "missing translation {key}"
                );
            }
        }
    }

    #[test]
    fn every_page_carries_the_stylesheet() {
        let page = render("<style>{{raw:style}}</style>", Language::En, &[], &[]);
        assert_eq!(page, format!("<style>{STYLE}</style>"));
    }
}
