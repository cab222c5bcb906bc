"""ECR pull-through cache rules and repository creation templates added to moto."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.ecr.models import ECRBackend
from moto.server import ThreadedMotoServer

from cache_pilot_local.ecr_pull_through_cache import (
    PullThroughCacheRule,
    get_pull_through_cache_rules,
    install,
)

REGION = "eu-west-1"
OTHER_REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
OTHER_ACCOUNT = "210987654321"
SECRET_NAME = "ecr-pullthroughcache/docker-hub"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ecr-pull-through-cache"
OTHER_ACCOUNT_ECR = f"{OTHER_ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com"
PREFIX_PATTERN = (
    r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$"
)
CREDENTIAL_ARN_PATTERN = (
    r"^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:"
    r"ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+$"
)
GOOD_CREDENTIALS = json.dumps({"username": "cache-pilot", "accessToken": "dckr_pat_x"})
EXPIRE_UNTAGGED = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 1,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


@pytest.fixture
def mocked_aws() -> Iterator[None]:
    install()
    with mock_aws():
        yield


@pytest.fixture
def ecr(mocked_aws: None) -> Any:
    return boto3.client("ecr", region_name=REGION)


@pytest.fixture
def unchecked_ecr(mocked_aws: None) -> Any:
    """A client that sends what botocore would refuse, so the emulation's checks are hit."""
    return boto3.client("ecr", region_name=REGION, config=Config(parameter_validation=False))


@pytest.fixture
def secretsmanager(mocked_aws: None) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def secret_arn(secretsmanager: Any) -> str:
    arn: str = secretsmanager.create_secret(Name=SECRET_NAME, SecretString=GOOD_CREDENTIALS)["ARN"]
    return arn


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def described_rules(ecr: Any) -> dict[str, dict[str, Any]]:
    rules = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    return {rule["ecrRepositoryPrefix"]: rule for rule in rules}


def create_docker_hub_rule(ecr: Any, credential_arn: str, prefix: str = "docker-hub") -> None:
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=prefix,
        upstreamRegistry="docker-hub",
        upstreamRegistryUrl="registry-1.docker.io",
        credentialArn=credential_arn,
    )


# CreatePullThroughCacheRule


def test_create_unauthenticated_rule_is_described_with_defaults(ecr: Any) -> None:
    # Given no rule
    # When a rule for ECR Public is created
    created = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="ecr-public",
        upstreamRegistry="ecr-public",
        upstreamRegistryUrl="public.ecr.aws",
    )

    # Then Describe returns it, with ROOT as upstream prefix and the creation time
    rule = described_rules(ecr)["ecr-public"]
    assert rule["upstreamRegistryUrl"] == "public.ecr.aws"
    assert rule["upstreamRegistry"] == "ecr-public"
    assert rule["registryId"] == ACCOUNT
    assert rule["upstreamRepositoryPrefix"] == "ROOT"
    assert "credentialArn" not in rule
    assert rule["createdAt"] == created["createdAt"] == rule["updatedAt"]


@pytest.mark.parametrize(
    ("upstream_registry", "upstream_registry_url", "extra"),
    [
        ("ecr-public", "public.ecr.aws", {}),
        ("k8s", "registry.k8s.io", {}),
        ("quay", "quay.io", {}),
        ("docker-hub", "registry-1.docker.io", {"credential": True}),
        ("github-container-registry", "ghcr.io", {"credential": True}),
        ("azure-container-registry", "cachepilot.azurecr.io", {"credential": True}),
        ("gitlab-container-registry", "registry.gitlab.com", {"credential": True}),
        ("chainguard", "cgr.dev", {"credential": True}),
        ("ecr", OTHER_ACCOUNT_ECR, {"customRoleArn": ROLE_ARN}),
    ],
)
def test_create_accepts_every_upstream_kind_with_its_url(
    ecr: Any, secret_arn: str, upstream_registry: str, upstream_registry_url: str, extra: Any
) -> None:
    # Given the authentication the kind needs
    authentication = dict(extra)
    if authentication.pop("credential", False):
        authentication["credentialArn"] = secret_arn

    # When a rule is created for the kind and its URL
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="upstream",
        upstreamRegistry=upstream_registry,
        upstreamRegistryUrl=upstream_registry_url,
        **authentication,
    )

    # Then Describe returns the rule with that kind, URL and authentication
    rule = described_rules(ecr)["upstream"]
    assert rule["upstreamRegistry"] == upstream_registry
    assert rule["upstreamRegistryUrl"] == upstream_registry_url
    assert {key: rule[key] for key in authentication} == authentication


def test_create_without_upstream_registry_takes_the_kind_from_the_url(ecr: Any) -> None:
    # When a rule names only the URL of Quay
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")

    # Then Describe reports the kind quay
    assert described_rules(ecr)["quay"]["upstreamRegistry"] == "quay"


def test_create_same_account_ecr_upstream_needs_no_custom_role(ecr: Any) -> None:
    # When a rule caches from this account's registry in another Region, without a role
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="central",
        upstreamRegistry="ecr",
        upstreamRegistryUrl=f"{ACCOUNT}.dkr.ecr.eu-central-1.amazonaws.com",
        upstreamRepositoryPrefix="team/app",
    )

    # Then it exists with the upstream prefix given
    rule = described_rules(ecr)["central"]
    assert rule["upstreamRepositoryPrefix"] == "team/app"
    assert "customRoleArn" not in rule


