"""The embedded AWS: moto's server with the pull-through cache emulation, on this machine.

`cache-pilot local up`, `cache-pilot local demo`, the tests and the end-to-end harness share
it: start the server on a port (0: any free one) and point this process or another shell at
it. The harness deploys the whole stack into it (deploy.py); tests and benchmarks that need
only the state table create it from template.yaml's definition (create_stack_resources).

moto keeps its state in module globals, so every server started in one process serves the
same accounts and Regions; run one at a time.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import ClientError
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from cache_pilot_local.emulation import install_emulation
from cache_pilot_local.functions import patched_environment
from cache_pilot_local.template import StackTemplate, create_table_request

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LOOPBACK = "127.0.0.1"
LOCAL_REGION = "eu-west-1"  # the Region of the sample events in events/
FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"  # moto accepts any key; this one opens nothing
STATE_TABLE_LOGICAL_ID = "StateTable"
CONFIG_PATH_PARAMETER = "ConfigPath"

# Settings that would send this process's AWS calls somewhere other than the embedded AWS, or
# make them use credentials other than the fake ones.
_DIVERTING_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


class EmbeddedAwsError(Exception):
    """The embedded AWS could not start."""


class _MotoServer(ThreadedMotoServer):
    """moto's threaded server, except that a port it cannot bind fails start() loudly.

    werkzeug answers a failed bind with sys.exit() inside the server thread, and moto 5.2.5's
    start() then waits forever for a ready signal that never comes.
    """

    failed_to_start = False

    def _server_entry(self) -> None:
        try:
            super()._server_entry()
        except (OSError, SystemExit):
            self.failed_to_start = True
            self._server_ready_event.set()

    def stop(self) -> None:
        super().stop()
        if self._server is not None:
            self._server.server_close()  # release the port now, not at garbage collection


@dataclass
class EmbeddedAws:
    """A running embedded AWS; `stop()` it, or use `embedded_aws()` as a context manager."""

    endpoint_url: str
    region: str
    _server: _MotoServer

    def environment(self) -> dict[str, str]:
        """What a process needs to talk to this embedded AWS: endpoint, fake keys, Region."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def session(self) -> boto3.Session:
        """A session with the fake keys and the Region, whatever this process's environment."""
        return boto3.Session(
            aws_access_key_id=FAKE_ACCESS_KEY_ID,
            aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
            region_name=self.region,
        )

    def dynamodb(self) -> DynamoDBClient:
        return self.session().client("dynamodb", endpoint_url=self.endpoint_url)

    @contextmanager
    def as_process_environment(self) -> Iterator[None]:
        """Point this process's AWS SDK at the embedded AWS, and restore the environment after."""
        diverting = [
            name
            for name in os.environ
            if name in _DIVERTING_VARIABLES or name.startswith("AWS_ENDPOINT_URL_")
        ]
        with patched_environment(self.environment(), remove=diverting):
            yield

    def reset(self) -> None:
        """Forget every resource in every account and Region (moto's own reset)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        self._server.stop()


def start_embedded_aws(
    host: str = LOOPBACK,
    port: int = 0,
    region: str = LOCAL_REGION,
    *,
    log_requests: bool = False,
) -> EmbeddedAws:
    """Start moto's server with the pull-through cache emulation, empty; port 0: any free one."""
    install_emulation()
    if not log_requests:
        # werkzeug logs every request at INFO to stderr; keep the terminal for what matters.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _check_port_is_free(host, port)
    server = _MotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    if server.failed_to_start:
        raise EmbeddedAwsError(f"cannot listen on {host}:{port}")
    bound_host, bound_port = server.get_host_and_port()
    aws = EmbeddedAws(
        endpoint_url=f"http://{_url_host(bound_host)}:{bound_port}", region=region, _server=server
    )
    aws.reset()  # moto's state is per process: start from nothing whatever ran here before
    return aws


@contextmanager
def embedded_aws(
    host: str = LOOPBACK, port: int = 0, region: str = LOCAL_REGION
) -> Iterator[EmbeddedAws]:
    aws = start_embedded_aws(host, port, region)
    try:
        yield aws
    finally:
        aws.stop()


@dataclass(frozen=True)
class StackResources:
    """What the embedded AWS holds for the stack, by the names the commands need."""

    table_name: str
    config_path: str

    def names(self) -> dict[str, str]:
        """Logical ID to physical name, as `LocalFunction` and `StackTemplate.resolve` take."""
        return {STATE_TABLE_LOGICAL_ID: self.table_name}


def create_stack_resources(
    dynamodb: DynamoDBClient, stack: StackTemplate, table_name: str
) -> StackResources:
    """Create the stack's stateful resources as template.yaml defines them.

    The configuration path is the template's ConfigPath parameter (its default unless the stack
    was translated with an override); its parameters are the user's to write.
    """
    try:
        dynamodb.create_table(**create_table_request(stack, STATE_TABLE_LOGICAL_ID, table_name))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 10}
    )
    return StackResources(
        table_name=table_name, config_path=stack.parameters[CONFIG_PATH_PARAMETER]
    )


def export_lines(environment: Mapping[str, str]) -> list[str]:
    """`export NAME=value` lines for a POSIX shell."""
    return [f"export {name}={value}" for name, value in environment.items()]


def _check_port_is_free(host: str, port: int) -> None:
    """Bind the port as the server will, to report a busy one before werkzeug exits on it."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise EmbeddedAwsError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
