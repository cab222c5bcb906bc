"""A timeline of what the local stack does: each invocation, each build, each route change,
printed as it happens with the time since the timeline began."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.routes import RouteState, read_default_routes
from cache_pilot_cli.output import Output

if TYPE_CHECKING:
    from cache_pilot_local.builds import FinishedBuild
    from cache_pilot_local.event_routing import Invocation

FUNCTION_LABELS = {
    "SyncConfigFunction": "sync_config",
    "StartWarmupFunction": "start_warmup",
    "FinishWarmupFunction": "finish_warmup",
    "CheckFreshnessFunction": "check_freshness",
    "NatWatchdogFunction": "nat_watchdog",
}


@dataclass
class Timeline:
    """Prints what happens as it happens, with the time since the timeline began."""

    output: Output
    started: float = field(default_factory=time.perf_counter)
    route_watch: Callable[[], str | None] = lambda: None
    last_route: str | None = None

    def say(self, text: str, style: str | None = None) -> None:
        self.output.line(f"+{time.perf_counter() - self.started:5.1f}s  {text}", style=style)

    def invocation(self, invocation: Invocation) -> None:
        label = FUNCTION_LABELS.get(invocation.function, invocation.function)
        trigger = _trigger_text(invocation.event)
        if invocation.error:
            self.say(f"{label} <- {trigger}: FAILED {invocation.error}", style="red")
        else:
            self.say(f"{label} <- {trigger}", style="bold")
            for line in result_lines(invocation.function, invocation.result):
                self.output.line(f"         {line}")
        self.watch_route()

    def build(self, build: FinishedBuild) -> None:
        style = "green" if build.status == "SUCCEEDED" else "red"
        event = "event sent" if build.event_sent else "event LOST"
        self.say(
            f"CodeBuild {build.build_id.rsplit(':', 1)[-1][:8]}: {build.status} ({event})", style
        )
        for line in _build_lines(build):
            self.output.line(f"         {line}")

    def watch_route(self) -> None:
        route = self.route_watch()
        if route is not None and route != self.last_route:
            self.say(route, style="cyan")
            self.last_route = route


def nat_route_watch(
    clients: AwsClients, route_tables: list[str], nat_gateway: str
) -> Callable[[], str]:
    """What the warm-up route tables' default routes say now, in one line."""

    def route_text() -> str:
        routes = read_default_routes(clients.ec2, route_tables, nat_gateway)
        return "; ".join(
            f"NAT route 0.0.0.0/0 -> {nat_gateway} in {r.route_table_id}"
            if r.state is RouteState.OURS
            else f"no default route in {r.route_table_id} (private: ECR only via endpoints)"
            if r.state is RouteState.ABSENT
            else r.describe()
            for r in routes
        )

    return route_text


def _trigger_text(event: dict[str, Any]) -> str:
    detail = event.get("detail", {})
    match event.get("detail-type"):
        case "Parameter Store Change":
            return f"Parameter Store Change ({detail.get('operation')} {detail.get('name')})"
        case "CodeBuild Build State Change":
            return f"Build State Change ({detail.get('build-status')})"
        case other:
            return str(other)


def result_lines(function: str, result: Any) -> list[str]:
    if not isinstance(result, dict):
        return [json.dumps(result, default=str)]
    match function:
        case "SyncConfigFunction":
            lines = [f"status {result.get('status')}"]
            lines += [
                f"rule {c['action']} {c['prefix']}: {c['reason']}"
                for c in result.get("rule_changes", [])
            ]
            counts = {a: n for a, n in result.get("image_changes", {}).items() if n}
            if counts:
                lines.append("images " + ", ".join(f"{n} {a}" for a, n in counts.items()))
            if result.get("warmup_requested"):
                lines.append(f"warm-up requested ({result.get('images_waiting')} waiting)")
            lines += [f"problem: {p}" for p in result.get("problems", [])]
            return lines
        case "StartWarmupFunction":
            lines = [f"outcome {result.get('outcome')}" + _detail(result)]
            lines += [
                f"batch {b['batch_id']}: {b['images']} images, "
                + (
                    f"build {b['build_id'].rsplit(':', 1)[-1][:8]} started"
                    if b["build_id"]
                    else f"not started: {b.get('error')}"
                )
                for b in result.get("batches", [])
            ]
            return lines
        case "FinishWarmupFunction":
            lines = [f"build {result.get('build_status')}: {len(result.get('warm', []))} WARM"]
            lines += [
                f"FAILED {image}: {reason}" for image, reason in result.get("failed", {}).items()
            ]
            if result.get("window_closed"):
                lines.append(f"NAT window closed after {result.get('nat_open_seconds') or 0:.1f} s")
            return lines
        case "NatWatchdogFunction":
            lines = [f"leases held {result.get('leases')}"]
            lines += [
                f"released {batch}: {why}" for batch, why in result.get("released", {}).items()
            ]
            lines += [f"still running: {batch}" for batch in result.get("still_running", [])]
            if result.get("route_closed"):
                lines.append("closed the route in " + ", ".join(result["closed_route_tables"]))
            return lines
        case "CheckFreshnessFunction":
            counts = {status: n for status, n in result.get("by_status", {}).items() if n}
            lines = [
                f"checked {result.get('checked')}: "
                + (", ".join(f"{n} {status}" for status, n in counts.items()) or "no images")
            ]
            lines += [f"STALE {image}" for image in result.get("became_stale", [])]
            lines += [f"gone from ECR: {image}" for image in result.get("gone_from_ecr", [])]
            if result.get("warmup_requested"):
                lines.append("warm-up requested")
            return lines
    return [json.dumps(result, default=str)[:200]]


def _detail(result: dict[str, Any]) -> str:
    return f" ({result['detail']})" if result.get("detail") else ""


def _build_lines(build: FinishedBuild) -> list[str]:
    """What the warm-up program reported: each image with its digest, or why it failed."""
    report = build.report
    if report is None:
        return ["no report (the build ended before its post_build phase uploaded one)"]
    lines = []
    if report.get("error"):
        lines.append(f"batch error: {report['error']}")
    for image in report.get("images", []):
        if image.get("warmed"):
            platforms = ", ".join(p["platform"] for p in image.get("platforms", []))
            lines.append(
                f"pulled {image['reference']} {str(image.get('digest', ''))[:19]} ({platforms})"
            )
        else:
            error = image.get("error") or {}
            lines.append(
                f"FAILED {image['reference']}: {error.get('kind')}: {error.get('message')}"
            )
    return lines
