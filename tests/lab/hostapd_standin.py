#!/usr/bin/env python3
"""A stand-in for hostapd's control interface, for tests on machines
without a Wi-Fi radio.

    hostapd_standin.py --ctrl SOCKET --ssid SSID --psk-file FILE

SOCKET: the control interface, a Unix datagram socket (a stale file at that
path is replaced, as hostapd does). It speaks hostapd's protocol: one
command per datagram, one answer per command, answers ending in a newline:

    PING                 PONG
    ATTACH / DETACH      OK (DETACH of a client not attached: FAIL); attached
                         clients receive unsolicited events:
                         <3>AP-STA-CONNECTED <mac>[ keyid=<id>]
                         <3>AP-STA-DISCONNECTED <mac>
    RELOAD_WPA_PSK       OK, the PSK file read again (FAIL if it is invalid;
                         the keys read before stay)
    STA-FIRST            the first station: its MAC, then key=value lines
    STA-NEXT <mac>       the station after <mac>; FAIL when there is none
    DEAUTHENTICATE <mac> OK; the station, if there, leaves (AP-STA-DISCONNECTED)
    anything else        UNKNOWN COMMAND

FILE is read as hostapd reads its wpa_psk_file: '#' comments and blank lines
skipped; each line `[keyid=<id>] [vlanid=<n>] [wps=0|1] <mac> <psk>`, the PSK
either 64 hex digits or an 8 to 63 character passphrase (turned into a PSK
with PBKDF2-HMAC-SHA1 over the SSID, 4096 rounds, 32 bytes). A key id is at
most 31 characters, as in hostapd. An invalid file at start: exit status 2.

The test drives the radio side through stdin, one command a line, each
answered with one line on stdout ("ready" is printed once the socket is
bound):

    join <mac> <passphrase>  the phone's PSK computed from the passphrase and
                             the SSID; joined (and AP-STA-CONNECTED sent) if
                             it equals the PSK of a line for that MAC or for
                             00:00:00:00:00:00: answers "joined <keyid or ->",
                             otherwise "refused"
    leave <mac>              "left" (AP-STA-DISCONNECTED sent) or "unknown"
    state                    JSON: stations, attached clients, commands seen
    quit                     exits

Only the Python standard library is used.
"""

import argparse
import binascii
import hashlib
import json
import os
import re
import select
import socket
import sys

MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
ANY_MAC = "00:00:00:00:00:00"
KEYID_MAX = 31  # hostapd keeps key ids in a 32-byte buffer


def pmk(passphrase, ssid):
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32)


class BadFile(Exception):
    pass


def read_psk_file(path, ssid):
    """[(mac, keyid or None, psk bytes)] in file order."""
    entries = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("#") or line == "":
                continue
            keyid = None
            rest = line
            while True:
                word, _, after = rest.partition(" ")
                if "=" not in word:
                    break
                name, _, value = word.partition("=")
                if name == "keyid":
                    if len(value) > KEYID_MAX:
                        raise BadFile(f"line {number}: keyid too long")
                    keyid = value or None
                elif name in ("vlanid", "wps"):
                    if not value.isdigit():
                        raise BadFile(f"line {number}: bad {name}")
                else:
                    raise BadFile(f"line {number}: unknown {name}=")
                rest = after
            mac, _, secret = rest.partition(" ")
            if not MAC_RE.match(mac):
                raise BadFile(f"line {number}: bad MAC")
            if len(secret) == 64 and all(c in "0123456789abcdefABCDEF" for c in secret):
                psk = binascii.unhexlify(secret)
            elif 8 <= len(secret) <= 63:
                psk = pmk(secret, ssid)
            else:
                raise BadFile(f"line {number}: bad PSK")
            entries.append((mac.lower(), keyid, psk))
    return entries


