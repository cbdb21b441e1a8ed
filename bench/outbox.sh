#!/usr/bin/env bash
# Outbox benchmarks (no root needed): durable ingest in events/s, three
# ways, medians of ROUNDS with the one-at-a-time baseline measured in the
# same run; then the time to drain N queued events (default 1,000,000) to
# a loopback receiver through the real delivery loop, gzipped and plain.
# State goes to a scratch directory under target/ (the same disk as the
# build), removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5} INGEST_N=${INGEST_N:-100000} DRAIN_N=${DRAIN_N:-1000000}
cargo build --release --quiet --example outbox_bench
B=$PWD/target/release/examples/outbox_bench
scratch=$(mktemp -d "$PWD/target/outbox-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
echo "## durable ingest"
"$B" ingest "$INGEST_N" "$ROUNDS"
echo "## drain $DRAIN_N queued events"
"$B" drain "$DRAIN_N" gzip
"$B" drain "$DRAIN_N" plain
