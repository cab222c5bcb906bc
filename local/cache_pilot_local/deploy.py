"""Deploy template.yaml itself into the embedded AWS, as `sam deploy` would into an account.

samtranslator turns the SAM template into CloudFormation; the code folders go into an artifact
bucket as `sam package` would put them; moto's CloudFormation creates the stack (with the
resource types it lacks added in cloudformation_models.py). Nothing about the stack is written
here: the rules, patterns, schedules, environments and names all come from the template.

Two things differ from AWS, both by design of the local mode:
- EventBridge cannot invoke a Lambda function in moto, so every rule target that names one of
  the stack's functions is pointed at that function's own SQS queue instead; the event router
  (event_routing.py) runs the function in-process for each message.
- Before anything is created, every resource type and property the template uses is checked
  against what the local deployment honours. Anything else fails loudly: a resource or setting
  silently dropped here would make the local run lie about the deployed one.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cache_pilot_local.aws_managed import publish_public_parameter
from cache_pilot_local.template import (
    LOCAL_ARTIFACT_BUCKET,
    TEMPLATE_PATH,
    StackTemplate,
    UnsupportedTemplateError,
    load_stack_template,
)

if TYPE_CHECKING:
    from cache_pilot_local.server import EmbeddedAws

STACK_NAME = "cache-pilot"
FUNCTION_QUEUE_SUFFIX = "-events"

# What the local deployment honours, per resource type. A property listed here is created as
# on AWS, except where local mode says otherwise in the README (tracing, log settings, IAM
# conditions). Anything not listed fails the deployment.
DEPLOYABLE_PROPERTIES: dict[str, frozenset[str]] = {
    "AWS::CloudWatch::Alarm": frozenset(
        {
            "AlarmActions",
            "AlarmDescription",
            "AlarmName",
            "ComparisonOperator",
            "Dimensions",
            "EvaluationPeriods",
            "MetricName",
            "Namespace",
            "Period",
            "Statistic",
            "Threshold",
            "TreatMissingData",
        }
    ),
    "AWS::CloudWatch::Dashboard": frozenset({"DashboardBody", "DashboardName"}),
    "AWS::CodeBuild::Project": frozenset(
        {
            "Artifacts",
            "Description",
            "Environment",
            "LogsConfig",
            "Name",
            "QueuedTimeoutInMinutes",
            "ServiceRole",
            "Source",
            "Tags",
            "TimeoutInMinutes",
            "VpcConfig",
        }
    ),
    "AWS::DynamoDB::Table": frozenset(
        {
            "AttributeDefinitions",
            "BillingMode",
            "KeySchema",
            "PointInTimeRecoverySpecification",
            "SSESpecification",
            "TableName",
            "TimeToLiveSpecification",
        }
    ),
    "AWS::EC2::EIP": frozenset({"Domain", "Tags"}),
    "AWS::EC2::InternetGateway": frozenset({"Tags"}),
    "AWS::EC2::NatGateway": frozenset({"AllocationId", "SubnetId", "Tags"}),
    "AWS::EC2::Route": frozenset(
        {"DestinationCidrBlock", "GatewayId", "NatGatewayId", "RouteTableId"}
    ),
    "AWS::EC2::RouteTable": frozenset({"Tags", "VpcId"}),
    "AWS::EC2::SecurityGroup": frozenset(
        {"GroupDescription", "SecurityGroupEgress", "SecurityGroupIngress", "Tags", "VpcId"}
    ),
    "AWS::EC2::Subnet": frozenset({"AvailabilityZone", "CidrBlock", "Tags", "VpcId"}),
    "AWS::EC2::SubnetRouteTableAssociation": frozenset({"RouteTableId", "SubnetId"}),
    "AWS::EC2::VPC": frozenset({"CidrBlock", "EnableDnsHostnames", "EnableDnsSupport", "Tags"}),
    "AWS::EC2::VPCEndpoint": frozenset(
        {
            "PrivateDnsEnabled",
            "RouteTableIds",
            "SecurityGroupIds",
            "ServiceName",
            "SubnetIds",
            "VpcEndpointType",
            "VpcId",
        }
    ),
    "AWS::EC2::VPCGatewayAttachment": frozenset({"InternetGatewayId", "VpcId"}),
    "AWS::Events::Rule": frozenset(
        {"Description", "EventPattern", "Name", "ScheduleExpression", "State", "Targets"}
    ),
    "AWS::IAM::Role": frozenset(
        {"AssumeRolePolicyDocument", "ManagedPolicyArns", "Policies", "RoleName", "Tags"}
    ),
    "AWS::Lambda::Function": frozenset(
        {
            "Architectures",
            "Code",
            "Description",
            "Environment",
            "FunctionName",
            "Handler",
            "Layers",
            "LoggingConfig",
            "MemorySize",
            "Role",
            "Runtime",
            "Tags",
            "Timeout",
            "TracingConfig",
        }
    ),
    "AWS::Lambda::LayerVersion": frozenset(
        {"CompatibleArchitectures", "CompatibleRuntimes", "Content", "Description", "LayerName"}
    ),
    "AWS::Lambda::Permission": frozenset({"Action", "FunctionName", "Principal", "SourceArn"}),
    "AWS::Logs::LogGroup": frozenset({"LogGroupName", "RetentionInDays"}),
    "AWS::S3::Bucket": frozenset(
        {
            "BucketEncryption",
            "BucketName",
            "LifecycleConfiguration",
            "PublicAccessBlockConfiguration",
        }
    ),
    "AWS::SQS::Queue": frozenset({"MessageRetentionPeriod", "QueueName", "SqsManagedSseEnabled"}),
    "AWS::SQS::QueuePolicy": frozenset({"PolicyDocument", "Queues"}),
}
RESOURCE_ATTRIBUTES = frozenset(
    {"Type", "Properties", "Condition", "DependsOn", "Metadata", "DeletionPolicy"}
    | {"UpdateReplacePolicy"}
)
RULE_TARGET_PROPERTIES = frozenset({"Arn", "Id", "DeadLetterConfig", "RetryPolicy"})


@dataclass(frozen=True)
class DeployedStack:
    """A stack deployed into the embedded AWS, by the names its users and the router need."""

    name: str
    template: StackTemplate
    physical_ids: dict[str, str]  # logical ID -> physical ID, of the resources created
    outputs: dict[str, str]
    function_queues: dict[str, str]  # function logical ID -> URL of its event queue

    def physical_id(self, logical_id: str) -> str:
        try:
            return self.physical_ids[logical_id]
        except KeyError:
            raise UnsupportedTemplateError(
                f"stack {self.name} has no resource {logical_id}"
            ) from None

    @property
    def config_path(self) -> str:
        return self.template.parameters["ConfigPath"]


def unsupported_parts(stack: StackTemplate) -> list[str]:
    """Every resource type, property or rule target the local deployment would not honour."""
    problems = []
    for logical_id, resource in sorted(stack.resources.items()):
        resource_type = resource["Type"]
        known = DEPLOYABLE_PROPERTIES.get(resource_type)
        if known is None:
            problems.append(f"{logical_id}: resource type {resource_type} cannot be deployed")
            continue
        for attribute in sorted(set(resource) - RESOURCE_ATTRIBUTES):
            problems.append(f"{logical_id}: resource attribute {attribute} is not honoured")
        for name in sorted(set(resource.get("Properties", {})) - known):
            problems.append(f"{logical_id} ({resource_type}): property {name} is not honoured")
        if resource_type == "AWS::Events::Rule":
            for target in resource["Properties"].get("Targets", []):
                for name in sorted(set(target) - RULE_TARGET_PROPERTIES):
                    problems.append(f"{logical_id}: target property {name} is not honoured")
    return problems


def check_deployable(stack: StackTemplate) -> None:
    problems = unsupported_parts(stack)
    if problems:
        raise UnsupportedTemplateError(
            "template.yaml uses what the embedded AWS cannot deploy faithfully:\n  "
            + "\n  ".join(problems)
            + "\nTeach local/cache_pilot_local/deploy.py (and a CloudFormation model in "
            "cloudformation_models.py where moto lacks the type), or change the template."
        )


def deploy_stack(
    aws: EmbeddedAws,
    parameter_overrides: Mapping[str, str] | None = None,
    stack_name: str = STACK_NAME,
    template_path: Path = TEMPLATE_PATH,
) -> DeployedStack:
    """Translate, check and deploy template.yaml; point its Lambda targets at event queues."""
    overrides = dict(parameter_overrides or {})
    stack = load_stack_template(aws.region, overrides, template_path)
    check_deployable(stack)
    session = aws.session()
    account_id = stack.account_id
    for name, parameter_type in stack.parameter_types.items():
        if parameter_type.startswith("AWS::SSM::Parameter::Value"):
            publish_public_parameter(account_id, aws.region, stack.parameters[name])
    _upload_code(session.client("s3", endpoint_url=aws.endpoint_url), stack)

    cloudformation = session.client("cloudformation", endpoint_url=aws.endpoint_url)
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(_cloudformation_template(stack)),
        Parameters=[
            {"ParameterKey": key, "ParameterValue": value} for key, value in overrides.items()
        ],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    description = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if description["StackStatus"] != "CREATE_COMPLETE":
        raise UnsupportedTemplateError(
            f"stack {stack_name} is {description['StackStatus']}: "
            f"{description.get('StackStatusReason', 'no reason given')}"
        )
    physical_ids = {
        summary["LogicalResourceId"]: summary["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(
            StackName=stack_name
        )
        for summary in page["StackResourceSummaries"]
    }
    _check_nothing_skipped(stack, physical_ids)
    function_queues = _route_function_targets_to_queues(aws, stack, physical_ids)
    return DeployedStack(
        name=stack_name,
        template=stack,
        physical_ids=physical_ids,
        outputs={
            output["OutputKey"]: output["OutputValue"] for output in description.get("Outputs", [])
        },
        function_queues=function_queues,
    )


def _cloudformation_template(stack: StackTemplate) -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {
            name: {"Type": stack.parameter_types[name], "Default": value}
            for name, value in stack.parameters.items()
        },
        "Conditions": stack.conditions,
        "Resources": stack.resources,
        "Outputs": stack.outputs,
    }


def _upload_code(s3: Any, stack: StackTemplate) -> None:
    """Zip each code folder as `sam build` lays it out: a layer's modules under python/."""
    layer_keys = {
        resource["Properties"]["Content"]["S3Key"]
        for resource in stack.of_type("AWS::Lambda::LayerVersion").values()
    }
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(
            Bucket=LOCAL_ARTIFACT_BUCKET,
            CreateBucketConfiguration={"LocationConstraint": stack.region},
        )
    for key, folder in stack.code_locations.items():
        prefix = "python/" if key in layer_keys else ""
        s3.put_object(Bucket=LOCAL_ARTIFACT_BUCKET, Key=key, Body=zip_folder(folder, prefix))