def test_create_accepts_the_secret_arn_without_its_random_suffix(ecr: Any, secret_arn: str) -> None:
    # Given the ARN of the secret without the 6-character suffix Secrets Manager adds
    partial_arn = secret_arn.rsplit("-", 1)[0]
    assert partial_arn.endswith(SECRET_NAME)

    # When a Docker Hub rule uses it
    create_docker_hub_rule(ecr, partial_arn)

    # Then the rule keeps the ARN as given
    assert described_rules(ecr)["docker-hub"]["credentialArn"] == partial_arn


@pytest.mark.parametrize(
    "credential_arn",
    [
        pytest.param(
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{SECRET_NAME}-AbCdEf",
            id="no-such-secret",
        ),
        pytest.param(
            f"arn:aws:secretsmanager:{OTHER_REGION}:{ACCOUNT}:secret:{SECRET_NAME}",
            id="secret-in-other-region",
        ),
    ],
)
def test_create_rejects_a_secret_that_does_not_exist_in_the_registry_region(
    ecr: Any, secretsmanager: Any, credential_arn: str
) -> None:
    # Given a secret of that name only in another Region
    boto3.client("secretsmanager", region_name=OTHER_REGION).create_secret(
        Name=SECRET_NAME, SecretString=GOOD_CREDENTIALS
    )

    # When a rule names a secret missing from the registry's Region
    with pytest.raises(ClientError) as raised:
        create_docker_hub_rule(ecr, credential_arn)

    # Then it fails with SecretNotFoundException and no rule exists
    assert error_of(raised) == (
        "SecretNotFoundException",
        "The ARN of the secret specified in the pull through cache rule was not found",
    )
    assert described_rules(ecr) == {}


def test_create_rejects_a_secret_scheduled_for_deletion(
    ecr: Any, secretsmanager: Any, secret_arn: str
) -> None:
    # Given the secret is scheduled for deletion
    secretsmanager.delete_secret(SecretId=secret_arn)

    # When a rule names it
    with pytest.raises(ClientError) as raised:
        create_docker_hub_rule(ecr, secret_arn)

    # Then the secret cannot be accessed
    assert error_of(raised) == (
        "UnableToAccessSecretException",
        f"The secret {secret_arn} is scheduled for deletion and cannot be accessed",
    )


@pytest.mark.parametrize("second_prefix", ["quay", "quay/"])
def test_create_rejects_a_prefix_that_has_a_rule(ecr: Any, second_prefix: str) -> None:
    # Given a rule for prefix quay
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")

    # When a second rule uses the same prefix (the trailing "/" is implied)
    with pytest.raises(ClientError) as raised:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix=second_prefix, upstreamRegistryUrl="registry.k8s.io"
        )

    # Then it fails and the first rule is unchanged
    assert error_of(raised) == (
        "PullThroughCacheRuleAlreadyExistsException",
        f"The pull through cache rule with prefix '{second_prefix}' already exists "
        f"in the registry with id '{ACCOUNT}'",
    )
    assert described_rules(ecr)["quay"]["upstreamRegistryUrl"] == "quay.io"


def test_create_refuses_the_51st_rule_of_a_registry(ecr: Any) -> None:
    # Given 50 rules, the quota
    for number in range(50):
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix=f"quay-{number}", upstreamRegistryUrl="quay.io"
        )

    # When a 51st is created
    with pytest.raises(ClientError) as raised:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="quay-50", upstreamRegistryUrl="quay.io"
        )

    # Then it fails with LimitExceededException and 50 rules remain
    assert error_of(raised) == (
        "LimitExceededException",
        "The maximum number of pull through cache rules (50) has been reached "
        f"for the registry with id '{ACCOUNT}'",
    )
    assert len(described_rules(ecr)) == 50


def test_create_quota_is_per_region(ecr: Any) -> None:
    # Given 50 rules in eu-west-1
    for number in range(50):
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix=f"quay-{number}", upstreamRegistryUrl="quay.io"
        )

    # When a rule is created in us-east-1
    other_region = boto3.client("ecr", region_name=OTHER_REGION)
    other_region.create_pull_through_cache_rule(
        ecrRepositoryPrefix="quay-0", upstreamRegistryUrl="quay.io"
    )

    # Then each Region lists its own rules
    assert len(described_rules(other_region)) == 1
    assert len(described_rules(ecr)) == 50


QUAY_RULE: dict[str, Any] = {"ecrRepositoryPrefix": "quay", "upstreamRegistryUrl": "quay.io"}


def invalid_value(value: str, path: str, constraint: str) -> str:
    return (
        f"1 validation error detected: Value '{value}' at '{path}' "
        f"failed to satisfy constraint: Member must {constraint}"
    )


