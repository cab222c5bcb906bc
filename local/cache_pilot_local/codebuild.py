"""The warm-up CodeBuild project, created in the embedded AWS from template.yaml's definition.

moto's CloudFormation skips CodeBuild projects, so the project is created through the API from
the template's own properties (by the CloudFormation model in cloudformation_models.py, or
directly); any property this mapping does not know fails loudly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cache_pilot_local.template import StackTemplate, UnsupportedTemplateError

_PROJECT_PROPERTIES = {
    "Name",
    "Description",
    "ServiceRole",
    "TimeoutInMinutes",
    "QueuedTimeoutInMinutes",
    "Artifacts",
    "Environment",
    "VpcConfig",
    "LogsConfig",
    "Source",
    "Tags",
}
# moto insists on a source location even for NO_SOURCE, which AWS does not take.
_MOTO_NO_SOURCE_LOCATION = "no-source"


def create_project_request(
    stack: StackTemplate, logical_id: str, project_name: str, names: Mapping[str, str]
) -> dict[str, Any]:
    """CodeBuild CreateProject arguments from an AWS::CodeBuild::Project of the template."""
    resource = stack.resource(logical_id)
    if resource["Type"] != "AWS::CodeBuild::Project":
        raise UnsupportedTemplateError(
            f"{logical_id} is {resource['Type']}, not a CodeBuild project"
        )
    return project_arguments(stack.resolve(resource["Properties"], names), project_name)


def project_arguments(properties: Mapping[str, Any], project_name: str) -> dict[str, Any]:
    """CreateProject arguments from a project's resolved CloudFormation properties."""
    unknown = set(properties) - _PROJECT_PROPERTIES
    if unknown:
        raise UnsupportedTemplateError(
            f"the CodeBuild project uses {', '.join(sorted(unknown))}, which the local deployer "
            "does not know how to create; teach local/cache_pilot_local/codebuild.py"
        )
    source = properties["Source"]
    environment = properties["Environment"]
    request: dict[str, Any] = {
        "name": project_name,
        "serviceRole": properties["ServiceRole"],
        "source": {
            "type": source["Type"],
            "buildspec": source.get("BuildSpec", ""),
            "location": source.get("Location") or _MOTO_NO_SOURCE_LOCATION,
        },
        "artifacts": {"type": properties["Artifacts"]["Type"]},
        "environment": {
            "type": environment["Type"],
            "image": environment["Image"],
            "computeType": environment["ComputeType"],
            "privilegedMode": bool(environment.get("PrivilegedMode", False)),
            "environmentVariables": [
                {"name": v["Name"], "value": str(v["Value"]), "type": v.get("Type", "PLAINTEXT")}
                for v in environment.get("EnvironmentVariables", [])
            ],
        },
        "timeoutInMinutes": int(properties.get("TimeoutInMinutes", 60)),
        "queuedTimeoutInMinutes": int(properties.get("QueuedTimeoutInMinutes", 480)),
    }
    if "Description" in properties:
        request["description"] = properties["Description"]
    if "VpcConfig" in properties:
        vpc = properties["VpcConfig"]
        request["vpcConfig"] = {
            "vpcId": vpc["VpcId"],
            "subnets": list(vpc["Subnets"]),
            "securityGroupIds": list(vpc["SecurityGroupIds"]),
        }
    if "LogsConfig" in properties:
        logs = properties["LogsConfig"].get("CloudWatchLogs", {})
        request["logsConfig"] = {"cloudWatchLogs": {"status": logs.get("Status", "ENABLED")}}
    if "Tags" in properties:
        request["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in properties["Tags"]]
    return request
