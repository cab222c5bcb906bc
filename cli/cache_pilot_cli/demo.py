"""`cache-pilot local demo`: the first slice of cache-pilot end to end, with no credentials.

An embedded AWS in this process; the example configuration written to Parameter Store; the
plan; the sync through the real sync_config handler on the sample events, as template.yaml
defines the function; the rules ECR then holds and the items of the state table; then an edit
and the incremental sync it causes.
"""

from __future__ import annotations

import difflib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.syntax import Syntax
from rich.text import Text

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.rules import describe_rules
from cache_pilot.aws.state_table import StateTable
from cache_pilot_cli.documents import read_config_file
from cache_pilot_cli.output import Output
from cache_pilot_cli.reconcile import DEFAULT_STATE_TABLE, reconcile
from cache_pilot_cli.render import images_table, render_handler_result, rules_table

if TYPE_CHECKING:
    from cache_pilot.config import ConfigSource
    from cache_pilot_local.functions import LocalFunction
    from cache_pilot_local.template import StackTemplate

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
EVENTS = REPO_ROOT / "events"
CONFIG_FILE = EXAMPLES / "config.yaml"
IMAGES_FILE = EXAMPLES / "more-images.list"
CREATE_EVENT = "ssm-parameter-create.json"
UPDATE_EVENT = "ssm-parameter-update.json"

DOCKER_HUB_SECRET = "ecr-pullthroughcache/docker-hub"
ROTATED_DOCKER_HUB_SECRET = "ecr-pullthroughcache/docker-hub-rotated"
# The edit of step 5: one image dropped, one added, one rule's credential rotated.
DROPPED_IMAGE = "ecr-public/amazonlinux/amazonlinux:latest"
ADDED_IMAGE = "docker-hub/library/redis:7.4"
ROTATED_RULE = "docker-hub"

