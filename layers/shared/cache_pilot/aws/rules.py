"""ECR pull-through cache rules, and the secrets that authenticated rules name."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

# Secrets Manager appends '-' and six random characters to a secret's name in its ARN.
_SECRET_ARN_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


class EcrRule(BaseModel):
    """A pull-through cache rule as ECR holds it."""

    model_config = ConfigDict(frozen=True)

    prefix: str
    upstream_registry: str | None
    upstream_url: str
    upstream_prefix: str = "ROOT"
    credential_arn: str | None = None
    custom_role_arn: str | None = None
    created_at: datetime | None = None

    @classmethod
    def from_api(cls, rule: Any) -> EcrRule:
        return cls(
            prefix=rule["ecrRepositoryPrefix"],
            upstream_registry=rule.get("upstreamRegistry"),
            upstream_url=rule["upstreamRegistryUrl"],
            upstream_prefix=rule.get("upstreamRepositoryPrefix") or "ROOT",
            credential_arn=rule.get("credentialArn"),
            custom_role_arn=rule.get("customRoleArn"),
            created_at=rule.get("createdAt"),
        )


class RuleOperationError(Exception):
    """ECR refused a rule operation; `code` is its error code."""

    def __init__(self, prefix: str, operation: str, code: str, message: str) -> None:
        self.prefix = prefix
        self.operation = operation
        self.code = code
        super().__init__(f"{operation} of rule '{prefix}' failed: {code}: {message}")


class RuleAlreadyExists(RuleOperationError):
    pass


class RuleNotFound(RuleOperationError):
    pass


class SecretNotFound(Exception):
    pass


def _wrap(exc: ClientError, prefix: str, operation: str) -> RuleOperationError:
    error = exc.response.get("Error", {})
    code = error.get("Code", "Unknown")
    message = error.get("Message", "")
    if code == "PullThroughCacheRuleAlreadyExistsException":
        return RuleAlreadyExists(prefix, operation, code, message)
    if code == "PullThroughCacheRuleNotFoundException":
        return RuleNotFound(prefix, operation, code, message)
    return RuleOperationError(prefix, operation, code, message)


def describe_rules(ecr: ECRClient) -> dict[str, EcrRule]:
    rules: dict[str, EcrRule] = {}
    for page in ecr.get_paginator("describe_pull_through_cache_rules").paginate(
        PaginationConfig={"PageSize": 1000}
    ):
        for rule in page.get("pullThroughCacheRules", []):
            parsed = EcrRule.from_api(rule)
            rules[parsed.prefix] = parsed
    return rules


def describe_rule(ecr: ECRClient, prefix: str) -> EcrRule | None:
    try:
        response = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=[prefix])
    except ClientError as exc:
        wrapped = _wrap(exc, prefix, "describe")
        if isinstance(wrapped, RuleNotFound):
            return None
        raise wrapped from exc
    rules = response.get("pullThroughCacheRules", [])
    return EcrRule.from_api(rules[0]) if rules else None


def create_rule(ecr: ECRClient, rule: EcrRule) -> EcrRule:
    request: dict[str, Any] = {
        "ecrRepositoryPrefix": rule.prefix,
        "upstreamRegistryUrl": rule.upstream_url,
    }
    if rule.upstream_registry:
        request["upstreamRegistry"] = rule.upstream_registry
    if rule.upstream_prefix != "ROOT":
        request["upstreamRepositoryPrefix"] = rule.upstream_prefix
    if rule.credential_arn:
        request["credentialArn"] = rule.credential_arn
    if rule.custom_role_arn:
        request["customRoleArn"] = rule.custom_role_arn
    try:
        response = ecr.create_pull_through_cache_rule(**request)
    except ClientError as exc:
        raise _wrap(exc, rule.prefix, "create") from exc
    return rule.model_copy(update={"created_at": response.get("createdAt")})


def update_rule_authentication(ecr: ECRClient, rule: EcrRule) -> None:
    request: dict[str, Any] = {"ecrRepositoryPrefix": rule.prefix}
    if rule.credential_arn:
        request["credentialArn"] = rule.credential_arn
    if rule.custom_role_arn:
        request["customRoleArn"] = rule.custom_role_arn
    try:
        ecr.update_pull_through_cache_rule(**request)
    except ClientError as exc:
        raise _wrap(exc, rule.prefix, "update") from exc


def delete_rule(ecr: ECRClient, prefix: str) -> bool:
    """Delete a rule; False when it was already gone."""
    try:
        ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    except ClientError as exc:
        wrapped = _wrap(exc, prefix, "delete")
        if isinstance(wrapped, RuleNotFound):
            return False
        raise wrapped from exc
    return True


def validate_rule(ecr: ECRClient, prefix: str) -> tuple[bool, str | None]:
    """ECR's own check of an authenticated rule: can it read the secret and log in upstream."""
    try:
        response = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix=prefix)
    except ClientError as exc:
        raise _wrap(exc, prefix, "validate") from exc
    return bool(response.get("isValid")), response.get("failure") or None


def secret_name_of(credential: str) -> str:
    """The secret's name from a name, a full ARN or an ARN without the random suffix."""
    if not credential.startswith("arn:"):
        return credential
    return credential.split(":secret:", 1)[1]


def credential_matches(wanted: str | None, held_arn: str | None) -> bool:
    """Does the ARN a rule holds name the secret the configuration names?"""
    if wanted is None or held_arn is None:
        return wanted is None and held_arn is None
    if wanted.startswith("arn:"):
        return held_arn == wanted or _SECRET_ARN_SUFFIX.sub("", held_arn) == wanted
    held_name = secret_name_of(held_arn)
    return held_name == wanted or _SECRET_ARN_SUFFIX.sub("", held_name) == wanted


def resolve_secret_arn(secretsmanager: SecretsManagerClient, credential: str) -> str:
    """The full ARN of the secret a rule names; ECR takes ARNs only."""
    try:
        return secretsmanager.describe_secret(SecretId=credential)["ARN"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise SecretNotFound(
                f"secret '{credential}' does not exist in this account and Region; create it "
                "with JSON keys username and accessToken"
            ) from exc
        raise
