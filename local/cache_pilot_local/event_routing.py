"""Events delivered to the stack's functions as EventBridge would deliver them.

The deployed rules (their patterns, schedules and targets, all from template.yaml) decide which
function receives which event: moto's EventBridge matches each event against the rules and
puts it on the queue that stands for the target function (see deploy.py). The router takes each
message off its queue and invokes the function in this process, once per event, or twice with
`deliver_twice` (EventBridge and Lambda deliver at least once).

Schedules fire on request, not by wall clock: `fire_schedules` sends the `Scheduled Event` a
rule's schedule would, to that rule's targets. It works through the API only, so another
process (`cache-pilot local tick`) can fire the schedules of a stack served by `local up`.
"""

from __future__ import annotations

import json
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cache_pilot_local.deploy import DeployedStack, rule_name_of
from cache_pilot_local.functions import LocalFunction
from cache_pilot_local.template import UnsupportedTemplateError

if TYPE_CHECKING:
    import boto3

    from cache_pilot_local.server import EmbeddedAws

# On AWS the functions' logs and EMF metrics go to CloudWatch; locally they would bury what
# the router reports, so only warnings and errors are logged.
QUIET_FUNCTIONS = {
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
_RECEIVE_BATCH = 10


@dataclass(frozen=True)
class Invocation:
    """One run of a function on one event."""

    function: str  # logical ID
    event: dict[str, Any]
    delivery: int  # 1, or 2 for the duplicate of at-least-once delivery
    result: Any = None
    error: str | None = None


class EventRouter:
    """Runs the deployed functions on the events their queues hold, until none are left."""

    def __init__(
        self,
        aws: EmbeddedAws,
        stack: DeployedStack,
        *,
        deliver_twice: bool = False,
        function_environment: Mapping[str, str] = QUIET_FUNCTIONS,
        on_invocation: Callable[[Invocation], None] | None = None,
    ) -> None:
        session = aws.session()
        self._sqs = session.client("sqs", endpoint_url=aws.endpoint_url)
        lambda_client = session.client("lambda", endpoint_url=aws.endpoint_url)
        self._queues = dict(stack.function_queues)
        self.functions = {
            logical_id: LocalFunction.from_deployment(
                stack.template,
                logical_id,
                lambda_client.get_function_configuration(
                    FunctionName=stack.physical_id(logical_id)
                ),
                function_environment,
            )
            for logical_id in self._queues
        }
        self.deliver_twice = deliver_twice
        self._on_invocation = on_invocation

    def deliver_pending(self) -> list[Invocation]:
        """Deliver every queued event, and the events those invocations cause, in order."""
        invocations: list[Invocation] = []
        while True:
            delivered = self._deliver_one_round()
            if not delivered:
                return invocations
            invocations.extend(delivered)

    def _deliver_one_round(self) -> list[Invocation]:
        invocations = []
        for logical_id, queue_url in self._queues.items():
            messages = self._sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=_RECEIVE_BATCH, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in messages:
                event = json.loads(message["Body"])
                for delivery in range(1, 3 if self.deliver_twice else 2):
                    invocations.append(self.invoke(logical_id, event, delivery))
                self._sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return invocations

    def invoke(self, logical_id: str, event: dict[str, Any], delivery: int = 1) -> Invocation:
        """Run one function on one event. An error is recorded, as Lambda records it; the
        local mode does not retry (Lambda would retry an asynchronous invocation twice)."""
        try:
            invocation = Invocation(
                logical_id, event, delivery, result=self.functions[logical_id].invoke(event)
            )
        except Exception as exc:
            invocation = Invocation(
                logical_id,
                event,
                delivery,
                error="".join(traceback.format_exception_only(exc)).strip(),
            )
        if self._on_invocation:
            self._on_invocation(invocation)
        return invocation


# --- schedules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    logical_id: str
    rule_name: str
    rule_arn: str
    expression: str
    target_queue_arns: tuple[str, ...]


def stack_schedules(session: boto3.Session, endpoint_url: str | None, stack: str) -> list[Schedule]:
    """The scheduled rules of a deployed stack, found through the API."""
    cloudformation = session.client("cloudformation", endpoint_url=endpoint_url)
    events = session.client("events", endpoint_url=endpoint_url)
    schedules = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for summary in page["StackResourceSummaries"]:
            if summary["ResourceType"] != "AWS::Events::Rule":
                continue
            rule = events.describe_rule(Name=rule_name_of(summary["PhysicalResourceId"]))
            if not rule.get("ScheduleExpression"):
                continue
            targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            schedules.append(
                Schedule(
                    logical_id=summary["LogicalResourceId"],
                    rule_name=rule["Name"],
                    rule_arn=rule["Arn"],
                    expression=rule["ScheduleExpression"],
                    target_queue_arns=tuple(t["Arn"] for t in targets if ":sqs:" in t["Arn"]),
                )
            )
    return schedules


def select_schedules(schedules: list[Schedule], wanted: Iterable[str]) -> list[Schedule]:
    """The schedules whose logical ID ends with one of `wanted` (any case); all if none."""
    wanted = [name.lower() for name in wanted]
    if not wanted:
        return schedules
    chosen = [s for s in schedules if any(s.logical_id.lower().endswith(w) for w in wanted)]
    unmatched = [w for w in wanted if not any(s.logical_id.lower().endswith(w) for s in chosen)]
    if unmatched:
        known = ", ".join(s.logical_id for s in schedules)
        raise UnsupportedTemplateError(
            f"no scheduled rule matches {', '.join(unmatched)}; the stack's schedules: {known}"
        )
    return chosen


def fire_schedules(
    session: boto3.Session,
    endpoint_url: str | None,
    stack: str,
    wanted: Iterable[str] = (),
    now: datetime | None = None,
) -> list[Schedule]:
    """Send each chosen schedule's `Scheduled Event` to its targets; return what fired."""
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    fired = select_schedules(stack_schedules(session, endpoint_url, stack), wanted)
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for schedule in fired:
        event = scheduled_event(schedule, moment)
        for queue_arn in schedule.target_queue_arns:
            queue_url = sqs.get_queue_url(
                QueueName=queue_arn.rsplit(":", 1)[-1],
                QueueOwnerAWSAccountId=queue_arn.split(":")[4],
            )["QueueUrl"]
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
    return fired


def scheduled_event(schedule: Schedule, time: str) -> dict[str, Any]:
    """The event EventBridge sends when a schedule fires."""
    _, _, _, region, account, _ = schedule.rule_arn.split(":", 5)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time,
        "region": region,
        "resources": [schedule.rule_arn],
        "detail": {},
    }
