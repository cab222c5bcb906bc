"""ECR pull-through cache rules and repository creation templates for moto 5.2.5.

moto 5.2.5 answers these operations with NotImplementedError (HTTP 500 in server mode).
``install()`` copies the backend methods below onto moto's ``ECRBackend`` and the request
handlers onto ``ECRResponse``, so the operations work under ``moto.mock_aws()`` and in a
``ThreadedMotoServer`` started in the same process. Rules and templates live on each
``ECRBackend`` instance (one per account and Region) and are emptied by moto's reset.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from botocore.model import ListShape, Shape, StructureShape
from moto.core.common_models import BaseModel
from moto.core.exceptions import InvalidToken, ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import get_service_model, utcnow
from moto.ecr.exceptions import (
    InvalidParameterException,
    LimitExceededException,
    ValidationException,
)
from moto.ecr.models import ECRBackend, Image, ecr_backends
from moto.ecr.policy_validation import EcrLifecyclePolicyValidator
from moto.ecr.responses import ECRResponse
from moto.secretsmanager.models import FakeSecret, ReplicaSecret, secretsmanager_backends
from moto.utilities.paginator import paginate

MAX_PULL_THROUGH_CACHE_RULES_PER_REGISTRY = 50
ROOT_PREFIX = "ROOT"
PULL_THROUGH_CACHE = "PULL_THROUGH_CACHE"  # a creation template's appliedFor value
DEFAULT_PAGE_SIZE = 100

UNAUTHENTICATED_UPSTREAMS = {"ecr-public", "k8s", "quay"}
AUTHENTICATED_UPSTREAMS = {
    "docker-hub",
    "github-container-registry",
    "azure-container-registry",
    "gitlab-container-registry",
    "chainguard",
}
UPSTREAM_REGISTRY_URL_PATTERNS = {
    "ecr-public": re.compile(r"public\.ecr\.aws"),
    "k8s": re.compile(r"registry\.k8s\.io"),
    "quay": re.compile(r"quay\.io"),
    "docker-hub": re.compile(r"registry-1\.docker\.io"),
    "github-container-registry": re.compile(r"ghcr\.io"),
    "azure-container-registry": re.compile(r"[a-z0-9]{5,50}\.azurecr\.io"),
    "gitlab-container-registry": re.compile(r"registry\.gitlab\.com"),
    "chainguard": re.compile(r"cgr\.dev"),
    "ecr": re.compile(
        r"(?P<account_id>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?"
    ),
}
SECRET_ARN_PATTERN = re.compile(
    r"arn:[^:]+:secretsmanager:(?P<region>[^:]+):(?P<account_id>[0-9]{12}):secret:(?P<name>.+)"
)
IAM_ROLE_ARN_PATTERN = re.compile(r"arn:[^:]+:iam::(?P<account_id>[0-9]{12}):role/.+")
SECRET_CREDENTIAL_KEYS = ("username", "accessToken")

PAGINATION_MODEL = {
    "describe_pull_through_cache_rules": {
        "input_token": "next_token",
        "limit_key": "max_results",
        "limit_default": DEFAULT_PAGE_SIZE,
        "unique_attribute": "ecr_repository_prefix",
    },
    "describe_repository_creation_templates": {
        "input_token": "next_token",
        "limit_key": "max_results",
        "limit_default": DEFAULT_PAGE_SIZE,
        "unique_attribute": "prefix",
    },
}


class PullThroughCacheRuleAlreadyExistsException(ServiceException):
    code = "PullThroughCacheRuleAlreadyExistsException"

    def __init__(self, prefix: str, registry_id: str):
        super().__init__(
            f"The pull through cache rule with prefix '{prefix}' already exists "
            f"in the registry with id '{registry_id}'"
        )


class PullThroughCacheRuleNotFoundException(ServiceException):
    code = "PullThroughCacheRuleNotFoundException"

    def __init__(self, prefix: str, registry_id: str):
        super().__init__(
            f"The pull through cache rule with prefix '{prefix}' does not exist "
            f"in the registry with id '{registry_id}'"
        )


class UnsupportedUpstreamRegistryException(ServiceException):
    code = "UnsupportedUpstreamRegistryException"


class SecretNotFoundException(ServiceException):
    code = "SecretNotFoundException"
    message = "The ARN of the secret specified in the pull through cache rule was not found"


class UnableToAccessSecretException(ServiceException):
    code = "UnableToAccessSecretException"


class TemplateAlreadyExistsException(ServiceException):
    code = "TemplateAlreadyExistsException"

    def __init__(self, prefix: str, registry_id: str):
        super().__init__(
            f"The repository creation template with prefix '{prefix}' already exists "
            f"in the registry with id '{registry_id}'"
        )


class TemplateNotFoundException(ServiceException):
    code = "TemplateNotFoundException"

    def __init__(self, prefix: str, registry_id: str):
        super().__init__(
            f"The repository creation template with prefix '{prefix}' does not exist "
            f"in the registry with id '{registry_id}'"
        )


def _prefix_key(prefix: str) -> str:
    # ECR implies a trailing "/" on every prefix, so "docker-hub" and "docker-hub/" are one.
    return prefix if prefix == ROOT_PREFIX else prefix.rstrip("/")


class PullThroughCacheRule(BaseModel):
    def __init__(
        self,
        registry_id: str,
        ecr_repository_prefix: str,
        upstream_registry: str,
        upstream_registry_url: str,
        upstream_repository_prefix: str,
        credential_arn: str | None,
        custom_role_arn: str | None,
    ):
        self.registry_id = registry_id
        self.ecr_repository_prefix = ecr_repository_prefix
        self.upstream_registry = upstream_registry
        self.upstream_registry_url = upstream_registry_url
        self.upstream_repository_prefix = upstream_repository_prefix
        self.credential_arn = credential_arn
        self.custom_role_arn = custom_role_arn
        self.created_at: datetime = utcnow()
        self.updated_at: datetime = self.created_at


class RepositoryCreationTemplate(BaseModel):
    def __init__(
        self,
        prefix: str,
        applied_for: list[str],
        description: str | None,
        encryption_configuration: dict[str, str] | None,
        resource_tags: list[dict[str, str]] | None,
        image_tag_mutability: str | None,
        image_tag_mutability_exclusion_filters: list[dict[str, str]] | None,
        repository_policy: str | None,
        lifecycle_policy: str | None,
        custom_role_arn: str | None,
    ):
        self.prefix = prefix
        self.applied_for = applied_for
        self.description = description
        self.encryption_configuration = encryption_configuration or {"encryptionType": "AES256"}
        self.resource_tags = resource_tags or []
        self.image_tag_mutability = image_tag_mutability or "MUTABLE"
        self.image_tag_mutability_exclusion_filters = image_tag_mutability_exclusion_filters
        self.repository_policy = repository_policy
        self.lifecycle_policy = lifecycle_policy
        self.custom_role_arn = custom_role_arn
        self.created_at: datetime = utcnow()
        self.updated_at: datetime = self.created_at


class PullThroughCacheECRBackend(ECRBackend):
    """Members that install() copies onto moto's ECRBackend; never instantiated itself.

    The storage is created lazily in the instance __dict__: ECRBackend.__init__ knows
    nothing about it, backends created before install() must get it too, and moto's
    reset() empties __dict__, which empties the storage with the rest.
    """

    @property
    def pull_through_cache_rules(self) -> dict[str, PullThroughCacheRule]:
        rules: dict[str, PullThroughCacheRule] = self.__dict__.setdefault(
            "_pull_through_cache_rules", {}
        )
        return rules

    @property
    def repository_creation_templates(self) -> dict[str, RepositoryCreationTemplate]:
        templates: dict[str, RepositoryCreationTemplate] = self.__dict__.setdefault(
            "_repository_creation_templates", {}
        )
        return templates

    @property
    def pull_through_cache_lock(self) -> threading.Lock:
        lock: threading.Lock = self.__dict__.setdefault(
            "_pull_through_cache_lock", threading.Lock()
        )
        return lock

    def create_pull_through_cache_rule(
        self,
        ecr_repository_prefix: str,
        upstream_registry_url: str,
        registry_id: str | None,
        upstream_registry: str | None,
        credential_arn: str | None,
        custom_role_arn: str | None,
        upstream_repository_prefix: str | None,
    ) -> PullThroughCacheRule:
        registry_id = registry_id or self.account_id
        upstream_registry = self._resolve_upstream_registry(
            upstream_registry, upstream_registry_url
        )
        if upstream_registry in AUTHENTICATED_UPSTREAMS and not credential_arn:
            raise UnsupportedUpstreamRegistryException(
                "The specified upstream registry requires authentication. "
                "Specify a valid Secrets Manager ARN"
            )
        self._check_credential_arn_allowed(upstream_registry, credential_arn)
        self._check_custom_role_arn_allowed(upstream_registry, custom_role_arn, registry_id)
        upstream_ecr = UPSTREAM_REGISTRY_URL_PATTERNS["ecr"].fullmatch(upstream_registry_url)
        if upstream_ecr and upstream_ecr["account_id"] != registry_id and not custom_role_arn:
            raise InvalidParameterException(
                "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
                "'A custom role is required to cache from the ECR registry of another account'"
            )
        if credential_arn:
            self._get_credential_secret(credential_arn)

        key = _prefix_key(ecr_repository_prefix)
        with self.pull_through_cache_lock:
            if key in self.pull_through_cache_rules:
                raise PullThroughCacheRuleAlreadyExistsException(ecr_repository_prefix, registry_id)
            if len(self.pull_through_cache_rules) >= MAX_PULL_THROUGH_CACHE_RULES_PER_REGISTRY:
                raise LimitExceededException(
                    "The maximum number of pull through cache rules "
                    f"({MAX_PULL_THROUGH_CACHE_RULES_PER_REGISTRY}) has been reached "
                    f"for the registry with id '{registry_id}'"
                )
            rule = PullThroughCacheRule(
                registry_id=registry_id,
                ecr_repository_prefix=ecr_repository_prefix,
                upstream_registry=upstream_registry,
                upstream_registry_url=upstream_registry_url,
                upstream_repository_prefix=upstream_repository_prefix or ROOT_PREFIX,
                credential_arn=credential_arn,
                custom_role_arn=custom_role_arn,
            )
            self.pull_through_cache_rules[key] = rule
        return rule

    @paginate(pagination_model=PAGINATION_MODEL)
    def describe_pull_through_cache_rules(
        self,
        registry_id: str | None = None,
        ecr_repository_prefixes: list[str] | None = None,
    ) -> list[PullThroughCacheRule]:
        if ecr_repository_prefixes:
            return [
                self._get_pull_through_cache_rule(prefix, registry_id)
                for prefix in dict.fromkeys(ecr_repository_prefixes)
            ]
        registry_id = registry_id or self.account_id
        return [
            rule
            for rule in self.pull_through_cache_rules.values()
            if rule.registry_id == registry_id
        ]

    def update_pull_through_cache_rule(
        self,
        ecr_repository_prefix: str,
        registry_id: str | None,
        credential_arn: str | None,
        custom_role_arn: str | None,
    ) -> PullThroughCacheRule:
        rule = self._get_pull_through_cache_rule(ecr_repository_prefix, registry_id)
        if not credential_arn and not custom_role_arn:
            raise InvalidParameterException(
                "Invalid parameter at 'credentialArn' failed to satisfy constraint: "
                "'Specify a credentialArn or a customRoleArn to update'"
            )
        self._check_credential_arn_allowed(rule.upstream_registry, credential_arn)
        self._check_custom_role_arn_allowed(
            rule.upstream_registry, custom_role_arn, rule.registry_id
        )
        if credential_arn:
            self._get_credential_secret(credential_arn)
            rule.credential_arn = credential_arn
        if custom_role_arn:
            rule.custom_role_arn = custom_role_arn
        rule.updated_at = utcnow()
        return rule

    def delete_pull_through_cache_rule(
        self, ecr_repository_prefix: str, registry_id: str | None
    ) -> PullThroughCacheRule:
        rule = self._get_pull_through_cache_rule(ecr_repository_prefix, registry_id)
        with self.pull_through_cache_lock:
            return self.pull_through_cache_rules.pop(_prefix_key(rule.ecr_repository_prefix))

    def validate_pull_through_cache_rule(
        self, ecr_repository_prefix: str, registry_id: str | None
    ) -> tuple[PullThroughCacheRule, str | None]:
        """Returns the rule and why it is not valid (None when it is valid).

        Only the secret is checked: there is no upstream to log in to.
        """
        rule = self._get_pull_through_cache_rule(ecr_repository_prefix, registry_id)
        if not rule.credential_arn:
            return rule, None
        try:
            secret = self._get_credential_secret(rule.credential_arn)
        except (SecretNotFoundException, UnableToAccessSecretException) as error:
            return rule, error.message
        secret_string = _current_secret_string(secret)
        try:
            credentials = json.loads(secret_string) if secret_string else None
        except ValueError:
            credentials = None
        if not isinstance(credentials, dict) or any(
            not credentials.get(key) for key in SECRET_CREDENTIAL_KEYS
        ):
            return rule, (
                f"The secret {rule.credential_arn} is not valid: its value must be a JSON "
                "object with the keys 'username' and 'accessToken'"
            )
        return rule, None

    def create_repository_creation_template(
        self,
        prefix: str,
        applied_for: list[str],
        description: str | None,
        encryption_configuration: dict[str, str] | None,
        resource_tags: list[dict[str, str]] | None,
        image_tag_mutability: str | None,
        image_tag_mutability_exclusion_filters: list[dict[str, str]] | None,
        repository_policy: str | None,
        lifecycle_policy: str | None,
        custom_role_arn: str | None,
    ) -> RepositoryCreationTemplate:
        self._check_template_settings(
            image_tag_mutability or "MUTABLE",
            image_tag_mutability_exclusion_filters,
            repository_policy,
            lifecycle_policy,
            custom_role_arn,
        )
        key = _prefix_key(prefix)
        with self.pull_through_cache_lock:
            if key in self.repository_creation_templates:
                raise TemplateAlreadyExistsException(prefix, self.account_id)
            template = RepositoryCreationTemplate(
                prefix=prefix,
                applied_for=applied_for,
                description=description,
                encryption_configuration=encryption_configuration,
                resource_tags=resource_tags,
                image_tag_mutability=image_tag_mutability,
                image_tag_mutability_exclusion_filters=image_tag_mutability_exclusion_filters,
                repository_policy=repository_policy,
                lifecycle_policy=lifecycle_policy,
                custom_role_arn=custom_role_arn,
            )
            self.repository_creation_templates[key] = template
        return template

    @paginate(pagination_model=PAGINATION_MODEL)
    def describe_repository_creation_templates(
        self, prefixes: list[str] | None = None
    ) -> list[RepositoryCreationTemplate]:
        if not prefixes:
            return list(self.repository_creation_templates.values())
        # Unknown prefixes are left out rather than refused: the API lists no error for them.
        wanted = {_prefix_key(prefix) for prefix in prefixes}
        return [
            template
            for key, template in self.repository_creation_templates.items()
            if key in wanted
        ]

    def update_repository_creation_template(
        self,
        prefix: str,
        applied_for: list[str] | None,
        description: str | None,
        encryption_configuration: dict[str, str] | None,
        resource_tags: list[dict[str, str]] | None,
        image_tag_mutability: str | None,
        image_tag_mutability_exclusion_filters: list[dict[str, str]] | None,
        repository_policy: str | None,
        lifecycle_policy: str | None,
        custom_role_arn: str | None,
    ) -> RepositoryCreationTemplate:
        template = self._get_repository_creation_template(prefix)
        if image_tag_mutability is None:
            image_tag_mutability = template.image_tag_mutability
            if image_tag_mutability_exclusion_filters is None:
                image_tag_mutability_exclusion_filters = (
                    template.image_tag_mutability_exclusion_filters
                )
        self._check_template_settings(
            image_tag_mutability,
            image_tag_mutability_exclusion_filters,
            repository_policy,
            lifecycle_policy,
            custom_role_arn,
        )
        template.image_tag_mutability = image_tag_mutability
        template.image_tag_mutability_exclusion_filters = image_tag_mutability_exclusion_filters
        if applied_for is not None:
            template.applied_for = applied_for
        if description is not None:
            template.description = description
        if encryption_configuration is not None:
            template.encryption_configuration = encryption_configuration
        if resource_tags is not None:
            template.resource_tags = resource_tags
        if repository_policy is not None:
            template.repository_policy = repository_policy
        if lifecycle_policy is not None:
            template.lifecycle_policy = lifecycle_policy
        if custom_role_arn is not None:
            template.custom_role_arn = custom_role_arn
        template.updated_at = utcnow()
        return template

    def delete_repository_creation_template(self, prefix: str) -> RepositoryCreationTemplate:
        template = self._get_repository_creation_template(prefix)
        with self.pull_through_cache_lock:
            return self.repository_creation_templates.pop(_prefix_key(template.prefix))

    def create_pull_through_cache_repository(self, repository_name: str, rule_prefix: str) -> None:
        """Create the repository a first pull through the rule `rule_prefix` creates, with the
        creation template that applies to it: the rule's prefix, else ROOT."""
        template = next(
            (
                template
                for key in (_prefix_key(rule_prefix), ROOT_PREFIX)
                if (template := self.repository_creation_templates.get(key)) is not None
                and PULL_THROUGH_CACHE in template.applied_for
            ),
            None,
        )
        self.create_repository(
            repository_name=repository_name,
            registry_id=None,
            encryption_config=template.encryption_configuration if template else {},
            image_scan_config={"scanOnPush": False},
            image_tag_mutability=template.image_tag_mutability if template else "MUTABLE",
            tags=template.resource_tags if template else [],
        )
        if template is not None and template.lifecycle_policy:
            self.put_lifecycle_policy(self.account_id, repository_name, template.lifecycle_policy)
        if template is not None and template.repository_policy:
            self.set_repository_policy(self.account_id, repository_name, template.repository_policy)

    def _get_pull_through_cache_rule(
        self, ecr_repository_prefix: str, registry_id: str | None
    ) -> PullThroughCacheRule:
        registry_id = registry_id or self.account_id
        rule = self.pull_through_cache_rules.get(_prefix_key(ecr_repository_prefix))
        if rule is None or rule.registry_id != registry_id:
            raise PullThroughCacheRuleNotFoundException(ecr_repository_prefix, registry_id)
        return rule

    def _get_repository_creation_template(self, prefix: str) -> RepositoryCreationTemplate:
        template = self.repository_creation_templates.get(_prefix_key(prefix))
        if template is None:
            raise TemplateNotFoundException(prefix, self.account_id)
        return template

    @staticmethod
    def _resolve_upstream_registry(
        upstream_registry: str | None, upstream_registry_url: str
    ) -> str:
        """The kind named in the request, or the kind the URL belongs to when none is named."""
        if upstream_registry is None:
            for kind, url_pattern in UPSTREAM_REGISTRY_URL_PATTERNS.items():
                if url_pattern.fullmatch(upstream_registry_url):
                    return kind
        elif UPSTREAM_REGISTRY_URL_PATTERNS[upstream_registry].fullmatch(upstream_registry_url):
            return upstream_registry
        raise UnsupportedUpstreamRegistryException(
            f"The upstream registry URL {upstream_registry_url} is invalid. "
            "Specify a valid upstream registry URL and try again"
        )

    @staticmethod
    def _check_credential_arn_allowed(upstream_registry: str, credential_arn: str | None) -> None:
        if credential_arn and upstream_registry not in AUTHENTICATED_UPSTREAMS:
            raise InvalidParameterException(
                "Invalid parameter at 'credentialArn' failed to satisfy constraint: "
                f"'The upstream registry {upstream_registry} does not use a credential'"
            )

    @staticmethod
    def _check_custom_role_arn_allowed(
        upstream_registry: str, custom_role_arn: str | None, registry_id: str
    ) -> None:
        if not custom_role_arn:
            return
        if upstream_registry != "ecr":
            raise InvalidParameterException(
                "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
                f"'The upstream registry {upstream_registry} does not use a custom role'"
            )
        _check_role_in_registry_account(custom_role_arn, registry_id)

    def _get_credential_secret(self, credential_arn: str) -> FakeSecret | ReplicaSecret:
        """The secret behind a full ARN or an ARN without the 6-character suffix.

        Only the Secrets Manager of the registry's own account and Region is searched.
        """
        arn = SECRET_ARN_PATTERN.fullmatch(credential_arn)
        if arn and (arn["account_id"], arn["region"]) == (self.account_id, self.region_name):
            secrets = secretsmanager_backends[self.account_id][self.region_name].secrets
            for secret in list(secrets.values()):
                if secret.arn == credential_arn or secret.name == arn["name"]:
                    if secret.is_deleted():
                        raise UnableToAccessSecretException(
                            f"The secret {credential_arn} is scheduled for deletion "
                            "and cannot be accessed"
                        )
                    return secret
        raise SecretNotFoundException()

    def _check_template_settings(
        self,
        image_tag_mutability: str,
        image_tag_mutability_exclusion_filters: list[dict[str, str]] | None,
        repository_policy: str | None,
        lifecycle_policy: str | None,
        custom_role_arn: str | None,
    ) -> None:
        ECRBackend.validate_image_tag_mutability_params_compatibility(
            image_tag_mutability,
            image_tag_mutability_exclusion_filters,  # type: ignore[arg-type]
        )
        if repository_policy:
            try:
                json.loads(repository_policy)
            except ValueError:
                raise InvalidParameterException(
                    "Invalid parameter at 'repositoryPolicy' failed to satisfy constraint: "
                    "'Invalid repository policy provided'"
                ) from None
        if lifecycle_policy:
            EcrLifecyclePolicyValidator(lifecycle_policy).validate()
        if custom_role_arn:
            _check_role_in_registry_account(custom_role_arn, self.account_id)


