//! The template language of `web/`: `{{name}}` inserts an escaped value,
//! `{{t:key}}` an escaped translation, `{{raw:name}}` trusted markup the
//! caller built itself, `{{lang}}` the page's language tag. Nothing else:
//! no logic in templates.

use crate::config::Language;

use super::i18n::t;

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

/// Names and their values for a template.
pub type Fields<'a> = [(&'a str, &'a str)];

/// Fills a template. `vars` are escaped; `raw` are inserted as they are.
/// A name without a value inserts nothing.
pub fn render(template: &str, lang: Language, vars: &Fields, raw: &Fields) -> String {
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
            if let Some((_, v)) = raw.iter().find(|(k, _)| *k == key) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn url_encoding_is_reversible_for_query_values() {
        assert_eq!(
            url_encode("http://a.b/c?d=e&f"),
            "http%3A%2F%2Fa.b%2Fc%3Fd%3De%26f"
        );
    }
}
