"""How plans, sync reports, rules and image items read on the operator's screen."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from cache_pilot.aws.routes import DEFAULT_ROUTE, DefaultRoute, RouteState
from cache_pilot.aws.rules import EcrRule, secret_name_of
from cache_pilot.config import CacheRule
from cache_pilot.state import (
    BatchRecord,
    ImageRecord,
    ImageStatus,
    NatWindow,
    RuleRecord,
    WindowState,
)
from cache_pilot.sync import (
    ImageAction,
    ImageChange,
    RuleAction,
    RuleChange,
    RuleOutcome,
    SyncPlan,
    SyncReport,
)
from cache_pilot_cli.output import Output

RULE_ACTION_STYLES = {
    RuleAction.CREATE: "green",
    RuleAction.UPDATE: "yellow",
    RuleAction.REPLACE: "magenta",
    RuleAction.DELETE: "red",
    RuleAction.FORGET: "dim",
}
IMAGE_ACTION_STYLES = {
    ImageAction.LIST: "green",
    ImageAction.RELIST: "green",
    ImageAction.UPDATE: "yellow",
    ImageAction.RETIRE: "red",
}
STATUS_STYLES = {
    ImageStatus.PENDING: "yellow",
    ImageStatus.WARMING: "cyan",
    ImageStatus.WARM: "green",
    ImageStatus.STALE: "magenta",
    ImageStatus.FAILED: "bold red",
    ImageStatus.RETIRED: "dim",
}
_DURATION_UNITS = (("d", 86400), ("h", 3600))


def duration(seconds: int) -> str:
    """A max age as people write it: 7d, 12h."""
    for unit, size in _DURATION_UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def moment(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def upstream_of(rule: CacheRule) -> str:
    text = f"{rule.upstream_url} ({rule.upstream_registry})"
    if rule.upstream_prefix != "ROOT":
        text += f" under {rule.upstream_prefix}"
    if rule.credential:
        text += f", credential {rule.credential}"
    if rule.custom_role_arn:
        text += f", role {rule.custom_role_arn}"
    return text


def _plain_table(*columns: str) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 1, 0, 2))
    for _ in columns:
        table.add_column(overflow="fold")
    return table


def _rule_change_row(change: RuleChange) -> list[Text]:
    style = RULE_ACTION_STYLES[change.action]
    target = upstream_of(change.wanted) if change.wanted is not None else ""
    return [
        Text(change.action.value, style=style),
        Text(change.prefix, style="bold"),
        Text(target),
        Text(change.reason, style="dim"),
    ]


def _image_change_row(change: ImageChange) -> list[Text]:
    settings = ""
    if change.image is not None:
        settings = (
            f"{', '.join(change.image.platforms)}; max age {duration(change.image.max_age_seconds)}"
        )
    return [
        Text(change.action.value, style=IMAGE_ACTION_STYLES[change.action]),
        Text(change.reference),
        Text(settings, style="dim"),
    ]


def render_plan(output: Output, plan: SyncPlan) -> None:
    if plan.rule_changes:
        output.heading("Rules")
        rules = _plain_table("action", "prefix", "upstream", "reason")
        for change in plan.rule_changes:
            rules.add_row(*_rule_change_row(change))
        output.show(rules)
    render_conflicts(output, plan)
    if plan.image_changes:
        output.heading("Images")
        images = _plain_table("action", "reference", "settings")
        for image_change in plan.image_changes:
            images.add_row(*_image_change_row(image_change))
        output.show(images)


def render_conflicts(output: Output, plan: SyncPlan) -> None:
    if plan.conflicts:
        output.heading("Conflicts (left alone)")
        for conflict in plan.conflicts:
            output.warning(f"  {conflict}")


def _outcome_text(outcome: RuleOutcome) -> Text:
    if not outcome.succeeded:
        return Text(f"FAILED: {outcome.error}", style="bold red")
    text = Text("done", style="green")
    if outcome.validation is not None:
        if outcome.validation.is_valid:
            text.append("; ECR validated it", style="green")
        else:
            text.append(
                f"; ECR validation failed: {outcome.validation.failure or 'no reason given'}",
                style="bold red",
            )
    return text


def render_report(output: Output, report: SyncReport) -> None:
    if report.rule_outcomes:
        output.heading("Rules")
        rules = _plain_table("action", "prefix", "upstream", "reason", "outcome")
        for outcome in report.rule_outcomes:
            rules.add_row(*_rule_change_row(outcome.change), _outcome_text(outcome))
        output.show(rules)
    render_conflicts(output, report.plan)
    if report.plan.image_changes:
        output.heading("Images")
        images = _plain_table("action", "reference", "settings")
        for change in report.plan.image_changes:
            images.add_row(*_image_change_row(change))
        output.show(images)


def plan_summary(plan: SyncPlan) -> str:
    """'create 3 rules; list 5 images, retire 1 image'."""
    parts = []
    for noun, actions in (
        ("rule", [change.action.value for change in plan.rule_changes]),
        ("image", [change.action.value for change in plan.image_changes]),
    ):
        counts = {action: actions.count(action) for action in dict.fromkeys(actions)}
        if counts:
            parts.append(
                ", ".join(
                    f"{action} {count} {noun}{'' if count == 1 else 's'}"
                    for action, count in counts.items()
                )
            )
    return "; ".join(parts) or "no change"


# --- what ECR and the state table hold ---------------------------------------------------------


def rules_table(held: Mapping[str, EcrRule], owned: Mapping[str, RuleRecord]) -> Table:
    """ECR's pull-through cache rules, with whether cache-pilot manages each one."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in (
        "prefix",
        "upstream",
        "credential",
        "managed by",
        "ECR validation",
        "created (UTC)",
    ):
        table.add_column(column, overflow="fold")
    for prefix, rule in sorted(held.items()):
        record = owned.get(prefix)
        validation = record.validation if record is not None else None
        table.add_row(
            Text(prefix, style="bold"),
            Text(f"{rule.upstream_url} ({rule.upstream_registry or '?'})"),
            Text(secret_name_of(rule.credential_arn) if rule.credential_arn else "-"),
            Text("cache-pilot" if record is not None else "someone else"),
            Text("-")
            if validation is None
            else Text("valid", style="green")
            if validation.is_valid
            else Text(f"invalid: {validation.failure}", style="red"),
            Text(moment(rule.created_at)),
        )
    return table


