"""What a sync costs, against the embedded AWS: AWS calls and wall time of a no-op sync and of a
sync that adds one image, with 50 rules and 2,000 images over 20 parameters; and the cold
import time of each handler as a ratio to `import boto3` alone, measured in the same run.

Targets: a no-op sync makes at most 10 AWS calls, adding one image adds at most 3 (the cost
follows the change, not the list); each handler imports in at most 1.3 times boto3's time.

    .venv/bin/python -m bench.sync_cost [--images 2000] [--rules 50] [--parameters 20] [--runs 7]
"""

from __future__ import annotations

import argparse
from typing import Literal

from bench.common import REPO, CallCounter, cold_import_seconds
from cache_pilot.aws.clients import AwsClients
from cache_pilot.aws.state_table import ImageSettlement, StateTable
from cache_pilot.config import ValidationContext
from cache_pilot.state import ImageStatus, utc_now
from cache_pilot.sync import synchronize, warmup_requester
from cache_pilot_local.server import create_stack_resources, start_embedded_aws
from cache_pilot_local.template import load_stack_template

UPSTREAMS = ("ecr-public", "k8s", "quay")
TABLE = "cache-pilot-state"
PATH = "/cache-pilot/"
HANDLERS = ("sync_config", "start_warmup", "finish_warmup")


ParameterKind = Literal["String", "StringList"]


def configuration(rules: int, images: int, parameters: int) -> dict[str, tuple[ParameterKind, str]]:
    """One document with the rules, the images spread over StringList parameters."""
    document = "rules:\n" + "".join(
        f"  - {{prefix: team{n:02d}, upstream: {UPSTREAMS[n % len(UPSTREAMS)]}}}\n"
        for n in range(rules)
    )
    references = [f"team{n % rules:02d}/app-{n:04d}:1.{n % 7}" for n in range(images)]
    lists = parameters - 1
    chunks = [references[i::lists] for i in range(lists)]
    config: dict[str, tuple[ParameterKind, str]] = {f"{PATH}rules": ("String", document)}
    config.update(
        {f"{PATH}images/{i:02d}": ("StringList", ",".join(c)) for i, c in enumerate(chunks)}
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--parameters", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7, help="interpreters per cold-import figure")
    args = parser.parse_args()

    aws = start_embedded_aws()
    counter = CallCounter()
    with aws.as_process_environment():
        clients = AwsClients(counter.attach(aws.session()))
        stack = load_stack_template(aws.region)
        create_stack_resources(clients.dynamodb, stack, TABLE)
        table = StateTable(clients.dynamodb, TABLE)
        context = ValidationContext(account_id="123456789012", region=aws.region)
        request = warmup_requester(clients, "cache-pilot.bench")
        config = configuration(args.rules, args.images, args.parameters)
        for name, (kind, value) in config.items():
            clients.ssm.put_parameter(Name=name, Type=kind, Value=value, Tier="Advanced")

        def sync() -> None:
            synchronize(clients, PATH, table, context, request_warmup=request)

        with counter.measuring() as first:
            sync()
        # The steady state: every image warmed, so no warm-up is waiting.
        references = list(table.images())
        now = utc_now()
        table.claim_images(references, "bench", [ImageStatus.PENDING], now)
        table.settle_images(
            "bench", [ImageSettlement(r, ImageStatus.WARM, now) for r in references]
        )

        with counter.measuring() as no_op:
            sync()
        name, (kind, value) = next((n, v) for n, v in config.items() if v[0] == "StringList")
        clients.ssm.put_parameter(
            Name=name, Type=kind, Value=value + ",team00/added:1.0", Overwrite=True
        )
        with counter.measuring() as add_one:
            sync()
    aws.stop()

    print(
        f"sync cost, embedded AWS over HTTP: {args.rules} rules, {args.images} images, "
        f"{args.parameters} parameters"
    )
    print(f"  first sync (creates everything)  {first.total:6d} calls  {first.seconds:7.2f} s")
    print(
        f"  no-op sync                       {no_op.total:6d} calls  {no_op.seconds:7.2f} s   "
        "target <= 10 calls"
    )
    print(f"     {no_op.by_operation()}")
    added = add_one.total - no_op.total
    print(
        f"  sync adding one image            {add_one.total:6d} calls  {add_one.seconds:7.2f} s   "
        f"(+{added} over no-op, target <= 3)"
    )
    print(f"     {add_one.by_operation()}")

    print(f"\ncold import, median of {args.runs} fresh interpreters")
    boto3_seconds = cold_import_seconds("boto3", args.runs)
    print(f"  import boto3                     {boto3_seconds * 1000:7.0f} ms   1.00")
    for handler in HANDLERS:
        path = str(REPO / "functions" / handler / "app.py")
        traced = cold_import_seconds(path, args.runs, tracing=True)
        untraced = cold_import_seconds(path, args.runs, tracing=False)
        print(
            f"  {handler:<16} X-Ray on  {traced * 1000:7.0f} ms  {traced / boto3_seconds:5.2f}   "
            f"X-Ray off {untraced * 1000:6.0f} ms  {untraced / boto3_seconds:5.2f}   target <= 1.30"
        )


if __name__ == "__main__":
    main()
