#!/usr/bin/env python3
"""Event created -> verified and printed at HQ, with the default batching.

Starts `storegate hq-receiver` and `storegate run` (no enforcement, on
loopback: no root needed), then N times: authorises a new client over the
control socket (which stores a session.authorized event) and times until
the receiver prints it. Baseline in the same run: the control request
alone (which includes the outbox fsync).

usage: hq_latency.py STOREGATE_BINARY N
"""
import json, os, select, socket, statistics, subprocess, sys, tempfile, time

binary, n = sys.argv[1], int(sys.argv[2])
secret = "whsec_c3RvcmVnYXRlLWJlbmNobWFyay1rZXktMTIzNDU2"

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

tmp = tempfile.mkdtemp()
hq_port, portal_port = free_port(), free_port()
recv = subprocess.Popen([binary, "hq-receiver", "--listen", f"127.0.0.1:{hq_port}", "--secret", secret],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
cfg = os.path.join(tmp, "sg.toml")
sock = os.path.join(tmp, "control.sock")
open(cfg, "w").write(f"""[store]\nid = "bench"\n[lan]\ninterface = "lo"\n[portal]\nlisten = "127.0.0.1:{portal_port}"
[firewall]\nbackend = "none"\n[storage]\npath = "{tmp}/state"\n[control]\nsocket = "{sock}"
[hq]\nurl = "http://127.0.0.1:{hq_port}"\nsecret = "{secret}"\n""")
daemon = subprocess.Popen([binary, "run", "-c", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    time.sleep(0.3)

    def ctl(req):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(sock); s.sendall(json.dumps(req).encode() + b"\n"); return s.makefile().readline()

    buf = b""
    def next_line(deadline):
        global buf
        while b"\n" not in buf:
            r, _, _ = select.select([recv.stdout], [], [], max(0, deadline - time.monotonic()))
            if not r:
                return None
            buf += os.read(recv.stdout.fileno(), 65536)
        line, buf = buf.split(b"\n", 1)
        return line

    at_hq, stored = [], []
    for i in range(n):
        mac = "02:be:%02x:%02x:00:01" % (i >> 8, i & 255)
        t0 = time.monotonic()
        ctl({"cmd": "auth", "mac": mac})
        t1 = time.monotonic()
        line = next_line(t0 + 10)
        t2 = time.monotonic()
        if line is None:
            raise SystemExit(f"trial {i}: no event at HQ within 10 s")
        stored.append((t1 - t0) * 1e3); at_hq.append((t2 - t0) * 1e3)
        time.sleep(0.02)
    pct = lambda v, p: sorted(v)[min(len(v) - 1, round((len(v) - 1) * p))]
    for name, v in [("event created -> printed at HQ", at_hq), ("baseline: event created and stored (ctl)", stored)]:
        print(f"{name:42s} n={len(v)} p50={statistics.median(v):.1f} ms p99={pct(v, 0.99):.1f} ms max={max(v):.1f} ms")
finally:
    daemon.terminate(); recv.terminate(); daemon.wait(); recv.wait()
