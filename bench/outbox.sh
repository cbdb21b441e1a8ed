#!/usr/bin/env bash
# Outbox benchmarks (no root needed): durable ingest in events/s, three
# ways, medians of ROUNDS with the one-at-a-time baseline measured in the
# same run; then the time to drain N queued events (default 1,000,000) to
# a loopback receiver through the real delivery loop, gzipped and plain;
# then resident memory with the outbox full (FILL_N, default 200,000, the
# daemon's cap) and the bytes written per event queued then delivered.
# State goes to a scratch directory under target/ (the same disk as the
# build), removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5} INGEST_N=${INGEST_N:-100000} DRAIN_N=${DRAIN_N:-1000000}
FILL_N=${FILL_N:-200000} FILL_SINGLE_N=${FILL_SINGLE_N:-20000}
cargo build --release --quiet --example outbox_bench
B=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/outbox_bench
mkdir -p target
scratch=$(mktemp -d "$PWD/target/outbox-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
echo "## durable ingest"
"$B" ingest "$INGEST_N" "$ROUNDS"
echo "## drain $DRAIN_N queued events"
"$B" drain "$DRAIN_N" gzip
"$B" drain "$DRAIN_N" plain
echo "## memory and bytes written, outbox full"
"$B" fill "$FILL_N" batch-100
"$B" fill "$FILL_SINGLE_N" single
