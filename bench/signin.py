#!/usr/bin/env python3
"""Sign-in -> first forwarded packet, run inside a client namespace.

Each trial: the client is signed out (over the control socket, untimed),
then POSTs the click-through form and, the moment the 303 arrives, opens
a TCP connection to the internet server. The time from sending the POST
to the completed handshake is "sign-in -> traffic flows". As a baseline
in the same run, the handshake alone is timed while signed in. The form
carries the portal's per-client token, read from GET /login (untimed).

usage: signin.py CONTROL_SOCKET CLIENT_MAC TRIALS
"""
import json
import re
import socket
import statistics
import sys
import time

PORTAL = ("192.0.2.1", 2050)
INTERNET = ("198.51.100.2", 8080)


def token():
    """The hidden csrf field of the sign-in page, as this client gets it."""
    with socket.create_connection(PORTAL, timeout=2) as s:
        s.sendall(b"GET /login HTTP/1.1\r\nHost: 192.0.2.1:2050\r\nConnection: close\r\n\r\n")
        page = b""
        while chunk := s.recv(65536):
            page += chunk
    m = re.search(rb'name="csrf" value="([A-Za-z0-9_-]+)"', page)
    if not m:
        raise SystemExit(f"no csrf field on the sign-in page: {page[:200]!r}")
    return m.group(1)


def request(csrf):
    form = b"accept_terms=yes&csrf=" + csrf
    return (
        b"POST /login HTTP/1.1\r\nHost: 192.0.2.1:2050\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(form)).encode() + b"\r\nConnection: close\r\n\r\n" + form
    )


def ctl(sock_path, request):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock_path)
        s.sendall(json.dumps(request).encode() + b"\n")
        answer = json.loads(s.makefile().readline())
    if not answer["ok"]:
        raise SystemExit(f"ctl {request}: {answer}")


def handshake(timeout=1.0):
    t = time.perf_counter()
    with socket.create_connection(INTERNET, timeout=timeout):
        return time.perf_counter() - t


def sign_in(req):
    t0 = time.perf_counter()
    with socket.create_connection(PORTAL, timeout=2) as s:
        s.sendall(req)
        head = s.recv(4096)
    answered = time.perf_counter()
    if not head.startswith(b"HTTP/1.1 303"):
        raise SystemExit(f"sign-in failed: {head[:200]!r}")
    with socket.create_connection(INTERNET, timeout=1.0):
        flowing = time.perf_counter()
    return answered - t0, flowing - t0


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, round((len(s) - 1) * p))]


def main():
    sock_path, mac, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    answered, flowing, baseline = [], [], []
    for _ in range(trials):
        ctl(sock_path, {"cmd": "deauth", "mac": mac})
        a, f = sign_in(request(token()))
        answered.append(a * 1e3)
        flowing.append(f * 1e3)
        baseline.append(handshake() * 1e3)
    for name, v in [("sign-in answered", answered), ("sign-in -> traffic flows", flowing),
                    ("baseline: handshake while signed in", baseline)]:
        print(f"{name:38s} n={len(v)} p50={statistics.median(v):.2f} ms p99={pct(v, 0.99):.2f} ms max={max(v):.2f} ms")
    print(f"ratio p50 (sign-in -> flows) / (handshake): {statistics.median(flowing) / statistics.median(baseline):.1f}")


if __name__ == "__main__":
    main()
