"""`cache-pilot local demo`: the seed's story, told by the deployed stack, with no credentials.

template.yaml is deployed into an embedded AWS (with its demonstration network); the example
configuration goes into Parameter Store; from then on only the stack acts: EventBridge rules
route each event to its function, the warm-up build pulls through the emulated pull-through
cache, and the timeline printed is what the functions returned and what AWS then held. The
NAT gateway is then deleted (a warmed image still pulls, a new one does not) and the
configuration edited (one image added, one removed, one rule's credential rotated).
"""

from __future__ import annotations

import difflib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from rich import box
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.rules import describe_rules
from cache_pilot.aws.state_table import StateTable
from cache_pilot.state import ImageStatus, utc_now
from cache_pilot_cli.documents import read_config_file
from cache_pilot_cli.output import Output
from cache_pilot_cli.render import (
    problems_first,
    rules_table,
    short_digest,
    status_counts_line,
    status_table,
)
from cache_pilot_cli.timeline import Timeline, nat_route_watch

if TYPE_CHECKING:
    from cache_pilot_local.cloud import Activity, LocalCloud

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
CONFIG_FILE = EXAMPLES / "config.yaml"
IMAGES_FILE = EXAMPLES / "more-images.list"

DOCKER_HUB_SECRET = "ecr-pullthroughcache/docker-hub"
ROTATED_DOCKER_HUB_SECRET = "ecr-pullthroughcache/docker-hub-rotated"
# The seed's experiment after the NAT gateway is gone: one image warmed before, one never.
WARMED_IMAGE = "docker-hub/library/nginx:1.27"
# The edit: one image dropped, one added, one rule's credential rotated.
DROPPED_IMAGE = "ecr-public/amazonlinux/amazonlinux:latest"
ADDED_IMAGE = "docker-hub/library/redis:7.4"
ROTATED_RULE = "docker-hub"


class DemoError(Exception):
    """The demo did not go as it should: the exit status is 1."""


def edited_configuration(document: str) -> str:
    """The example document after the edit, as YAML."""
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


@dataclass
class SummaryRow:
    step: str
    result: str
    seconds: float


def run_demo(output: Output) -> int:
    started = time.perf_counter()
    summary: list[SummaryRow] = []
    try:
        _run_steps(output, summary)
    except DemoError as exc:
        output.error(f"cache-pilot local demo: {exc}")
        return 1
    output.step("Summary")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in ("step", "what the stack did", "seconds"):
        table.add_column(column, overflow="fold")
    for row in summary:
        table.add_row(row.step, row.result, f"{row.seconds:.1f}")
    output.show(table)
    output.line(f"Demo finished in {time.perf_counter() - started:.1f} s.", style="bold")
    output.line("Watch the functions react yourself:", style="dim")
    for line in (
        "  cache-pilot local up                    # in one shell; paste its exports in another",
        "  aws ssm put-parameter --name /cache-pilot/config --type String --overwrite \\",
        "      --value file://examples/config.yaml",
        "  cache-pilot status && cache-pilot nat",
        "  cache-pilot local tick watchdog         # fire a schedule now",
    ):
        output.line(line, style="dim")
    return 0


def _run_steps(output: Output, summary: list[SummaryRow]) -> None:
    from cache_pilot_local.cloud import local_cloud
    from cache_pilot_local.event_routing import QUIET_FUNCTIONS

    timeline = Timeline(output)
    output.step("1. Deploy template.yaml into an embedded AWS (moto; no credentials, no Docker)")
    deploying = time.perf_counter()
    with local_cloud(
        # The timeline tells what each function did; their own error logs would repeat it.
        function_environment={**QUIET_FUNCTIONS, "POWERTOOLS_LOG_LEVEL": "CRITICAL"},
        on_invocation=timeline.invocation,
        on_build=timeline.build,
    ) as cloud:
        demo = _Demo(cloud, output, timeline)
        summary.append(
            SummaryRow("deploy", demo.show_deployment(), time.perf_counter() - deploying)
        )
        for step, run in (
            ("configure and warm", demo.configure_and_warm),
            ("NAT gateway deleted", demo.delete_nat_gateway_and_pull),
            ("configuration edited", demo.edit_configuration),
        ):
            started = time.perf_counter()
            summary.append(SummaryRow(step, run(), time.perf_counter() - started))


