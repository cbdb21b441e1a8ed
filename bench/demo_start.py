#!/usr/bin/env python3
"""How long `storegate demo` takes from start to "dashboard ready" (its
banner, printed once the dashboard accepts connections), with five weeks
of history (the default) against `--fresh` (no history) as the baseline,
measured in the same run; and what playing the history costs, as the demo
reports it ("35 days of history played in X s").

    cargo build --release && bench/demo_start.py            # 5 runs each
    RUNS=9 BIN=target/release/storegate bench/demo_start.py
    ON_DISK=1 bench/demo_start.py   # also --state on disk (history's
                                    # durable writes hit the disk)

Prints medians (and min/max) in seconds and the ratio history/fresh.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import time

BIN = os.environ.get("BIN", "target/release/storegate")
RUNS = int(os.environ.get("RUNS", "5"))


def one(args):
    """Seconds to the banner's end, and the history time it printed."""
    t0 = time.monotonic()
    p = subprocess.Popen([BIN, "demo", "--seed", "7", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    history = None
    ready = None
    try:
        for line in p.stdout:
            m = re.search(r"history played in ([0-9.]+) s", line)
            if m:
                history = float(m.group(1))
            if line.startswith("Stop with Ctrl-C"):
                ready = time.monotonic() - t0
                break
    finally:
        p.send_signal(2)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if ready is None:
        sys.exit(f"storegate demo {' '.join(args)}: no banner")
    return ready, history


def series(name, args):
    ready, history = [], []
    for _ in range(RUNS):
        r, h = one(args)
        ready.append(r)
        if h is not None:
            history.append(h)
    med = statistics.median(ready)
    line = f"{name:<28} ready median {med:6.2f} s  (min {min(ready):.2f}, max {max(ready):.2f})"
    if history:
        line += f"  history median {statistics.median(history):.2f} s"
    print(line, flush=True)
    return med


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} not found: cargo build --release first")
    print(f"{BIN}, {RUNS} runs each, {os.cpu_count()} CPUs", flush=True)
    fresh = series("--fresh (baseline)", ["--fresh"])
    full = series("five weeks of history", [])
    print(f"ratio history/fresh: {full / fresh:.2f}", flush=True)
    if os.environ.get("ON_DISK"):
        base = os.path.join(os.path.dirname(BIN) or ".", "demo-bench-state")
        ready = []
        for _ in range(RUNS):
            shutil.rmtree(base, ignore_errors=True)
            r, _ = one(["--state", base])
            ready.append(r)
        shutil.rmtree(base, ignore_errors=True)
        med = statistics.median(ready)
        print(f"{'history, --state on disk':<28} ready median {med:6.2f} s"
              f"  (min {min(ready):.2f}, max {max(ready):.2f})  ratio/fresh {med / fresh:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
