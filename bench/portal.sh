#!/usr/bin/env bash
# Portal redirects per second and latency at 64 concurrent connections,
# from a client namespace through the nftables capture, against a bare
# hyper server giving the same 302 (the machine's ceiling) in the
# "internet" namespace, reached by the signed-in client through the
# gateway's forward path (signed-in guests reach no port of the box but
# the portal), measured in the same run, alternating, ROUNDS times.
# Needs root and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lab.sh
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10s} CONNS=${CONNS:-64}
cargo build --release --quiet --bin storegate --example bare_redirect
lab_up portal
trap lab_down EXIT
lab_start_storegate
ip netns exec "$INET" ./target/release/examples/bare_redirect 0.0.0.0:2051 &
sleep 0.3

run_wrk() { # url -> "rps p50_ms p99_ms"
  ip netns exec "$C1" wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$1" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    END {print rps, p50, p99}' | sed -E 's/([0-9.]+)us/\1e-3/g; s/([0-9.]+)ms/\1/g; s/([0-9.]+)s( |$)/\1e3\2/g' | awk '{printf "%.0f %.3f %.3f\n", $1, $2, $3}'
}

: > "$LABDIR/sg.txt"; : > "$LABDIR/bare.txt"
for r in $(seq "$ROUNDS"); do
  # Captured: c1 is not signed in, so port 80 goes to the portal.
  run_wrk http://198.51.100.2/some/page >> "$LABDIR/sg.txt"
  # Baseline: the bare server behind the gateway; c1 is signed in for
  # it (forwarded, not captured), then captured again.
  lab_ctl auth 02:00:00:00:01:01 >/dev/null
  run_wrk http://198.51.100.2:2051/some/page >> "$LABDIR/bare.txt"
  lab_ctl deauth 02:00:00:00:01:01 >/dev/null
done
echo "# storegate (captured, 302):  rps p50_ms p99_ms per round"; cat "$LABDIR/sg.txt"
echo "# bare hyper 302 (baseline):  rps p50_ms p99_ms per round"; cat "$LABDIR/bare.txt"
sg_rps=$(awk '{print $1}' "$LABDIR/sg.txt" | median)
bare_rps=$(awk '{print $1}' "$LABDIR/bare.txt" | median)
sg_p99=$(awk '{print $3}' "$LABDIR/sg.txt" | median)
bare_p99=$(awk '{print $3}' "$LABDIR/bare.txt" | median)
echo "median storegate: ${sg_rps} req/s, p99 ${sg_p99} ms"
echo "median baseline:  ${bare_rps} req/s, p99 ${bare_p99} ms"
awk -v a="$sg_rps" -v b="$bare_rps" 'BEGIN {printf "ratio storegate/baseline req/s: %.2f\n", a/b}'
lab_ctl status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("portal counters:", d["portal"])'
