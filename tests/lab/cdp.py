"""Headless Chromium over the DevTools protocol, for the browser tests
(a tiny websocket client: standard library only).

    with Browser() as page:
        page.navigate(url)
        page.wait_for("!!document.getElementById('x')", "the page")
        value = page.js("1 + 1")
        page.shot(out_dir, "name.png")
"""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request


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


class Page:
    """One page of the browser: evaluate, wait, navigate, screenshot."""

    def __init__(self, ws):
        self.ws = ws

    def js(self, expr, await_promise=False):
        r = self.ws.call("Runtime.evaluate", expression=expr, returnByValue=True,
                         awaitPromise=await_promise)
        return r.get("result", {}).get("value")

    def wait_for(self, expr, what, seconds=10):
        end = time.time() + seconds
        while time.time() < end:
            try:
                v = self.js(expr)
            except IOError:
                v = None
            if v:
                return v
            time.sleep(0.1)
        fail(f"timed out waiting for {what}; page: {self.js('location.href')}")

    def navigate(self, url):
        self.ws.call("Page.navigate", url=url)

    def shot(self, out_dir, name):
        data = self.ws.call("Page.captureScreenshot", format="png")["data"]
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        print(f"SCREENSHOT {path}", flush=True)


class Browser:
    """Starts headless Chromium with a throwaway profile; the context
    value is its first page."""

    def __enter__(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            fail("chromium not installed")
        self.profile = tempfile.mkdtemp(prefix="sg-chromium-")
        port_sock = socket.socket()
        port_sock.bind(("127.0.0.1", 0))
        port = port_sock.getsockname()[1]
        port_sock.close()
        self.proc = subprocess.Popen([
            chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--no-first-run",
            "--ignore-certificate-errors", "--window-size=1280,1000",
            f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}",
            "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        targets = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                            timeout=2) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        if not targets:
            self.__exit__(None, None, None)
            fail("chromium's DevTools endpoint did not come up")
        ws = Ws(targets[0]["webSocketDebuggerUrl"])
        ws.call("Page.enable")
        ws.call("Runtime.enable")
        return Page(ws)

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
        return False
