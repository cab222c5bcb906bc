"""The timeline's one-line account of what each function returned."""

from __future__ import annotations

from typing import Any

import pytest

from cache_pilot_cli.timeline import result_lines


@pytest.mark.parametrize(
    ("function", "result", "lines"),
    [
        (
            "SyncConfigFunction",
            {
                "status": "applied",
                "rule_changes": [{"action": "create", "prefix": "k8s", "reason": "not in ECR"}],
                "image_changes": {"list": 2, "retire": 0},
                "warmup_requested": True,
                "images_waiting": 2,
            },
            [
                "status applied",
                "rule create k8s: not in ECR",
                "images 2 list",
                "warm-up requested (2 waiting)",
            ],
        ),
        (
            "StartWarmupFunction",
            {"outcome": "nat-unavailable", "detail": "NAT gateway nat-1 is deleted", "batches": []},
            ["outcome nat-unavailable (NAT gateway nat-1 is deleted)"],
        ),
        (
            "FinishWarmupFunction",
            {
                "build_status": "FAILED",
                "warm": ["k8s/pause:3.10"],
                "failed": {"docker-hub/library/nginx:1.27": "not_found"},
                "window_closed": True,
                "nat_open_seconds": 1.25,
            },
            [
                "build FAILED: 1 WARM",
                "FAILED docker-hub/library/nginx:1.27: not_found",
                "NAT window closed after 1.2 s",
            ],
        ),
        (
            "NatWatchdogFunction",
            {
                "leases": 1,
                "released": {"b-1": "build ended SUCCEEDED; its completion event was lost"},
                "still_running": [],
                "route_closed": True,
                "closed_route_tables": ["rtb-1"],
            },
            [
                "leases held 1",
                "released b-1: build ended SUCCEEDED; its completion event was lost",
                "closed the route in rtb-1",
            ],
        ),
        (
            "CheckFreshnessFunction",
            {
                "checked": 2,
                "by_status": {"WARM": 1, "STALE": 1, "PENDING": 0},
                "became_stale": ["k8s/pause:3.10"],
                "gone_from_ecr": [],
                "warmup_requested": True,
            },
            ["checked 2: 1 WARM, 1 STALE", "STALE k8s/pause:3.10", "warm-up requested"],
        ),
    ],
    ids=["sync", "start refused", "finish", "watchdog", "freshness"],
)
def test_each_function_result_reads_as_lines(
    function: str, result: dict[str, Any], lines: list[str]
) -> None:
    assert result_lines(function, result) == lines
