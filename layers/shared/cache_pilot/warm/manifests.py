"""Manifest formats: OCI image index and Docker manifest list, OCI and Docker v2 manifests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from cache_pilot.warm.batch import PlatformSpec

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
# Sent on every manifest request: a registry that is not told it may answer with an index
# converts or refuses (and ECR then caches what it served, not the multi-platform image).
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the distribution registry's own limit

# Layers that live outside the registry (Windows base layers) and are never pulled from it.
_NON_DISTRIBUTABLE_PREFIXES = (
    "application/vnd.docker.image.rootfs.foreign.",
    "application/vnd.oci.image.layer.nondistributable.",
)

HASH_ALGORITHMS = {"sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}


class ManifestError(ValueError):
    """A manifest that cannot be read as one of the supported formats."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None

    @property
    def platform(self) -> str:
        parts = (self.os or "unknown", self.architecture or "unknown", self.variant)
        return "/".join(part for part in parts if part)

    @property
    def distributable(self) -> bool:
        return not self.media_type.startswith(_NON_DISTRIBUTABLE_PREFIXES)


@dataclass(frozen=True)
class ImageManifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Every blob the registry must serve for this image: config first, then layers."""
        return (self.config, *(layer for layer in self.layers if layer.distributable))


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


def new_hasher(digest: str) -> Hasher:
    algorithm, _, _ = digest.partition(":")
    if algorithm not in HASH_ALGORITHMS:
        raise ManifestError(f"unsupported digest algorithm in {digest!r}")
    return hashlib.new(HASH_ALGORITHMS[algorithm])


def digest_of(content: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(HASH_ALGORITHMS[algorithm], content).hexdigest()}"


def media_type_of(content_type: str | None, body: bytes) -> str:
    """The manifest's media type: the Content-Type header, else the document's own field."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in INDEX_MEDIA_TYPES | IMAGE_MEDIA_TYPES:
        return declared
    document = _load(body)
    field_type = document.get("mediaType")
    if isinstance(field_type, str) and field_type:
        return field_type
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document and "layers" in document:
        return OCI_MANIFEST
    return declared or "unknown"


def parse_index(body: bytes) -> list[Descriptor]:
    document = _load(body)
    entries = document.get("manifests")
    if not isinstance(entries, list):
        raise ManifestError("the index has no 'manifests' list")
    return [_descriptor(entry, with_platform=True) for entry in entries]


def parse_image_manifest(body: bytes) -> ImageManifest:
    document = _load(body)
    if document.get("schemaVersion") != 2:
        raise ManifestError(f"schemaVersion {document.get('schemaVersion')!r} is not supported")
    config, layers = document.get("config"), document.get("layers")
    if not isinstance(layers, list):
        raise ManifestError("the manifest has no 'layers' list")
    return ImageManifest(
        config=_descriptor(config, with_platform=False),
        layers=tuple(_descriptor(layer, with_platform=False) for layer in layers),
    )


def select_platforms(
    entries: list[Descriptor], wanted: tuple[PlatformSpec, ...] | None
) -> tuple[list[Descriptor], list[PlatformSpec]]:
    """The index entries to warm, and the wanted platforms that no entry provides.

    ``wanted`` None means every entry, attestation manifests included, so that the cached index
    has nothing missing behind it.
    """
    if wanted is None:
        return list(entries), []
    selected: list[Descriptor] = []
    missing: list[PlatformSpec] = []
    for spec in wanted:
        matches = [
            entry
            for entry in entries
            if entry.os is not None
            and entry.architecture is not None
            and spec.matches(entry.os, entry.architecture, entry.variant)
        ]
        if not matches:
            missing.append(spec)
        selected.extend(entry for entry in matches if entry not in selected)
    return selected, missing


def platform_of_config(content: bytes) -> tuple[str, str, str | None] | None:
    """(os, architecture, variant) from an image config, or None when it does not say."""
    try:
        document = json.loads(content)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    os, architecture = document.get("os"), document.get("architecture")
    if not isinstance(os, str) or not isinstance(architecture, str):
        return None
    variant = document.get("variant")
    return os, architecture, variant if isinstance(variant, str) else None


def _load(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise ManifestError(f"the manifest is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ManifestError("the manifest is not a JSON object")
    return document


def _descriptor(value: Any, *, with_platform: bool) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestError(f"a descriptor is not an object: {value!r}")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(digest, str) or ":" not in digest:
        raise ManifestError(f"a descriptor has no valid digest: {value!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"descriptor {digest} has no valid size")
    platform = value.get("platform") if with_platform else None
    if not isinstance(platform, dict):
        platform = {}
    return Descriptor(
        media_type=media_type if isinstance(media_type, str) else "",
        digest=digest,
        size=size,
        os=_optional_text(platform.get("os")),
        architecture=_optional_text(platform.get("architecture")),
        variant=_optional_text(platform.get("variant")),
    )


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
