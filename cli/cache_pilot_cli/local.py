"""`cache-pilot local up`: serve the embedded AWS with the stack's resources until Ctrl-C.

moto and the template deployer are development dependencies, so this module imports them
only when a `local` command runs; validate, plan and sync work without them.
"""

from __future__ import annotations

import signal
import threading

from cache_pilot_cli.output import Output


def wait_until_interrupted() -> None:
    """Block until Ctrl-C, or SIGTERM (a process manager's stop), raises KeyboardInterrupt."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    threading.Event().wait()


def serve_local_aws(host: str, port: int, table_name: str, output: Output) -> int:
    from cache_pilot_local.server import (
        LOCAL_REGION,
        EmbeddedAwsError,
        create_stack_resources,
        export_lines,
        start_embedded_aws,
    )
    from cache_pilot_local.template import load_stack_template

    stack = load_stack_template(LOCAL_REGION)
    try:
        aws = start_embedded_aws(host, port, LOCAL_REGION)
    except EmbeddedAwsError as exc:
        output.error(f"cache-pilot local up: {exc}; pass --port N (0 picks a free port)")
        return 1
    try:
        resources = create_stack_resources(aws.dynamodb(), stack, table_name)
        output.line(f"Embedded AWS listening on {aws.endpoint_url}", style="bold green")
        output.line(f"state table  {resources.table_name} (template.yaml's StateTable)")
        output.line(f"config path  {resources.config_path} (template.yaml's ConfigPath)")
        output.blank()
        output.line("In another shell:", style="bold")
        environment = {
            **aws.environment(),
            "CACHE_PILOT_STATE_TABLE": resources.table_name,
            "CACHE_PILOT_CONFIG_PATH": resources.config_path,
        }
        for line in export_lines(environment):
            output.line(line)
        output.blank()
        output.line("Serving until interrupted (Ctrl-C).", style="dim")
        wait_until_interrupted()
    except KeyboardInterrupt:
        output.line("Stopped; the embedded AWS kept nothing.")
    finally:
        aws.stop()
    return 0