def images_table(records: Mapping[str, ImageRecord]) -> Table:
    """The state table's image items."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in ("image", "status", "rule", "platforms", "max age", "updated (UTC)"):
        table.add_column(column, overflow="fold")
    for reference, record in sorted(records.items()):
        table.add_row(
            Text(reference),
            Text(record.status.value, style=STATUS_STYLES[record.status]),
            Text(record.rule_prefix),
            Text(", ".join(record.platforms)),
            Text(duration(record.max_age_seconds)),
            Text(moment(record.updated_at)),
        )
    return table


def render_handler_result(output: Output, summary: Mapping[str, Any]) -> None:
    """What a sync_config invocation returned (reporting.sync_summary's shape)."""
    output.line(f"status: {summary.get('status')}", style="bold")
    if "reason" in summary:
        output.line(f"reason: {summary['reason']}")
    for change in summary.get("rule_changes", []):
        output.line(f"rule {change['action']} {change['prefix']}: {change['reason']}")
    counts = {action: n for action, n in summary.get("image_changes", {}).items() if n}
    if counts:
        output.line("images: " + ", ".join(f"{n} {action}" for action, n in counts.items()))
    if summary.get("images_waiting"):
        output.line(f"images waiting for a warm-up: {summary['images_waiting']}")
    for conflict in summary.get("conflicts", []):
        output.warning(f"conflict: {conflict}")
    for prefix, validation in summary.get("validations", {}).items():
        verdict = "valid" if validation.get("is_valid") else f"invalid: {validation.get('failure')}"
        output.line(f"ECR validation of {prefix}: {verdict}")
    for failure in summary.get("failures", []):
        output.error(f"failed: {failure}")
    for problem in summary.get("problems", []):
        output.error(problem)


# --- status and nat: what an operator reads at a glance ----------------------------------------

# Problems first: what needs a look, then what is on its way, then what is fine.
PROBLEMS_FIRST = (
    ImageStatus.FAILED,
    ImageStatus.STALE,
    ImageStatus.PENDING,
    ImageStatus.WARMING,
    ImageStatus.WARM,
    ImageStatus.RETIRED,
)
_AGE_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def problems_first(records: Iterable[ImageRecord]) -> list[ImageRecord]:
    """FAILED, STALE, PENDING, WARMING, WARM, RETIRED; by reference within a status."""
    rank = {status: index for index, status in enumerate(PROBLEMS_FIRST)}
    return sorted(records, key=lambda record: (rank[record.status], record.reference))


def seconds_since(moment: datetime | None, now: datetime) -> int | None:
    """Whole seconds from a moment to now; None without a moment, 0 for one a clock skew put
    in the future."""
    if moment is None:
        return None
    return max(0, int((now - moment).total_seconds()))


def age_text(seconds: int | None) -> str:
    """An age in its two largest units, truncated: 3d4h, 4h12m, 12m5s, 42s, 2d; '-' for none."""
    if seconds is None:
        return "-"
    seconds = max(0, seconds)
    for index, (unit, size) in enumerate(_AGE_UNITS):
        if seconds >= size or size == 1:
            text = f"{seconds // size}{unit}"
            if index + 1 < len(_AGE_UNITS):
                next_unit, next_size = _AGE_UNITS[index + 1]
                if rest := seconds % size // next_size:
                    text += f"{rest}{next_unit}"
            return text
    raise AssertionError("the last unit is one second")


def short_digest(digest: str | None) -> str:
    """The first 12 hex digits after 'sha256:', as docker prints image ids; '-' for none."""
    if not digest:
        return "-"
    return digest.partition(":")[2][:12] or digest[:12]


def status_counts_line(records: Iterable[ImageRecord]) -> str:
    """'5 images: 1 FAILED, 1 STALE, 3 WARM', problems first, statuses with none left out."""
    statuses = [record.status for record in records]
    counts = ", ".join(
        f"{statuses.count(status)} {status.value}"
        for status in PROBLEMS_FIRST
        if status in statuses
    )
    noun = "image" if len(statuses) == 1 else "images"
    return f"{len(statuses)} {noun}: {counts}" if statuses else "0 images"


def status_table(records: Sequence[ImageRecord], now: datetime) -> Table:
    """One row per image item, in the order given (problems_first)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in ("image", "status", "digest", "age", "last pull"):
        table.add_column(column, no_wrap=True)
    table.add_column("last error", overflow="fold")
    for record in records:
        pulled = seconds_since(record.last_pulled_at, now)
        table.add_row(
            Text(record.reference),
            Text(record.status.value, style=STATUS_STYLES[record.status]),
            Text(short_digest(record.cached_digest)),
            Text(age_text(seconds_since(record.cached_at, now))),
            Text("-" if pulled is None else f"{age_text(pulled)} ago"),
            Text(record.last_error or "", style="red"),
        )
    return table


def utc_moment(value: datetime) -> str:
    return f"{moment(value.astimezone(UTC))} UTC"


def window_line(window: NatWindow, now: datetime) -> str:
    """'NAT window: OPEN since 2026-11-29 10:00:00 UTC (for 1h5m)'."""
    match window.state:
        case WindowState.OPEN if window.opened_at is not None:
            since = window.opened_at
            return (
                f"NAT window: OPEN since {utc_moment(since)} "
                f"(for {age_text(seconds_since(since, now))})"
            )
        case WindowState.CLOSING if window.closing_since is not None:
            return (
                f"NAT window: CLOSING since {utc_moment(window.closing_since)} "
                f"(for {age_text(seconds_since(window.closing_since, now))}): "
                "a run is removing the route"
            )
        case WindowState.CLOSED if window.closed_at is not None:
            return f"NAT window: CLOSED since {utc_moment(window.closed_at)}"
        case _:
            return f"NAT window: {window.state.value}"


def lease_line(
    batch_id: str, expires_at: datetime, batch: BatchRecord | None, now: datetime
) -> str:
    """'  <batch>: expires 2026-11-29 11:20:00 UTC (in 50m); RUNNING, build <id>, 2 images'."""
    left = int((expires_at - now).total_seconds())
    if left < 0:
        expiry = f"expired {utc_moment(expires_at)} ({age_text(-left)} ago)"
    else:
        expiry = f"expires {utc_moment(expires_at)} (in {age_text(left)})"
    if batch is None:
        return f"  {batch_id}: {expiry}; no batch item holds this lease"
    build = f"build {batch.build_id}" if batch.build_id else "no build started"
    if batch.build_status:
        build += f" ({batch.build_status})"
    images = len(batch.references)
    return (
        f"  {batch_id}: {expiry}; {batch.status.value}, {build}, "
        f"{images} image{'' if images == 1 else 's'}"
    )


def route_line(route: DefaultRoute) -> str:
    """'  rtb-...: ours (0.0.0.0/0 -> nat-...)'."""
    match route.state:
        case RouteState.ABSENT:
            detail = f"no {DEFAULT_ROUTE} route"
        case RouteState.OURS:
            detail = f"{DEFAULT_ROUTE} -> {route.target}"
        case RouteState.OURS_BLACKHOLE:
            detail = f"{DEFAULT_ROUTE} -> {route.target}, a blackhole: the NAT gateway is gone"
        case RouteState.FOREIGN:
            detail = f"{DEFAULT_ROUTE} -> {route.target}, not cache-pilot's: never touched"
    return f"  {route.route_table_id}: {route.state.value} ({detail})"
