"""Freshness over time: what ECR holds for every tracked image, and the NAT watchdog.

`check_freshness` re-reads ECR for every listed image and records it: an image whose last
confirmation is older than its max age becomes STALE (and a warm-up is requested), one that
ECR no longer has goes back to PENDING, and items retired long ago are removed.

`watch_nat_window` enforces the leases' expiry, whatever events were lost: a lease whose
build has ended (CodeBuild says so) or whose time is up is settled and released, and the
route is removed once no lease is held. With it, the route is never open longer than the
longest allowed build plus one watchdog period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cache_pilot.aws.builds import running_builds
from cache_pilot.aws.events import request_warmup
from cache_pilot.aws.images import CachedImageFacts, ImageQuery, describe_cached_images
from cache_pilot.aws.state_table import FreshnessUpdate
from cache_pilot.state import BatchRecord, BatchStatus, ImageRecord, ImageStatus
from cache_pilot.triggers import BuildEnded
from cache_pilot.warmup import (
    TERMINAL_BUILD_STATUSES,
    Warmup,
    close_window_if_idle,
    finish_warmup,
    release_lease,
)

# Images whose state a freshness check reads and may change; a WARMING one belongs to a build.
CHECKED_STATUSES = (ImageStatus.WARM, ImageStatus.STALE, ImageStatus.PENDING, ImageStatus.FAILED)
# A batch still STARTING after this long lost its start_warmup run.
ABANDONED_START = timedelta(minutes=15)


@dataclass
class FreshnessReport:
    checked: int = 0
    became_stale: list[str] = field(default_factory=list)
    went_missing: list[str] = field(default_factory=list)
    removed_retired: list[str] = field(default_factory=list)
    by_status: dict[str, int] = field(default_factory=dict)
    warmup_requested: bool = False


def last_confirmed(record: ImageRecord) -> datetime | None:
    """When the cached copy was last known fresh: its last warm-up, or when ECR cached it."""
    moments = [moment for moment in (record.verified_at, record.cached_at) if moment is not None]
    return max(moments) if moments else None


def freshness_update(
    record: ImageRecord, facts: CachedImageFacts, now: datetime
) -> FreshnessUpdate:
    """What one check learns about one image, and the status that follows."""
    status = record.status
    if facts.digest is None:
        # Gone from ECR (a lifecycle policy, a manual delete): warm it again.
        if status in (ImageStatus.WARM, ImageStatus.STALE):
            status = ImageStatus.PENDING
    elif status is ImageStatus.WARM:
        confirmed = last_confirmed(record) or facts.pushed_at
        if confirmed is not None and now - confirmed > timedelta(seconds=record.max_age_seconds):
            status = ImageStatus.STALE
    return FreshnessUpdate(
        reference=record.reference,
        expected_status=record.status,
        status=status,
        checked_at=now,
        cached_digest=facts.digest,
        cached_at=facts.pushed_at,
        last_pulled_at=facts.last_pulled_at,
    )


def check_freshness(warmup: Warmup, retired_retention: timedelta) -> FreshnessReport:
    table, clients = warmup.table, warmup.clients
    now = warmup.clock()
    records = table.images()
    report = FreshnessReport()
    checked = [record for record in records.values() if record.status in CHECKED_STATUSES]
    facts = describe_cached_images(
        clients.ecr, (ImageQuery(record.repository, record.tag) for record in checked)
    )
    updates = [
        freshness_update(record, facts[(record.repository, record.tag)], now) for record in checked
    ]
    applied = set(table.record_freshness(updates))
    report.checked = len(applied)
    status_now = {reference: record.status for reference, record in records.items()}
    for update in updates:
        if update.reference not in applied or update.status is update.expected_status:
            continue
        status_now[update.reference] = update.status
        if update.status is ImageStatus.STALE:
            report.became_stale.append(update.reference)
        elif update.status is ImageStatus.PENDING:
            report.went_missing.append(update.reference)
    retired_before = now - retired_retention
    expired = [
        record.reference
        for record in records.values()
        if record.status is ImageStatus.RETIRED
        and (record.retired_at or record.updated_at) < retired_before
    ]
    report.removed_retired = table.remove_retired(expired, retired_before)
    for reference in report.removed_retired:
        del status_now[reference]
    statuses = {status.value: 0 for status in ImageStatus}
    for status in status_now.values():
        statuses[status.value] += 1
    report.by_status = statuses
    waiting = statuses[ImageStatus.STALE.value] + statuses[ImageStatus.PENDING.value]
    if waiting and warmup.settings.event_source:
        request_warmup(clients.events, warmup.settings.event_source, "freshness check", False)
        report.warmup_requested = True
    return report


# --- the NAT watchdog -------------------------------------------------------------------------


@dataclass
class WatchdogReport:
    leases: int = 0
    released: dict[str, str] = field(default_factory=dict)  # batch id -> why
    still_running: list[str] = field(default_factory=list)
    route_closed: bool = False
    closed_route_tables: tuple[str, ...] = ()


def watch_nat_window(warmup: Warmup) -> WatchdogReport:
    """Release what no completion event released, then close the route if no lease is left.

    Looked at: every lease, and every batch not yet settled even without a lease (a start or
    a finish that died mid-way), so no image stays WARMING and no build slot stays taken.
    """
    table = warmup.table
    now = warmup.clock()
    window = table.window()
    report = WatchdogReport(leases=len(window.leases))
    batches = {batch.batch_id: batch for batch in table.batches()}
    unsettled = {
        batch_id
        for batch_id, batch in batches.items()
        if batch.status in (BatchStatus.STARTING, BatchStatus.RUNNING)
    }
    candidates = sorted(set(window.leases) | unsettled)
    build_ids = [
        batch.build_id
        for batch_id in candidates
        if (batch := batches.get(batch_id)) is not None and batch.build_id
    ]
    statuses = running_builds(warmup.clients.codebuild, build_ids) if build_ids else {}
    closed: list[str] = []
    for batch_id in candidates:
        batch = batches.get(batch_id)
        reason = _why_release(batch, window.leases.get(batch_id), statuses, now)
        if reason is None:
            report.still_running.append(batch_id)
            continue
        report.released[batch_id] = reason
        if batch is None:
            closed.extend(release_lease(warmup, batch_id).route_tables)
            continue
        build_status = statuses.get(batch.build_id or "", "")
        finished = finish_warmup(
            warmup,
            BuildEnded(
                build_id=batch.build_id or "",
                build_status=build_status
                if build_status in TERMINAL_BUILD_STATUSES
                else "TIMED_OUT",
                batch_id=batch_id,
            ),
            missing_status=ImageStatus.PENDING,
        )
        closed.extend(finished.closed_route_tables)
    # Also the route a closer left behind when it died mid-way, or that no lease ever held.
    closed.extend(close_window_if_idle(warmup).route_tables)
    report.route_closed = bool(closed)
    report.closed_route_tables = tuple(dict.fromkeys(closed))
    return report


def _why_release(
    batch: BatchRecord | None,
    expires_at: datetime | None,
    statuses: dict[str, str],
    now: datetime,
) -> str | None:
    if expires_at is not None and expires_at < now:
        return f"lease expired at {expires_at.isoformat()}"
    if batch is None:
        return "no batch holds this lease"
    if batch.status not in (BatchStatus.STARTING, BatchStatus.RUNNING):
        return f"batch already {batch.status.value.lower()}"
    if batch.status is BatchStatus.STARTING and not batch.build_id:
        if now - batch.created_at > ABANDONED_START:
            return "the start never reached CodeBuild"
        return None
    status = statuses.get(batch.build_id or "")
    if status is None:
        return f"CodeBuild does not know build {batch.build_id}"
    if status in TERMINAL_BUILD_STATUSES:
        return f"build ended {status}; its completion event was lost"
    return None
