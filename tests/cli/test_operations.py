"""The operator's view of a running cache: `status`, `warm` and `nat`, in-process against moto
(and once against the embedded AWS through AWS_ENDPOINT_URL), at a fixed --now."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.routes import DefaultRoute, RouteState
from cache_pilot.aws.state_table import ImageSettlement, StateTable
from cache_pilot.state import (
    BatchRecord,
    BatchStatus,
    ImageRecord,
    ImageStatus,
    NatWindow,
    WindowState,
)
from cache_pilot_cli.render import (
    age_text,
    problems_first,
    route_line,
    seconds_since,
    short_digest,
    status_counts_line,
    window_line,
)
from cache_pilot_local.server import EmbeddedAws, create_stack_resources
from cache_pilot_local.template import StackTemplate
from tests.cli.conftest import Cli
from tests.conftest import TABLE_NAME
from tests.listing import list_pending

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
AT_NOW = ("--now", "2026-11-29T10:00:00Z")
DIGEST = "sha256:3f1c2a9b0d4e" + "7" * 52
SOURCE = "cache-pilot.team-a"
CLOSING_GRACE = timedelta(minutes=5)


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as a pipe gets them, whatever terminal runs the tests."""
    monkeypatch.setenv("COLUMNS", "160")


def stripped(text: str) -> list[str]:
    """Output lines without the padding rich adds to table cells."""
    return [line.rstrip() for line in text.splitlines()]


def list_images(table: StateTable, *references: str, listed_at: datetime = NOW) -> None:
    """Images as a sync leaves them: PENDING items."""
    list_pending(table, references, listed_at=listed_at)


def warm_up(table: StateTable, batch_id: str, *outcomes: ImageSettlement) -> None:
    """A finished warm-up of these images: claimed, then settled as ECR found them."""
    references = [outcome.reference for outcome in outcomes]
    claimable = [ImageStatus.PENDING, ImageStatus.STALE, ImageStatus.FAILED]
    assert table.claim_images(references, batch_id, claimable, NOW - timedelta(days=4))
    assert table.settle_images(batch_id, outcomes)


def warm(reference: str, cached_ago: timedelta, pulled_ago: timedelta | None) -> ImageSettlement:
    return ImageSettlement(
        reference=reference,
        status=ImageStatus.WARM,
        checked_at=NOW - cached_ago,
        cached_digest=DIGEST,
        cached_at=NOW - cached_ago,
        last_pulled_at=NOW - pulled_ago if pulled_ago is not None else None,
    )


def failed(reference: str, error: str) -> ImageSettlement:
    return ImageSettlement(
        reference=reference, status=ImageStatus.FAILED, checked_at=NOW, error=error
    )


def statuses(table: StateTable) -> dict[str, str]:
    return {reference: record.status.value for reference, record in table.images().items()}


# --- the pure parts: order, ages, digests -------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(None, "-", id="never"),
        pytest.param(0, "0s", id="now"),
        pytest.param(42, "42s", id="seconds"),
        pytest.param(60, "1m", id="a whole minute"),
        pytest.param(12 * 60 + 5, "12m5s", id="minutes and seconds"),
        pytest.param(4 * 3600 + 12 * 60 + 59, "4h12m", id="hours and minutes, seconds dropped"),
        pytest.param(3 * 86400 + 4 * 3600 + 59 * 60, "3d4h", id="days and hours, truncated"),
        pytest.param(2 * 86400 + 30 * 60, "2d", id="no hours: the days alone"),
        pytest.param(-30, "0s", id="a clock skew: never negative"),
    ],
)
def test_age_text_shows_the_two_largest_units(seconds: int | None, text: str) -> None:
    assert age_text(seconds) == text


def test_seconds_since_is_none_without_a_moment_and_never_negative() -> None:
    assert seconds_since(None, NOW) is None
    assert seconds_since(NOW - timedelta(days=3, hours=4), NOW) == 3 * 86400 + 4 * 3600
    assert seconds_since(NOW + timedelta(seconds=5), NOW) == 0


