"""The emulated upstream catalog and the emulated ECR registry with its pull-through cache:
what a pull from a subnet caches, and when it cannot."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import io
import json
import socket
import ssl
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import pytest

from cache_pilot.warm.manifests import DOCKER_MANIFEST_LIST, OCI_INDEX
from cache_pilot_local.registry import (
    PullerNetwork,
    PullThroughRegistry,
    RegistryEndpoint,
    egress_of,
)
from cache_pilot_local.server import EmbeddedAws, embedded_aws
from cache_pilot_local.upstream import UpstreamCatalog, UpstreamError, UpstreamFailure

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
K8S = "registry.k8s.io"
DOCKER_HUB = "registry-1.docker.io"
PAUSE = "k8s/pause:3.10"
DOCKER_HUB_SECRET = "ecr-pullthroughcache/docker-hub"


# --- fixtures shared with test_builds.py ----------------------------------------------------------


@dataclass
class Network:
    """A VPC with a public subnet holding a NAT gateway and a private subnet whose own route
    table has no default route until `open_route`."""

    ec2: Any
    vpc_id: str
    public_subnet_id: str
    private_subnet_id: str
    route_table_id: str
    nat_gateway_id: str
    security_group_id: str

    def open_route(self) -> None:
        self.ec2.create_route(
            RouteTableId=self.route_table_id,
            DestinationCidrBlock="0.0.0.0/0",
            NatGatewayId=self.nat_gateway_id,
        )

    def close_route(self) -> None:
        self.ec2.delete_route(RouteTableId=self.route_table_id, DestinationCidrBlock="0.0.0.0/0")

    def delete_nat_gateway(self) -> None:
        self.ec2.delete_nat_gateway(NatGatewayId=self.nat_gateway_id)


def create_network(aws: EmbeddedAws) -> Network:
    ec2 = client(aws, "ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.42.0.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    route_table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=route_table, SubnetId=private)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]
    group = ec2.create_security_group(GroupName="warmup", Description="warm-up", VpcId=vpc_id)
    return Network(ec2, vpc_id, public, private, route_table, nat["NatGatewayId"], group["GroupId"])


def client(aws: EmbeddedAws, service: str) -> Any:
    return _client(aws.endpoint_url, aws.region, service)


@cache
def _client(endpoint_url: str, region: str, service: str) -> Any:
    # One client per service: a new session would load its service model again.
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
    return session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def create_rules(aws: EmbeddedAws) -> None:
    """The example configuration's rules: ecr-public, docker-hub (with its secret), k8s."""
    ecr = client(aws, "ecr")
    secret = client(aws, "secretsmanager").create_secret(
        Name=DOCKER_HUB_SECRET,
        SecretString=json.dumps({"username": "cache-pilot", "accessToken": "dckr_pat_x"}),
    )
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws"
    )
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub",
        upstreamRegistry="docker-hub",
        upstreamRegistryUrl=DOCKER_HUB,
        credentialArn=secret["ARN"],
    )
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="k8s", upstreamRegistryUrl=K8S)


def described_images(aws: EmbeddedAws, repository: str) -> dict[str, dict[str, Any]]:
    """DescribeImages of a repository, by digest."""
    details = client(aws, "ecr").describe_images(repositoryName=repository)["imageDetails"]
    return {detail["imageDigest"]: detail for detail in details}


def tagged_digest(aws: EmbeddedAws, repository: str, tag: str) -> str | None:
    for digest, detail in described_images(aws, repository).items():
        if tag in detail.get("imageTags", []):
            return digest
    return None


@pytest.fixture(scope="module")
def module_aws() -> Iterator[EmbeddedAws]:
    with embedded_aws(region=REGION) as aws:
        yield aws


@pytest.fixture
def aws(module_aws: EmbeddedAws) -> EmbeddedAws:
    module_aws.reset()
    return module_aws


# --- this module's fixtures ----------------------------------------------------------------------


@pytest.fixture
def network(aws: EmbeddedAws) -> Network:
    create_rules(aws)
    return create_network(aws)


@pytest.fixture
def catalog() -> UpstreamCatalog:
    return UpstreamCatalog.default()


