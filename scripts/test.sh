#!/usr/bin/env bash
# Runs every test storegate has, installing what they need first.
# The network-namespace lab tests need root (they create namespaces,
# bridges and nftables tables); as another user they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in nft:nftables dnsmasq:dnsmasq-base dhclient:isc-dhcp-client \
            dhcpcd:dhcpcd5 busybox:busybox ip:iproute2 python3:python3 curl:curl \
            shellcheck:shellcheck systemd-analyze:systemd chromium:chromium \
            zbarimg:zbar-tools rsvg-convert:librsvg2-bin nats-server:nats-server; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing ${need[*]}; the lab tests will be skipped (run as root to install them)" >&2
  fi
fi

# Lab tests mostly wait on the network, so run more of them than cores.
# --workspace: the router's crate and HQ's service (hq/, whose tests start
# their own nats-server processes on loopback).
cargo test --locked --workspace -- --test-threads="${STOREGATE_TEST_THREADS:-6}"
