"""The warm-up cycle against moto: the route opened and closed, items settled from what ECR
really holds, and every failure path closing the window it opened."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from cache_pilot.state import BatchStatus, WindowState
from cache_pilot.warm.batch import load_batch
from tests.conftest import sample_event
from tests.warmup.conftest import BUCKET, WarmupWorld

NGINX = "docker-hub/library/nginx:1.27"
PAUSE = "k8s/pause:3.10"
COREDNS = "k8s/coredns/coredns:v1.11.3"


def test_whole_cycle_opens_then_closes_the_route_and_records_ecr_digests(
    world: WarmupWorld, tmp_path: Path
) -> None:
    # Given two listed images and a warm-up route table with no default route
    world.list_images(NGINX)
    world.list_images(PAUSE, platforms=("linux/amd64", "linux/arm64"))
    assert world.default_route() is None
    # When a warm-up is requested
    started = world.request_warmup()
    # Then one build runs with both images claimed, and the route to the NAT gateway is open
    assert started["outcome"] == "started"
    (batch_id,) = world.batch_ids()
    assert world.statuses() == {NGINX: "WARMING", PAUSE: "WARMING"}
    assert world.route_to_nat_is_open()
    batch = world.table.batch(batch_id)
    assert batch is not None
    assert batch.status is BatchStatus.RUNNING
    assert batch.lease_expires_at - batch.created_at == timedelta(minutes=15 + 60 + 5)
    assert set(world.table.window().leases) == {batch_id}
    # And the batch document is one the warm-up program reads as it is
    document = world.clients.s3.get_object(Bucket=BUCKET, Key=f"batches/{batch_id}/batch.json")
    batch_file = tmp_path / "batch.json"
    batch_file.write_bytes(document["Body"].read())
    requests = {str(request.reference): request for request in load_batch(batch_file)}
    assert set(requests) == {NGINX, PAUSE}
    assert [f"{p.os}/{p.architecture}" for p in requests[PAUSE].platforms or ()] == [
        "linux/amd64",
        "linux/arm64",
    ]
    # When the build pulls both through the cache and ends
    finished = world.run_build(batch_id, "SUCCEEDED")
    # Then both are WARM with the digest ECR holds, and the route is gone
    assert finished["outcome"] == "settled"
    assert world.statuses() == {NGINX: "WARM", PAUSE: "WARM"}
    pause = world.image(PAUSE)
    tagged = world.clients.ecr.describe_images(
        repositoryName="k8s/pause", imageIds=[{"imageTag": "3.10"}]
    )
    assert pause.cached_digest == tagged["imageDetails"][0]["imageDigest"]
    assert pause.cached_at == tagged["imageDetails"][0]["imagePushedAt"]
    assert pause.verified_at is not None
    assert pause.build_id == batch_id
    assert pause.last_error is None
    assert world.default_route() is None
    assert world.table.window().state is WindowState.CLOSED
    assert finished["closed_route_tables"] == [world.route_table_id]


@pytest.mark.parametrize("status", ["FAILED", "FAULT", "TIMED_OUT", "STOPPED"])
def test_failed_build_settles_every_image_and_closes_the_route(
    world: WarmupWorld, status: str
) -> None:
    # Given a build of two images that ends badly after only one reached the cache
    world.list_images(NGINX, PAUSE)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    # When it ends with a failure status
    result = world.run_build(batch_id, status, cached=[PAUSE])
    # Then what ECR holds is WARM, the rest FAILED with the reason; nothing stays WARMING
    assert world.statuses() == {NGINX: "FAILED", PAUSE: "WARM"}
    assert world.image(NGINX).last_error == (
        "ECR has no repository docker-hub/library/nginx: no pull reached the cache through its "
        "rule; the build reported not_found: manifest unknown"
    )
    assert result["build_status"] == status
    assert world.default_route() is None


def test_build_that_wrote_no_report_fails_with_its_status(world: WarmupWorld) -> None:
    world.list_images(NGINX)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    world.run_build(batch_id, "TIMED_OUT", cached=[], write_report=False)
    assert world.image(NGINX).last_error == (
        "ECR has no repository docker-hub/library/nginx: no pull reached the cache through its "
        "rule; the build ended TIMED_OUT"
    )
    assert world.default_route() is None


def test_success_event_for_an_image_ecr_did_not_cache_is_failed_not_warm(
    world: WarmupWorld,
) -> None:
    # Given a build whose exit status says SUCCEEDED, but one image never reached ECR
    world.list_images(NGINX, PAUSE)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    world.cache_in_ecr("k8s/pause:other-tag")  # the repository exists, the tag does not
    world.run_build(batch_id, "SUCCEEDED", cached=[NGINX])
    # Then ECR decides: the missing one is FAILED
    assert world.statuses() == {NGINX: "WARM", PAUSE: "FAILED"}
    assert world.image(PAUSE).last_error == (
        "ECR has no image k8s/pause:3.10: the pull did not fill the cache; the build reported "
        "not_found: manifest unknown"
    )


def test_platform_manifest_missing_in_ecr_is_failed(world: WarmupWorld) -> None:
    world.list_images(PAUSE, platforms=("linux/amd64", "linux/arm64"))
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    world.run_build(batch_id)
    # Given a second image of which the cache got only one of the two platforms the build pulled
    world.list_images("k8s/pause:3.9", platforms=("linux/amd64", "linux/arm64"))
    world.request_warmup()
    second = next(b for b in world.batch_ids() if b != batch_id)
    digests = world.cache_in_ecr("k8s/pause:3.9", ["linux/amd64"])  # only one platform cached
    report_platforms = {"linux/amd64": digests["linux/amd64"], "linux/arm64": "sha256:" + "e" * 64}
    world.clients.s3.put_object(
        Bucket=BUCKET,
        Key=f"batches/{second}/report.json",
        Body=(
            '{"format": "cache-pilot.warm-report/1", "registry": "r", "started_at": "", '
            '"finished_at": "", "seconds": 1, "error": null, "images": [{"reference": '
            '"k8s/pause:3.9", "platforms": ['
            + ", ".join(
                f'{{"platform": "{p}", "digest": "{d}"}}' for p, d in report_platforms.items()
            )
            + "]}]}"
        ).encode(),
    )
    world.end_build(second, "SUCCEEDED")
    assert world.image("k8s/pause:3.9").status.value == "FAILED"
    assert world.image("k8s/pause:3.9").last_error == (
        "ECR has k8s/pause:3.9 but not its platform manifests sha256:" + "e" * 64
    )


def test_pinned_digest_that_the_tag_no_longer_points_at_is_failed(world: WarmupWorld) -> None:
    pinned = f"{NGINX}@sha256:" + "0" * 64
    world.list_images(pinned)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    world.run_build(batch_id)
    record = world.image(pinned)
    assert record.status.value == "FAILED"
    assert record.last_error == (
        f"ECR caches docker-hub/library/nginx:1.27 as {record.cached_digest}, not the pinned "
        "sha256:" + "0" * 64
    )


def test_overlapping_warmups_keep_the_route_until_the_last_one_ends(world: WarmupWorld) -> None:
    # Given two builds running at once (one image per batch)
    world.list_images(NGINX, PAUSE)
    started = world.request_warmup(WARMUP_BATCH_SIZE="1")
    assert len(started["batches"]) == 2
    first, second = world.batch_ids()
    # When the first ends, Then the route stays: the second still holds a lease
    world.run_build(first)
    assert world.route_to_nat_is_open()
    assert set(world.table.window().leases) == {second}
    # When the second ends, Then the route is gone
    world.run_build(second)
    assert world.default_route() is None
    assert world.statuses() == {NGINX: "WARM", PAUSE: "WARM"}


def test_parallel_build_cap_leaves_the_rest_for_the_next_finish(world: WarmupWorld) -> None:
    world.list_images(NGINX, PAUSE, COREDNS)
    started = world.request_warmup(WARMUP_BATCH_SIZE="1", WARMUP_MAX_PARALLEL_BUILDS="2")
    assert len(started["batches"]) == 2
    assert sorted(world.statuses().values()) == ["PENDING", "WARMING", "WARMING"]
    first = world.batch_ids()[0]
    finished = world.run_build(first)
    assert finished["more_requested"] is True


def test_foreign_default_route_is_never_touched(world: WarmupWorld) -> None:
    # Given the warm-up route table already sends 0.0.0.0/0 to an internet gateway
    world.clients.ec2.create_route(
        RouteTableId=world.route_table_id,
        DestinationCidrBlock="0.0.0.0/0",
        GatewayId=world.internet_gateway_id,
    )
    foreign = world.default_route()
    world.list_images(NGINX)
    # When a warm-up is requested
    result = world.request_warmup()
    # Then it is refused with the reason, the route is as it was, and the image stays PENDING
    assert result["outcome"] == "route-conflict"
    assert result["detail"] == (
        f"route table {world.route_table_id} already sends 0.0.0.0/0 to "
        f"{world.internet_gateway_id}, which cache-pilot did not create; left alone"
    )
    assert world.default_route() == foreign
    assert world.statuses() == {NGINX: "PENDING"}
    assert world.batch_ids() == []
    assert world.table.window().leases == {}


def test_route_replaced_by_someone_else_during_a_build_is_left_alone(world: WarmupWorld) -> None:
    world.list_images(NGINX)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    # Someone points the default route elsewhere while the build runs
    world.clients.ec2.replace_route(
        RouteTableId=world.route_table_id,
        DestinationCidrBlock="0.0.0.0/0",
        GatewayId=world.internet_gateway_id,
    )
    world.run_build(batch_id)
    assert world.default_route()["GatewayId"] == world.internet_gateway_id  # type: ignore[index]


def test_build_that_fails_to_start_releases_claims_lease_and_route(world: WarmupWorld) -> None:
    # Given a project CodeBuild does not know (deleted, or a typo in the stack)
    world.list_images(NGINX, PAUSE)
    result = world.request_warmup(WARMUP_PROJECT_NAME="cache-pilot-missing-project")
    # Then the start failed cleanly: images PENDING again with the reason, no lease, no route
    assert result["outcome"] == "start-failed"
    assert world.statuses() == {NGINX: "PENDING", PAUSE: "PENDING"}
    assert world.image(NGINX).last_error is not None
    assert world.image(NGINX).last_error.startswith(  # type: ignore[union-attr]
        "warm-up not started: CodeBuild did not start cache-pilot-missing-project: "
        "ResourceNotFoundException"
    )
    (batch_id,) = world.batch_ids()
    assert world.table.batch(batch_id).status is BatchStatus.START_FAILED  # type: ignore[union-attr]
    assert world.table.window().leases == {}
    assert world.default_route() is None


def test_duplicate_completion_event_changes_nothing(world: WarmupWorld) -> None:
    world.list_images(NGINX)
    world.request_warmup()
    (batch_id,) = world.batch_ids()
    world.run_build(batch_id)
    before = world.table.images()
    again = world.end_build(batch_id, "SUCCEEDED")
    assert again["outcome"] == "duplicate"
    assert world.table.images() == before
    assert world.default_route() is None


def test_duplicate_warmup_request_starts_no_second_build(world: WarmupWorld) -> None:
    world.list_images(NGINX)
    world.request_warmup()
    second = world.request_warmup()
    assert second["outcome"] == "nothing-to-warm"
    assert len(world.batch_ids()) == 1


def test_concurrent_requests_claim_each_image_once(world: WarmupWorld) -> None:
    world.list_images(NGINX, PAUSE, COREDNS)
    start = world.function(
        "StartWarmupFunction", WARMUP_BATCH_SIZE="1", WARMUP_MAX_PARALLEL_BUILDS="6"
    )
    event = world.build_event  # noqa: F841 - the request sample is what both receive

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(start.invoke, [sample_event("warmup-requested.json")] * 2))
    claimed = [batch for result in results for batch in result["batches"] if batch["build_id"]]
    batches = [world.table.batch(b) for b in world.batch_ids()]
    references = [ref for batch in batches if batch for ref in batch.references]
    assert sorted(references) == sorted({NGINX, PAUSE, COREDNS})
    assert len(claimed) == 3
    assert world.route_to_nat_is_open()


def test_route_already_open_to_our_nat_is_reused(world: WarmupWorld) -> None:
    world.clients.ec2.create_route(
        RouteTableId=world.route_table_id,
        DestinationCidrBlock="0.0.0.0/0",
        NatGatewayId=world.nat_gateway_id,
    )
    world.list_images(NGINX)
    assert world.request_warmup()["outcome"] == "started"
    (batch_id,) = world.batch_ids()
    world.run_build(batch_id)
    assert world.default_route() is None


def test_nat_gateway_not_available_refuses_without_claiming(world: WarmupWorld) -> None:
    world.clients.ec2.delete_nat_gateway(NatGatewayId=world.nat_gateway_id)
    world.list_images(NGINX)
    result = world.request_warmup()
    assert result["outcome"] == "nat-unavailable"
    assert result["detail"] == f"NAT gateway {world.nat_gateway_id} is deleted, not available"
    assert world.statuses() == {NGINX: "PENDING"}
    assert world.default_route() is None
