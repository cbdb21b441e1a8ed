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

import base64
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

URL, PASSWORD, BIN, SOCK, OUT = sys.argv[1:6]
MAC = "00:16:3e:aa:bb:01"


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


class Ws:
    """Just enough RFC 6455 for the DevTools protocol."""

    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.split(":")
        self.s = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.s.recv(1)
            if not chunk:
                raise IOError("websocket handshake: closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise IOError("websocket handshake: " + head.decode(errors="replace"))
        self.next_id = 0

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise IOError("websocket closed")
            buf += chunk
        return buf

    def send(self, text):
        data = text.encode()
        header = bytes([0x81])
        n = len(data)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            payload = self._recv_exact(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise IOError("websocket closed by the browser")
            if opcode in (0, 1, 2):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise IOError(f"{method}: {msg['error']}")
                return msg.get("result", {})


def main():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        fail("chromium not installed")
    profile = tempfile.mkdtemp(prefix="sg-chromium-")
    port_sock = socket.socket()
    port_sock.bind(("127.0.0.1", 0))
    port = port_sock.getsockname()[1]
    port_sock.close()
    browser = subprocess.Popen([
        chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--no-first-run",
        "--ignore-certificate-errors", "--window-size=1280,1000",
        f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
        "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run(port)
    finally:
        browser.kill()
        browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


def run(port):
    deadline = time.time() + 30
    targets = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                targets = [t for t in json.load(r) if t.get("type") == "page"]
            if targets:
                break
        except OSError:
            pass
        time.sleep(0.2)
    if not targets:
        fail("chromium's DevTools endpoint did not come up")
    ws = Ws(targets[0]["webSocketDebuggerUrl"])
    ws.call("Page.enable")
    ws.call("Runtime.enable")

    def js(expr):
        r = ws.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")

    def wait_for(expr, what, seconds=10):
        end = time.time() + seconds
        while time.time() < end:
            try:
                v = js(expr)
            except IOError:
                v = None
            if v:
                return v
            time.sleep(0.1)
        fail(f"timed out waiting for {what}; page: {js('location.href')}")

    def shot(name):
        data = ws.call("Page.captureScreenshot", format="png")["data"]
        os.makedirs(OUT, exist_ok=True)
        path = os.path.join(OUT, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        print(f"SCREENSHOT {path}", flush=True)

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