# On AWS the handler's logs and EMF metrics go to CloudWatch; here they would bury the demo,
# so only warnings and errors are shown, and what the handler returned is printed instead.
QUIET_FUNCTION = {
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


class DemoError(Exception):
    """The demo did not go as it should: the exit status is 1."""


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def fake_docker_hub_token(clients: AwsClients, name: str) -> None:
    clients.secretsmanager.create_secret(
        Name=name,
        SecretString=json.dumps(
            {"username": "cache-pilot-demo", "accessToken": "dckr_pat_not-a-real-token"}
        ),
    )


def edited_configuration(document: str) -> str:
    """The example document after step 5's edit, as YAML."""
    data = yaml.safe_load(document)
    images = [
        entry
        for entry in data["images"]
        if (entry["image"] if isinstance(entry, dict) else entry) != DROPPED_IMAGE
    ]
    rule = next((rule for rule in data["rules"] if rule.get("prefix") == ROTATED_RULE), None)
    if len(images) == len(data["images"]) or rule is None:
        raise DemoError(
            f"{CONFIG_FILE} no longer lists {DROPPED_IMAGE} or the rule {ROTATED_RULE}; "
            "update the demo's edit in cli/cache_pilot_cli/demo.py"
        )
    data["images"] = [*images, ADDED_IMAGE]
    rule["credential"] = ROTATED_DOCKER_HUB_SECRET
    return yaml.safe_dump(data, sort_keys=False)


def run_demo(output: Output) -> int:
    started = time.perf_counter()
    try:
        _run_steps(output)
    except DemoError as exc:
        output.error(f"cache-pilot local demo: {exc}")
        return 1
    output.blank()
    output.line(f"Demo finished in {time.perf_counter() - started:.1f} s.", style="bold")
    output.line("Try it yourself, against an embedded AWS that keeps running:", style="dim")
    for line in (
        "  cache-pilot local up                    # in one shell; paste its exports in another",
        "  aws secretsmanager create-secret --name ecr-pullthroughcache/docker-hub \\",
        '      --secret-string \'{"username": "you", "accessToken": "dckr_pat_..."}\'',
        "  aws ssm put-parameter --name /cache-pilot/config --type String \\",
        "      --value file://examples/config.yaml",
        "  cache-pilot validate examples/config.yaml examples/more-images.list",
        "  cache-pilot plan && cache-pilot sync",
    ):
        output.line(line, style="dim")
    return 0


def _run_steps(output: Output) -> None:
    from cache_pilot_local.server import LOCAL_REGION, create_stack_resources, embedded_aws
    from cache_pilot_local.template import load_stack_template

    stack = load_stack_template(LOCAL_REGION)
    with embedded_aws(region=LOCAL_REGION) as aws, aws.as_process_environment():
        clients = AwsClients()
        resources = create_stack_resources(clients.dynamodb, stack, DEFAULT_STATE_TABLE)
        table = StateTable(clients.dynamodb, resources.table_name)
        config_parameter = f"{resources.config_path}config"
        images_parameter = f"{resources.config_path}images"

        output.step("1. An embedded AWS in this process (moto, no credentials, no Docker)")
        output.line(f"endpoint     {aws.endpoint_url}")
        output.line(f"state table  {resources.table_name} (from template.yaml's StateTable)")
        output.line(f"config path  {resources.config_path} (template.yaml's ConfigPath)")
        fake_docker_hub_token(clients, DOCKER_HUB_SECRET)
        output.line(f"secret       {DOCKER_HUB_SECRET} (a fake Docker Hub token)")

        output.step(f"2. The example configuration, into Parameter Store ({resources.config_path})")
        config = read_config_file(str(CONFIG_FILE))
        image_list = read_config_file(str(IMAGES_FILE))
        for name, source in ((config_parameter, config), (images_parameter, image_list)):
            _put_parameter(clients, name, source)
            output.heading(
                f"{name} ({source.type}, from {Path(source.name).relative_to(REPO_ROOT)})"
            )
            if source.type == "String":
                output.show(Syntax(source.value.rstrip(), "yaml", background_color="default"))
            else:
                output.line(source.value)

        output.step("3. cache-pilot plan: what a sync would change (nothing is changed)")
        reconcile(clients, resources.config_path, resources.table_name, output, apply=False)

        sync_config = _sync_config_function(stack, resources.names())
        output.step(f"4. sync_config, the Lambda handler, on events/{CREATE_EVENT}")
        _invoke(sync_config, CREATE_EVENT, output)
        _show_state(output, clients, table)

        output.step(
            f"5. An edit of {config_parameter}: drop {DROPPED_IMAGE}, add {ADDED_IMAGE}, "
            f"rotate the {ROTATED_RULE} credential"
        )
        fake_docker_hub_token(clients, ROTATED_DOCKER_HUB_SECRET)
        edited = edited_configuration(config.value)
        _show_diff(output, yaml.safe_dump(yaml.safe_load(config.value), sort_keys=False), edited)
        clients.ssm.put_parameter(
            Name=config_parameter, Value=edited, Type="String", Overwrite=True
        )
        output.heading("cache-pilot plan")
        reconcile(clients, resources.config_path, resources.table_name, output, apply=False)

        output.step(f"6. sync_config on events/{UPDATE_EVENT}: only what changed")
        _invoke(sync_config, UPDATE_EVENT, output)
        _show_state(output, clients, table)


def _put_parameter(clients: AwsClients, name: str, source: ConfigSource) -> None:
    clients.ssm.put_parameter(Name=name, Value=source.value, Type=source.type, Overwrite=True)


def _sync_config_function(stack: StackTemplate, names: dict[str, str]) -> LocalFunction:
    from cache_pilot_local.functions import LocalFunction

    return LocalFunction.from_template(stack, "SyncConfigFunction", names, QUIET_FUNCTION)


def _invoke(function: LocalFunction, event_name: str, output: Output) -> None:
    summary = function.invoke(sample_event(event_name))
    output.heading("sync_config returned")
    render_handler_result(output, summary)
    if summary.get("status") != "applied" or summary.get("failures"):
        raise DemoError(f"sync_config did not apply the configuration: {summary}")


def _show_state(output: Output, clients: AwsClients, table: StateTable) -> None:
    output.heading("Pull-through cache rules (ECR DescribePullThroughCacheRules)")
    output.show(rules_table(describe_rules(clients.ecr), table.owned_rules()))
    output.heading(f"Image items (DynamoDB {table.table_name})")
    output.show(images_table(table.images()))


def _show_diff(output: Output, before: str, after: str) -> None:
    styles = {"+": "green", "-": "red", "@": "cyan"}
    for line in difflib.unified_diff(
        before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=1
    ):
        output.show(Text(line, style=styles.get(line[:1], "")))
