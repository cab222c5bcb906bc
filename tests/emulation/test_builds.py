"""The CodeBuild build emulation: the warm-up project of template.yaml started as start_warmup
starts it, its buildspec run for real against the emulated registry, and the state-change event
it ends with, routed by EventBridge."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cache_pilot.aws.artifacts import batch_key, put_document, report_key
from cache_pilot.aws.builds import start_warmup_build
from cache_pilot.warmup import BatchImage, WarmupBatch
from cache_pilot_local.builds import (
    BuildRunner,
    Buildspec,
    BuildspecNotEmulated,
    FinishedBuild,
)
from cache_pilot_local.codebuild import create_project_request
from cache_pilot_local.registry import SHARED_LAYER_SOURCE
from cache_pilot_local.server import EmbeddedAws, embedded_aws
from cache_pilot_local.template import StackTemplate, event_rule_patterns, load_stack_template
from cache_pilot_local.upstream import UpstreamCatalog, UpstreamFailure
from tests.conftest import sample_event
from tests.emulation.test_upstream_registry import (
    ACCOUNT,
    DOCKER_HUB,
    K8S,
    REGION,
    Network,
    client,
    create_network,
    create_rules,
    described_images,
    tagged_digest,
)

PROJECT = "cache-pilot-WarmupProject-LOCAL"
BUCKET = "cache-pilot-artifacts-local"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/cache-pilot-WarmupBuildRole"
TIMEOUT_MINUTES = 30
PAUSE = "k8s/pause:3.10"
REDIS = "docker-hub/library/redis:7.4"


@cache
def shared_layer_zip() -> bytes:
    """layers/shared as a Lambda layer lays it out: the package under python/."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(SHARED_LAYER_SOURCE.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, "python/" + path.relative_to(SHARED_LAYER_SOURCE).as_posix())
    return buffer.getvalue()


