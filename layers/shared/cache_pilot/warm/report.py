"""The warm-up report: one JSON file per batch, read back by the finish step.

Shape of the file (``format`` names this version)::

    {
      "format": "cache-pilot.warm-report/1",
      "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
      "started_at": "2026-11-29T10:00:00Z", "finished_at": "2026-11-29T10:03:12Z",
      "seconds": 192.4,
      "error": null,                      # a batch-level failure (credentials rejected, ...)
      "summary": {"images": 2, "warmed": 1, "failed": 1, "bytes": 73400320},
      "images": [
        {
          "reference": "docker-hub/library/nginx:1.27",
          "repository": "docker-hub/library/nginx", "tag": "1.27", "pinned_digest": null,
          "warmed": true,
          "digest": "sha256:...",         # what the tag resolved to (the index for multi-platform)
          "media_type": "application/vnd.oci.image.index.v1+json",
          "platforms": [
            {"platform": "linux/amd64", "digest": "sha256:...", "bytes": 36700160, "blobs": 7,
             "error": null}
          ],
          "bytes": 36700160, "seconds": 41.2,
          "error": null                   # or {"kind": "not_found", "message": "..."}
        }
      ]
    }

``digest`` is what ECR's DescribeImages reports as ``imageDigest`` for the tag. ``bytes`` counts
the config and layer blobs of the selected platforms, each blob once per platform. An image is
``warmed`` only when it has no error; ``error.kind`` is one of :class:`ErrorKind`.

Standard library only: this module runs in the CodeBuild job as well as in the finish step.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

REPORT_FORMAT = "cache-pilot.warm-report/1"


class ErrorKind(StrEnum):
    INVALID_REQUEST = "invalid_request"  # the batch entry itself is unusable
    NOT_FOUND = "not_found"  # repository, tag, manifest or blob unknown to the registry
    PLATFORM_MISSING = "platform_missing"  # a requested platform is not in the image
    DIGEST_MISMATCH = "digest_mismatch"  # content does not hash to its digest
    SIZE_MISMATCH = "size_mismatch"  # content is not the size its descriptor says
    PINNED_DIGEST_MISMATCH = "pinned_digest_mismatch"  # the tag moved away from the pin
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNAUTHORIZED = "unauthorized"  # credentials rejected, or access to a repository denied
    REGISTRY_ERROR = "registry_error"  # any other HTTP failure, after retries
    NETWORK_ERROR = "network_error"  # connection failures and timeouts, after retries
    NOT_ATTEMPTED = "not_attempted"  # the batch stopped before this image


@dataclass(frozen=True)
class WarmError:
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class PlatformResult:
    platform: str  # "linux/arm64/v8"; "unknown/unknown" for attestation manifests
    digest: str | None  # the platform's image manifest; None when it was never found
    bytes: int = 0
    blobs: int = 0
    error: WarmError | None = None


@dataclass
class ImageResult:
    reference: str
    repository: str | None = None
    tag: str | None = None
    pinned_digest: str | None = None
    digest: str | None = None
    media_type: str | None = None
    platforms: list[PlatformResult] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    error: WarmError | None = None

    @property
    def warmed(self) -> bool:
        return self.error is None


@dataclass
class WarmReport:
    registry: str
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    error: WarmError | None = None
    images: list[ImageResult] = field(default_factory=list)
    format: str = REPORT_FORMAT

    @property
    def all_warmed(self) -> bool:
        return self.error is None and all(image.warmed for image in self.images)

    @property
    def warmed_count(self) -> int:
        return sum(1 for image in self.images if image.warmed)

    @property
    def total_bytes(self) -> int:
        return sum(image.bytes for image in self.images)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "format": self.format,
            "registry": self.registry,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": round(self.seconds, 3),
            "error": None if self.error is None else asdict(self.error),
            "summary": {
                "images": len(self.images),
                "warmed": self.warmed_count,
                "failed": len(self.images) - self.warmed_count,
                "bytes": self.total_bytes,
            },
            "images": [],
        }
        for image in self.images:
            entry = asdict(image)
            entry["seconds"] = round(image.seconds, 3)
            entry["warmed"] = image.warmed
            document["images"].append(entry)
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> WarmReport:
        if document.get("format") != REPORT_FORMAT:
            raise ValueError(f"not a {REPORT_FORMAT} document: format={document.get('format')!r}")
        return cls(
            format=document["format"],
            registry=document["registry"],
            started_at=document["started_at"],
            finished_at=document["finished_at"],
            seconds=float(document["seconds"]),
            error=_error_from_json(document.get("error")),
            images=[_image_from_json(entry) for entry in document["images"]],
        )

    def write(self, path: Path) -> None:
        """Writes the report atomically, so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as output:
                json.dump(self.to_json(), output, indent=2)
                output.write("\n")
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def load_report(path: Path) -> WarmReport:
    with path.open(encoding="utf-8") as source:
        return WarmReport.from_json(json.load(source))


def _error_from_json(value: dict[str, Any] | None) -> WarmError | None:
    return None if value is None else WarmError(kind=value["kind"], message=value["message"])


def _image_from_json(entry: dict[str, Any]) -> ImageResult:
    return ImageResult(
        reference=entry["reference"],
        repository=entry.get("repository"),
        tag=entry.get("tag"),
        pinned_digest=entry.get("pinned_digest"),
        digest=entry.get("digest"),
        media_type=entry.get("media_type"),
        platforms=[
            PlatformResult(
                platform=platform["platform"],
                digest=platform.get("digest"),
                bytes=int(platform.get("bytes", 0)),
                blobs=int(platform.get("blobs", 0)),
                error=_error_from_json(platform.get("error")),
            )
            for platform in entry.get("platforms", [])
        ],
        bytes=int(entry.get("bytes", 0)),
        seconds=float(entry.get("seconds", 0.0)),
        error=_error_from_json(entry.get("error")),
    )


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    value = size / 1000
    for unit in ("KB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def image_line(image: ImageResult) -> str:
    """One log line for an image, as it finishes."""
    if image.warmed:
        digest = (image.digest or "")[:19]
        return (
            f"warmed  {image.reference}  {digest}  {len(image.platforms)} platform(s)  "
            f"{human_size(image.bytes)} in {image.seconds:.1f} s"
        )
    return f"FAILED  {image.reference}  {image.error}"


def summary_text(report: WarmReport) -> str:
    """The short human summary: totals, then every failure with its reason."""
    lines = [
        f"{report.warmed_count} of {len(report.images)} image(s) warmed through "
        f"{report.registry}: {human_size(report.total_bytes)} in {report.seconds:.1f} s"
    ]
    if report.error is not None:
        lines.append(f"batch stopped: {report.error}")
    not_attempted = 0
    for image in report.images:
        if image.error is None:
            continue
        if image.error.kind == ErrorKind.NOT_ATTEMPTED:
            not_attempted += 1
        else:
            lines.append(f"  {image.reference}: {image.error}")
    if not_attempted:
        lines.append(f"  {not_attempted} image(s) not attempted")
    return "\n".join(lines)
