"""Fast checks of the warm-up program's parts: references, platforms, manifests, challenges,
retry delays, ECR tokens and the report format. No registry needed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from cache_pilot.warm.batch import (
    BatchError,
    ImageReference,
    InvalidRequest,
    PlatformSpec,
    load_batch,
    parse_request,
)
from cache_pilot.warm.credentials import CredentialsUnavailable, credentials_from_ecr_token
from cache_pilot.warm.manifests import (
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ManifestError,
    media_type_of,
    parse_image_manifest,
    parse_index,
    select_platforms,
)
from cache_pilot.warm.report import (
    ErrorKind,
    ImageResult,
    PlatformResult,
    WarmError,
    WarmReport,
    human_size,
    load_report,
    summary_text,
)
from cache_pilot.warm.transport import (
    Credentials,
    RetryPolicy,
    parse_challenge,
    parse_retry_after,
    registry_origin,
)

DIGEST = "sha256:" + "a" * 64


# --- references and platforms --------------------------------------------------------------


def test_a_reference_is_a_repository_path_and_a_tag() -> None:
    reference = ImageReference.parse("docker-hub/library/nginx:1.27")
    assert (reference.repository, reference.tag, reference.pinned_digest) == (
        "docker-hub/library/nginx",
        "1.27",
        None,
    )


def test_a_reference_may_pin_a_digest_after_its_tag() -> None:
    reference = ImageReference.parse(f"k8s/pause:3.10@{DIGEST}")
    assert (reference.tag, reference.pinned_digest) == ("3.10", DIGEST)
    assert str(reference) == f"k8s/pause:3.10@{DIGEST}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("docker-hub/library/nginx", "has no tag"),
        (f"docker-hub/library/nginx@{DIGEST}", "has no tag"),
        ("localhost:5000/nginx", "has no tag"),
        ("Docker-Hub/nginx:1", "not a valid repository"),
        ("nginx:-bad", "not a valid tag"),
        ("nginx:1@sha256:short", "is not a sha256"),
    ],
)
def test_unusable_references_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        ImageReference.parse(text)


def test_a_platform_without_variant_matches_every_variant() -> None:
    spec = PlatformSpec.parse("linux/arm64")
    assert spec.matches("linux", "arm64", "v8")
    assert spec.matches("linux", "arm64", None)
    assert not spec.matches("linux", "amd64", None)
    assert not PlatformSpec.parse("linux/arm/v7").matches("linux", "arm", "v6")


def test_a_batch_entry_with_all_platforms_means_every_platform() -> None:
    request = parse_request({"reference": "a/b:1", "platforms": ["all"]})
    assert request.problem is None
    assert request.platforms is None


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"reference": "a/b:1"}, "'platforms' must be a non-empty list"),
        ({"reference": "a/b:1", "platforms": []}, "'platforms' must be a non-empty list"),
        ({"reference": "a/b:1", "platforms": ["all", "linux/amd64"]}, "cannot be combined"),
        ({"reference": "a/b:1", "platforms": ["linux"]}, "is not 'os/architecture"),
        ({"platforms": ["all"]}, "no 'reference'"),
        ("a/b:1", "must be an object"),
    ],
)
def test_an_unusable_batch_entry_becomes_a_request_with_a_problem(
    entry: object, reason: str
) -> None:
    request = parse_request(entry)
    assert request.reference is None
    assert request.problem is not None
    assert reason in request.problem


@pytest.mark.parametrize(
    ("content", "reason"), [("{", "is not JSON"), ('{"images": {}}', "no 'images' list")]
)
def test_an_unusable_batch_file_is_a_batch_error(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "batch.json"
    path.write_text(content)
    with pytest.raises(BatchError, match=reason):
        load_batch(path)


# --- manifests -------------------------------------------------------------------------------


def index_entry(platform: str | None, digest_letter: str) -> dict[str, object]:
    entry: dict[str, object] = {
        "mediaType": OCI_MANIFEST,
        "digest": "sha256:" + digest_letter * 64,
        "size": 500,
    }
    if platform:
        parts = platform.split("/")
        entry["platform"] = {"os": parts[0], "architecture": parts[1]}
        if len(parts) == 3:
            entry["platform"]["variant"] = parts[2]  # type: ignore[index]
    return entry


INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            index_entry("linux/amd64", "1"),
            index_entry("linux/arm64/v8", "2"),
            index_entry("unknown/unknown", "3"),  # an attestation manifest
        ],
    }
).encode()


def test_selecting_platforms_from_an_index() -> None:
    entries = parse_index(INDEX)
    selected, missing = select_platforms(
        entries, (PlatformSpec.parse("linux/arm64"), PlatformSpec.parse("linux/s390x"))
    )
    assert [entry.platform for entry in selected] == ["linux/arm64/v8"]
    assert [str(spec) for spec in missing] == ["linux/s390x"]


def test_all_platforms_selects_every_entry_attestations_included() -> None:
    selected, missing = select_platforms(parse_index(INDEX), None)
    assert len(selected) == 3
    assert missing == []


def test_an_image_manifest_lists_config_then_distributable_layers() -> None:
    manifest = parse_image_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "config": {"mediaType": "c", "digest": "sha256:" + "c" * 64, "size": 10},
                "layers": [
                    {"mediaType": "l", "digest": "sha256:" + "1" * 64, "size": 20},
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                        "digest": "sha256:" + "2" * 64,
                        "size": 30,
                    },
                ],
            }
        ).encode()
    )
    assert [blob.size for blob in manifest.blobs] == [10, 20]


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"not json",
        b'{"schemaVersion": 1, "fsLayers": []}',
        b'{"schemaVersion": 2, "config": {"digest": "x", "size": 1}, "layers": []}',
    ],
)
def test_unreadable_manifests_raise_manifest_error(body: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_image_manifest(body)


def test_the_media_type_comes_from_the_header_or_else_the_document() -> None:
    assert media_type_of(f"{DOCKER_MANIFEST_LIST}; charset=utf-8", b"{}") == DOCKER_MANIFEST_LIST
    assert media_type_of("application/json", INDEX) == OCI_INDEX
    assert media_type_of(None, b'{"manifests": []}') == OCI_INDEX
    assert media_type_of(None, b'{"config": {}, "layers": []}') == OCI_MANIFEST


def test_a_descriptor_names_its_platform() -> None:
    assert Descriptor("t", DIGEST, 1, "linux", "arm", "v7").platform == "linux/arm/v7"
    assert Descriptor("t", DIGEST, 1).platform == "unknown/unknown"


# --- HTTP details ----------------------------------------------------------------------------


def test_a_bearer_challenge_is_parsed_with_quoted_commas() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push",error="insufficient_scope"'
    )
    assert challenge is not None
    assert challenge.scheme == "bearer"
    assert challenge.parameters == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
        "error": "insufficient_scope",
    }


def test_ecrs_basic_challenge_is_parsed() -> None:
    challenge = parse_challenge(
        'Basic realm="https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",'
        'service="ecr.amazonaws.com"'
    )
    assert challenge is not None
    assert challenge.scheme == "basic"
    assert challenge.parameters["service"] == "ecr.amazonaws.com"


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retry_delays_grow_and_stay_bounded() -> None:
    policy = RetryPolicy(attempts=6, first_delay=0.5, max_delay=8.0)
    assert 0.25 <= policy.delay(1, None) <= 0.5
    assert 2.0 <= policy.delay(4, None) <= 4.0
    assert policy.delay(10, None) <= 8.0
    assert policy.delay(1, 3.0) == 3.0  # Retry-After wins
    assert policy.delay(1, 3600.0) == 8.0  # but not beyond the bound


def test_the_registry_is_a_host_and_port_only() -> None:
    origin = registry_origin("127.0.0.1:5000", secure=True)
    assert (origin.scheme, origin.host, origin.port) == ("https", "127.0.0.1", 5000)
    assert registry_origin("registry.example", secure=False).port == 80
    with pytest.raises(ValueError, match="HOST"):
        registry_origin("registry.example/v2", secure=True)


def test_credentials_keep_the_password_out_of_their_repr() -> None:
    assert "hunter2" not in repr(Credentials("AWS", "hunter2"))


def test_an_ecr_token_is_user_and_password_in_base64() -> None:
    token = base64.b64encode(b"AWS:eyJwYXlsb2FkIjoi").decode()
    assert credentials_from_ecr_token(token) == Credentials("AWS", "eyJwYXlsb2FkIjoi")
    with pytest.raises(CredentialsUnavailable):
        credentials_from_ecr_token("not base64!")


# --- the report ------------------------------------------------------------------------------


def sample_report() -> WarmReport:
    return WarmReport(
        registry="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        started_at="2026-11-29T10:00:00Z",
        finished_at="2026-11-29T10:01:00Z",
        seconds=60.0,
        images=[
            ImageResult(
                reference="docker-hub/library/nginx:1.27",
                repository="docker-hub/library/nginx",
                tag="1.27",
                digest=DIGEST,
                media_type=OCI_INDEX,
                platforms=[PlatformResult("linux/amd64", DIGEST, bytes=2_500_000, blobs=7)],
                bytes=2_500_000,
                seconds=12.5,
            ),
            ImageResult(
                reference="k8s/pause:9",
                repository="k8s/pause",
                tag="9",
                error=WarmError(ErrorKind.NOT_FOUND, "tag '9' not found"),
            ),
        ],
    )


def test_the_report_round_trips_through_its_json_file(tmp_path: Path) -> None:
    report = sample_report()
    path = tmp_path / "out" / "report.json"
    report.write(path)

    document = json.loads(path.read_text())
    assert document["summary"] == {"images": 2, "warmed": 1, "failed": 1, "bytes": 2_500_000}
    assert document["images"][0]["warmed"] is True
    assert document["images"][1]["error"] == {"kind": "not_found", "message": "tag '9' not found"}
    assert load_report(path) == report
    assert not report.all_warmed


def test_reading_a_report_of_another_format_fails() -> None:
    with pytest.raises(ValueError, match="format"):
        WarmReport.from_json({"format": "something-else/9"})


def test_the_summary_gives_totals_then_each_failure() -> None:
    text = summary_text(sample_report())
    assert text.splitlines() == [
        "1 of 2 image(s) warmed through 123456789012.dkr.ecr.eu-west-1.amazonaws.com: "
        "2.5 MB in 60.0 s",
        "  k8s/pause:9: not_found: tag '9' not found",
    ]


def test_sizes_read_as_a_person_would_say_them() -> None:
    assert [human_size(n) for n in (999, 1_500, 2_500_000, 3_200_000_000)] == [
        "999 B",
        "1.5 KB",
        "2.5 MB",
        "3.2 GB",
    ]