@pytest.fixture
def registry(aws: EmbeddedAws, catalog: UpstreamCatalog) -> Iterator[PullThroughRegistry]:
    with PullThroughRegistry(ACCOUNT, REGION, catalog, endpoint_url=aws.endpoint_url) as registry:
        yield registry


@pytest.fixture
def endpoint(registry: PullThroughRegistry) -> Iterator[RegistryEndpoint]:
    with registry.serve(PullerNetwork.of_subnets(None)) as endpoint:
        yield endpoint


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def error_codes(self) -> list[str]:
        return [error["code"] for error in json.loads(self.body)["errors"]]


def request(
    endpoint: RegistryEndpoint,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    host: str | None = None,
) -> Answer:
    """One HTTPS request to the endpoint under a host name, the certificate checked for it."""
    context = ssl.create_default_context(cafile=str(endpoint.ca_file))
    connection = http.client.HTTPSConnection(host or endpoint.host, 443, context=context)
    port = endpoint.port
    connection._create_connection = lambda address, *args, **kwargs: socket.create_connection(  # type: ignore[attr-defined]
        ("127.0.0.1", port), *args, **kwargs
    )
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def basic(password: str, user: str = "AWS") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def ecr_login(aws: EmbeddedAws) -> dict[str, str]:
    """The Authorization header from what ECR's GetAuthorizationToken hands out."""
    token = client(aws, "ecr").get_authorization_token()["authorizationData"][0]
    return {"Authorization": "Basic " + token["authorizationToken"]}


# --- the upstream catalog ------------------------------------------------------------------------


REQUIRED_IMAGES = [
    ("public.ecr.aws", "amazonlinux/amazonlinux", "latest"),
    (DOCKER_HUB, "library/nginx", "1.27"),
    (DOCKER_HUB, "library/redis", "7.4"),
    (K8S, "pause", "3.10"),
    (K8S, "coredns/coredns", "v1.11.3"),
    (K8S, "kube-proxy", "v1.31.2"),
]


@pytest.mark.parametrize(("registry_url", "repository", "tag"), REQUIRED_IMAGES)
def test_the_default_catalog_holds_real_multi_platform_images(
    catalog: UpstreamCatalog, registry_url: str, repository: str, tag: str
) -> None:
    image = catalog.image(registry_url, repository, tag)
    index = json.loads(image.index.data)

    assert {"linux/amd64", "linux/arm64"} <= {p.rsplit("/v8", 1)[0] for p in image.platforms}
    assert image.index.media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST)
    assert index["mediaType"] == image.index.media_type
    assert image.digest == "sha256:" + hashlib.sha256(image.index.data).hexdigest()
    for entry, listed in zip(image.entries, index["manifests"], strict=True):
        assert listed["digest"] == "sha256:" + hashlib.sha256(entry.manifest.data).hexdigest()
        assert listed["size"] == len(entry.manifest.data)
        assert listed["mediaType"] == entry.manifest.media_type
    for entry in (entry for entry in image.entries if not entry.is_attestation):
        manifest = json.loads(entry.manifest.data)
        config = catalog.blob(manifest["config"]["digest"])
        layers = [catalog.blob(layer["digest"]) for layer in manifest["layers"]]
        assert config is not None
        assert None not in layers
        assert config.size == manifest["config"]["size"] < 4096
        document = json.loads(config.data)
        assert (document["os"], document["architecture"]) == (
            entry.platform.os,
            entry.platform.architecture,
        )
        assert document["rootfs"]["diff_ids"] == [
            "sha256:" + hashlib.sha256(gzip.decompress(layer.data)).hexdigest()
            for layer in layers
            if layer is not None
        ]


def test_one_default_image_has_a_third_platform_and_attestations(catalog: UpstreamCatalog) -> None:
    nginx = catalog.image(DOCKER_HUB, "library/nginx", "1.27")
    index = json.loads(nginx.index.data)

    assert nginx.platforms == ("linux/amd64", "linux/arm64/v8", "linux/arm/v7")
    attestations = [m for m in index["manifests"] if m["platform"]["os"] == "unknown"]
    assert len(attestations) == 3
    assert {m["annotations"]["vnd.docker.reference.digest"] for m in attestations} == {
        nginx.platform_digest(platform) for platform in nginx.platforms
    }


