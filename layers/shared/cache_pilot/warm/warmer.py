"""Warming: pull every selected platform of every image completely through the registry.

For each image: the manifest by tag, the selected platforms' manifests, then every blob
(config and layers), streamed in fixed-size chunks and checked against its digest and size.
Images and blobs run in two thread pools of ``parallel`` workers each; a blob shared by
several images of one repository is fetched once.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from cache_pilot.warm.batch import ImageReference, ImageRequest, PlatformSpec
from cache_pilot.warm.manifests import (
    IMAGE_MEDIA_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    Descriptor,
    ImageManifest,
    ManifestError,
    digest_of,
    media_type_of,
    new_hasher,
    parse_image_manifest,
    parse_index,
    platform_of_config,
    select_platforms,
)
from cache_pilot.warm.report import ErrorKind, ImageResult, PlatformResult, WarmError
from cache_pilot.warm.transport import (
    CredentialsRejected,
    RegistrySession,
    TransientNetworkError,
    TransportFailure,
)

CHUNK_BYTES = 1024 * 1024
MAX_READ_CONFIG_BYTES = 1024 * 1024  # configs up to this size are parsed for their platform


class _Aborted(Exception):
    """The batch was stopped (credentials rejected) before this work started."""


@dataclass(frozen=True)
class FetchedManifest:
    digest: str
    media_type: str
    body: bytes


@dataclass(frozen=True)
class BlobOutcome:
    size: int
    platform: tuple[str, str, str | None] | None = None  # (os, architecture, variant) of a config


@dataclass
class _PlatformWork:
    result: PlatformResult
    blobs: list[tuple[Descriptor, Future[BlobOutcome]]] | None = None
    platform_from_config: bool = False  # a single-platform image: its config names it


class Warmer:
    def __init__(
        self,
        session: RegistrySession,
        *,
        parallel: int = 8,
        on_image_done: Callable[[ImageResult], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        self._session = session
        self._parallel = parallel
        self._on_image_done = on_image_done
        self._clock = clock
        self._lock = threading.Lock()
        self._blobs: dict[tuple[str, str], Future[BlobOutcome]] = {}
        self._blob_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._stopped = threading.Event()
        self.fatal: CredentialsRejected | None = None

    def warm(self, requests: Sequence[ImageRequest]) -> list[ImageResult]:
        """Warms every request and returns one result per request, in order. When the
        credentials are rejected midway, ``fatal`` says so and the rest are not attempted."""
        with (
            ThreadPoolExecutor(self._parallel, thread_name_prefix="warm-blob") as blob_pool,
            ThreadPoolExecutor(self._parallel, thread_name_prefix="warm-image") as image_pool,
        ):
            self._blob_pool = blob_pool
            futures = [image_pool.submit(self._warm_request, request) for request in requests]
            return [future.result() for future in futures]

    # -- one image --------------------------------------------------------------------------

    def _warm_request(self, request: ImageRequest) -> ImageResult:
        result = ImageResult(reference=request.text)
        if request.reference is None:
            result.error = WarmError(ErrorKind.INVALID_REQUEST, request.problem or "invalid")
            return self._done(result)
        reference = request.reference
        result.repository, result.tag = reference.repository, reference.tag
        result.pinned_digest = reference.pinned_digest
        started = self._clock()
        try:
            if self._stopped.is_set():
                raise _Aborted
            self._warm_image(reference, request.platforms, result)
        except _Aborted:
            result.error = WarmError(
                ErrorKind.NOT_ATTEMPTED, f"the batch stopped: {self.fatal or 'aborted'}"
            )
        except CredentialsRejected as rejected:
            self._stop(rejected)
            result.error = WarmError(ErrorKind.UNAUTHORIZED, str(rejected))
        except TransportFailure as failure:
            result.error = WarmError(failure.kind, failure.message)
        except ManifestError as problem:
            result.error = WarmError(ErrorKind.UNSUPPORTED_MEDIA_TYPE, str(problem))
        except Exception as unexpected:  # one image's surprise must not sink the batch
            result.error = WarmError(ErrorKind.REGISTRY_ERROR, f"unexpected: {unexpected!r}")
        result.seconds = self._clock() - started
        return self._done(result)

    def _done(self, result: ImageResult) -> ImageResult:
        if self._on_image_done is not None:
            self._on_image_done(result)
        return result

    def _stop(self, rejected: CredentialsRejected) -> None:
        with self._lock:
            if self.fatal is None:
                self.fatal = rejected
        self._stopped.set()

    def _warm_image(
        self,
        reference: ImageReference,
        wanted: tuple[PlatformSpec, ...] | None,
        result: ImageResult,
    ) -> None:
        repository = reference.repository
        try:
            top = self._fetch_manifest(repository, reference.tag)
        except TransportFailure as failure:
            if failure.kind == ErrorKind.NOT_FOUND:
                raise TransportFailure(
                    ErrorKind.NOT_FOUND,
                    f"tag {reference.tag!r} not found in repository {repository!r} "
                    f"({failure.message})",
                    failure.status,
                ) from None
            raise
        result.digest, result.media_type = top.digest, top.media_type
        if top.media_type in INDEX_MEDIA_TYPES:
            work = self._start_index(repository, top, wanted)
        elif top.media_type in IMAGE_MEDIA_TYPES:
            work = [self._start_single(repository, top)]
        else:
            raise TransportFailure(
                ErrorKind.UNSUPPORTED_MEDIA_TYPE,
                f"the tag resolves to {top.media_type!r}, not an image index or manifest",
            )
        for platform in work:
            self._finish_platform(platform)
        result.platforms = [platform.result for platform in work]
        if top.media_type in IMAGE_MEDIA_TYPES and wanted is not None:
            result.platforms.extend(self._single_missing(result.platforms[0], wanted))
        result.bytes = sum(platform.bytes for platform in result.platforms)
        result.error = _image_error(result.platforms)
        if result.error is None and reference.pinned_digest not in (None, top.digest):
            result.error = WarmError(
                ErrorKind.PINNED_DIGEST_MISMATCH,
                f"tag {reference.tag!r} now resolves to {top.digest}, the reference pins "
                f"{reference.pinned_digest} (warmed what the tag points to)",
            )

    def _start_index(
        self,
        repository: str,
        index: FetchedManifest,
        wanted: tuple[PlatformSpec, ...] | None,
    ) -> list[_PlatformWork]:
        entries = parse_index(index.body)
        selected, missing = select_platforms(entries, wanted)
        work: list[_PlatformWork] = []
        for entry in selected:
            platform = _PlatformWork(PlatformResult(platform=entry.platform, digest=entry.digest))
            work.append(platform)
            try:
                child = self._fetch_manifest(repository, entry.digest)
                if child.media_type not in IMAGE_MEDIA_TYPES:
                    raise ManifestError(
                        f"index entry {entry.digest} is a {child.media_type!r}, "
                        "not an image manifest"
                    )
                manifest = parse_image_manifest(child.body)
            except TransportFailure as failure:
                platform.result.error = WarmError(failure.kind, failure.message)
                continue
            except ManifestError as problem:
                platform.result.error = WarmError(ErrorKind.UNSUPPORTED_MEDIA_TYPE, str(problem))
                continue
            platform.blobs = self._schedule_blobs(repository, manifest)
        offered = ", ".join(sorted({entry.platform for entry in entries})) or "nothing"
        work.extend(
            _PlatformWork(
                PlatformResult(
                    platform=str(spec),
                    digest=None,
                    error=WarmError(
                        ErrorKind.PLATFORM_MISSING, f"not in the index (it offers {offered})"
                    ),
                )
            )
            for spec in missing
        )
        return work

    def _start_single(self, repository: str, top: FetchedManifest) -> _PlatformWork:
        manifest = parse_image_manifest(top.body)
        platform = _PlatformWork(
            PlatformResult(platform="unknown", digest=top.digest), platform_from_config=True
        )
        platform.blobs = self._schedule_blobs(repository, manifest)
        return platform

    def _single_missing(
        self, found: PlatformResult, wanted: tuple[PlatformSpec, ...]
    ) -> list[PlatformResult]:
        """The wanted platforms that a single-platform image (no index) does not provide."""
        parts = found.platform.split("/")
        os, architecture = parts[0], parts[1] if len(parts) > 1 else ""
        variant = parts[2] if len(parts) > 2 else None
        return [
            PlatformResult(
                platform=str(spec),
                digest=None,
                error=WarmError(
                    ErrorKind.PLATFORM_MISSING,
                    f"not provided: the tag is a single-platform image ({found.platform})",
                ),
            )
            for spec in wanted
            if not spec.matches(os, architecture, variant)
        ]

    def _schedule_blobs(
        self, repository: str, manifest: ImageManifest
    ) -> list[tuple[Descriptor, Future[BlobOutcome]]]:
        return [
            (blob, self._blob_future(repository, blob, is_config=index == 0))
            for index, blob in enumerate(manifest.blobs)
        ]

    def _finish_platform(self, platform: _PlatformWork) -> None:
        if platform.blobs is None:
            return
        errors: list[WarmError] = []
        for descriptor, future in platform.blobs:
            try:
                outcome = future.result()
            except _Aborted:
                errors.append(WarmError(ErrorKind.NOT_ATTEMPTED, "the batch stopped"))
                continue
            except CredentialsRejected:
                raise
            except TransportFailure as failure:
                errors.append(WarmError(failure.kind, failure.message))
                continue
            if outcome.size != descriptor.size:
                errors.append(
                    WarmError(
                        ErrorKind.SIZE_MISMATCH,
                        f"blob {descriptor.digest} is {outcome.size} bytes, "
                        f"a manifest says {descriptor.size}",
                    )
                )
                continue
            platform.result.bytes += outcome.size
            platform.result.blobs += 1
            if platform.platform_from_config and outcome.platform is not None:
                platform.result.platform = "/".join(part for part in outcome.platform if part)
        if errors:
            platform.result.error = errors[0] if len(errors) == 1 else _combine(errors)

    # -- requests ---------------------------------------------------------------------------

    def _fetch_manifest(self, repository: str, reference: str) -> FetchedManifest:
        path = f"/v2/{repository}/manifests/{reference}"

        def attempt() -> tuple[bytes, str | None, str | None]:
            with self._session.get(path, repository=repository, accept=MANIFEST_ACCEPT) as response:
                announced = _content_length(response)
                if announced is not None and announced > MAX_MANIFEST_BYTES:
                    raise _manifest_too_big(repository, reference)
                # read() with no size raises IncompleteRead when the body is cut short
                body = (
                    response.read()
                    if announced is not None
                    else response.read(MAX_MANIFEST_BYTES + 1)
                )
                if len(body) > MAX_MANIFEST_BYTES:
                    raise _manifest_too_big(repository, reference)
                return (
                    body,
                    response.getheader("Content-Type"),
                    response.getheader("Docker-Content-Digest"),
                )

        if self._stopped.is_set():
            raise _Aborted
        body, content_type, declared = self._session.call(
            attempt, f"manifest {repository}:{reference}"
        )
        if ":" in reference:
            algorithm = reference.partition(":")[0]
            digest = digest_of(body, algorithm)
            if digest != reference:
                raise TransportFailure(
                    ErrorKind.DIGEST_MISMATCH,
                    f"manifest {reference} of {repository} arrived with digest {digest}",
                )
        else:
            digest = digest_of(body)
            if declared and declared.startswith("sha256:") and declared != digest:
                raise TransportFailure(
                    ErrorKind.DIGEST_MISMATCH,
                    f"manifest {repository}:{reference} hashes to {digest}, "
                    f"the registry says {declared}",
                )
        return FetchedManifest(
            digest=digest, media_type=media_type_of(content_type, body), body=body
        )

    def _blob_future(
        self, repository: str, descriptor: Descriptor, *, is_config: bool
    ) -> Future[BlobOutcome]:
        assert self._blob_pool is not None
        key = (repository, descriptor.digest)
        with self._lock:
            future = self._blobs.get(key)
            if future is None:
                keep = is_config and descriptor.size <= MAX_READ_CONFIG_BYTES
                future = self._blob_pool.submit(self._download_blob, repository, descriptor, keep)
                self._blobs[key] = future
            return future

    def _buffer(self) -> bytearray:
        buffer: bytearray | None = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = bytearray(CHUNK_BYTES)
        return buffer

    def _download_blob(self, repository: str, descriptor: Descriptor, keep: bool) -> BlobOutcome:
        if self._stopped.is_set():
            raise _Aborted
        path = f"/v2/{repository}/blobs/{descriptor.digest}"
        expected = descriptor.size
        try:
            new_hasher(descriptor.digest)
        except ManifestError as problem:
            raise TransportFailure(ErrorKind.UNSUPPORTED_MEDIA_TYPE, str(problem)) from None

        def attempt() -> BlobOutcome:
            hasher = new_hasher(descriptor.digest)
            kept = bytearray() if keep else None
            buffer = self._buffer()
            view = memoryview(buffer)
            received = 0
            with self._session.get(path, repository=repository) as response:
                announced = _content_length(response)
                if announced is not None and announced != expected:
                    raise TransportFailure(
                        ErrorKind.SIZE_MISMATCH,
                        f"blob {descriptor.digest} of {repository} is served as {announced} "
                        f"bytes, its manifest says {expected}",
                    )
                while count := response.readinto(buffer):
                    received += count
                    if received > expected:
                        raise TransportFailure(
                            ErrorKind.SIZE_MISMATCH,
                            f"blob {descriptor.digest} of {repository} is larger than the "
                            f"{expected} bytes its manifest says",
                        )
                    hasher.update(view[:count])
                    if kept is not None:
                        kept += view[:count]
            if received < expected and announced is not None:
                raise TransientNetworkError(
                    f"blob {descriptor.digest} of {repository} was cut off after "
                    f"{received} of {expected} bytes"
                )
            if received != expected:
                raise TransportFailure(
                    ErrorKind.SIZE_MISMATCH,
                    f"blob {descriptor.digest} of {repository} ended after {received} bytes, "
                    f"its manifest says {expected}",
                )
            algorithm = descriptor.digest.partition(":")[0]
            actual = f"{algorithm}:{hasher.hexdigest()}"
            if actual != descriptor.digest:
                raise TransportFailure(
                    ErrorKind.DIGEST_MISMATCH,
                    f"blob {descriptor.digest} of {repository} arrived with digest {actual}",
                )
            platform = platform_of_config(bytes(kept)) if kept is not None else None
            return BlobOutcome(size=received, platform=platform)

        try:
            return self._session.call(attempt, f"blob {descriptor.digest} of {repository}")
        except CredentialsRejected as rejected:
            self._stop(rejected)
            raise


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.getheader("Content-Length")
    return int(value) if value is not None and value.isdigit() else None


def _manifest_too_big(repository: str, reference: str) -> TransportFailure:
    return TransportFailure(
        ErrorKind.UNSUPPORTED_MEDIA_TYPE,
        f"manifest {repository}:{reference} is over {MAX_MANIFEST_BYTES} bytes",
    )


def _combine(errors: list[WarmError]) -> WarmError:
    return WarmError(errors[0].kind, "; ".join(error.message for error in errors))


def _image_error(platforms: list[PlatformResult]) -> WarmError | None:
    failed = [platform for platform in platforms if platform.error is not None]
    if not failed:
        return None
    first = failed[0].error
    assert first is not None
    return WarmError(
        first.kind,
        "; ".join(
            f"{platform.platform}: {platform.error.message}"
            for platform in failed
            if platform.error is not None
        ),
    )
