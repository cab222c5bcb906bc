"""The warm-up program against the in-memory fake registry: retries, redirects, tokens, a
batch of a thousand images, flat memory, and ECR credentials; no registry binary needed."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from cache_pilot.warm.batch import parse_request
from cache_pilot.warm.cli import main
from cache_pilot.warm.report import ErrorKind, WarmReport, load_report
from cache_pilot.warm.transport import RegistrySession, RetryPolicy, TransportFailure
from cache_pilot.warm.warmer import Warmer
from tests.warm.conftest import PASSWORD, USERNAME
from tests.warm.fake_registry import BlobHost, FakeRegistry, Fault
from tests.warm.registry_harness import (
    ImageSeeder,
    SeededImage,
    free_port,
    run_warm_process,
    write_batch,
)

BOTH = ["linux/amd64", "linux/arm64"]
FakeFactory = Callable[[str | None], FakeRegistry]


def warm_in_process(
    registry: FakeRegistry,
    images: list[tuple[str, list[str]]],
    tmp_path: Path,
    *,
    password: str | None = None,
) -> tuple[int, WarmReport, str, str]:
    batch = write_batch(tmp_path / "batch.json", images)
    report = tmp_path / "report.json"
    argv = ["--registry", registry.host, "--batch", str(batch), "--report", str(report)]
    argv.append("--insecure-http")
    if password is not None:
        argv += ["--username", USERNAME, "--password-stdin"]
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(argv, stdin=io.StringIO(f"{password}\n"), stdout=stdout, stderr=stderr)
    return code, load_report(report), stdout.getvalue(), stderr.getvalue()


def seed(
    registry: FakeRegistry,
    repository: str = "lib/app",
    *,
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
    layer_sizes: tuple[int, ...] = (4096, 65536),
    compress: bool = True,
) -> SeededImage:
    seeder = ImageSeeder(registry, compress=compress)
    return seeder.push_image(repository, "1", platforms, layer_sizes=layer_sizes)


def test_a_429_then_200_is_retried_after_the_retry_after_delay(
    fake_registry: FakeRegistry, tmp_path: Path
) -> None:
    # Given a registry that answers the tag with 429 (Retry-After: 1) once, then normally
    image = seed(fake_registry)
    tag_path = f"/v2/{image.repository}/manifests/{image.tag}"
    fake_registry.plan(tag_path, Fault(429, {"Retry-After": "1"}))

    # When the image is warmed
    code, report, _, _ = warm_in_process(fake_registry, [(image.reference, BOTH)], tmp_path)

    # Then it is warmed, the second request came after the delay the registry asked for
    assert code == 0
    assert report.images[0].digest == image.digest
    first, second = fake_registry.requests_for(tag_path)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95


def test_5xx_and_a_body_cut_short_are_retried_and_the_blob_verified(
    fake_registry: FakeRegistry, tmp_path: Path
) -> None:
    # Given a layer answered with 503, then 500, then a body cut halfway, then whole
    image = seed(fake_registry, layer_sizes=(200_000,))
    [layer] = image.platform_layers["linux/arm64"]
    blob_path = f"/v2/{image.repository}/blobs/{layer}"
    fake_registry.plan(blob_path, Fault(503), Fault(500), Fault(200, cut_after=1000))

    # When it is warmed
    code, report, _, _ = warm_in_process(fake_registry, [(image.reference, BOTH)], tmp_path)

    # Then it is warmed after four requests for that blob
    assert code == 0, report.images[0].error
    assert [r.status for r in fake_registry.requests_for(blob_path)] == [503, 500, 200, 200]
    assert report.images[0].bytes == image.total_bytes


def test_retries_are_bounded(fake_registry: FakeRegistry) -> None:
    # Given a registry that answers a blob with 503 forever
    image = seed(fake_registry)
    layer = image.platform_layers["linux/amd64"][0]
    blob_path = f"/v2/{image.repository}/blobs/{layer}"
    fake_registry.plan(blob_path, *[Fault(503)] * 10)
    policy = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.05)
    session = RegistrySession(fake_registry.host, secure=False, retry=policy)

    # When it is warmed
    [result] = Warmer(session).warm(
        [parse_request({"reference": image.reference, "platforms": BOTH})]
    )

    # Then it gives up after three attempts and says so
    assert result.error is not None
    assert result.error.kind == ErrorKind.REGISTRY_ERROR
    assert "503" in result.error.message
    assert "after 3 attempts" in result.error.message
    assert len(fake_registry.requests_for(blob_path)) == 3


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_a_blob_redirect_to_another_host_does_not_carry_the_authorization(
    fake_registry_factory: FakeFactory, auth: str, tmp_path: Path
) -> None:
    # Given an authenticated registry that redirects blob downloads to storage on another host
    registry = fake_registry_factory(auth)
    storage = BlobHost(registry).start()
    try:
        registry.blob_redirect = storage.url
        image = seed(registry)

        # When the image is warmed
        code, report, _, _ = warm_in_process(
            registry, [(image.reference, BOTH)], tmp_path, password=PASSWORD
        )
    finally:
        storage.stop()

    # Then every blob came from the storage host, which never saw the credentials
    assert code == 0, report.images[0].error
    assert {r.path.removeprefix("/storage/") for r in storage.requests} == set(image.blobs)
    assert all("authorization" not in r.headers for r in storage.requests)
    registry_blob_requests = [r for r in registry.requests if "/blobs/" in r.path]
    assert registry_blob_requests
    assert all("authorization" in r.headers for r in registry_blob_requests)


def test_bearer_tokens_are_fetched_from_the_realm_per_repository(
    fake_registry_factory: FakeFactory, tmp_path: Path
) -> None:
    # Given a registry with token authentication and two repositories
    registry = fake_registry_factory("bearer")
    first, second = seed(registry, "team/one"), seed(registry, "team/two")

    # When both are warmed
    code, report, _, _ = warm_in_process(
        registry, [(first.reference, BOTH), (second.reference, BOTH)], tmp_path, password=PASSWORD
    )

    # Then both are warmed with one token per repository
    assert code == 0, [image.error for image in report.images]
    tokens = [r for r in registry.requests if r.path == "/token" and r.status == 200]
    assert len(tokens) == 3  # the access check, then one per repository


def test_a_token_service_rejecting_the_password_fails_fast(
    fake_registry_factory: FakeFactory, tmp_path: Path
) -> None:
    registry = fake_registry_factory("bearer")
    image = seed(registry)

    code, report, _, stderr = warm_in_process(
        registry, [(image.reference, BOTH)], tmp_path, password="wrong"
    )

    assert code == 3
    assert "token service" in stderr
    assert "rejected the credentials of user 'warm'" in stderr
    assert report.images[0].error is not None
    assert report.images[0].error.kind == ErrorKind.NOT_ATTEMPTED
    assert not [r for r in registry.requests if "/manifests/" in r.path]


def test_no_credentials_for_a_registry_that_wants_them_is_a_clear_error(
    fake_registry_factory: FakeFactory, tmp_path: Path
) -> None:
    registry = fake_registry_factory("basic")
    image = seed(registry)

    code, report, _, stderr = warm_in_process(registry, [(image.reference, BOTH)], tmp_path)

    assert code == 3
    assert "requires credentials" in stderr
    assert report.error is not None


def test_a_pinned_digest_that_the_tag_moved_away_from_is_reported(
    fake_registry: FakeRegistry, tmp_path: Path
) -> None:
    image = seed(fake_registry)
    stale = "sha256:" + "0" * 64

    code, report, _, _ = warm_in_process(
        fake_registry,
        [(f"{image.reference}@{stale}", BOTH), (f"{image.reference}@{image.digest}", BOTH)],
        tmp_path,
    )

    assert code == 1
    moved, pinned = report.images
    assert moved.error is not None
    assert moved.error.kind == ErrorKind.PINNED_DIGEST_MISMATCH
    assert image.digest in moved.error.message
    assert moved.bytes == image.total_bytes  # what the tag points to was still warmed
    assert pinned.warmed


def test_a_thousand_images_in_one_batch(fake_registry: FakeRegistry, tmp_path: Path) -> None:
    # Given a thousand small single-platform images in a hundred repositories
    seeder = ImageSeeder(fake_registry)
    images = [
        seeder.push_image(f"lib/app{n % 100}", f"v{n}", ["linux/amd64"], layer_sizes=(64,))
        for n in range(1000)
    ]

    # When they are warmed in one batch
    code, report, stdout, _ = warm_in_process(
        fake_registry, [(image.reference, ["linux/amd64"]) for image in images], tmp_path
    )

    # Then every one is warmed and reported in batch order
    assert code == 0
    assert [result.digest for result in report.images] == [image.digest for image in images]
    assert stdout.startswith("1000 of 1000 image(s) warmed")


def test_memory_stays_flat_for_a_large_layer(fake_registry: FakeRegistry, tmp_path: Path) -> None:
    # Given an image with a 160 MB layer
    image = seed(
        fake_registry, platforms=("linux/amd64",), layer_sizes=(160_000_000,), compress=False
    )
    batch = write_batch(tmp_path / "batch.json", [(image.reference, ["linux/amd64"])])

    # When the program warms it
    run = run_warm_process(fake_registry.host, batch, tmp_path / "report.json", insecure_http=True)

    # Then its peak memory is a small fraction of the layer
    assert run.exit_code == 0, run.stderr
    assert run.report.images[0].bytes == image.total_bytes
    assert run.peak_rss_kb < 60_000


def test_ecr_auth_falls_back_to_the_aws_cli_without_boto3(tmp_path: Path) -> None:
    # Given a registry expecting ECR's user "AWS", and an `aws` CLI on PATH that prints a token
    registry = FakeRegistry(auth="basic", username="AWS", password="ecr-token").start()
    try:
        image = seed(registry)
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        token = base64.b64encode(b"AWS:ecr-token").decode()
        answer = {"authorizationData": [{"authorizationToken": token}]}
        fake_aws = bin_dir / "aws"
        fake_aws.write_text(
            "#!/bin/sh\n"
            f'[ "$*" = "ecr get-authorization-token --region eu-west-1 --output json" ] || exit 9\n'
            f"echo '{json.dumps(answer)}'\n"
        )
        fake_aws.chmod(fake_aws.stat().st_mode | stat.S_IXUSR)
        batch = write_batch(tmp_path / "batch.json", [(image.reference, BOTH)])

        # When the program runs without site-packages (so no boto3), with --ecr-auth
        run = run_warm_process(
            registry.host,
            batch,
            tmp_path / "report.json",
            insecure_http=True,
            python_flags=["-S"],
            environment={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
            extra_arguments=["--ecr-auth", "eu-west-1"],
        )
    finally:
        registry.stop()

    # Then it got the token from the CLI and warmed the image
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.report.images[0].warmed


def test_ecr_auth_uses_boto3_when_it_is_there() -> None:
    from moto import mock_aws

    from cache_pilot.warm.credentials import ecr_credentials

    with mock_aws():
        credentials = ecr_credentials("eu-west-1")

    assert credentials.username == "AWS"
    assert credentials.password


@pytest.mark.parametrize("interpreter", ["python3.11", "current"])
def test_the_program_runs_with_nothing_but_the_standard_library(
    fake_registry: FakeRegistry, tmp_path: Path, interpreter: str
) -> None:
    # Given the stock image's python3 (3.11 when this machine has it) with no site-packages
    python = shutil.which(interpreter) if interpreter != "current" else None
    if interpreter != "current" and python is None:
        pytest.skip(f"{interpreter} is not installed here")
    image = seed(fake_registry)
    batch = write_batch(tmp_path / "batch.json", [(image.reference, ["all"])])

    # When it runs the program from the layer's sources
    run = run_warm_process(
        fake_registry.host,
        batch,
        tmp_path / "report.json",
        insecure_http=True,
        python=python,
        python_flags=["-S"],
    )

    # Then the image is warmed
    assert run.exit_code == 0, run.stderr
    assert run.report.images[0].bytes == image.total_bytes


def test_a_request_list_keeps_invalid_entries_as_failures(
    fake_registry: FakeRegistry, tmp_path: Path
) -> None:
    image = seed(fake_registry)
    batch = tmp_path / "batch.json"
    batch.write_text(
        json.dumps(
            {
                "images": [
                    {"reference": image.reference, "platforms": BOTH},
                    {"reference": "lib/app", "platforms": BOTH},
                    {"reference": image.reference, "platforms": ["linux"]},
                    "lib/app:1",
                ]
            }
        )
    )
    report_path = tmp_path / "report.json"
    argv = ["--registry", fake_registry.host, "--batch", str(batch), "--report", str(report_path)]
    code = main([*argv, "--insecure-http"], stdout=io.StringIO(), stderr=io.StringIO())

    report = load_report(report_path)
    assert code == 1
    assert [image.error.kind if image.error else None for image in report.images] == [
        None,
        ErrorKind.INVALID_REQUEST,
        ErrorKind.INVALID_REQUEST,
        ErrorKind.INVALID_REQUEST,
    ]


def test_an_unreadable_batch_is_reported_and_exits_2(tmp_path: Path) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text("{not json")
    report_path = tmp_path / "report.json"
    argv = ["--registry", "127.0.0.1:1", "--batch", str(batch), "--report", str(report_path)]

    code = main(argv, stdout=io.StringIO(), stderr=io.StringIO())

    assert code == 2
    report = load_report(report_path)
    assert report.error is not None
    assert "not JSON" in report.error.message


def test_an_unreachable_registry_stops_the_batch(tmp_path: Path) -> None:
    # Given nothing listening where the registry should be
    session = RegistrySession(
        f"127.0.0.1:{free_port()}", secure=False, retry=RetryPolicy(attempts=2, first_delay=0.01)
    )

    # When access is checked, Then it gives up after the bounded attempts with the reason
    with pytest.raises(TransportFailure, match="gave up after 2 attempts") as failure:
        session.check_access()
    assert failure.value.kind == ErrorKind.NETWORK_ERROR
