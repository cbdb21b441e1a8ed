#!/usr/bin/env bash
# HQ service benchmarks (no root needed): ingest into JetStream through
# two storegate-hq gateways against a bare async-nats publisher of the
# same events in the same run (medians of RUNS), at R1 on one nats-server
# and at R3 on a 3-node cluster on loopback; then member arrival →
# targeted message at the provider (p50/p99). NATS storage goes to a
# scratch directory under target/, removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3} STORES=${STORES:-1000} BATCH=${BATCH:-50} BATCHES=${BATCHES:-4}
CONCURRENCY=${CONCURRENCY:-64} ARRIVALS=${ARRIVALS:-200}
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
cargo build --release --quiet -p storegate-hq --example hq_bench
B=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/hq_bench
scratch=$(mktemp -d "${CARGO_TARGET_DIR:-$PWD/target}/hq-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$scratch"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "nats-server on $1 did not start" >&2; exit 1; }
common=(--stores "$STORES" --batch "$BATCH" --batches "$BATCHES" --concurrency "$CONCURRENCY" --runs "$RUNS")

echo "## R1: one nats-server"
p=$(port)
"$NATS" -a 127.0.0.1 -p "$p" -js -sd "$scratch/r1" >/dev/null 2>&1 & pids+=($!)
wait_port "$p"
"$B" --nats "nats://127.0.0.1:$p" --replicas 1 "${common[@]}" --arrivals "$ARRIVALS"

echo "## R3: a 3-node cluster on this machine"
ports=() cports=()
for i in 0 1 2; do ports+=("$(port)"); cports+=("$(port)"); done
for i in 0 1 2; do
  routes=()
  for j in 0 1 2; do [ "$j" != "$i" ] && routes+=("nats://127.0.0.1:${cports[$j]}"); done
  "$NATS" -a 127.0.0.1 -p "${ports[$i]}" -n "n$i" -js -sd "$scratch/r3-$i" \
    --cluster_name bench --cluster "nats://127.0.0.1:${cports[$i]}" \
    --routes "$(IFS=,; echo "${routes[*]}")" >/dev/null 2>&1 & pids+=($!)
done
for i in 0 1 2; do wait_port "${ports[$i]}"; done
urls="nats://127.0.0.1:${ports[0]},nats://127.0.0.1:${ports[1]},nats://127.0.0.1:${ports[2]}"
"$B" --nats "$urls" --replicas 3 "${common[@]}" --arrivals 0