def test_a_layer_is_a_gzipped_tar_archive(catalog: UpstreamCatalog) -> None:
    image = catalog.image(K8S, "pause", "3.10")
    layer = image.entries[0].blobs[-1]

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as archive:
        names = archive.getnames()
    assert "usr/local/bin/pause" in names


def test_the_catalog_is_the_same_on_every_run() -> None:
    first, second = UpstreamCatalog.default(), UpstreamCatalog.default()

    assert [image.digest for image in first.images()] == [image.digest for image in second.images()]


def test_a_moved_tag_has_new_digests_and_keeps_its_base_layers(catalog: UpstreamCatalog) -> None:
    before = catalog.image(K8S, "pause", "3.10")

    after = catalog.move_tag(K8S, "pause", "3.10")

    assert after.digest != before.digest
    assert not set(after.manifests) & set(before.manifests)
    shared = {blob.digest for blob in before.blobs} & {blob.digest for blob in after.blobs}
    assert len(shared) == len(before.platforms)  # one base layer per platform
    assert catalog.lookup(K8S, "pause", "3.10").digest == after.digest
    assert catalog.lookup(K8S, "pause", before.digest).digest == before.digest


def test_an_injected_failure_is_answered_until_recovered(catalog: UpstreamCatalog) -> None:
    catalog.fail(K8S, "pause", "3.10", UpstreamFailure.TOO_MANY_REQUESTS)

    with pytest.raises(UpstreamError) as raised:
        catalog.lookup(K8S, "pause", "3.10")
    assert raised.value.failure is UpstreamFailure.TOO_MANY_REQUESTS
    catalog.recover(K8S, "pause", "3.10")
    assert catalog.lookup(K8S, "pause", "3.10").tag == "3.10"


@pytest.mark.parametrize(
    ("registry_url", "repository", "reference"),
    [
        (K8S, "pause", "3.9"),
        (K8S, "no-such-image", "3.10"),
        (DOCKER_HUB, "pause", "3.10"),
        (K8S, "pause", "sha256:" + "0" * 64),
    ],
)
def test_the_upstream_does_not_have_what_is_not_in_the_catalog(
    catalog: UpstreamCatalog, registry_url: str, repository: str, reference: str
) -> None:
    with pytest.raises(UpstreamError) as raised:
        catalog.lookup(registry_url, repository, reference)
    assert raised.value.failure is UpstreamFailure.NOT_FOUND


def test_failing_an_image_the_catalog_does_not_have_is_a_mistake(
    catalog: UpstreamCatalog,
) -> None:
    with pytest.raises(KeyError, match=r"registry\.k8s\.io/paws:3\.10 is not in the upstream"):
        catalog.fail(K8S, "paws", "3.10")


# --- egress --------------------------------------------------------------------------------------


def test_egress_needs_a_default_route_to_an_available_nat_gateway(
    aws: EmbeddedAws, network: Network
) -> None:
    private = PullerNetwork.of_subnets([network.private_subnet_id])

    closed = egress_of(ACCOUNT, REGION, private)
    network.open_route()
    opened = egress_of(ACCOUNT, REGION, private)
    network.delete_nat_gateway()
    blackhole = egress_of(ACCOUNT, REGION, private)

    assert not closed.allowed
    assert "has no 0.0.0.0/0 route" in closed.reason
    assert opened.allowed
    assert not blackhole.allowed
    assert f"NAT gateway {network.nat_gateway_id}, deleted" in blackhole.reason


def test_a_subnet_without_its_own_route_table_uses_the_main_one(
    aws: EmbeddedAws, network: Network
) -> None:
    ec2 = network.ec2
    subnet = ec2.create_subnet(VpcId=network.vpc_id, CidrBlock="10.42.2.0/24")["Subnet"]
    main = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [network.vpc_id]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"][0]["RouteTableId"]
    ec2.create_route(
        RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=network.nat_gateway_id
    )

    assert egress_of(ACCOUNT, REGION, PullerNetwork.of_subnets([subnet["SubnetId"]])).allowed
    # The private subnet has its own table (no default route), so the main one does not apply.
    assert not egress_of(
        ACCOUNT, REGION, PullerNetwork.of_subnets([network.private_subnet_id])
    ).allowed


