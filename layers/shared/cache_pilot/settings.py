"""The functions' environment, validated once at cold start (template.yaml sets it)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from cache_pilot.aws.parameters import normalize_path


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    config_path: str = Field(default="/cache-pilot/", alias="CONFIG_PATH")
    state_table: str = Field(alias="STATE_TABLE_NAME", min_length=3)
    region: str = Field(alias="AWS_REGION", min_length=1)

    @property
    def normalized_config_path(self) -> str:
        return normalize_path(self.config_path)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    values = dict(environ)
    values.setdefault("AWS_REGION", environ.get("AWS_DEFAULT_REGION", ""))
    return Settings.model_validate(values)
