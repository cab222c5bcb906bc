"""Warm-up through a NAT window: claim images, open the route, start builds; on each build's end
record what ECR really cached and close the route when no build holds it any more.

The NAT window is shared by every running build. Each build holds a lease with an expiry; the
route is removed only by a closer that has claimed the window while no lease was held (see
`StateTable.begin_closing`), so a closing run never pulls the route from under a starting one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from cache_pilot.aws.artifacts import batch_key, get_document, put_document, report_key
from cache_pilot.aws.builds import BuildStartFailed, start_warmup_build
from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.events import request_warmup
from cache_pilot.aws.images import CachedImageFacts, ImageQuery, describe_cached_images
from cache_pilot.aws.routes import (
    RouteConflict,
    RouteState,
    close_route,
    nat_gateway_state,
    open_route,
    read_default_routes,
)
from cache_pilot.aws.state_table import ImageSettlement, StateTable, WindowClosing
from cache_pilot.settings import WarmupSettings, load_warmup_settings
from cache_pilot.state import (
    BatchRecord,
    BatchStatus,
    ImageRecord,
    ImageStatus,
    NatWindow,
    utc_now,
)
from cache_pilot.triggers import BuildEnded
from cache_pilot.warm.report import WarmReport

TERMINAL_BUILD_STATUSES = frozenset({"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"})
# A closer that has not finished within this long is taken to have died mid-way.
STALE_CLOSING = timedelta(minutes=2)


class BatchImage(BaseModel):
    model_config = ConfigDict(frozen=True)

    reference: str
    platforms: tuple[str, ...]


class WarmupBatch(BaseModel):
    """The document a build reads: `python -m cache_pilot.warm --batch` takes it as it is."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    images: tuple[BatchImage, ...]


@dataclass
class Warmup:
    """What the warm-up use cases work with; built once per function from its settings."""

    clients: AwsClients
    table: StateTable
    settings: WarmupSettings
    clock: Callable[[], datetime] = utc_now

    @property
    def route_table_ids(self) -> list[str]:
        return list(self.settings.route_table_ids)

    @classmethod
    def from_environment(cls) -> Warmup:
        """What a warm-up function builds at cold start, from the environment the stack gives."""
        settings = load_warmup_settings()
        clients = AwsClients()
        return cls(clients, StateTable(clients.dynamodb, settings.state_table), settings)


class StartOutcome(StrEnum):
    STARTED = "started"
    NOTHING_TO_WARM = "nothing-to-warm"
    ALL_SLOTS_BUSY = "all-slots-busy"
    ROUTE_CONFLICT = "route-conflict"
    NAT_UNAVAILABLE = "nat-unavailable"
    START_FAILED = "start-failed"


class StartedBatch(BaseModel):
    model_config = ConfigDict(frozen=True)

    batch_id: str
    build_id: str | None
    images: int
    error: str | None = None


class StartResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: StartOutcome
    batches: tuple[StartedBatch, ...] = ()
    detail: str | None = None


def claimable_statuses(retry_failed: bool) -> tuple[ImageStatus, ...]:
    base = (ImageStatus.PENDING, ImageStatus.STALE)
    return (*base, ImageStatus.FAILED) if retry_failed else base


def new_batch_id(now: datetime) -> str:
    # Sortable by time, unique across concurrent runs.
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}"


# --- start ------------------------------------------------------------------------------------


