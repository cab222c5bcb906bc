"""check_freshness: re-read ECR for every tracked image; re-warm what has gone stale.

Runs on its schedule in template.yaml.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cache_pilot.freshness import check_freshness
from cache_pilot.observability import logger, metrics, tracer
from cache_pilot.warmup import Warmup

warmup = Warmup.from_environment()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = check_freshness(warmup, timedelta(days=warmup.settings.retired_retention_days))
    for status, count in report.by_status.items():
        # A gauge per status at check time ("Now"), apart from the per-build counts.
        metrics.add_metric(name=f"Images{status.title()}Now", unit=MetricUnit.Count, value=count)
    metrics.add_metric(
        name="ImagesBecameStale", unit=MetricUnit.Count, value=len(report.became_stale)
    )
    metrics.add_metric(
        name="ImagesGoneFromEcr", unit=MetricUnit.Count, value=len(report.went_missing)
    )
    summary = {
        "checked": report.checked,
        "became_stale": report.became_stale,
        "gone_from_ecr": report.went_missing,
        "removed_retired": report.removed_retired,
        "by_status": report.by_status,
        "warmup_requested": report.warmup_requested,
    }
    logger.info("freshness checked", extra=summary)
    return summary
