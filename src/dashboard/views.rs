//! Dashboard HTML: the embedded templates in `web/dashboard/` filled with
//! `crate::web`'s template engine and texts. Everything
//! from the LAN (host names above all) goes through `escape`; charts are
//! inline SVG and CSS built from numbers only.

use std::fmt::Write;

use super::live::LiveData;
use crate::config::Language;
use crate::web::{escape, render, t, text_box};

pub const CSS: &str = include_str!("../../web/dashboard/style.css");
pub const LAYOUT: &str = include_str!("../../web/dashboard/layout.html");
pub const LOGIN: &str = include_str!("../../web/dashboard/login.html");
pub const LIVE_JS: &str = include_str!("../../web/dashboard/live.js");

/// A page inside the layout (nav, language toggle, sign-out).
pub fn page(
    lang: Language,
    store: &str,
    title: &str,
    csrf: &str,
    body: &str,
    script: bool,
) -> String {
    let script = if script {
        "<script src=\"/static/live.js\"></script>"
    } else {
        ""
    };
    render(
        LAYOUT,
        lang,
        &[("store", store), ("title", title), ("csrf", csrf)],
        &[("css", CSS), ("body", body), ("script", script)],
    )
}

pub fn login(lang: Language, store: &str, error: Option<&str>) -> String {
    let error = error.map(text_box).unwrap_or_default();
    render(
        LOGIN,
        lang,
        &[("store", store)],
        &[("css", CSS), ("error", &error)],
    )
}

/// The live page's body: the `#live` section the event stream replaces.
pub fn live_body(lang: Language, data: &LiveData, seq: u64) -> String {
    format!(
        "<section id=\"live\" data-seq=\"{seq}\">{}</section>",
        live_section(lang, data)
    )
}

