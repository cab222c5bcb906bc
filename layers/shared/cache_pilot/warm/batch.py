"""The batch the warm-up Lambda hands over: image references and the platforms to warm.

``{"images": [{"reference": "docker-hub/library/nginx:1.27", "platforms": ["linux/amd64"]}]}``

A reference is the repository path inside the registry plus ``:tag``, optionally pinned with
``@sha256:...``. Platforms are ``os/architecture[/variant]`` or ``["all"]``. An unusable entry
does not stop the batch: it becomes a request with a ``problem`` and is reported as such.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALL_PLATFORMS = "all"

# The distribution spec's grammar for repository names, tags and digests.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})")
_PLATFORM_PART = re.compile(r"[A-Za-z0-9_.-]+")


class BatchError(Exception):
    """The batch file as a whole is unusable (unreadable, not JSON, no image list)."""


class InvalidRequest(ValueError):
    """One entry of the batch is unusable."""


@dataclass(frozen=True)
class ImageReference:
    repository: str
    tag: str
    pinned_digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        name, _, pinned = text.partition("@")
        if pinned and not _DIGEST.fullmatch(pinned):
            raise InvalidRequest(f"{text!r}: {pinned!r} is not a sha256/sha384/sha512 digest")
        repository, colon, tag = name.rpartition(":")
        if not colon or "/" in tag:
            raise InvalidRequest(
                f"{text!r} has no tag: warm by tag (a first pull by digest alone does not fill "
                "a pull-through cache), e.g. 'docker-hub/library/nginx:1.27'"
            )
        if not _REPOSITORY.fullmatch(repository):
            raise InvalidRequest(
                f"{text!r}: repository {repository!r} is not a valid repository path "
                "(lowercase letters, digits and separators, components joined by '/')"
            )
        if not _TAG.fullmatch(tag):
            raise InvalidRequest(f"{text!r}: {tag!r} is not a valid tag")
        return cls(repository=repository, tag=tag, pinned_digest=pinned or None)

    def __str__(self) -> str:
        pin = f"@{self.pinned_digest}" if self.pinned_digest else ""
        return f"{self.repository}:{self.tag}{pin}"


@dataclass(frozen=True)
class PlatformSpec:
    """A wanted platform; without a variant it matches every variant of the architecture."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> PlatformSpec:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(_PLATFORM_PART.fullmatch(p) for p in parts):
            raise InvalidRequest(
                f"platform {text!r} is not 'os/architecture[/variant]' (e.g. 'linux/arm64') "
                f"or {ALL_PLATFORMS!r}"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, os: str, architecture: str, variant: str | None) -> bool:
        if (self.os, self.architecture) != (os, architecture):
            return False
        return self.variant is None or self.variant == variant

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True)
class ImageRequest:
    """One batch entry. ``platforms`` is None for all platforms; ``problem`` names what is
    wrong with an unusable entry (then ``reference`` may be None)."""

    text: str
    reference: ImageReference | None
    platforms: tuple[PlatformSpec, ...] | None
    problem: str | None = None


def parse_request(entry: Any) -> ImageRequest:
    if not isinstance(entry, dict):
        return ImageRequest(str(entry), None, None, "a batch entry must be an object")
    text = entry.get("reference")
    if not isinstance(text, str) or not text:
        return ImageRequest(str(text), None, None, "the entry has no 'reference' string")
    try:
        reference = ImageReference.parse(text)
        platforms = _parse_platforms(entry.get("platforms"))
    except InvalidRequest as problem:
        return ImageRequest(text, None, None, str(problem))
    return ImageRequest(text, reference, platforms)


def _parse_platforms(value: Any) -> tuple[PlatformSpec, ...] | None:
    if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value):
        raise InvalidRequest(
            "'platforms' must be a non-empty list such as ['linux/amd64', 'linux/arm64'] "
            f"or [{ALL_PLATFORMS!r}]"
        )
    if ALL_PLATFORMS in value:
        if len(value) > 1:
            raise InvalidRequest(f"{ALL_PLATFORMS!r} cannot be combined with other platforms")
        return None
    return tuple(dict.fromkeys(PlatformSpec.parse(p) for p in value))


def load_batch(path: Path) -> list[ImageRequest]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BatchError(f"cannot read the batch {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise BatchError(f"the batch {path} is not JSON: {error}") from None
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, list):
        raise BatchError(f"the batch {path} has no 'images' list")
    return [parse_request(entry) for entry in images]
