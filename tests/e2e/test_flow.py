"""The whole flow on the locally deployed template.yaml: a parameter edit, and what the stack
does about it through its own rules, functions and warm-up build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cache_pilot.state import BatchStatus, ImageStatus, WindowState, utc_now
from cache_pilot_cli.operations import request_rewarm
from cache_pilot_cli.output import Output
from cache_pilot_local.cloud import LocalCloud, local_cloud
from cache_pilot_local.template import UnsupportedTemplateError, load_sam_template
from tests.e2e.conftest import CONFIG, IMAGES, World


def test_a_configuration_is_provisioned_warmed_and_the_nat_route_closed(
    cloud: LocalCloud, world: World
) -> None:
    assert world.default_route() is None  # the warm-up subnet starts private

    world.configure()
    activity = cloud.settle()

    assert activity.errors == []
    assert world.rule_prefixes() == ["docker-hub", "k8s"]
    (build,) = activity.builds
    assert build.status == "SUCCEEDED"
    assert build.event_sent
    images = world.images()
    assert {ref: r.status for ref, r in images.items()} == dict.fromkeys(IMAGES, ImageStatus.WARM)
    for reference in IMAGES:
        # The digest recorded is what ECR cached, which is what the upstream tag points at.
        assert images[reference].cached_digest == world.ecr_digest(reference)
        assert world.ecr_digest(reference) == world.upstream_digest(reference)
    assert world.default_route() is None  # the NAT route is gone again
    assert world.table.window().state is WindowState.CLOSED
    assert [batch.status for batch in world.table.batches()] == [BatchStatus.FINISHED]
    finishes = activity.of("FinishWarmupFunction")
    assert [f.event["detail"]["build-status"] for f in finishes] == ["SUCCEEDED"]


def test_an_edit_while_the_warm_up_runs_is_applied_and_nothing_is_left_open(
    cloud: LocalCloud, world: World
) -> None:
    world.configure()
    cloud.router.deliver_pending()  # the sync and the start: the build is queued, route open
    assert world.default_route() is not None
    assert set(world.statuses().values()) == {"WARMING"}

    edited = CONFIG.replace(
        "  - docker-hub/library/nginx:1.27\n", "  - docker-hub/library/redis:7.4\n"
    )
    world.configure(edited)
    activity = cloud.settle()

    assert activity.errors == []
    assert world.statuses() == {
        "docker-hub/library/nginx:1.27": "RETIRED",
        "docker-hub/library/redis:7.4": "WARM",
        "k8s/pause:3.10": "WARM",
    }
    redis = world.images()["docker-hub/library/redis:7.4"]
    assert redis.cached_digest == world.upstream_digest("docker-hub/library/redis:7.4")
    assert world.default_route() is None
    assert world.table.window().state is WindowState.CLOSED
    assert {batch.status for batch in world.table.batches()} == {BatchStatus.FINISHED}


def test_every_event_delivered_twice_ends_as_if_delivered_once(
    cloud: LocalCloud, world: World
) -> None:
    cloud.router.deliver_twice = True

    world.configure()
    activity = cloud.settle()

    assert activity.errors == []
    assert {i.delivery for i in activity.invocations} == {1, 2}
    assert world.rule_prefixes() == ["docker-hub", "k8s"]
    assert len(activity.builds) == 1  # the second start found nothing left to claim
    assert world.statuses() == dict.fromkeys(IMAGES, "WARM")
    assert world.default_route() is None
    assert [batch.status for batch in world.table.batches()] == [BatchStatus.FINISHED]


def test_a_lost_completion_event_is_repaired_by_the_watchdog(
    cloud: LocalCloud, world: World
) -> None:
    cloud.builds.lose_next_event()

    world.configure()
    activity = cloud.settle()

    (build,) = activity.builds
    assert build.status == "SUCCEEDED"
    assert not build.event_sent
    assert activity.of("FinishWarmupFunction") == []
    assert set(world.statuses().values()) == {"WARMING"}
    assert world.default_route() is not None  # held open by the lease nobody released

    fired, repair = cloud.tick("Watchdog")

    assert [schedule.logical_id for schedule in fired] == ["NatWatchdogFunctionWatchdog"]
    (watchdog,) = repair.of("NatWatchdogFunction")
    assert watchdog.result["route_closed"] is True
    assert world.default_route() is None
    assert world.statuses() == dict.fromkeys(IMAGES, "WARM")


def test_a_build_that_fails_to_start_leaves_nothing_open_and_the_schedule_retries(
    cloud: LocalCloud, world: World
) -> None:
    cloud.builds.fail_next_start()

    world.configure()
    activity = cloud.settle()

    starts = [i.result["outcome"] for i in activity.of("StartWarmupFunction")]
    assert "start-failed" in starts
    assert activity.builds == []
    assert world.statuses() == dict.fromkeys(IMAGES, "PENDING")  # claims released
    assert world.default_route() is None
    assert world.table.window().state is WindowState.CLOSED

    _, retry = cloud.tick("DriftRepair")

    assert len(retry.builds) == 1
    assert world.statuses() == dict.fromkeys(IMAGES, "WARM")
    assert world.default_route() is None


def test_a_timed_out_build_still_records_what_reached_the_cache(
    cloud: LocalCloud, world: World
) -> None:
    cloud.builds.time_out_next_build()

    world.configure()
    activity = cloud.settle()

    (build,) = activity.builds
    assert build.status == "TIMED_OUT"
    (finish,) = activity.of("FinishWarmupFunction")
    assert finish.result["build_status"] == "TIMED_OUT"
    assert world.statuses() == dict.fromkeys(IMAGES, "WARM")  # ECR has them: the pulls ran
    assert world.default_route() is None


def test_an_image_the_upstream_fails_is_failed_with_the_reason_and_the_rest_warm(
    cloud: LocalCloud, world: World
) -> None:
    cloud.upstream.fail("registry-1.docker.io", "library/nginx", "1.27")

    world.configure()
    activity = cloud.settle()

    (build,) = activity.builds
    assert build.status == "FAILED"
    images = world.images()
    assert images["k8s/pause:3.10"].status is ImageStatus.WARM
    nginx = images["docker-hub/library/nginx:1.27"]
    assert nginx.status is ImageStatus.FAILED
    assert "not_found" in (nginx.last_error or "")
    assert world.default_route() is None


def test_a_moved_tag_is_picked_up_by_a_re_warm(cloud: LocalCloud, world: World) -> None:
    world.configure()
    cloud.settle()
    before = world.images()["docker-hub/library/nginx:1.27"].cached_digest
    moved = cloud.upstream.move_tag("registry-1.docker.io", "library/nginx", "1.27")

    request_rewarm(
        world.clients,
        world.table.table_name,
        ["docker-hub/library/nginx:1.27"],
        Output(),
        now=utc_now(),
        event_source=cloud.stack.outputs["WarmupEventSource"],
    )
    activity = cloud.settle()

    assert activity.errors == []
    after = world.images()["docker-hub/library/nginx:1.27"]
    assert after.status is ImageStatus.WARM
    assert after.cached_digest == moved.digest != before
    assert world.ecr_digest("docker-hub/library/nginx:1.27") == moved.digest
    assert world.default_route() is None


def test_the_harness_fails_loudly_on_what_it_cannot_deploy(tmp_path: Path) -> None:
    template = load_sam_template()
    template["Resources"]["WarmupProject"]["Properties"]["FileSystemLocations"] = []
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(template))

    with pytest.raises(UnsupportedTemplateError) as raised, local_cloud(template_path=path):
        pass

    assert "WarmupProject (AWS::CodeBuild::Project): property FileSystemLocations" in str(
        raised.value
    )
