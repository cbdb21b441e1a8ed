//! Translations: `web/i18n/*.toml`, one table of key → text a language,
//! part of the binary; and which language a browser asks for.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::config::Language;

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

/// Is there a text for `key` in `lang`? (For tests of templates.)
pub fn has(lang: Language, key: &str) -> bool {
    texts(lang).contains_key(key)
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
}
