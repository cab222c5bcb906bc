"""The functions' environment, validated once at cold start (template.yaml sets it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from cache_pilot.paths import normalize_path


def _comma_separated(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    config_path: str = Field(default="/cache-pilot/", alias="CONFIG_PATH")
    state_table: str = Field(alias="STATE_TABLE_NAME", min_length=3)
    region: str = Field(alias="AWS_REGION", min_length=1)
    # Where warm-up requests are sent; unset, a sync requests none (no warm-up stack deployed).
    event_source: str | None = Field(default=None, alias="EVENT_SOURCE")

    @property
    def normalized_config_path(self) -> str:
        return normalize_path(self.config_path)


class WarmupSettings(Settings):
    project_name: str = Field(alias="WARMUP_PROJECT_NAME", min_length=2)
    artifact_bucket: str = Field(alias="ARTIFACT_BUCKET", min_length=3)
    route_table_ids: Annotated[tuple[str, ...], BeforeValidator(_comma_separated)] = Field(
        alias="WARMUP_ROUTE_TABLE_IDS", min_length=1
    )
    nat_gateway_id: str = Field(alias="NAT_GATEWAY_ID", pattern=r"^nat-[0-9a-f]+$")
    batch_size: int = Field(default=100, alias="WARMUP_BATCH_SIZE", ge=1, le=1000)
    max_parallel_builds: int = Field(default=2, alias="WARMUP_MAX_PARALLEL_BUILDS", ge=1, le=20)
    build_timeout_minutes: int = Field(
        default=60, alias="WARMUP_BUILD_TIMEOUT_MINUTES", ge=5, le=2160
    )
    queued_timeout_minutes: int = Field(
        default=15, alias="WARMUP_QUEUED_TIMEOUT_MINUTES", ge=5, le=480
    )
    lease_grace_minutes: int = Field(default=5, alias="NAT_LEASE_GRACE_MINUTES", ge=1, le=60)
    retired_retention_days: int = Field(default=30, alias="RETIRED_RETENTION_DAYS", ge=1, le=3650)

    @property
    def lease_duration(self) -> timedelta:
        """How long a build may hold the NAT route: queued, running, and the finish's slack.

        Past it, the lease has expired and the watchdog may close the route whatever events
        were lost.
        """
        return timedelta(
            minutes=self.queued_timeout_minutes
            + self.build_timeout_minutes
            + self.lease_grace_minutes
        )


def _environment(environ: Mapping[str, str] | None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    values = dict(environ)
    values.setdefault("AWS_REGION", environ.get("AWS_DEFAULT_REGION", ""))
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    return Settings.model_validate(_environment(environ))


def load_warmup_settings(environ: Mapping[str, str] | None = None) -> WarmupSettings:
    return WarmupSettings.model_validate(_environment(environ))
