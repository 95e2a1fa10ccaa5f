"""Where a library lives and how its directory is laid out (see the package docstring)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
from pathlib import Path

from motionlib.core.errors import LibraryError

ENV_LIBRARY = "MOTIONLIB_LIBRARY"
INDEX_FILE = "index.sqlite"
# what a library directory holds; a non-empty directory with none of these is not a library
ENTRIES = (INDEX_FILE, "motions", "sources", "tmp", "identities", "cache")


def default_library_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("motionlib", appauthor=False))


def resolve_library_path(path: str | os.PathLike | None = None) -> Path:
    """The given path, else $MOTIONLIB_LIBRARY, else the per-user data directory."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get(ENV_LIBRARY)
    if env:
        return Path(env).expanduser()
    return default_library_path()


def prepare_root(root: Path, create: bool) -> None:
    """Refuse what is not a library; create a new one where asked."""
    if root.exists() and not root.is_dir():
        raise LibraryError(f"library path {root} exists and is not a directory")
    if root.exists():
        entries = {p.name for p in root.iterdir()}
        if entries and not (entries & set(ENTRIES)):
            raise LibraryError(
                f"{root} is not empty and is not a motionlib library; choose a new or empty directory"
            )
        return
    if not create:
        raise LibraryError(f"no library at {root}")
    try:
        root.mkdir(parents=True)
    except OSError as err:
        raise LibraryError(f"cannot create the library at {root}: {err.strerror}") from None


def name_key(name: str) -> str:
    """Directory name for a motion name: readable, filesystem-safe, collision-free."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40] or "motion"
    return f"{slug}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


def version_dir(name: str, version: int) -> Path:
    """A version's directory, relative to the library root."""
    return Path("motions") / name_key(name) / f"v{version:04d}"


def now() -> str:
    """A record's time stamp: UTC, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