@dataclass
class Warmup:
    aws: EmbeddedAws
    network: Network
    runner: BuildRunner
    project_request: dict[str, Any]
    all_events: str  # queue URL: every aws.codebuild event
    finish_events: str  # queue URL: what template.yaml routes to FinishWarmupFunction

    @property
    def codebuild(self) -> Any:
        return client(self.aws, "codebuild")

    @property
    def catalog(self) -> UpstreamCatalog:
        return self.runner.catalog

    def start(
        self, batch_id: str, *references: str, platforms: tuple[str, ...] = ("linux/amd64",)
    ) -> str:
        """Writes the batch and starts its build as start_warmup does."""
        batch = WarmupBatch(
            batch_id=batch_id,
            images=tuple(BatchImage(reference=r, platforms=platforms) for r in references),
        )
        s3 = client(self.aws, "s3")
        put_document(s3, BUCKET, batch_key(batch_id), batch.model_dump_json().encode())
        return start_warmup_build(
            self.codebuild, PROJECT, batch_id, batch_key(batch_id), TIMEOUT_MINUTES
        )

    def run_one(self) -> FinishedBuild:
        finished = self.runner.run_pending()
        assert len(finished) == 1
        return finished[0]

    def build(self, build_id: str) -> dict[str, Any]:
        build: dict[str, Any] = self.codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        return build

    def report(self, batch_id: str) -> dict[str, Any] | None:
        s3 = client(self.aws, "s3")
        try:
            body = s3.get_object(Bucket=BUCKET, Key=report_key(batch_id))["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        document: dict[str, Any] = json.loads(body)
        return document

    def events(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        sqs = client(self.aws, "sqs")
        answer = sqs.receive_message(QueueUrl=queue_url or self.all_events, MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in answer.get("Messages", [])]

    def use_buildspec(self, buildspec: str, name: str = "custom") -> str:
        request = {**self.project_request, "name": name}
        request["source"] = {**request["source"], "buildspec": buildspec}
        self.codebuild.create_project(**request)
        return name


@pytest.fixture(scope="module")
def module_aws() -> Iterator[EmbeddedAws]:
    with embedded_aws(region=REGION) as aws:
        yield aws


@pytest.fixture(scope="module")
def demo_stack() -> StackTemplate:
    """template.yaml with its demonstration network, whose Refs the tests' resources stand for."""
    return load_stack_template(REGION, {"CreateDemoNetwork": "true"})


@pytest.fixture
def warmup(module_aws: EmbeddedAws, demo_stack: StackTemplate) -> Iterator[Warmup]:
    aws = module_aws
    aws.reset()
    create_rules(aws)
    network = create_network(aws)
    network.open_route()
    client(aws, "s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    layer = client(aws, "lambda").publish_layer_version(
        LayerName="SharedLayer", Content={"ZipFile": shared_layer_zip()}
    )
    layer_logical_id = next(iter(demo_stack.of_type("AWS::Lambda::LayerVersion")))
    names = {
        "DemoVpc": network.vpc_id,
        "DemoWarmupSubnet": network.private_subnet_id,
        "DemoWarmupSecurityGroup": network.security_group_id,
        layer_logical_id: layer["LayerVersionArn"],
        "ArtifactBucket": BUCKET,
        "WarmupBuildRole.Arn": ROLE_ARN,
    }
    request = create_project_request(demo_stack, "WarmupProject", PROJECT, names)
    client(aws, "codebuild").create_project(**request)
    all_events = route_to_queue(aws, "all-codebuild", {"source": ["aws.codebuild"]})
    (finish_pattern,) = event_rule_patterns(
        demo_stack, "FinishWarmupFunction", {"WarmupProject": PROJECT}
    ).values()
    finish_events = route_to_queue(aws, "finish-warmup", finish_pattern)
    with BuildRunner(aws.endpoint_url, REGION, ACCOUNT, UpstreamCatalog.default()) as runner:
        yield Warmup(aws, network, runner, request, all_events, finish_events)


def route_to_queue(aws: EmbeddedAws, name: str, pattern: dict[str, Any]) -> str:
    sqs, events = client(aws, "sqs"), client(aws, "events")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": name, "Arn": arn["QueueArn"]}])
    return url


def shape(value: Any) -> Any:
    """The keys of a JSON document, nested; a list by its first item."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def variables(event: dict[str, Any]) -> dict[str, str]:
    listed = event["detail"]["additional-information"]["environment"]["environment-variables"]
    return {variable["name"]: variable["value"] for variable in listed}


def phase_statuses(build: dict[str, Any]) -> dict[str, str | None]:
    return {phase["phaseType"]: phase.get("phaseStatus") for phase in build["phases"]}


# --- a build that warms its batch ---------------------------------------------------------------


def test_a_build_warms_its_batch_and_its_event_reaches_the_finish_rule(warmup: Warmup) -> None:
    build_id = warmup.start("b-1", PAUSE, platforms=("linux/amd64", "linux/arm64"))
    queued = warmup.build(build_id)

    finished = warmup.run_one()

    upstream = warmup.catalog.image(K8S, "pause", "3.10")
    assert (queued["buildStatus"], queued["currentPhase"]) == ("IN_PROGRESS", "QUEUED")
    assert finished.status == "SUCCEEDED", "\n".join(finished.log)
    build = warmup.build(build_id)
    assert (build["buildStatus"], build["currentPhase"], build["buildComplete"]) == (
        "SUCCEEDED",
        "COMPLETED",
        True,
    )
    assert build["timeoutInMinutes"] == TIMEOUT_MINUTES
    assert phase_statuses(build) == {
        "SUBMITTED": "SUCCEEDED",
        "QUEUED": "SUCCEEDED",
        "PROVISIONING": "SUCCEEDED",
        "DOWNLOAD_SOURCE": "SUCCEEDED",
        "INSTALL": "SUCCEEDED",
        "PRE_BUILD": "SUCCEEDED",
        "BUILD": "SUCCEEDED",
        "POST_BUILD": "SUCCEEDED",
        "UPLOAD_ARTIFACTS": "SUCCEEDED",
        "FINALIZING": "SUCCEEDED",
        "COMPLETED": None,
    }
    assert tagged_digest(warmup.aws, "k8s/pause", "3.10") == upstream.digest
    cached = described_images(warmup.aws, "k8s/pause")
    assert {upstream.platform_digest(p) for p in ("linux/amd64", "linux/arm64")} <= set(cached)
    report = warmup.report("b-1")
    assert report is not None
    assert report == finished.report
    assert report["images"][0]["digest"] == upstream.digest
    (ended,) = warmup.events(warmup.finish_events)
    assert ended["detail"]["build-status"] == "SUCCEEDED"
    assert ended["detail"]["build-id"] == build["arn"]
    assert ended["detail"]["project-name"] == PROJECT
    assert variables(ended)["BATCH_ID"] == "b-1"
    assert variables(ended)["BATCH_KEY"] == batch_key("b-1")
    assert ended["detail"] == finished.event["detail"]


def test_the_event_has_the_shape_of_a_real_one(warmup: Warmup) -> None:
    warmup.start("b-1", PAUSE)
    finished = warmup.run_one()

    started, ended = warmup.events()

    real = sample_event("codebuild-warmup-succeeded.json")
    assert set(finished.event) == set(real)
    assert (finished.event["account"], finished.event["region"]) == (ACCOUNT, REGION)
    # moto's delivery to an SQS target leaves the account out of the event it sends.
    assert set(real) - {"account"} <= set(ended)
    assert shape(ended["detail"]) == shape(real["detail"])
    assert (ended["source"], ended["detail-type"]) == (real["source"], real["detail-type"])
    assert ended["region"] == REGION
    assert ended["resources"] == [ended["detail"]["build-id"]]
    assert started["detail"]["build-status"] == "IN_PROGRESS"
    assert started["detail"]["additional-information"]["build-complete"] is False
    assert list(variables(ended)) == [
        "SHARED_LAYER_ARN",
        "REGISTRY",
        "ARTIFACT_BUCKET",
        "WARM_PARALLEL_DOWNLOADS",
        "BATCH_ID",
        "BATCH_KEY",
    ]


def test_a_build_without_the_nat_route_fails_in_its_build_phase(warmup: Warmup) -> None:
    warmup.network.close_route()
    build_id = warmup.start("b-1", PAUSE)

    finished = warmup.run_one()

    build = warmup.build(build_id)
    assert finished.status == build["buildStatus"] == "FAILED"
    assert phase_statuses(build)["BUILD"] == "FAILED"
    assert phase_statuses(build)["POST_BUILD"] == "SUCCEEDED"
    (context,) = next(p for p in build["phases"] if p["phaseType"] == "BUILD")["contexts"]
    assert context["statusCode"] == "COMMAND_EXECUTION_ERROR"
    assert context["message"].endswith("Reason: exit status 1")
    report = warmup.report("b-1")  # post_build still uploads it
    assert report is not None
    assert report["images"][0]["error"]["kind"] == "not_found"
    (ended,) = warmup.events(warmup.finish_events)
    assert ended["detail"]["build-status"] == "FAILED"
    client_ecr = client(warmup.aws, "ecr")
    with pytest.raises(client_ecr.exceptions.RepositoryNotFoundException):
        client_ecr.describe_images(repositoryName="k8s/pause")


def test_an_image_failing_upstream_fails_the_build_but_not_the_others(warmup: Warmup) -> None:
    warmup.catalog.fail(DOCKER_HUB, "library/redis", "7.4", UpstreamFailure.NOT_FOUND)
    warmup.start("b-1", PAUSE, REDIS)

    finished = warmup.run_one()

    assert finished.status == "FAILED"
    assert finished.report is not None
    warmed = {image["reference"]: image["warmed"] for image in finished.report["images"]}
    assert warmed == {PAUSE: True, REDIS: False}
    assert tagged_digest(warmup.aws, "k8s/pause", "3.10") is not None
    assert any("not imported: upstream said 404" in line for line in finished.registry_log)


def test_a_moved_tag_is_warmed_to_its_new_digest(warmup: Warmup) -> None:
    warmup.start("b-1", PAUSE)
    first = warmup.run_one()
    moved = warmup.catalog.move_tag(K8S, "pause", "3.10")
    warmup.start("b-2", PAUSE)

    second = warmup.run_one()

    assert first.report is not None
    assert second.report is not None
    assert first.report["images"][0]["digest"] != moved.digest
    assert second.report["images"][0]["digest"] == moved.digest
    assert tagged_digest(warmup.aws, "k8s/pause", "3.10") == moved.digest


# --- StartBuild, BatchGetBuilds, StopBuild ------------------------------------------------------


def test_the_same_idempotency_token_returns_the_same_build(warmup: Warmup) -> None:
    first = warmup.start("b-1", PAUSE)
    again = warmup.start("b-1", PAUSE)

    with pytest.raises(ClientError) as raised:
        warmup.codebuild.start_build(
            projectName=PROJECT,
            idempotencyToken="b-1",
            environmentVariablesOverride=[{"name": "BATCH_ID", "value": "other"}],
        )
    finished = warmup.runner.run_pending()

    assert again == first
    assert raised.value.response["Error"]["Code"] == "InvalidInputException"
    assert [build.build_id for build in finished] == [first]


def test_stop_build_stops_a_queued_build(warmup: Warmup) -> None:
    build_id = warmup.start("b-1", PAUSE)

    stopped = warmup.codebuild.stop_build(id=build_id)["build"]
    finished = warmup.runner.run_pending()

    assert stopped["buildStatus"] == "STOPPED"
    assert warmup.build(build_id)["buildStatus"] == "STOPPED"
    assert finished == []
    (ended,) = warmup.events(warmup.finish_events)
    assert ended["detail"]["build-status"] == "STOPPED"


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (
            {"projectName": "no-such-project"},
            "ResourceNotFoundException",
            "Project cannot be found",
        ),
        ({"timeoutInMinutesOverride": 3000}, "InvalidInputException", "between 5 and 2160"),
        (
            {"environmentVariablesOverride": [{"name": "CODEBUILD_X", "value": "1"}]},
            "InvalidInputException",
            "CODEBUILD_ are reserved",
        ),
        ({"imageOverride": "other:1"}, "InvalidInputException", "does not take imageOverride"),
    ],
)
def test_start_builds_codebuild_refuses(
    warmup: Warmup, arguments: dict[str, Any], code: str, message: str
) -> None:
    with pytest.raises(ClientError) as raised:
        warmup.codebuild.start_build(**{"projectName": PROJECT, **arguments})

    assert raised.value.response["Error"]["Code"] == code
    assert message in raised.value.response["Error"]["Message"]
    assert warmup.runner.run_pending() == []


def test_batch_get_builds_names_the_builds_it_does_not_know(warmup: Warmup) -> None:
    build_id = warmup.start("b-1", PAUSE)
    unknown = f"{PROJECT}:00000000-0000-0000-0000-000000000000"

    answer = warmup.codebuild.batch_get_builds(ids=[build_id, unknown])

    assert [build["id"] for build in answer["builds"]] == [build_id]
    assert answer["buildsNotFound"] == [unknown]


# --- injected failures --------------------------------------------------------------------------


def test_an_injected_start_failure_reaches_the_caller_as_a_client_error(warmup: Warmup) -> None:
    warmup.runner.fail_next_start()

    with pytest.raises(ClientError) as raised:
        warmup.codebuild.start_build(projectName=PROJECT)
    later = warmup.start("b-1", PAUSE)

    assert raised.value.response["Error"]["Code"] == "AccountLimitExceededException"
    assert warmup.build(later)["buildStatus"] == "IN_PROGRESS"


def test_an_injected_timeout_ends_the_build_timed_out_without_its_report(warmup: Warmup) -> None:
    warmup.runner.time_out_next_build()
    build_id = warmup.start("b-1", PAUSE)

    finished = warmup.run_one()

    build = warmup.build(build_id)
    assert finished.status == build["buildStatus"] == "TIMED_OUT"
    assert phase_statuses(build)["BUILD"] == "TIMED_OUT"
    assert "POST_BUILD" not in phase_statuses(build)
    assert warmup.report("b-1") is None
    (ended,) = warmup.events(warmup.finish_events)
    assert ended["detail"]["build-status"] == "TIMED_OUT"
    phases = ended["detail"]["additional-information"]["phases"]
    assert {"phase-type": "BUILD", "phase-status": "TIMED_OUT"}.items() <= next(
        phase for phase in phases if phase["phase-type"] == "BUILD"
    ).items()
    # What the build pulled before it was stopped stays cached.
    assert tagged_digest(warmup.aws, "k8s/pause", "3.10") is not None


def test_a_lost_event_leaves_a_finished_build_that_only_batch_get_builds_tells(
    warmup: Warmup,
) -> None:
    warmup.runner.lose_next_event()
    build_id = warmup.start("b-1", PAUSE)

    finished = warmup.run_one()

    assert finished.status == "SUCCEEDED"
    assert not finished.event_sent
    assert warmup.events(warmup.finish_events) == []
    assert warmup.build(build_id)["buildStatus"] == "SUCCEEDED"
    warmup.start("b-2", PAUSE)
    assert warmup.run_one().event_sent  # only the next build's event was lost


def test_a_missing_layer_fails_the_install_phase(warmup: Warmup) -> None:
    client(warmup.aws, "lambda").delete_layer_version(LayerName="SharedLayer", VersionNumber=1)
    build_id = warmup.start("b-1", PAUSE)

    finished = warmup.run_one()

    build = warmup.build(build_id)
    assert finished.status == "FAILED"
    assert phase_statuses(build)["INSTALL"] == "FAILED"
    assert "BUILD" not in phase_statuses(build)
    assert any("(ResourceNotFoundException)" in line for line in finished.log)
    assert any("exit status 254" in line for line in finished.log)


# --- what the emulation does not know -----------------------------------------------------------


def test_a_variable_the_build_does_not_have_fails_loudly(warmup: Warmup) -> None:
    build_id = warmup.codebuild.start_build(projectName=PROJECT)["build"]["id"]  # no BATCH_KEY

    with pytest.raises(BuildspecNotEmulated, match=r"uses \$BATCH_KEY, which is not set"):
        warmup.runner.run_pending()

    assert warmup.build(build_id)["buildStatus"] == "FAILED"
    assert warmup.events(warmup.finish_events) == []


BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - {command}\n"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("docker pull nginx", "the command 'docker' in 'docker pull nginx' is not emulated"),
        ("cat /tmp/a | grep b", "pipes ('|')"),
        ("test -f /tmp/a; true", "';' command lists"),
        (
            "aws ecr describe-images --repository-name x",
            "'aws ecr describe-images' is not emulated",
        ),
        ("aws s3 cp s3://b/k /tmp/k --recursive", "the aws option --recursive is not emulated"),
        ("curl --retry 3 https://example.com", "the curl option --retry is not emulated"),
        ("python3 -c 'print(1)'", "only 'python3 -m cache_pilot.warm' is emulated"),
        ("test -f $CODEBUILD_SRC_DIR/*.json", "(a glob)"),
        ("test -f $ARTIFACT_BUCKET", "unquoted $ARTIFACT_BUCKET"),
    ],
)
def test_a_command_the_emulation_does_not_know_fails_loudly(
    warmup: Warmup, command: str, message: str
) -> None:
    project = warmup.use_buildspec(BUILDSPEC.format(command=json.dumps(command)))
    warmup.codebuild.start_build(
        projectName=project,
        environmentVariablesOverride=[{"name": "ARTIFACT_BUCKET", "value": "two words"}],
    )

    with pytest.raises(BuildspecNotEmulated) as raised:
        warmup.runner.run_pending()

    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("buildspec", "message"),
    [
        ("version: 0.2\nphases:\n  build:\n    finally:\n      - true\n", "uses finally"),
        ("version: 0.2\nenv:\n  parameter-store:\n    A: /a\n", "uses parameter-store"),
        ("version: 0.2\nartifacts:\n  files: ['**/*']\n", "uses artifacts"),
        (
            "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      nodejs: 20\n",
            "runtime-versions nodejs are not emulated",
        ),
    ],
)
def test_buildspec_keys_the_emulation_does_not_run_fail_loudly(
    buildspec: str, message: str
) -> None:
    with pytest.raises(BuildspecNotEmulated, match=message):
        Buildspec.parse(buildspec)


@pytest.mark.parametrize(
    "buildspec",
    [
        "version: 0.2\nphases: [\n",  # not YAML
        "version: 0.1\nphases: {}\n",
        "version: 0.2\nphases:\n  compile:\n    commands: [true]\n",
        "version: 0.2\nstages: {}\n",
    ],
)
def test_a_buildspec_codebuild_rejects_fails_the_build_in_download_source(
    warmup: Warmup, buildspec: str
) -> None:
    project = warmup.use_buildspec(buildspec)
    build_id = warmup.codebuild.start_build(projectName=project)["build"]["id"]

    finished = warmup.run_one()

    build = warmup.build(build_id)
    assert finished.status == "FAILED"
    download = next(p for p in build["phases"] if p["phaseType"] == "DOWNLOAD_SOURCE")
    assert download["phaseStatus"] == "FAILED"
    assert download["contexts"][0]["statusCode"] == "YAML_FILE_ERROR"


def test_shell_variables_and_and_or_lists_behave_as_in_bash(warmup: Warmup) -> None:
    buildspec = (
        "version: 0.2\n"
        "env:\n  variables:\n    MARKER: /tmp/marker\n"
        "phases:\n"
        "  build:\n"
        "    commands:\n"
        "      - 'target=\"$MARKER\"'\n"
        '      - false || aws s3 cp "s3://$BUCKET/missing" "$target" || true\n'
        '      - test -f "$target" && false || test -d "${CODEBUILD_SRC_DIR}"\n'
        "  post_build:\n"
        "    commands:\n"
        '      - test -f "$target"\n'
    )
    project = warmup.use_buildspec(buildspec)
    warmup.codebuild.start_build(
        projectName=project, environmentVariablesOverride=[{"name": "BUCKET", "value": BUCKET}]
    )

    finished = warmup.run_one()

    assert finished.status == "FAILED"
    assert any("fatal error: An error occurred (404)" in line for line in finished.log)
    assert any(
        'Command did not exit successfully test -f "$target" exit status 1' in line
        for line in finished.log
    )
