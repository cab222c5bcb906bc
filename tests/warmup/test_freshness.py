"""Freshness over time and the NAT watchdog, with a clock the tests move (no sleeping).

The use cases run with the settings template.yaml gives their functions; the start and the
finish of each warm-up go through their handlers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from cache_pilot.freshness import check_freshness, watch_nat_window
from cache_pilot.settings import load_warmup_settings
from cache_pilot.state import BatchRecord, BatchStatus, ImageStatus, WindowState, utc_now
from cache_pilot.warmup import Warmup
from tests.conftest import REGION, sample_event
from tests.warmup.conftest import WarmupWorld

NGINX = "docker-hub/library/nginx:1.27"
PAUSE = "k8s/pause:3.10"
RETENTION = timedelta(days=30)


@dataclass
class MovableClock:
    now: datetime = field(default_factory=utc_now)

    def __call__(self) -> datetime:
        return self.now

    def move(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


def use_cases(world: WarmupWorld, logical_id: str, clock: MovableClock) -> Warmup:
    """The use case as the function runs it: its settings from template.yaml's environment."""
    settings = load_warmup_settings(
        {**world.function(logical_id).environment, "AWS_REGION": REGION}
    )
    return Warmup(world.clients, world.table, settings, clock)


@pytest.fixture
def freshness(world: WarmupWorld, clock: MovableClock) -> Warmup:
    return use_cases(world, "CheckFreshnessFunction", clock)


@pytest.fixture
def watchdog(world: WarmupWorld, clock: MovableClock) -> Warmup:
    return use_cases(world, "NatWatchdogFunction", clock)


