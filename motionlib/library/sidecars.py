"""The JSON files beside each version directory that let ``reindex`` rebuild what the index alone
knows: ``v0001.tags.json`` (the version's current tags) and ``v0001.name.json`` (its current name
and the names it had). The index is authoritative; a sidecar that cannot be written is skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from motionlib.core.errors import LibraryError
from motionlib.core.names import validate_name

TAGS = ".tags.json"
NAME = ".name.json"
SUFFIXES = (TAGS, NAME)


def path(version_key: str | Path, suffix: str) -> str:
    return str(version_key) + suffix


def _write(files, version_key: str, suffix: str, data: Any) -> None:
    try:
        files.write_text(path(version_key, suffix), json.dumps(data))
    except (OSError, LibraryError):
        pass  # the index is authoritative; sidecars only help reindex


def write_tags(files, version_key: str, tags: Iterable[str]) -> None:
    _write(files, version_key, TAGS, sorted(tags))


def read_tags(files, version_key: str) -> list | None:
    """The tags recorded beside a version (None when there is no sidecar); raises ValueError when
    it is unreadable."""
    text = files.read_text(path(version_key, TAGS))
    return None if text is None else json.loads(text)


def write_name(files, version_key: str, new: str, old: str) -> None:
    """Record that the version is now called ``new`` (and was ``old``, among earlier names)."""
    was: list[str] = []
    try:
        was = json.loads(files.read_text(path(version_key, NAME)) or "{}").get("was", [])
    except (OSError, ValueError, AttributeError, LibraryError):
        pass
    _write(files, version_key, NAME, {"name": new, "was": [n for n in dict.fromkeys(was + [old]) if n != new]})


def remove(files, version_key: str) -> None:
    for suffix in SUFFIXES:
        files.remove_file(path(version_key, suffix))


def renames(files) -> dict[tuple[str, int], str]:
    """(any earlier name, version) -> current name, from the library's name sidecars."""
    out: dict[tuple[str, int], str] = {}
    for side in files.file_keys("motions"):
        if not side.endswith(NAME):
            continue
        try:
            doc = json.loads(files.read_text(side) or "null")
            version = int(files.manifest(side[: -len(NAME)])["version"])
            for old in doc.get("was", []):
                out[(old, version)] = validate_name(doc["name"])
        except Exception:  # noqa: BLE001 - a broken sidecar leaves the stored name
            continue
    return out
