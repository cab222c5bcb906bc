"""template.yaml's event patterns, put through moto's EventBridge: every sample event of events/
reaches exactly the functions the stack routes it to, and no other."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from cache_pilot.aws.clients import AwsClients
from cache_pilot_local.template import StackTemplate, event_rule_patterns
from tests.conftest import EVENTS_DIR, sample_event

PROJECT = "cache-pilot-WarmupProject-EXAMPLE"  # the project name in the CodeBuild samples
FUNCTIONS = ["SyncConfigFunction", "StartWarmupFunction", "FinishWarmupFunction"]

EXPECTED_RECEIVERS = {
    "ssm-parameter-create.json": {"SyncConfigFunction"},
    "ssm-parameter-update.json": {"SyncConfigFunction"},
    "ssm-parameter-delete.json": {"SyncConfigFunction"},
    "ssm-parameter-outside-path.json": set(),
    "schedule-drift-repair.json": set(),  # schedules are rules of their own, not patterns
    "schedule-freshness-check.json": set(),
    "schedule-nat-watchdog.json": set(),
    "warmup-requested.json": {"StartWarmupFunction"},
    "codebuild-warmup-succeeded.json": {"FinishWarmupFunction"},
    "codebuild-warmup-failed.json": {"FinishWarmupFunction"},
    "codebuild-warmup-fault.json": {"FinishWarmupFunction"},
    "codebuild-warmup-timed-out.json": {"FinishWarmupFunction"},
    "codebuild-warmup-stopped.json": {"FinishWarmupFunction"},
    "codebuild-warmup-in-progress.json": set(),
    "codebuild-other-project-succeeded.json": set(),
}


def test_every_sample_event_is_covered() -> None:
    assert sorted(path.name for path in Path(EVENTS_DIR).glob("*.json")) == sorted(
        EXPECTED_RECEIVERS
    )


@pytest.fixture
def receivers(clients: AwsClients, stack: StackTemplate) -> dict[str, set[str]]:
    """Put every sample on the default bus behind the stack's own rules, a queue standing in for
    each function, and return which functions received which sample."""
    sqs = boto3.client("sqs")
    queues = {}
    for function in FUNCTIONS:
        url = sqs.create_queue(QueueName=function)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queues[function] = url
        patterns = event_rule_patterns(stack, function, {"WarmupProject": PROJECT})
        assert patterns, f"template.yaml routes no event to {function}"
        for rule, pattern in patterns.items():
            clients.events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
            clients.events.put_targets(Rule=rule, Targets=[{"Id": function, "Arn": arn}])
    for sample in EXPECTED_RECEIVERS:
        event = sample_event(sample)
        clients.events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps({**event["detail"], "sample": sample}),
                    "Resources": event["resources"],
                }
            ]
        )
    received: dict[str, set[str]] = {sample: set() for sample in EXPECTED_RECEIVERS}
    for function, url in queues.items():
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                received[json.loads(message["Body"])["detail"]["sample"]].add(function)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return received


def test_each_sample_reaches_exactly_its_functions(receivers: dict[str, set[str]]) -> None:
    assert receivers == EXPECTED_RECEIVERS


def test_schedule_is_a_rule_of_its_own(stack: StackTemplate) -> None:
    schedules = {
        logical_id: stack.resolve(rule["Properties"]["ScheduleExpression"])
        for logical_id, rule in stack.of_type("AWS::Events::Rule").items()
        if "ScheduleExpression" in rule["Properties"]
    }
    assert schedules == {
        "SyncConfigFunctionDriftRepair": "rate(1 hour)",
        "CheckFreshnessFunctionFreshnessCheck": "rate(6 hours)",
        "NatWatchdogFunctionWatchdog": "rate(5 minutes)",
    }
