#!/usr/bin/env python3
"""Bulk TCP traffic for bench/presence.sh.

  bulk.py recv PORT SECONDS      print bytes received
  bulk.py send HOST PORT SECONDS
"""
import socket
import sys
import time

mode = sys.argv[1]
if mode == "recv":
    port, secs = int(sys.argv[2]), float(sys.argv[3])
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    conn, _ = srv.accept()
    total, end = 0, time.monotonic() + secs + 5
    while time.monotonic() < end:
        b = conn.recv(1 << 20)
        if not b:
            break
        total += len(b)
    print(total)
else:
    host, port, secs = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    s = socket.create_connection((host, port))
    buf = b"\0" * (1 << 20)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        s.sendall(buf)
    s.close()
