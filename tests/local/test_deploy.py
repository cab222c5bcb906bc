"""template.yaml deployed into the embedded AWS through moto's CloudFormation, and what the
local mode adds to moto for it (resource types, SSM change events, schedule-only rules)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from cache_pilot_local.deploy import DeployedStack, deploy_stack, rule_name_of
from cache_pilot_local.event_routing import EventRouter, Invocation, fire_schedules
from cache_pilot_local.server import EmbeddedAws, start_embedded_aws
from cache_pilot_local.template import UnsupportedTemplateError, load_sam_template
from tests.conftest import ACCOUNT, REGION

DEMO = {"CreateDemoNetwork": "true"}


@pytest.fixture
def embedded() -> Iterator[EmbeddedAws]:
    aws = start_embedded_aws(port=0)
    yield aws
    aws.stop()


@pytest.fixture
def session(embedded: EmbeddedAws) -> boto3.Session:
    return embedded.session()


def client(embedded: EmbeddedAws, service: str) -> Any:
    return embedded.session().client(service, endpoint_url=embedded.endpoint_url)  # type: ignore[call-overload]


def write_template(tmp_path: Path, change: Any) -> Path:
    template = load_sam_template()
    change(template)
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(template))  # JSON is YAML
    return path


def test_every_resource_of_the_template_is_created(embedded: EmbeddedAws) -> None:
    deployed = deploy_stack(embedded, DEMO)

    expected = {
        logical_id
        for logical_id, resource in deployed.template.resources.items()
        if "Condition" not in resource
        or deployed.template.resolve({"Condition": resource["Condition"]})
    }
    assert set(deployed.physical_ids) == expected
    assert all(deployed.physical_ids[lid] for lid in expected if "Permission" not in lid)
    assert deployed.outputs["SharedLayerArn"].startswith(
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:SharedLayer:"
    )
    assert deployed.outputs["WarmupNatGateway"] == deployed.physical_id("DemoNatGateway")
    assert deployed.outputs["StateTableName"] == deployed.physical_id("StateTable")


def test_the_codebuild_project_is_the_templates(embedded: EmbeddedAws) -> None:
    deployed = deploy_stack(embedded, DEMO)

    (project,) = client(embedded, "codebuild").batch_get_projects(
        names=[deployed.physical_id("WarmupProject")]
    )["projects"]
    template_project = deployed.template.resource("WarmupProject")["Properties"]
    assert project["source"]["buildspec"] == template_project["Source"]["BuildSpec"]
    assert project["vpcConfig"]["subnets"] == [deployed.physical_id("DemoWarmupSubnet")]
    assert project["serviceRole"].endswith(deployed.physical_id("WarmupBuildRole"))
    variables = {v["name"]: v["value"] for v in project["environment"]["environmentVariables"]}
    assert variables["SHARED_LAYER_ARN"] == deployed.outputs["SharedLayerArn"]
    assert variables["ARTIFACT_BUCKET"] == deployed.physical_id("ArtifactBucket")


def test_functions_run_with_the_deployed_environment_and_layers(embedded: EmbeddedAws) -> None:
    deployed = deploy_stack(embedded, DEMO)

    configuration = client(embedded, "lambda").get_function_configuration(
        FunctionName=deployed.physical_id("StartWarmupFunction")
    )
    variables = configuration["Environment"]["Variables"]
    assert variables["WARMUP_PROJECT_NAME"] == deployed.physical_id("WarmupProject")
    assert variables["WARMUP_ROUTE_TABLE_IDS"] == deployed.physical_id("DemoWarmupRouteTable")
    assert [layer["Arn"].split(":")[6] for layer in configuration["Layers"]] == [
        "AWSLambdaPowertoolsPythonV3-python313-arm64",
        "SharedLayer",
    ]
    router = EventRouter(embedded, deployed)
    function = router.functions["StartWarmupFunction"]
    assert function.environment["NAT_GATEWAY_ID"] == deployed.physical_id("DemoNatGateway")


def test_rules_keep_the_templates_patterns_and_target_function_queues(
    embedded: EmbeddedAws,
) -> None:
    deployed = deploy_stack(embedded, DEMO)
    events = client(embedded, "events")

    rule = events.describe_rule(
        Name=rule_name_of(deployed.physical_id("FinishWarmupFunctionBuildEnded"))
    )
    assert json.loads(rule["EventPattern"])["detail"]["project-name"] == [
        deployed.physical_id("WarmupProject")
    ]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"].endswith(deployed.physical_id("FinishWarmupFunction") + "-events")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8  # the template's, kept


def test_a_change_to_the_template_changes_the_local_stack(
    embedded: EmbeddedAws, tmp_path: Path
) -> None:
    def change(template: dict[str, Any]) -> None:
        sync = template["Resources"]["SyncConfigFunction"]["Properties"]
        sync["Environment"] = {"Variables": {"POWERTOOLS_LOG_LEVEL": "DEBUG"}}  # over Globals
        rule = sync["Events"]["ParameterChange"]["Properties"]["Pattern"]
        rule["detail"]["name"] = [{"prefix": "/elsewhere/"}]

    deployed = deploy_stack(embedded, DEMO, template_path=write_template(tmp_path, change))

    router = EventRouter(embedded, deployed, function_environment={})
    assert router.functions["SyncConfigFunction"].environment["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    client(embedded, "ssm").put_parameter(
        Name="/cache-pilot/config", Value="rules: []", Type="String"
    )
    assert router.deliver_pending() == []  # the rule now listens under /elsewhere/ only


def _add_resource(resource: dict[str, Any]) -> Any:
    def change(template: dict[str, Any]) -> None:
        template["Resources"]["Extra"] = resource

    return change


def _set_property(logical_id: str, name: str, value: Any) -> Any:
    def change(template: dict[str, Any]) -> None:
        template["Resources"][logical_id]["Properties"][name] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _add_resource({"Type": "AWS::AppRunner::Service", "Properties": {}}),
            "Extra: resource type AWS::AppRunner::Service cannot be deployed",
        ),
        (
            _set_property(
                "WarmupProject", "Cache", {"Type": "LOCAL", "Modes": ["LOCAL_CUSTOM_CACHE"]}
            ),
            "WarmupProject (AWS::CodeBuild::Project): property Cache is not honoured",
        ),
        (
            _set_property("StateTable", "TableClass", "STANDARD_INFREQUENT_ACCESS"),
            "StateTable (AWS::DynamoDB::Table): property TableClass is not honoured",
        ),
        (
            _add_resource(
                {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {},
                    "CreationPolicy": {"ResourceSignal": {"Count": 1}},
                }
            ),
            "Extra: resource attribute CreationPolicy is not honoured",
        ),
    ],
    ids=["unknown type", "codebuild cache", "table class", "creation policy"],
)
def test_what_cannot_be_deployed_fails_loudly_and_creates_nothing(
    embedded: EmbeddedAws, tmp_path: Path, change: Any, message: str
) -> None:
    with pytest.raises(UnsupportedTemplateError) as raised:
        deploy_stack(embedded, DEMO, template_path=write_template(tmp_path, change))

    assert message in str(raised.value)
    assert "Teach local/cache_pilot_local/deploy.py" in str(raised.value)
    assert client(embedded, "cloudformation").list_stacks()["StackSummaries"] == []


# --- what the local mode adds to moto ------------------------------------------------------


@pytest.fixture
def deployed(embedded: EmbeddedAws) -> DeployedStack:
    return deploy_stack(embedded, DEMO)


def received(embedded: EmbeddedAws, deployed: DeployedStack, function: str) -> list[Any]:
    messages = client(embedded, "sqs").receive_message(
        QueueUrl=deployed.function_queues[function], MaxNumberOfMessages=10
    )
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_parameter_changes_are_announced_as_on_aws(
    embedded: EmbeddedAws, deployed: DeployedStack
) -> None:
    ssm = client(embedded, "ssm")
    ssm.put_parameter(Name="/cache-pilot/config", Value="rules: []", Type="String")
    ssm.put_parameter(Name="/cache-pilot/config", Value="rules: []\n", Overwrite=True)
    ssm.put_parameter(Name="/cache-pilot/images", Value="a,b", Type="StringList")
    ssm.delete_parameter(Name="/cache-pilot/config")
    ssm.delete_parameters(Names=["/cache-pilot/images", "/cache-pilot/never-existed"])
    ssm.put_parameter(Name="/elsewhere/config", Value="x", Type="String")

    events = received(embedded, deployed, "SyncConfigFunction")
    assert [
        (e["detail"]["operation"], e["detail"]["name"], e["detail"]["type"]) for e in events
    ] == [
        ("Create", "/cache-pilot/config", "String"),
        ("Update", "/cache-pilot/config", "String"),
        ("Create", "/cache-pilot/images", "StringList"),
        ("Delete", "/cache-pilot/config", "String"),
        ("Delete", "/cache-pilot/images", "StringList"),
    ]
    assert events[0]["source"] == "aws.ssm"
    assert events[0]["detail-type"] == "Parameter Store Change"
    assert events[0]["resources"] == [
        f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/cache-pilot/config"
    ]


def test_schedule_only_rules_receive_no_events(
    embedded: EmbeddedAws, deployed: DeployedStack
) -> None:
    client(embedded, "ssm").put_parameter(Name="/cache-pilot/config", Value="x", Type="String")

    assert len(received(embedded, deployed, "SyncConfigFunction")) == 1  # not the drift repair too
    assert received(embedded, deployed, "NatWatchdogFunction") == []
    assert received(embedded, deployed, "CheckFreshnessFunction") == []


def test_a_tick_fires_the_chosen_schedules_only(
    embedded: EmbeddedAws, deployed: DeployedStack, session: boto3.Session
) -> None:
    fired = fire_schedules(session, embedded.endpoint_url, deployed.name, ["watchdog"])

    assert [schedule.logical_id for schedule in fired] == ["NatWatchdogFunctionWatchdog"]
    (event,) = received(embedded, deployed, "NatWatchdogFunction")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == [fired[0].rule_arn]
    assert received(embedded, deployed, "SyncConfigFunction") == []


def test_a_tick_names_the_schedules_when_none_matches(
    embedded: EmbeddedAws, deployed: DeployedStack, session: boto3.Session
) -> None:
    with pytest.raises(UnsupportedTemplateError) as raised:
        fire_schedules(session, embedded.endpoint_url, deployed.name, ["hourly"])

    assert "no scheduled rule matches hourly" in str(raised.value)
    assert "NatWatchdogFunctionWatchdog" in str(raised.value)


def test_delivering_twice_runs_the_function_twice_on_the_same_event(
    embedded: EmbeddedAws, deployed: DeployedStack, session: boto3.Session
) -> None:
    seen: list[Invocation] = []
    router = EventRouter(embedded, deployed, deliver_twice=True, on_invocation=seen.append)
    fire_schedules(session, embedded.endpoint_url, deployed.name, ["watchdog"])

    with embedded.as_process_environment():
        invocations = router.deliver_pending()

    assert [(i.function, i.delivery) for i in invocations] == [
        ("NatWatchdogFunction", 1),
        ("NatWatchdogFunction", 2),
    ]
    assert invocations[0].event == invocations[1].event
    assert all(i.error is None and i.result["leases"] == 0 for i in invocations)
    assert seen == invocations
    assert received(embedded, deployed, "NatWatchdogFunction") == []  # taken off the queue


def test_subnets_use_the_route_tables_the_template_associates(embedded: EmbeddedAws) -> None:
    deployed = deploy_stack(embedded, DEMO)

    tables = client(embedded, "ec2").describe_route_tables(
        Filters=[
            {"Name": "association.subnet-id", "Values": [deployed.physical_id("DemoWarmupSubnet")]}
        ]
    )["RouteTables"]

    assert [table["RouteTableId"] for table in tables] == [
        deployed.physical_id("DemoWarmupRouteTable")
    ]
