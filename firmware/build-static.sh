#!/usr/bin/env bash
# Builds small static storegate binaries for routers (x86_64 and aarch64,
# musl, profile release-small), runs the aarch64 one under qemu-user, and
# measures the x86_64 one's resident memory at idle.
#
#   firmware/build-static.sh            # build both, check, measure
#   SKIP_INSTALL=1 firmware/build-static.sh   # do not apt-get/rustup anything
#
# Needs: rustup; on Debian/Ubuntu (as root it installs them) musl-tools,
# gcc-aarch64-linux-gnu and qemu-user-static. ring compiles C code, so each
# target needs a C compiler: musl-gcc for x86_64, the aarch64 GNU cross gcc
# for aarch64 (it compiles ring's freestanding C; libc comes from Rust's
# self-contained musl). Output: target/firmware/<triple>/release-small/storegate
# (override with CARGO_TARGET_DIR). Not run in CI: it takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/firmware}"

if [ -z "${SKIP_INSTALL:-}" ]; then
  rustup target add "${TARGETS[@]}"
  need=()
  for pair in musl-gcc:musl-tools aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
              /usr/aarch64-linux-gnu/include/stdint.h:libc6-dev-arm64-cross \
              qemu-aarch64-static:qemu-user-static; do
    { command -v "${pair%%:*}" >/dev/null 2>&1 || [ -e "${pair%%:*}" ]; } || need+=("${pair#*:}")
  done
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "missing ${need[*]}: install them (apt-get install ${need[*]})" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
fi

export CC_x86_64_unknown_linux_musl=musl-gcc
export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
# ring's aarch64 assembly and C: no outline atomics (not in musl's libgcc).
export CFLAGS_aarch64_unknown_linux_musl="-mno-outline-atomics"

for t in "${TARGETS[@]}"; do
  echo "== building $t"
  # -p: the router's features only, not unified with storegate-hq's.
  cargo build --locked -p storegate --profile release-small --target "$t" --bin storegate
done

bin() { echo "$CARGO_TARGET_DIR/$1/release-small/storegate"; }
X86=$(bin x86_64-unknown-linux-musl)
ARM=$(bin aarch64-unknown-linux-musl)

echo "== sizes (stripped)"
for b in "$X86" "$ARM"; do
  printf '%-60s %9d bytes  %s\n' "$b" "$(stat -c %s "$b")" "$(file -b "$b" | cut -d, -f1-2)"
done

echo "== aarch64 under qemu-user"
qemu-aarch64-static "$ARM" --version
qemu-aarch64-static "$ARM" check-config firmware/storegate.example.toml
qemu-aarch64-static "$ARM" uci-to-toml firmware/openwrt/files/storegate.config >/dev/null
echo "uci-to-toml firmware/openwrt/files/storegate.config: ok"

echo "== x86_64 resident memory at idle"
"$X86" --version
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
# The dashboard needs a port of its own (the config refuses the portal's,
# 0 included): a free one.
dashboard_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$dir/idle.toml" <<TOML
[store]
id = "idle-01"
[lan]
interface = "lo"
[portal]
listen = "127.0.0.1:0"
[firewall]
backend = "none"
[storage]
path = "$dir/state"
[dashboard]
listen = "127.0.0.1:$dashboard_port"
[control]
socket = "$dir/control.sock"
TOML
RUST_LOG=warn "$X86" run -c "$dir/idle.toml" 2>"$dir/log" &
pid=$!
for _ in $(seq 1 50); do [ -S "$dir/control.sock" ] && break; sleep 0.1; done
sleep "${IDLE_SECONDS:-5}"
if ! kill -0 "$pid" 2>/dev/null; then
  echo "storegate exited early:" >&2; cat "$dir/log" >&2; exit 1
fi
grep -E '^(VmRSS|VmHWM|RssAnon|RssFile|Threads)' "/proc/$pid/status"
