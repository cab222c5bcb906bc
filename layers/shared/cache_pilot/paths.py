"""Parameter Store paths: `/cache-pilot` and `/cache-pilot/` name the same tree."""

from __future__ import annotations


def normalize_path(path: str) -> str:
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"


def is_under_path(name: str, path: str) -> bool:
    prefix = normalize_path(path)
    return (name if name.startswith("/") else "/" + name).startswith(prefix)