def start_warmup(warmup: Warmup, retry_failed: bool = False) -> StartResult:
    table, settings = warmup.table, warmup.settings
    statuses = claimable_statuses(retry_failed)
    images = table.images()
    candidates = sorted(
        (record for record in images.values() if record.status in statuses),
        key=lambda record: (
            record.status is not ImageStatus.PENDING,
            record.listed_at,
            record.reference,
        ),
    )
    if not candidates:
        return StartResult(outcome=StartOutcome.NOTHING_TO_WARM)
    # Refuse before claiming anything: a foreign default route or a NAT gateway that is not
    # there leaves the images exactly as they were.
    routes = read_default_routes(
        warmup.clients.ec2, warmup.route_table_ids, settings.nat_gateway_id
    )
    foreign = [route for route in routes if route.state is RouteState.FOREIGN]
    if foreign:
        return StartResult(outcome=StartOutcome.ROUTE_CONFLICT, detail=str(RouteConflict(foreign)))
    nat_state = nat_gateway_state(warmup.clients.ec2, settings.nat_gateway_id)
    if nat_state != "available":
        return StartResult(
            outcome=StartOutcome.NAT_UNAVAILABLE,
            detail=f"NAT gateway {settings.nat_gateway_id} is {nat_state}, not available",
        )
    running = [
        b for b in table.batches() if b.status in (BatchStatus.STARTING, BatchStatus.RUNNING)
    ]
    slots = settings.max_parallel_builds - len(running)
    if slots <= 0:
        return StartResult(
            outcome=StartOutcome.ALL_SLOTS_BUSY,
            detail=f"{len(running)} builds running; the next finish requests the rest",
        )
    groups = [
        candidates[start : start + settings.batch_size]
        for start in range(0, len(candidates), settings.batch_size)
    ][:slots]
    started = [
        batch for group in groups if (batch := _start_batch(warmup, group, statuses)) is not None
    ]
    if started and all(batch.error for batch in started):
        return StartResult(
            outcome=StartOutcome.START_FAILED, batches=tuple(started), detail=started[0].error
        )
    return StartResult(outcome=StartOutcome.STARTED, batches=tuple(started))


def _start_batch(
    warmup: Warmup, group: Sequence[ImageRecord], statuses: Sequence[ImageStatus]
) -> StartedBatch | None:
    table, settings, clients = warmup.table, warmup.settings, warmup.clients
    now = warmup.clock()
    batch_id = new_batch_id(now)
    claimed = set(
        table.claim_images([record.reference for record in group], batch_id, statuses, now)
    )
    if not claimed:
        return None  # a concurrent start claimed them all
    records = [record for record in group if record.reference in claimed]
    expires = now + settings.lease_duration
    table.put_batch(
        BatchRecord(
            batch_id=batch_id,
            references=tuple(record.reference for record in records),
            status=BatchStatus.STARTING,
            batch_key=batch_key(batch_id),
            created_at=now,
            lease_expires_at=expires,
        )
    )
    try:
        table.join_window(batch_id, expires, now, STALE_CLOSING)
    except WindowClosing as exc:
        _abandon(warmup, batch_id, list(claimed), f"warm-up not started: {exc}", holds_lease=False)
        return StartedBatch(batch_id=batch_id, build_id=None, images=len(claimed), error=str(exc))
    try:
        _open_routes(warmup)
        document = WarmupBatch(
            batch_id=batch_id,
            images=tuple(BatchImage(reference=r.reference, platforms=r.platforms) for r in records),
        )
        put_document(
            clients.s3,
            settings.artifact_bucket,
            batch_key(batch_id),
            document.model_dump_json().encode(),
        )
        build_id = start_warmup_build(
            clients.codebuild,
            settings.project_name,
            batch_id,
            batch_key(batch_id),
            settings.build_timeout_minutes,
        )
    except (RouteConflict, BuildStartFailed) as exc:
        _abandon(warmup, batch_id, list(claimed), f"warm-up not started: {exc}", holds_lease=True)
        return StartedBatch(batch_id=batch_id, build_id=None, images=len(claimed), error=str(exc))
    except Exception as exc:
        # Whatever failed, the window this run opened must not stay open.
        _abandon(warmup, batch_id, list(claimed), f"warm-up not started: {exc}", holds_lease=True)
        raise
    table.mark_batch(
        batch_id,
        BatchStatus.RUNNING,
        warmup.clock(),
        from_statuses=[BatchStatus.STARTING],
        build_id=build_id,
    )
    return StartedBatch(batch_id=batch_id, build_id=build_id, images=len(claimed))


def _open_routes(warmup: Warmup) -> None:
    routes = read_default_routes(
        warmup.clients.ec2, warmup.route_table_ids, warmup.settings.nat_gateway_id
    )
    foreign = [route for route in routes if route.state is RouteState.FOREIGN]
    if foreign:
        raise RouteConflict(foreign)
    for route in routes:
        open_route(warmup.clients.ec2, route, warmup.settings.nat_gateway_id)


