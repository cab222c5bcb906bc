"""An emulated upstream catalog: the public registries that pull-through cache rules point at.

Each image is generated from its registry, repository, tag and generation, the same bytes on
every run: small gzipped tar layers, an image config naming its platform and the layers' diff
ids, one image manifest per platform and an OCI image index or a Docker manifest list over them,
with real sha256 digests, sizes and media types. Images pushed with BuildKit also carry an
attestation manifest per platform (platform unknown/unknown), as Docker Hub's do.

`move_tag` gives a tag new content (its next generation; the base layer stays, as it does when
an image is rebuilt on the same base), and `fail` makes the upstream answer an error for one
image until `recover`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from functools import cached_property
from typing import Any

from cache_pilot.warm.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v0.2"

# Every generated file and config carries this time, so that content depends on names alone.
_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z
_CREATED = "2026-01-01T00:00:00Z"
_BASE_DATA_BYTES = 1536
_PROGRAM_BYTES = 2048


class IndexFormat(StrEnum):
    OCI = "oci"  # an OCI image index over OCI manifests
    DOCKER = "docker"  # a Docker manifest list over Docker v2 manifests


@dataclass(frozen=True)
class _MediaTypes:
    index: str
    manifest: str
    config: str
    layer: str


_MEDIA_TYPES = {
    IndexFormat.OCI: _MediaTypes(OCI_INDEX, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
    IndexFormat.DOCKER: _MediaTypes(
        DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER
    ),
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not 'os/architecture[/variant]'")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def fields(self) -> dict[str, str]:
        """The platform as an index entry and an image config spell it."""
        fields = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            fields["variant"] = self.variant
        return fields

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


ATTESTATION_PLATFORM = Platform("unknown", "unknown")


@dataclass(frozen=True)
class Content:
    """A blob or a manifest: its bytes and media type; the digest is the sha256 of the bytes."""

    media_type: str
    data: bytes

    @cached_property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class PlatformManifest:
    """One entry of an index: an image manifest with the blobs it names (config first)."""

    platform: Platform
    manifest: Content
    blobs: tuple[Content, ...]

    @property
    def is_attestation(self) -> bool:
        return self.platform == ATTESTATION_PLATFORM


@dataclass(frozen=True)
class UpstreamImage:
    registry_url: str
    repository: str
    tag: str
    generation: int
    index: Content  # the OCI image index or Docker manifest list the tag points at
    entries: tuple[PlatformManifest, ...]

    @property
    def digest(self) -> str:
        return self.index.digest

    @property
    def platforms(self) -> tuple[str, ...]:
        """The image's platforms, attestation manifests left out."""
        return tuple(str(entry.platform) for entry in self.entries if not entry.is_attestation)

    @property
    def manifests(self) -> tuple[Content, ...]:
        """The index first, then every manifest it lists."""
        return (self.index, *(entry.manifest for entry in self.entries))

    @property
    def blobs(self) -> tuple[Content, ...]:
        unique = {blob.digest: blob for entry in self.entries for blob in entry.blobs}
        return tuple(unique.values())

    def platform_digest(self, platform: str) -> str:
        for entry in self.entries:
            if str(entry.platform) == platform:
                return entry.manifest.digest
        raise KeyError(f"{self.repository}:{self.tag} has no platform {platform}")

    def manifest(self, digest: str) -> Content | None:
        return next((content for content in self.manifests if content.digest == digest), None)


@dataclass(frozen=True)
class ImageSpec:
    repository: str
    tag: str
    platforms: tuple[str, ...]
    index_format: IndexFormat = IndexFormat.OCI
    attestations: bool = False  # one attestation manifest per platform, as BuildKit pushes


