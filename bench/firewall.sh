#!/usr/bin/env bash
# Authorise/revoke latency with 10 and 10,000 authorised clients, and the
# restore time of 10 and 10,000 sessions, against real nftables in a
# throwaway network namespace. Needs root. Prints JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
cargo build --release --quiet --example fw_bench
ns=sgb-fw-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip -n "$ns" link set lo up
ip -n "$ns" link add br-lan type bridge
for r in $(seq "$rounds"); do
  echo "# round $r"
  ip netns exec "$ns" ./target/release/examples/fw_bench
done