def test_a_route_to_an_internet_gateway_is_no_egress_for_a_build(
    aws: EmbeddedAws, network: Network
) -> None:
    gateway = network.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    network.ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=network.vpc_id)
    network.ec2.create_route(
        RouteTableId=network.route_table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway
    )

    egress = egress_of(ACCOUNT, REGION, PullerNetwork.of_subnets([network.private_subnet_id]))

    assert not egress.allowed
    assert f"to {gateway}, not a NAT gateway" in egress.reason


@pytest.mark.parametrize(
    ("subnets", "allowed", "reason"),
    [
        (None, True, "no VPC"),
        ((), False, "no subnets"),
        (("subnet-0123456789abcdef0",), False, "subnet subnet-0123456789abcdef0 does not exist"),
    ],
)
def test_egress_of_odd_networks(
    aws: EmbeddedAws, subnets: tuple[str, ...] | None, allowed: bool, reason: str
) -> None:
    egress = egress_of(ACCOUNT, REGION, PullerNetwork.of_subnets(subnets))

    assert egress.allowed is allowed
    assert reason in egress.reason


# --- pulls through the cache ---------------------------------------------------------------------


def test_a_first_pull_needs_the_nat_route_and_caches_every_manifest(
    aws: EmbeddedAws, network: Network, registry: PullThroughRegistry, catalog: UpstreamCatalog
) -> None:
    upstream = catalog.image(K8S, "pause", "3.10")
    subnets = [network.private_subnet_id]

    refused = registry.pull_image(PAUSE, subnet_ids=subnets)
    ecr = client(aws, "ecr")
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_images(repositoryName="k8s/pause")
    network.open_route()
    pulled = registry.pull_image(PAUSE, subnet_ids=subnets)

    assert not refused.pulled
    assert refused.error is not None
    assert "MANIFEST_UNKNOWN Requested image not found" in refused.error
    assert any("no egress" in line for line in refused.registry_log)
    assert pulled.pulled, pulled.output
    assert pulled.digest == upstream.digest
    images = described_images(aws, "k8s/pause")
    assert set(images) == {manifest.digest for manifest in upstream.manifests}
    assert images[upstream.digest]["imageTags"] == ["3.10"]
    assert images[upstream.digest]["imageManifestMediaType"] == DOCKER_MANIFEST_LIST
    assert pulled.report is not None
    assert pulled.report["images"][0]["bytes"] == sum(blob.size for blob in upstream.blobs)


def test_a_cached_image_is_pulled_without_egress(
    aws: EmbeddedAws, network: Network, registry: PullThroughRegistry
) -> None:
    network.open_route()
    first = registry.pull_image(PAUSE, subnet_ids=[network.private_subnet_id])
    network.delete_nat_gateway()

    second = registry.pull_image(PAUSE, subnet_ids=[network.private_subnet_id])

    assert first.pulled
    assert second.pulled, second.output
    assert second.digest == first.digest
    assert any("served from the cache (no egress)" in line for line in second.registry_log)


def test_a_moved_tag_is_imported_again_only_with_egress(
    aws: EmbeddedAws, network: Network, registry: PullThroughRegistry, catalog: UpstreamCatalog
) -> None:
    subnets = [network.private_subnet_id]
    network.open_route()
    before = registry.pull_image(PAUSE, subnet_ids=subnets).digest
    moved = catalog.move_tag(K8S, "pause", "3.10")
    network.close_route()

    stale = registry.pull_image(PAUSE, subnet_ids=subnets)
    network.open_route()
    fresh = registry.pull_image(PAUSE, subnet_ids=subnets)

    assert stale.digest == before != moved.digest
    assert fresh.digest == moved.digest
    assert tagged_digest(aws, "k8s/pause", "3.10") == moved.digest
    assert moved.platform_digest("linux/arm64") in described_images(aws, "k8s/pause")


