"""What cache-pilot records: one item per listed image, one per rule it created."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


def utc_now() -> datetime:
    return datetime.now(UTC)


class ImageStatus(StrEnum):
    PENDING = "PENDING"  # listed, never warmed (or gone from ECR)
    WARMING = "WARMING"  # claimed by a build
    WARM = "WARM"
    STALE = "STALE"  # cached longer ago than its max age
    FAILED = "FAILED"  # the last warm-up failed; last_error says why
    RETIRED = "RETIRED"  # no longer listed


class ImageRecord(BaseModel):
    """The state table's item for one image reference."""

    model_config = ConfigDict(frozen=True)

    reference: str
    repository: str
    tag: str
    pinned_digest: str | None = None
    rule_prefix: str
    platforms: tuple[str, ...]
    max_age_seconds: int = Field(gt=0)
    status: ImageStatus
    cached_digest: str | None = None
    cached_at: datetime | None = None  # when ECR pushed the image into the cache
    verified_at: datetime | None = None  # when a warm-up last confirmed it in ECR
    last_pulled_at: datetime | None = None  # ECR's lastRecordedPullTime
    checked_at: datetime | None = None
    build_id: str | None = None
    last_error: str | None = None
    listed_at: datetime
    updated_at: datetime
    retired_at: datetime | None = None


class RuleValidation(BaseModel):
    model_config = ConfigDict(frozen=True)

    is_valid: bool
    failure: str | None = None
    validated_at: datetime


class RuleRecord(BaseModel):
    """Proof that cache-pilot created a rule: ECR rules carry no tags.

    Written before the rule is created, so a crash in between never leaves a rule that looks
    foreign. `created_at` is ECR's own creation time of the rule: a rule under the same prefix
    with another creation time was made by someone else after ours was deleted.
    """

    model_config = ConfigDict(frozen=True)

    prefix: str
    upstream_registry: str
    upstream_url: str
    upstream_prefix: str = "ROOT"
    credential_arn: str | None = None
    custom_role_arn: str | None = None
    created_at: datetime | None = None
    validation: RuleValidation | None = None
    recorded_at: datetime


class BatchStatus(StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    START_FAILED = "START_FAILED"


class BatchRecord(BaseModel):
    """One warm-up build: which images it claimed and where its batch and report live."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    references: tuple[str, ...]
    status: BatchStatus
    batch_key: str
    build_id: str | None = None
    build_status: str | None = None
    created_at: datetime
    lease_expires_at: datetime
    finished_at: datetime | None = None
    error: str | None = None


class WindowState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    CLOSING = "CLOSING"  # one closer is removing the routes; openers wait


class NatWindow(BaseModel):
    """The NAT window: the default route is open while any lease is held.

    Leases map a batch id to its expiry. Opening and closing are guarded by the window's state
    so a closer that saw no lease can never remove the route under an opener that just took one.
    """

    model_config = ConfigDict(frozen=True)

    state: WindowState = WindowState.CLOSED
    leases: dict[str, datetime] = Field(default_factory=dict)
    opened_at: datetime | None = None
    closing_since: datetime | None = None
    closed_at: datetime | None = None
