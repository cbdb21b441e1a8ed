//! Every `dash_` text the dashboard's views and routes use is in both
//! translation files.

use super::*;

#[test]
fn every_dashboard_text_is_translated_in_both_languages() {
    let parse =
        |src: &str| -> std::collections::BTreeMap<String, String> { toml::from_str(src).unwrap() };
    let en = parse(include_str!("../../../web/i18n/en.toml"));
    let zh = parse(include_str!("../../../web/i18n/zh-CN.toml"));
    let code = [
        include_str!("../views.rs"),
        include_str!("../routes.rs"),
        include_str!("../routes/devices.rs"),
        include_str!("../routes/export.rs"),
        include_str!("../routes/live.rs"),
        include_str!("../routes/sign_in.rs"),
        views::LAYOUT,
        views::LOGIN,
    ]
    .concat();
    for piece in code.split("dash_").skip(1) {
        let key: String = piece
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if key.is_empty() || key.ends_with('_') {
            continue;
        }
        let key = format!("dash_{key}");
        assert!(en.contains_key(&key), "en lacks {key}");
        assert!(zh.contains_key(&key), "zh-CN lacks {key}");
    }
}
