"""cache-pilot: the operator's command.

    cache-pilot validate FILE...       check configuration documents offline
    cache-pilot plan                   what a sync would change; changes nothing
    cache-pilot sync                   apply the configuration, as sync_config does
    cache-pilot status                 every image item, problems first
    cache-pilot warm IMAGE...          re-warm these images now
    cache-pilot nat                    the NAT window, its leases and the routes
    cache-pilot local up               the stack deployed on the embedded AWS, until Ctrl-C
    cache-pilot local tick [SCHEDULE]  fire the local stack's schedules now
    cache-pilot local demo             the seed's story, told by the locally deployed stack

Every command reaches AWS through boto3's own configuration, AWS_ENDPOINT_URL included.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from datetime import datetime

from cache_pilot_cli.output import Output
from cache_pilot_cli.reconcile import DEFAULT_CONFIG_PATH, DEFAULT_STATE_TABLE

CONFIG_PATH_VARIABLE = "CACHE_PILOT_CONFIG_PATH"
EVENT_SOURCE_VARIABLE = "CACHE_PILOT_EVENT_SOURCE"
STATE_TABLE_VARIABLE = "CACHE_PILOT_STATE_TABLE"
ROUTE_TABLES_VARIABLE = "CACHE_PILOT_ROUTE_TABLES"
NAT_GATEWAY_VARIABLE = "CACHE_PILOT_NAT_GATEWAY"
DEFAULT_LOCAL_PORT = 5000


def _table_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table",
        default=os.environ.get(STATE_TABLE_VARIABLE, DEFAULT_STATE_TABLE),
        help=f"the state table (env {STATE_TABLE_VARIABLE}; default: %(default)s)",
    )


def _now_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        type=_moment,
        default=None,
        metavar="ISO8601",
        help="compute ages at this moment (no offset: UTC); default: the current time",
    )


def _moment(text: str) -> datetime:
    from cache_pilot_cli.operations import parse_moment

    try:
        return parse_moment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an ISO 8601 moment, e.g. 2026-11-29T10:00:00Z"
        ) from exc


def _route_tables(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _add_operations(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status",
        help="every image item: status, cached digest, age, last pull, last error",
        description="Every image item of the state table, problems first (FAILED, STALE, "
        "PENDING, WARMING, WARM, RETIRED), and a count per status.",
    )
    _table_option(status)
    status.add_argument("--json", action="store_true", help="print the items as a JSON list")
    _now_option(status)

    warm = commands.add_parser(
        "warm",
        help="re-warm these images now",
        description="Mark listed images STALE (WARM, FAILED or STALE ones; PENDING and "
        "WARMING ones are already on their way) and request a warm-up. Exit 1 if a reference "
        "is not a listed image.",
    )
    warm.add_argument("images", nargs="+", metavar="IMAGE")
    _table_option(warm)
    warm.add_argument(
        "--event-source",
        default=os.environ.get(EVENT_SOURCE_VARIABLE),
        metavar="SOURCE",
        help=(
            "send the warm-up request with this event source (cache-pilot.<stack name>; env "
            f"{EVENT_SOURCE_VARIABLE}); unset: the next scheduled run warms the images"
        ),
    )

    nat = commands.add_parser(
        "nat",
        help="is the NAT window open, since when, who holds a lease",
        description="The NAT window item: open or closed, since when, and each lease with its "
        "batch. With the route tables and the NAT gateway, also each default route, and a "
        "warning when a route to the NAT gateway is open while no lease is held.",
    )
    _table_option(nat)
    nat.add_argument("--json", action="store_true", help="print the window as a JSON object")
    nat.add_argument(
        "--route-tables",
        type=_route_tables,
        default=_route_tables(os.environ.get(ROUTE_TABLES_VARIABLE, "")),
        metavar="RTB,...",
        help=f"the warm-up route tables, comma-separated (env {ROUTE_TABLES_VARIABLE}; the "
        "stack's WarmupRouteTables output)",
    )
    nat.add_argument(
        "--nat-gateway",
        default=os.environ.get(NAT_GATEWAY_VARIABLE) or None,
        metavar="NAT_GATEWAY_ID",
        help=f"the NAT gateway the warm-up routes point at (env {NAT_GATEWAY_VARIABLE})",
    )
    _now_option(nat)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cache-pilot",
        description="Keeps an Amazon ECR pull-through cache stocked for private subnets.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check configuration documents offline",
        description="Check configuration documents as a sync would, without calling AWS. Each "
        "file stands for a String parameter named by its path; a file ending in .list for a "
        "StringList of image references, comma- or newline-separated.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")

    for name, summary in (
        ("plan", "show what a sync would change; changes nothing"),
        ("sync", "apply the configuration to ECR and the state table"),
    ):
        command = commands.add_parser(name, help=summary, description=summary)
        command.add_argument(
            "--config-path",
            default=os.environ.get(CONFIG_PATH_VARIABLE, DEFAULT_CONFIG_PATH),
            help=f"the Parameter Store path (env {CONFIG_PATH_VARIABLE}; default: %(default)s)",
        )
        _table_option(command)
        command.add_argument(
            "--json", action="store_true", help="print sync_config's summary as JSON"
        )
        command.add_argument(
            "--event-source",
            default=os.environ.get(EVENT_SOURCE_VARIABLE),
            help=(
                "request a warm-up for waiting images as the stack does, with this event source "
                f"(cache-pilot.<stack name>; env {EVENT_SOURCE_VARIABLE}); unset: none is requested"
            ),
        )

    _add_operations(commands)

    local = commands.add_parser("local", help="the embedded AWS on this machine")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    up = local_commands.add_parser(
        "up",
        help="deploy template.yaml on the embedded AWS and run it until interrupted",
        description="Start the embedded AWS, deploy template.yaml into it (with the "
        "demonstration network), print the exports, then deliver every event to the function "
        "its rule targets and run every warm-up build, until Ctrl-C.",
    )
    up.add_argument(
        "--port",
        type=int,
        default=DEFAULT_LOCAL_PORT,
        help="the port to listen on; 0 picks a free one (default: %(default)s)",
    )
    up.add_argument("--host", default="127.0.0.1", help="the address to listen on (%(default)s)")
    up.add_argument(
        "--deliver-twice",
        action="store_true",
        help="deliver every event twice, as at-least-once delivery may",
    )
    tick = local_commands.add_parser(
        "tick",
        help="fire the local stack's schedules now (all, or those named)",
        description="Send each chosen schedule's Scheduled Event to its targets on the embedded "
        "AWS that AWS_ENDPOINT_URL names; `local up` then runs the functions.",
    )
    tick.add_argument(
        "schedules",
        nargs="*",
        metavar="SCHEDULE",
        help="the end of a scheduled rule's logical ID, any case: DriftRepair, FreshnessCheck, "
        "Watchdog (default: every schedule)",
    )
    tick.add_argument("--stack", default="cache-pilot", help="the local stack (%(default)s)")
    local_commands.add_parser(
        "demo",
        help="deploy, configure, warm through a NAT window, delete the NAT gateway, edit",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = Output()
    match args.command:
        case "validate":
            from cache_pilot_cli.validate import validate_files

            return validate_files(args.files, output)
        case "plan" | "sync":
            from cache_pilot.aws.clients import AwsClients
            from cache_pilot_cli.reconcile import reconcile

            return reconcile(
                AwsClients(),
                args.config_path,
                args.table,
                output,
                apply=args.command == "sync",
                as_json=args.json,
                event_source=args.event_source,
            )
        case "status" | "warm" | "nat":
            return _run_operation(args, output)
        case "local":
            return _run_local(args, output)
    raise AssertionError(f"unhandled command {args.command}")


def _run_operation(args: argparse.Namespace, output: Output) -> int:
    from cache_pilot.aws.clients import AwsClients
    from cache_pilot.state import utc_now
    from cache_pilot_cli.operations import request_rewarm, show_nat, show_status

    now: datetime = getattr(args, "now", None) or utc_now()
    match args.command:
        case "status":
            return show_status(AwsClients(), args.table, output, now=now, as_json=args.json)
        case "warm":
            return request_rewarm(
                AwsClients(),
                args.table,
                args.images,
                output,
                now=now,
                event_source=args.event_source,
            )
    return show_nat(
        AwsClients(),
        args.table,
        output,
        now=now,
        route_table_ids=args.route_tables,
        nat_gateway_id=args.nat_gateway,
        as_json=args.json,
    )


def _run_local(args: argparse.Namespace, output: Output) -> int:
    try:
        import moto  # noqa: F401 - only to tell a missing development install apart
    except ImportError:
        output.error(
            "cache-pilot local needs the development dependencies (moto and the template "
            "tools): pip install -e '.[dev]', or run `make local` / `make demo`"
        )
        return 1
    match args.local_command:
        case "up":
            from cache_pilot_cli.local import serve_local_aws

            return serve_local_aws(args.host, args.port, output, deliver_twice=args.deliver_twice)
        case "tick":
            from cache_pilot_cli.local import fire_schedules

            return fire_schedules(args.stack, args.schedules, output)
    from cache_pilot_cli.demo import run_demo

    return run_demo(output)
