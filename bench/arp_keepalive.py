#!/usr/bin/env python3
"""Keeps N made-up devices present: one ARP request from each every
INTERVAL seconds, for SECONDS seconds (for bench/footprint.sh).

usage: arp_keepalive.py IFACE N INTERVAL SECONDS
"""
import socket
import struct
import sys
import time

iface, n, interval, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
end = time.monotonic() + seconds
while time.monotonic() < end:
    start = time.monotonic()
    for i in range(n):
        mac = struct.pack("!BBI", 0x02, 0xbe, i)
        spa = bytes([192, 0, 2, 10 + i % 200])
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + spa + b"\0" * 6 + bytes([192, 0, 2, 1])
        s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
    time.sleep(max(0.0, interval - (time.monotonic() - start)))