/// The inside of `#live` (also what each server-sent event carries).
pub fn live_section(lang: Language, d: &LiveData) -> String {
    let tx = |k: &str| escape(&t(lang, k));
    let mut out = String::with_capacity(8192);
    let _ = write!(
        out,
        "<div class=\"grid\">\
         <div class=\"card\"><div class=\"muted\">{}</div><div class=\"big\" id=\"present-now\">{}</div></div>\
         <div class=\"card\"><div class=\"muted\">{}</div><div class=\"big\" id=\"members-present\">{}</div></div>\
         <div class=\"card\"><div class=\"muted\">{}</div><div class=\"big\" id=\"arrivals-today\">{}</div></div>\
         </div>",
        tx("dash_present_now"),
        d.present_now,
        tx("dash_members_present"),
        d.members_present,
        tx("dash_arrivals_today"),
        d.arrivals_today,
    );
    let _ = write!(
        out,
        "<div class=\"card\" style=\"margin-top:1rem\"><h3>{}</h3>\
         <div class=\"legend muted\"><i style=\"background:var(--accent)\"></i>{} {}\
         <i style=\"background:var(--last)\"></i>{} {}</div>{}</div>",
        tx("dash_arrivals_by_hour"),
        tx("dash_today"),
        escape(&d.today),
        tx("dash_last_week"),
        escape(&d.last_week),
        hours_chart(&d.arrivals_by_hour, &d.last_week_by_hour),
    );
    let dwell = [
        ("dash_dwell_under_5m", d.dwell.under_5m),
        ("dash_dwell_5_20", d.dwell.from_5m_to_20m),
        ("dash_dwell_20_60", d.dwell.from_20m_to_60m),
        ("dash_dwell_1_6h", d.dwell.from_1h_to_6h),
        ("dash_dwell_6h", d.dwell.over_6h),
    ];
    let nvr = [
        ("dash_new", d.new_devices),
        ("dash_returning", d.returning_devices),
    ];
    let f = &d.visit_frequency;
    let freq = [
        ("dash_freq_once", f.once),
        ("dash_freq_twice", f.twice),
        ("dash_freq_3_5", f.three_to_five),
        ("dash_freq_6", f.six_or_more),
    ];
    let _ = write!(
        out,
        "<div class=\"grid\" style=\"margin-top:1rem\">\
         <div class=\"card\"><h3>{}</h3>{}</div>\
         <div class=\"card\"><h3>{}</h3>{}</div>\
         <div class=\"card\"><h3>{}</h3>{}</div></div>",
        tx("dash_dwell"),
        bars(lang, &dwell),
        tx("dash_new_vs_returning"),
        bars(lang, &nvr),
        tx("dash_frequency"),
        bars(lang, &freq),
    );
    let _ = write!(
        out,
        "<div class=\"card\" style=\"margin-top:1rem\"><h3>{}</h3>",
        tx("dash_feed")
    );
    if d.feed.is_empty() {
        let _ = write!(out, "<p class=\"muted\">{}</p>", tx("dash_no_arrivals"));
    } else {
        out.push_str("<ul class=\"feed\">");
        for a in &d.feed {
            let who = match &a.member_id {
                Some(m) => format!(
                    "<span class=\"tag\">{}</span> {} <span class=\"muted\">({})</span>",
                    tx("dash_member"),
                    escape(m),
                    tx(if a.recognised_by == Some("wifi_key") {
                        "dash_by_key"
                    } else {
                        "dash_by_mac"
                    })
                ),
                None => tx("dash_guest"),
            };
            let host = a
                .hostname
                .as_deref()
                .map(|h| format!(" · {}", escape(h)))
                .unwrap_or_default();
            let left = if a.present {
                String::new()
            } else {
                format!(" <span class=\"muted\">({})</span>", tx("dash_left"))
            };
            let _ = write!(
                out,
                "<li><b>{}</b> {who}{host} <span class=\"muted\">{}</span>{left}</li>",
                escape(&a.local_time),
                escape(&a.os_family),
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</div>");
    out
}

/// Labelled CSS bars, scaled to the largest value.
fn bars(lang: Language, rows: &[(&str, u32)]) -> String {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let mut out = String::new();
    for (key, n) in rows {
        let pct = u64::from(*n) * 100 / u64::from(max);
        let _ = write!(
            out,
            "<div class=\"bar\" data-key=\"{key}\"><span class=\"label\">{}</span><span class=\"fill\" style=\"width:{pct}%\"></span><span class=\"n\">{n}</span></div>",
            escape(&t(lang, key))
        );
    }
    out
}

/// Arrivals per hour: today's bar beside last week's, inline SVG.
fn hours_chart(today: &[u32], last: &[u32]) -> String {
    let max = today.iter().chain(last).copied().max().unwrap_or(0).max(1);
    let (w, h, base) = (24 * 24, 120u32, 100u32);
    let mut out = format!(
        "<svg class=\"hours\" viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\" preserveAspectRatio=\"none\">"
    );
    for hour in 0..24usize {
        let x = hour as u32 * 24;
        for (i, (series, class)) in [(last, "last"), (today, "today")].iter().enumerate() {
            let n = series.get(hour).copied().unwrap_or(0);
            let bh = n * base / max;
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"9\" height=\"{bh}\"><title>{hour}:00 {n}</title></rect>",
                x + 2 + i as u32 * 10,
                base - bh
            );
        }
        if hour % 3 == 0 {
            let _ = write!(out, "<text x=\"{}\" y=\"115\">{hour}</text>", x + 2);
        }
    }
    out.push_str("</svg>");
    out
}

/// One row of the devices list (`/api/devices` and `/devices`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceRow {
    pub mac: String,
    pub ip: Option<String>,
    pub hostname: Option<String>,
    pub os_family: String,
    pub mac_randomized: bool,
    pub present: bool,
    pub member_id: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    /// `visitor`, `staff` or `resident`.
    pub classification: String,
    pub blocked: bool,
    /// `authorized`, `preauth`, or null when the gate does not know it.
    pub wifi: Option<&'static str>,
}

/// The devices page's body.
pub fn devices_body(lang: Language, rows: &[DeviceRow], csrf: &str, today: &str) -> String {
    let tx = |k: &str| escape(&t(lang, k));
    let mut out = String::with_capacity(4096 + rows.len() * 600);
    let _ = write!(
        out,
        "<div class=\"card\"><form method=\"get\" action=\"/api/visits.csv\">{} \
         <label class=\"inline\">{} <input type=\"date\" name=\"from\" value=\"{today}\"></label> \
         <label class=\"inline\">{} <input type=\"date\" name=\"to\" value=\"{today}\"></label> \
         <button>{}</button></form></div>",
        tx("dash_export"),
        tx("dash_from"),
        tx("dash_to"),
        tx("dash_download"),
        today = escape(today),
    );
    out.push_str("<div class=\"card\" style=\"margin-top:1rem;overflow-x:auto\">");
    if rows.is_empty() {
        let _ = write!(
            out,
            "<p class=\"muted\">{}</p></div>",
            tx("dash_no_devices")
        );
        return out;
    }
    let _ = write!(out, "<table id=\"devices\"><thead><tr>");
    for k in [
        "dash_mac",
        "dash_ip",
        "dash_hostname",
        "dash_os",
        "dash_present",
        "dash_member_id",
        "dash_first_seen",
        "dash_last_seen",
        "dash_class",
        "dash_wifi",
        "dash_actions",
    ] {
        let _ = write!(out, "<th>{}</th>", tx(k));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        let yes_no = |b: bool| tx(if b { "dash_yes" } else { "dash_no" });
        let class = tx(&format!("dash_{}", r.classification));
        let blocked = if r.blocked {
            format!(" <span class=\"tag\">{}</span>", tx("dash_blocked"))
        } else {
            String::new()
        };
        let wifi = match r.wifi {
            Some("authorized") => tx("dash_authorized"),
            Some(_) => tx("dash_preauth"),
            None => "-".into(),
        };
        let action = |name: &str, key: &str| {
            format!(
                "<form method=\"post\" action=\"/api/devices/{mac}/{name}\" class=\"inline\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <button class=\"quiet\" data-action=\"{name}\">{label}</button></form> ",
                mac = escape(&r.mac),
                csrf = escape(csrf),
                label = tx(key),
            )
        };
        let mut actions = String::new();
        if r.wifi == Some("authorized") {
            actions.push_str(&action("sign-out", "dash_action_sign_out"));
        }
        actions.push_str(&if r.blocked {
            action("unblock", "dash_unblock")
        } else {
            action("block", "dash_block")
        });
        actions.push_str(&if r.classification == "staff" {
            action("not-staff", "dash_unmark_staff")
        } else {
            action("staff", "dash_mark_staff")
        });
        let _ = write!(
            out,
            "<tr data-mac=\"{mac}\"><td><code>{mac}</code>{blocked}</td><td>{ip}</td><td>{host}</td>\
             <td>{os}</td><td>{present}</td><td>{member}</td><td>{first}</td><td>{last}</td>\
             <td class=\"class\">{class}</td><td>{wifi}</td><td>{actions}</td></tr>",
            mac = escape(&r.mac),
            ip = escape(r.ip.as_deref().unwrap_or("-")),
            host = escape(r.hostname.as_deref().unwrap_or("-")),
            os = escape(&r.os_family),
            present = yes_no(r.present),
            member = escape(r.member_id.as_deref().unwrap_or("-")),
            first = escape(&r.first_seen),
            last = escape(&r.last_seen),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}
