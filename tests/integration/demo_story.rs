//! `storegate demo` as a new user meets it, with its history: headless
//! Chromium on the dashboard (`tests/lab/demo_cdp.py`) sees last week and
//! returning visitors at once, and today's arrivals spread over the hours
//! as the simulated day runs; a member's arrival becomes a targeted
//! message at the in-process HQ; and the simulated clock never mixes with
//! the wall clock: every time in `ctl visits`, in the events HQ received
//! and in the CSV lies in the simulated days (`--date` puts them years
//! away from the wall clock, so a wall-clock time could not hide).
//!
//! Needs `chromium` (scripts/test.sh installs it as root); skipped only
//! when it is missing and we are not root.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::ctl::ctl_at as ctl;
use crate::harness::demo::port_of;
use crate::harness::process::chromium_or_skip;

/// The simulated today: far from the wall clock on purpose.
const TODAY: &str = "2031-03-14";
/// Five weeks before it, the first day of history.
const FIRST_DAY: &str = "2031-02-07";
/// The demo's store zone (its config's default, Asia/Shanghai).
const OFFSET_HOURS: i64 = 8;

/// Milliseconds since the epoch of an RFC 3339 time (with `Z`).
fn ms(t: &str) -> i64 {
    let ts: jiff::Timestamp = t.parse().unwrap_or_else(|e| panic!("{t:?}: {e}"));
    ts.as_millisecond()
}

/// When local day `date` opens (10:00 in the store's zone), in ms.
fn opening(date: &str) -> i64 {
    ms(&format!("{date}T10:00:00+0{OFFSET_HOURS}:00"))
}

#[test]
fn demo_tells_the_story_in_a_browser() {
    let _cpu = crate::heavy();
    if !chromium_or_skip() {
        return;
    }
    // Default state directory (in memory where it can be), as a user runs it.
    let demo = crate::harness::demo::start(
        &["--speed", "1200", "--seed", "5", "--date", TODAY],
        Duration::from_secs(60),
    );
    let (mut proc, banner, lines) = (demo.proc, demo.banner, demo.lines);
    eprintln!("demo ready after {:?}: {lines:#?}", demo.ready_after);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("35 days of history played")),
        "{lines:?}"
    );
    let state = Path::new(&banner["state"]).to_path_buf();
    let socket = state.join("control.sock");
    let dashboard = &banner["dashboard"];
    assert!(dashboard.starts_with("https://127.0.0.1:"), "{lines:?}");

    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-browser");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/demo_cdp.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dashboard.trim_end_matches('/'))
        .arg(&banner["password"])
        .arg(TODAY)
        .arg("60")
        .arg(&out_dir)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("DONE"),
        "browser run failed"
    );
    for step in [
        "LAST_WEEK",
        "FREQUENCY",
        "HOURS",
        "RETURNING",
        "MEMBER_ARRIVAL",
        "CSV",
    ] {
        assert!(stdout.contains(step), "missing step {step}");
    }

    // What the box and HQ say, then the simulated now: read last, it bounds
    // every business time read before it.
    let visits = ctl(&socket, &["visits"]).unwrap();
    let visits = visits.as_array().unwrap();
    let events = std::fs::read_to_string(state.join("hq-events.jsonl")).unwrap();
    let csv = std::fs::read_to_string(out_dir.join("visits.csv")).unwrap();
    let port = port_of(&banner["messages"]);
    let (code, reply) = crate::harness::loopback::http(port, "GET", "/messages.json", "");
    let status = ctl(&socket, &["status"]).unwrap();
    assert_eq!(status["clock"]["simulated"], true, "{status}");
    let now = ms(status["clock"]["now"].as_str().unwrap());
    let today_open = opening(TODAY);
    assert!(now > today_open, "{status}");
    let first = opening(FIRST_DAY) - 3_600_000; // members enrolled an hour before
    let within = |t: &str, what: &str| {
        let t = ms(t);
        assert!(
            (first..=now).contains(&t),
            "{what}: {t} is outside the simulated days {first}..={now}"
        );
    };

    // ctl visits: within the simulated days, each in its day's opening
    // hours (closing plus the time presence takes to see a phone gone).
    assert!(visits.len() > 100, "{} visits", visits.len());
    let day_ms = 86_400_000;
    for v in visits {
        let started = v["started_at"].as_str().unwrap();
        within(started, "visits started_at");
        if let Some(ended) = v["ended_at"].as_str() {
            within(ended, "visits ended_at");
            assert!(ms(ended) >= ms(started), "{v}");
        }
        let since_first = ms(started) - opening(FIRST_DAY);
        let into_day = since_first.rem_euclid(day_ms);
        assert!(
            into_day <= 12 * 3_600_000 + 15 * 60_000 || v["classification"] != "visitor",
            "a visit outside opening hours: {v}"
        );
    }

    // HQ's events: every `time` within the simulated days.
    let mut n = 0;
    for line in events.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        if let Some(t) = e["time"].as_str() {
            within(t, &format!("event {}", e["type"]));
            n += 1;
        }
    }
    assert!(n > 1000, "{n} events at HQ");

    // The CSV the browser downloaded: today's visits, today's times.
    let mut rows = 0;
    for row in csv.lines().skip(1) {
        let cols: Vec<&str> = row.split(',').collect();
        let (started, ended) = (cols[2], cols[3]);
        assert!(ms(started) >= today_open && ms(started) <= now, "{row}");
        if !ended.is_empty() {
            assert!(ms(ended) >= ms(started) && ms(ended) <= now, "{row}");
        }
        rows += 1;
    }
    assert!(rows > 10, "{rows} CSV rows");

    // The loop: members' arrivals today became targeted messages at HQ,
    // each for an arrival today.
    assert_eq!(code, 200, "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("");
    let messages: Value = serde_json::from_str(body.trim()).unwrap();
    let messages = messages.as_array().unwrap();
    assert!(!messages.is_empty(), "no targeted message: {reply}");
    for m in messages {
        let at = ms(m["arrival"].as_str().unwrap());
        assert!(at >= today_open && at <= now, "{m}");
    }

    crate::harness::demo::interrupt(&mut proc, demo.log);
    // The temporary state is gone with the demo.
    assert!(!state.exists(), "{} left behind", state.display());
}
