"""`cache-pilot status`, `cache-pilot warm` and `cache-pilot nat`: the state table read for an
operator, and a warm-up on request.

Each reads the state table (and, for `nat`, the warm-up route tables) through the same adapters
the functions use; only `warm` writes, and only through StateTable.mark_stale's conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.events import EventNotSent, request_warmup
from cache_pilot.aws.routes import DefaultRoute, RouteState, read_default_routes
from cache_pilot.aws.state_table import StateTable
from cache_pilot.state import (
    BatchRecord,
    BatchStatus,
    ImageRecord,
    ImageStatus,
    WindowState,
)
from cache_pilot_cli.output import Output, aws_failure
from cache_pilot_cli.render import (
    lease_line,
    problems_first,
    route_line,
    seconds_since,
    status_counts_line,
    status_table,
    window_line,
)

OPERATOR_REASON = "requested by an operator"
# What mark_stale changes; a PENDING or WARMING image is already on its way.
REWARMABLE = (ImageStatus.WARM, ImageStatus.FAILED, ImageStatus.STALE)
ROUTES_TO_OUR_NAT = (RouteState.OURS, RouteState.OURS_BLACKHOLE)


def parse_moment(text: str) -> datetime:
    """An ISO 8601 moment for --now; one without an offset is UTC."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- status -----------------------------------------------------------------------------------


class ImageStatusEntry(ImageRecord):
    """An image item as `status --json` prints it: every field, and its age at the moment asked."""

    age_seconds: int | None


def show_status(
    clients: AwsClients, table_name: str, output: Output, *, now: datetime, as_json: bool = False
) -> int:
    try:
        records = StateTable(clients.dynamodb, table_name).images()
    except (BotoCoreError, ClientError) as exc:
        output.error(f"cache-pilot status: {aws_failure(exc, table_name)}")
        return 1
    ordered = problems_first(records.values())
    if as_json:
        output.json(
            [
                ImageStatusEntry.model_validate(
                    {**record.model_dump(), "age_seconds": seconds_since(record.cached_at, now)}
                ).model_dump(mode="json")
                for record in ordered
            ]
        )
        return 0
    if not ordered:
        output.line(
            f"No image item in {table_name}: list images in the configuration and run "
            "`cache-pilot sync`."
        )
        return 0
    output.show(status_table(ordered, now))
    output.line(status_counts_line(ordered), style="bold")
    return 0


# --- warm -------------------------------------------------------------------------------------


def _outcome(
    reference: str,
    was: ImageRecord | None,
    after: ImageRecord | None,
    marked: bool,
    table_name: str,
) -> str:
    """What `warm` did to one reference, in a line."""
    if was is None or was.status is ImageStatus.RETIRED:
        retired = " (RETIRED: no longer in the configuration)" if was is not None else ""
        return f"{reference}: not listed in {table_name}{retired}; nothing to warm"
    if marked:
        if was.status is ImageStatus.STALE:
            return f"{reference}: STALE, already waiting for a warm-up"
        return f"{reference}: {was.status.value} -> STALE; the next warm-up pulls it again"
    current = after or was
    if current.status is ImageStatus.PENDING:
        return f"{reference}: PENDING, already waiting for a warm-up"
    if current.status is ImageStatus.WARMING:
        return f"{reference}: WARMING in batch {current.build_id}, already being warmed"
    return f"{reference}: now {current.status.value} (changed meanwhile); left as it is"


def request_rewarm(
    clients: AwsClients,
    table_name: str,
    references: Sequence[str],
    output: Output,
    *,
    now: datetime,
    event_source: str | None,
) -> int:
    """Mark the named images STALE and ask for a warm-up; exit 1 if one is not listed."""
    wanted = list(dict.fromkeys(references))
    table = StateTable(clients.dynamodb, table_name)
    try:
        before = table.images()
        rewarmable = [
            reference
            for reference in wanted
            if reference in before and before[reference].status in REWARMABLE
        ]
        marked = set(table.mark_stale(rewarmable, now)) if rewarmable else set()
        # A condition that did not hold: another run changed the image since it was read.
        after = table.images() if len(marked) < len(rewarmable) else before
    except (BotoCoreError, ClientError) as exc:
        output.error(f"cache-pilot warm: {aws_failure(exc, table_name)}")
        return 1
    not_listed = []
    waiting = False
    for reference in wanted:
        was = before.get(reference)
        current = after.get(reference)
        output.line(_outcome(reference, was, current, reference in marked, table_name))
        if was is None or was.status is ImageStatus.RETIRED:
            not_listed.append(reference)
        elif reference in marked or (current and current.status is ImageStatus.PENDING):
            waiting = True
    if waiting:
        if event_source:
            try:
                request_warmup(
                    clients.events, event_source, reason=OPERATOR_REASON, retry_failed=True
                )
            except (EventNotSent, BotoCoreError, ClientError) as exc:
                output.error(
                    f"cache-pilot warm: the warm-up request to {event_source} was not sent "
                    f"({exc}); the next scheduled run warms the waiting images"
                )
                return 1
            output.line(
                f"Warm-up requested ({event_source}): it pulls every waiting image, "
                "FAILED ones included.",
                style="bold",
            )
        else:
            output.line(
                "No event source (--event-source or CACHE_PILOT_EVENT_SOURCE): the next "
                "scheduled run warms them.",
                style="bold",
            )
    if not_listed:
        count = len(not_listed)
        output.error(
            f"cache-pilot warm: {count} reference{' is' if count == 1 else 's are'} not a listed "
            f"image in {table_name}; `cache-pilot status` shows the listed ones"
        )
        return 1
    return 0


