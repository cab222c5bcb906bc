"""``python -m cache_pilot.warm``: warm a batch of images through a registry and report.

Exit status: 0 every image warmed; 1 some image failed; 2 unusable command line or batch;
3 the batch stopped (credentials missing or rejected, registry unreachable). A report is
written in every case but a bad command line.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from cache_pilot.warm.batch import BatchError, ImageRequest, load_batch
from cache_pilot.warm.credentials import (
    CredentialsUnavailable,
    credentials_from_stdin,
    ecr_credentials,
)
from cache_pilot.warm.report import (
    ErrorKind,
    ImageResult,
    WarmError,
    WarmReport,
    image_line,
    summary_text,
)
from cache_pilot.warm.transport import (
    Credentials,
    CredentialsRejected,
    RegistrySession,
    TransportFailure,
)
from cache_pilot.warm.warmer import Warmer

EXIT_ALL_WARMED = 0
EXIT_SOME_FAILED = 1
EXIT_UNUSABLE_INPUT = 2
EXIT_STOPPED = 3
MAX_PARALLEL = 64


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cache_pilot.warm",
        description="Pull every listed image once through a registry (a pull-through cache), "
        "every selected platform and every blob, checking digests; write a JSON report.",
        epilog="exit status: 0 every image warmed, 1 some image failed, 2 unusable command "
        "line or batch, 3 stopped (credentials rejected, registry unreachable)",
    )
    parser.add_argument("--registry", required=True, help="HOST[:PORT] of the registry")
    parser.add_argument("--batch", required=True, type=Path, help="the batch JSON file")
    parser.add_argument("--report", required=True, type=Path, help="where to write the report")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--ecr-auth", metavar="REGION", help="get a token from ECR in REGION")
    auth.add_argument("--username", help="registry user; the password comes from stdin")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    parser.add_argument("--ca-file", help="PEM bundle of extra CAs to trust")
    parser.add_argument(
        "--parallel",
        type=int,
        default=8,
        help=f"images and blob downloads in flight, each (1-{MAX_PARALLEL}; default 8)",
    )
    parser.add_argument(
        "--insecure-http", action="store_true", help="plain HTTP instead of HTTPS (tests only)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="socket timeout in seconds (default 60)"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if bool(arguments.username) != arguments.password_stdin:
        parser.error("--username and --password-stdin go together")
    if not 1 <= arguments.parallel <= MAX_PARALLEL:
        parser.error(f"--parallel must be between 1 and {MAX_PARALLEL}")

    report = WarmReport(registry=arguments.registry, started_at=_now())
    started = time.monotonic()
    status, requests = _run(arguments, report, stdin, stderr)
    if report.error is not None and not report.images:
        report.images = [_not_attempted(request, report.error) for request in requests]
    report.finished_at = _now()
    report.seconds = time.monotonic() - started
    try:
        report.write(arguments.report)
    except OSError as error:
        print(f"cannot write the report {arguments.report}: {error}", file=stderr)
        return max(status, EXIT_SOME_FAILED)
    print(summary_text(report), file=stdout)
    return status


def _run(
    arguments: argparse.Namespace, report: WarmReport, stdin: TextIO, stderr: TextIO
) -> tuple[int, list[ImageRequest]]:
    try:
        requests = load_batch(arguments.batch)
    except BatchError as error:
        report.error = WarmError(ErrorKind.INVALID_REQUEST, str(error))
        return EXIT_UNUSABLE_INPUT, []
    try:
        credentials = _credentials(arguments, stdin)
        session = RegistrySession(
            arguments.registry,
            secure=not arguments.insecure_http,
            credentials=credentials,
            ca_file=arguments.ca_file,
            timeout=arguments.timeout,
        )
        session.check_access()
    except (CredentialsUnavailable, CredentialsRejected) as error:
        report.error = WarmError(ErrorKind.UNAUTHORIZED, str(error))
    except TransportFailure as failure:
        report.error = WarmError(failure.kind, f"cannot use {arguments.registry}: {failure}")
    except (ValueError, OSError) as error:  # a bad --registry or an unreadable --ca-file
        report.error = WarmError(ErrorKind.INVALID_REQUEST, str(error))
        return EXIT_UNUSABLE_INPUT, requests
    if report.error is not None:
        print(f"error: {report.error.message}", file=stderr)
        return EXIT_STOPPED, requests

    print_lock = threading.Lock()

    def log_image(result: ImageResult) -> None:
        with print_lock:
            print(image_line(result), file=stderr, flush=True)

    warmer = Warmer(session, parallel=arguments.parallel, on_image_done=log_image)
    report.images = warmer.warm(requests)
    if warmer.fatal is not None:
        report.error = WarmError(ErrorKind.UNAUTHORIZED, str(warmer.fatal))
        return EXIT_STOPPED, requests
    return (EXIT_ALL_WARMED if report.all_warmed else EXIT_SOME_FAILED), requests


def _credentials(arguments: argparse.Namespace, stdin: TextIO) -> Credentials | None:
    if arguments.ecr_auth:
        return ecr_credentials(arguments.ecr_auth)
    if arguments.username:
        return credentials_from_stdin(arguments.username, stdin)
    return None


def _not_attempted(request: ImageRequest, cause: WarmError) -> ImageResult:
    reference = request.reference
    return ImageResult(
        reference=request.text,
        repository=reference.repository if reference else None,
        tag=reference.tag if reference else None,
        pinned_digest=reference.pinned_digest if reference else None,
        error=WarmError(ErrorKind.NOT_ATTEMPTED, f"the batch stopped: {cause.message}"),
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
