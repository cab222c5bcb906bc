"""Configuration documents kept in files, read as Parameter Store would hold them."""

from __future__ import annotations

from pathlib import Path

from cache_pilot.config import ConfigSource

STRING_LIST_SUFFIX = ".list"


class UnreadableDocument(Exception):
    """A file named on the command line cannot be read."""


def string_list_value(text: str) -> str:
    """Parameter Store's StringList value (comma-separated) from a file that may instead put
    one reference on each line."""
    items = (item.strip() for line in text.splitlines() for item in line.split(","))
    return ",".join(item for item in items if item)


def read_config_file(path: str) -> ConfigSource:
    """A file as the parameter it would be: named by its path; a `.list` file is a StringList,
    any other file a String holding one YAML or JSON document."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UnreadableDocument(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"cannot read {path}: not UTF-8 text ({exc.reason})") from exc
    if path.endswith(STRING_LIST_SUFFIX):
        return ConfigSource(name=path, type="StringList", value=string_list_value(text))
    return ConfigSource(name=path, type="String", value=text)
