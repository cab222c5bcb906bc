"""finish_warmup: when a warm-up build ends, record what ECR really cached and close the NAT
window once no build holds it.

Runs on CodeBuild "Build State Change" events of the warm-up project with a terminal status.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cache_pilot.observability import logger, metrics, tracer
from cache_pilot.triggers import EventBridgeEnvelope, build_ended
from cache_pilot.warmup import FinishOutcome, Warmup, finish_warmup

warmup = Warmup.from_environment()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = EventBridgeEnvelope.model_validate(event)
    result = finish_warmup(warmup, build_ended(envelope.detail))
    summary = result.model_dump(mode="json")
    if result.outcome is FinishOutcome.SETTLED:
        metrics.add_metric(name="ImagesWarmed", unit=MetricUnit.Count, value=len(result.warm))
        metrics.add_metric(name="ImagesFailed", unit=MetricUnit.Count, value=len(result.failed))
        if result.build_status != "SUCCEEDED":
            metrics.add_metric(name="WarmupsFailed", unit=MetricUnit.Count, value=1)
    if result.nat_open_seconds is not None:
        metrics.add_metric(
            name="NatOpenSeconds", unit=MetricUnit.Seconds, value=result.nat_open_seconds
        )
    logger.info("warm-up build ended", extra=summary)
    return summary
