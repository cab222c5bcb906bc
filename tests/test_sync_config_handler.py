"""sync_config end to end against moto with the pull-through cache emulation: the handler, its
environment and its code as template.yaml defines them, on the sample events of events/."""

from __future__ import annotations

import json
import textwrap
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import ImageSettlement, StateTable
from cache_pilot.state import ImageStatus, utc_now
from cache_pilot_local.functions import LocalFunction
from cache_pilot_local.template import StackTemplate
from tests.conftest import CONFIG_PATH, DESIGN_EXAMPLE, TABLE_NAME, sample_event

CONFIG = CONFIG_PATH + "config"
CREATE = "ssm-parameter-create.json"
UPDATE = "ssm-parameter-update.json"
SCHEDULE = "schedule-drift-repair.json"
NOW = utc_now()


@pytest.fixture
def sync_config(stack: StackTemplate, state_table: StateTable) -> LocalFunction:
    return LocalFunction.from_template(stack, "SyncConfigFunction", {"StateTable": TABLE_NAME})


@pytest.fixture
def hub_secret_arn(clients: AwsClients) -> str:
    secret = clients.secretsmanager.create_secret(
        Name="ecr-pullthroughcache/docker-hub",
        SecretString=json.dumps({"username": "platform-bot", "accessToken": "dckr_pat_example"}),
    )
    return secret["ARN"]


def put_config(clients: AwsClients, text: str, name: str = CONFIG) -> None:
    clients.ssm.put_parameter(Name=name, Value=textwrap.dedent(text), Type="String", Overwrite=True)


def ecr_rules(clients: AwsClients) -> dict[str, dict[str, Any]]:
    rules = clients.ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    return {rule["ecrRepositoryPrefix"]: dict(rule) for rule in rules}


def rule_urls(clients: AwsClients) -> dict[str, str]:
    return {prefix: rule["upstreamRegistryUrl"] for prefix, rule in ecr_rules(clients).items()}


def statuses(table: StateTable) -> dict[str, str]:
    return {reference: record.status.value for reference, record in table.images().items()}


def snapshot(clients: AwsClients, table: StateTable) -> tuple[object, ...]:
    return (ecr_rules(clients), table.images(), table.owned_rules())


def test_first_sync_creates_rules_and_pending_items(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction, hub_secret_arn: str
) -> None:
    # Given the design's example configuration in Parameter Store
    put_config(clients, DESIGN_EXAMPLE)
    # When the parameter's Create event reaches sync_config
    result = sync_config.invoke(sample_event(CREATE))
    # Then ECR has the three rules, the authenticated one with the secret's full ARN
    assert result["status"] == "applied"
    rules = ecr_rules(clients)
    assert {
        prefix: (rule["upstreamRegistry"], rule["upstreamRegistryUrl"])
        for prefix, rule in rules.items()
    } == {
        "ecr-public": ("ecr-public", "public.ecr.aws"),
        "docker-hub": ("docker-hub", "registry-1.docker.io"),
        "k8s": ("k8s", "registry.k8s.io"),
    }
    assert rules["docker-hub"]["credentialArn"] == hub_secret_arn
    # And cache-pilot recorded that it owns them, with ECR's validation of the authenticated one
    owned = state_table.owned_rules()
    assert set(owned) == {"ecr-public", "docker-hub", "k8s"}
    assert owned["k8s"].created_at == rules["k8s"]["createdAt"]
    assert owned["docker-hub"].validation is not None
    assert owned["docker-hub"].validation.is_valid
    assert owned["k8s"].validation is None
    # And every listed image is PENDING with its settings
    images = state_table.images()
    assert statuses(state_table) == {
        "ecr-public/amazonlinux/amazonlinux:latest": "PENDING",
        "docker-hub/library/nginx:1.27": "PENDING",
        "k8s/pause:3.10": "PENDING",
    }
    assert images["k8s/pause:3.10"].platforms == ("linux/amd64", "linux/arm64")
    assert images["k8s/pause:3.10"].max_age_seconds == 3 * 86400
    # And a warm-up was requested for them
    assert (result["images_waiting"], result["warmup_requested"]) == (3, True)


def test_repeated_event_is_a_no_op(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction, hub_secret_arn: str
) -> None:
    # Given a first sync has run
    put_config(clients, DESIGN_EXAMPLE)
    sync_config.invoke(sample_event(CREATE))
    before = snapshot(clients, state_table)
    # When EventBridge delivers the same event again
    result = sync_config.invoke(sample_event(CREATE))
    # Then nothing changes, not even a timestamp
    assert result["status"] == "unchanged"
    assert snapshot(clients, state_table) == before


