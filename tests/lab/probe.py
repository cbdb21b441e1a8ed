#!/usr/bin/env python3
"""Network probes for the storegate test lab (python3 stdlib only).

Run inside a client namespace; prints exactly one JSON object on one line.

    probe.py http URL [--timeout S] [--data BODY] [--host H]
                      [--method M] [--header 'Name: value']...
        Never follows redirects. {"result": "response", "status", "headers"
        (names lowercased), "body" (truncated), "elapsed_ms"}; on failure
        {"result": KIND, "error": KIND, "detail", "elapsed_ms"} with KIND one
        of refused, timeout, reset, closed, unreachable, other.
        --data sends a POST (unless --method says otherwise) with
        Content-Type application/x-www-form-urlencoded.
    probe.py tcp HOST PORT TIMEOUT
        {"result": connected|refused|timeout|reset|unreachable|other}
    probe.py udp HOST PORT TIMEOUT
        Sends one datagram, waits for it to come back.
        {"result": reply|timeout|refused|unreachable|other}
    probe.py dns NAME SERVER [--timeout S] [--type A|AAAA]
        A hand-built query over UDP; no resolv.conf involved.
        {"result": "answer", "rcode", "a": [...], "aaaa": [...]} or timeout.
    probe.py raw HOST PORT TIMEOUT
        Sends stdin as-is over TCP while reading; stops at a complete
        response, a close, a reset or the timeout.
        {"result": response|closed|reset|timeout|refused|..., "status",
         "data" (truncated, latin-1), "sent", "send_error"}

HOST may be an IPv6 literal, with or without brackets; URLs use brackets.
"""

import argparse
import errno
import http.client
import ipaddress
import json
import os
import random
import select
import socket
import struct
import sys
import time
import urllib.parse

BODY_LIMIT = 65536  # a welcome page carries an inline SVG QR code
START = time.monotonic()


def elapsed_ms():
    return round((time.monotonic() - START) * 1000.0, 1)