def test_an_upstream_failure_fails_the_first_pull_only(
    aws: EmbeddedAws, network: Network, registry: PullThroughRegistry, catalog: UpstreamCatalog
) -> None:
    subnets = [network.private_subnet_id]
    network.open_route()
    catalog.fail(DOCKER_HUB, "library/redis", "7.4", UpstreamFailure.DENIED)

    failed = registry.pull_image("docker-hub/library/redis:7.4", subnet_ids=subnets)
    catalog.fail(K8S, "pause", "3.10")
    other = registry.pull_image(PAUSE, subnet_ids=subnets)
    catalog.recover(K8S, "pause", "3.10")
    cached = registry.pull_image(PAUSE, subnet_ids=subnets)
    catalog.fail(K8S, "pause", "3.10")
    from_cache = registry.pull_image(PAUSE, subnet_ids=subnets)

    assert not failed.pulled
    assert failed.error is not None
    assert failed.error.startswith("unauthorized:")
    assert "DENIED requested access to the resource is denied" in failed.error
    assert not other.pulled
    assert cached.pulled
    assert from_cache.pulled
    assert from_cache.digest == cached.digest
    ecr = client(aws, "ecr")
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_images(repositoryName="docker-hub/library/redis")


def test_a_pull_of_every_platform_warms_attestations_too(
    aws: EmbeddedAws, network: Network, registry: PullThroughRegistry, catalog: UpstreamCatalog
) -> None:
    network.open_route()

    pulled = registry.pull_image("docker-hub/library/nginx:1.27", subnet_ids=None)

    nginx = catalog.image(DOCKER_HUB, "library/nginx", "1.27")
    assert pulled.pulled, pulled.output
    assert pulled.report is not None
    platforms = [p["platform"] for p in pulled.report["images"][0]["platforms"]]
    assert platforms.count("unknown/unknown") == 3
    assert set(described_images(aws, "docker-hub/library/nginx")) == {
        manifest.digest for manifest in nginx.manifests
    }


def test_the_repository_creation_template_of_the_rule_applies(
    aws: EmbeddedAws, network: Network, registry: PullThroughRegistry, catalog: UpstreamCatalog
) -> None:
    ecr = client(aws, "ecr")
    ecr.create_repository_creation_template(
        prefix="k8s",
        appliedFor=["PULL_THROUGH_CACHE"],
        imageTagMutability="IMMUTABLE",
        resourceTags=[{"Key": "owner", "Value": "cache-pilot"}],
    )
    network.open_route()
    first = registry.pull_image(PAUSE, subnet_ids=None)
    catalog.move_tag(K8S, "pause", "3.10")

    second = registry.pull_image(PAUSE, subnet_ids=None)

    repository = ecr.describe_repositories(repositoryNames=["k8s/pause"])["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    tags = ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]
    assert tags == [{"Key": "owner", "Value": "cache-pilot"}]
    # An IMMUTABLE cache repository cannot follow a tag that moved: it serves the old image.
    assert second.digest == first.digest
    assert any("IMMUTABLE" in line for line in second.registry_log)


# --- the registry API ----------------------------------------------------------------------------


def test_the_password_is_what_get_authorization_token_hands_out(
    aws: EmbeddedAws, endpoint: RegistryEndpoint
) -> None:
    anonymous = request(endpoint, "/v2/")
    logged_in = request(endpoint, "/v2/", headers=ecr_login(aws))
    wrong = request(endpoint, "/v2/", headers=basic("not-the-token"))
    lowercase = request(
        endpoint, "/v2/", headers={"authorization": ecr_login(aws)["Authorization"]}
    )

    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"] == (
        f'Basic realm="https://{endpoint.host}/",service="ecr.amazonaws.com"'
    )
    assert logged_in.status == lowercase.status == 200
    assert wrong.status == 401
    assert wrong.error_codes == ["DENIED"]


