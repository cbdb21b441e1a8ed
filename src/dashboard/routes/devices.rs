//! Device admin: the devices page and `GET /api/devices`, and the actions
//! on one device (`POST /api/devices/{mac}/{action}`), effective at once.

use super::*;
use crate::dashboard::views::DeviceRow;
use crate::net::MacAddr;
use crate::presence::Classification;
use crate::presence::local::local_date;
use crate::web::t;

/// `GET /devices`.
pub(super) fn page(cx: &Cx, m: &Manager) -> Resp {
    let (d, lang) = (cx.d, cx.lang);
    let rows = device_rows(d);
    let today = {
        let machine = d.app.presence.machine();
        local_date(d.app.clock.now(), machine.timezone()).to_string()
    };
    let body = views::devices_body(lang, &rows, &m.session.csrf, &today);
    html(
        StatusCode::OK,
        views::page(
            lang,
            &d.store_name,
            &t(lang, "dash_devices"),
            &m.session.csrf,
            &body,
            false,
        ),
    )
}

/// `GET /api/devices`.
pub(super) fn list(cx: &Cx) -> Resp {
    json(
        StatusCode::OK,
        &serde_json::to_value(device_rows(cx.d)).unwrap_or_default(),
    )
}

/// Every known device, present first, newest first.
fn device_rows(d: &Dashboard) -> Vec<DeviceRow> {
    let now = d.app.clock.now();
    let clients: std::collections::HashMap<MacAddr, bool> = d
        .app
        .gate
        .clients()
        .into_iter()
        .map(|c| (c.mac, c.is_authorized()))
        .collect();
    let m = d.app.presence.machine();
    let mut devices: Vec<_> = m.devices().collect();
    devices.sort_by_key(|dev| (!dev.is_present(), std::cmp::Reverse(dev.last_seen)));
    devices
        .iter()
        .map(|dev| DeviceRow {
            mac: dev.mac.to_string(),
            ip: dev.ip.map(|ip| ip.to_string()),
            hostname: dev.hostname.clone(),
            os_family: dev.os_family.clone(),
            mac_randomized: dev.mac_randomized,
            present: dev.is_present(),
            member_id: dev.member_id.clone(),
            first_seen: dev.first_seen.rfc3339(),
            last_seen: dev.last_seen.rfc3339(),
            classification: class_name(m.classify(dev.mac, now)).to_string(),
            blocked: d.app.blocklist.manager().contains(dev.mac),
            wifi: clients
                .get(&dev.mac)
                .map(|a| if *a { "authorized" } else { "preauth" }),
        })
        .collect()
}

pub(super) fn class_name(c: Classification) -> &'static str {
    match c {
        Classification::Visitor => "visitor",
        Classification::Staff => "staff",
        Classification::Resident => "resident",
    }
}

/// `POST /api/devices/{mac}/{action}`; `rest` is `{mac}/{action}`.
pub(super) async fn action<B: crate::http::Body>(
    cx: &Cx<'_>,
    m: &Manager,
    rest: &str,
    req: Request<B>,
) -> Resp {
    let d = cx.d;
    let wants = match posted(m, req).await {
        Ok(wants) => wants,
        Err(refused) => return refused,
    };
    let Some((mac, action)) = rest.split_once('/') else {
        return json_error(StatusCode::NOT_FOUND, "POST /api/devices/{mac}/{action}");
    };
    let mac: MacAddr = match mac.parse() {
        Ok(m) => m,
        Err(_) => return json_error(StatusCode::BAD_REQUEST, "not a MAC address"),
    };
    let app = d.app.clone();
    let action = action.to_string();
    let done = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, String> {
        match action.as_str() {
            "sign-out" => app
                .sign_out(mac)
                .map(|was| serde_json::json!({"mac": mac, "was_authorized": was}))
                .map_err(|e| e.to_string()),
            "block" => app
                .block(mac, true)
                .map(|was| serde_json::json!({"mac": mac, "blocked": true, "was_authorized": was}))
                .map_err(|e| e.to_string()),
            "unblock" => app
                .block(mac, false)
                .map(|_| serde_json::json!({"mac": mac, "blocked": false}))
                .map_err(|e| e.to_string()),
            "staff" | "not-staff" => {
                let staff = action == "staff";
                app.set_staff(mac, staff);
                Ok(serde_json::json!({"mac": mac, "staff": staff}))
            }
            _ => Err(format!(
                "unknown action {:?}",
                action.chars().take(32).collect::<String>()
            )),
        }
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    d.live.refresh(&d.app.presence);
    match done {
        Ok(_) if wants == Wants::Page => see_other("/devices"),
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) if e.starts_with("unknown action") => json_error(StatusCode::NOT_FOUND, &e),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}