def emit(obj):
    obj.setdefault("elapsed_ms", elapsed_ms())
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def classify(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "reset"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "refused"
    return "other"


def failure(exc, **extra):
    kind = classify(exc)
    out = {"result": kind, "error": kind, "detail": "%s: %s" % (type(exc).__name__, exc)}
    out.update(extra)
    return out


def unbracket(host):
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def resolve(host, port, kind):
    host = unbracket(host)
    infos = socket.getaddrinfo(host, port, 0, kind)
    family, _, _, _, addr = infos[0]
    return family, addr


def cmd_http(args):
    url = urllib.parse.urlsplit(args.url)
    if url.scheme != "http":
        raise SystemExit("only http:// URLs are supported")
    port = url.port or 80
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    headers = {}
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    if args.host is not None:
        headers["Host"] = args.host
    body = None
    method = args.method
    if args.data is not None:
        body = args.data.encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        method = method or "POST"
    method = method or "GET"
    conn = http.client.HTTPConnection(url.hostname, port, timeout=args.timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    except Exception as exc:  # noqa: BLE001 - every failure is a result
        return failure(exc)
    finally:
        conn.close()
    out_headers = {}
    for name, value in resp.getheaders():
        name = name.lower()
        out_headers[name] = out_headers[name] + ", " + value if name in out_headers else value
    return {
        "result": "response",
        "status": resp.status,
        "reason": resp.reason,
        "headers": out_headers,
        "body": data[:BODY_LIMIT].decode("utf-8", "replace"),
        "body_len": len(data),
    }


def cmd_tcp(args):
    try:
        family, addr = resolve(args.host, args.port, socket.SOCK_STREAM)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(args.timeout)
        try:
            sock.connect(addr)
        finally:
            sock.close()
    except Exception as exc:  # noqa: BLE001
        return failure(exc)
    return {"result": "connected"}


def udp_exchange(host, port, payload, timeout, accept):
    """Sends one datagram to HOST:PORT and returns the first datagram back
    that ACCEPT takes, all within TIMEOUT; raises on a failure."""
    family, addr = resolve(host, port, socket.SOCK_DGRAM)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.connect(addr)
        sock.send(payload)
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = sock.recv(65535)
            if accept(data):
                return data
    finally:
        sock.close()


def cmd_udp(args):
    payload = ("lab-probe-%d" % random.getrandbits(48)).encode()
    try:
        udp_exchange(args.host, args.port, payload, args.timeout,
                     lambda data: data == payload)
    except Exception as exc:  # noqa: BLE001
        return failure(exc)
    return {"result": "reply"}


def dns_query(name, qtype):
    qid = random.getrandbits(16)
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        qname += bytes([len(raw)]) + raw
    qname += b"\x00"
    return qid, header + qname + struct.pack("!HH", qtype, 1)


def skip_name(msg, pos):
    while True:
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length


def cmd_dns(args):
    qtype = {"A": 1, "AAAA": 28}[args.type.upper()]
    qid, query = dns_query(args.name, qtype)
    try:
        msg = udp_exchange(
            args.server, 53, query, args.timeout,
            lambda m: len(m) >= 12 and struct.unpack("!H", m[:2])[0] == qid)
    except Exception as exc:  # noqa: BLE001
        return failure(exc)
    _, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", msg[:12])
    pos = 12
    for _ in range(qdcount):
        pos = skip_name(msg, pos) + 4
    a, aaaa = [], []
    for _ in range(ancount):
        pos = skip_name(msg, pos)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[pos:pos + 10])
        pos += 10
        rdata = msg[pos:pos + rdlen]
        pos += rdlen
        if rtype == 1 and rdlen == 4:
            a.append(str(ipaddress.IPv4Address(rdata)))
        elif rtype == 28 and rdlen == 16:
            aaaa.append(str(ipaddress.IPv6Address(rdata)))
    return {"result": "answer", "rcode": flags & 0xF, "a": a, "aaaa": aaaa}


def response_complete(buf):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    lines = head.split(b"\r\n")
    length = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return False
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        return body.endswith(b"0\r\n\r\n")
    if length is not None:
        return len(body) >= length
    status = lines[0].split(b" ")
    # 1xx/204/304 carry no body; otherwise the body runs to the close.
    return len(status) > 1 and (status[1].startswith(b"1") or status[1] in (b"204", b"304"))


def cmd_raw(args):
    data = sys.stdin.buffer.read()
    deadline = time.monotonic() + args.timeout
    try:
        family, addr = resolve(args.host, args.port, socket.SOCK_STREAM)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(args.timeout)
        sock.connect(addr)
    except Exception as exc:  # noqa: BLE001
        return failure(exc, sent=0)
    sock.setblocking(False)
    received = bytearray()
    sent = 0
    send_error = None
    result = "timeout"
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            want_write = sent < len(data) and send_error is None
            readable, writable, _ = select.select([sock], [sock] if want_write else [], [], remaining)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except (ConnectionResetError, ConnectionAbortedError):
                    result = "reset"
                    break
                except BlockingIOError:
                    chunk = None
                if chunk is not None:
                    if not chunk:
                        result = "closed"
                        break
                    received += chunk
                    if response_complete(bytes(received)):
                        result = "response"
                        break
            if writable:
                try:
                    sent += sock.send(data[sent:sent + 65536])
                except BlockingIOError:
                    pass
                except OSError as exc:
                    send_error = classify(exc)
    finally:
        sock.close()
    status = None
    if received.startswith(b"HTTP/"):
        parts = bytes(received).split(b"\r\n", 1)[0].split(b" ")
        if len(parts) > 1 and parts[1].isdigit():
            status = int(parts[1])
    if status is not None and result in ("closed", "reset", "timeout"):
        # A full or partial answer came before the end: report it.
        result = "response"
    return {
        "result": result,
        "status": status,
        "data": bytes(received[:BODY_LIMIT]).decode("latin-1"),
        "received": len(received),
        "sent": sent,
        "send_error": send_error,
    }


def main():
    parser = argparse.ArgumentParser(description="storegate lab probes")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("http")
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--data")
    p.add_argument("--host")
    p.add_argument("--method")
    p.add_argument("--header", action="append", default=[])
    p.set_defaults(func=cmd_http)

    for name, func in (("tcp", cmd_tcp), ("udp", cmd_udp), ("raw", cmd_raw)):
        p = sub.add_parser(name)
        p.add_argument("host")
        p.add_argument("port", type=int)
        p.add_argument("timeout", type=float)
        p.set_defaults(func=func)

    p = sub.add_parser("dns")
    p.add_argument("name")
    p.add_argument("server")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--type", default="A")
    p.set_defaults(func=cmd_dns)

    args = parser.parse_args()
    global START
    START = time.monotonic()
    emit(args.func(args))


if __name__ == "__main__":
    main()