class UpstreamFailure(Enum):
    """What an upstream answers for an image made to fail: (HTTP status, error code, message)."""

    NOT_FOUND = (404, "MANIFEST_UNKNOWN", "manifest unknown")
    DENIED = (403, "DENIED", "requested access to the resource is denied")
    # 429 and 503 are retried by the warm-up program (six attempts with backoff, about 10 s).
    TOO_MANY_REQUESTS = (429, "TOOMANYREQUESTS", "You have reached your pull rate limit.")
    UNAVAILABLE = (503, "UNAVAILABLE", "service unavailable")

    @property
    def status(self) -> int:
        status: int = self.value[0]
        return status

    @property
    def code(self) -> str:
        code: str = self.value[1]
        return code

    @property
    def message(self) -> str:
        message: str = self.value[2]
        return message


class UpstreamError(Exception):
    """The upstream answered an error for a request (an unknown image or an injected failure)."""

    def __init__(self, failure: UpstreamFailure, detail: str) -> None:
        super().__init__(f"{failure.status} {failure.code}: {detail}")
        self.failure = failure
        self.detail = detail


DEFAULT_IMAGES: Mapping[str, tuple[ImageSpec, ...]] = {
    "public.ecr.aws": (
        ImageSpec(
            "amazonlinux/amazonlinux",
            "latest",
            ("linux/amd64", "linux/arm64/v8"),
            IndexFormat.DOCKER,
        ),
    ),
    "registry-1.docker.io": (
        ImageSpec(
            "library/nginx",
            "1.27",
            ("linux/amd64", "linux/arm64/v8", "linux/arm/v7"),
            attestations=True,
        ),
        ImageSpec("library/redis", "7.4", ("linux/amd64", "linux/arm64/v8"), attestations=True),
    ),
    "registry.k8s.io": (
        ImageSpec(
            "pause",
            "3.10",
            ("linux/amd64", "linux/arm64", "linux/ppc64le", "linux/s390x"),
            IndexFormat.DOCKER,
        ),
        ImageSpec("coredns/coredns", "v1.11.3", ("linux/amd64", "linux/arm64"), IndexFormat.DOCKER),
        ImageSpec("kube-proxy", "v1.31.2", ("linux/amd64", "linux/arm64"), IndexFormat.DOCKER),
    ),
    "quay.io": (ImageSpec("prometheus/node-exporter", "v1.8.2", ("linux/amd64", "linux/arm64")),),
    "ghcr.io": (
        ImageSpec("external-secrets/external-secrets", "v0.10.4", ("linux/amd64", "linux/arm64")),
    ),
}

_Key = tuple[str, str, str]  # registry URL, repository, tag


def normalize_registry_url(registry_url: str) -> str:
    """A rule's upstreamRegistryUrl as the catalog keys it: no scheme, no trailing '/'."""
    host = registry_url.strip().lower()
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    return host.rstrip("/")