def test_edit_updates_replaces_deletes_and_retires(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction, hub_secret_arn: str
) -> None:
    # Given a synced configuration
    put_config(clients, DESIGN_EXAMPLE)
    sync_config.invoke(sample_event(CREATE))
    new_secret = clients.secretsmanager.create_secret(
        Name="ecr-pullthroughcache/docker-hub-2",
        SecretString=json.dumps({"username": "platform-bot", "accessToken": "rotated"}),
    )["ARN"]
    # When the user drops ecr-public, points k8s at quay, rotates the Docker Hub secret and
    # swaps an image
    put_config(
        clients,
        """
        rules:
          - prefix: docker-hub
            upstream: docker-hub
            credential: ecr-pullthroughcache/docker-hub-2
          - prefix: k8s
            upstream: quay.io
        images:
          - docker-hub/library/nginx:1.27
          - docker-hub/library/redis:7.4
        """,
    )
    result = sync_config.invoke(sample_event(UPDATE))
    # Then ECR holds exactly the new rules
    assert sorted((c["action"], c["prefix"]) for c in result["rule_changes"]) == [
        ("delete", "ecr-public"),
        ("replace", "k8s"),
        ("update", "docker-hub"),
    ]
    assert rule_urls(clients) == {"docker-hub": "registry-1.docker.io", "k8s": "quay.io"}
    assert ecr_rules(clients)["docker-hub"]["credentialArn"] == new_secret
    assert set(state_table.owned_rules()) == {"docker-hub", "k8s"}
    # And delisted images are RETIRED, the new one PENDING
    assert statuses(state_table) == {
        "ecr-public/amazonlinux/amazonlinux:latest": "RETIRED",
        "docker-hub/library/nginx:1.27": "PENDING",
        "docker-hub/library/redis:7.4": "PENDING",
        "k8s/pause:3.10": "RETIRED",
    }
    # When a retired image is listed again, Then it is PENDING again
    put_config(clients, "rules: [{prefix: k8s, upstream: quay.io}]\nimages: [k8s/pause:3.10]")
    sync_config.invoke(sample_event(UPDATE))
    assert statuses(state_table)["k8s/pause:3.10"] == "PENDING"


def test_foreign_rule_is_reported_and_never_touched(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction
) -> None:
    # Given a rule someone created by hand under a prefix the configuration also uses
    clients.ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io", upstreamRegistry="quay"
    )
    foreign = ecr_rules(clients)["quay"]
    put_config(clients, "rules: [{prefix: quay, upstream: ecr-public}]\nimages: [quay/app:1]")
    # When sync_config runs
    result = sync_config.invoke(sample_event(CREATE))
    # Then the conflict is reported and the rule is exactly as it was
    assert result["conflicts"] == [
        "rule 'quay' was not created by cache-pilot and points at quay.io, not at what the "
        "configuration says; left alone (delete it in ECR to let cache-pilot manage the prefix)"
    ]
    assert ecr_rules(clients)["quay"] == foreign
    assert state_table.owned_rules() == {}
    # When the configuration no longer lists it, Then it is still not deleted
    put_config(clients, "rules: []")
    sync_config.invoke(sample_event(UPDATE))
    assert ecr_rules(clients)["quay"] == foreign


def test_invalid_document_changes_nothing(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction, hub_secret_arn: str
) -> None:
    # Given a synced configuration
    put_config(clients, DESIGN_EXAMPLE)
    sync_config.invoke(sample_event(CREATE))
    before = snapshot(clients, state_table)
    # When the user saves a document with a mistake (and a valid-looking deletion of rules)
    put_config(
        clients, "rules:\n  - {prefix: k8s, upstream: k8s}\nimages:\n  - docker-hub/nginx:1.27\n"
    )
    result = sync_config.invoke(sample_event(UPDATE))
    # Then the error names the parameter, the entry and the fix, and nothing changed
    assert result["status"] == "invalid"
    assert result["problems"] == [
        "/cache-pilot/config: images[0] 'docker-hub/nginx:1.27' (line 4): 'docker-hub/nginx:1.27' "
        "matches no rule's prefix (prefixes: k8s); start it with a rule's prefix, as in "
        "'<prefix>/<repository>:<tag>', or add a rule"
    ]
    assert snapshot(clients, state_table) == before


def test_every_parameter_deleted_deletes_nothing(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction, hub_secret_arn: str
) -> None:
    put_config(clients, DESIGN_EXAMPLE)
    sync_config.invoke(sample_event(CREATE))
    before = snapshot(clients, state_table)
    # When the last parameter under the path is deleted
    clients.ssm.delete_parameter(Name=CONFIG)
    result = sync_config.invoke(sample_event("ssm-parameter-delete.json"))
    # Then nothing is deleted: removing every rule takes 'rules: []'
    assert result["status"] == "absent"
    assert snapshot(clients, state_table) == before


def test_rules_empty_list_removes_only_our_rules(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction, hub_secret_arn: str
) -> None:
    put_config(clients, DESIGN_EXAMPLE)
    sync_config.invoke(sample_event(CREATE))
    clients.ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io"
    )
    put_config(clients, "rules: []")
    sync_config.invoke(sample_event(UPDATE))
    assert rule_urls(clients) == {"quay": "quay.io"}
    assert state_table.owned_rules() == {}
    assert set(statuses(state_table).values()) == {"RETIRED"}