@pytest.mark.parametrize(
    ("changes", "code", "message"),
    [
        pytest.param(
            {"ecrRepositoryPrefix": "a"},
            "ValidationException",
            invalid_value("a", "ecrRepositoryPrefix", "have length greater than or equal to 2"),
            id="prefix-too-short",
        ),
        pytest.param(
            {"ecrRepositoryPrefix": "a" * 31},
            "ValidationException",
            invalid_value("a" * 31, "ecrRepositoryPrefix", "have length less than or equal to 30"),
            id="prefix-too-long",
        ),
        pytest.param(
            {"ecrRepositoryPrefix": "Quay"},
            "ValidationException",
            invalid_value(
                "Quay",
                "ecrRepositoryPrefix",
                f"satisfy regular expression pattern: {PREFIX_PATTERN}",
            ),
            id="prefix-upper-case",
        ),
        pytest.param(
            {"ecrRepositoryPrefix": "-quay"},
            "ValidationException",
            invalid_value(
                "-quay",
                "ecrRepositoryPrefix",
                f"satisfy regular expression pattern: {PREFIX_PATTERN}",
            ),
            id="prefix-leading-dash",
        ),
        pytest.param(
            {"upstreamRepositoryPrefix": "team//app"},
            "ValidationException",
            invalid_value(
                "team//app",
                "upstreamRepositoryPrefix",
                f"satisfy regular expression pattern: {PREFIX_PATTERN}",
            ),
            id="upstream-prefix-pattern",
        ),
        pytest.param(
            {"upstreamRegistryUrl": None},
            "ValidationException",
            "1 validation error detected: Value null at 'upstreamRegistryUrl' "
            "failed to satisfy constraint: Member must not be null",
            id="url-missing",
        ),
        pytest.param(
            {"upstreamRegistry": "harbor"},
            "ValidationException",
            invalid_value(
                "harbor",
                "upstreamRegistry",
                "satisfy enum value set: [ecr, ecr-public, quay, k8s, docker-hub, "
                "github-container-registry, azure-container-registry, "
                "gitlab-container-registry, chainguard]",
            ),
            id="unknown-kind",
        ),
        pytest.param(
            {"registryId": "12345"},
            "ValidationException",
            invalid_value("12345", "registryId", "satisfy regular expression pattern: [0-9]{12}"),
            id="registry-id-pattern",
        ),
        pytest.param(
            {
                "upstreamRegistryUrl": "registry-1.docker.io",
                "credentialArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:docker-hub",
            },
            "ValidationException",
            invalid_value(
                f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:docker-hub",
                "credentialArn",
                f"satisfy regular expression pattern: {CREDENTIAL_ARN_PATTERN}",
            ),
            id="secret-not-named-ecr-pullthroughcache",
        ),
        pytest.param(
            {"upstreamRegistryUrl": "harbor.example.com"},
            "UnsupportedUpstreamRegistryException",
            "The upstream registry URL harbor.example.com is invalid. "
            "Specify a valid upstream registry URL and try again",
            id="unknown-url",
        ),
        pytest.param(
            {"upstreamRegistry": "quay", "upstreamRegistryUrl": "ghcr.io"},
            "UnsupportedUpstreamRegistryException",
            "The upstream registry URL ghcr.io is invalid. "
            "Specify a valid upstream registry URL and try again",
            id="url-of-another-kind",
        ),
        pytest.param(
            {"upstreamRegistry": "azure-container-registry", "upstreamRegistryUrl": "x.azure.com"},
            "UnsupportedUpstreamRegistryException",
            "The upstream registry URL x.azure.com is invalid. "
            "Specify a valid upstream registry URL and try again",
            id="azure-url-not-azurecr-io",
        ),
        pytest.param(
            {"upstreamRegistry": "ecr", "upstreamRegistryUrl": "ecr.eu-west-1.amazonaws.com"},
            "UnsupportedUpstreamRegistryException",
            "The upstream registry URL ecr.eu-west-1.amazonaws.com is invalid. "
            "Specify a valid upstream registry URL and try again",
            id="ecr-url-without-account",
        ),
        pytest.param(
            {"upstreamRegistryUrl": "registry-1.docker.io"},
            "UnsupportedUpstreamRegistryException",
            "The specified upstream registry requires authentication. "
            "Specify a valid Secrets Manager ARN",
            id="docker-hub-without-credential",
        ),
        pytest.param(
            {"credentialArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{SECRET_NAME}"},
            "InvalidParameterException",
            "Invalid parameter at 'credentialArn' failed to satisfy constraint: "
            "'The upstream registry quay does not use a credential'",
            id="credential-for-unauthenticated-kind",
        ),
        pytest.param(
            {"customRoleArn": ROLE_ARN},
            "InvalidParameterException",
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
            "'The upstream registry quay does not use a custom role'",
            id="role-for-non-ecr-kind",
        ),
        pytest.param(
            {"upstreamRegistry": "ecr", "upstreamRegistryUrl": OTHER_ACCOUNT_ECR},
            "InvalidParameterException",
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
            "'A custom role is required to cache from the ECR registry of another account'",
            id="cross-account-ecr-without-role",
        ),
        pytest.param(
            {
                "upstreamRegistry": "ecr",
                "upstreamRegistryUrl": OTHER_ACCOUNT_ECR,
                "customRoleArn": f"arn:aws:iam::{OTHER_ACCOUNT}:role/ecr-pull-through-cache",
            },
            "InvalidParameterException",
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
            f"'The role must be an IAM role in the account {ACCOUNT} of the registry'",
            id="role-in-another-account",
        ),
    ],
)
def test_create_rejects_bad_input(
    unchecked_ecr: Any, changes: dict[str, Any], code: str, message: str
) -> None:
    # Given a valid Quay rule changed into bad input
    request = {**QUAY_RULE, **changes}
    request = {key: value for key, value in request.items() if value is not None}

    # When it is created
    with pytest.raises(ClientError) as raised:
        unchecked_ecr.create_pull_through_cache_rule(**request)

    # Then it fails with the API's error and creates nothing
    assert error_of(raised) == (code, message)
    assert described_rules(unchecked_ecr) == {}