@pytest.mark.parametrize(
    ("digest", "text"),
    [
        (DIGEST, "3f1c2a9b0d4e"),
        ("sha512:" + "0a" * 64, "0a0a0a0a0a0a"),
        (None, "-"),
    ],
)
def test_short_digest_is_twelve_hex_digits(digest: str | None, text: str) -> None:
    assert short_digest(digest) == text


def record(reference: str, status: ImageStatus) -> ImageRecord:
    repository, _, tag = reference.rpartition(":")
    return ImageRecord(
        reference=reference,
        repository=repository,
        tag=tag,
        rule_prefix="k8s",
        platforms=("linux/amd64",),
        max_age_seconds=86400,
        status=status,
        listed_at=NOW,
        updated_at=NOW,
    )


def test_problems_come_first_then_references_in_order() -> None:
    # Given items of every status, in no particular order
    records = [
        record("k8s/a:1", ImageStatus.WARM),
        record("k8s/b:1", ImageStatus.RETIRED),
        record("k8s/c:1", ImageStatus.WARMING),
        record("k8s/d:1", ImageStatus.PENDING),
        record("k8s/e:1", ImageStatus.STALE),
        record("k8s/f:1", ImageStatus.FAILED),
        record("k8s/a:0", ImageStatus.FAILED),
    ]
    # When they are ordered for the status table
    ordered = [(r.status.value, r.reference) for r in problems_first(records)]
    # Then what needs a look leads, and references sort within a status
    assert ordered == [
        ("FAILED", "k8s/a:0"),
        ("FAILED", "k8s/f:1"),
        ("STALE", "k8s/e:1"),
        ("PENDING", "k8s/d:1"),
        ("WARMING", "k8s/c:1"),
        ("WARM", "k8s/a:1"),
        ("RETIRED", "k8s/b:1"),
    ]
    assert status_counts_line(records) == (
        "7 images: 2 FAILED, 1 STALE, 1 PENDING, 1 WARMING, 1 WARM, 1 RETIRED"
    )
    assert status_counts_line(records[:1]) == "1 image: 1 WARM"


@pytest.mark.parametrize(
    ("window", "line"),
    [
        pytest.param(NatWindow(), "NAT window: CLOSED", id="never opened"),
        pytest.param(
            NatWindow(state=WindowState.CLOSED, closed_at=NOW - timedelta(minutes=3)),
            "NAT window: CLOSED since 2026-11-29 09:57:00 UTC",
            id="closed",
        ),
        pytest.param(
            NatWindow(state=WindowState.OPEN, opened_at=NOW - timedelta(hours=1, minutes=5)),
            "NAT window: OPEN since 2026-11-29 08:55:00 UTC (for 1h5m)",
            id="open",
        ),
        pytest.param(
            NatWindow(state=WindowState.CLOSING, closing_since=NOW - timedelta(seconds=20)),
            "NAT window: CLOSING since 2026-11-29 09:59:40 UTC (for 20s): a run is removing the route",
            id="closing",
        ),
    ],
)
def test_window_line_says_the_state_and_since_when(window: NatWindow, line: str) -> None:
    assert window_line(window, NOW) == line


@pytest.mark.parametrize(
    ("route", "line"),
    [
        (DefaultRoute("rtb-1", RouteState.ABSENT), "  rtb-1: absent (no 0.0.0.0/0 route)"),
        (DefaultRoute("rtb-1", RouteState.OURS, "nat-1"), "  rtb-1: ours (0.0.0.0/0 -> nat-1)"),
        (
            DefaultRoute("rtb-1", RouteState.OURS_BLACKHOLE, "nat-1"),
            "  rtb-1: ours-blackhole (0.0.0.0/0 -> nat-1, a blackhole: the NAT gateway is gone)",
        ),
        (
            DefaultRoute("rtb-1", RouteState.FOREIGN, "tgw-9"),
            "  rtb-1: foreign (0.0.0.0/0 -> tgw-9, not cache-pilot's: never touched)",
        ),
    ],
)
def test_route_line_names_the_state_and_the_target(route: DefaultRoute, line: str) -> None:
    assert route_line(route) == line


# --- status -------------------------------------------------------------------------------------