def _check_role_in_registry_account(custom_role_arn: str, registry_id: str) -> None:
    role = IAM_ROLE_ARN_PATTERN.fullmatch(custom_role_arn)
    if role is None or role["account_id"] != registry_id:
        raise InvalidParameterException(
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
            f"'The role must be an IAM role in the account {registry_id} of the registry'"
        )


def _current_secret_string(secret: FakeSecret | ReplicaSecret) -> str | None:
    version = secret.versions.get(secret.default_version_id or "", {})
    secret_string: str | None = version.get("secret_string")
    return secret_string


class PullThroughCacheECRResponse(ECRResponse):
    """Request handlers that install() copies onto moto's ECRResponse; never instantiated."""

    @property
    def pull_through_cache_backend(self) -> PullThroughCacheECRBackend:
        # After install() every ECRBackend carries the PullThroughCacheECRBackend members.
        return cast(PullThroughCacheECRBackend, self.ecr_backend)

    def create_pull_through_cache_rule(self) -> ActionResult:
        self._reject_model_constraint_violations()
        rule = self.pull_through_cache_backend.create_pull_through_cache_rule(
            ecr_repository_prefix=self._get_param("ecrRepositoryPrefix"),
            upstream_registry_url=self._get_param("upstreamRegistryUrl"),
            registry_id=self._get_param("registryId"),
            upstream_registry=self._get_param("upstreamRegistry"),
            credential_arn=self._get_param("credentialArn"),
            custom_role_arn=self._get_param("customRoleArn"),
            upstream_repository_prefix=self._get_param("upstreamRepositoryPrefix"),
        )
        return ActionResult(rule)

    def describe_pull_through_cache_rules(self) -> ActionResult:
        self._reject_model_constraint_violations()
        try:
            rules, next_token = self.pull_through_cache_backend.describe_pull_through_cache_rules(
                registry_id=self._get_param("registryId"),
                ecr_repository_prefixes=self._get_param("ecrRepositoryPrefixes"),
                max_results=self._get_param("maxResults"),
                next_token=self._get_param("nextToken"),
            )
        except InvalidToken:
            raise _invalid_next_token() from None
        return ActionResult({"pullThroughCacheRules": rules, "nextToken": next_token})

    def update_pull_through_cache_rule(self) -> ActionResult:
        self._reject_model_constraint_violations()
        rule = self.pull_through_cache_backend.update_pull_through_cache_rule(
            ecr_repository_prefix=self._get_param("ecrRepositoryPrefix"),
            registry_id=self._get_param("registryId"),
            credential_arn=self._get_param("credentialArn"),
            custom_role_arn=self._get_param("customRoleArn"),
        )
        return ActionResult(rule)

    def delete_pull_through_cache_rule(self) -> ActionResult:
        self._reject_model_constraint_violations()
        rule = self.pull_through_cache_backend.delete_pull_through_cache_rule(
            ecr_repository_prefix=self._get_param("ecrRepositoryPrefix"),
            registry_id=self._get_param("registryId"),
        )
        return ActionResult(rule)

    def validate_pull_through_cache_rule(self) -> ActionResult:
        self._reject_model_constraint_violations()
        rule, failure = self.pull_through_cache_backend.validate_pull_through_cache_rule(
            ecr_repository_prefix=self._get_param("ecrRepositoryPrefix"),
            registry_id=self._get_param("registryId"),
        )
        return ActionResult(
            {
                "ecrRepositoryPrefix": rule.ecr_repository_prefix,
                "registryId": rule.registry_id,
                "upstreamRegistryUrl": rule.upstream_registry_url,
                "credentialArn": rule.credential_arn,
                "customRoleArn": rule.custom_role_arn,
                "upstreamRepositoryPrefix": rule.upstream_repository_prefix,
                "isValid": failure is None,
                "failure": failure,
            }
        )

    def create_repository_creation_template(self) -> ActionResult:
        self._reject_model_constraint_violations()
        template = self.pull_through_cache_backend.create_repository_creation_template(
            prefix=self._get_param("prefix"),
            applied_for=self._get_param("appliedFor"),
            **self._template_settings(),
        )
        return ActionResult(
            {"registryId": self.current_account, "repositoryCreationTemplate": template}
        )

    def describe_repository_creation_templates(self) -> ActionResult:
        self._reject_model_constraint_violations()
        try:
            templates, next_token = (
                self.pull_through_cache_backend.describe_repository_creation_templates(
                    prefixes=self._get_param("prefixes"),
                    max_results=self._get_param("maxResults"),
                    next_token=self._get_param("nextToken"),
                )
            )
        except InvalidToken:
            raise _invalid_next_token() from None
        return ActionResult(
            {
                "registryId": self.current_account,
                "repositoryCreationTemplates": templates,
                "nextToken": next_token,
            }
        )

    def update_repository_creation_template(self) -> ActionResult:
        self._reject_model_constraint_violations()
        template = self.pull_through_cache_backend.update_repository_creation_template(
            prefix=self._get_param("prefix"),
            applied_for=self._get_param("appliedFor"),
            **self._template_settings(),
        )
        return ActionResult(
            {"registryId": self.current_account, "repositoryCreationTemplate": template}
        )

    def delete_repository_creation_template(self) -> ActionResult:
        self._reject_model_constraint_violations()
        template = self.pull_through_cache_backend.delete_repository_creation_template(
            prefix=self._get_param("prefix"),
        )
        return ActionResult(
            {"registryId": self.current_account, "repositoryCreationTemplate": template}
        )

    def _template_settings(self) -> dict[str, Any]:
        return {
            "description": self._get_param("description"),
            "encryption_configuration": self._get_param("encryptionConfiguration"),
            "resource_tags": self._get_param("resourceTags"),
            "image_tag_mutability": self._get_param("imageTagMutability"),
            "image_tag_mutability_exclusion_filters": self._get_param(
                "imageTagMutabilityExclusionFilters"
            ),
            "repository_policy": self._get_param("repositoryPolicy"),
            "lifecycle_policy": self._get_param("lifecyclePolicy"),
            "custom_role_arn": self._get_param("customRoleArn"),
        }

    def _reject_model_constraint_violations(self) -> None:
        """Raises ValidationException, worded as AWS words it, when the request breaks the
        lengths, patterns, enums, ranges or required members of the botocore model."""
        operation = get_service_model("ecr").operation_model(self._get_action())
        try:
            request = json.loads(self.body) if self.body else {}
        except ValueError:
            request = {}
        violations = list(_model_constraint_violations(operation.input_shape, request, ""))
        if violations:
            count = len(violations)
            raise ValidationException(
                f"{count} validation error{'s' if count > 1 else ''} detected: "
                + "; ".join(violations)
            )


