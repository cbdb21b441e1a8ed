//! Portal pages: the embedded templates in `web/portal/` filled with
//! texts from `web/i18n/`. `{{name}}` inserts an escaped value,
//! `{{t:key}}` an escaped translation, `{{raw:name}}` trusted markup that
//! this module built itself.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use crate::config::Language;

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
const EN: &str = include_str!("../../web/i18n/en.toml");
const ZH_CN: &str = include_str!("../../web/i18n/zh-CN.toml");

type Texts = HashMap<String, String>;

fn texts(lang: Language) -> &'static Texts {
    static EN_T: OnceLock<Texts> = OnceLock::new();
    static ZH_T: OnceLock<Texts> = OnceLock::new();
    let (cell, src) = match lang {
        Language::En => (&EN_T, EN),
        Language::ZhCn => (&ZH_T, ZH_CN),
    };
    // The files are part of the binary and a unit test parses both, so a
    // parse failure cannot reach a running box; still, fall back to empty.
    cell.get_or_init(|| toml::from_str(src).unwrap_or_default())
}

/// A translated text; the key itself if it is missing.
pub fn t(lang: Language, key: &str) -> String {
    texts(lang)
        .get(key)
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

/// The first language of an `Accept-Language` header we have texts for.
pub fn accept_language(headers: &http::HeaderMap) -> Option<Language> {
    headers
        .get(http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .take(16)
                .find_map(|tag| Language::from_tag(tag.split(';').next()?))
        })
}

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Fills a template. `vars` are escaped; `raw` are inserted as they are.
pub fn render(
    template: &str,
    lang: Language,
    vars: &[(&str, &str)],
    raw: &[(&str, &str)],
) -> String {
    let mut out = String::with_capacity(template.len() + 2048);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        if let Some(key) = name.strip_prefix("t:") {
            out.push_str(&escape(&t(lang, key)));
        } else if let Some(key) = name.strip_prefix("raw:") {
            if key == "style" {
                out.push_str(STYLE);
            } else if let Some((_, v)) = raw.iter().find(|(k, _)| *k == key) {
                out.push_str(v);
            }
        } else if name == "lang" {
            out.push_str(lang.tag());
        } else if let Some((_, v)) = vars.iter().find(|(k, _)| *k == name) {
            out.push_str(&escape(v));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// "3 h 12 min" / "3 小时 12 分钟".
pub fn remaining_text(lang: Language, left: Duration) -> String {
    let total_min = left.as_secs().div_ceil(60);
    let (h, m) = (total_min / 60, total_min % 60);
    if h > 0 {
        t(lang, "hours_minutes")
            .replace("{h}", &h.to_string())
            .replace("{m}", &m.to_string())
    } else {
        t(lang, "minutes").replace("{m}", &m.to_string())
    }
}

/// `<div class="error">…</div>` for a translated error key.
pub fn error_box(lang: Language, key: &str) -> String {
    text_box(&t(lang, key))
}

/// `<div class="error">…</div>` for a text already translated.
pub fn text_box(text: &str) -> String {
    format!("<div class=\"error\" role=\"alert\">{}</div>", escape(text))
}

/// "15 minutes" / "15 分钟": a wait, in whole minutes rounded up.
pub fn wait_text(lang: Language, wait: Duration) -> String {
    let m = wait.as_secs().div_ceil(60).max(1);
    if m == 1 {
        t(lang, "wait_one_minute")
    } else {
        t(lang, "wait_minutes").replace("{m}", &m.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(src: &str) -> Vec<String> {
        let table: Texts = toml::from_str(src).expect("translation file parses");
        let mut k: Vec<String> = table.into_keys().collect();
        k.sort();
        k
    }

    #[test]
    fn both_languages_have_the_same_keys() {
        assert_eq!(keys(EN), keys(ZH_CN));
    }

    #[test]
    fn every_template_key_is_translated() {
        let en = keys(EN);
        for template in [
            LOGIN, STATUS, MESSAGE, MEMBER, PHONE, CODE, WELCOME, CAMPAIGN,
        ] {
            for piece in template.split("{{t:").skip(1) {
                let key = piece.split("}}").next().unwrap();
                assert!(en.iter().any(|k| k == key), "missing translation {key}");
            }
        }
    }

    #[test]
    fn render_escapes_values_but_not_raw_markup() {
        let page = render(
            "<p>{{name}}</p>{{raw:box}}<i>{{t:connect}}</i><b>{{missing}}</b>{{lang}}",
            Language::En,
            &[("name", "<script>alert('x')</script>")],
            &[("box", "<hr>")],
        );
        assert_eq!(
            page,
            "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p><hr><i>Connect</i><b></b>en"
        );
        assert_eq!(
            render("a {{unclosed", Language::En, &[], &[]),
            "a {{unclosed"
        );
    }

    #[test]
    fn remaining_time_reads_naturally() {
        assert_eq!(
            remaining_text(Language::En, Duration::from_secs(3 * 3600 + 11 * 60 + 5)),
            "3 h 12 min"
        );
        assert_eq!(
            remaining_text(Language::ZhCn, Duration::from_secs(59)),
            "1 分钟"
        );
    }

    #[test]
    fn waits_read_in_minutes() {
        assert_eq!(
            wait_text(Language::En, Duration::from_secs(15 * 60)),
            "15 minutes"
        );
        assert_eq!(
            wait_text(Language::En, Duration::from_secs(14 * 60 + 1)),
            "15 minutes"
        );
        assert_eq!(wait_text(Language::En, Duration::from_secs(5)), "1 minute");
        assert_eq!(wait_text(Language::En, Duration::ZERO), "1 minute");
        assert_eq!(
            wait_text(Language::ZhCn, Duration::from_secs(900)),
            "15 分钟"
        );
    }

    #[test]
    fn url_encoding_is_reversible_for_query_values() {
        assert_eq!(
            url_encode("http://a.b/c?d=e&f"),
            "http%3A%2F%2Fa.b%2Fc%3Fd%3De%26f"
        );
    }
}
