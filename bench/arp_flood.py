#!/usr/bin/env python3
"""Sends one ARP request from each of N made-up MACs (for bench/presence.sh).

usage: arp_flood.py IFACE N
"""
import socket
import struct
import sys
import time

iface, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
for i in range(n):
    mac = struct.pack("!BBI", 0x02, 0xbf, i)
    spa = bytes([192, 0, 2, 100 + i % 100])
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + spa + b"\0" * 6 + bytes([192, 0, 2, 1])
    s.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
    if i % 200 == 199:
        time.sleep(0.01)  # let the daemon keep up; this measures memory, not bursts
