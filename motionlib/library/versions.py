"""Motion versions: ingest a clip, derive an edit, import keypoints (each the next version of a
name, written aside and committed), and tag, rename or remove them."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from motionlib.core.errors import InputError, LibraryError, MotionlibError, NotFound
from motionlib.core.faults import fault
from motionlib.core.names import Ref, validate_name, validate_tag
from motionlib.library import sidecars
from motionlib.library.base import LibraryBase
from motionlib.library.paths import is_shared, now, version_dir
from motionlib.store.files import content_path, hash_file

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
        return IngestResult(str(path), "created", record,
                            list(analysis.quality.warnings) + self._near_duplicates(record), stats)

    # ------------------------------------------------------------------ edits and imports
    def ingest_many(self, paths: Iterable[str | os.PathLike], *, jobs: int = 0, name: str | None = None,
                    tags: Iterable[str] = (), options: "IngestOptions | None" = None, keep_source: bool = True,
                    events: Callable[[int, str, int | None], None] | None = None,
                    ) -> list["IngestResult | MotionlibError"]:
        """Ingest several clips, ``jobs`` at a time in worker processes (0: one per core; 1, or a
        single clip: in this process). Each clip is ``ingest`` in its own process, committing
        under the index's write lock like any writer; one that fails gives its MotionlibError in
        its place and the others go on. With several clips and ``options.workers`` unset, each
        clip gets one pose tracker (the clips are the parallel work). ``events(i, kind, n)``
        reports clip ``i``: ``"start"`` (n = frames, or None), ``"frames"`` (n done),
        ``"done"``/``"failed"``. Returns a result or error per clip, in the order given."""
        import dataclasses
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        from motionlib.ingest.pipeline import IngestOptions

        paths = [Path(p) for p in paths]
        tags = list(tags)
        options = options or IngestOptions()
        if jobs < 0:
            raise InputError("{jobs} must be >= 0", params=["jobs"])
        jobs = min(len(paths), jobs or os.cpu_count() or 1)
        emit = events or (lambda i, kind, n: None)
        results: list = [None] * len(paths)
        if jobs <= 1:
            for i, path in enumerate(paths):
                try:
                    results[i] = self.ingest(path, name=name, tags=tags, options=options, keep_source=keep_source,
                                             on_start=lambda n, i=i: emit(i, "start", n),
                                             progress=lambda n, i=i: emit(i, "frames", n))
                    emit(i, "done", None)
                except MotionlibError as err:
                    results[i] = err
                    emit(i, "failed", None)
            return results
        if options.workers == 0:
            options = dataclasses.replace(options, workers=1)
        # fork where there is one: the workers start without importing anything again (this
        # process has not imported mediapipe; each worker imports it once, for all its clips)
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        queue = ctx.Queue()
        threads = max(1, (os.cpu_count() or 1) // jobs)  # an estimator that runs threads shares the cores
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(queue, threads)) as pool:
            pending = {pool.submit(_ingest_one, self.location, i, str(p), name, tags, options, keep_source): i
                       for i, p in enumerate(paths)}
            try:
                while pending:
                    finished, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                    _drain(queue, emit)
                    for future in finished:
                        i = pending.pop(future)
                        try:
                            results[i] = future.result()
                            emit(i, "done", None)
                        except MotionlibError as err:
                            results[i] = err
                            emit(i, "failed", None)
                _drain(queue, emit)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return results

    def derive(self, ref: str, edit: Callable[["Motion"], "Edit"], *, name: str | None = None,
               tags: Iterable[str] = (), inherit_tags: bool = True,
               span: tuple[float | None, float | None] | None = None) -> DeriveResult:
        """Apply ``edit`` (Motion -> processing.ops.Edit) to a stored version and store the result
        as the next version of ``name`` (default: the same name), with its lineage. The new version
        carries its parent's tags (``inherit_tags``) and ``tags``; to keep a tag on one version
        only, untag the others. ``span`` (seconds): the edit reads only the frames of that span,
        as ``ops.trim`` does - only those are loaded (``load``), so any length of take can be cut."""
        from motionlib.library import manifests
        from motionlib.processing.quality import assess_motion

        parent = self.get(ref)
        name = validate_name(name) if name is not None else parent.name
        tags = _tags((list(parent.tags) if inherit_tags else []) + list(tags))
        parent_manifest = self.manifest(parent)
        result = edit(self.load(parent.ref, span=span))
        track, cuts = manifests.carry_events(parent_manifest, result)
        quality = assess_motion(result.motion, track=track, cuts=cuts)
        quality.warnings[:0] = result.warnings  # the edit's own (a loop that does not loop) first
        manifest = manifests.derived_manifest(parent, parent_manifest, result, quality, track)
        with self.staging() as staging:
            record = self._store(staging, name, tags, result.motion, manifest)
        return DeriveResult(record, parent, result.operation, result.params, result.result, list(quality.warnings))

    def mine(self, ref: str, *, min_length: float = 3.0, max_length: float = 6.0, top: int = 5,
             loops: bool = False, name: str | None = None, tags: Iterable[str] = ("mined",),
             sheet: Path | None = None, dry_run: bool = False) -> dict:
        """Split a long performance into ranked candidates (processing/mining.py) and keep each
        as a motion of its own, ``NAME-1``, ``NAME-2`` ... (default NAME: the version's name plus
        ``-mined``): a ``trim`` of ``ref`` (lineage back to it) and, with ``loops``, that trim's
        ``loop`` (half the candidate to all of it) as the next version; candidates that loop are then ranked first (a seamless loop
        keeps its score, a small jump 0.8 of it, no loop 0.3). ``sheet``: a PNG of one key frame
        of each, labelled. ``dry_run``: rank and report, store nothing. Returns the report."""
        import numpy as np

        from motionlib.processing import mining, ops
        from motionlib.render.preview import key_frames

        record = self.get(ref)
        base = validate_name(name if name is not None else f"{record.name}-mined")
        if sheet is not None:
            from motionlib.media.encode import check_output

            sheet = check_output(Path(sheet), overwrite=False, suffixes=(".png",))
        manifest = self.manifest(record)
        motion = self.load(record.ref)
        cuts = [c["time"] for c in manifest.get("quality", {}).get("details", {}).get("framing", {}).get("cuts", [])]
        cuts += [c["time"] for c in (manifest.get("track") or {}).get("jump_cuts", [])]
        found = mining.candidates(motion, min_length=min_length, max_length=max_length,
                                  top=top * 3 if loops else top, track=manifest.get("track"), cuts=cuts)
        rows = []
        for c in found:
            row = {**c.to_json(), "rank_score": c.score}
            if loops:
                try:
                    lp = ops.loop(ops.trim(motion, c.start, c.end).motion, **_loop_window(c.end - c.start))
                    row["loop"] = {"verdict": lp.result["verdict"], "seam_vs_typical_step": lp.result["seam_vs_typical_step"],
                                   "duration": lp.result["duration"]}
                    row["rank_score"] = c.score * {"seamless": 1.0, "small jump": 0.8}.get(lp.result["verdict"], 0.3)
                except MotionlibError as err:
                    row["loop"] = {"verdict": "no loop", "why": str(err)}
                    row["rank_score"] = c.score * 0.3
            rows.append(row)
        rows = sorted(rows, key=lambda r: -r["rank_score"])[:top]
        for k, row in enumerate(rows, 1):
            row["name"] = f"{base}-{k}"
            window = ops.trim(motion, row["start"], row["end"]).motion
            row["key_frame"] = int(np.searchsorted(motion.timestamps, row["start"] - 1e-9)) + key_frames(window, 1)[0]
        if not dry_run:
            for row in rows:
                made = self.derive(record.ref, lambda m, r=row: ops.trim(m, r["start"], r["end"]), name=row["name"],
                                   tags=list(tags), inherit_tags=False, span=(row["start"], row["end"]))
                row["ref"] = made.record.ref
                if loops and row["loop"]["verdict"] != "no loop":
                    looped = self.derive(made.record.ref,
                                         lambda m, r=row: ops.loop(m, **_loop_window(r["end"] - r["start"])),
                                         tags=list(tags), inherit_tags=False)
                    row["ref"] = looped.record.ref
        report = {"ref": record.ref, "min_length": min_length, "max_length": max_length, "loops": loops,
                  "candidates": rows, "stored": not dry_run}
        if sheet is not None and rows:
            import cv2

            from motionlib.core.errors import SourceUnavailable
            from motionlib.render.preview import sheet_image
            from motionlib.store.files import atomic_path

            try:
                source, offset = self.aligned_source(record)
            except SourceUnavailable:
                source, offset = None, 0.0
            labels = [f"{r['name']}  score {r['rank_score']:.2f}\n{r['start']:.1f}-{r['end']:.1f}s"
                      + (f"  {r['loop']['verdict']}" if loops else "") for r in rows]
            order = sorted(range(len(rows)), key=lambda k: rows[k]["key_frame"])
            image = sheet_image(motion, [rows[k]["key_frame"] for k in order], source=source, source_offset=offset,
                                labels=[labels[k] for k in order], columns=min(4, len(rows)),
                                title=f"{record.ref}: {len(rows)} candidates of {min_length:g}-{max_length:g}s")
            with atomic_path(sheet) as tmp:
                ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                Path(tmp).write_bytes(data.tobytes())
            report["sheet"] = str(sheet)
        return report

    def tempo(self, ref: str, *, measure: bool = False) -> dict:
        """A version's tempo and beats: the ones stored with it (``stored: true``), else - or with
        ``measure`` - measured now from its kept source's audio (when the version still sits on
        the source's frames) or else from the motion (``stored: false``); nothing is written.
        Without a measurable tempo, ``bpm`` is None and ``why`` says why."""
        from motionlib.ingest.tempo import measure as measure_tempo

        record = self.get(ref)
        manifest = self.manifest(record)
        stored = manifest.get("tempo")
        if stored is not None and not measure:
            return {"ref": record.ref, "stored": True, **stored}
        src = manifest.get("source") or {}
        source = self.source_file(record) if src.get("aligned", True) else None
        got = measure_tempo(self.load(record.ref), source, float(src.get("time_offset") or 0.0))
        return {"ref": record.ref, "stored": False, **got}

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
        return IngestResult(str(path), "created", record,
                            got.notes + list(quality.warnings) + self._near_duplicates(record))

    def _near_duplicates(self, record: "MotionRecord") -> list[str]:
        """A warning when a new version moves like one already in the library (similarity at
        least processing/similarity.NEAR_DUPLICATE): the same take, or an edit of it, again."""
        from motionlib.processing import similarity

        try:
            found = self.similar(record.ref, 1)
        except NotFound:  # too few frames for a descriptor
            return []
        return [f"near-duplicate: moves like {r.ref} already in the library (similarity {s:.3f})"
                for r, s in found if s >= similarity.NEAR_DUPLICATE]

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
        from motionlib.processing import similarity
        from motionlib.store import set_manifest, write_version

        vec = similarity.descriptor(motion)
        manifest = {k: v for k, v in manifest.items() if k != "descriptor"}  # never the parent's
        if vec is not None:  # kept in the store with the version, so reindex brings it back
            manifest["descriptor"] = similarity.stored(vec)
        staged = staging / "version"
        write_version(staged, motion, manifest, raw)
        fault("after-write")
        sha = manifest["source"]["sha256"]
        digest = manifest["estimator"]["settings_digest"]
        placed = None
        try:
            with self.index.write() as w:
                if dedupe is not None and w.has_same(name, sha, digest, dedupe):
                    return None
                self.sweep(w)
                version = w.next_version(name)
                rel = version_dir(name, version).as_posix()
                manifest = dict(manifest, name=name, version=version, created=now())
                kept = manifest["source"].get("kept_path")
                if source is not None:
                    kept = (Path("sources") / content_path(sha, source.suffix)).as_posix()
                    manifest["source"] = dict(manifest["source"], kept_path=kept)
                set_manifest(staged, manifest)
                fault("before-rename")
                placed = rel
                self.files.put_version(staged, rel)
                fault("after-rename")
                if source is not None:
                    self.files.put_file(source, kept)
                fault("after-source")
                w.insert_version(manifest, rel, kept, tags, descriptor=similarity.packed(manifest))
                fault("before-commit")
        except BaseException:
            if placed is not None:
                try:
                    self.files.remove_version(placed)  # placed but never committed
                except (OSError, LibraryError):
                    pass  # the next writer sweeps it
            raise
        sidecars.write_tags(self.files, rel, tags)
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
        sidecars.write_tags(self.files, record.store_path, record.tags)
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
            sidecars.write_name(self.files, rel, new, old)
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


def _loop_window(length: float) -> dict:
    """The loop search inside a mined candidate of ``length`` seconds: loops of half of it (at
    least 0.5 s) up to all of it."""
    return {"min_length": max(0.5, 0.5 * length), "max_length": length}


_EVENTS = None  # a worker process's queue back to the parent (ingest_many)


def _worker_init(queue, threads: int | None = None) -> None:
    global _EVENTS
    _EVENTS = queue
    if threads:
        from motionlib.ingest.estimators.base import THREADS_ENV

        os.environ[THREADS_ENV] = str(threads)


def _ingest_one(root: str, i: int, path: str, name, tags, options, keep_source: bool) -> IngestResult:
    """One clip of ``ingest_many``, in a worker process: its own library handle, its own commit."""
    from motionlib.library import Library

    with Library(root if is_shared(root) else Path(root)) as lib:
        return lib.ingest(path, name=name, tags=tags, options=options, keep_source=keep_source,
                          on_start=lambda n: _EVENTS.put((i, "start", n)),
                          progress=lambda n: _EVENTS.put((i, "frames", n)))


def _drain(queue, emit) -> None:
    import queue as queue_mod

    while True:
        try:
            i, kind, n = queue.get_nowait()
        except queue_mod.Empty:
            return
        emit(i, kind, n)


def _warm_imports() -> None:
    """Import what storing needs (zarr, SQLModel: ~1 s here) while pose workers are busy."""
    from motionlib.index import warm_imports as warm_index
    from motionlib.store import warm_imports as warm_store

    import motionlib.processing.quality  # noqa: F401

    warm_index()
    warm_store()
