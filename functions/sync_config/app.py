"""sync_config: reconcile pull-through cache rules and image items with the configuration.

Runs on a Parameter Store change under the configuration path and on the drift-repair schedule.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import StateTable
from cache_pilot.config import ValidationContext
from cache_pilot.observability import logger, metrics, tracer
from cache_pilot.reporting import rule_metric_counts, sync_summary
from cache_pilot.settings import load_settings
from cache_pilot.sync import SyncStatus, synchronize, warmup_requester
from cache_pilot.triggers import EventBridgeEnvelope, account_of, sync_trigger

settings = load_settings()
clients = AwsClients()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    envelope = EventBridgeEnvelope.model_validate(event)
    trigger = sync_trigger(envelope.detail_type, envelope.detail, settings.config_path)
    if trigger.ignored:
        logger.info("event ignored", extra={"reason": trigger.ignored_reason})
        return {"status": "ignored", "reason": trigger.ignored_reason}
    result = synchronize(
        clients,
        settings.config_path,
        StateTable(clients.dynamodb, settings.state_table),
        ValidationContext(
            account_id=account_of(context.invoked_function_arn), region=settings.region
        ),
        request_warmup=warmup_requester(clients, settings.event_source),
        scheduled=trigger.kind == "schedule",
    )
    summary = sync_summary(result)
    if result.status is SyncStatus.INVALID:
        logger.error("configuration invalid; nothing changed", extra=summary)
        metrics.add_metric(name="InvalidConfiguration", unit=MetricUnit.Count, value=1)
    elif result.status is SyncStatus.ABSENT:
        logger.warning(
            f"no parameter under {settings.config_path}; nothing deleted (write 'rules: []' to "
            "remove every rule)",
            extra=summary,
        )
    else:
        logger.info("sync finished", extra={**summary, "trigger": trigger.model_dump()})
    for name, count in rule_metric_counts(result).items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    if result.plan is not None:
        metrics.add_metric(
            name="RuleConflicts", unit=MetricUnit.Count, value=len(result.plan.conflicts)
        )
    if result.report is not None and result.report.failures:
        metrics.add_metric(
            name="RuleChangeFailures", unit=MetricUnit.Count, value=len(result.report.failures)
        )
    return summary
