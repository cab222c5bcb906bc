"""CloudFormation resource types that moto's CloudFormation skips and template.yaml uses.

moto builds its CloudFormation type map from the subclasses of `CloudFormationModel`, so a
subclass defined here deploys that type through moto's own stack machinery: properties resolved
by moto (Ref, GetAtt, Sub, conditions), physical IDs in `ListStackResources`, deletion with the
stack. Each model creates its resource through the service's moto backend, as the real
resource provider calls the service's API.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.awslambda.models import LambdaFunction, LayerVersion, lambda_backends
from moto.cloudformation import parsing
from moto.cloudwatch.models import cloudwatch_backends
from moto.codebuild.models import codebuild_backends
from moto.core.common_models import CloudFormationModel
from moto.ec2.models import ec2_backends
from moto.ec2.models.subnets import SubnetRouteTableAssociation
from moto.sqs.models import sqs_backends

from cache_pilot_local.codebuild import project_arguments

_install_lock = threading.Lock()
_installed = False


class _NamedWithArn:
    """A resource whose physical ID is its name and whose only attribute is its Arn.

    A mixin, not a base class: moto finds the CloudFormation types among the direct subclasses
    of CloudFormationModel.
    """

    name: str
    arn: str

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Arn":
            return self.arn
        raise KeyError(attribute_name)


class CodeBuildProject(_NamedWithArn, CloudFormationModel):
    """AWS::CodeBuild::Project, created with CreateProject from the template's properties."""

    def __init__(self, name: str, account_id: str, region_name: str) -> None:
        self.name = name
        self.arn = f"arn:aws:codebuild:{region_name}:{account_id}:project/{name}"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CodeBuild::Project"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CodeBuildProject:
        properties = cloudformation_json["Properties"]
        name = properties.get("Name", resource_name)
        arguments = project_arguments(properties, name)
        codebuild_backends[account_id][region_name].create_project(
            project_name=arguments["name"],
            description=arguments.get("description"),
            project_source=arguments["source"],
            artifacts=arguments["artifacts"],
            environment=arguments["environment"],
            service_role=arguments["serviceRole"],
            tags=arguments.get("tags"),
            cache=None,
            timeout=arguments["timeoutInMinutes"],
            queued_timeout=arguments["queuedTimeoutInMinutes"],
            source_version=None,
            logs_config=arguments.get("logsConfig"),
            vpc_config=arguments.get("vpcConfig"),
        )
        return cls(name, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        codebuild_backends[account_id][region_name].delete_project(resource_name)


class MetricAlarm(_NamedWithArn, CloudFormationModel):
    """AWS::CloudWatch::Alarm for a single metric, created with PutMetricAlarm."""

    def __init__(self, name: str, account_id: str, region_name: str) -> None:
        self.name = name
        self.arn = f"arn:aws:cloudwatch:{region_name}:{account_id}:alarm:{name}"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> MetricAlarm:
        properties = cloudformation_json["Properties"]
        name = properties.get("AlarmName", resource_name)
        cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name,
            namespace=properties["Namespace"],
            metric_name=properties["MetricName"],
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=int(properties["EvaluationPeriods"]),
            period=int(properties["Period"]),
            threshold=float(properties["Threshold"]),
            statistic=properties["Statistic"],
            description=properties.get("AlarmDescription", ""),
            dimensions=list(properties.get("Dimensions", [])),
            alarm_actions=list(properties.get("AlarmActions") or []),
            treat_missing_data=properties.get("TreatMissingData"),
        )
        return cls(name, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])


class QueuePolicy(CloudFormationModel):
    """AWS::SQS::QueuePolicy: the policy set as each queue's Policy attribute."""

    def __init__(self, queue_urls: list[str]) -> None:
        self.queue_urls = queue_urls

    @property
    def physical_resource_id(self) -> str:
        return ",".join(self.queue_urls)

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SQS::QueuePolicy"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> QueuePolicy:
        properties = cloudformation_json["Properties"]
        policy = json.dumps(properties["PolicyDocument"])
        queue_urls = list(properties["Queues"])
        for url in queue_urls:
            sqs_backends[account_id][region_name].set_queue_attributes(
                _queue_name(url), {"Policy": policy}
            )
        return cls(queue_urls)


