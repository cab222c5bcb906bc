"""`cache-pilot local up` and `local tick`: the deployed stack on the embedded AWS, served
until Ctrl-C, reacting to what another shell does against it.

moto and the template deployer are development dependencies, so this module imports them
only when a `local` command runs; validate, plan and sync work without them.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cache_pilot_cli.output import Output
from cache_pilot_cli.timeline import Timeline, nat_route_watch

if TYPE_CHECKING:
    from cache_pilot_local.cloud import LocalCloud

# How often `local up` looks for events to deliver and builds to run.
POLL_SECONDS = 0.5


def wait_until_interrupted() -> None:
    """Block until Ctrl-C, or SIGTERM (a process manager's stop), raises KeyboardInterrupt."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    threading.Event().wait()


def serve_local_aws(host: str, port: int, output: Output, *, deliver_twice: bool = False) -> int:
    from cache_pilot.aws.clients import AwsClients
    from cache_pilot_local.cloud import local_cloud
    from cache_pilot_local.server import EmbeddedAwsError, export_lines, start_embedded_aws

    try:
        aws = start_embedded_aws(host, port)
    except EmbeddedAwsError as exc:
        output.error(f"cache-pilot local up: {exc}; pass --port N (0 picks a free port)")
        return 1
    timeline = Timeline(output)
    stop = threading.Event()
    try:
        with local_cloud(
            aws=aws,
            deliver_twice=deliver_twice,
            on_invocation=timeline.invocation,
            on_build=timeline.build,
        ) as cloud:
            outputs = cloud.stack.outputs
            timeline.route_watch = nat_route_watch(
                AwsClients(), outputs["WarmupRouteTables"].split(","), outputs["WarmupNatGateway"]
            )
            output.line(f"Embedded AWS listening on {aws.endpoint_url}", style="bold green")
            output.line(
                f"stack {cloud.stack.name}: template.yaml deployed, "
                f"{len(cloud.stack.physical_ids)} resources, with the demonstration network"
            )
            if deliver_twice:
                output.line("every event is delivered twice (at-least-once delivery)")
            output.blank()
            output.line("In another shell:", style="bold")
            environment = {
                **aws.environment(),
                "CACHE_PILOT_STATE_TABLE": outputs["StateTableName"],
                "CACHE_PILOT_CONFIG_PATH": outputs["ConfigurationPath"],
                "CACHE_PILOT_EVENT_SOURCE": outputs["WarmupEventSource"],
                "CACHE_PILOT_ROUTE_TABLES": outputs["WarmupRouteTables"],
                "CACHE_PILOT_NAT_GATEWAY": outputs["WarmupNatGateway"],
            }
            for line in export_lines(environment):
                output.line(line)
            output.blank()
            output.line(
                "Then edit the configuration (aws ssm put-parameter --name "
                f"{outputs['ConfigurationPath']}config ...), fire a schedule "
                "(cache-pilot local tick), and watch the functions react here. "
                "Serving until interrupted (Ctrl-C).",
                style="dim",
            )
            worker = threading.Thread(target=_keep_settling, args=(cloud, stop, output))
            worker.start()
            try:
                wait_until_interrupted()
            finally:
                stop.set()
                worker.join()
    except KeyboardInterrupt:
        output.line("Stopped; the embedded AWS kept nothing.")
    finally:
        aws.stop()
    return 0


def _keep_settling(cloud: LocalCloud, stop: threading.Event, output: Output) -> None:
    from cache_pilot_local.cloud import UnsettledError

    while not stop.wait(POLL_SECONDS):
        try:
            cloud.settle()
        except UnsettledError as exc:
            output.error(f"cache-pilot local up: {exc}")


def fire_schedules(stack: str, schedules: Sequence[str], output: Output) -> int:
    """`local tick`: fire the stack's schedules now, through the embedded AWS's API."""
    import boto3

    from cache_pilot_local.event_routing import fire_schedules as fire
    from cache_pilot_local.template import UnsupportedTemplateError

    if not os.environ.get("AWS_ENDPOINT_URL"):
        output.error(
            "cache-pilot local tick: AWS_ENDPOINT_URL is not set; run the exports that "
            "`cache-pilot local up` printed, so the tick reaches the embedded AWS"
        )
        return 1
    try:
        fired = fire(boto3.Session(), None, stack, schedules)
    except UnsupportedTemplateError as exc:
        output.error(f"cache-pilot local tick: {exc}")
        return 1
    for schedule in fired:
        output.line(f"fired {schedule.logical_id} ({schedule.expression}) -> {schedule.rule_name}")
    return 0
