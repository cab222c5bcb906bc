"""Everything cache-pilot adds to moto, installed in one call before moto starts."""

from __future__ import annotations

from cache_pilot_local import dynamodb_transactions, ecr_pull_through_cache


def install_emulation() -> None:
    ecr_pull_through_cache.install()
    dynamodb_transactions.install()
