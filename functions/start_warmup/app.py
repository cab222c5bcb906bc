"""start_warmup: claim the images that wait, open the NAT window, start the warm-up builds.

Runs on cache-pilot's own "Warm-up Requested" event (sent by a sync, a finish or an operator).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cache_pilot.observability import logger, metrics, tracer
from cache_pilot.triggers import EventBridgeEnvelope, WarmupRequestDetail
from cache_pilot.warmup import StartOutcome, Warmup, start_warmup

warmup = Warmup.from_environment()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = EventBridgeEnvelope.model_validate(event)
    request = WarmupRequestDetail.model_validate(envelope.detail)
    result = start_warmup(warmup, retry_failed=request.retry_failed)
    summary = {"request": request.model_dump(), **result.model_dump(mode="json")}
    started = [batch for batch in result.batches if batch.build_id]
    metrics.add_metric(name="WarmupsStarted", unit=MetricUnit.Count, value=len(started))
    if result.outcome in (StartOutcome.ROUTE_CONFLICT, StartOutcome.NAT_UNAVAILABLE):
        metrics.add_metric(name="WarmupsRefused", unit=MetricUnit.Count, value=1)
        logger.error("warm-up refused; images left as they were", extra=summary)
    elif result.outcome is StartOutcome.START_FAILED or any(b.error for b in result.batches):
        metrics.add_metric(name="WarmupStartFailures", unit=MetricUnit.Count, value=1)
        logger.error("warm-up build did not start; claims released, window closed", extra=summary)
    else:
        logger.info("warm-up request handled", extra=summary)
    return summary
