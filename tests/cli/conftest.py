"""Fixtures of the CLI tests: the command run in-process, and an embedded AWS on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from cache_pilot_cli.main import main
from cache_pilot_local.server import EmbeddedAws, start_embedded_aws


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


Cli = Callable[..., CliRun]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `cache-pilot ARGS...` in this process, as the console script would."""

    def run(*argv: str) -> CliRun:
        capsys.readouterr()  # only this command's output
        exit_code = main(list(argv))
        captured = capsys.readouterr()
        return CliRun(exit_code, captured.out, captured.err)

    return run


@pytest.fixture
def embedded() -> Iterator[EmbeddedAws]:
    aws = start_embedded_aws(port=0)
    yield aws
    aws.stop()