def test_create_reports_every_broken_constraint(unchecked_ecr: Any) -> None:
    # When a request breaks two constraints of the model
    with pytest.raises(ClientError) as raised:
        unchecked_ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="Q", upstreamRegistryUrl="quay.io"
        )

    # Then one ValidationException lists both
    assert error_of(raised) == (
        "ValidationException",
        "2 validation errors detected: "
        "Value 'Q' at 'ecrRepositoryPrefix' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2; "
        "Value 'Q' at 'ecrRepositoryPrefix' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {PREFIX_PATTERN}",
    )


# DescribePullThroughCacheRules


def test_describe_filters_by_prefix(ecr: Any) -> None:
    # Given rules for quay and k8s
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="k8s", upstreamRegistryUrl="registry.k8s.io"
    )

    # When Describe asks for k8s only
    rules = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["k8s"])

    # Then only k8s comes back
    assert [rule["ecrRepositoryPrefix"] for rule in rules["pullThroughCacheRules"]] == ["k8s"]
    assert "nextToken" not in rules


def test_describe_of_an_unknown_prefix_raises_not_found(ecr: Any) -> None:
    # Given a rule for quay
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")

    # When Describe asks for quay and a prefix without a rule
    with pytest.raises(ClientError) as raised:
        ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["quay", "ghcr"])

    # Then it fails naming the missing prefix
    assert error_of(raised) == (
        "PullThroughCacheRuleNotFoundException",
        f"The pull through cache rule with prefix 'ghcr' does not exist "
        f"in the registry with id '{ACCOUNT}'",
    )


def test_describe_pages_with_max_results_and_next_token(ecr: Any) -> None:
    # Given five rules
    prefixes = [f"quay-{number}" for number in range(5)]
    for prefix in prefixes:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix=prefix, upstreamRegistryUrl="quay.io"
        )

    # When they are read two at a time
    pages = []
    request: dict[str, Any] = {"maxResults": 2}
    while True:
        page = ecr.describe_pull_through_cache_rules(**request)
        pages.append([rule["ecrRepositoryPrefix"] for rule in page["pullThroughCacheRules"]])
        if "nextToken" not in page:
            break
        request["nextToken"] = page["nextToken"]

    # Then three pages hold every rule once, and boto3's paginator sees the same
    assert pages == [prefixes[0:2], prefixes[2:4], prefixes[4:5]]
    paginator = ecr.get_paginator("describe_pull_through_cache_rules")
    paged = paginator.paginate(PaginationConfig={"PageSize": 2}).build_full_result()
    assert [rule["ecrRepositoryPrefix"] for rule in paged["pullThroughCacheRules"]] == prefixes


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        pytest.param(
            {"maxResults": 0},
            "ValidationException",
            "1 validation error detected: Value '0' at 'maxResults' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1",
            id="max-results-0",
        ),
        pytest.param(
            {"maxResults": 1001},
            "ValidationException",
            "1 validation error detected: Value '1001' at 'maxResults' failed to satisfy "
            "constraint: Member must have value less than or equal to 1000",
            id="max-results-1001",
        ),
        pytest.param(
            {"ecrRepositoryPrefixes": ["quay", "Q!"]},
            "ValidationException",
            invalid_value(
                "Q!",
                "ecrRepositoryPrefixes.2.member",
                f"satisfy regular expression pattern: {PREFIX_PATTERN}",
            ),
            id="prefix-in-filter",
        ),
        pytest.param(
            {"nextToken": "not-a-token"},
            "InvalidParameterException",
            "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid token'",
            id="next-token",
        ),
    ],
)
def test_describe_rejects_bad_input(
    unchecked_ecr: Any, request_: dict[str, Any], code: str, message: str
) -> None:
    # Given a rule
    unchecked_ecr.create_pull_through_cache_rule(**QUAY_RULE)

    # When Describe gets bad input
    with pytest.raises(ClientError) as raised:
        unchecked_ecr.describe_pull_through_cache_rules(**request_)

    # Then it fails with the API's error
    assert error_of(raised) == (code, message)


# UpdatePullThroughCacheRule


