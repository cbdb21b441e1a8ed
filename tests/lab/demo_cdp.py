#!/usr/bin/env python3
"""Watches `storegate demo`'s dashboard in headless Chromium (DevTools
protocol, see cdp.py) the way a new user would.

usage: demo_cdp.py DASHBOARD_URL PASSWORD TODAY SECONDS OUT_DIR

Signs in; checks that history is there (a non-empty "same day last
week" series, people who came more than once); then watches the live
view, without reloading, for up to SECONDS: today's arrivals must spread
over at least five distinct hours, returning visitors must show, and the
arrival feed must show a member. Saves today's visits CSV (TODAY is
YYYY-MM-DD) and screenshots to OUT_DIR. Prints one line per step; exits 1
on the first failure.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, fail  # noqa: E402

URL, PASSWORD, TODAY, SECONDS, OUT = sys.argv[1:6]

# Per-hour bars of a series ("today" or "last") as {hour: n}.
SERIES = """(function (cls) {
  var out = {};
  document.querySelectorAll('svg.hours rect.' + cls).forEach(function (r) {
    var t = (r.querySelector('title') || {}).textContent || '';
    var m = /^(\\d+):00 (\\d+)$/.exec(t);
    if (m && +m[2] > 0) { out[m[1]] = +m[2]; }
  });
  return out;
})"""


def number(page, key):
    v = page.js(f"(document.querySelector('[data-key=\"{key}\"] .n')||{{}}).textContent")
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def main():
    with Browser() as page:
        run(page)


def run(page):
    page.navigate(URL + "/")
    page.wait_for("location.pathname === '/login' && !!document.getElementById('password')",
                  "the sign-in page")
    page.js(f"document.getElementById('password').value = {json.dumps(PASSWORD)};"
            "document.querySelector('form').submit(); true")
    page.wait_for("location.pathname === '/' && !!document.getElementById('present-now')",
                  "the live view after sign-in")
    print("SIGNED_IN", flush=True)
    page.js("window.__noReload = 42; true")

    last = page.js(SERIES + "('last')") or {}
    if sum(last.values()) == 0:
        fail(f"'same day last week' is empty: {last}")
    print(f"LAST_WEEK hours={len(last)} arrivals={sum(last.values())}", flush=True)
    repeat = sum(number(page, k) or 0 for k in
                 ("dash_freq_twice", "dash_freq_3_5", "dash_freq_6"))
    if repeat == 0:
        fail("every visitor came once: no history")
    print(f"FREQUENCY came_again={repeat} once={number(page, 'dash_freq_once')}", flush=True)
    page.shot(OUT, "demo-opening.png")

    end = time.time() + float(SECONDS)
    hours, returning, member = {}, 0, False
    while time.time() < end:
        hours = page.js(SERIES + "('today')") or {}
        returning = number(page, "dash_returning") or 0
        member = bool(page.js("!!document.querySelector('#live .feed .tag')"))
        if len(hours) >= 5 and returning > 0 and member:
            break
        time.sleep(0.5)
    if page.js("window.__noReload") != 42:
        fail("the page was reloaded")
    if len(hours) < 5:
        fail(f"today's arrivals are in {len(hours)} hours after {SECONDS} s: {hours}")
    print(f"HOURS today={len(hours)} {json.dumps(hours, sort_keys=True)}", flush=True)
    if returning == 0:
        fail("no returning visitors today")
    print(f"RETURNING {returning}", flush=True)
    if not member:
        fail("no member in the arrival feed")
    print("MEMBER_ARRIVAL in the feed", flush=True)
    page.shot(OUT, "demo-live.png")

    text = page.js(f"fetch('/api/visits.csv?from={TODAY}&to={TODAY}')"
                   ".then(function (r) { return r.text(); })", await_promise=True)
    if not text or not text.startswith("visit_id,"):
        fail(f"no CSV: {text!r}")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "visits.csv"), "w") as f:
        f.write(text)
    print(f"CSV rows={len(text.splitlines()) - 1}", flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