class _Demo:
    def __init__(self, cloud: LocalCloud, output: Output, timeline: Timeline) -> None:
        self.cloud = cloud
        self.output = output
        self.timeline = timeline
        self.clients = AwsClients()
        self.outputs = cloud.stack.outputs
        self.table = StateTable(self.clients.dynamodb, self.outputs["StateTableName"])
        self.route_tables = self.outputs["WarmupRouteTables"].split(",")
        self.nat_gateway = self.outputs["WarmupNatGateway"]
        self.config_parameter = f"{cloud.stack.config_path}config"
        self.route_text = nat_route_watch(self.clients, self.route_tables, self.nat_gateway)
        timeline.route_watch = self.route_text

    def show_deployment(self) -> str:
        resources = self.cloud.stack.physical_ids
        self.output.line(f"endpoint          {self.cloud.aws.endpoint_url}")
        self.output.line(f"stack             {self.cloud.stack.name}: {len(resources)} resources")
        for name in (
            "StateTableName",
            "WarmupProjectName",
            "WarmupRouteTables",
            "WarmupNatGateway",
            "WarmupEventSource",
        ):
            self.output.line(f"{name:<18}{self.outputs[name]}")
        self.output.line(
            f"upstream          {len(self.cloud.upstream.images())} images in the emulated catalog"
        )
        for name in (DOCKER_HUB_SECRET, ROTATED_DOCKER_HUB_SECRET):
            self.clients.secretsmanager.create_secret(
                Name=name,
                SecretString=json.dumps(
                    {"username": "cache-pilot-demo", "accessToken": "dckr_pat_not-a-real-token"}
                ),
            )
        self.output.line(
            f"secrets           {DOCKER_HUB_SECRET} (+ -rotated), fake Docker Hub tokens"
        )
        self.timeline.watch_route()
        return f"{len(resources)} resources from template.yaml"

    def configure_and_warm(self) -> str:
        self.output.step("2. The example configuration into Parameter Store; the stack reacts")
        config = read_config_file(str(CONFIG_FILE))
        image_list = read_config_file(str(IMAGES_FILE))
        self.output.show(Syntax(config.value.rstrip(), "yaml", background_color="default"))
        self.output.line(f"{self.cloud.stack.config_path}images: {image_list.value}")
        self.output.blank()
        self.clients.ssm.put_parameter(
            Name=self.config_parameter, Value=config.value, Type=config.type
        )
        self.clients.ssm.put_parameter(
            Name=f"{self.cloud.stack.config_path}images",
            Value=image_list.value,
            Type=image_list.type,
        )
        activity = self._settle("events flowing")
        self._show_state()
        records = self.table.images()
        if any(r.status is not ImageStatus.WARM for r in records.values()):
            raise DemoError(
                "not every image is WARM after the warm-up: " + status_counts_line(records.values())
            )
        if self.route_text().startswith("NAT route"):
            raise DemoError("the NAT route is still open after the warm-up")
        return (
            f"{len(activity.invocations)} invocations, {len(activity.builds)} build(s); "
            f"{status_counts_line(records.values())}; NAT route removed"
        )

    def delete_nat_gateway_and_pull(self) -> str:
        self.output.step("3. The NAT gateway deleted: what pulls from the private subnet now")
        self.clients.ec2.delete_nat_gateway(NatGatewayId=self.nat_gateway)
        state = self.clients.ec2.describe_nat_gateways(NatGatewayIds=[self.nat_gateway])[
            "NatGateways"
        ][0]["State"]
        self.timeline.say(f"NAT gateway {self.nat_gateway}: {state}", style="cyan")
        warmed = self.cloud.pull_from_warmup_subnet(WARMED_IMAGE)
        new = self.cloud.pull_from_warmup_subnet(ADDED_IMAGE)
        for pull in (warmed, new):
            verdict = (
                Text(f"pulled, {short_digest(pull.digest)}", style="green")
                if pull.pulled
                else Text(f"failed: {pull.error}", style="red")
            )
            self.output.show(Text.assemble(f"  pull {pull.reference:<40} ", verdict))
        if not warmed.pulled or new.pulled:
            raise DemoError(
                "the cache did not behave as the seed says: "
                "a warmed image must pull, a new one must not"
            )
        return f"{WARMED_IMAGE} pulled from the cache; {ADDED_IMAGE} failed"

    def edit_configuration(self) -> str:
        self.output.step(
            f"4. An edit: drop {DROPPED_IMAGE}, add {ADDED_IMAGE}, "
            f"rotate the {ROTATED_RULE} credential"
        )
        current = self.clients.ssm.get_parameter(Name=self.config_parameter)["Parameter"]["Value"]
        edited = edited_configuration(current)
        _show_diff(self.output, yaml.safe_dump(yaml.safe_load(current), sort_keys=False), edited)
        self.clients.ssm.put_parameter(
            Name=self.config_parameter, Value=edited, Type="String", Overwrite=True
        )
        activity = self._settle("events flowing")
        self._show_state()
        records = self.table.images()
        if records[ADDED_IMAGE].status is not ImageStatus.PENDING:
            raise DemoError(
                f"{ADDED_IMAGE} should wait for a NAT gateway, not be {records[ADDED_IMAGE].status}"
            )
        starts = [i.result.get("outcome") for i in activity.of("StartWarmupFunction") if i.result]
        return (
            f"{len(activity.invocations)} invocations; rule {ROTATED_RULE} updated, "
            f"{DROPPED_IMAGE} RETIRED, {ADDED_IMAGE} PENDING; "
            f"warm-up: {', '.join(starts) or 'none'}"
        )

    def _settle(self, what: str) -> Activity:
        with self.output.status(what):
            activity = self.cloud.settle()
        if activity.errors:
            raise DemoError("a function failed: " + str(activity.errors[0].error))
        return activity

    def _show_state(self) -> None:
        self.output.heading("Pull-through cache rules (ECR)")
        self.output.show(rules_table(describe_rules(self.clients.ecr), self.table.owned_rules()))
        records = self.table.images()
        self.output.heading(
            f"Images ({self.table.table_name}): {status_counts_line(records.values())}"
        )
        self.output.show(status_table(problems_first(records.values()), utc_now()))


def _show_diff(output: Output, before: str, after: str) -> None:
    styles = {"+": "green", "-": "red", "@": "cyan"}
    for line in difflib.unified_diff(
        before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=1
    ):
        output.show(Text(line, style=styles.get(line[:1], "")))
