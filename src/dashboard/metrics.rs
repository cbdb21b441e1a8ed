//! `GET /metrics`: counters and gauges in the Prometheus text format
//! (version 0.0.4). Counts only: no MACs, no member ids.

use std::fmt::Write;

use super::Dashboard;

/// The metrics text.
pub fn render(d: &Dashboard) -> String {
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP storegate_{name} {help}");
        let _ = writeln!(out, "# TYPE storegate_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "storegate_{name}{labels} {v}");
        }
    };
    let portal = d.app.portal_stats.snapshot();
    let p = |k: &str| portal[k].as_u64().unwrap_or(0) as f64;
    metric(
        "portal_requests_total",
        "counter",
        "HTTP requests the portal answered.",
        &[("", p("requests"))],
    );
    metric(
        "portal_redirects_total",
        "counter",
        "Captured requests redirected to sign-in.",
        &[("", p("redirects"))],
    );
    metric(
        "portal_sign_ins_total",
        "counter",
        "Click-through sign-ins.",
        &[("", p("sign_ins"))],
    );
    metric(
        "portal_bad_requests_total",
        "counter",
        "Portal requests refused as malformed.",
        &[("", p("bad_requests"))],
    );
    metric(
        "portal_connections_over_client_cap_total",
        "counter",
        "Portal connections closed because their client had too many open.",
        &[("", p("connections_over_client_cap"))],
    );
    let (authorized, preauth) = d.app.gate.counts();
    metric(
        "clients",
        "gauge",
        "Clients known to the gate, by state.",
        &[
            ("{state=\"authorized\"}", authorized as f64),
            ("{state=\"preauth\"}", preauth as f64),
        ],
    );
    let frames = d.app.presence.stats();
    metric(
        "presence_frames_total",
        "counter",
        "LAN frames read by the capture.",
        &[("", frames.frames as f64)],
    );
    metric(
        "presence_sightings_total",
        "counter",
        "Frames that were a device sighting.",
        &[("", frames.sightings as f64)],
    );
    let malformed: Vec<(String, f64)> = frames
        .malformed
        .iter()
        .map(|(k, v)| {
            (
                format!("{{kind=\"{}\"}}", k.replace(['"', '\\', '\n'], "_")),
                *v as f64,
            )
        })
        .collect();
    let malformed: Vec<(&str, f64)> = if malformed.is_empty() {
        vec![("", 0.0)]
    } else {
        malformed.iter().map(|(k, v)| (k.as_str(), *v)).collect()
    };
    metric(
        "presence_malformed_total",
        "counter",
        "Malformed frames dropped, by kind.",
        &malformed,
    );
    let untracked = d.app.presence.machine().counters();
    metric(
        "presence_untracked_sightings_total",
        "counter",
        "Sightings of new devices not tracked, by reason.",
        &[
            (
                "{reason=\"table_full\"}",
                untracked
                    .untracked_sightings
                    .saturating_sub(untracked.rate_limited) as f64,
            ),
            ("{reason=\"rate_limited\"}", untracked.rate_limited as f64),
        ],
    );
    // From the live view's snapshot (taken again only when older than
    // [`super::live::POLL_EVERY`]), not recomputed under the presence lock
    // on every scrape.
    let (live, known) = d.live.fresh(&d.app.presence, super::live::POLL_EVERY);
    let present = live.data.present_now;
    metric(
        "present_now",
        "gauge",
        "Visitors in the store now (staff and residents excluded).",
        &[("", f64::from(present))],
    );
    metric(
        "devices_known",
        "gauge",
        "Devices the presence machine knows.",
        &[("", known as f64)],
    );
    let outbox = d.app.outbox.stats(d.app.clock.now());
    metric(
        "outbox_queued",
        "gauge",
        "Events waiting for HQ.",
        &[("", outbox.queued as f64)],
    );
    metric(
        "outbox_dropped_total",
        "counter",
        "Events dropped because the outbox was full.",
        &[("", outbox.dropped as f64)],
    );
    metric(
        "outbox_oldest_age_seconds",
        "gauge",
        "Age of the oldest waiting event (0 when empty).",
        &[("", outbox.oldest_age_seconds.unwrap_or(0) as f64)],
    );
    let delivery = d
        .app
        .delivery
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    metric(
        "delivery_delivered_total",
        "counter",
        "Events HQ acknowledged.",
        &[("", delivery.delivered as f64)],
    );
    metric(
        "delivery_retries_total",
        "counter",
        "Batches retried.",
        &[("", delivery.retries as f64)],
    );
    metric(
        "delivery_dead_lettered_total",
        "counter",
        "Events HQ refused (parked).",
        &[("", delivery.dead_lettered as f64)],
    );
    let bound = d
        .app
        .members
        .as_ref()
        .map(|m| m.bound_devices())
        .unwrap_or(0);
    metric(
        "members_bound_devices",
        "gauge",
        "Devices remembered for a member.",
        &[("", bound as f64)],
    );
    metric(
        "dashboard_sessions",
        "gauge",
        "Signed-in dashboard sessions.",
        &[("", d.auth.sessions.len() as f64)],
    );
    metric(
        "dashboard_event_streams",
        "gauge",
        "Open live-view event streams.",
        &[("", d.live.streams_open() as f64)],
    );
    out
}
