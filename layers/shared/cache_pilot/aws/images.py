"""What ECR really holds for an image: the truth a warm-up is checked against."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient


# Repositories listed at once: one call each, and a warm-up of a thousand images may need a
# thousand of them within the handler's few seconds.
DESCRIBE_CONCURRENCY = 16


@dataclass(frozen=True)
class CachedImageFacts:
    repository: str
    tag: str
    digest: str | None  # None when ECR does not have the tag
    pushed_at: datetime | None = None  # when the pull-through cache stored it
    last_pulled_at: datetime | None = None
    missing_digests: tuple[str, ...] = ()  # asked-for platform manifests ECR does not have
    error: str | None = None

    @property
    def cached(self) -> bool:
        return self.digest is not None and not self.missing_digests


@dataclass(frozen=True)
class ImageQuery:
    repository: str
    tag: str
    platform_digests: tuple[str, ...] = ()


def describe_cached_images(
    ecr: ECRClient, queries: Iterable[ImageQuery]
) -> dict[tuple[str, str], CachedImageFacts]:
    """One DescribeImages listing per repository answers for every tag and platform in it."""
    by_repository: dict[str, list[ImageQuery]] = defaultdict(list)
    for query in queries:
        by_repository[query.repository].append(query)
    with ThreadPoolExecutor(max_workers=DESCRIBE_CONCURRENCY) as pool:
        listings = dict(
            zip(
                by_repository,
                pool.map(lambda r: _describe_repository(ecr, r), by_repository),
                strict=True,
            )
        )
    return {
        (repository, query.tag): _facts_for(query, listings[repository])
        for repository, wanted in by_repository.items()
        for query in wanted
    }


@dataclass
class _Found:
    by_tag: dict[str, Any]
    by_digest: dict[str, Any]
    error: str | None = None


def _describe_repository(ecr: ECRClient, repository: str) -> _Found:
    # The whole repository, not the ids: DescribeImages fails the entire call when one asked-for
    # id is missing, and a cache repository holds few images (its tags and their platforms).
    found = _Found({}, {})
    try:
        for page in ecr.get_paginator("describe_images").paginate(
            repositoryName=repository, PaginationConfig={"PageSize": 1000}
        ):
            for detail in page.get("imageDetails", []):
                found.by_digest[detail["imageDigest"]] = detail
                for tag in detail.get("imageTags", []):
                    found.by_tag[tag] = detail
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "RepositoryNotFoundException":
            raise
        found.error = (
            f"ECR has no repository {repository}: no pull reached the cache through its rule"
        )
    return found


def _facts_for(query: ImageQuery, found: _Found) -> CachedImageFacts:
    if found.error:
        return CachedImageFacts(query.repository, query.tag, None, error=found.error)
    detail = found.by_tag.get(query.tag)
    if detail is None:
        return CachedImageFacts(
            query.repository,
            query.tag,
            None,
            error=(
                f"ECR has no image {query.repository}:{query.tag}: the pull did not fill the cache"
            ),
        )
    missing = tuple(d for d in query.platform_digests if d not in found.by_digest)
    return CachedImageFacts(
        repository=query.repository,
        tag=query.tag,
        digest=detail["imageDigest"],
        pushed_at=detail.get("imagePushedAt"),
        last_pulled_at=detail.get("lastRecordedPullTime"),
        missing_digests=missing,
        error=(
            f"ECR has {query.repository}:{query.tag} but not its platform manifests "
            + ", ".join(missing)
            if missing
            else None
        ),
    )
