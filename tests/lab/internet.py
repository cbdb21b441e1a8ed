#!/usr/bin/env python3
"""The "internet" of the storegate test lab (python3 stdlib only).

Run inside the internet namespace:

    internet.py READY_FILE

Serves, on every address (IPv4 and IPv6, one dual-stack socket each):
  * HTTP on ports 80 and 8080: any method, any path, body
    "hello from the internet\n" (HEAD: headers only);
  * TCP on port 443: accepts, then closes (no TLS);
  * UDP on port 9999: echoes every datagram back to its sender.

When every socket is listening it writes READY_FILE (atomically, via a
rename), so the harness can wait for that file instead of sleeping.
Requests are logged to stderr.
"""

import http.server
import os
import socket
import socketserver
import sys
import threading

BODY = b"hello from the internet\n"


def dual_stack(kind):
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return sock


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lab-internet/1"

    def _answer(self, with_body):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(BODY)

    def do_GET(self):
        self._answer(True)

    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET

    def do_HEAD(self):
        self._answer(False)

    def log_message(self, fmt, *args):
        sys.stderr.write("http %s:%d %s\n" % (
            self.client_address[0], self.server.server_address[1], fmt % args))
        sys.stderr.flush()


class HttpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve_http(port):
    server = HttpServer(("::", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def serve_accept_close(port):
    sock = dual_stack(socket.SOCK_STREAM)
    sock.bind(("::", port))
    sock.listen(128)

    def loop():
        while True:
            conn, peer = sock.accept()
            sys.stderr.write("tcp %s:%d accepted\n" % (peer[0], port))
            sys.stderr.flush()
            conn.close()

    threading.Thread(target=loop, daemon=True).start()


def serve_udp_echo(port):
    sock = dual_stack(socket.SOCK_DGRAM)
    sock.bind(("::", port))

    def loop():
        while True:
            data, peer = sock.recvfrom(65535)
            sock.sendto(data, peer)

    threading.Thread(target=loop, daemon=True).start()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: internet.py READY_FILE")
    ready = sys.argv[1]
    serve_http(80)
    serve_http(8080)
    serve_accept_close(443)
    serve_udp_echo(9999)
    tmp = ready + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(tmp, ready)
    sys.stderr.write("internet ready\n")
    sys.stderr.flush()
    threading.Event().wait()


if __name__ == "__main__":
    main()