@pytest.fixture
def cache_of_every_status(state_table: StateTable) -> StateTable:
    """Seven images, one or two of each status, as syncs and warm-ups leave them."""
    list_images(
        state_table,
        "k8s/pause:3.10",
        "k8s/etcd:3.5.15-0",
        "k8s/coredns/coredns:v1.11.3",
        "k8s/kube-proxy:v1.31.2",
        "k8s/kube-scheduler:v1.31.2",
        "k8s/old:1",
        "k8s/kube-apiserver:v1.31.2",
        listed_at=NOW - timedelta(days=5),
    )
    warm_up(
        state_table,
        "batch-1",
        warm("k8s/pause:3.10", timedelta(days=3, hours=4, minutes=5), timedelta(hours=2)),
        warm("k8s/kube-proxy:v1.31.2", timedelta(days=9), None),
        warm("k8s/old:1", timedelta(days=4), None),
        warm("k8s/kube-apiserver:v1.31.2", timedelta(minutes=12, seconds=5), timedelta(0)),
        failed("k8s/etcd:3.5.15-0", "manifest unknown: 3.5.15-0 is not upstream"),
    )
    assert state_table.mark_stale(["k8s/kube-proxy:v1.31.2"], NOW) == ["k8s/kube-proxy:v1.31.2"]
    assert state_table.retire_image("k8s/old:1", NOW)
    claimed = state_table.claim_images(
        ["k8s/kube-scheduler:v1.31.2"], "batch-2", [ImageStatus.PENDING], NOW
    )
    assert claimed == ["k8s/kube-scheduler:v1.31.2"]
    return state_table


def test_status_lists_every_image_problems_first_with_ages(
    cli: Cli, cache_of_every_status: StateTable
) -> None:
    # When the operator asks at a fixed moment
    run = cli("status", *AT_NOW)
    # Then every item is a row, problems first, with short digests and ages, and a count line
    assert run.exit_code == 0, run.stderr
    header, rule, *rows = stripped(run.stdout)
    assert header == (
        " image                         status    digest         age     last pull   last error"
    )
    assert set(rule) == {"─"}
    assert rows == [
        " k8s/etcd:3.5.15-0             FAILED    -              -       -           manifest unknown: 3.5.15-0 is not upstream",
        " k8s/kube-proxy:v1.31.2        STALE     3f1c2a9b0d4e   9d      -",
        " k8s/coredns/coredns:v1.11.3   PENDING   -              -       -",
        " k8s/kube-scheduler:v1.31.2    WARMING   -              -       -",
        " k8s/kube-apiserver:v1.31.2    WARM      3f1c2a9b0d4e   12m5s   0s ago",
        " k8s/pause:3.10                WARM      3f1c2a9b0d4e   3d4h    2h ago",
        " k8s/old:1                     RETIRED   3f1c2a9b0d4e   4d      -",
        "7 images: 1 FAILED, 1 STALE, 1 PENDING, 1 WARMING, 2 WARM, 1 RETIRED",
    ]
    assert run.stderr == ""


def test_status_json_is_every_field_of_every_item_with_its_age(
    cli: Cli, cache_of_every_status: StateTable
) -> None:
    run = cli("status", "--json", *AT_NOW)
    assert run.exit_code == 0, run.stderr
    items = json.loads(run.stdout)
    # In the table's order, each with every ImageRecord field and its age at --now
    assert [(item["status"], item["reference"]) for item in items][:3] == [
        ("FAILED", "k8s/etcd:3.5.15-0"),
        ("STALE", "k8s/kube-proxy:v1.31.2"),
        ("PENDING", "k8s/coredns/coredns:v1.11.3"),
    ]
    assert all(set(item) == {*ImageRecord.model_fields, "age_seconds"} for item in items)
    pause = next(item for item in items if item["reference"] == "k8s/pause:3.10")
    assert pause["age_seconds"] == 3 * 86400 + 4 * 3600 + 5 * 60
    assert pause["cached_at"] == "2026-11-26T05:55:00Z"
    assert pause["last_pulled_at"] == "2026-11-29T08:00:00Z"
    assert pause["cached_digest"] == DIGEST
    etcd = items[0]
    assert (etcd["age_seconds"], etcd["last_error"]) == (
        None,
        "manifest unknown: 3.5.15-0 is not upstream",
    )


