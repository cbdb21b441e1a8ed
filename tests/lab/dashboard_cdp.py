#!/usr/bin/env python3
"""Drives headless Chromium through the store dashboard over the DevTools
protocol (a tiny websocket client: standard library only).

usage: dashboard_cdp.py URL PASSWORD STOREGATE_BIN CONTROL_SOCKET OUT_DIR

Signs in, checks "present now", makes a device join with `storegate ctl
observe`, checks the number changes without a reload (server-sent events),
marks the device as staff on the devices page and checks it leaves the
footfall. Screenshots go to OUT_DIR. Prints one line per step; exits 1 on
the first failure.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, fail  # noqa: E402

URL, PASSWORD, BIN, SOCK, OUT = sys.argv[1:6]
MAC = "00:16:3e:aa:bb:01"


def main():
    with Browser() as page:
        run(page)


def run(page):
    js, wait_for = page.js, page.wait_for
    ws = page.ws

    def shot(name):
        page.shot(OUT, name)

    def present():
        return js("(document.getElementById('present-now')||{}).textContent")

    # Pages without a session redirect to sign-in.
    ws.call("Page.navigate", url=URL + "/")
    wait_for("location.pathname === '/login' && !!document.getElementById('password')",
             "the sign-in page")
    print("REDIRECTED to /login", flush=True)
    js(f"document.getElementById('password').value = {json.dumps(PASSWORD)};"
       "document.querySelector('form').submit(); true")
    wait_for("location.pathname === '/' && !!document.getElementById('present-now')",
             "the live view after sign-in")
    wait_for("document.cookie.indexOf('sg_session') === -1", "an HttpOnly session cookie")
    before = present()
    print(f"SIGNED_IN present_now={before}", flush=True)
    if before != "0":
        fail(f"present now should start at 0, not {before}")
    # Anything a reload would wipe.
    js("window.__noReload = 42; true")
    wait_for("(document.getElementById('live')||{}).dataset && "
             "document.getElementById('live').dataset.seq !== undefined", "the live section")
    time.sleep(0.5)  # let the event stream connect
    t0 = time.time()
    subprocess.run([BIN, "ctl", "-s", SOCK, "observe", MAC, "--ip", "192.0.2.61",
                    "--hostname", "<b>shopper-phone</b>"], check=True,
                   stdout=subprocess.DEVNULL)
    wait_for("(document.getElementById('present-now')||{}).textContent === '1'",
             "present now to reach 1 without a reload", seconds=5)
    took = time.time() - t0
    if js("window.__noReload") != 42:
        fail("the page was reloaded")
    if not js("document.getElementById('live').innerHTML.indexOf('&lt;b&gt;shopper-phone') >= 0"):
        fail("the host name is missing from the feed, or not escaped")
    print(f"LIVE present_now=1 after {took:.2f}s without reload", flush=True)
    shot("dashboard-live.png")

    ws.call("Page.navigate", url=URL + "/devices")
    row = f"document.querySelector('tr[data-mac=\"{MAC}\"]')"
    wait_for(f"!!{row}", "the device on the devices page")
    js(f"{row}.querySelector('button[data-action=\"staff\"]').click(); true")
    wait_for(f"location.pathname === '/devices' && !!{row} && "
             f"!!{row}.querySelector('button[data-action=\"not-staff\"]')",
             "the device marked as staff")
    print("MARKED_STAFF", flush=True)
    shot("dashboard-devices.png")
    ws.call("Page.navigate", url=URL + "/")
    wait_for("(document.getElementById('present-now')||{}).textContent === '0'",
             "present now back to 0 after marking staff")
    print("STAFF_LEFT_FOOTFALL present_now=0", flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
