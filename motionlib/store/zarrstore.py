from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from motionlib.core.errors import LibraryError, disk_problem
from motionlib.core.motion import Motion
from motionlib.core.skeleton import get_skeleton
from motionlib.store.files import fsync_dir, fsync_file, write_text

MANIFEST_KEY = "motionlib"
CHUNK_FRAMES = 1024
MAX_MANIFEST_BYTES = 16 << 20  # a manifest is a few KiB; a long take's cleaning report, some MiB
_ARRAYS = ("keypoints", "confidence", "timestamps", "world", "presence")


RAW_GROUP = "raw"


def write_version(path: Path, motion: Motion, manifest: dict[str, Any], raw: Motion | None = None) -> None:
    """Write ``motion`` as a new Zarr v3 group at ``path`` (which must not exist); ``raw`` (the
    estimator's uncleaned track, same frames) goes into its ``raw`` subgroup."""
    import zarr
    from zarr.storage import LocalStore

    motion.validate()
    path = Path(path)
    if path.exists():
        raise LibraryError(f"refusing to overwrite {path}")
    group = zarr.open_group(store=LocalStore(str(path)), mode="w-", zarr_format=3)
    _write_arrays(group, motion)
    if raw is not None:
        raw.validate()
        if raw.frames != motion.frames:
            raise LibraryError("the raw track must have the stored track's frames")
        _write_arrays(group.create_group(RAW_GROUP), raw)
    group.attrs[MANIFEST_KEY] = manifest


def _write_arrays(group, motion: Motion) -> None:
    arrays = {
        "keypoints": motion.keypoints.astype(np.float32, copy=False),
        "confidence": motion.confidence.astype(np.float32, copy=False),
        "timestamps": motion.timestamps.astype(np.float64, copy=False),
        "world": None if motion.world is None else motion.world.astype(np.float32, copy=False),
        "presence": None if motion.presence is None else motion.presence.astype(np.float32, copy=False),
    }
    for name, data in arrays.items():
        if data is None:
            continue
        chunks = (min(CHUNK_FRAMES, max(1, data.shape[0])),) + data.shape[1:]
        fill = float("nan") if data.dtype.kind == "f" and name in ("keypoints", "world") else 0.0
        arr = group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks, fill_value=fill)
        arr[...] = data


def set_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest of a *staged* (not yet finalized) version."""
    meta_path = Path(path) / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta.setdefault("attributes", {})[MANIFEST_KEY] = manifest
    write_text(meta_path, json.dumps(meta, indent=2, allow_nan=False))


def finalize(staged: Path, final: Path) -> None:
    """Make every file of the staged version read-only, fsync, and rename it into place."""
    staged, final = Path(staged), Path(final)
    for root, _dirs, files in os.walk(staged):
        for f in files:
            p = os.path.join(root, f)
            fsync_file(Path(p))
            os.chmod(p, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staged, final)  # atomic on one filesystem; fails if final exists
    fsync_dir(final.parent)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a stored version, read as JSON (no zarr import)."""
    meta_path = Path(path) / "zarr.json"
    try:
        if meta_path.is_symlink() or not meta_path.is_file() or meta_path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ValueError(f"{meta_path.name} is not a regular file of at most {MAX_MANIFEST_BYTES >> 20} MiB")
        meta = json.loads(meta_path.read_text())
        return meta["attributes"][MANIFEST_KEY]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as err:
        raise LibraryError(f"{path} is not a readable motion version ({err})") from None


def stored_files(path: Path) -> list[Path]:
    """Every file of a stored version; LibraryError when one is a link or not a plain file (a
    version is only ever written as plain files, so such a thing was planted or damaged, and
    reading it could follow it anywhere - /dev/zero, say)."""
    out = []
    for d, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(d) / name
            if p.is_symlink() or not (p.is_dir() or p.is_file()):
                raise LibraryError(f"{p} is a link or a special file, which no version holds "
                                   "(`motionlib doctor` checks the library)")
            if name in files:
                out.append(p)
    return out


def read_motion(path: Path, *, raw: bool = False, span: tuple[float | None, float | None] | None = None) -> Motion:
    """The stored track of a version; ``raw=True``: the estimator's uncleaned track kept beside
    it (LibraryError when the version keeps none: imports and edits do not).

    ``span=(start, end)`` seconds (None: open): only the frames whose timestamps lie in
    [start, end), and the one after them (it gives the last its duration), read from the chunks
    that hold them; timestamps and duration stay the whole version's, so that ``ops.trim`` of
    this part is ``ops.trim`` of the whole (a long take is trimmed without reading it all)."""
    from zarr.storage import LocalStore

    manifest = read_manifest(path)
    stored_files(path)
    return read_group(LocalStore(str(path), read_only=True), manifest, path, raw=raw, span=span)


def read_group(store, manifest: dict[str, Any], where, *, raw: bool = False,
               span: tuple[float | None, float | None] | None = None) -> Motion:
    """``read_motion`` from any zarr store (a directory's, an object store's) holding a version
    whose ``manifest`` was read already; ``where`` names it in errors."""
    import zarr

    ref = f"{manifest.get('name')}@{manifest.get('version')}"
    try:
        group = zarr.open_group(store=store, mode="r")
        if raw:
            if RAW_GROUP not in set(group.group_keys()):
                raise LibraryError(f"{ref} keeps no raw track (only ingested versions do)")
            group = group[RAW_GROUP]
        names = set(group.array_keys())
        part = slice(None)
        if span is not None:
            ts = group["timestamps"][...]
            start, end = span
            a = int(np.searchsorted(ts, -np.inf if start is None else start - 1e-9))
            b = int(np.searchsorted(ts, np.inf if end is None else end - 1e-9))
            a = min(a, ts.size - 1)
            part = slice(a, max(a + 1, min(b + 1, ts.size)))
        data = {n: (group[n][part] if n in names else None) for n in _ARRAYS}
        return Motion(
            skeleton=get_skeleton(manifest["skeleton"]),
            keypoints=data["keypoints"],
            confidence=data["confidence"],
            timestamps=data["timestamps"],
            width=int(manifest["width"]),
            height=int(manifest["height"]),
            duration=float(manifest["duration"]),
            world=data["world"],
            presence=data["presence"],
            attrs={"manifest": manifest, "first_frame": part.start or 0},
        ).validate()
    except LibraryError:
        raise
    except Exception as err:  # a damaged chunk or array metadata: zstd, JSON, shape or value errors
        problem = disk_problem(err, Path(where)) if isinstance(err, OSError) and isinstance(where, Path) else None
        raise problem or LibraryError(
            f"{ref} is damaged: its stored arrays cannot be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:120] if str(err) else 'no detail'}); `motionlib doctor` checks the library"
        ) from None