def test_update_changes_the_credential_and_the_update_time(
    ecr: Any, secretsmanager: Any, secret_arn: str
) -> None:
    # Given a Docker Hub rule and a second secret
    create_docker_hub_rule(ecr, secret_arn)
    created = described_rules(ecr)["docker-hub"]
    new_arn = secretsmanager.create_secret(
        Name="ecr-pullthroughcache/docker-hub-2", SecretString=GOOD_CREDENTIALS
    )["ARN"]

    # When the rule is updated to the second secret
    updated = ecr.update_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", credentialArn=new_arn
    )

    # Then Describe shows the new secret, a later update time and the same upstream
    rule = described_rules(ecr)["docker-hub"]
    assert rule["credentialArn"] == updated["credentialArn"] == new_arn
    assert rule["updatedAt"] == updated["updatedAt"] >= created["createdAt"]
    assert rule["createdAt"] == created["createdAt"]
    assert rule["upstreamRegistryUrl"] == "registry-1.docker.io"
    assert updated["upstreamRepositoryPrefix"] == "ROOT"


def test_update_changes_the_custom_role_of_an_ecr_rule(ecr: Any) -> None:
    # Given a cross-account ECR rule
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="central",
        upstreamRegistry="ecr",
        upstreamRegistryUrl=OTHER_ACCOUNT_ECR,
        customRoleArn=ROLE_ARN,
    )
    new_role = f"arn:aws:iam::{ACCOUNT}:role/ecr-pull-through-cache-2"

    # When its role is updated
    ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="central", customRoleArn=new_role)

    # Then Describe shows the new role
    assert described_rules(ecr)["central"]["customRoleArn"] == new_role


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        pytest.param(
            {"ecrRepositoryPrefix": "ghcr", "credentialArn": "{secret_arn}"},
            "PullThroughCacheRuleNotFoundException",
            f"The pull through cache rule with prefix 'ghcr' does not exist "
            f"in the registry with id '{ACCOUNT}'",
            id="no-such-rule",
        ),
        pytest.param(
            {
                "ecrRepositoryPrefix": "docker-hub",
                "credentialArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
                "ecr-pullthroughcache/missing",
            },
            "SecretNotFoundException",
            "The ARN of the secret specified in the pull through cache rule was not found",
            id="no-such-secret",
        ),
        pytest.param(
            {"ecrRepositoryPrefix": "docker-hub"},
            "InvalidParameterException",
            "Invalid parameter at 'credentialArn' failed to satisfy constraint: "
            "'Specify a credentialArn or a customRoleArn to update'",
            id="nothing-to-change",
        ),
        pytest.param(
            {"ecrRepositoryPrefix": "docker-hub", "customRoleArn": ROLE_ARN},
            "InvalidParameterException",
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
            "'The upstream registry docker-hub does not use a custom role'",
            id="role-for-docker-hub",
        ),
        pytest.param(
            {"ecrRepositoryPrefix": "docker-hub", "credentialArn": "arn:aws:secretsmanager:x"},
            "ValidationException",
            "2 validation errors detected: Value 'arn:aws:secretsmanager:x' at 'credentialArn' "
            "failed to satisfy constraint: Member must have length greater than or equal to 50; "
            "Value 'arn:aws:secretsmanager:x' at 'credentialArn' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {CREDENTIAL_ARN_PATTERN}",
            id="credential-arn-model",
        ),
    ],
)
def test_update_rejects_bad_input(
    unchecked_ecr: Any, secret_arn: str, request_: dict[str, Any], code: str, message: str
) -> None:
    # Given a Docker Hub rule
    create_docker_hub_rule(unchecked_ecr, secret_arn)
    request = {key: value.format(secret_arn=secret_arn) for key, value in request_.items()}

    # When it is updated with bad input
    with pytest.raises(ClientError) as raised:
        unchecked_ecr.update_pull_through_cache_rule(**request)

    # Then it fails with the API's error and the rule keeps its secret
    assert error_of(raised) == (code, message)
    assert described_rules(unchecked_ecr)["docker-hub"]["credentialArn"] == secret_arn


# DeletePullThroughCacheRule


def test_delete_returns_the_rule_and_removes_it(ecr: Any, secret_arn: str) -> None:
    # Given Docker Hub and Quay rules
    create_docker_hub_rule(ecr, secret_arn)
    ecr.create_pull_through_cache_rule(**QUAY_RULE)

    # When the Docker Hub rule is deleted
    deleted = ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")

    # Then the response carries its fields and only Quay is left
    assert deleted["ecrRepositoryPrefix"] == "docker-hub"
    assert deleted["upstreamRegistryUrl"] == "registry-1.docker.io"
    assert deleted["credentialArn"] == secret_arn
    assert deleted["registryId"] == ACCOUNT
    assert "createdAt" in deleted
    assert list(described_rules(ecr)) == ["quay"]


def test_delete_of_an_unknown_prefix_raises_not_found(ecr: Any) -> None:
    # Given a rule that was deleted
    ecr.create_pull_through_cache_rule(**QUAY_RULE)
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="quay")

    # When it is deleted again
    with pytest.raises(ClientError) as raised:
        ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="quay")

    # Then it is not found
    assert error_of(raised) == (
        "PullThroughCacheRuleNotFoundException",
        f"The pull through cache rule with prefix 'quay' does not exist "
        f"in the registry with id '{ACCOUNT}'",
    )


# ValidatePullThroughCacheRule


