#!/usr/bin/env python3
"""Rejoin trials for a remembered member's phone (run by bench/members.sh,
inside the client's network namespace).

Each trial ends the phone's session over the control socket (as if it
left yesterday), drops its address, gets a new lease with busybox udhcpc
and at once sends its first HTTP request to the internet server. A
remembered member must be let in on the DHCP request, so that first
request must be answered by the server (200), never redirected to the
portal (302).

usage: rejoin.py CONTROL_SOCKET MAC TRIALS UDHCPC_SCRIPT SERVER_IP
"""
import json
import socket
import subprocess
import sys
import time

path, mac, trials, script, server = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]


def ctl(req):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall(json.dumps(req).encode() + b"\n")
        answer = json.loads(s.makefile().readline())
    if not answer.get("ok"):
        raise SystemExit(f"{req}: {answer}")


def first_request():
    try:
        with socket.create_connection((server, 80), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: " + server.encode() + b"\r\nConnection: close\r\n\r\n")
            line = s.makefile("rb").readline().decode(errors="replace")
            return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None


dhcp_ms, outcomes = [], {}
for _ in range(trials):
    ctl({"cmd": "deauth", "mac": mac})
    subprocess.run(["ip", "-4", "addr", "flush", "dev", "eth0"], check=True)
    t0 = time.monotonic()
    subprocess.run(
        ["busybox", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-i", "eth0", "-s", script],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    dhcp_ms.append((time.monotonic() - t0) * 1000)
    status = first_request()
    outcomes[status] = outcomes.get(status, 0) + 1

dhcp_ms.sort()
print(f"rejoin trials: {trials}")
print(f"first request answered by the internet server (200): {outcomes.get(200, 0)}")
print(f"first request redirected to the portal (302): {outcomes.get(302, 0)}")
others = {k: v for k, v in outcomes.items() if k not in (200, 302)}
if others:
    print(f"other outcomes: {others}")
print(f"DHCP exchange (udhcpc start -> bound): p50 {dhcp_ms[len(dhcp_ms) // 2]:.1f} ms, "
      f"p99 {dhcp_ms[int(len(dhcp_ms) * 0.99) - 1]:.1f} ms")