# moto's Lambda models drop what a function takes beyond its code and environment (its layers
# among them), and a layer version has no physical ID, so Ref gives the object itself.
_FUNCTION_PROPERTIES = (
    "Description",
    "MemorySize",
    "Timeout",
    "VpcConfig",
    "Environment",
    "ReservedConcurrentExecutions",
    "Layers",
    "Architectures",
    "TracingConfig",
)


def _create_function(
    cls: type[LambdaFunction],
    /,
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> LambdaFunction:
    properties = cloudformation_json["Properties"]
    spec = {
        "Code": properties["Code"],
        "FunctionName": properties.get("FunctionName", resource_name),
        "Handler": properties.get("Handler"),
        "Role": properties["Role"],
        "Runtime": properties.get("Runtime"),
        **{name: properties[name] for name in _FUNCTION_PROPERTIES if name in properties},
    }
    if "Tags" in properties:
        spec["Tags"] = {tag["Key"]: tag["Value"] for tag in properties["Tags"]}
    return lambda_backends[account_id][region_name].create_function(spec)


def _publish_layer_version(
    cls: type[LayerVersion],
    /,
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> LayerVersion:
    properties = cloudformation_json["Properties"]
    spec = {
        "Content": properties["Content"],
        "LayerName": properties.get("LayerName", resource_name),
        **{
            name: properties[name]
            for name in ("Description", "CompatibleRuntimes", "CompatibleArchitectures")
            if name in properties
        },
    }
    return lambda_backends[account_id][region_name].publish_layer_version(spec)


def _layer_version_arn(layer_version: LayerVersion) -> str:
    return layer_version.arn


def _associate_subnet(
    cls: type[SubnetRouteTableAssociation],
    /,
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> SubnetRouteTableAssociation:
    """moto records the association apart from the route table, so the subnet kept using the
    VPC's main table; associate it as AssociateRouteTable does."""
    properties = cloudformation_json["Properties"]
    backend = ec2_backends[account_id][region_name]
    backend.associate_route_table(properties["RouteTableId"], subnet_id=properties["SubnetId"])
    return backend.create_subnet_association(
        route_table_id=properties["RouteTableId"], subnet_id=properties["SubnetId"]
    )


def _queue_name(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def install() -> None:
    """Make moto's CloudFormation deploy the types above. Idempotent."""
    global _installed
    with _install_lock:
        if _installed:
            return
        if "physical_resource_id" in vars(LayerVersion):
            raise RuntimeError(
                "moto's LayerVersion now has a physical ID: check whether the Lambda fixes in "
                "cloudformation_models.py are still needed for this moto version"
            )
        LambdaFunction.create_from_cloudformation_json = classmethod(_create_function)  # type: ignore[method-assign,assignment]
        LayerVersion.create_from_cloudformation_json = classmethod(_publish_layer_version)  # type: ignore[method-assign,assignment]
        LayerVersion.physical_resource_id = property(_layer_version_arn)  # type: ignore[attr-defined]
        SubnetRouteTableAssociation.create_from_cloudformation_json = classmethod(  # type: ignore[method-assign,assignment]
            _associate_subnet
        )
        # moto caches its type map on first use; the models above are subclasses by now.
        parsing.get_model_list.cache_clear()
        parsing.get_model_map.cache_clear()
        parsing.get_name_type_map.cache_clear()
        already_known = {
            model.cloudformation_type()
            for model in CloudFormationModel.__subclasses__()
            if model not in (CodeBuildProject, MetricAlarm, QueuePolicy)
        } & {"AWS::CodeBuild::Project", "AWS::CloudWatch::Alarm", "AWS::SQS::QueuePolicy"}
        if already_known:
            raise RuntimeError(
                f"moto's CloudFormation now deploys {', '.join(sorted(already_known))}: "
                "check whether this extension is still needed for this moto version"
            )
        _installed = True
