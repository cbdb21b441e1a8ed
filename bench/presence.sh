#!/usr/bin/env bash
# Presence benchmarks (root): parser throughput; frame -> visit.started in
# the outbox; capture CPU under bulk traffic, filtered against unfiltered
# in the same run; daemon memory with 10,000 tracked devices.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lab.sh
ROUNDS=${ROUNDS:-3} SECONDS_PER_RUN=${SECONDS_PER_RUN:-8} TRIALS=${TRIALS:-1000} N=${N:-10000}
cargo build --release --quiet --example presence_bench --bin storegate
B=./target/release/examples/presence_bench

echo "## parser throughput"
$B parse 20000

echo "## frame -> visit.started durable in the outbox"
ns=sgb-pl-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip -n "$ns" link add vrx type veth peer name vtx
ip -n "$ns" link set vrx up
ip -n "$ns" link set vtx up
ip netns exec "$ns" $B latency vrx vtx "$TRIALS"
ip netns del "$ns"
trap - EXIT

echo "## capture CPU during a bulk transfer client -> internet (${SECONDS_PER_RUN}s per run)"
lab_up presence
trap lab_down EXIT
for r in $(seq "$ROUNDS"); do
  for filter in presence all; do
    ip netns exec "$INET" python3 bench/bulk.py recv 5001 "$SECONDS_PER_RUN" > "$LABDIR/bytes" &
    rp=$!
    sleep 0.3
    ip netns exec "$C1" python3 bench/bulk.py send 198.51.100.2 5001 "$((SECONDS_PER_RUN + 1))" &
    sp=$!
    sleep 0.5
    ip netns exec "$GW" $B cpu br-lan "$SECONDS_PER_RUN" "$filter"
    wait "$sp" "$rp" || true
    awk -v s="$SECONDS_PER_RUN" '{printf "   traffic: %.0f Mbit/s\n", $1*8/1e6/(s+1)}' "$LABDIR/bytes"
  done
done

echo "## daemon memory with $N tracked devices"
lab_start_storegate
sleep 0.5
rss() { awk '/VmRSS/ {print $2}' "/proc/$(pgrep -P "$SG_PID" storegate || echo "$SG_PID")/status"; }
idle=$(rss)
t0=$(date +%s.%N)
ip netns exec "$C1" python3 bench/arp_flood.py eth0 "$N"
for _ in $(seq 600); do
  known=$(lab_ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["presence"]["devices_known"])')
  [ "$known" -ge "$N" ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
loaded=$(rss)
echo "devices known: $known (in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s, each a join with a durable visit.started)"
echo "RSS idle: ${idle} KiB; with $known devices: ${loaded} KiB (ratio $(awk -v a="$loaded" -v b="$idle" 'BEGIN{printf "%.2f", a/b}'))"
lab_ctl status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("frames:", d["presence"]["frames"])'
# Device records are saved every 5 s and the presence snapshot every 30 s.
sleep 36
echo "RSS 36 s later, after the saves: $(rss) KiB"