def _abandon(
    warmup: Warmup, batch_id: str, references: list[str], reason: str, holds_lease: bool
) -> None:
    """Undo a start that failed: claims back, batch marked, lease released, window closed."""
    table = warmup.table
    now = warmup.clock()
    table.release_claims(references, batch_id, reason, now)
    table.mark_batch(
        batch_id,
        BatchStatus.START_FAILED,
        now,
        from_statuses=[BatchStatus.STARTING],
        error=reason,
    )
    if holds_lease:
        release_lease(warmup, batch_id)
    else:
        close_window_if_idle(warmup)


# --- the window -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Closure:
    closed: bool
    route_tables: tuple[str, ...] = ()
    open_seconds: float | None = None


def release_lease(warmup: Warmup, lease_id: str) -> Closure:
    """Give a build's lease back, and close the window when it was the last one."""
    return close_window_if_idle(warmup, warmup.table.leave_window([lease_id]))


def close_window_if_idle(warmup: Warmup, window: NatWindow | None = None) -> Closure:
    """Remove our default route from every warm-up route table when no lease is held.

    `window` is the window as just read or written, when the caller has it.
    """
    table = warmup.table
    if window is None:
        window = table.window()
    if window.leases:
        return Closure(closed=False)
    now = warmup.clock()
    if not table.begin_closing(now, STALE_CLOSING):
        return Closure(closed=False)
    removed = tuple(
        table_id
        for table_id in warmup.route_table_ids
        if close_route(warmup.clients.ec2, table_id, warmup.settings.nat_gateway_id)
    )
    table.finish_closing(warmup.clock())
    opened = window.opened_at
    return Closure(
        closed=True,
        route_tables=removed,
        open_seconds=(now - opened).total_seconds() if opened and removed else None,
    )


# --- finish -----------------------------------------------------------------------------------


class FinishOutcome(StrEnum):
    SETTLED = "settled"
    DUPLICATE = "duplicate"  # this build was already settled: nothing to record again
    UNKNOWN_BATCH = "unknown-batch"
    NOT_TERMINAL = "not-terminal"


class FinishResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: FinishOutcome
    batch_id: str | None = None
    build_status: str | None = None
    warm: tuple[str, ...] = ()
    failed: dict[str, str] = {}
    window_closed: bool = False
    closed_route_tables: tuple[str, ...] = ()
    nat_open_seconds: float | None = None
    more_requested: bool = False


def finish_warmup(
    warmup: Warmup, ended: BuildEnded, missing_status: ImageStatus = ImageStatus.FAILED
) -> FinishResult:
    """Settle a batch whose build ended. An image ECR does not hold becomes `missing_status`:
    FAILED after a build that reported its end, PENDING when the watchdog found the build
    gone without a word (it never had its chance)."""
    if ended.build_status not in TERMINAL_BUILD_STATUSES:
        return FinishResult(outcome=FinishOutcome.NOT_TERMINAL, build_status=ended.build_status)
    table = warmup.table
    batch = find_batch(table, ended)
    if batch is None:
        return FinishResult(outcome=FinishOutcome.UNKNOWN_BATCH, batch_id=ended.batch_id)
    # The build has stopped pulling: close the window first, then check what it cached, so
    # the route is open no longer than the build needed it. A second delivery finds the
    # batch FINISHED (or, meanwhile, its images no longer WARMING) and settles nothing twice.
    closure = release_lease(warmup, batch.batch_id)
    if batch.status is BatchStatus.FINISHED:
        return FinishResult(
            outcome=FinishOutcome.DUPLICATE,
            batch_id=batch.batch_id,
            build_status=ended.build_status,
            window_closed=closure.closed,
            closed_route_tables=closure.route_tables,
        )
    records = table.images()
    settlements = settle_batch(warmup, batch, ended.build_status, records, missing_status)
    table.mark_batch(
        batch.batch_id,
        BatchStatus.FINISHED,
        warmup.clock(),
        from_statuses=[BatchStatus.RUNNING, BatchStatus.STARTING],
        build_id=ended.build_id,
        build_status=ended.build_status,
    )
    more = _request_more_if_waiting(warmup, records)
    return FinishResult(
        outcome=FinishOutcome.SETTLED,
        batch_id=batch.batch_id,
        build_status=ended.build_status,
        warm=tuple(s.reference for s in settlements if s.status is ImageStatus.WARM),
        failed={
            s.reference: s.error or "" for s in settlements if s.status is not ImageStatus.WARM
        },
        window_closed=closure.closed,
        closed_route_tables=closure.route_tables,
        nat_open_seconds=closure.open_seconds,
        more_requested=more,
    )


