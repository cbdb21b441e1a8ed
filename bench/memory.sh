#!/usr/bin/env bash
# Resident memory of the daemon idle and with N (10,000) authorised
# clients, and the time to restore them after a restart (start -> ready,
# read from the daemon's own log). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lab.sh
N=${N:-10000}
cargo build --release --quiet --bin storegate
lab_up memory
trap lab_down EXIT
rss() { awk '/VmRSS/ {print $2}' "/proc/$(pgrep -P "$SG_PID" storegate || echo "$SG_PID")/status"; }
lab_start_storegate
sleep 0.5
idle=$(rss)
t0=$(date +%s.%N)
python3 bench/ctl_flood.py "$LABDIR/control.sock" "$N"
t1=$(date +%s.%N)
loaded=$(rss)
lab_stop_storegate
lab_start_storegate
sleep 0.5
restored=$(rss)
restore_ms=$(grep -o 'sessions restored.*' "$LABDIR/sg.log" | grep -o 'ms=[0-9]*' | head -1 | cut -d= -f2)
ready_ms=$(grep -o 'storegate ready.*' "$LABDIR/sg.log" | grep -o 'ms=[0-9]*' | head -1 | cut -d= -f2)
authorised=$(lab_ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clients"]["authorized"])')
echo "RSS idle:                      ${idle} KiB"
echo "RSS with $N authorised:     ${loaded} KiB (ratio to idle $(awk -v a="$loaded" -v b="$idle" 'BEGIN{printf "%.2f", a/b}'))"
echo "RSS after restart, restored:   ${restored} KiB"
echo "authorise $N via ctl:       $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s (one control connection and one fsync each)"
echo "restart: restore $authorised sessions into nftables ${restore_ms} ms, ready ${ready_ms} ms after start"