def test_event_outside_the_path_is_ignored(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction
) -> None:
    put_config(clients, "rules: [{prefix: k8s, upstream: k8s}]")
    result = sync_config.invoke(sample_event("ssm-parameter-outside-path.json"))
    assert result == {
        "status": "ignored",
        "reason": "/payments/db-endpoint is not under /cache-pilot/",
    }
    assert ecr_rules(clients) == {}


def test_schedule_repairs_drift(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction, hub_secret_arn: str
) -> None:
    # Given a synced configuration whose k8s rule someone then deleted by hand, and whose
    # Docker Hub rule someone pointed at another secret
    put_config(clients, DESIGN_EXAMPLE)
    sync_config.invoke(sample_event(CREATE))
    clients.ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="k8s")
    other = clients.secretsmanager.create_secret(
        Name="ecr-pullthroughcache/other",
        SecretString=json.dumps({"username": "u", "accessToken": "t"}),
    )["ARN"]
    clients.ecr.update_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub", credentialArn=other
    )
    # When the drift-repair schedule fires
    sync_config.invoke(sample_event(SCHEDULE))
    # Then both are back as configured
    assert rule_urls(clients)["k8s"] == "registry.k8s.io"
    assert ecr_rules(clients)["docker-hub"]["credentialArn"] == hub_secret_arn


def test_missing_secret_fails_that_rule_only(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction
) -> None:
    # Given a configuration whose Docker Hub secret does not exist yet
    put_config(clients, DESIGN_EXAMPLE)
    # When sync_config runs
    result = sync_config.invoke(sample_event(CREATE))
    # Then the other rules exist, the failure names the secret, and no ownership is claimed
    assert result["failures"] == [
        "secret 'ecr-pullthroughcache/docker-hub' does not exist in this account and Region; "
        "create it with JSON keys username and accessToken"
    ]
    assert set(rule_urls(clients)) == {"ecr-public", "k8s"}
    assert set(state_table.owned_rules()) == {"ecr-public", "k8s"}


def test_concurrent_runs_converge(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction, hub_secret_arn: str
) -> None:
    # Given a configuration and two deliveries of its event at the same moment
    put_config(clients, DESIGN_EXAMPLE)
    # When both run concurrently
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(sync_config.invoke, [sample_event(CREATE), sample_event(CREATE)]))
    # Then neither failed and the world is as one run would leave it
    assert all(not result.get("failures") for result in results)
    assert set(rule_urls(clients)) == {"ecr-public", "docker-hub", "k8s"}
    assert set(state_table.owned_rules()) == {"ecr-public", "docker-hub", "k8s"}
    assert set(statuses(state_table).values()) == {"PENDING"}
    assert sync_config.invoke(sample_event(CREATE))["status"] == "unchanged"


def test_schedule_retries_failed_images_and_edits_do_not(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction, hub_secret_arn: str
) -> None:
    # Given a synced configuration whose one image's last warm-up failed, the others warm
    put_config(
        clients, "rules: [{prefix: k8s, upstream: k8s}]\nimages: [k8s/pause:3.10, k8s/etcd:3.5]"
    )
    sync_config.invoke(sample_event(CREATE))
    state_table.claim_images(
        ["k8s/pause:3.10", "k8s/etcd:3.5"], "batch-1", [ImageStatus.PENDING], NOW
    )
    state_table.settle_images(
        "batch-1",
        [
            ImageSettlement("k8s/pause:3.10", ImageStatus.FAILED, NOW, error="manifest unknown"),
            ImageSettlement(
                "k8s/etcd:3.5", ImageStatus.WARM, NOW, cached_digest="sha256:" + "1" * 64
            ),
        ],
    )
    # When the configuration event comes again, Then no warm-up is requested for a failure
    assert sync_config.invoke(sample_event(UPDATE))["warmup_requested"] is False
    # When the schedule fires, Then the failed image is retried
    result = sync_config.invoke(sample_event(SCHEDULE))
    assert (result["images_waiting"], result["warmup_requested"]) == (1, True)


def test_schedule_repairs_items_the_table_lost_or_should_not_hold(
    clients: AwsClients, state_table: StateTable, sync_config: LocalFunction
) -> None:
    # Given a synced configuration, then an item deleted by hand and a stray item added by hand
    put_config(
        clients, "rules: [{prefix: k8s, upstream: k8s}]\nimages: [k8s/pause:3.10, k8s/etcd:3.5]"
    )
    sync_config.invoke(sample_event(CREATE))
    clients.dynamodb.delete_item(
        TableName=TABLE_NAME, Key={"pk": {"S": "IMAGE"}, "sk": {"S": "k8s/etcd:3.5"}}
    )
    stray = state_table.images()["k8s/pause:3.10"].model_copy(update={"reference": "k8s/stray:1"})
    assert state_table.list_image(stray)
    # When the drift-repair schedule fires
    sync_config.invoke(sample_event(SCHEDULE))
    # Then the listed image is back, PENDING, and the unlisted one is RETIRED
    assert statuses(state_table) == {
        "k8s/pause:3.10": "PENDING",
        "k8s/etcd:3.5": "PENDING",
        "k8s/stray:1": "RETIRED",
    }