def test_manifests_negotiate_the_media_type_and_answer_head(
    aws: EmbeddedAws, network: Network, endpoint: RegistryEndpoint, catalog: UpstreamCatalog
) -> None:
    login = ecr_login(aws)
    upstream = catalog.image(K8S, "pause", "3.10")
    path = "/v2/k8s/pause/manifests/3.10"

    refused = request(
        endpoint,
        path,
        headers={**login, "Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    head = request(endpoint, path, method="HEAD", headers={**login, "Accept": DOCKER_MANIFEST_LIST})
    by_digest = request(endpoint, f"/v2/k8s/pause/manifests/{upstream.digest}", headers=login)

    assert refused.status == 404
    assert refused.error_codes == ["MANIFEST_UNKNOWN"]
    assert head.status == 200
    assert head.body == b""
    assert head.headers["Docker-Content-Digest"] == upstream.digest
    assert head.headers["Content-Length"] == str(upstream.index.size)
    assert head.headers["Content-Type"] == DOCKER_MANIFEST_LIST
    assert by_digest.body == upstream.index.data


def test_blobs_are_redirected_to_the_layer_bucket_which_refuses_the_registry_login(
    aws: EmbeddedAws, network: Network, endpoint: RegistryEndpoint, catalog: UpstreamCatalog
) -> None:
    login = ecr_login(aws)
    request(endpoint, "/v2/k8s/pause/manifests/3.10", headers=login)
    blob = catalog.image(K8S, "pause", "3.10").entries[0].blobs[1]

    redirect = request(endpoint, f"/v2/k8s/pause/blobs/{blob.digest}", headers=login)
    location = redirect.headers["Location"]
    target = location.removeprefix(f"https://{endpoint.layer_host}")
    with_login = request(endpoint, target, host=endpoint.layer_host, headers=login)
    without = request(endpoint, target, host=endpoint.layer_host)
    forged = request(endpoint, target[:-4] + "0000", host=endpoint.layer_host)

    assert redirect.status == 307
    assert location.startswith(f"https://{endpoint.layer_host}/")
    assert with_login.status == 400
    assert b"<Code>InvalidArgument</Code>" in with_login.body
    assert without.status == 200
    assert "sha256:" + hashlib.sha256(without.body).hexdigest() == blob.digest
    assert forged.status == 403


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v2/team/app/manifests/1.0", 404, "NAME_UNKNOWN"),  # no rule, no repository
        ("/v2/k8s/pause/manifests/sha256:" + "a" * 64, 404, "NAME_UNKNOWN"),  # not by digest
        ("/v2/k8s/pause/manifests/9.99", 404, "MANIFEST_UNKNOWN"),  # the upstream lacks it
        ("/v2/k8s/pause/blobs/sha256:" + "a" * 64, 404, "NAME_UNKNOWN"),
        ("/v2/k8s/pause/blobs/latest", 400, "DIGEST_INVALID"),
        ("/v2/_catalog", 404, "NOT_FOUND"),
    ],
)
def test_requests_the_registry_refuses(
    aws: EmbeddedAws,
    network: Network,
    endpoint: RegistryEndpoint,
    path: str,
    status: int,
    code: str,
) -> None:
    answer = request(endpoint, path, headers=ecr_login(aws))

    assert (answer.status, answer.error_codes) == (status, [code])


def test_a_first_pull_by_digest_does_not_fill_the_cache(
    aws: EmbeddedAws, network: Network, endpoint: RegistryEndpoint, catalog: UpstreamCatalog
) -> None:
    login = ecr_login(aws)
    digest = catalog.image(K8S, "pause", "3.10").digest

    by_digest = request(endpoint, f"/v2/k8s/pause/manifests/{digest}", headers=login)
    by_tag = request(endpoint, "/v2/k8s/pause/manifests/3.10", headers=login)

    assert by_digest.status == 404
    assert by_tag.status == 200


def test_the_build_network_reaches_loopback_and_the_registry_only(
    endpoint: RegistryEndpoint,
) -> None:
    probe = (
        "import socket\n"
        f"for host in ('{endpoint.host}', 'localhost', 'api.ecr.eu-west-1.amazonaws.com'):\n"
        "    try:\n"
        "        socket.getaddrinfo(host, 443)\n"
        "        print(host, 'reachable')\n"
        "    except OSError:\n"
        "        print(host, 'unreachable')\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(endpoint.python_path), **endpoint.program_environment()},
        capture_output=True,
        text=True,
        check=True,
    )

    assert done.stdout.splitlines() == [
        f"{endpoint.host} reachable",
        "localhost reachable",
        "api.ecr.eu-west-1.amazonaws.com unreachable",
    ]


def test_pull_image_needs_the_embedded_aws(catalog: UpstreamCatalog) -> None:
    with (
        PullThroughRegistry(ACCOUNT, REGION, catalog) as registry,
        pytest.raises(ValueError, match="needs the embedded AWS"),
    ):
        registry.pull_image(PAUSE, subnet_ids=None)
