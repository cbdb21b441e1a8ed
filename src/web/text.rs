//! Small texts the portal and the dashboard both show: time left, a wait,
//! an error box.

use std::time::Duration;

use crate::config::Language;

use super::i18n::t;
use super::template::escape;

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
}