def _invalid_next_token() -> InvalidParameterException:
    return InvalidParameterException(
        "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid token'"
    )


def _model_constraint_violations(shape: Shape | None, value: Any, path: str) -> Iterator[str]:
    if shape is None or value is None:
        return
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, member_shape in shape.members.items():
            member_path = f"{path}.{name}" if path else name
            if value.get(name) is None and name in shape.required_members:
                yield (
                    f"Value null at '{member_path}' failed to satisfy constraint: "
                    "Member must not be null"
                )
            yield from _model_constraint_violations(member_shape, value.get(name), member_path)
        return
    constraints = shape.metadata
    prefix = f"Value {_describe_value(value)} at '{path}' failed to satisfy constraint: "
    if isinstance(value, (str, list)):
        if "min" in constraints and len(value) < constraints["min"]:
            yield f"{prefix}Member must have length greater than or equal to {constraints['min']}"
        if "max" in constraints and len(value) > constraints["max"]:
            yield f"{prefix}Member must have length less than or equal to {constraints['max']}"
    if isinstance(value, int) and not isinstance(value, bool):
        if "min" in constraints and value < constraints["min"]:
            yield f"{prefix}Member must have value greater than or equal to {constraints['min']}"
        if "max" in constraints and value > constraints["max"]:
            yield f"{prefix}Member must have value less than or equal to {constraints['max']}"
    if isinstance(value, str):
        pattern = constraints.get("pattern")
        if pattern is not None and not re.fullmatch(pattern, value):
            yield f"{prefix}Member must satisfy regular expression pattern: {pattern}"
        enum = cast(list[str], getattr(shape, "enum", []))
        if enum and value not in enum:
            yield f"{prefix}Member must satisfy enum value set: [{', '.join(enum)}]"
    if isinstance(shape, ListShape) and isinstance(value, list):
        for index, item in enumerate(value, start=1):
            yield from _model_constraint_violations(shape.member, item, f"{path}.{index}.member")


