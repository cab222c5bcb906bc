"""A warm-up world in moto: the demonstration network, the artifact bucket, the CodeBuild project
(all from template.yaml's definitions) and the three functions as the template defines them.

The emulated CodeBuild queues each build and runs none here (that needs the embedded AWS, as
in tests/e2e): `run_build` plays the build's part: it puts the images it "pulled" into ECR, writes the report the warm-up
program writes, and hands finish_warmup a real-shaped event built from events/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import StateTable
from cache_pilot.state import BatchStatus, ImageRecord
from cache_pilot_local.builds import codebuild_backend
from cache_pilot_local.codebuild import create_project_request
from cache_pilot_local.functions import LocalFunction
from cache_pilot_local.template import StackTemplate, load_stack_template
from tests.conftest import ACCOUNT, REGION, TABLE_NAME, sample_event
from tests.listing import list_pending

PROJECT = "cache-pilot-WarmupProject-local"
BUCKET = "cache-pilot-artifacts-local"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="session")
def demo_stack() -> StackTemplate:
    return load_stack_template(REGION, {"CreateDemoNetwork": "true"})


def manifest_for(reference: str, platform: str) -> str:
    """A small, real-shaped OCI image manifest, distinct per image and platform."""
    seed = hashlib.sha256(f"{reference}|{platform}".encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{seed}",
                "size": 1469,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": f"sha256:{seed[::-1]}",
                    "size": 3_621_000,
                }
            ],
        }
    )


def digest_of(document: str) -> str:
    return "sha256:" + hashlib.sha256(document.encode()).hexdigest()


@dataclass
class WarmupWorld:
    clients: AwsClients
    table: StateTable
    stack: StackTemplate
    route_table_id: str
    nat_gateway_id: str
    internet_gateway_id: str
    names: dict[str, str]
    functions: dict[str, LocalFunction] = field(default_factory=dict)

    def function(self, logical_id: str, **environment: str) -> LocalFunction:
        key = logical_id + json.dumps(environment, sort_keys=True)
        if key not in self.functions:
            self.functions[key] = LocalFunction.from_template(
                self.stack, logical_id, self.names, environment
            )
        return self.functions[key]

    # --- what the tests look at -----------------------------------------------------------------

    def default_route(self) -> dict[str, Any] | None:
        table = self.clients.ec2.describe_route_tables(RouteTableIds=[self.route_table_id])[
            "RouteTables"
        ][0]
        return next(
            (dict(r) for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None
        )

    def route_to_nat_is_open(self) -> bool:
        route = self.default_route()
        return route is not None and route.get("NatGatewayId") == self.nat_gateway_id

    def statuses(self) -> dict[str, str]:
        return {reference: record.status.value for reference, record in self.table.images().items()}

    def image(self, reference: str) -> ImageRecord:
        return self.table.images()[reference]

    # --- the world around -----------------------------------------------------------------------

    def list_images(self, *references: str, platforms: tuple[str, ...] = ("linux/amd64",)) -> None:
        """Images as a sync leaves them: PENDING items in the state table."""
        list_pending(self.table, references, platforms=platforms)

    def request_warmup(self, **environment: str) -> dict[str, Any]:
        result: dict[str, Any] = self.function("StartWarmupFunction", **environment).invoke(
            sample_event("warmup-requested.json")
        )
        return result

    def cache_in_ecr(
        self, reference: str, platforms: Iterable[str] = ("linux/amd64",)
    ) -> dict[str, str]:
        """What a pull through the cache leaves in ECR: the platform manifests and the tagged index."""
        repository, _, tag = reference.partition("@")[0].rpartition(":")
        ecr = self.clients.ecr
        with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
            ecr.create_repository(repositoryName=repository)
        digests = {}
        entries = []
        for platform in platforms:
            manifest = manifest_for(reference, platform)
            # A pull of an unchanged image stores nothing new.
            with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
                ecr.put_image(
                    repositoryName=repository,
                    imageManifest=manifest,
                    imageManifestMediaType=OCI_MANIFEST,
                )
            digests[platform] = digest_of(manifest)
            os_name, architecture = platform.split("/")[:2]
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digests[platform],
                    "size": len(manifest),
                    "platform": {"os": os_name, "architecture": architecture},
                }
            )
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        with contextlib.suppress(ecr.exceptions.ImageAlreadyExistsException):
            ecr.put_image(
                repositoryName=repository,
                imageManifest=index,
                imageTag=tag,
                imageManifestMediaType=OCI_INDEX,
            )
        digests["index"] = digest_of(index)
        return digests

    def batch_ids(self) -> list[str]:
        return sorted(batch.batch_id for batch in self.table.batches())

    def running_batch_id(self) -> str:
        """The one batch whose build is running (batch ids of one second sort at random)."""
        (batch_id,) = [b.batch_id for b in self.table.batches() if b.status is BatchStatus.RUNNING]
        return batch_id

    def build_event(self, batch_id: str, status: str) -> dict[str, Any]:
        sample = "codebuild-warmup-" + status.lower().replace("_", "-") + ".json"
        event = sample_event(sample)
        batch = self.table.batch(batch_id)
        build_id = (
            batch.build_id
            if batch and batch.build_id
            else f"{PROJECT}:00000000-0000-0000-0000-000000000000"
        )
        detail = event["detail"]
        detail["project-name"] = PROJECT
        detail["build-id"] = f"arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{build_id}"
        for variable in detail["additional-information"]["environment"]["environment-variables"]:
            if variable["name"] == "BATCH_ID":
                variable["value"] = batch_id
            if variable["name"] == "BATCH_KEY":
                variable["value"] = f"batches/{batch_id}/batch.json"
        event["resources"] = [detail["build-id"]]
        return event

    def end_build_in_codebuild(self, batch_id: str, status: str) -> None:
        """CodeBuild records the batch's build as ended; its completion event is the test's."""
        batch = self.table.batch(batch_id)
        assert batch is not None
        assert batch.build_id is not None
        backend = codebuild_backend(ACCOUNT, REGION)
        with backend.build_lock:
            backend.build_queue.remove(batch.build_id)
            backend.emulated_builds[batch.build_id].finish(status)

    def run_build(
        self,
        batch_id: str,
        status: str = "SUCCEEDED",
        cached: Iterable[str] | None = None,
        write_report: bool = True,
    ) -> dict[str, Any]:
        """Play the build: cache `cached` (default: every image of the batch), report, end."""
        document = json.loads(
            self.clients.s3.get_object(Bucket=BUCKET, Key=f"batches/{batch_id}/batch.json")[
                "Body"
            ].read()
        )
        wanted = {image["reference"]: image["platforms"] for image in document["images"]}
        to_cache = set(wanted if cached is None else cached)
        images = []
        for reference, platforms in wanted.items():
            if reference in to_cache:
                digests = self.cache_in_ecr(reference, platforms)
                images.append(_report_entry(reference, digests, platforms, error=None))
            else:
                images.append(
                    _report_entry(
                        reference,
                        {},
                        platforms,
                        error={"kind": "not_found", "message": "manifest unknown"},
                    )
                )
        if write_report:
            report = {
                "format": "cache-pilot.warm-report/1",
                "registry": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
                "started_at": "2026-11-29T10:15:49Z",
                "finished_at": "2026-11-29T10:21:02Z",
                "seconds": 313.0,
                "error": None,
                "summary": {},
                "images": images,
            }
            self.clients.s3.put_object(
                Bucket=BUCKET,
                Key=f"batches/{batch_id}/report.json",
                Body=json.dumps(report).encode(),
            )
        return self.end_build(batch_id, status)

    def end_build(self, batch_id: str, status: str) -> dict[str, Any]:
        result: dict[str, Any] = self.function("FinishWarmupFunction").invoke(
            self.build_event(batch_id, status)
        )
        return result


def _report_entry(
    reference: str, digests: dict[str, str], platforms: list[str], error: Any
) -> dict[str, Any]:
    repository, _, tag = reference.partition("@")[0].rpartition(":")
    return {
        "reference": reference,
        "repository": repository,
        "tag": tag,
        "pinned_digest": reference.partition("@")[2] or None,
        "warmed": error is None,
        "digest": digests.get("index"),
        "media_type": OCI_INDEX,
        "platforms": [
            {
                "platform": platform,
                "digest": digests.get(platform),
                "bytes": 3_622_469,
                "blobs": 2,
                "error": None,
            }
            for platform in platforms
        ],
        "bytes": 0,
        "seconds": 1.0,
        "error": error,
    }


@pytest.fixture
def world(clients: AwsClients, state_table: StateTable, demo_stack: StackTemplate) -> WarmupWorld:
    ec2 = clients.ec2
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24")["Subnet"]["SubnetId"]
    warmup_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    internet_gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=internet_gateway, VpcId=vpc)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"][
        "NatGatewayId"
    ]
    route_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=route_table, SubnetId=warmup_subnet)
    security_group = ec2.create_security_group(
        GroupName="warmup", Description="warm-up builds", VpcId=vpc
    )["GroupId"]
    clients.s3.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )  # type: ignore[typeddict-item]
    role = f"arn:aws:iam::{ACCOUNT}:role/cache-pilot-WarmupBuildRole-local"
    names = {
        "StateTable": TABLE_NAME,
        "ArtifactBucket": BUCKET,
        "WarmupProject": PROJECT,
        "WarmupProject.Arn": f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{PROJECT}",
        "WarmupBuildRole.Arn": role,
        **{
            layer: f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:SharedLayer:1"
            for layer in demo_stack.of_type("AWS::Lambda::LayerVersion")
        },
        "DemoVpc": vpc,
        "DemoWarmupSubnet": warmup_subnet,
        "DemoWarmupSecurityGroup": security_group,
        "DemoWarmupRouteTable": route_table,
        "DemoNatGateway": nat,
    }
    clients.codebuild.create_project(
        **create_project_request(demo_stack, "WarmupProject", PROJECT, names)
    )
    return WarmupWorld(clients, state_table, demo_stack, route_table, nat, internet_gateway, names)