# --- nat --------------------------------------------------------------------------------------


class LeaseReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    batch_id: str
    expires_at: datetime
    expired: bool
    batch_status: BatchStatus | None
    build_id: str | None
    build_status: str | None
    images: int | None


class RouteReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    route_table_id: str
    state: RouteState
    target: str | None


class NatReport(BaseModel):
    """What `nat --json` prints."""

    model_config = ConfigDict(frozen=True)

    state: WindowState
    open: bool
    opened_at: datetime | None
    open_seconds: int | None
    closing_since: datetime | None
    closed_at: datetime | None
    leases: tuple[LeaseReport, ...]
    nat_gateway_id: str | None
    routes: tuple[RouteReport, ...] | None  # None: no route tables were asked about
    warnings: tuple[str, ...]


def orphan_route_warning(routes: Sequence[DefaultRoute], nat_gateway_id: str) -> str | None:
    """The loud line for a route to our NAT gateway that no lease holds open."""
    tables = [route.route_table_id for route in routes if route.state in ROUTES_TO_OUR_NAT]
    if not tables:
        return None
    return (
        f"WARNING: {', '.join(tables)} still route 0.0.0.0/0 to {nat_gateway_id} while no lease "
        "is held: egress is open with no warm-up using it. The NAT watchdog removes it on its "
        "next run (WatchdogSchedule); if it stays, read the NatWatchdogFunction's log."
    )


def _lease_report(
    batch_id: str, expires_at: datetime, batch: BatchRecord | None, now: datetime
) -> LeaseReport:
    return LeaseReport(
        batch_id=batch_id,
        expires_at=expires_at,
        expired=expires_at < now,
        batch_status=batch.status if batch else None,
        build_id=batch.build_id if batch else None,
        build_status=batch.build_status if batch else None,
        images=len(batch.references) if batch else None,
    )


def show_nat(
    clients: AwsClients,
    table_name: str,
    output: Output,
    *,
    now: datetime,
    route_table_ids: Sequence[str] = (),
    nat_gateway_id: str | None = None,
    as_json: bool = False,
) -> int:
    if bool(route_table_ids) != bool(nat_gateway_id):
        output.error(
            "cache-pilot nat: --route-tables and --nat-gateway go together (or "
            "CACHE_PILOT_ROUTE_TABLES and CACHE_PILOT_NAT_GATEWAY): the route state needs both"
        )
        return 2
    table = StateTable(clients.dynamodb, table_name)
    routes: list[DefaultRoute] | None = None
    try:
        window = table.window()
        # By key: the batch partition keeps every batch ever started, a window few leases.
        batches = {batch_id: table.batch(batch_id) for batch_id in window.leases}
        if route_table_ids and nat_gateway_id:
            routes = read_default_routes(clients.ec2, list(route_table_ids), nat_gateway_id)
    except (BotoCoreError, ClientError, LookupError) as exc:
        output.error(f"cache-pilot nat: {aws_failure(exc, table_name)}")
        return 1
    leases = sorted(window.leases.items(), key=lambda lease: (lease[1], lease[0]))
    warnings = []
    if routes is not None and nat_gateway_id and not window.leases:
        orphan = orphan_route_warning(routes, nat_gateway_id)
        if orphan:
            warnings.append(orphan)
    if as_json:
        report = NatReport(
            state=window.state,
            open=window.state is not WindowState.CLOSED,
            opened_at=window.opened_at,
            open_seconds=seconds_since(window.opened_at, now),
            closing_since=window.closing_since,
            closed_at=window.closed_at,
            leases=tuple(
                _lease_report(batch_id, expires, batches.get(batch_id), now)
                for batch_id, expires in leases
            ),
            nat_gateway_id=nat_gateway_id,
            routes=None
            if routes is None
            else tuple(
                RouteReport(route_table_id=r.route_table_id, state=r.state, target=r.target)
                for r in routes
            ),
            warnings=tuple(warnings),
        )
        output.json(report.model_dump(mode="json"))
    else:
        output.line(window_line(window, now), style="bold")
        if leases:
            output.line(f"{len(leases)} lease{'' if len(leases) == 1 else 's'} held:")
            for batch_id, expires in leases:
                output.line(lease_line(batch_id, expires, batches.get(batch_id), now))
        else:
            output.line("No lease is held.")
        if routes is not None:
            output.line(f"Default routes of the warm-up route tables (to {nat_gateway_id}):")
            for route in routes:
                output.line(route_line(route))
    for warning in warnings:
        output.error(warning)
    return 0
