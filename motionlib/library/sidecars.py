"""The JSON files beside each version directory that let ``reindex`` rebuild what the index alone
knows: ``v0001.tags.json`` (the version's current tags) and ``v0001.name.json`` (its current name
and the names it had). The index is authoritative; a sidecar that cannot be written is skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from motionlib.core.names import validate_name
from motionlib.store.files import write_json

TAGS = ".tags.json"
NAME = ".name.json"
SUFFIXES = (TAGS, NAME)


def path(version_dir: Path, suffix: str) -> Path:
    return Path(str(version_dir) + suffix)


def _write(version_dir: Path, suffix: str, data: Any) -> None:
    try:
        write_json(path(version_dir, suffix), data)
    except OSError:
        pass  # the index is authoritative; sidecars only help reindex


def write_tags(version_dir: Path, tags: Iterable[str]) -> None:
    _write(version_dir, TAGS, sorted(tags))


def read_tags(version_dir: Path) -> list | None:
    """The tags recorded beside a version (None when there is no sidecar); raises ValueError when
    it is unreadable."""
    p = path(version_dir, TAGS)
    return json.loads(p.read_text()) if p.exists() else None


def write_name(version_dir: Path, new: str, old: str) -> None:
    """Record that the version is now called ``new`` (and was ``old``, among earlier names)."""
    was: list[str] = []
    try:
        was = json.loads(path(version_dir, NAME).read_text()).get("was", [])
    except (OSError, ValueError, AttributeError):
        pass
    _write(version_dir, NAME, {"name": new, "was": [n for n in dict.fromkeys(was + [old]) if n != new]})


def remove(version_dir: Path) -> None:
    for suffix in SUFFIXES:
        path(version_dir, suffix).unlink(missing_ok=True)


def renames(motions_dir: Path) -> dict[tuple[str, int], str]:
    """(any earlier name, version) -> current name, from the name sidecars below ``motions_dir``."""
    from motionlib.store import read_manifest

    out: dict[tuple[str, int], str] = {}
    for side in motions_dir.glob(f"*/v[0-9]*{NAME}"):
        try:
            doc = json.loads(side.read_text())
            version = int(read_manifest(Path(str(side)[: -len(NAME)]))["version"])
            for old in doc.get("was", []):
                out[(old, version)] = validate_name(doc["name"])
        except Exception:  # noqa: BLE001 - a broken sidecar leaves the stored name
            continue
    return out
