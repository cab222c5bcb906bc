"""What the benchmarks share: an AWS call counter on a boto3 session, and timing helpers."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CallCounter:
    """Counts every AWS API call made through one boto3 session (a botocore event hook)."""

    calls: Counter[str] = field(default_factory=Counter)
    # When each operation last answered (perf_counter), to time what happens between calls.
    answered_at: dict[str, float] = field(default_factory=dict)

    def attach(self, session: boto3.Session) -> boto3.Session:
        session.events.register("before-call", self._count)
        session.events.register("after-call", self._answered)
        return session

    def _count(self, event_name: str, **_ignored: Any) -> None:
        # event_name is before-call.<service>.<Operation>
        _, service, operation = event_name.split(".", 2)
        self.calls[f"{service}:{operation}"] += 1

    def _answered(self, event_name: str, **_ignored: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.answered_at[f"{service}:{operation}"] = time.perf_counter()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @contextmanager
    def measuring(self) -> Iterator[Measurement]:
        self.calls.clear()
        self.answered_at.clear()
        measurement = Measurement()
        started = time.perf_counter()
        measurement.started_at = started
        yield measurement
        measurement.seconds = time.perf_counter() - started
        measurement.calls = Counter(self.calls)
        measurement.answered_at = dict(self.answered_at)


@dataclass
class Measurement:
    seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    started_at: float = 0.0
    answered_at: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def by_operation(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in sorted(self.calls.items()))


IMPORT_PROBE = """
import importlib.util, sys, time
started = time.perf_counter()
if sys.argv[1] == "boto3":
    import boto3
else:
    spec = importlib.util.spec_from_file_location("app", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print(time.perf_counter() - started)
"""

HANDLER_ENVIRONMENT = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "STATE_TABLE_NAME": "cache-pilot-state",
    "CONFIG_PATH": "/cache-pilot/",
    "EVENT_SOURCE": "cache-pilot.bench",
    "WARMUP_PROJECT_NAME": "cache-pilot-warmup",
    "ARTIFACT_BUCKET": "cache-pilot-artifacts",
    "WARMUP_ROUTE_TABLE_IDS": "rtb-0123456789abcdef0",
    "NAT_GATEWAY_ID": "nat-0123456789abcdef0",
    "POWERTOOLS_SERVICE_NAME": "cache-pilot",
    "POWERTOOLS_METRICS_NAMESPACE": "CachePilot",
}


def cold_import_seconds(target: str, runs: int, tracing: bool = True) -> float:
    """Median wall time of importing `target` (a handler file, or boto3) in a new interpreter."""
    environment = {**os.environ, **HANDLER_ENVIRONMENT}
    environment.pop("POWERTOOLS_TRACE_DISABLED", None)
    if not tracing:
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    samples = []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE, target],
            check=True,
            capture_output=True,
            text=True,
            env=environment,
            cwd=REPO,
        ).stdout
        samples.append(float(output.strip().splitlines()[-1]))
    return statistics.median(samples)