def _describe_value(value: Any) -> str:
    if isinstance(value, list):
        return "'[" + ", ".join(str(item) for item in value) + "]'"
    return f"'{value}'"


_install_lock = threading.Lock()
_installed = False


def install() -> None:
    """Adds the pull-through cache and repository creation template operations to moto's ECR.

    Idempotent. Call it before moto.mock_aws() starts or a ThreadedMotoServer is started
    in this process; backends that exist already pick the new storage up on first use.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        _copy_members(PullThroughCacheECRBackend, ECRBackend)
        _copy_members(PullThroughCacheECRResponse, ECRResponse)
        Image._create_digest = _manifest_digest  # type: ignore[method-assign,assignment]
        _installed = True


def _manifest_digest(image: Image) -> None:
    """An image's digest is the sha256 of its manifest, as in ECR and every registry.

    moto hashes the layer digests instead, and picks one of a hundred random values for an
    index, so two indexes could share a digest and a platform manifest would not match the
    digest its index names.
    """
    image._image_digest = (
        "sha256:" + hashlib.sha256(image.image_manifest.encode("utf-8")).hexdigest()
    )


def _copy_members(source: type, target: type) -> None:
    members = {name: member for name, member in vars(source).items() if not name.startswith("__")}
    already_there = sorted(name for name in members if hasattr(target, name))
    if already_there:
        raise RuntimeError(
            f"moto's {target.__name__} already defines {', '.join(already_there)}: "
            "check whether this extension is still needed for this moto version"
        )
    for name, member in members.items():
        setattr(target, name, member)


@dataclass(frozen=True)
class PullThroughCacheMatch:
    """The rule a repository name falls under, and the upstream repository it stands for."""

    prefix: str  # the rule's ecrRepositoryPrefix, without a trailing "/"
    upstream_registry_url: str
    upstream_repository: str


def match_pull_through_cache_rule(
    account_id: str, region: str, repository: str
) -> PullThroughCacheMatch | None:
    """The rule a repository name falls under: the longest prefix, else a ROOT rule."""
    rules = get_pull_through_cache_rules(account_id, region)
    prefixes = sorted(
        (key for key in rules if key != ROOT_PREFIX and repository.startswith(key + "/")),
        key=len,
        reverse=True,
    )
    if prefixes:
        key, rest = prefixes[0], repository[len(prefixes[0]) + 1 :]
    elif ROOT_PREFIX in rules:
        key, rest = ROOT_PREFIX, repository
    else:
        return None
    rule = rules[key]
    upstream_prefix = rule.upstream_repository_prefix
    upstream = rest if upstream_prefix == ROOT_PREFIX else f"{upstream_prefix.rstrip('/')}/{rest}"
    return PullThroughCacheMatch(key, rule.upstream_registry_url, upstream)


def get_pull_through_cache_rules(account_id: str, region: str) -> dict[str, PullThroughCacheRule]:
    """The pull-through cache rules of one account and Region, by ecrRepositoryPrefix.

    Keys carry no trailing "/". The dict is a copy; the rules in it are the live objects.
    """
    install()
    backend = cast(PullThroughCacheECRBackend, ecr_backends[account_id][region])
    return dict(backend.pull_through_cache_rules)
