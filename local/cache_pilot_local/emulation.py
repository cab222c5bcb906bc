"""Everything cache-pilot adds to moto, installed in one call before moto starts."""

from __future__ import annotations

from cache_pilot_local import (
    builds,
    cloudformation_models,
    dynamodb_transactions,
    ecr_pull_through_cache,
    eventbridge_schedules,
    parameter_events,
)


def install_emulation() -> None:
    ecr_pull_through_cache.install()
    dynamodb_transactions.install()
    cloudformation_models.install()
    parameter_events.install()
    eventbridge_schedules.install()
    builds.install()
