#!/usr/bin/env bash
# storegate's footprint on a router, musl `release-small` (what OpenWrt
# runs) beside the glibc release build, in the lab (root; minutes; not in
# CI):
#   - idle memory (RssAnon: what the router gives up; RssFile: the
#     binary's own pages, shared and evictable) and threads;
#   - memory with N (10,000) tracked devices (an ARP flood) and N sessions
#     (authorised over the control socket), after the saves;
#   - the outbox holding its cap (200,000 events): its resident memory,
#     and bytes written to storage per event, queued then delivered
#     (example `outbox_bench`);
#   - bytes written per hour by an idle store with IDLE_DEVICES (200)
#     devices present (each sends an ARP every 10 s), from the kernel's
#     per-process I/O accounting (`/proc/PID/io`), over IDLE_MINUTES (20);
#   - the stripped binaries' sizes (x86_64 and aarch64 musl).
#
#   bench/footprint.sh                 # everything
#   SKIP_BUILD=1 bench/footprint.sh    # reuse the binaries already built
#   PARTS="idle" bench/footprint.sh    # only some of: memory outbox idle
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lab.sh
N=${N:-10000} IDLE_DEVICES=${IDLE_DEVICES:-200} IDLE_MINUTES=${IDLE_MINUTES:-20}
OUTBOX_EVENTS=${OUTBOX_EVENTS:-200000}
PARTS=${PARTS:-memory outbox idle}
part() { [[ " $PARTS " == *" $1 "* ]]; }
TD=${CARGO_TARGET_DIR:-target}
MUSL=$TD/x86_64-unknown-linux-musl/release-small/storegate
ARM=$TD/aarch64-unknown-linux-musl/release-small/storegate
GLIBC=$TD/release/storegate

if [ -z "${SKIP_BUILD:-}" ]; then
  rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null
  need=()
  for pair in musl-gcc:musl-tools aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
              /usr/aarch64-linux-gnu/include/stdint.h:libc6-dev-arm64-cross; do
    { command -v "${pair%%:*}" >/dev/null 2>&1 || [ -e "${pair%%:*}" ]; } || need+=("${pair#*:}")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
  export CC_x86_64_unknown_linux_musl=musl-gcc
  export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
  export CFLAGS_aarch64_unknown_linux_musl="-mno-outline-atomics"
  cargo build --locked --quiet -p storegate --profile release-small --target x86_64-unknown-linux-musl \
    --bin storegate --example outbox_bench
  cargo build --locked --quiet -p storegate --profile release-small --target aarch64-unknown-linux-musl \
    --bin storegate
  cargo build --locked --quiet -p storegate --release --bin storegate --example outbox_bench
fi

# status FIELD of the daemon (kB for memory fields).
field() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$SG_PID/status"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k * 1024 / 1e6}'; }
known() {
  lab_ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["presence"]["devices_known"])'
}

declare -A R
memory_run() { # label binary
  local label=$1 maxthreads=0 t
  SG_BIN=$2
  export SG_BIN
  lab_up fp
  lab_start_storegate
  sleep 5
  R[$label.idle]="$(mb "$(field RssAnon)") + $(mb "$(field RssFile)")"
  R[$label.idle_threads]=$(field Threads)
  # The flood outruns the capture ring now and then (frames dropped in the
  # kernel): send it again until every device is known.
  for _ in 1 2 3; do
    ip netns exec "$C1" python3 bench/arp_flood.py eth0 "$N"
    for _ in $(seq 100); do [ "$(known)" -ge "$N" ] && break; sleep 0.1; done
    [ "$(known)" -ge "$N" ] && break
  done
  R[$label.devices]=$(known)
  python3 bench/ctl_flood.py "$LABDIR/control.sock" "$N"
  # Device records are saved every 5 s, visits and footfall every 30 s.
  for _ in $(seq 40); do
    t=$(field Threads); [ "$t" -gt "$maxthreads" ] && maxthreads=$t
    sleep 1
  done
  R[$label.loaded]="$(mb "$(field RssAnon)") + $(mb "$(field RssFile)")"
  R[$label.max_threads]=$maxthreads
  lab_down
}

idle_writes() { # binary
  SG_BIN=$1
  export SG_BIN
  lab_up fpw
  RUST_LOG=warn lab_start_storegate
  ip netns exec "$C1" python3 bench/arp_keepalive.py eth0 "$IDLE_DEVICES" 10 \
    "$(( IDLE_MINUTES * 60 + 90 ))" &
  local keep=$!
  # Let them join and the first saves settle.
  sleep 60
  local present
  present=$(lab_ctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["presence"]["present_now"])' 2>/dev/null || echo "?")
  local w0 c0 w1 c1
  w0=$(awk '/^write_bytes/ {print $2}' "/proc/$SG_PID/io")
  c0=$(awk '/^wchar/ {print $2}' "/proc/$SG_PID/io")
  sleep $(( IDLE_MINUTES * 60 ))
  w1=$(awk '/^write_bytes/ {print $2}' "/proc/$SG_PID/io")
  c1=$(awk '/^wchar/ {print $2}' "/proc/$SG_PID/io")
  kill "$keep" 2>/dev/null || true
  wait "$keep" 2>/dev/null || true
  lab_down
  R[idle.present]=$present
  R[idle.storage]=$(awk -v a="$w0" -v b="$w1" -v m="$IDLE_MINUTES" 'BEGIN {printf "%.0f kB/h", (b - a) / 1000 * 60 / m}')
  R[idle.wchar]=$(awk -v a="$c0" -v b="$c1" -v m="$IDLE_MINUTES" 'BEGIN {printf "%.0f kB/h", (b - a) / 1000 * 60 / m}')
}

if part memory; then
  echo "== memory and threads, musl release-small"
  memory_run musl "$MUSL"
  echo "== memory and threads, glibc release"
  memory_run glibc "$GLIBC"
fi
if part outbox; then
  echo "== outbox at its cap ($OUTBOX_EVENTS events), musl release-small"
  OB_MUSL=$TD/x86_64-unknown-linux-musl/release-small/examples/outbox_bench
  OB_GLIBC=$TD/release/examples/outbox_bench
  "$OB_MUSL" fill "$OUTBOX_EVENTS" batch-100
  "$OB_MUSL" fill 20000 single
  echo "== outbox at its cap ($OUTBOX_EVENTS events), glibc release"
  "$OB_GLIBC" fill "$OUTBOX_EVENTS" batch-100
fi
if part idle; then
  echo "== storage writes of an idle store, $IDLE_DEVICES devices present, ${IDLE_MINUTES} min, musl"
  idle_writes "$MUSL"
fi

v() { echo "${R[$1]:-not run}"; }
echo
echo "| what | musl release-small | glibc release |"
echo "|---|---|---|"
echo "| idle RSS, anonymous + file | $(v musl.idle) | $(v glibc.idle) |"
echo "| threads idle / most seen under load | $(v musl.idle_threads) / $(v musl.max_threads) | $(v glibc.idle_threads) / $(v glibc.max_threads) |"
echo "| $(v musl.devices) devices + $N sessions, after saves, anonymous + file | $(v musl.loaded) | $(v glibc.loaded) |"
echo "| storage written per idle hour, $(v idle.present) devices present | $(v idle.storage) (by write calls: $(v idle.wchar)) | |"
echo "| stripped x86_64 binary | $(stat -c %s "$MUSL") bytes | $(stat -c %s "$GLIBC") bytes |"
echo "| stripped aarch64 musl binary | $(stat -c %s "$ARM") bytes | |"