def test_status_of_an_empty_table_says_how_images_get_there(
    cli: Cli, state_table: StateTable
) -> None:
    run = cli("status")
    assert (run.exit_code, run.lines) == (
        0,
        [
            f"No image item in {TABLE_NAME}: list images in the configuration and run `cache-pilot sync`."
        ],
    )
    assert json.loads(cli("status", "--json").stdout) == []


def test_status_rejects_a_now_that_is_no_moment(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("status", "--now", "yesterday")
    assert exited.value.code == 2
    assert "'yesterday' is not an ISO 8601 moment" in capsys.readouterr().err


# --- warm ---------------------------------------------------------------------------------------


WarmupRequests = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def warmup_requests(clients: AwsClients) -> WarmupRequests:
    """A queue behind a rule that listens for the stack's warm-up requests, as start_warmup's."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="start-warmup")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": [SOURCE], "detail-type": ["Warm-up Requested"]}
    clients.events.put_rule(Name="warmup", EventPattern=json.dumps(pattern))
    clients.events.put_targets(Rule="warmup", Targets=[{"Id": "start", "Arn": arn}])

    def received() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]

    return received


def test_warm_marks_warm_images_stale_and_requests_one_warmup(
    cli: Cli, state_table: StateTable, warmup_requests: WarmupRequests
) -> None:
    # Given a WARM, a PENDING, a WARMING and a retired image
    list_images(state_table, "k8s/pause:3.10", "k8s/etcd:3.5.15-0", "k8s/kube-proxy:v1.31.2")
    list_images(state_table, "k8s/old:1")
    warm_up(state_table, "batch-1", warm("k8s/pause:3.10", timedelta(days=1), None))
    state_table.claim_images(["k8s/kube-proxy:v1.31.2"], "batch-2", [ImageStatus.PENDING], NOW)
    state_table.retire_image("k8s/old:1", NOW)
    # When the operator asks for them, and for one that was never listed, with the event source
    run = cli(
        "warm",
        "k8s/pause:3.10",
        "k8s/etcd:3.5.15-0",
        "k8s/kube-proxy:v1.31.2",
        "k8s/old:1",
        "quay/nope:1",
        "--event-source",
        SOURCE,
    )
    # Then each reference has its line, and the command fails for the ones not listed
    assert run.exit_code == 1
    assert run.lines == [
        "k8s/pause:3.10: WARM -> STALE; the next warm-up pulls it again",
        "k8s/etcd:3.5.15-0: PENDING, already waiting for a warm-up",
        "k8s/kube-proxy:v1.31.2: WARMING in batch batch-2, already being warmed",
        f"k8s/old:1: not listed in {TABLE_NAME} (RETIRED: no longer in the configuration); nothing to warm",
        f"quay/nope:1: not listed in {TABLE_NAME}; nothing to warm",
        f"Warm-up requested ({SOURCE}): it pulls every waiting image, FAILED ones included.",
    ]
    assert run.stderr.splitlines() == [
        f"cache-pilot warm: 2 references are not a listed image in {TABLE_NAME}; `cache-pilot status` shows the listed ones"
    ]
    # And only the WARM image changed in the table
    assert statuses(state_table) == {
        "k8s/pause:3.10": "STALE",
        "k8s/etcd:3.5.15-0": "PENDING",
        "k8s/kube-proxy:v1.31.2": "WARMING",
        "k8s/old:1": "RETIRED",
    }
    # And exactly one warm-up was requested, retrying failed images too
    (request,) = warmup_requests()
    assert (request["source"], request["detail-type"]) == (SOURCE, "Warm-up Requested")
    assert request["detail"] == {"reason": "requested by an operator", "retry_failed": True}


def test_warm_without_an_event_source_leaves_it_to_the_schedule(
    cli: Cli,
    state_table: StateTable,
    warmup_requests: WarmupRequests,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a FAILED image and a STALE one, and no event source in the environment
    monkeypatch.delenv("CACHE_PILOT_EVENT_SOURCE", raising=False)
    list_images(state_table, "k8s/etcd:3.5.15-0", "k8s/pause:3.10")
    warm_up(
        state_table,
        "batch-1",
        failed("k8s/etcd:3.5.15-0", "toomanyrequests"),
        warm("k8s/pause:3.10", timedelta(days=9), None),
    )
    state_table.mark_stale(["k8s/pause:3.10"], NOW)
    # When the operator asks for both (one twice)
    run = cli("warm", "k8s/etcd:3.5.15-0", "k8s/pause:3.10", "k8s/etcd:3.5.15-0")
    # Then both wait as STALE for the next scheduled run, and no event was sent
    assert (run.exit_code, run.stderr) == (0, "")
    assert run.lines == [
        "k8s/etcd:3.5.15-0: FAILED -> STALE; the next warm-up pulls it again",
        "k8s/pause:3.10: STALE, already waiting for a warm-up",
        "No event source (--event-source or CACHE_PILOT_EVENT_SOURCE): the next scheduled run warms them.",
    ]
    assert statuses(state_table) == {"k8s/etcd:3.5.15-0": "STALE", "k8s/pause:3.10": "STALE"}
    assert warmup_requests() == []


def test_warm_reports_an_image_a_build_claimed_after_it_was_read(
    cli: Cli, state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a WARM image that a starting build claims between warm's read and its write
    list_images(state_table, "k8s/pause:3.10")
    warm_up(state_table, "batch-1", warm("k8s/pause:3.10", timedelta(days=1), None))
    mark_stale = StateTable.mark_stale

    def claimed_first(table: StateTable, references: list[str], now: datetime) -> list[str]:
        table.claim_images(references, "batch-9", [ImageStatus.WARM], now)
        return mark_stale(table, references, now)

    monkeypatch.setattr(StateTable, "mark_stale", claimed_first)
    # When the operator asks for it
    run = cli("warm", "k8s/pause:3.10", "--event-source", SOURCE)
    # Then the build's claim stands, and the line says where the image is now
    assert (run.exit_code, run.lines) == (
        0,
        ["k8s/pause:3.10: WARMING in batch batch-9, already being warmed"],
    )
    assert statuses(state_table) == {"k8s/pause:3.10": "WARMING"}


def test_warm_of_images_already_in_a_build_requests_nothing(
    cli: Cli, state_table: StateTable, warmup_requests: WarmupRequests
) -> None:
    list_images(state_table, "k8s/pause:3.10")
    state_table.claim_images(["k8s/pause:3.10"], "batch-7", [ImageStatus.PENDING], NOW)
    run = cli("warm", "k8s/pause:3.10", "--event-source", SOURCE)
    assert (run.exit_code, run.lines) == (
        0,
        ["k8s/pause:3.10: WARMING in batch batch-7, already being warmed"],
    )
    assert warmup_requests() == []


# --- nat ----------------------------------------------------------------------------------------


def batch(batch_id: str, status: BatchStatus, *references: str, **fields: Any) -> BatchRecord:
    return BatchRecord(
        batch_id=batch_id,
        references=references,
        status=status,
        batch_key=f"batches/{batch_id}/batch.json",
        created_at=NOW - timedelta(hours=1, minutes=5),
        lease_expires_at=NOW + timedelta(minutes=50),
        **fields,
    )


def open_window(table: StateTable) -> None:
    """Two leases: a running build's, and an expired one whose start never reached CodeBuild."""
    table.put_batch(
        batch(
            "batch-20261129T085500-a1",
            BatchStatus.RUNNING,
            "k8s/pause:3.10",
            "k8s/etcd:3.5.15-0",
            build_id="cache-pilot-warmup:0b1c",
            build_status="IN_PROGRESS",
        )
    )
    table.put_batch(batch("batch-20261129T083000-b2", BatchStatus.STARTING, "k8s/old:1"))
    opened = NOW - timedelta(hours=1, minutes=5)
    table.join_window(
        "batch-20261129T085500-a1", NOW + timedelta(minutes=50), opened, CLOSING_GRACE
    )
    table.join_window(
        "batch-20261129T083000-b2", NOW - timedelta(minutes=10), opened, CLOSING_GRACE
    )


def test_nat_shows_a_closed_window_then_who_holds_the_open_one(
    cli: Cli, state_table: StateTable
) -> None:
    # Given no warm-up ever ran, When the operator asks, Then the window is closed and unleased
    closed = cli("nat", *AT_NOW)
    assert (closed.exit_code, closed.lines, closed.stderr) == (
        0,
        ["NAT window: CLOSED", "No lease is held."],
        "",
    )
    # Given two builds took leases an hour ago, one of which has expired
    open_window(state_table)
    # When the operator asks again
    run = cli("nat", *AT_NOW)
    # Then the window is open since then, and each lease shows its expiry and its batch
    assert run.exit_code == 0, run.stderr
    assert run.lines == [
        "NAT window: OPEN since 2026-11-29 08:55:00 UTC (for 1h5m)",
        "2 leases held:",
        "  batch-20261129T083000-b2: expired 2026-11-29 09:50:00 UTC (10m ago); STARTING, no build started, 1 image",
        "  batch-20261129T085500-a1: expires 2026-11-29 10:50:00 UTC (in 50m); RUNNING, build cache-pilot-warmup:0b1c (IN_PROGRESS), 2 images",
    ]


def test_nat_json_is_the_window_with_its_leases(cli: Cli, state_table: StateTable) -> None:
    open_window(state_table)
    run = cli("nat", "--json", *AT_NOW)
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout) == {
        "state": "OPEN",
        "open": True,
        "opened_at": "2026-11-29T08:55:00Z",
        "open_seconds": 3900,
        "closing_since": None,
        "closed_at": None,
        "leases": [
            {
                "batch_id": "batch-20261129T083000-b2",
                "expires_at": "2026-11-29T09:50:00Z",
                "expired": True,
                "batch_status": "STARTING",
                "build_id": None,
                "build_status": None,
                "images": 1,
            },
            {
                "batch_id": "batch-20261129T085500-a1",
                "expires_at": "2026-11-29T10:50:00Z",
                "expired": False,
                "batch_status": "RUNNING",
                "build_id": "cache-pilot-warmup:0b1c",
                "build_status": "IN_PROGRESS",
                "images": 2,
            },
        ],
        "nat_gateway_id": None,
        "routes": None,
        "warnings": [],
    }


