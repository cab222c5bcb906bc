"""The end-to-end harness: template.yaml deployed into the embedded AWS, its events routed
by its own rules to its functions, its warm-up builds run against the emulated upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import StateTable
from cache_pilot.state import ImageRecord
from cache_pilot_local.cloud import LocalCloud, local_cloud

DOCKER_HUB_SECRET = "ecr-pullthroughcache/docker-hub"
CONFIG = """
rules:
  - prefix: docker-hub
    upstream: docker-hub
    credential: ecr-pullthroughcache/docker-hub
  - prefix: k8s
    upstream: registry.k8s.io
images:
  - docker-hub/library/nginx:1.27
  - image: k8s/pause:3.10
    platforms: [linux/amd64, linux/arm64]
defaults:
  platforms: [linux/amd64]
"""
IMAGES = ("docker-hub/library/nginx:1.27", "k8s/pause:3.10")
# Where each image of the catalog comes from: upstream registry and repository.
UPSTREAM = {
    "docker-hub/library/nginx:1.27": ("registry-1.docker.io", "library/nginx", "1.27"),
    "docker-hub/library/redis:7.4": ("registry-1.docker.io", "library/redis", "7.4"),
    "k8s/pause:3.10": ("registry.k8s.io", "pause", "3.10"),
    "k8s/coredns/coredns:v1.11.3": ("registry.k8s.io", "coredns/coredns", "v1.11.3"),
}


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with local_cloud() as cloud:
        cloud.client("secretsmanager").create_secret(
            Name=DOCKER_HUB_SECRET,
            SecretString=json.dumps({"username": "cache-pilot", "accessToken": "dckr_pat_x"}),
        )
        yield cloud


class World:
    """What the tests look at, read from the embedded AWS."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.clients = AwsClients()
        self.table = StateTable(self.clients.dynamodb, cloud.stack.outputs["StateTableName"])
        self.route_table = cloud.stack.outputs["WarmupRouteTables"]
        self.config_parameter = f"{cloud.stack.config_path}config"

    def configure(self, document: str = CONFIG) -> None:
        self.clients.ssm.put_parameter(
            Name=self.config_parameter, Value=document, Type="String", Overwrite=True
        )

    def images(self) -> dict[str, ImageRecord]:
        return self.table.images()

    def statuses(self) -> dict[str, str]:
        return {reference: record.status.value for reference, record in self.images().items()}

    def default_route(self) -> dict[str, Any] | None:
        (table,) = self.clients.ec2.describe_route_tables(RouteTableIds=[self.route_table])[
            "RouteTables"
        ]
        return next(
            (r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None
        )

    def ecr_digest(self, reference: str) -> str:
        repository, _, tag = reference.rpartition(":")
        (image,) = self.clients.ecr.describe_images(
            repositoryName=repository, imageIds=[{"imageTag": tag}]
        )["imageDetails"]
        return str(image["imageDigest"])

    def upstream_digest(self, reference: str) -> str:
        return self.cloud.upstream.image(*UPSTREAM[reference]).digest

    def rule_prefixes(self) -> list[str]:
        rules = self.clients.ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
        return sorted(rule["ecrRepositoryPrefix"] for rule in rules)


@pytest.fixture
def world(cloud: LocalCloud) -> World:
    return World(cloud)
