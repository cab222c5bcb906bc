"""The warm-up program against real registries on loopback: Debian's docker-registry as the
upstream, and as a pull-through proxy of it (TLS, basic auth) standing in for the cache."""

from __future__ import annotations

import pytest

from cache_pilot.warm.report import ErrorKind
from tests.warm.conftest import PASSWORD, LoopbackRegistries
from tests.warm.registry_harness import (
    RegistryError,
    SeededImage,
    corrupt_blob_in_storage,
    wait_until_stored,
)

pytestmark = pytest.mark.registry

BOTH = ["linux/amd64", "linux/arm64"]


def stored_digests(image: SeededImage) -> list[str]:
    """Everything the proxy must hold for the image: blobs, platform manifests, the index."""
    return [*image.blobs, *image.platform_digests.values(), image.digest]


def test_warmed_images_pull_completely_from_the_cache_once_the_upstream_is_gone(
    registries: LoopbackRegistries,
) -> None:
    # Given an upstream with an OCI index, a Docker manifest list, a single-platform image
    # and an image nobody asks for
    seeder = registries.seeder
    oci = seeder.push_image("docker-hub/library/app", "1.0", BOTH, layer_sizes=(300_000, 20_000))
    docker = seeder.push_image("quay/team/tool", "v2", BOTH, docker=True)
    single = seeder.push_image("k8s/pause", "3.10", ["linux/amd64"], single=True)
    unwarmed = seeder.push_image("docker-hub/library/other", "1", BOTH)
    warmed = [oci, docker, single]

    # When the batch is warmed through the cache, and the NAT route goes (upstream stopped)
    run = registries.warm(
        [
            (oci.reference, BOTH),
            (f"{docker.reference}@{docker.digest}", BOTH),
            (single.reference, ["linux/amd64"]),
        ]
    )
    assert run.exit_code == 0, run.stdout + run.stderr
    wait_until_stored(
        registries.proxy, [d for image in warmed for d in stored_digests(image)], timeout=10
    )
    registries.upstream.stop()

    # Then every warmed image, every platform, every blob still pulls from the cache alone
    cache = registries.proxy_client()
    for image in warmed:
        pulled = cache.pull_completely(image.repository, image.tag)
        assert pulled.digest == image.digest
        assert sorted(set(pulled.blobs)) == sorted(image.blobs)
        assert pulled.bytes == image.total_bytes
        if image is not single:
            assert sorted(pulled.manifests) == sorted(image.platform_digests.values())
    # and the report says what was cached, platform by platform
    for image, result in zip(warmed, run.report.images, strict=True):
        assert result.warmed
        assert result.digest == image.digest
        assert result.bytes == image.total_bytes
        assert {p.platform: p.digest for p in result.platforms} == image.platform_digests
    # while the image that was not warmed cannot be pulled
    with pytest.raises(RegistryError):
        cache.pull_completely(unwarmed.repository, unwarmed.tag)


def test_a_corrupted_blob_upstream_is_reported_as_a_digest_mismatch(
    registries: LoopbackRegistries,
) -> None:
    # Given an image whose arm64 layer was corrupted in the upstream's storage
    seeder = registries.seeder
    broken = seeder.push_image("docker-hub/library/broken", "1", BOTH, layer_sizes=(50_000,))
    healthy = seeder.push_image("docker-hub/library/healthy", "1", BOTH)
    [layer] = broken.platform_layers["linux/arm64"]
    corrupt_blob_in_storage(registries.upstream, layer)

    # When both are warmed
    run = registries.warm([(broken.reference, BOTH), (healthy.reference, BOTH)])

    # Then the broken one fails with a digest mismatch naming the blob, the other is warmed
    assert run.exit_code == 1
    result = run.image(broken.reference)
    assert result.error is not None
    assert result.error.kind == ErrorKind.DIGEST_MISMATCH
    assert layer in result.error.message
    platforms = {p.platform: p for p in result.platforms}
    assert platforms["linux/amd64"].error is None
    assert platforms["linux/arm64"].error is not None
    assert run.image(healthy.reference).warmed
    assert f"{broken.reference}: digest_mismatch" in run.stdout


