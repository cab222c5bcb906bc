"""Shared fixtures: fake credentials, moto with the pull-through cache emulation, and the
stack's resources created from template.yaml's own definitions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import StateTable
from cache_pilot_local.emulation import install_emulation
from cache_pilot_local.template import StackTemplate, create_table_request, load_stack_template

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
CONFIG_PATH = "/cache-pilot/"
TABLE_NAME = "cache-pilot-state"
REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"
# The design page's example configuration, as the repository ships it.
DESIGN_EXAMPLE = (REPO_ROOT / "examples" / "config.yaml").read_text()


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text())
    return event


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach AWS: fake credentials, a fixed Region, no endpoint override."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "cache-pilot")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CachePilot")


@pytest.fixture(scope="session")
def stack() -> StackTemplate:
    return load_stack_template(REGION)


@pytest.fixture
def aws() -> Iterator[None]:
    install_emulation()
    with mock_aws():
        yield


@pytest.fixture
def clients(aws: None) -> AwsClients:
    return AwsClients()


@pytest.fixture
def state_table(clients: AwsClients, stack: StackTemplate) -> StateTable:
    clients.dynamodb.create_table(**create_table_request(stack, "StateTable", TABLE_NAME))
    return StateTable(clients.dynamodb, TABLE_NAME)
