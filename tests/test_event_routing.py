"""template.yaml's event patterns, put through moto's EventBridge: the sample events for
parameters under the path reach sync_config, the others do not."""

from __future__ import annotations

import json

import boto3
import pytest

from cache_pilot.aws.clients import AwsClients
from cache_pilot_local.template import StackTemplate, event_rule_patterns
from tests.conftest import sample_event

ROUTED = ["ssm-parameter-create.json", "ssm-parameter-update.json", "ssm-parameter-delete.json"]
IGNORED = ["ssm-parameter-outside-path.json", "schedule-drift-repair.json"]


@pytest.fixture
def delivered_ids(clients: AwsClients, stack: StackTemplate) -> list[str]:
    """Put every sample event on the default bus behind sync_config's own rule patterns and
    return the ids of those the rules let through (to a queue standing in for the function)."""
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="sync-config-target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    patterns = event_rule_patterns(stack, "SyncConfigFunction")
    assert patterns, "template.yaml has no event pattern targeting SyncConfigFunction"
    for name, pattern in patterns.items():
        clients.events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        clients.events.put_targets(Rule=name, Targets=[{"Id": "sync", "Arn": queue_arn}])
    for sample in ROUTED + IGNORED:
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
    received = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        for message in messages:
            received.append(json.loads(message["Body"])["detail"]["sample"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return received


def test_parameter_changes_under_the_path_reach_sync_config(delivered_ids: list[str]) -> None:
    assert sorted(delivered_ids) == sorted(ROUTED)


def test_schedule_is_a_rule_of_its_own(stack: StackTemplate) -> None:
    schedules = {
        logical_id: stack.resolve(rule["Properties"]["ScheduleExpression"])
        for logical_id, rule in stack.of_type("AWS::Events::Rule").items()
        if "ScheduleExpression" in rule["Properties"]
    }
    assert schedules == {"SyncConfigFunctionDriftRepair": "rate(1 hour)"}