def test_validate_accepts_a_secret_with_username_and_access_token(
    ecr: Any, secret_arn: str
) -> None:
    # Given a Docker Hub rule whose secret holds username and accessToken
    create_docker_hub_rule(ecr, secret_arn)

    # When it is validated
    result = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")

    # Then it is valid, with no failure
    assert result["isValid"] is True
    assert "failure" not in result
    assert result["credentialArn"] == secret_arn
    assert result["upstreamRegistryUrl"] == "registry-1.docker.io"


@pytest.mark.parametrize(
    ("change_secret", "failure"),
    [
        pytest.param(
            lambda secrets, arn: secrets.put_secret_value(
                SecretId=arn, SecretString=json.dumps({"username": "cache-pilot"})
            ),
            "The secret {arn} is not valid: its value must be a JSON object "
            "with the keys 'username' and 'accessToken'",
            id="no-access-token",
        ),
        pytest.param(
            lambda secrets, arn: secrets.put_secret_value(SecretId=arn, SecretString="hunter2"),
            "The secret {arn} is not valid: its value must be a JSON object "
            "with the keys 'username' and 'accessToken'",
            id="not-json",
        ),
        pytest.param(
            lambda secrets, arn: secrets.delete_secret(
                SecretId=arn, ForceDeleteWithoutRecovery=True
            ),
            "The ARN of the secret specified in the pull through cache rule was not found",
            id="secret-deleted",
        ),
    ],
)
def test_validate_reports_a_secret_that_cannot_log_in(
    ecr: Any, secretsmanager: Any, secret_arn: str, change_secret: Any, failure: str
) -> None:
    # Given a Docker Hub rule whose secret then changes
    create_docker_hub_rule(ecr, secret_arn)
    change_secret(secretsmanager, secret_arn)

    # When it is validated
    result = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")

    # Then it is not valid and says why
    assert result["isValid"] is False
    assert result["failure"] == failure.format(arn=secret_arn)


def test_validate_accepts_an_unauthenticated_rule(ecr: Any) -> None:
    # Given a Quay rule
    ecr.create_pull_through_cache_rule(**QUAY_RULE)

    # When it is validated
    result = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="quay")

    # Then it is valid
    assert result["isValid"] is True
    assert result["ecrRepositoryPrefix"] == "quay"


def test_validate_of_an_unknown_prefix_raises_not_found(ecr: Any) -> None:
    with pytest.raises(ClientError) as raised:
        ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="quay")

    assert error_of(raised)[0] == "PullThroughCacheRuleNotFoundException"


# Repository creation templates


def described_templates(ecr: Any, **request: Any) -> dict[str, dict[str, Any]]:
    templates = ecr.describe_repository_creation_templates(**request)
    return {template["prefix"]: template for template in templates["repositoryCreationTemplates"]}