class Network:
    """A VPC with a NAT gateway and three warm-up route tables: one routed to the NAT gateway,
    one to an internet gateway (someone else's), one with no default route."""

    def __init__(self, clients: AwsClients) -> None:
        ec2 = clients.ec2
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24")["Subnet"]["SubnetId"]
        self.internet_gateway = ec2.create_internet_gateway()["InternetGateway"][
            "InternetGatewayId"
        ]
        ec2.attach_internet_gateway(InternetGatewayId=self.internet_gateway, VpcId=vpc)
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        self.nat_gateway = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)[
            "NatGateway"
        ]["NatGatewayId"]
        self.to_nat, self.to_internet, self.without = (
            ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(3)
        )
        ec2.create_route(
            RouteTableId=self.to_nat,
            DestinationCidrBlock="0.0.0.0/0",
            NatGatewayId=self.nat_gateway,
        )
        ec2.create_route(
            RouteTableId=self.to_internet,
            DestinationCidrBlock="0.0.0.0/0",
            GatewayId=self.internet_gateway,
        )

    @property
    def route_tables(self) -> str:
        return f"{self.to_nat},{self.to_internet},{self.without}"


def test_nat_warns_loudly_of_a_route_to_the_nat_that_no_lease_holds(
    cli: Cli, clients: AwsClients, state_table: StateTable
) -> None:
    # Given a route to our NAT gateway that outlived every lease (the watchdog's job)
    net = Network(clients)
    # When the operator asks with the route tables and the NAT gateway
    run = cli("nat", "--route-tables", net.route_tables, "--nat-gateway", net.nat_gateway, *AT_NOW)
    # Then each route table's default route is shown, and the orphan route is warned of
    assert run.exit_code == 0
    assert run.lines == [
        "NAT window: CLOSED",
        "No lease is held.",
        f"Default routes of the warm-up route tables (to {net.nat_gateway}):",
        f"  {net.to_nat}: ours (0.0.0.0/0 -> {net.nat_gateway})",
        f"  {net.to_internet}: foreign (0.0.0.0/0 -> {net.internet_gateway}, not cache-pilot's: never touched)",
        f"  {net.without}: absent (no 0.0.0.0/0 route)",
    ]
    assert run.stderr.splitlines() == [
        f"WARNING: {net.to_nat} still route 0.0.0.0/0 to {net.nat_gateway} while no lease is held: egress is open with no warm-up using it. The NAT watchdog removes it on its next run (WatchdogSchedule); if it stays, read the NatWatchdogFunction's log."
    ]
    # And nothing was touched: reading is all the command does
    route = clients.ec2.describe_route_tables(RouteTableIds=[net.to_nat])["RouteTables"][0]
    assert any(r.get("NatGatewayId") == net.nat_gateway for r in route["Routes"])


