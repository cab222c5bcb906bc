"""Parameter Store: the configuration parameters under one path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cache_pilot.config import ConfigSource
from cache_pilot.paths import normalize_path

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


def read_config_sources(ssm: SSMClient, path: str) -> list[ConfigSource]:
    """Every String and StringList parameter under `path`, recursively.

    SecureString parameters are skipped: the configuration holds no secrets (credentials live
    in Secrets Manager, referenced by name).
    """
    sources = []
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path=normalize_path(path),
        Recursive=True,
        WithDecryption=False,
        PaginationConfig={"PageSize": 10},
    )
    for page in pages:
        for parameter in page.get("Parameters", []):
            kind = parameter.get("Type")
            if kind == "String" or kind == "StringList":
                sources.append(
                    ConfigSource(
                        name=parameter["Name"],
                        type=kind,
                        value=parameter.get("Value", ""),
                        version=parameter.get("Version", 0),
                    )
                )
    return sources