def test_create_template_is_described_with_defaults(ecr: Any) -> None:
    # When a template for the Docker Hub rule's repositories is created
    created = ecr.create_repository_creation_template(
        prefix="docker-hub",
        appliedFor=["PULL_THROUGH_CACHE"],
        description="Cached Docker Hub images",
        lifecyclePolicy=EXPIRE_UNTAGGED,
        resourceTags=[{"Key": "managed-by", "Value": "cache-pilot"}],
    )

    # Then Describe returns it with MUTABLE tags and AES256 encryption
    assert created["registryId"] == ACCOUNT
    template = described_templates(ecr)["docker-hub"]
    assert template == created["repositoryCreationTemplate"]
    assert template["appliedFor"] == ["PULL_THROUGH_CACHE"]
    assert template["imageTagMutability"] == "MUTABLE"
    assert template["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert template["lifecyclePolicy"] == EXPIRE_UNTAGGED
    assert template["resourceTags"] == [{"Key": "managed-by", "Value": "cache-pilot"}]
    assert template["createdAt"] == template["updatedAt"]


def test_create_template_rejects_a_prefix_that_has_one(ecr: Any) -> None:
    # Given a template for docker-hub
    ecr.create_repository_creation_template(prefix="docker-hub", appliedFor=["PULL_THROUGH_CACHE"])

    # When a second one is created for the same prefix
    with pytest.raises(ClientError) as raised:
        ecr.create_repository_creation_template(prefix="docker-hub", appliedFor=["REPLICATION"])

    # Then it fails and the first is unchanged
    assert error_of(raised) == (
        "TemplateAlreadyExistsException",
        "The repository creation template with prefix 'docker-hub' already exists "
        f"in the registry with id '{ACCOUNT}'",
    )
    assert described_templates(ecr)["docker-hub"]["appliedFor"] == ["PULL_THROUGH_CACHE"]


@pytest.mark.parametrize(
    ("changes", "code", "message"),
    [
        pytest.param(
            {"prefix": "Docker"},
            "ValidationException",
            invalid_value(
                "Docker", "prefix", f"satisfy regular expression pattern: {PREFIX_PATTERN}"
            ),
            id="prefix-pattern",
        ),
        pytest.param(
            {"appliedFor": ["PULL_THROUGH_CACHE", "ON_PULL"]},
            "ValidationException",
            invalid_value(
                "ON_PULL",
                "appliedFor.2.member",
                "satisfy enum value set: [REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH]",
            ),
            id="applied-for-value",
        ),
        pytest.param(
            {"appliedFor": None},
            "ValidationException",
            "1 validation error detected: Value null at 'appliedFor' "
            "failed to satisfy constraint: Member must not be null",
            id="applied-for-missing",
        ),
        pytest.param(
            {"imageTagMutability": "SOMETIMES"},
            "ValidationException",
            invalid_value(
                "SOMETIMES",
                "imageTagMutability",
                "satisfy enum value set: "
                "[MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]",
            ),
            id="mutability-value",
        ),
        pytest.param(
            {"description": "d" * 257},
            "ValidationException",
            invalid_value("d" * 257, "description", "have length less than or equal to 256"),
            id="description-too-long",
        ),
        pytest.param(
            {"encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "my-key"}},
            "ValidationException",
            invalid_value(
                "my-key",
                "encryptionConfiguration.kmsKey",
                "satisfy regular expression pattern: "
                r"^$|arn:aws[a-z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:key\/[a-z0-9-]+",
            ),
            id="kms-key-pattern",
        ),
        pytest.param(
            {"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"},
            "InvalidParameterException",
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy "
            "constraint: 'ImageTagMutabilityExclusionFilters can't be null when "
            "imageTagMutability is set as IMMUTABLE_WITH_EXCLUSION'",
            id="exclusion-mutability-without-filters",
        ),
        pytest.param(
            {"lifecyclePolicy": "{}"},
            "InvalidParameterException",
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
            "'Lifecycle policy validation failure: object has missing required properties "
            '(["rules"])\'',
            id="lifecycle-policy",
        ),
        pytest.param(
            {"repositoryPolicy": "not json"},
            "InvalidParameterException",
            "Invalid parameter at 'repositoryPolicy' failed to satisfy constraint: "
            "'Invalid repository policy provided'",
            id="repository-policy",
        ),
        pytest.param(
            {"customRoleArn": f"arn:aws:iam::{OTHER_ACCOUNT}:role/ecr-templates"},
            "InvalidParameterException",
            "Invalid parameter at 'customRoleArn' failed to satisfy constraint: "
            f"'The role must be an IAM role in the account {ACCOUNT} of the registry'",
            id="role-in-another-account",
        ),
    ],
)
def test_create_template_rejects_bad_input(
    unchecked_ecr: Any, changes: dict[str, Any], code: str, message: str
) -> None:
    # Given a valid template changed into bad input
    request = {"prefix": "docker-hub", "appliedFor": ["PULL_THROUGH_CACHE"], **changes}
    request = {key: value for key, value in request.items() if value is not None}

    # When it is created
    with pytest.raises(ClientError) as raised:
        unchecked_ecr.create_repository_creation_template(**request)

    # Then it fails with the API's error and creates nothing
    assert error_of(raised) == (code, message)
    assert described_templates(unchecked_ecr) == {}


def test_describe_templates_filters_and_pages(ecr: Any) -> None:
    # Given three templates
    for prefix in ("docker-hub", "ghcr", "quay"):
        ecr.create_repository_creation_template(prefix=prefix, appliedFor=["PULL_THROUGH_CACHE"])

    # When Describe filters on two prefixes (one unknown) and pages one at a time
    filtered = described_templates(ecr, prefixes=["quay", "k8s", "docker-hub/"])
    first = ecr.describe_repository_creation_templates(maxResults=1)
    rest = ecr.describe_repository_creation_templates(maxResults=2, nextToken=first["nextToken"])

    # Then the filter returns the known ones and the pages hold each template once
    assert sorted(filtered) == ["docker-hub", "quay"]
    paged = first["repositoryCreationTemplates"] + rest["repositoryCreationTemplates"]
    assert [template["prefix"] for template in paged] == ["docker-hub", "ghcr", "quay"]
    assert "nextToken" not in rest
    assert rest["registryId"] == ACCOUNT


def test_update_template_changes_only_the_given_fields(ecr: Any) -> None:
    # Given a template with a description and a lifecycle policy
    ecr.create_repository_creation_template(
        prefix="docker-hub",
        appliedFor=["PULL_THROUGH_CACHE"],
        description="Cached Docker Hub images",
        lifecyclePolicy=EXPIRE_UNTAGGED,
    )

    # When its mutability is updated with exclusion filters
    updated = ecr.update_repository_creation_template(
        prefix="docker-hub",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
    )

    # Then Describe shows the new mutability and the untouched fields
    template = described_templates(ecr)["docker-hub"]
    assert template == updated["repositoryCreationTemplate"]
    assert template["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert template["imageTagMutabilityExclusionFilters"] == [
        {"filterType": "WILDCARD", "filter": "latest"}
    ]
    assert template["description"] == "Cached Docker Hub images"
    assert template["lifecyclePolicy"] == EXPIRE_UNTAGGED
    assert template["updatedAt"] >= template["createdAt"]


def test_delete_template_returns_it_and_removes_it(ecr: Any) -> None:
    # Given a template
    ecr.create_repository_creation_template(prefix="docker-hub", appliedFor=["PULL_THROUGH_CACHE"])

    # When it is deleted
    deleted = ecr.delete_repository_creation_template(prefix="docker-hub")

    # Then the response carries it and Describe has none left
    assert deleted["registryId"] == ACCOUNT
    assert deleted["repositoryCreationTemplate"]["prefix"] == "docker-hub"
    assert described_templates(ecr) == {}


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(
            lambda ecr: ecr.update_repository_creation_template(prefix="ghcr", description="x"),
            id="update",
        ),
        pytest.param(
            lambda ecr: ecr.delete_repository_creation_template(prefix="ghcr"), id="delete"
        ),
    ],
)
def test_update_or_delete_of_an_unknown_template_raises_not_found(ecr: Any, operation: Any) -> None:
    # When a template that does not exist is updated or deleted
    with pytest.raises(ClientError) as raised:
        operation(ecr)

    # Then it is not found
    assert error_of(raised) == (
        "TemplateNotFoundException",
        "The repository creation template with prefix 'ghcr' does not exist "
        f"in the registry with id '{ACCOUNT}'",
    )


