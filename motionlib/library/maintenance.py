"""Keeping a library whole: sweeping what killed writers left, rebuilding the index from the
store (``reindex``, the versions' sidecars giving back their tags and current names), and
checking a library end to end (``doctor``)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Callable

from motionlib.core.errors import IndexDamaged, InputError, LibraryError, MotionlibError
from motionlib.core.names import validate_name, validate_tag
from motionlib.library import sidecars
from motionlib.library.base import STALE_STAGING_SECONDS, LibraryBase, pid_alive
from motionlib.library.paths import INDEX_FILE, now, resolve_library_path

LOW_SPACE = 200 << 20  # bytes free under which doctor warns


class Maintenance(LibraryBase):
    @classmethod
    def open_repairing(cls, path: str | os.PathLike | None = None):
        """Open a library whose index may be unreadable (for ``reindex``): such an index is moved
        aside (``index.sqlite.corrupt-<time>``) and a new one started. Returns (library, where
        the old index went or None)."""
        root = resolve_library_path(path)
        if isinstance(root, str):  # a shared library: PostgreSQL has no file to move aside
            return cls(root), None
        try:
            return cls(root), None
        except IndexDamaged:  # not a full or read-only disk: those leave the index where it is
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
        from motionlib.processing import similarity
        self.clean_staging()
        found, skipped, seen = 0, [], set()
        with self.index.write() as w:
            counters = w.clear_versions()
            renamed = sidecars.renames(self.files)
            for rel in self.files.version_keys():
                try:
                    m = dict(self.files.manifest(rel))
                    m["name"] = renamed.get((m["name"], int(m["version"])), m["name"])
                    parent = m.get("lineage", {}).get("parent")
                    if parent:
                        pname, _, pver = parent.rpartition("@")
                        if pver.isdigit() and (pname, int(pver)) in renamed:
                            m["lineage"] = dict(m["lineage"], parent=f"{renamed[(pname, int(pver))]}@{pver}")
                    kept = m["source"].get("kept_path")
                    kept = kept if kept and self.files.has_file(kept) else None
                    validate_name(motion_row(m, rel, kept).name)
                except Exception as err:  # one unreadable version must not stop the rebuild
                    skipped.append(f"{rel}: {err}")
                    continue
                key = (m["name"], int(m["version"]))
                if key in seen:
                    skipped.append(f"{rel}: duplicate of {key[0]}@{key[1]}")
                    continue
                seen.add(key)
                motion_id = w.insert_version(m, rel, kept, descriptor=similarity.packed(m))
                if "descriptor" not in m:  # stored before descriptors: computed from the arrays now
                    _add_descriptor(w, motion_id, self.files, rel)
                try:
                    tags = sidecars.read_tags(self.files, rel)
                    if tags is not None:
                        w.link_tags(motion_id, [validate_tag(t) for t in tags])
                except (ValueError, InputError):
                    skipped.append(f"{sidecars.path(rel, sidecars.TAGS)}: unreadable tags")
                counters[key[0]] = max(counters.get(key[0], 0), key[1])
                found += 1
            w.set_counters(counters)
        return {"versions": found, "skipped": skipped}

    # ------------------------------------------------------------------ doctor
    def doctor(self, *, fix: bool = False, quick: bool = False,
               progress: Callable[[int, int], None] | None = None) -> dict:
        """Check the library end to end and say how to repair what is wrong: the index's own
        integrity; every version against its directory (there, a plain-file tree, its manifest
        agreeing with its row, and - unless ``quick`` - every array read and validated); files
        no row refers to (left by killed writers); links or special files planted anywhere in
        it; identities' pictures against their hashes; renders left ``running``; free space.

        ``fix`` repairs what is safe: it sweeps leftovers (what ``recover`` sweeps, plus
        unreferenced identity pictures and sidecars), removes planted links (never what they
        point to), and marks dead renders failed. Damage to versions or pictures is not
        repaired: the report names the command that does (its data would be lost)."""
        from motionlib.store.files import hash_file

        files, local = self.files, not self.files.shared
        problems: list[dict] = []

        def problem(check: str, what: str, repair: str, fixable: bool = False) -> None:
            problems.append({"check": check, "problem": what, "repair": repair, "fixable": fixable})

        with self.index.reader() as r:
            integrity = r.integrity()
            records = r.list()
            identities = r.identities()
            sources = r.source_paths()
        if integrity != ["ok"]:
            problem("index", f"the index fails its integrity check ({'; '.join(integrity[:3])})",
                    "`motionlib reindex` rebuilds it from the store (tags come back from the versions' sidecars)")
        # planted links and special files (a directory's only): reported first, never followed below
        links = []
        for top in ("motions", "sources", "identities", "tmp", "cache") if local else ():
            for d, dirs, names in os.walk(self.root / top):
                for name in dirs + names:
                    p = Path(d) / name
                    if p.is_symlink() or not (p.is_dir() or p.is_file()):
                        links.append(p)
        for p in links:
            kind = f"a link to {os.readlink(p)}" if p.is_symlink() else "a special file"
            problem("links", f"{p.relative_to(self.root)} is {kind}; a library holds plain files only",
                    "`motionlib doctor --fix` removes it (never what it points to)", True)
        linked = {p.relative_to(self.root).as_posix() for p in links}
        # versions against the store
        referenced = set()
        renamed = sidecars.renames(files)
        for n, rec in enumerate(records):
            if progress is not None:
                progress(n, len(records))
            referenced.add(rec.store_path)
            has_kept = rec.source_path is not None and files.has_file(rec.source_path)
            rm = (f"copy its kept source {files.describe()}/{rec.source_path} out of the library, "
                  f"`motionlib rm {rec.ref} --force`, then ingest the copy again" if has_kept
                  else f"`motionlib rm {rec.ref} --force` drops it (its data is gone)")
            if any(rec.store_path == k or k.startswith(rec.store_path + "/") or rec.store_path.startswith(k + "/")
                   for k in linked):
                continue  # said above
            if not files.has_version(rec.store_path):
                problem("versions", f"{rec.ref}: its directory {rec.store_path} is missing", rm)
                continue
            try:
                m = files.manifest(rec.store_path)
                key = (m.get("name"), m.get("version"))
                if (renamed.get(key, key[0]), key[1]) != (rec.name, rec.version):
                    raise LibraryError(f"its manifest says {key[0]}@{key[1]}")
                if not quick:
                    motion = files.motion(rec.store_path)
                    if motion.frames != rec.frames:
                        raise LibraryError(f"it holds {motion.frames} frames, its row says {rec.frames}")
                    if files.has_version(rec.store_path + "/raw"):
                        files.motion(rec.store_path, raw=True)
            except MotionlibError as err:
                text = str(err).split("; `motionlib doctor`")[0].replace(" (`motionlib doctor` checks the library)", "")
                problem("versions", text if text.startswith(rec.ref) else f"{rec.ref} is damaged: {text}", rm)
        if progress is not None:
            progress(len(records), len(records))
        # leftovers no row refers to
        pictures = {i.path for i in identities}
        versions = files.version_keys()
        leftovers = [k for k in versions if k not in referenced]
        leftovers += [k for k in files.file_keys("sources") if k not in sources]
        leftovers += [k for k in files.file_keys("identities") if k not in pictures]
        orphans = _orphan_sidecars(files, set(versions))
        leftovers += orphans
        staging = [e for e in (self.tmp_dir.iterdir() if self.tmp_dir.is_dir() else ())
                   if not e.is_symlink() and _dead_staging(e)]
        for k in leftovers:
            problem("leftovers", f"{k} is referred to by nothing (left by a killed writer?)",
                    "`motionlib doctor --fix` removes it", True)
        if staging:
            problem("leftovers", f"{len(staging)} staging director{'y' if len(staging) == 1 else 'ies'} in tmp/ "
                    "whose writer is gone", "`motionlib doctor --fix` removes them", True)
        # identities' pictures
        for ident in identities:
            if ident.path in linked:
                continue  # said above
            p = files.local(ident.path)
            if p is None:
                problem("identities", f"identity {ident.name!r}: its picture {ident.path} is missing",
                        f"`motionlib identity rm {ident.name}`, then add the picture again")
            elif hash_file(p).sha256 != ident.sha256:
                problem("identities", f"identity {ident.name!r}: its picture {ident.path} changed (SHA-256 differs)",
                        f"`motionlib identity rm {ident.name}`, then add the picture again")
        # renders whose process died (on a shared library, only this machine's can be told dead)
        with self.index.reader() as r:
            running = [rec for rec in r.renders() if rec.status == "running"]
        dead = [rec.id for rec in running if local and not (rec.pid and pid_alive(rec.pid))]
        if dead:
            problem("renders", f"{len(dead)} render record(s) still say running but their process is gone",
                    "`motionlib doctor --fix` (or `motionlib renders`) marks them failed", True)
        warnings = []
        if local:
            free = shutil.disk_usage(self.root).free
            if free < LOW_SPACE:
                warnings.append(f"only {free >> 20} MiB free on the library's disk: writes may fail")

        fixed: list[str] = []
        if fix and not self.read_only and any(p["fixable"] for p in problems):
            for p in links:
                p.unlink(missing_ok=True)
                fixed.append(f"removed {p.relative_to(self.root)}")
            swept = self.recover()
            with self.index.write() as w:  # under the lock: nothing new can be half-written now
                with self.index.reader() as r:
                    pictures = {i.path for i in r.identities()}
                for k in files.file_keys("identities"):
                    if k not in pictures:
                        files.remove_file(k)
                        fixed.append(f"removed {k}")
                for k in _orphan_sidecars(files, set(files.version_keys())):
                    files.remove_file(k)
                    fixed.append(f"removed {k}")
                if dead:
                    w.fail_renders(dead, "process died", now())
                    fixed.append(f"marked {len(dead)} dead render(s) failed")
            fixed += [f"removed {n} {what}" for what, n in (("staging directories", swept["staging"]),
                                                          ("unreferenced versions", swept["versions"]),
                                                          ("unreferenced sources", swept["sources"])) if n]
            after = self.doctor(quick=True)  # what is left
            remaining = [p for p in problems if not p["fixable"]] + [p for p in after["problems"] if p["fixable"]]
        else:
            remaining = problems
        return {"library": self.shown, "read_only": self.read_only,
                "checked": {"versions": len(records), "identities": len(identities), "quick": quick},
                "problems": remaining, "fixed": fixed, "warnings": warnings}


def _orphan_sidecars(files, versions: set[str]) -> list[str]:
    """Sidecar files whose version is gone."""
    out = []
    for k in files.file_keys("motions"):
        folder, _, name = k.rpartition("/")
        if f"{folder}/{name.split('.', 1)[0]}" not in versions:
            out.append(k)
    return out


def _dead_staging(entry: Path) -> bool:
    """A staging directory whose writer is gone (or that is a day old), as ``clean_staging`` sees it."""
    pid_text = entry.name.split("-", 1)[0]
    if not pid_text.isdigit():
        return True
    if int(pid_text) == os.getpid():
        return False
    try:
        old = time.time() - entry.stat().st_mtime > STALE_STAGING_SECONDS
    except OSError:
        return False
    return old or not pid_alive(int(pid_text))


def _add_descriptor(w, motion_id: int, files, key: str) -> None:
    from motionlib.processing import similarity

    try:
        vec = similarity.descriptor(files.motion(key))
    except MotionlibError:
        return  # a damaged version: doctor names it
    if vec is not None:
        w.set_descriptor(motion_id, similarity.VERSION, similarity.to_blob(vec))
