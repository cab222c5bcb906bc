"""How long `make demo` takes, against its two-minute target, and where the time goes.

Runs `cache-pilot local demo` as a fresh process (imports, deployment, builds: what a user
waits for), a few times, and prints the wall time of each run beside the target, then the
demo's own summary of its steps from the last run.

    python -m bench.demo_time [RUNS]
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REPO

TARGET_SECONDS = 120.0
STEPS = ("deploy", "configure and warm", "NAT gateway deleted", "configuration edited")


def run_demo() -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cache-pilot"), "local", "demo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(REPO)},
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the demo failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def step_seconds(stdout: str) -> dict[str, float]:
    seconds = {}
    for step in STEPS:
        found = re.search(rf"^ {re.escape(step)}\s.*?\s(\d+\.\d)\s*$", stdout, re.MULTILINE)
        if found:
            seconds[step] = float(found.group(1))
    return seconds


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    times = []
    stdout = ""
    for _ in range(runs):
        elapsed, stdout = run_demo()
        times.append(elapsed)
    median = statistics.median(times)
    print(f"make demo (cache-pilot local demo as a fresh process), {runs} runs")
    print(f"  wall time: {', '.join(f'{t:.1f}' for t in times)} s; median {median:.1f} s")
    print(f"  target {TARGET_SECONDS:.0f} s: median is {median / TARGET_SECONDS:.2f} of it")
    print("  steps of the last run (the demo's own summary):")
    for step, seconds in step_seconds(stdout).items():
        print(f"    {step:<22} {seconds:5.1f} s")


if __name__ == "__main__":
    main()