class UpstreamCatalog:
    """The images each upstream registry holds. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[_Key, ImageSpec] = {}
        self._current: dict[_Key, UpstreamImage] = {}
        self._by_digest: dict[tuple[str, str, str], UpstreamImage] = {}
        self._blobs: dict[str, Content] = {}
        self._failures: dict[_Key, UpstreamFailure] = {}

    @classmethod
    def default(cls) -> UpstreamCatalog:
        catalog = cls()
        for registry_url, specs in DEFAULT_IMAGES.items():
            for spec in specs:
                catalog.add(registry_url, spec)
        return catalog

    def add(self, registry_url: str, spec: ImageSpec) -> UpstreamImage:
        key = (normalize_registry_url(registry_url), spec.repository, spec.tag)
        with self._lock:
            if key in self._specs:
                raise ValueError(f"{_describe(key)} is in the catalog already")
            self._specs[key] = spec
            return self._publish(key, generation=1)

    def lookup(self, registry_url: str, repository: str, reference: str) -> UpstreamImage:
        """The image a tag points at now, or the image holding a manifest digest.

        Raises UpstreamError for an image the upstream does not have or is made to fail.
        """
        registry_url = normalize_registry_url(registry_url)
        with self._lock:
            if reference.startswith("sha256:"):
                image = self._by_digest.get((registry_url, repository, reference))
            else:
                image = self._current.get((registry_url, repository, reference))
            if image is None:
                raise UpstreamError(
                    UpstreamFailure.NOT_FOUND,
                    f"{registry_url} has no manifest {repository}:{reference}",
                )
            failure = self._failures.get((registry_url, repository, image.tag))
        if failure is not None:
            raise UpstreamError(
                failure, f"{failure.message} ({registry_url}/{repository}:{image.tag})"
            )
        return image

    def image(self, registry_url: str, repository: str, tag: str) -> UpstreamImage:
        """What the tag points at now, whatever failure is injected (for expectations)."""
        key = self._known_key(registry_url, repository, tag)
        with self._lock:
            return self._current[key]

    def images(self) -> tuple[UpstreamImage, ...]:
        with self._lock:
            return tuple(self._current.values())

    def move_tag(self, registry_url: str, repository: str, tag: str) -> UpstreamImage:
        """Points the tag at new content: new layers, config, manifests and index digests."""
        key = self._known_key(registry_url, repository, tag)
        with self._lock:
            return self._publish(key, generation=self._current[key].generation + 1)

    def fail(
        self,
        registry_url: str,
        repository: str,
        tag: str,
        failure: UpstreamFailure = UpstreamFailure.NOT_FOUND,
    ) -> None:
        """From now on the upstream answers `failure` for this image, until `recover`."""
        key = self._known_key(registry_url, repository, tag)
        with self._lock:
            self._failures[key] = failure

    def recover(self, registry_url: str, repository: str, tag: str) -> None:
        key = self._known_key(registry_url, repository, tag)
        with self._lock:
            self._failures.pop(key, None)

    def blob(self, digest: str) -> Content | None:
        """A config or layer blob of any image the catalog ever published, by digest."""
        with self._lock:
            return self._blobs.get(digest)

    def _known_key(self, registry_url: str, repository: str, tag: str) -> _Key:
        key = (normalize_registry_url(registry_url), repository, tag)
        if key not in self._specs:
            raise KeyError(f"{_describe(key)} is not in the upstream catalog")
        return key

    def _publish(self, key: _Key, generation: int) -> UpstreamImage:
        image = generate_image(key[0], self._specs[key], generation)
        self._current[key] = image
        for manifest in image.manifests:
            self._by_digest[(key[0], key[1], manifest.digest)] = image
        for blob in image.blobs:
            self._blobs[blob.digest] = blob
        return image


def _describe(key: _Key) -> str:
    return f"{key[0]}/{key[1]}:{key[2]}"


# --- generation ----------------------------------------------------------------------------------


def generate_image(registry_url: str, spec: ImageSpec, generation: int) -> UpstreamImage:
    media = _MEDIA_TYPES[spec.index_format]
    entries: list[PlatformManifest] = []
    index_entries: list[dict[str, Any]] = []
    for text in spec.platforms:
        platform = Platform.parse(text)
        image = _platform_image(registry_url, spec, generation, platform, media)
        entries.append(image)
        index_entries.append({**image.manifest.descriptor(), "platform": platform.fields()})
    if spec.attestations:
        for image in list(entries):
            attestation = _attestation(spec, image)
            entries.append(attestation)
            index_entries.append(
                {
                    **attestation.manifest.descriptor(),
                    "annotations": {
                        "vnd.docker.reference.digest": image.manifest.digest,
                        "vnd.docker.reference.type": "attestation-manifest",
                    },
                    "platform": ATTESTATION_PLATFORM.fields(),
                }
            )
    index = Content(
        media.index,
        _json({"schemaVersion": 2, "mediaType": media.index, "manifests": index_entries}),
    )
    return UpstreamImage(registry_url, spec.repository, spec.tag, generation, index, tuple(entries))


def _platform_image(
    registry_url: str, spec: ImageSpec, generation: int, platform: Platform, media: _MediaTypes
) -> PlatformManifest:
    name = spec.repository.rsplit("/", 1)[-1]
    # The base layer depends on the platform only: a moved tag keeps it, as a rebuild does.
    base_random = _random(registry_url, spec.repository, str(platform))
    program_random = _random(
        registry_url, spec.repository, spec.tag, str(generation), str(platform)
    )
    base = _tar(
        [
            ("etc/os-release", f'NAME="{name} base"\nID={name}\nPLATFORM="{platform}"\n'.encode()),
            (f"usr/lib/{name}/data.bin", base_random.randbytes(_BASE_DATA_BYTES)),
        ]
    )
    program = _tar(
        [
            (f"usr/local/bin/{name}", program_random.randbytes(_PROGRAM_BYTES)),
            (
                f"etc/{name}/release",
                f"{registry_url}/{spec.repository}:{spec.tag} generation {generation}\n".encode(),
            ),
        ]
    )
    layers = tuple(Content(media.layer, gzip.compress(tar, mtime=0)) for tar in (base, program))
    config = Content(
        media.config, _json(_config(registry_url, spec, generation, platform, (base, program)))
    )
    manifest = Content(
        media.manifest,
        _json(
            {
                "schemaVersion": 2,
                "mediaType": media.manifest,
                "config": config.descriptor(),
                "layers": [layer.descriptor() for layer in layers],
            }
        ),
    )
    return PlatformManifest(platform, manifest, (config, *layers))


def _config(
    registry_url: str,
    spec: ImageSpec,
    generation: int,
    platform: Platform,
    layer_tars: Iterable[bytes],
) -> dict[str, Any]:
    name = spec.repository.rsplit("/", 1)[-1]
    return {
        **platform.fields(),
        "created": _CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": [f"/usr/local/bin/{name}"],
            "Labels": {
                "org.opencontainers.image.source": f"https://{registry_url}/{spec.repository}",
                "org.opencontainers.image.version": spec.tag,
            },
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest() for tar in layer_tars],
        },
        "history": [
            {"created": _CREATED, "created_by": f"ADD {name}-base-{platform.architecture}.tar /"},
            {
                "created": _CREATED,
                "created_by": f"COPY {name} /usr/local/bin/ # build {generation}",
            },
        ],
    }


def _attestation(spec: ImageSpec, image: PlatformManifest) -> PlatformManifest:
    statement = Content(
        IN_TOTO,
        _json(
            {
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": SLSA_PROVENANCE,
                "subject": [
                    {
                        "name": f"pkg:docker/{spec.repository}@{spec.tag}?platform="
                        + str(image.platform).replace("/", "%2F"),
                        "digest": {"sha256": image.manifest.digest.removeprefix("sha256:")},
                    }
                ],
                "predicate": {
                    "builder": {"id": "https://github.com/docker/buildx"},
                    "buildType": "https://mobyproject.org/buildkit@v1",
                },
            }
        ),
    )
    config = Content(
        OCI_CONFIG,
        _json(
            {
                **ATTESTATION_PLATFORM.fields(),
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [statement.digest]},
            }
        ),
    )
    manifest = Content(
        OCI_MANIFEST,
        _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": [
                    {
                        **statement.descriptor(),
                        "annotations": {"in-toto.io/predicate-type": SLSA_PROVENANCE},
                    }
                ],
            }
        ),
    )
    return PlatformManifest(ATTESTATION_PLATFORM, manifest, (config, statement))


def _random(*parts: str) -> random.Random:
    return random.Random(hashlib.sha256("\0".join(parts).encode()).digest())


def _tar(files: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = _EPOCH
            info.mode = 0o755 if "/bin/" in name else 0o644
            info.uname = info.gname = "root"
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _json(document: Mapping[str, Any]) -> bytes:
    # Compact and ASCII, as registries store them: the bytes are what the digest covers.
    return json.dumps(document, separators=(",", ":")).encode("ascii")
