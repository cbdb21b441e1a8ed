#!/usr/bin/env bash
# Returning members (root): a phone signs in once as a member with
# "remember this device" (phone + code; the code read from the reference
# HQ receiver's output), then rejoins TRIALS times with a fresh DHCP lease.
# Prints how many first requests after rejoining were redirected to the
# portal (target: none) and the daemon's own DHCP packet -> authorised
# latency for each recognition (p50/p99), against the DHCP exchange as the
# client sees it (same run).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lab.sh
TRIALS=${TRIALS:-1000}
SECRET=whsec_c3RvcmVnYXRlLW1lbWJlcnMtYmVuY2gta2V5LTAx
cargo build --release --quiet --bin storegate
lab_up members
trap lab_down EXIT
ip netns exec "$INET" python3 tests/lab/internet.py "$LABDIR/inet.ready" 2>/dev/null &
ip netns exec "$GW" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --interface=br-lan --bind-interfaces --user=root --group=root --dhcp-authoritative --no-ping \
  --dhcp-range=192.0.2.100,192.0.2.199,1h --dhcp-leasefile="$LABDIR/leases" \
  --pid-file="$LABDIR/dnsmasq.pid" 2>/dev/null &
ip netns exec "$GW" ./target/release/storegate hq-receiver --listen 127.0.0.1:18080 \
  --secret "$SECRET" > "$LABDIR/hq.out" 2> "$LABDIR/hq.err" &
for _ in $(seq 100); do [ -e "$LABDIR/inet.ready" ] && break; sleep 0.05; done
lab_start_storegate "[hq]
url = \"http://127.0.0.1:18080/hq\"
secret = \"$SECRET\""
# The phone gets its address by DHCP from here on.
ip -n "$C1" -4 addr flush dev eth0
ip netns exec "$C1" busybox udhcpc -f -q -n -i eth0 -s "$PWD/tests/lab/udhcpc-script" >/dev/null 2>&1
# Portal forms carry the per-client token from the sign-in page, and a code
# request also that page's code ticket (one page load, one text).
field() { sed -n "s/.*name=\"$1\" value=\"\([A-Za-z0-9_-]*\)\".*/\1/p" | head -1; }
post() {
  page=$(ip netns exec "$C1" curl -s http://192.0.2.1:2050/login)
  ip netns exec "$C1" curl -s -o /dev/null -w '%{http_code}' \
    -d "$2&csrf=$(echo "$page" | field csrf)&code_ticket=$(echo "$page" | field code_ticket)" \
    "http://192.0.2.1:2050$1"
}
[ "$(post /signin/code 'phone=13800138000&remember_device=yes')" = 200 ] || { echo "code request failed" >&2; exit 1; }
code=
for _ in $(seq 100); do
  code=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: m = json.loads(l).get("message")
    except ValueError: continue
    if m and m.get("kind") == "otp": print(m["code"])' "$LABDIR/hq.out" | tail -1)
  [ -n "$code" ] && break; sleep 0.05
done
[ "$(post /signin/verify "phone=13800138000&code=$code&remember_device=yes")" = 303 ] || { echo "sign-in failed" >&2; exit 1; }
echo "## $TRIALS rejoins of a remembered member"
ip netns exec "$C1" python3 bench/rejoin.py "$LABDIR/control.sock" 02:00:00:00:01:01 "$TRIALS" \
  "$PWD/tests/lab/udhcpc-script" 198.51.100.2
echo "## DHCP packet read -> authorised, in the daemon (from its log)"
grep -o 'returning member authorised.*us=[0-9]*' "$LABDIR/sg.log" | grep -o 'us=[0-9]*' | cut -d= -f2 \
  | python3 -c 'import sys
v = sorted(int(x) for x in sys.stdin)
if not v: sys.exit("no recognitions logged")
print(f"n={len(v)} p50={v[(len(v) - 1) // 2]} us p99={v[max(0, int(len(v) * 0.99) - 1)]} us max={v[-1]} us")'
