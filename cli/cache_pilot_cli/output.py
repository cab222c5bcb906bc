"""Where the commands write: rich on a terminal, plain text elsewhere.

Data (problems, references, export lines) is always written verbatim: never parsed as rich
markup (a platform list like '[linux/amd64]' is not a style) and never wrapped, so one problem
stays one line for people and for scripts.
"""

from __future__ import annotations

import json
import os
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console, RenderableType
from rich.status import Status
from rich.text import Text

# A pipe or a file has no width; rich would assume 80 columns and fold the tables.
_PLAIN_WIDTH = 160


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _PLAIN_WIDTH
    return console


class Output:
    def __init__(self) -> None:
        self._out = _console(stderr=False)
        self._err = _console(stderr=True)

    def line(self, text: str, style: str | None = None) -> None:
        """One line of stdout, exactly as given."""
        self._out.out(text, style=style, highlight=False)

    def blank(self) -> None:
        self._out.out("")

    def heading(self, text: str) -> None:
        self._out.print()
        self._out.print(Text(text, style="bold cyan"))

    def step(self, text: str) -> None:
        """A step of a longer run (the demo): a rule across the screen with its title."""
        self._out.print()
        self._out.rule(Text(text, style="bold"), align="left", style="cyan")

    def show(self, renderable: RenderableType) -> None:
        self._out.print(renderable)

    def status(self, text: str) -> Status:
        """A spinner with `text` while a block runs, on a terminal; nothing elsewhere."""
        return self._out.status(Text(text, style="dim"))

    def warning(self, text: str) -> None:
        self._out.out(text, style="yellow", highlight=False)

    def error(self, text: str) -> None:
        """One line of stderr."""
        self._err.out(text, style="red", highlight=False)

    def json(self, data: Any) -> None:
        self._out.out(json.dumps(data, indent=2, default=str), highlight=False)


def aws_failure(exc: Exception, table_name: str) -> str:
    """One line for an AWS error; a missing table says which option names the right one."""
    if (
        isinstance(exc, ClientError)
        and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
    ):
        return (
            f"{exc}; is '{table_name}' the state table? pass --table (or set "
            "CACHE_PILOT_STATE_TABLE) with the stack's StateTableName output"
        )
    return str(exc)