def test_nat_with_a_lease_held_shows_the_route_without_a_warning(
    cli: Cli, clients: AwsClients, state_table: StateTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a held lease, and the route tables and NAT gateway from the environment
    net = Network(clients)
    open_window(state_table)
    monkeypatch.setenv("CACHE_PILOT_ROUTE_TABLES", net.to_nat)
    monkeypatch.setenv("CACHE_PILOT_NAT_GATEWAY", net.nat_gateway)
    # When the operator asks for JSON
    run = cli("nat", "--json", *AT_NOW)
    # Then the route is ours, and its lease explains it: no warning
    assert (run.exit_code, run.stderr) == (0, "")
    report = json.loads(run.stdout)
    assert report["nat_gateway_id"] == net.nat_gateway
    assert report["routes"] == [
        {"route_table_id": net.to_nat, "state": "ours", "target": net.nat_gateway}
    ]
    assert report["warnings"] == []


def test_nat_needs_both_the_route_tables_and_the_nat_gateway(
    cli: Cli, state_table: StateTable
) -> None:
    run = cli("nat", "--route-tables", "rtb-0123")
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.splitlines() == [
        "cache-pilot nat: --route-tables and --nat-gateway go together (or CACHE_PILOT_ROUTE_TABLES and CACHE_PILOT_NAT_GATEWAY): the route state needs both"
    ]


# --- where AWS is: a missing table, an unreachable endpoint, the embedded AWS -------------------

COMMANDS = [
    pytest.param(("status",), id="status"),
    pytest.param(("warm", "k8s/pause:3.10"), id="warm"),
    pytest.param(("nat",), id="nat"),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_table_is_one_line_naming_the_option(
    cli: Cli, state_table: StateTable, command: tuple[str, ...]
) -> None:
    run = cli(*command, "--table", "no-such-table")
    assert (run.exit_code, run.stdout) == (1, "")
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"cache-pilot {command[0]}: ")
    assert line.endswith(
        "is 'no-such-table' the state table? pass --table (or set CACHE_PILOT_STATE_TABLE) with the stack's StateTableName output"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_endpoint_is_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    # Given AWS_ENDPOINT_URL naming a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    # When a command runs, Then it fails with one line naming the endpoint
    run = cli(*command)
    assert (run.exit_code, run.stdout) == (1, "")
    assert run.stderr.splitlines() == [
        f'cache-pilot {command[0]}: Could not connect to the endpoint URL: "{endpoint}/"'
    ]


def test_status_reaches_the_embedded_aws_through_aws_endpoint_url(
    cli: Cli, embedded: EmbeddedAws, stack: StackTemplate
) -> None:
    # Given the stack's table on the embedded AWS, holding one listed image
    create_stack_resources(embedded.dynamodb(), stack, TABLE_NAME)
    list_images(StateTable(embedded.dynamodb(), TABLE_NAME), "k8s/pause:3.10")
    # When the operator's shell points at it, as `cache-pilot local up` prints
    with embedded.as_process_environment():
        run = cli("status", *AT_NOW)
    # Then the status comes from there
    assert run.exit_code == 0, run.stderr
    assert stripped(run.stdout)[2:] == [
        " k8s/pause:3.10   PENDING   -        -     -",
        "1 image: 1 PENDING",
    ]