@pytest.fixture
def warmup_requests(world: WarmupWorld) -> Callable[[], list[dict[str, Any]]]:
    """Warm-up requests sent on the bus, caught behind start_warmup's own rule pattern."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="start-warmup")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = world.stack.resource("StartWarmupFunctionWarmupRequested")
    pattern = world.stack.resolve(rule["Properties"]["EventPattern"])
    world.clients.events.put_rule(Name="warmup-requested", EventPattern=json.dumps(pattern))
    world.clients.events.put_targets(Rule="warmup-requested", Targets=[{"Id": "start", "Arn": arn}])
    received: list[dict[str, Any]] = []

    def requests_so_far() -> list[dict[str, Any]]:
        while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
            "Messages"
        ):
            for message in messages:
                received.append(json.loads(message["Body"])["detail"])
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return received

    return requests_so_far


def warm(world: WarmupWorld, *references: str) -> None:
    """A whole warm-up through the handlers: listed, started, built, finished."""
    world.list_images(*references)
    world.request_warmup()
    world.run_build(world.running_batch_id())
    assert all(world.statuses()[reference] == "WARM" for reference in references)


def test_an_image_ages_into_stale_and_is_rewarmed_through_a_new_window(
    world: WarmupWorld,
    freshness: Warmup,
    clock: MovableClock,
    warmup_requests: Callable[[], list[dict[str, Any]]],
) -> None:
    # Given an image warmed now, with the default max age of 7 days
    warm(world, NGINX)
    first_verified = world.image(NGINX).verified_at
    # When a freshness check runs a day later, Then it is still WARM and was checked
    clock.move(timedelta(days=1))
    report = check_freshness(freshness, RETENTION)
    assert (world.statuses()[NGINX], report.became_stale) == ("WARM", [])
    assert world.image(NGINX).checked_at == clock.now
    # When the clock moves past its max age, Then it becomes STALE and a re-warm is requested
    clock.move(timedelta(days=6, hours=1))
    report = check_freshness(freshness, RETENTION)
    assert report.became_stale == [NGINX]
    assert world.statuses()[NGINX] == "STALE"
    assert warmup_requests() == [{"reason": "freshness check", "retry_failed": False}]
    # When the warm-up runs, Then a new window opens, the image is WARM again, the window closes
    world.request_warmup()
    assert world.route_to_nat_is_open()
    world.run_build(world.running_batch_id())
    assert world.statuses()[NGINX] == "WARM"
    assert world.image(NGINX).verified_at != first_verified
    assert world.default_route() is None


def test_an_image_deleted_from_ecr_goes_back_to_pending(
    world: WarmupWorld, freshness: Warmup, clock: MovableClock
) -> None:
    warm(world, NGINX, PAUSE)
    # Given a lifecycle policy deleted one image from ECR
    world.clients.ecr.batch_delete_image(
        repositoryName="k8s/pause", imageIds=[{"imageTag": "3.10"}]
    )
    # When the freshness check runs
    report = check_freshness(freshness, RETENTION)
    # Then it is PENDING again, with no cached digest, and the other stays WARM
    assert report.went_missing == [PAUSE]
    assert world.statuses() == {NGINX: "WARM", PAUSE: "PENDING"}
    assert world.image(PAUSE).cached_digest is None


def test_retired_items_are_removed_after_the_retention(
    world: WarmupWorld, freshness: Warmup, clock: MovableClock
) -> None:
    world.list_images(NGINX, PAUSE)
    world.table.retire_image(PAUSE, clock.now)
    clock.move(timedelta(days=29))
    assert check_freshness(freshness, RETENTION).removed_retired == []
    clock.move(timedelta(days=2))
    assert check_freshness(freshness, RETENTION).removed_retired == [PAUSE]
    assert set(world.statuses()) == {NGINX}


def test_a_lost_completion_event_is_caught_by_the_watchdog(
    world: WarmupWorld, watchdog: Warmup, clock: MovableClock
) -> None:
    # Given a build that pulled its images, ended, and whose completion event never came
    world.list_images(NGINX, PAUSE)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    world.cache_in_ecr(NGINX)
    world.end_build_in_codebuild(batch_id, "SUCCEEDED")
    assert world.route_to_nat_is_open()
    # When the watchdog runs (CodeBuild says the build SUCCEEDED)
    report = watch_nat_window(watchdog)
    # Then the lease is released, the images settled from ECR (the missing one PENDING, not
    # FAILED: its build never had its say), and the route is gone
    assert report.released == {batch_id: "build ended SUCCEEDED; its completion event was lost"}
    assert world.statuses() == {NGINX: "WARM", PAUSE: "PENDING"}
    assert report.route_closed
    assert world.default_route() is None
    assert world.table.window().leases == {}


def test_the_watchdog_leaves_a_running_build_alone(
    world: WarmupWorld, watchdog: Warmup, clock: MovableClock
) -> None:
    # Given a build CodeBuild still runs (the emulated CodeBuild runs none by itself)
    world.list_images(NGINX)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    clock.move(timedelta(minutes=30))
    report = watch_nat_window(watchdog)
    assert report.still_running == [batch_id]
    assert report.released == {}
    assert world.route_to_nat_is_open()
    assert world.statuses() == {NGINX: "WARMING"}


def test_an_expired_lease_is_released_whatever_codebuild_says(
    world: WarmupWorld, watchdog: Warmup, clock: MovableClock
) -> None:
    # Given a build that CodeBuild still calls running, past its lease's expiry
    world.list_images(NGINX)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    batch = world.table.batch(batch_id)
    assert batch is not None
    clock.now = batch.lease_expires_at + timedelta(minutes=1)
    # When the watchdog runs, Then the route is closed and the image waits for another try
    report = watch_nat_window(watchdog)
    assert report.released == {batch_id: f"lease expired at {batch.lease_expires_at.isoformat()}"}
    assert world.default_route() is None
    assert world.statuses() == {NGINX: "PENDING"}


def test_a_route_left_behind_with_no_lease_is_closed(world: WarmupWorld, watchdog: Warmup) -> None:
    # Given our route in the table while no lease is held (a closer died mid-way)
    world.clients.ec2.create_route(
        RouteTableId=world.route_table_id,
        DestinationCidrBlock="0.0.0.0/0",
        NatGatewayId=world.nat_gateway_id,
    )
    report = watch_nat_window(watchdog)
    assert report.route_closed
    assert world.default_route() is None
    assert world.table.window().state is WindowState.CLOSED


def test_the_watchdog_never_touches_a_foreign_route(world: WarmupWorld, watchdog: Warmup) -> None:
    world.clients.ec2.create_route(
        RouteTableId=world.route_table_id,
        DestinationCidrBlock="0.0.0.0/0",
        GatewayId=world.internet_gateway_id,
    )
    report = watch_nat_window(watchdog)
    assert not report.route_closed
    assert world.default_route()["GatewayId"] == world.internet_gateway_id  # type: ignore[index]


def test_the_handlers_run_on_their_schedule_events(world: WarmupWorld) -> None:
    warm(world, NGINX)
    checked = world.function("CheckFreshnessFunction").invoke(
        sample_event("schedule-freshness-check.json")
    )
    assert checked["checked"] == 1
    assert checked["by_status"]["WARM"] == 1
    watched = world.function("NatWatchdogFunction").invoke(
        sample_event("schedule-nat-watchdog.json")
    )
    assert watched == {
        "leases": 0,
        "released": {},
        "still_running": [],
        "route_closed": False,
        "closed_route_tables": [],
    }


def test_a_finish_that_died_after_releasing_its_lease_is_settled(
    world: WarmupWorld, watchdog: Warmup
) -> None:
    # Given a build whose finish released the lease and closed the route, then died before
    # recording anything: the images are still WARMING and the batch still RUNNING
    world.list_images(NGINX)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    world.cache_in_ecr(NGINX)
    world.end_build_in_codebuild(batch_id, "SUCCEEDED")
    world.table.leave_window([batch_id])
    world.clients.ec2.delete_route(
        RouteTableId=world.route_table_id, DestinationCidrBlock="0.0.0.0/0"
    )
    # When the watchdog runs, Then the batch is settled from ECR and no longer takes a build slot
    report = watch_nat_window(watchdog)
    assert report.released == {batch_id: "build ended SUCCEEDED; its completion event was lost"}
    assert world.statuses() == {NGINX: "WARM"}
    assert world.table.batch(batch_id).status.value == "FINISHED"  # type: ignore[union-attr]


def test_a_start_that_died_before_codebuild_gives_its_images_back(
    world: WarmupWorld, watchdog: Warmup, clock: MovableClock
) -> None:
    # Given a start that claimed an image and recorded its batch, then died before taking a lease
    world.list_images(NGINX)
    assert world.table.claim_images(
        [NGINX], "20261129T000000Z-deadbeef0000", [ImageStatus.PENDING], clock.now
    )
    world.table.put_batch(
        BatchRecord(
            batch_id="20261129T000000Z-deadbeef0000",
            references=(NGINX,),
            status=BatchStatus.STARTING,
            batch_key="batches/20261129T000000Z-deadbeef0000/batch.json",
            created_at=clock.now,
            lease_expires_at=clock.now + timedelta(minutes=80),
        )
    )
    # When the watchdog runs soon after, Then it waits: the start may still be at work
    assert watch_nat_window(watchdog).still_running == ["20261129T000000Z-deadbeef0000"]
    # When it runs a quarter of an hour later, Then the image waits for a warm-up again
    clock.move(timedelta(minutes=16))
    report = watch_nat_window(watchdog)
    assert report.released == {"20261129T000000Z-deadbeef0000": "the start never reached CodeBuild"}
    assert world.statuses() == {NGINX: "PENDING"}
