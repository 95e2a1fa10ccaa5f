"""Motion versions: ingest a clip, derive an edit, import keypoints (each the next version of a
name, written aside and committed), and tag, rename or remove them."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from motionlib.core.errors import InputError, NotFound
from motionlib.core.faults import fault
from motionlib.core.names import Ref, validate_name, validate_tag
from motionlib.library import sidecars
from motionlib.library.base import LibraryBase
from motionlib.library.paths import now, version_dir
from motionlib.store.files import content_path, hash_file, place, remove_tree

if TYPE_CHECKING:
    from motionlib.core.motion import Motion
    from motionlib.index.reader import MotionRecord
    from motionlib.ingest.pipeline import IngestOptions
    from motionlib.processing.ops import Edit


@dataclass
class IngestResult:
    file: str
    status: str  # "created" | "unchanged"
    record: "MotionRecord"
    warnings: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "file": self.file,
            "status": self.status,
            "ref": self.record.ref,
            "record": self.record.to_json(),
            "stats": self.stats,
        }


@dataclass
class DeriveResult:
    record: "MotionRecord"  # the new version
    parent: "MotionRecord"  # the version it was made from
    operation: str
    params: dict
    result: dict
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "ref": self.record.ref,
            "parent": self.parent.ref,
            "operation": self.operation,
            "params": self.params,
            "result": self.result,
            "scores_before": {"overall": self.parent.overall, "occlusion": self.parent.occlusion,
                              "jitter": self.parent.jitter, "framing": self.parent.framing},
            "record": self.record.to_json(),
        }


def _tags(tags: Iterable[str]) -> list[str]:
    return [validate_tag(t) for t in dict.fromkeys(tags)]


class Versions(LibraryBase):
    # ------------------------------------------------------------------ ingest
    def ingest(
        self,
        path: str | os.PathLike,
        *,
        name: str | None = None,
        tags: Iterable[str] = (),
        options: "IngestOptions | None" = None,
        keep_source: bool = True,
        on_start: Callable[[int | None], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> IngestResult:
        """Estimate the poses in a clip and store them as the next version of ``name`` (default:
        the file's stem). The same file with the same settings again is a no-op (``unchanged``)."""
        from motionlib.ingest.pipeline import IngestOptions, analyze
        from motionlib.library import manifests
        from motionlib.media.video import check_file

        t0 = time.perf_counter()
        options = options or IngestOptions()
        path = check_file(Path(path))
        name = validate_name(name if name is not None else path.stem)
        tags = _tags(tags)
        digest = options.digest()
        with self.staging() as staging:
            source = hash_file(path, staging if keep_source else None)
            same = self._same(name, source.sha256, digest, "ingest")
            if same is not None:
                return IngestResult(str(path), "unchanged", same)
            analysis = analyze(path, options, on_start=on_start, progress=progress, while_waiting=_warm_imports)
            manifest = manifests.ingest_manifest(path, source.sha256, source.size, options, analysis)
            record = self._store(staging, name, tags, analysis.motion, manifest, source=source.copy,
                                 dedupe="ingest", raw=analysis.raw)
            if record is None:  # an identical ingest committed while we worked
                return IngestResult(str(path), "unchanged", self._same(name, source.sha256, digest, "ingest"))
        stats = dict(analysis.stats, seconds_ingest=round(time.perf_counter() - t0, 3))
        return IngestResult(str(path), "created", record, list(analysis.quality.warnings), stats)

    # ------------------------------------------------------------------ edits and imports
    def derive(self, ref: str, edit: Callable[["Motion"], "Edit"], *, name: str | None = None,
               tags: Iterable[str] = (), inherit_tags: bool = True) -> DeriveResult:
        """Apply ``edit`` (Motion -> processing.ops.Edit) to a stored version and store the result
        as the next version of ``name`` (default: the same name), with its lineage. The new version
        carries its parent's tags (``inherit_tags``) and ``tags``; to keep a tag on one version
        only, untag the others."""
        from motionlib.library import manifests
        from motionlib.processing.quality import assess_motion

        parent = self.get(ref)
        name = validate_name(name) if name is not None else parent.name
        tags = _tags((list(parent.tags) if inherit_tags else []) + list(tags))
        parent_manifest = self.manifest(parent)
        result = edit(self.load(parent.ref))
        track, cuts = manifests.carry_events(parent_manifest, result)
        quality = assess_motion(result.motion, track=track, cuts=cuts)
        manifest = manifests.derived_manifest(parent, parent_manifest, result, quality, track)
        with self.staging() as staging:
            record = self._store(staging, name, tags, result.motion, manifest)
        return DeriveResult(record, parent, result.operation, result.params, result.result, list(quality.warnings))

    def import_keypoints(self, path: str | os.PathLike, fmt: str, *, name: str | None = None,
                         tags: Iterable[str] = (), fps: float | None = None,
                         size: tuple[int, int] | None = None, person: int = 0) -> IngestResult:
        """Store keypoints made elsewhere (exchange.IMPORT_FORMATS) as the next version of ``name``,
        scored like an ingest. Importing the same content with the same settings again is a no-op."""
        from motionlib import exchange
        from motionlib.library import manifests
        from motionlib.processing.quality import assess_motion

        path = Path(path)
        if fmt not in exchange.IMPORT_FORMATS:
            raise InputError(f"{{format}} {fmt!r}: import reads {', '.join(exchange.IMPORT_FORMATS)}",
                             params=["format"])
        stem = path.name[: -len(path.suffix)] if path.suffix and path.is_file() else path.name
        name = validate_name(name if name is not None else stem)
        tags = _tags(tags)
        got = exchange.read(path, fmt, fps=fps, size=size, person=person)
        quality = assess_motion(got.motion)
        manifest = manifests.import_manifest(got, quality)
        digest = manifest["estimator"]["settings_digest"]
        same = self._same(name, got.sha256, digest, "import")
        if same is not None:
            return IngestResult(str(path), "unchanged", same)
        with self.staging() as staging:
            record = self._store(staging, name, tags, got.motion, manifest, dedupe="import")
        if record is None:
            return IngestResult(str(path), "unchanged", self._same(name, got.sha256, digest, "import"))
        return IngestResult(str(path), "created", record, got.notes + list(quality.warnings))

    def _same(self, name: str, sha256: str, digest: str, operation: str) -> "MotionRecord | None":
        with self.index.reader() as r:
            return r.find_same(name, sha256, digest, operation=operation)

    # ------------------------------------------------------------------ the commit
    def _store(self, staging: Path, name: str, tags: list[str], motion: "Motion", manifest: dict, *,
               source: Path | None = None, dedupe: str | None = None,
               raw: "Motion | None" = None) -> "MotionRecord | None":
        """Write ``motion`` into ``staging`` and commit it as the next version of ``name``, with the
        staged ``source`` copy placed by content. With ``dedupe`` (an operation), return None instead
        when a version of that operation already holds the same name, source and settings."""
        from motionlib.store import finalize, set_manifest, write_version

        staged = staging / "version"
        write_version(staged, motion, manifest, raw)
        fault("after-write")
        sha = manifest["source"]["sha256"]
        digest = manifest["estimator"]["settings_digest"]
        final = None
        try:
            with self.index.write() as w:
                if dedupe is not None and w.has_same(name, sha, digest, dedupe):
                    return None
                self.sweep(w)
                version = w.next_version(name)
                rel = version_dir(name, version)
                final = self.root / rel
                manifest = dict(manifest, name=name, version=version, created=now())
                kept = manifest["source"].get("kept_path")
                if source is not None:
                    kept = (Path("sources") / content_path(sha, source.suffix)).as_posix()
                    manifest["source"] = dict(manifest["source"], kept_path=kept)
                set_manifest(staged, manifest)
                fault("before-rename")
                finalize(staged, final)
                fault("after-rename")
                if source is not None:
                    place(source, self.root / kept)
                fault("after-source")
                w.insert_version(manifest, rel.as_posix(), kept, tags)
                fault("before-commit")
        except BaseException:
            if final is not None and final.exists():
                remove_tree(final)  # renamed but never committed
            raise
        sidecars.write_tags(final, tags)
        return self.get(f"{name}@{version}")

    # ------------------------------------------------------------------ tags
    def tag(self, ref: str, tags: Iterable[str]) -> "MotionRecord":
        return self._retag(ref, [validate_tag(t) for t in tags], add=True)

    def untag(self, ref: str, tags: Iterable[str]) -> "MotionRecord":
        return self._retag(ref, [validate_tag(t) for t in tags], add=False)

    def _retag(self, ref: str, tags: list[str], add: bool) -> "MotionRecord":
        if not tags:
            raise InputError("give at least one tag")
        record = self.get(ref)
        with self.index.write() as w:
            if add:
                w.link_tags(record.id, tags)
            else:
                missing = [t for t in tags if t not in record.tags]
                if missing:
                    raise NotFound(f"{record.ref} is not tagged {', '.join(missing)}")
                w.unlink_tags(record.id, tags)
        record = self.get(record.ref)
        sidecars.write_tags(self.root / record.store_path, record.tags)
        return record

    # ------------------------------------------------------------------ rename and remove
    def rename(self, old: str, new: str) -> list["MotionRecord"]:
        """Rename a motion: every version keeps its number under the new name, and references to
        it as a parent follow. Stored versions are not rewritten; a name sidecar beside each
        version records the new name (and the old ones) so that ``reindex`` keeps it."""
        old = validate_name(Ref.parse(old).name if "@" in old else old)
        new = validate_name(new)
        if old == new:
            raise InputError(f"{old!r} already has that name")
        with self.index.write() as w:
            paths = w.rename(old, new)
        for rel in paths:
            sidecars.write_name(self.root / rel, new, old)
        return self.list(name=new)

    def remove(self, ref: str, *, all_versions: bool = False, force: bool = False) -> list["MotionRecord"]:
        """Remove one version (``name@N``), or with ``all_versions`` every version of a name. A
        version that others were made from (edits) is kept unless ``force``: the error names them
        (they keep their own data either way; only their lineage points to a removed parent)."""
        parsed = Ref.parse(ref)
        if parsed.version is None and not all_versions:
            raise InputError(f"say which version to remove ({parsed.name}@N), or use {{all_versions}} for every "
                             "version", params={"all_versions": "all_versions=True"})
        if parsed.version is not None and all_versions:
            raise InputError("{all_versions} removes every version: give the name without @version",
                             params={"all_versions": "all_versions=True"})
        with self.index.reader() as r:
            if all_versions:
                victims = r.list(name=parsed.name)
                if not victims:
                    raise NotFound(f"no motion named {parsed.name!r} in this library")
            else:
                victims = [r.get(parsed)]
            gone = {v.ref for v in victims}
            children = [m.ref for m in r.children(gone) if m.ref not in gone] if not force else []
        if children:
            shown = ", ".join(children[:5]) + (f" and {len(children) - 5} more" if len(children) > 5 else "")
            raise InputError(f"{', '.join(sorted(gone))} has versions made from it ({shown}): remove those first, "
                             "or use {force} to remove it anyway (they keep their data)",
                             params={"force": "force=True"})
        self.remove_versions(victims)
        return victims


def _warm_imports() -> None:
    """Import what storing needs (zarr, SQLModel: ~1 s here) while pose workers are busy."""
    from motionlib.index import warm_imports as warm_index
    from motionlib.store import warm_imports as warm_store

    import motionlib.processing.quality  # noqa: F401

    warm_index()
    warm_store()
