"""`cache-pilot validate FILE...`: the configuration checks of a sync, offline."""

from __future__ import annotations

from collections.abc import Sequence

from cache_pilot.config import ConfigSource, ConfigurationError, load_config
from cache_pilot_cli.documents import UnreadableDocument, read_config_file
from cache_pilot_cli.output import Output


def counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def validate_files(paths: Sequence[str], output: Output) -> int:
    """Exit status 0 when the files form a valid configuration; 1 with one line per problem."""
    sources: list[ConfigSource] = []
    unreadable: list[str] = []
    for path in paths:
        try:
            sources.append(read_config_file(path))
        except UnreadableDocument as exc:
            unreadable.append(str(exc))
    if unreadable:
        # Validating the rest would report images of the missing file's rules as orphans.
        for message in unreadable:
            output.error(f"cache-pilot validate: {message}")
        return 1
    try:
        config = load_config(sources)
    except ConfigurationError as exc:
        for problem in exc.problems:
            output.line(str(problem))
        return 1
    output.line(
        f"valid: {counted(len(config.rules), 'rule')}, {counted(len(config.images), 'image')} "
        f"in {counted(len(sources), 'file')}"
    )
    return 0
