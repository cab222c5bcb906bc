"""Plan computation: what a sync would change, from the configuration and what ECR and the
table hold. Pure: no AWS involved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cache_pilot.aws.rules import EcrRule
from cache_pilot.config import CacheConfig, ConfigSource, ValidationContext, load_config
from cache_pilot.state import ImageRecord, ImageStatus, RuleRecord
from cache_pilot.sync import ImageAction, RuleAction, plan_sync

T0 = datetime(2026, 11, 1, tzinfo=UTC)
T1 = datetime(2026, 11, 2, tzinfo=UTC)
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ecr-pullthroughcache/hub-AbC123"


def config(text: str) -> CacheConfig:
    return load_config(
        [ConfigSource("/cache-pilot/config", "String", text)],
        ValidationContext("123456789012", "eu-west-1"),
    )


def held(
    prefix: str, url: str, registry: str, credential: str | None = None, created: datetime = T0
) -> EcrRule:
    return EcrRule(
        prefix=prefix,
        upstream_registry=registry,
        upstream_url=url,
        credential_arn=credential,
        created_at=created,
    )


def record(rule: EcrRule) -> RuleRecord:
    return RuleRecord(
        prefix=rule.prefix,
        upstream_registry=rule.upstream_registry or "",
        upstream_url=rule.upstream_url,
        credential_arn=rule.credential_arn,
        created_at=rule.created_at,
        recorded_at=T0,
    )


def image_record(reference: str, status: ImageStatus, max_age: int = 7 * 86400) -> ImageRecord:
    repository, _, tag = reference.rpartition(":")
    return ImageRecord(
        reference=reference,
        repository=repository,
        tag=tag,
        rule_prefix=repository.split("/")[0],
        platforms=("linux/amd64",),
        max_age_seconds=max_age,
        status=status,
        listed_at=T0,
        updated_at=T0,
    )


K8S = held("k8s", "registry.k8s.io", "k8s")
QUAY_AT_K8S = held("k8s", "quay.io", "quay")
HUB = held("hub", "registry-1.docker.io", "docker-hub", SECRET_ARN)
HUB_OTHER_SECRET = held(
    "hub", "registry-1.docker.io", "docker-hub", SECRET_ARN.replace("/hub-", "/old-")
)

RULE_CASES = [
    pytest.param(
        "rules: [{prefix: k8s, upstream: k8s}]",
        {},
        {},
        [(RuleAction.CREATE, "k8s")],
        [],
        id="create when missing",
    ),
    pytest.param(
        "rules: [{prefix: k8s, upstream: k8s}]",
        {"k8s": K8S},
        {"k8s": record(K8S)},
        [],
        [],
        id="nothing when equal",
    ),
    pytest.param(
        "rules: [{prefix: k8s, upstream: k8s}]",
        {"k8s": K8S},
        {},
        [],
        ["k8s"],
        id="conflict when not ours",
    ),
    pytest.param(
        "rules: [{prefix: k8s, upstream: k8s}]",
        {"k8s": QUAY_AT_K8S},
        {"k8s": record(QUAY_AT_K8S)},
        [(RuleAction.REPLACE, "k8s")],
        [],
        id="replace when the upstream changes",
    ),
    pytest.param(
        "rules: [{prefix: hub, upstream: docker-hub, credential: ecr-pullthroughcache/hub}]",
        {"hub": HUB},
        {"hub": record(HUB)},
        [],
        [],
        id="a secret name matches its full ARN",
    ),
    pytest.param(
        "rules: [{prefix: hub, upstream: docker-hub, credential: ecr-pullthroughcache/hub}]",
        {"hub": HUB_OTHER_SECRET},
        {"hub": record(HUB_OTHER_SECRET)},
        [(RuleAction.UPDATE, "hub")],
        [],
        id="update when the credential changes",
    ),
    pytest.param(
        "rules: []",
        {"k8s": K8S},
        {"k8s": record(K8S)},
        [(RuleAction.DELETE, "k8s")],
        [],
        id="delete ours",
    ),
    pytest.param("rules: []", {"k8s": K8S}, {}, [], [], id="never delete a foreign rule"),
    pytest.param(
        "rules: []",
        {},
        {"k8s": record(K8S)},
        [(RuleAction.FORGET, "k8s")],
        [],
        id="forget ours already gone",
    ),
    pytest.param(
        "rules: []",
        {"k8s": held("k8s", "registry.k8s.io", "k8s", created=T1)},
        {"k8s": record(K8S)},
        [(RuleAction.FORGET, "k8s")],
        [],
        id="a rule someone recreated is theirs",
    ),
    pytest.param(
        "rules: [{prefix: k8s, upstream: quay}]",
        {"k8s": held("k8s", "registry.k8s.io", "k8s", created=T1)},
        {"k8s": record(K8S)},
        [],
        ["k8s"],
        id="a recreated rule is a conflict, not replaced",
    ),
]


@pytest.mark.parametrize(("text", "held_rules", "records", "changes", "conflicts"), RULE_CASES)
def test_rule_plan(
    text: str,
    held_rules: dict[str, EcrRule],
    records: dict[str, RuleRecord],
    changes: list[tuple[RuleAction, str]],
    conflicts: list[str],
) -> None:
    plan = plan_sync(config(text), held_rules, records, {})
    assert [(change.action, change.prefix) for change in plan.rule_changes] == changes
    assert [conflict.prefix for conflict in plan.conflicts] == conflicts


def test_image_plan_lists_relists_updates_and_retires() -> None:
    # Given the table knows four images in various states
    records = {
        "k8s/pause:3.10": image_record("k8s/pause:3.10", ImageStatus.WARM),
        "k8s/coredns:1.11": image_record("k8s/coredns:1.11", ImageStatus.RETIRED),
        "k8s/etcd:3.5": image_record("k8s/etcd:3.5", ImageStatus.WARM, max_age=86400),
        "k8s/old:1": image_record("k8s/old:1", ImageStatus.FAILED),
        "k8s/older:1": image_record("k8s/older:1", ImageStatus.RETIRED),
    }
    text = "rules: [{prefix: k8s, upstream: k8s}]\nimages: [k8s/pause:3.10, k8s/coredns:1.11, k8s/etcd:3.5, k8s/new:1]"
    # When a sync is planned
    plan = plan_sync(config(text), {"k8s": K8S}, {"k8s": record(K8S)}, records)
    # Then only what differs changes
    assert [(change.action, change.reference) for change in plan.image_changes] == [
        (ImageAction.RELIST, "k8s/coredns:1.11"),
        (ImageAction.UPDATE, "k8s/etcd:3.5"),
        (ImageAction.LIST, "k8s/new:1"),
        (ImageAction.RETIRE, "k8s/old:1"),
    ]


def test_unchanged_world_plans_nothing() -> None:
    text = "rules: [{prefix: k8s, upstream: k8s}]\nimages: [k8s/pause:3.10]"
    records = {"k8s/pause:3.10": image_record("k8s/pause:3.10", ImageStatus.WARM)}
    plan = plan_sync(config(text), {"k8s": K8S}, {"k8s": record(K8S)}, records)
    assert plan.is_empty