def find_batch(table: StateTable, ended: BuildEnded) -> BatchRecord | None:
    if ended.batch_id:
        return table.batch(ended.batch_id)
    # An event without our variables: match the build id the start recorded.
    return next((b for b in table.batches() if b.build_id == ended.build_id), None)


def settle_batch(
    warmup: Warmup,
    batch: BatchRecord,
    build_status: str,
    records: dict[str, ImageRecord],
    missing_status: ImageStatus = ImageStatus.FAILED,
) -> list[ImageSettlement]:
    """Ask ECR what it holds for each image of the batch and record WARM or FAILED.

    The build's report says which platform manifests it pulled, so ECR is asked for those too;
    the build's own verdict is used only to explain a failure.
    """
    clients, table = warmup.clients, warmup.table
    report = _read_report(warmup, batch.batch_id)
    results = {image.reference: image for image in report.images} if report else {}
    queries = {}
    for reference in batch.references:
        record = records.get(reference)
        if record is None:
            continue
        result = results.get(reference)
        digests = tuple(p.digest for p in result.platforms if p.digest) if result else ()
        queries[reference] = ImageQuery(record.repository, record.tag, digests)
    facts = describe_cached_images(clients.ecr, queries.values())
    now = warmup.clock()
    settlements = []
    for reference, query in queries.items():
        found = facts[(query.repository, query.tag)]
        record = records[reference]
        error = _failure(found, record, results.get(reference), report, build_status)
        settlements.append(
            ImageSettlement(
                reference=reference,
                status=missing_status if error else ImageStatus.WARM,
                checked_at=now,
                cached_digest=found.digest,
                cached_at=found.pushed_at,
                last_pulled_at=found.last_pulled_at,
                error=error,
            )
        )
    table.settle_images(batch.batch_id, settlements)
    return settlements


def _failure(
    found: CachedImageFacts,
    record: ImageRecord,
    result: object,
    report: WarmReport | None,
    build_status: str,
) -> str | None:
    if found.cached:
        if record.pinned_digest and found.digest != record.pinned_digest:
            return (
                f"ECR caches {record.repository}:{record.tag} as {found.digest}, not the pinned "
                f"{record.pinned_digest}"
            )
        return None
    reasons = [found.error or "not in ECR"]
    build_error = getattr(result, "error", None) or (report.error if report else None)
    if build_error is not None:
        reasons.append(f"the build reported {build_error}")
    elif build_status != "SUCCEEDED":
        reasons.append(f"the build ended {build_status}")
    return "; ".join(reasons)


def _read_report(warmup: Warmup, batch_id: str) -> WarmReport | None:
    body = get_document(warmup.clients.s3, warmup.settings.artifact_bucket, report_key(batch_id))
    if body is None:
        return None
    try:
        return WarmReport.from_json(json.loads(body))
    except (ValueError, KeyError, TypeError):
        return None  # a truncated or foreign report explains nothing; ECR still decides


def _request_more_if_waiting(warmup: Warmup, records: dict[str, ImageRecord]) -> bool:
    """A finish frees a build slot: if images still wait, ask for another warm-up.

    `records` were read before this batch settled; its own images were WARMING, not waiting.
    """
    source = warmup.settings.event_source
    if source is None:
        return False
    waiting = [
        record
        for record in records.values()
        if record.status in (ImageStatus.PENDING, ImageStatus.STALE)
    ]
    if not waiting:
        return False
    request_warmup(warmup.clients.events, source, reason="build slot freed", retry_failed=False)
    return True
