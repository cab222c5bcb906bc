"""cache-pilot: the operator's command.

    cache-pilot validate FILE...       check configuration documents offline
    cache-pilot plan                   what a sync would change; changes nothing
    cache-pilot sync                   apply the configuration, as sync_config does
    cache-pilot local up               serve the embedded AWS until Ctrl-C
    cache-pilot local demo             the whole first slice on the embedded AWS

Every command reaches AWS through boto3's own configuration, AWS_ENDPOINT_URL included.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from cache_pilot_cli.output import Output
from cache_pilot_cli.reconcile import DEFAULT_CONFIG_PATH, DEFAULT_STATE_TABLE

CONFIG_PATH_VARIABLE = "CACHE_PILOT_CONFIG_PATH"
EVENT_SOURCE_VARIABLE = "CACHE_PILOT_EVENT_SOURCE"
STATE_TABLE_VARIABLE = "CACHE_PILOT_STATE_TABLE"
DEFAULT_LOCAL_PORT = 5000


def _table_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table",
        default=os.environ.get(STATE_TABLE_VARIABLE, DEFAULT_STATE_TABLE),
        help=f"the state table (env {STATE_TABLE_VARIABLE}; default: %(default)s)",
    )


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

    local = commands.add_parser("local", help="the embedded AWS on this machine")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    up = local_commands.add_parser(
        "up",
        help="serve the embedded AWS with the stack's resources until interrupted",
        description="Start moto's server with the ECR pull-through cache emulation, create the "
        "stack's state table from template.yaml, print the exports, serve until Ctrl-C.",
    )
    up.add_argument(
        "--port",
        type=int,
        default=DEFAULT_LOCAL_PORT,
        help="the port to listen on; 0 picks a free one (default: %(default)s)",
    )
    up.add_argument("--host", default="127.0.0.1", help="the address to listen on (%(default)s)")
    _table_option(up)
    local_commands.add_parser(
        "demo",
        help="write the example configuration, plan, sync through the handler, edit, sync again",
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
        case "local":
            return _run_local(args, output)
    raise AssertionError(f"unhandled command {args.command}")


def _run_local(args: argparse.Namespace, output: Output) -> int:
    try:
        import moto  # noqa: F401 - only to tell a missing development install apart
    except ImportError:
        output.error(
            "cache-pilot local needs the development dependencies (moto and the template "
            "tools): pip install -e '.[dev]', or run `make local` / `make demo`"
        )
        return 1
    if args.local_command == "up":
        from cache_pilot_cli.local import serve_local_aws

        return serve_local_aws(args.host, args.port, args.table, output)
    from cache_pilot_cli.demo import run_demo

    return run_demo(output)