class Standin:
    def __init__(self, ctrl, ssid, psk_file):
        self.ssid = ssid
        self.psk_file = psk_file
        self.psks = read_psk_file(psk_file, ssid)
        self.stations = []  # [(mac, keyid)] in join order
        self.attached = []  # client addresses
        self.counts = {"RELOAD_WPA_PSK": 0, "DEAUTHENTICATE": 0, "ATTACH": 0, "PING": 0}
        self.deauthenticated = []
        if os.path.exists(ctrl):
            os.unlink(ctrl)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(ctrl)

    # -- the control interface --------------------------------------------

    def command(self, text):
        words = text.strip().split(" ")
        cmd, args = words[0], words[1:]
        if cmd == "PING":
            self.counts["PING"] += 1
            return "PONG"
        if cmd == "RELOAD_WPA_PSK":
            self.counts["RELOAD_WPA_PSK"] += 1
            try:
                self.psks = read_psk_file(self.psk_file, self.ssid)
            except (OSError, BadFile) as e:
                print(f"standin: reload: {e}", file=sys.stderr)
                return "FAIL"
            return "OK"
        if cmd == "STA-FIRST":
            return self.sta(0)
        if cmd == "STA-NEXT" and len(args) == 1:
            macs = [m for m, _ in self.stations]
            mac = args[0].lower()
            return self.sta(macs.index(mac) + 1) if mac in macs else "FAIL"
        if cmd == "DEAUTHENTICATE" and len(args) >= 1 and MAC_RE.match(args[0]):
            self.counts["DEAUTHENTICATE"] += 1
            mac = args[0].lower()
            self.deauthenticated.append(mac)
            self.remove(mac)
            return "OK"
        return "UNKNOWN COMMAND"

    def sta(self, index):
        if index >= len(self.stations):
            return "FAIL"
        mac, keyid = self.stations[index]
        lines = [mac, "flags=[AUTH][ASSOC][AUTHORIZED]", f"aid={index + 1}",
                 "capability=0x1431", "listen_interval=10", "rx_packets=5",
                 "tx_packets=3", "connected_time=1"]
        if keyid is not None:
            lines.append(f"keyid={keyid}")
        return "\n".join(lines)

    def on_datagram(self, data, peer):
        text = data.decode("utf-8", "replace")
        if text.startswith("ATTACH"):
            self.counts["ATTACH"] += 1
            if peer not in self.attached:
                self.attached.append(peer)
            answer = "OK"
        elif text.strip() == "DETACH":
            answer = "OK" if peer in self.attached else "FAIL"
            if peer in self.attached:
                self.attached.remove(peer)
        else:
            answer = self.command(text)
        if peer:
            try:
                self.sock.sendto((answer + "\n").encode(), peer)
            except OSError:
                pass

    def event(self, text):
        for peer in list(self.attached):
            try:
                self.sock.sendto(f"<3>{text}".encode(), peer)
            except OSError:
                # As hostapd does: a client it cannot reach is forgotten.
                self.attached.remove(peer)

    # -- the radio side ---------------------------------------------------

    def remove(self, mac):
        before = len(self.stations)
        self.stations = [(m, k) for m, k in self.stations if m != mac]
        if len(self.stations) != before:
            self.event(f"AP-STA-DISCONNECTED {mac}")
            return True
        return False

    def join(self, mac, passphrase):
        mac = mac.lower()
        if not MAC_RE.match(mac):
            return "refused"
        key = pmk(passphrase, self.ssid)
        for entry_mac, keyid, psk in self.psks:
            if entry_mac in (ANY_MAC, mac) and psk == key:
                self.remove(mac)
                self.stations.append((mac, keyid))
                suffix = f" keyid={keyid}" if keyid is not None else ""
                self.event(f"AP-STA-CONNECTED {mac}{suffix}")
                return f"joined {keyid if keyid is not None else '-'}"
        return "refused"

    def driver(self, line):
        words = line.split(" ", 2)
        if words[0] == "join" and len(words) == 3:
            return self.join(words[1], words[2])
        if words[0] == "leave" and len(words) == 2:
            return "left" if self.remove(words[1].lower()) else "unknown"
        if words[0] == "state":
            return json.dumps({
                "stations": [{"mac": m, "keyid": k} for m, k in self.stations],
                "attached": len(self.attached),
                "attach": self.counts["ATTACH"],
                "ping": self.counts["PING"],
                "reload_wpa_psk": self.counts["RELOAD_WPA_PSK"],
                "deauthenticate": self.counts["DEAUTHENTICATE"],
                "deauthenticated": self.deauthenticated,
                "psks": len(self.psks),
            })
        return "error: unknown command"

    def serve(self):
        print("ready", flush=True)
        pending = b""
        while True:
            readable, _, _ = select.select([self.sock, sys.stdin.fileno()], [], [])
            if self.sock in readable:
                data, peer = self.sock.recvfrom(4096)
                self.on_datagram(data, peer)
            if sys.stdin.fileno() in readable:
                chunk = os.read(sys.stdin.fileno(), 4096)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    line = line.decode("utf-8", "replace").rstrip("\r")
                    if line == "quit":
                        return
                    if line:
                        print(self.driver(line), flush=True)


def main():
    parser = argparse.ArgumentParser(description="hostapd control interface stand-in")
    parser.add_argument("--ctrl", required=True, help="control socket path")
    parser.add_argument("--ssid", required=True)
    parser.add_argument("--psk-file", required=True)
    args = parser.parse_args()
    try:
        standin = Standin(args.ctrl, args.ssid, args.psk_file)
    except (OSError, BadFile) as e:
        print(f"standin: {e}", file=sys.stderr)
        sys.exit(2)
    try:
        standin.serve()
    finally:
        try:
            os.unlink(args.ctrl)
        except OSError:
            pass


if __name__ == "__main__":
    main()
