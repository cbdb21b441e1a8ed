#!/usr/bin/env bash
# Sign-in -> first forwarded packet latency (p50/p99), against a TCP
# handshake to the same server while signed in (baseline, same run).
# Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lab.sh
TRIALS=${TRIALS:-500}
cargo build --release --quiet --bin storegate
lab_up signin
trap lab_down EXIT
ip netns exec "$INET" python3 tests/lab/internet.py "$LABDIR/inet.ready" 2>/dev/null &
for _ in $(seq 100); do [ -e "$LABDIR/inet.ready" ] && break; sleep 0.05; done
lab_start_storegate
ip netns exec "$C1" python3 bench/signin.py "$LABDIR/control.sock" 02:00:00:00:01:01 "$TRIALS"
