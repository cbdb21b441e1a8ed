//! `GET /api/visits.csv?from=YYYY-MM-DD&to=YYYY-MM-DD`: visits by local
//! start date, from what the presence machine keeps, refused (`409`)
//! rather than shortened when older visits have been dropped.

use super::devices::class_name;
use super::*;
use crate::presence::Visit;
use crate::presence::local::local_date;
use crate::presence::visit::MAX_RECENT_VISITS;

/// Longest CSV date range, in days.
const MAX_CSV_DAYS: i64 = 366;

/// `YYYY-MM-DD` and nothing else.
fn parse_date(s: Option<&str>, key: &str) -> Result<jiff::civil::Date, String> {
    let s = s.ok_or_else(|| format!("{key}: missing (YYYY-MM-DD)"))?;
    let shape = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return Err(format!("{key}: not a date of the form YYYY-MM-DD"));
    }
    s.parse().map_err(|_| format!("{key}: not a calendar date"))
}

pub(super) fn visits_csv(cx: &Cx) -> Resp {
    let (d, query) = (cx.d, &cx.query);
    let range = parse_date(form::get(query, "from"), "from").and_then(|from| {
        let to = parse_date(form::get(query, "to"), "to")?;
        let days = (to - from).get_days();
        if to < from {
            Err("to: before from".to_string())
        } else if i64::from(days) > MAX_CSV_DAYS {
            Err(format!("the range is longer than {MAX_CSV_DAYS} days"))
        } else {
            Ok((from, to))
        }
    });
    let (from, to) = match range {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", e),
    };
    // Under the presence lock only to pick the visits; formatting after.
    let (mut visits, complete) = {
        let m = d.app.presence.machine();
        let tz = m.timezone();
        let complete = complete_from(m.visits(), tz);
        let visits: Vec<Visit> = m
            .visits()
            .filter(|v| {
                let day = local_date(v.started_at, tz);
                day >= from && day <= to
            })
            .cloned()
            .collect();
        (visits, complete)
    };
    if let Some(first) = complete
        && from < first
    {
        return text(
            StatusCode::CONFLICT,
            "text/plain; charset=utf-8",
            format!(
                "the box keeps only its last {MAX_RECENT_VISITS} ended visits and has \
                 dropped older ones: it has every visit from {first} on; ask for from={first} or later"
            ),
        );
    }
    visits.sort_by_key(|v| v.started_at);
    let mut out = String::from(
        "visit_id,mac,started_at,ended_at,dwell_seconds,classification,returning,member_id,os_family\r\n",
    );
    for v in visits {
        let row = [
            v.visit_id,
            v.mac.to_string(),
            v.started_at.rfc3339(),
            v.ended_at.map(Timestamp::rfc3339).unwrap_or_default(),
            v.dwell_seconds.to_string(),
            class_name(v.classification).to_string(),
            v.returning.to_string(),
            v.member_id.unwrap_or_default(),
            v.os_family,
        ];
        let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    let mut resp = text(StatusCode::OK, "text/csv; charset=utf-8", out);
    let name = format!("attachment; filename=\"visits-{from}-{to}.csv\"");
    if let Ok(v) = HeaderValue::from_str(&name) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The first local date from which `visits` (as the presence machine
/// keeps them: open ones, then the last [`MAX_RECENT_VISITS`] ended ones)
/// holds every visit, when older ones may have been dropped: `None` while
/// fewer than that many ended visits are kept (nothing dropped yet).
/// A dropped visit ended no later than the oldest kept one, so it started
/// on that visit's end date or before: from the next day on, nothing is
/// missing.
fn complete_from<'a>(
    visits: impl Iterator<Item = &'a Visit>,
    tz: &jiff::tz::TimeZone,
) -> Option<jiff::civil::Date> {
    let (ended, oldest_end) = visits
        .filter_map(|v| v.ended_at)
        .fold((0usize, None::<Timestamp>), |(n, oldest), t| {
            (n + 1, Some(oldest.map_or(t, |o| o.min(t))))
        });
    if ended < MAX_RECENT_VISITS {
        return None;
    }
    local_date(oldest_end?, tz).tomorrow().ok()
}

/// A CSV cell: quoted when needed; a leading `=`, `+`, `-` or `@` is
/// defused so a spreadsheet does not run it as a formula.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