# The helper, install() and moto's reset


def test_get_pull_through_cache_rules_reads_the_backend(ecr: Any, secret_arn: str) -> None:
    # Given a Docker Hub rule created through the API, named with a trailing "/"
    create_docker_hub_rule(ecr, secret_arn, prefix="docker-hub/")

    # When the emulation reads the rules without HTTP
    rules = get_pull_through_cache_rules(ACCOUNT, REGION)

    # Then it gets the rule object under the prefix without "/", and nothing in another Region
    assert list(rules) == ["docker-hub"]
    rule = rules["docker-hub"]
    assert isinstance(rule, PullThroughCacheRule)
    assert (rule.upstream_registry, rule.credential_arn) == ("docker-hub", secret_arn)
    assert get_pull_through_cache_rules(ACCOUNT, OTHER_REGION) == {}


def test_install_is_idempotent(ecr: Any) -> None:
    # Given install() already ran
    handler = ECRBackend.create_pull_through_cache_rule  # type: ignore[attr-defined]

    # When it runs again
    install()
    install()

    # Then the members are the same and the operations still work
    assert ECRBackend.create_pull_through_cache_rule is handler  # type: ignore[attr-defined]
    ecr.create_pull_through_cache_rule(**QUAY_RULE)
    assert list(described_rules(ecr)) == ["quay"]


def test_moto_reset_removes_rules_and_templates(ecr: Any) -> None:
    # Given a rule and a template
    ecr.create_pull_through_cache_rule(**QUAY_RULE)
    ecr.create_repository_creation_template(prefix="quay", appliedFor=["PULL_THROUGH_CACHE"])

    # When moto is reset through its API
    requests.post("http://motoapi.amazonaws.com/moto-api/reset", timeout=5)

    # Then both are gone
    assert described_rules(ecr) == {}
    assert described_templates(ecr) == {}
    assert get_pull_through_cache_rules(ACCOUNT, REGION) == {}


# Server mode


@pytest.fixture
def moto_server() -> Iterator[str]:
    install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=5)
    yield endpoint
    requests.post(f"{endpoint}/moto-api/reset", timeout=5)
    server.stop()


def test_operations_work_through_threaded_moto_server(moto_server: str) -> None:
    # Given clients pointed at a moto server, with no retry that could hide a 500
    config = Config(retries={"max_attempts": 1, "mode": "standard"})
    ecr = boto3.client("ecr", region_name=REGION, endpoint_url=moto_server, config=config)
    secretsmanager = boto3.client(
        "secretsmanager", region_name=REGION, endpoint_url=moto_server, config=config
    )
    secret_arn = secretsmanager.create_secret(Name=SECRET_NAME, SecretString=GOOD_CREDENTIALS)[
        "ARN"
    ]

    # When rules and a template are created, validated, listed and deleted over HTTP
    create_docker_hub_rule(ecr, secret_arn)
    ecr.create_pull_through_cache_rule(**QUAY_RULE)
    ecr.create_repository_creation_template(prefix="docker-hub", appliedFor=["PULL_THROUGH_CACHE"])
    validation = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="quay")
    with pytest.raises(ClientError) as raised:
        ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["quay"])

    # Then the server answers like the in-process mock, errors included
    assert validation["isValid"] is True
    assert list(described_rules(ecr)) == ["docker-hub"]
    assert list(described_templates(ecr)) == ["docker-hub"]
    assert error_of(raised)[0] == "PullThroughCacheRuleNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert list(get_pull_through_cache_rules(ACCOUNT, REGION)) == ["docker-hub"]


def test_image_digest_is_the_sha256_of_its_manifest(ecr: Any) -> None:
    # Given an image index pushed to a repository
    ecr.create_repository(repositoryName="k8s/pause")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }
    )
    # When ECR stores it
    pushed = ecr.put_image(repositoryName="k8s/pause", imageManifest=index, imageTag="3.10")
    # Then its digest is the manifest's sha256, as a registry computes it
    expected = "sha256:" + hashlib.sha256(index.encode()).hexdigest()
    assert pushed["image"]["imageId"]["imageDigest"] == expected
    assert (
        ecr.describe_images(repositoryName="k8s/pause")["imageDetails"][0]["imageDigest"]
        == expected
    )
