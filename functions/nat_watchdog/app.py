"""nat_watchdog: close the NAT route whose leases have expired or whose builds have ended,
whatever completion events were lost.

Runs on its own frequent schedule in template.yaml.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cache_pilot.freshness import watch_nat_window
from cache_pilot.observability import logger, metrics, tracer
from cache_pilot.warmup import Warmup

warmup = Warmup.from_environment()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = watch_nat_window(warmup)
    summary = {
        "leases": report.leases,
        "released": report.released,
        "still_running": report.still_running,
        "route_closed": report.route_closed,
        "closed_route_tables": list(report.closed_route_tables),
    }
    metrics.add_metric(
        name="WatchdogLeasesReleased", unit=MetricUnit.Count, value=len(report.released)
    )
    metrics.add_metric(
        name="WatchdogClosures", unit=MetricUnit.Count, value=int(report.route_closed)
    )
    if report.released or report.route_closed:
        logger.warning("watchdog released leases or closed the NAT route", extra=summary)
    else:
        logger.info("watchdog found nothing to close", extra=summary)
    return summary
