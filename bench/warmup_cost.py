"""What a warm-up costs from the handlers' side, against the embedded AWS: how long the NAT route
is open beyond the build's own duration (start: from the route's CreateRoute until StartBuild
answered; finish: from the completion event until the route's DeleteRoute answered), the
handlers' whole time, and AWS calls per warmed image.

Targets: under 5 s of handler time per warm-up; at most 3 AWS calls per warmed image at 1,000
images. The build itself is played by the benchmark (it puts each image in ECR, as a pull
through the cache would); its calls are not counted.

    .venv/bin/python -m bench.warmup_cost [--images 1000] [--batch-size 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Any

from bench.common import CallCounter
from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import StateTable
from cache_pilot.settings import WarmupSettings
from cache_pilot.triggers import BuildEnded
from cache_pilot.warmup import Warmup, finish_warmup, start_warmup
from cache_pilot_local.server import create_stack_resources, start_embedded_aws
from cache_pilot_local.template import load_stack_template
from tests.listing import list_pending

TABLE = "cache-pilot-state"
BUCKET = "cache-pilot-artifacts"
PROJECT = "cache-pilot-warmup"


def build_network(setup: AwsClients, region: str) -> tuple[str, str]:
    """A VPC with a NAT gateway and a warm-up route table; the artifact bucket and the project."""
    ec2 = setup.ec2
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24")["Subnet"]["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=allocation)["NatGateway"]
    route_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    bucket_location: Any = {"LocationConstraint": region}
    setup.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration=bucket_location)
    setup.codebuild.create_project(
        name=PROJECT,
        source={"type": "NO_SOURCE", "location": "no-source", "buildspec": "version: 0.2"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "ARM_CONTAINER",
            "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole="arn:aws:iam::123456789012:role/warmup",
    )
    return nat["NatGatewayId"], route_table


def play_the_builds(setup: AwsClients, references: list[str]) -> float:
    """Every image pulled through the cache lands in ECR; returns the seconds it took."""
    began = time.perf_counter()
    for index, reference in enumerate(references):
        repository, _, tag = reference.rpartition(":")
        with contextlib.suppress(setup.ecr.exceptions.RepositoryAlreadyExistsException):
            setup.ecr.create_repository(repositoryName=repository)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"digest": "sha256:" + "1" * 64, "size": 1},
                "layers": [{"digest": f"sha256:{index:064x}", "size": 1}],
            }
        )
        setup.ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    for images in sorted({20, args.images}):
        measure(images, min(args.batch_size, images))


def measure(image_count: int, batch_size: int) -> None:
    aws = start_embedded_aws()
    counter = CallCounter()
    with aws.as_process_environment():
        setup = AwsClients(aws.session())
        create_stack_resources(setup.dynamodb, load_stack_template(aws.region), TABLE)
        nat, route_table = build_network(setup, aws.region)
        references = [f"team{n % 50:02d}/app-{n:04d}:1.0" for n in range(image_count)]
        list_pending(StateTable(setup.dynamodb, TABLE), references)
        settings = WarmupSettings.model_validate(
            {
                "STATE_TABLE_NAME": TABLE,
                "AWS_REGION": aws.region,
                "WARMUP_PROJECT_NAME": PROJECT,
                "ARTIFACT_BUCKET": BUCKET,
                "WARMUP_ROUTE_TABLE_IDS": route_table,
                "NAT_GATEWAY_ID": nat,
                "WARMUP_BATCH_SIZE": str(batch_size),
                "WARMUP_MAX_PARALLEL_BUILDS": "20",
                "EVENT_SOURCE": "cache-pilot.bench",
            }
        )
        clients = AwsClients(counter.attach(aws.session()))
        warmup = Warmup(clients, StateTable(clients.dynamodb, TABLE), settings)

        with counter.measuring() as start:
            started = start_warmup(warmup)
        builds = [batch for batch in started.batches if batch.build_id]
        build_seconds = play_the_builds(setup, references)
        with counter.measuring() as finish:
            results = [
                finish_warmup(
                    warmup,
                    BuildEnded(
                        build_id=batch.build_id or "",
                        build_status="SUCCEEDED",
                        batch_id=batch.batch_id,
                    ),
                )
                for batch in builds
            ]
        warm = sum(len(result.warm) for result in results)
        routes = setup.ec2.describe_route_tables(RouteTableIds=[route_table])["RouteTables"][0]
        route_left = any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in routes["Routes"])
    aws.stop()

    calls_per_image = (start.total + finish.total) / max(warm, 1)
    handler_seconds = start.seconds + finish.seconds
    open_in_start = start.answered_at["codebuild:StartBuild"] - start.answered_at["ec2:CreateRoute"]
    open_in_finish = finish.answered_at["ec2:DeleteRoute"] - finish.started_at
    print(
        f"warm-up cost, embedded AWS over HTTP: {image_count} images in {len(builds)} build(s) "
        f"of up to {batch_size}"
    )
    print(
        f"  start_warmup   {start.seconds:7.2f} s  {start.total:6d} calls   ({start.by_operation()})"
    )
    print(
        f"  finish_warmup  {finish.seconds:7.2f} s  {finish.total:6d} calls   ({finish.by_operation()})"
    )
    print(
        f"  route open beyond the build: {open_in_start + open_in_finish:.2f} s "
        f"({open_in_start:.2f} s in start, {open_in_finish:.2f} s in finish)   target < 5 s"
    )
    print(f"  handlers' whole time: {handler_seconds:.2f} s")
    print(f"  (the builds' own part, played here: {build_seconds:.1f} s; not counted)")
    print(f"  images WARM: {warm} of {image_count}; default route left open: {route_left}")
    print(f"  AWS calls per warmed image: {calls_per_image:.2f}   target <= 3")


if __name__ == "__main__":
    main()