def zip_folder(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _check_nothing_skipped(stack: StackTemplate, physical_ids: Mapping[str, str]) -> None:
    expected = {
        logical_id
        for logical_id, resource in stack.resources.items()
        if "Condition" not in resource or stack.resolve({"Condition": resource["Condition"]})
    }
    skipped = sorted(expected - set(physical_ids))
    if skipped:
        raise UnsupportedTemplateError(
            f"moto's CloudFormation skipped {', '.join(skipped)}: the local stack would lack them"
        )


def _route_function_targets_to_queues(
    aws: EmbeddedAws, stack: StackTemplate, physical_ids: Mapping[str, str]
) -> dict[str, str]:
    session = aws.session()
    events = session.client("events", endpoint_url=aws.endpoint_url)
    sqs = session.client("sqs", endpoint_url=aws.endpoint_url)
    logical_by_function_name = {
        physical_ids[logical_id]: logical_id
        for logical_id in stack.of_type("AWS::Lambda::Function")
        if logical_id in physical_ids
    }
    queues: dict[str, str] = {}
    for logical_id in stack.of_type("AWS::Events::Rule"):
        rule_name = rule_name_of(physical_ids[logical_id])
        targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
        rerouted = []
        for target in targets:
            function_logical_id = logical_by_function_name.get(_function_name(target["Arn"]))
            if function_logical_id is None:
                continue
            if function_logical_id not in queues:
                queue_name = physical_ids[function_logical_id][:74] + FUNCTION_QUEUE_SUFFIX
                queues[function_logical_id] = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(
                QueueUrl=queues[function_logical_id], AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            rerouted.append({**target, "Arn": queue_arn})
        if rerouted:
            events.put_targets(Rule=rule_name, Targets=rerouted)  # type: ignore[arg-type]
    return queues


def rule_name_of(physical_id: str) -> str:
    """moto gives a rule's ARN as its physical ID; the API takes its name."""
    return physical_id.rsplit("/", 1)[-1]


def _function_name(arn: str) -> str:
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 and parts[2] == "lambda" else ""
