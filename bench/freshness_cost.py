"""What a freshness check costs at scale: AWS calls for 10,000 tracked images, counted.

Target: at most one ECR call per 100 images, plus one per repository. Runs on moto in this
process (no HTTP), so the wall time says little about AWS; the call counts are what AWS sees.

    .venv/bin/python -m bench.freshness_cost [--images 10000] [--tags-per-repository 20]
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import timedelta

import boto3
from moto import mock_aws

from bench.common import CallCounter
from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import ImageSettlement, StateTable
from cache_pilot.freshness import check_freshness
from cache_pilot.settings import WarmupSettings
from cache_pilot.state import ImageStatus, utc_now
from cache_pilot.warmup import Warmup
from cache_pilot_local.emulation import install_emulation
from cache_pilot_local.template import create_table_request, load_stack_template
from tests.listing import list_pending

REGION = "eu-west-1"
TABLE = "cache-pilot-state"


def seed(setup: AwsClients, table: StateTable, images: int, tags_per_repository: int) -> None:
    """Every image listed, warmed and present in ECR, `tags_per_repository` tags a repository."""
    now = utc_now()
    references = []
    for n in range(images):
        app = n // tags_per_repository
        repository = f"team{app % 50:02d}/app-{app:05d}"
        tag = f"1.{n % tags_per_repository}"
        references.append(f"{repository}:{tag}")
        if n % tags_per_repository == 0:
            setup.ecr.create_repository(repositoryName=repository)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"digest": "sha256:" + "1" * 64},
                "layers": [{"digest": f"sha256:{n:064x}"}],
            }
        )
        setup.ecr.put_image(repositoryName=repository, imageManifest=manifest, imageTag=tag)
    list_pending(table, references, listed_at=now)
    table.claim_images(references, "seed", [ImageStatus.PENDING], now)
    table.settle_images("seed", [ImageSettlement(r, ImageStatus.WARM, now) for r in references])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--tags-per-repository", type=int, default=20)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION
    )
    install_emulation()
    counter = CallCounter()
    with mock_aws():
        setup = AwsClients(boto3.Session(region_name=REGION))
        setup.dynamodb.create_table(
            **create_table_request(load_stack_template(REGION), "StateTable", TABLE)
        )
        seed(setup, StateTable(setup.dynamodb, TABLE), args.images, args.tags_per_repository)
        settings = WarmupSettings.model_validate(
            {
                "STATE_TABLE_NAME": TABLE,
                "AWS_REGION": REGION,
                "WARMUP_PROJECT_NAME": "cache-pilot-warmup",
                "ARTIFACT_BUCKET": "cache-pilot-artifacts",
                "WARMUP_ROUTE_TABLE_IDS": "rtb-0123456789abcdef0",
                "NAT_GATEWAY_ID": "nat-0123456789abcdef0",
            }
        )
        clients = AwsClients(counter.attach(boto3.Session(region_name=REGION)))
        warmup = Warmup(
            clients,
            StateTable(clients.dynamodb, TABLE),
            settings,
            lambda: utc_now() + timedelta(days=1),
        )
        with counter.measuring() as check:
            report = check_freshness(warmup, timedelta(days=30))
    repositories = -(-args.images // args.tags_per_repository)
    ecr_calls = sum(count for name, count in check.calls.items() if name.startswith("ecr:"))
    allowed = -(-args.images // 100) + repositories
    print(f"freshness check: {args.images} images in {repositories} repositories (moto in-process)")
    print(f"  images checked: {report.checked}")
    print(
        f"  ECR calls: {ecr_calls}   target <= {allowed} (one per 100 images plus one per repository)"
    )
    print(f"  every AWS call: {check.total}   ({check.by_operation()})")
    print(f"  wall time on moto: {check.seconds:.1f} s")


if __name__ == "__main__":
    main()
