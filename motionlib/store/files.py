"""Files written so that nobody ever sees half of one, and files kept by content.

* :func:`atomic_path` / :func:`atomic_dir` give a temporary name beside the destination (one
  style for every writer: ``.<name>.<pid>-<random>.part``); the caller writes there, and on success
  it is renamed over the destination, on any error (or interrupt) removed.
* :func:`hash_file` reads a file once for its SHA-256 and size, copying it aside in the same pass.
* :func:`place` moves a staged file to its content address (``<ab>/<sha256><ext>``), read-only.

Standard library only: the preview, export and render writers use it as well as the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from motionlib.core.errors import InputError, LibraryError, disk_problem

PART_SUFFIX = ".part"


def part_name(dest: Path) -> Path:
    """The temporary name a write of ``dest`` goes to before it is renamed into place."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{PART_SUFFIX}")


@contextlib.contextmanager
def atomic_path(dest: Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; when the block succeeds it replaces ``dest``."""
    dest = Path(dest)
    tmp = part_name(dest)
    try:
        yield tmp
        if fsync:
            fsync_file(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a new temporary directory beside ``dest`` (which must be absent or empty); when the
    block succeeds the directory is renamed to ``dest``."""
    dest = Path(dest)
    tmp = part_name(dest)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if dest.exists():
            dest.rmdir()  # empty, or this fails rather than lose what is there
        os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(dest: Path, text: str, *, fsync: bool = False) -> Path:
    with atomic_path(dest, fsync=fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def write_json(dest: Path, data: Any, *, indent: int | None = None, fsync: bool = False) -> Path:
    """``data`` as JSON (NaN refused), replacing ``dest`` atomically."""
    return write_text(dest, json.dumps(data, indent=indent, allow_nan=False, default=str), fsync=fsync)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int
    copy: Path | None = None  # where the file was copied, when asked


def hash_file(path: Path, copy_into: Path | None = None) -> Digest:
    """SHA-256 and size of ``path``; with ``copy_into`` (a directory) also a synced copy there,
    named ``source<ext>``, made in the same pass."""
    path = Path(path)
    h = hashlib.sha256()
    size = 0
    dest = None if copy_into is None else Path(copy_into) / f"source{safe_suffix(path)}"
    out = None if dest is None else open(dest, "wb")
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
                if out is not None:
                    out.write(chunk)
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
    except OSError as err:
        if dest is not None and err.filename != str(path):  # the copy failed, not the reading
            raise disk_problem(err, dest.parent) or LibraryError(f"cannot write {dest}: {err.strerror}") from None
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    finally:
        if out is not None:
            out.close()
    return Digest(h.hexdigest(), size, dest)


def safe_suffix(path: Path, default: str = ".bin") -> str:
    """The file's extension, lower-case, when it is a plain one (else ``default``)."""
    ext = Path(path).suffix.lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else default


def content_path(sha256: str, ext: str) -> Path:
    """Where content with this digest lives below a content-addressed folder."""
    return Path(sha256[:2]) / f"{sha256}{ext}"


def place(staged: Path, dest: Path) -> None:
    """Move a staged content-addressed file to ``dest`` (read-only) unless it is there already."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o444)
        os.replace(staged, dest)


def remove_tree(path: Path) -> None:
    """Remove a directory tree, read-only files included; what cannot be removed is left. A
    symbolic link (planted where a directory should be) is removed itself: nothing it points to
    is touched, not even its permissions."""
    def _onerror(func, p, _exc):
        if os.path.islink(p):
            return
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o644)
            func(p)
        except OSError:
            pass

    if os.path.islink(path):
        os.unlink(path)
    elif path.exists():
        shutil.rmtree(path, onerror=_onerror)
