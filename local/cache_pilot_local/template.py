"""template.yaml as the embedded AWS sees it: loaded, translated by samtranslator, resolved.

The local mode reads the stack's own definitions from here (the state table's key schema, the
event patterns, the functions' environment), so nothing about the stack is written twice.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
LOCAL_ARTIFACT_BUCKET = "cache-pilot-local-artifacts"
DEFAULT_ACCOUNT = "123456789012"


class UnsupportedTemplateError(Exception):
    """template.yaml uses something the embedded AWS cannot deploy: fail loudly, never skip."""


def load_sam_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    # cfn-lint's loader understands the short intrinsic tags (!Ref, !Sub, ...).
    loaded = json.loads(json.dumps(cfn_yaml.load(str(path))))
    if not isinstance(loaded, dict):
        raise UnsupportedTemplateError(f"{path} is not a template mapping")
    return loaded


@dataclass(kw_only=True)
class StackTemplate:
    """The translated (plain CloudFormation) template with its parameter values."""

    resources: dict[str, Any]
    parameters: dict[str, str]
    outputs: dict[str, Any]
    conditions: dict[str, Any] = field(default_factory=dict)
    parameter_types: dict[str, str] = field(default_factory=dict)
    region: str
    account_id: str = DEFAULT_ACCOUNT
    code_locations: dict[str, Path] = field(default_factory=dict)  # s3 key -> local folder

    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            resource: dict[str, Any] = self.resources[logical_id]
        except KeyError:
            raise UnsupportedTemplateError(f"template.yaml has no resource {logical_id}") from None
        return resource

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if resource["Type"] == resource_type
        }

    def resolve(self, value: Any, names: Mapping[str, str] | None = None) -> Any:
        """Resolve the intrinsic functions the template uses, against parameters and `names`.

        `names` maps logical IDs (and `Logical.Attribute` for GetAtt) to what the embedded AWS
        created for them.
        """
        return _Resolver(self, names or {}).resolve(value)


def translate(
    sam_template: dict[str, Any],
    region: str,
    parameter_overrides: Mapping[str, str] | None = None,
    account_id: str = DEFAULT_ACCOUNT,
) -> StackTemplate:
    template = copy.deepcopy(sam_template)
    code_locations = _point_code_at_local_bucket(template)
    parameters = {
        name: str(definition.get("Default", ""))
        for name, definition in template.get("Parameters", {}).items()
    }
    parameters.update(parameter_overrides or {})
    # No managed policy map: samtranslator would ask IAM for one, and the template names
    # no AWS managed policy by name.
    translator = Translator(
        {},
        Parser(),
        boto_session=boto3.Session(
            region_name=region, aws_access_key_id="local", aws_secret_access_key="local"
        ),
    )
    translated = translator.translate(
        template,
        parameter_values={**parameters, "AWS::Region": region, "AWS::AccountId": account_id},
    )
    return StackTemplate(
        resources=translated["Resources"],
        parameters=parameters,
        outputs=translated.get("Outputs", {}),
        conditions=translated.get("Conditions", {}),
        parameter_types={
            name: str(definition.get("Type", "String"))
            for name, definition in template.get("Parameters", {}).items()
        },
        region=region,
        account_id=account_id,
        code_locations=code_locations,
    )


def load_stack_template(
    region: str,
    parameter_overrides: Mapping[str, str] | None = None,
    path: Path = TEMPLATE_PATH,
) -> StackTemplate:
    return translate(load_sam_template(path), region, parameter_overrides)


def _point_code_at_local_bucket(template: dict[str, Any]) -> dict[str, Path]:
    """Do what `sam package` does to local code paths, with an S3 key per folder."""
    locations: dict[str, Path] = {}
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            local = properties.get(key)
            if isinstance(local, str) and not local.startswith("s3://"):
                s3_key = local.strip("/")
                locations[s3_key] = (REPO_ROOT / local).resolve()
                properties[key] = f"s3://{LOCAL_ARTIFACT_BUCKET}/{s3_key}"
    return locations


class _Resolver:
    def __init__(self, stack: StackTemplate, names: Mapping[str, str]) -> None:
        self._stack = stack
        self._names = names

    def _pseudo(self) -> dict[str, str]:
        return {
            "AWS::Region": self._stack.region,
            "AWS::AccountId": self._stack.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "cache-pilot",
            "AWS::NoValue": "",
        }

    def _ref(self, name: str) -> Any:
        if name in self._stack.parameters:
            value = self._stack.parameters[name]
            if self._stack.parameter_types.get(name, "").startswith(
                ("CommaDelimitedList", "List<")
            ):
                return [item.strip() for item in value.split(",")] if value else []
            return value
        pseudo = self._pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self._names:
            return self._names[name]
        raise UnsupportedTemplateError(f"cannot resolve Ref {name}: nothing local stands for it")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(item) for key, item in value.items()}
        ((key, argument),) = value.items()
        match key:
            case "Ref":
                return self._ref(argument)
            case "Fn::GetAtt":
                target = argument if isinstance(argument, str) else ".".join(argument)
                if target in self._names:
                    return self._names[target]
                raise UnsupportedTemplateError(f"cannot resolve Fn::GetAtt {target}")
            case "Fn::Sub":
                return self._sub(argument)
            case "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.resolve(items))
            case "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            case "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            case "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.condition(condition) else when_false)
            case "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition":
                return self._evaluate(value)
            case "Fn::GetAZs":
                return [f"{self._stack.region}{zone}" for zone in "abc"]
            case _:
                return {key: self.resolve(argument)}

    def condition(self, name: str) -> bool:
        if name not in self._stack.conditions:
            raise UnsupportedTemplateError(f"template.yaml has no condition {name}")
        return self._evaluate(self._stack.conditions[name])

    def _evaluate(self, expression: Any) -> bool:
        if isinstance(expression, bool):
            return expression
        ((key, argument),) = expression.items()
        match key:
            case "Fn::Equals":
                left, right = (self.resolve(item) for item in argument)
                return bool(str(left) == str(right))
            case "Fn::Not":
                return not self._evaluate(argument[0])
            case "Fn::And":
                return all(self._evaluate(item) for item in argument)
            case "Fn::Or":
                return any(self._evaluate(item) for item in argument)
            case "Condition":
                return self.condition(argument)
        raise UnsupportedTemplateError(f"cannot evaluate condition {expression}")

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        resolved = {name: str(self.resolve(item)) for name, item in variables.items()}
        result = []
        index = 0
        while index < len(text):
            start = text.find("${", index)
            if start < 0:
                result.append(text[index:])
                break
            end = text.index("}", start)
            result.append(text[index:start])
            name = text[start + 2 : end]
            if name.startswith("!"):
                result.append("${" + name[1:] + "}")
            elif name in resolved:
                result.append(resolved[name])
            elif "." in name:
                result.append(str(self.resolve({"Fn::GetAtt": name})))
            else:
                result.append(self._ref(name))
            index = end + 1
        return "".join(result)


# --- stateful resources -----------------------------------------------------------------------

_TABLE_PROPERTIES = {
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "SSESpecification",
    "PointInTimeRecoverySpecification",
    "TimeToLiveSpecification",
    "StreamSpecification",
    "TableName",
    "Tags",
}


def create_table_request(stack: StackTemplate, logical_id: str, table_name: str) -> dict[str, Any]:
    """DynamoDB CreateTable arguments from an AWS::DynamoDB::Table resource of the template."""
    resource = stack.resource(logical_id)
    if resource["Type"] != "AWS::DynamoDB::Table":
        raise UnsupportedTemplateError(f"{logical_id} is {resource['Type']}, not a DynamoDB table")
    properties = stack.resolve(resource.get("Properties", {}))
    unknown = set(properties) - _TABLE_PROPERTIES
    if unknown:
        raise UnsupportedTemplateError(
            f"{logical_id} uses {', '.join(sorted(unknown))}, which the local deployer does not "
            "know how to create; teach local/cache_pilot_local/template.py"
        )
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification", "Tags"):
        if key in properties:
            request[key] = properties[key]
    if "SSESpecification" in properties:
        request["SSESpecification"] = {
            "Enabled": bool(properties["SSESpecification"]["SSEEnabled"])
        }
    return request


def event_rule_patterns(
    stack: StackTemplate, function_logical_id: str, names: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """The EventBridge patterns that target a function, by rule logical ID (schedules excluded)."""
    patterns = {}
    for logical_id, rule in stack.of_type("AWS::Events::Rule").items():
        properties = rule["Properties"]
        targets = properties.get("Targets", [])
        if "EventPattern" not in properties:
            continue
        if any(
            target.get("Arn") == {"Fn::GetAtt": [function_logical_id, "Arn"]} for target in targets
        ):
            patterns[logical_id] = stack.resolve(properties["EventPattern"], names)
    return patterns


def function_environment(
    stack: StackTemplate, function_logical_id: str, names: Mapping[str, str]
) -> dict[str, str]:
    """The environment template.yaml gives a function, resolved against local names."""
    function = stack.resource(function_logical_id)
    variables = function["Properties"].get("Environment", {}).get("Variables", {})
    return {name: str(stack.resolve(value, names)) for name, value in variables.items()}


def function_code(stack: StackTemplate, function_logical_id: str) -> tuple[Path, str]:
    """The local folder of a function's code and its handler ('module.function')."""
    properties = stack.resource(function_logical_id)["Properties"]
    code = properties["Code"]
    folder = stack.code_locations.get(code.get("S3Key", ""))
    if folder is None:
        raise UnsupportedTemplateError(f"{function_logical_id}'s code is not a local folder")
    return folder, properties["Handler"]
