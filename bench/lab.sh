# Sourced by the bench scripts: a minimal lab (no DHCP, static addresses)
# with a gateway namespace running storegate, one client and an
# "internet" namespace. Documentation address ranges only.
#   lab_up TAG   lab_start_storegate [extra toml]   lab_down
# SG_BIN picks the storegate binary (default: the release build).
set -euo pipefail

lab_up() {
  LAB=sgb-$1
  GW=$LAB-gw C1=$LAB-c1 INET=$LAB-in
  LABDIR=$(mktemp -d)
  lab_down_quiet
  for n in "$GW" "$C1" "$INET"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip -n "$GW" link add br-lan type bridge
  ip -n "$GW" link set br-lan up
  ip -n "$GW" addr add 192.0.2.1/24 dev br-lan
  ip -n "$GW" link add lan1 type veth peer name eth0 netns "$C1"
  ip -n "$GW" link set lan1 master br-lan up
  ip -n "$C1" addr add 192.0.2.101/24 dev eth0
  ip -n "$C1" link set eth0 address 02:00:00:00:01:01 up
  ip -n "$C1" route add default via 192.0.2.1
  ip -n "$GW" link add wan0 type veth peer name eth0 netns "$INET"
  ip -n "$GW" addr add 198.51.100.1/24 dev wan0
  ip -n "$GW" link set wan0 up
  ip -n "$INET" addr add 198.51.100.2/24 dev eth0
  ip -n "$INET" link set eth0 up
  ip -n "$INET" route add 192.0.2.0/24 via 198.51.100.1
  ip netns exec "$GW" sysctl -qw net.ipv4.ip_forward=1
}

lab_start_storegate() {
  local extra=${1:-}
  cat > "$LABDIR/sg.toml" <<TOML
[store]
id = "bench"
[lan]
interface = "br-lan"
[portal]
listen = "0.0.0.0:2050"
# Load generators open many connections from one address; a phone opens
# a handful (the default cap is 16 per client).
max_connections_per_client = 1024
# Benchmarks fill the device table on purpose (10,000 devices in seconds):
# lift the per-minute budget that keeps a MAC flood out.
[presence]
new_devices_per_minute = 10000000
$extra
[storage]
path = "$LABDIR/state"
[control]
socket = "$LABDIR/control.sock"
TOML
  ip netns exec "$GW" "${SG_BIN:-./target/release/storegate}" run -c "$LABDIR/sg.toml" 2>"$LABDIR/sg.log" &
  SG_PID=$!
  for _ in $(seq 200); do
    [ -S "$LABDIR/control.sock" ] && return 0
    sleep 0.05
  done
  echo "storegate did not start:" >&2; cat "$LABDIR/sg.log" >&2; return 1
}

lab_stop_storegate() {
  [ -n "${SG_PID:-}" ] && kill -TERM "$SG_PID" 2>/dev/null && wait "$SG_PID" 2>/dev/null || true
  SG_PID=
}

lab_ctl() { ./target/release/storegate ctl -s "$LABDIR/control.sock" "$@"; }

lab_down_quiet() {
  for n in "$GW" "$C1" "$INET"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
}

lab_down() {
  lab_stop_storegate
  lab_down_quiet
  rm -rf "$LABDIR"
}

# Median of numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
