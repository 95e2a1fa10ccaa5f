"""Keeping a library whole: sweeping what killed writers left, and rebuilding the index from the
store (``reindex``), the versions' sidecars giving back their tags and current names."""

from __future__ import annotations

import os
import time
from pathlib import Path

from motionlib.core.errors import InputError, LibraryError
from motionlib.core.names import validate_name, validate_tag
from motionlib.library import sidecars
from motionlib.library.base import LibraryBase
from motionlib.library.paths import INDEX_FILE, resolve_library_path


class Maintenance(LibraryBase):
    @classmethod
    def open_repairing(cls, path: str | os.PathLike | None = None):
        """Open a library whose index may be unreadable (for ``reindex``): such an index is moved
        aside (``index.sqlite.corrupt-<time>``) and a new one started. Returns (library, where
        the old index went or None)."""
        root = resolve_library_path(path)
        try:
            return cls(root), None
        except LibraryError:
            index = root / INDEX_FILE
            if not index.exists():
                raise
        aside = index.with_name(f"{INDEX_FILE}.corrupt-{int(time.time())}")
        index.rename(aside)
        for suffix in ("-wal", "-shm"):
            Path(str(index) + suffix).unlink(missing_ok=True)
        return cls(root), aside

    def recover(self) -> dict:
        """Remove staging directories of dead processes and data no row references."""
        staging = self.clean_staging()
        with self.index.write() as w:
            removed = self.sweep(w)
        return {"staging": staging, **removed}

    def reindex(self) -> dict:
        """Rebuild the index from the store: one row per readable version directory."""
        from motionlib.index.writer import motion_row
        from motionlib.store import read_manifest

        self.clean_staging()
        found, skipped, seen = 0, [], set()
        with self.index.write() as w:
            counters = w.clear_versions()
            renamed = sidecars.renames(self.motions_dir)
            for d in sorted(self.motions_dir.glob("*/v[0-9]*")):
                if not d.is_dir():
                    continue
                rel = d.relative_to(self.root)
                try:
                    m = dict(read_manifest(d))
                    m["name"] = renamed.get((m["name"], int(m["version"])), m["name"])
                    parent = m.get("lineage", {}).get("parent")
                    if parent:
                        pname, _, pver = parent.rpartition("@")
                        if pver.isdigit() and (pname, int(pver)) in renamed:
                            m["lineage"] = dict(m["lineage"], parent=f"{renamed[(pname, int(pver))]}@{pver}")
                    kept = m["source"].get("kept_path")
                    kept = kept if kept and (self.root / kept).exists() else None
                    validate_name(motion_row(m, rel.as_posix(), kept).name)
                except Exception as err:  # one unreadable version must not stop the rebuild
                    skipped.append(f"{rel}: {err}")
                    continue
                key = (m["name"], int(m["version"]))
                if key in seen:
                    skipped.append(f"{rel}: duplicate of {key[0]}@{key[1]}")
                    continue
                seen.add(key)
                motion_id = w.insert_version(m, rel.as_posix(), kept)
                try:
                    tags = sidecars.read_tags(d)
                    if tags is not None:
                        w.link_tags(motion_id, [validate_tag(t) for t in tags])
                except (ValueError, InputError):
                    skipped.append(f"{sidecars.path(rel, sidecars.TAGS)}: unreadable tags")
                counters[key[0]] = max(counters.get(key[0], 0), key[1])
                found += 1
            w.set_counters(counters)
        return {"versions": found, "skipped": skipped}