def test_a_missing_tag_is_reported_as_not_found(registries: LoopbackRegistries) -> None:
    # Given a repository that has tag 1 but not tag 2
    image = registries.seeder.push_image("docker-hub/library/app", "1", BOTH)

    # When tag 2 is warmed
    run = registries.warm([(f"{image.repository}:2", BOTH), (image.reference, BOTH)])

    # Then it is reported as not found, and the batch goes on
    assert run.exit_code == 1
    missing = run.image(f"{image.repository}:2")
    assert missing.error is not None
    assert missing.error.kind == ErrorKind.NOT_FOUND
    assert "tag '2' not found" in missing.error.message
    assert run.image(image.reference).warmed


def test_a_platform_absent_from_the_index_is_reported_as_such(
    registries: LoopbackRegistries,
) -> None:
    # Given an index with amd64 and arm64 only
    image = registries.seeder.push_image("docker-hub/library/app", "1", BOTH)

    # When amd64 and s390x are asked for
    run = registries.warm([(image.reference, ["linux/amd64", "linux/s390x"])])

    # Then s390x is reported missing (naming what the index offers), amd64 is still warmed
    assert run.exit_code == 1
    result = run.image(image.reference)
    assert result.error is not None
    assert result.error.kind == ErrorKind.PLATFORM_MISSING
    assert "linux/s390x" in result.error.message
    assert "linux/amd64, linux/arm64" in result.error.message
    platforms = {p.platform: p for p in result.platforms}
    assert platforms["linux/amd64"].error is None
    assert platforms["linux/amd64"].digest == image.platform_digests["linux/amd64"]
    assert platforms["linux/amd64"].bytes > 0
    assert platforms["linux/s390x"].digest is None


def test_all_platforms_warms_every_entry_of_the_index(registries: LoopbackRegistries) -> None:
    # Given an index of three platforms, one with a variant
    platforms = ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
    image = registries.seeder.push_image("docker-hub/library/app", "1", platforms)

    # When it is warmed with "all"
    run = registries.warm([(image.reference, ["all"])])

    # Then every platform is warmed, and each one's blobs are in the cache
    assert run.exit_code == 0, run.stdout + run.stderr
    result = run.image(image.reference)
    assert {p.platform: p.digest for p in result.platforms} == image.platform_digests
    assert result.bytes == image.total_bytes
    wait_until_stored(registries.proxy, stored_digests(image), timeout=10)


def test_a_wrong_password_fails_fast_with_a_clear_message(registries: LoopbackRegistries) -> None:
    # Given a batch of images in the upstream
    images = [registries.seeder.push_image(f"lib/app{n}", "1", BOTH) for n in range(3)]

    # When the cache is given a wrong password
    run = registries.warm([(image.reference, BOTH) for image in images], password="not-it")

    # Then the program stops at once, says why, and no image was even asked for
    assert run.exit_code == 3
    assert run.seconds < 5
    assert "rejected the credentials of user 'warm'" in run.stderr
    report = run.report
    assert report.error is not None
    assert report.error.kind == ErrorKind.UNAUTHORIZED
    assert [image.error.kind for image in report.images if image.error] == [
        ErrorKind.NOT_ATTEMPTED
    ] * 3
    assert '"GET /v2/lib/' not in registries.proxy.log_path.read_text()
    assert PASSWORD not in run.stdout + run.stderr


def test_an_untrusted_certificate_stops_the_batch_and_points_at_ca_file(
    registries: LoopbackRegistries,
) -> None:
    image = registries.seeder.push_image("lib/app", "1", BOTH)

    run = registries.warm([(image.reference, BOTH)], trust_test_ca=False)

    assert run.exit_code == 3
    assert "TLS verification" in run.stderr
    assert "--ca-file" in run.stderr
    assert run.seconds < 5  # not retried: a certificate does not get better by waiting
