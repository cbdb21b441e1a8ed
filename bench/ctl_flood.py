#!/usr/bin/env python3
"""Authorises N made-up clients over the control socket (for bench/memory.sh).

usage: ctl_flood.py CONTROL_SOCKET N
"""
import json
import socket
import sys

path, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    mac = "02:bf:%02x:%02x:%02x:%02x" % ((i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255)
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        s.sendall(json.dumps({"cmd": "auth", "mac": mac}).encode() + b"\n")
        answer = json.loads(s.makefile().readline())
        if not answer["ok"]:
            raise SystemExit(f"auth {mac}: {answer}")
