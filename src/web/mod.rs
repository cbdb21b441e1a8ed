//! Pages for people: the template renderer, HTML and URL escaping, the
//! translations in `web/i18n/` and the choice of language, and the small
//! texts the portal and the dashboard both show (time left, waits,
//! error boxes). Each server keeps its own templates (`portal::pages`,
//! `dashboard::views`); how they are served is `http`'s.

pub mod i18n;
pub mod template;
pub mod text;

pub use i18n::{accept_language, t};
pub use template::{escape, render, url_encode};
pub use text::{error_box, remaining_text, text_box, wait_text};
