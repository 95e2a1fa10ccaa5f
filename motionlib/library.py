"""The library: one directory holding the index, the Zarr store and kept source clips.

    <library>/index.sqlite                  SQLite index (WAL)
    <library>/motions/<key>/v0001/          one Zarr v3 group per version (read-only once written)
    <library>/motions/<key>/v0001.tags.json the version's current tags (so ``reindex`` keeps them)
    <library>/sources/<ab>/<sha256>.<ext>   content-addressed copies of source clips
    <library>/tmp/<pid>-<random>/           staging area of running writes

Write protocol (crash safety): arrays and the source copy are written into a private staging
directory; then, holding the index's write lock (BEGIN IMMEDIATE), the version directory is renamed
into place and the row is inserted and committed. A process killed at any point leaves at most an
unreferenced directory, never a row without data; ``recover`` (run by every write) removes staging
directories of dead processes and version directories or sources that no row references - which,
under the write lock, can only be leftovers.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from motionlib.core.errors import InputError, LibraryError, NotFound
from motionlib.core.names import Ref, validate_name, validate_tag

ENV_LIBRARY = "MOTIONLIB_LIBRARY"
INDEX_FILE = "index.sqlite"
STALE_STAGING_SECONDS = 24 * 3600


def default_library_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("motionlib", appauthor=False))


def resolve_library_path(path: str | os.PathLike | None = None) -> Path:
    """--library, else $MOTIONLIB_LIBRARY, else the per-user data directory."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get(ENV_LIBRARY)
    if env:
        return Path(env).expanduser()
    return default_library_path()


def jsonable(obj: Any) -> Any:
    """Plain JSON types only: numpy scalars unwrapped, NaN/inf -> None, paths -> str."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def name_key(name: str) -> str:
    """Directory name for a motion name: readable, filesystem-safe, collision-free."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40] or "motion"
    return f"{slug}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


def _fault(point: str) -> None:
    """Test hook: MOTIONLIB_FAULT=<point> stops the process here until it is killed."""
    if os.environ.get("MOTIONLIB_FAULT") == point:
        sys.stderr.write(f"FAULT {point}\n")
        sys.stderr.flush()
        time.sleep(3600)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class DeriveResult:
    record: Any  # MotionRecord of the new version
    parent: Any  # MotionRecord it was made from
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


@dataclass
class IngestResult:
    file: str
    status: str  # "created" | "unchanged"
    record: Any  # MotionRecord
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


class Library:
    def __init__(self, root: Path, *, create: bool = True):
        from motionlib.index import Index

        self.root = Path(root)
        _prepare_root(self.root, create)
        self.motions_dir = self.root / "motions"
        self.sources_dir = self.root / "sources"
        self.tmp_dir = self.root / "tmp"
        for d in (self.motions_dir, self.sources_dir, self.tmp_dir):
            d.mkdir(exist_ok=True)
        self.index = Index(self.root / INDEX_FILE)

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> "Library":
        return cls(resolve_library_path(path))

    def close(self) -> None:
        self.index.close()

    # ------------------------------------------------------------------ reads
    def list(self, **filters) -> list:
        with self.index.reader() as r:
            return r.list(**filters)

    def get(self, ref: str | Ref):
        with self.index.reader() as r:
            return r.get(ref)

    def manifest(self, record) -> dict:
        from motionlib.store import read_manifest

        return read_manifest(self.root / record.store_path)

    def load(self, ref: str | Ref):
        """The stored Motion of a version (imports zarr)."""
        from motionlib.store import read_motion

        return read_motion(self.root / self.get(ref).store_path)

    def tags(self) -> list[tuple[str, int]]:
        with self.index.reader() as r:
            return r.tags()

    # ------------------------------------------------------------------ ingest
    def ingest(
        self,
        path: str | os.PathLike,
        *,
        name: str | None = None,
        tags: Iterable[str] = (),
        options=None,
        keep_source: bool = True,
        on_start: Callable[[int | None], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> IngestResult:
        from motionlib.ingest.pipeline import IngestOptions, analyze
        from motionlib.ingest.video import check_file

        t0 = time.perf_counter()
        options = options or IngestOptions()
        path = check_file(Path(path))
        name = validate_name(name if name is not None else path.stem)
        tags = [validate_tag(t) for t in dict.fromkeys(tags)]
        digest = options.digest()
        staging = self._new_staging()
        try:
            sha, size, staged_source = _hash_and_copy(path, staging if keep_source else None)
            with self.index.reader() as r:
                same = r.find_same(name, sha, digest)
            if same is not None:
                return IngestResult(str(path), "unchanged", same)
            analysis = analyze(path, options, on_start=on_start, progress=progress, while_waiting=_warm_imports)
            staged = staging / "version"
            from motionlib.store import write_version

            manifest = self._manifest(name, path, sha, size, options, analysis)
            write_version(staged, analysis.motion, manifest)
            _fault("after-write")
            record = self._commit(name, tags, staged, staged_source, manifest, dedupe="ingest")
            if record is None:  # an identical ingest committed while we worked
                with self.index.reader() as r:
                    same = r.find_same(name, sha, digest)
                return IngestResult(str(path), "unchanged", same)
            stats = dict(analysis.stats, seconds_ingest=round(time.perf_counter() - t0, 3))
            return IngestResult(str(path), "created", record, list(analysis.quality.warnings), stats)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _manifest(self, name, path, sha, size, options, analysis) -> dict:
        from motionlib import __version__
        from motionlib.core.motion import SCHEMA_VERSION
        from motionlib.ingest.estimators.mediapipe import mediapipe_version

        m, info, spec = analysis.motion, analysis.info, options.spec()
        return jsonable({
            "schema_version": SCHEMA_VERSION,
            "name": name,
            "version": None,  # set at commit
            "created": None,
            **_motion_fields(m),
            "source": {
                "file_name": path.name,
                "sha256": sha,
                "size_bytes": size,
                "container": info.container,
                "codec": info.codec,
                "coded_width": info.coded_width,
                "coded_height": info.coded_height,
                "rotation": info.rotation,
                "declared_duration": info.declared_duration,
                "average_fps": info.average_fps,
                "time_offset": m.attrs.get("source_time_offset", 0.0),
                "aligned": True,
                "start": options.start,
                "end": options.end,
                "kept_path": None,  # set at commit
            },
            "estimator": {
                "name": spec.name,
                "library": f"mediapipe {mediapipe_version()}",
                "settings": spec.settings,
                "inference_size": analysis.stats.get("inference_size"),
                "settings_digest": options.digest(),
                "workers": analysis.stats.get("workers"),
            },
            "lineage": {"source_sha256": sha, "parent": None, "operation": "ingest",
                        "params": {"start": options.start, "end": options.end}},
            "quality": analysis.quality.as_dict(),
            "track": analysis.track,
            "motionlib_version": __version__,
        })

    def _commit(self, name, tags, staged, staged_source, manifest, *, dedupe: str | None = None):
        """Under the write lock: number the version, move it into place, insert its row. With
        ``dedupe`` (an operation), return None instead when a row of that operation already holds
        the same name, source and settings."""
        from sqlmodel import select

        from motionlib.index.models import MotionRow
        from motionlib.store import finalize, set_manifest

        sha = manifest["source"]["sha256"]
        digest = manifest["estimator"]["settings_digest"]
        final = None
        try:
            with self.index.write() as s:
                if dedupe is not None:
                    dup = s.exec(
                        select(MotionRow).where(
                            MotionRow.name == name, MotionRow.source_sha256 == sha,
                            MotionRow.settings_digest == digest, MotionRow.operation == dedupe,
                        )
                    ).first()
                    if dup is not None:
                        return None
                self._sweep(s)
                version = self._next_version(s, name)
                rel = Path("motions") / name_key(name) / f"v{version:04d}"
                final = self.root / rel
                manifest = dict(manifest, name=name, version=version, created=_now())
                kept = manifest["source"].get("kept_path")
                if staged_source is not None:
                    kept = (Path("sources") / sha[:2] / f"{sha}{staged_source.suffix}").as_posix()
                    manifest["source"] = dict(manifest["source"], kept_path=kept)
                set_manifest(staged, manifest)
                _fault("before-rename")
                finalize(staged, final)
                _fault("after-rename")
                if staged_source is not None:
                    _place(staged_source, self.root / kept)
                _fault("after-source")
                row = _row_from_manifest(manifest, rel.as_posix(), kept)
                s.add(row)
                s.flush()
                self._link_tags(s, row.id, tags)
                _fault("before-commit")
        except BaseException:
            if final is not None and final.exists():
                _rmtree(final)  # renamed but never committed
            raise
        self._write_tag_sidecar(rel, tags)
        return self.get(f"{name}@{version}")

    # ------------------------------------------------------------------ edits and imports
    def derive(self, ref: str, edit: Callable[[Any], Any], *, name: str | None = None,
               tags: Iterable[str] = ()) -> "DeriveResult":
        """Apply ``edit`` (Motion -> processing.ops.Edit) to a stored version and store the result
        as the next version of ``name`` (default: the same name), with its lineage."""
        from motionlib.processing.quality import assess_motion

        parent = self.get(ref)
        name = validate_name(name) if name is not None else parent.name
        tags = [validate_tag(t) for t in dict.fromkeys(tags)]
        parent_manifest = self.manifest(parent)
        motion = self.load(parent.ref)
        result = edit(motion)
        track, cuts = _carry_events(parent_manifest, result)
        quality = assess_motion(result.motion, track=track, cuts=cuts)
        manifest = _derived_manifest(parent, parent_manifest, result, quality, track)
        record = self._store(name, tags, result.motion, manifest)
        return DeriveResult(record, parent, result.operation, result.params, result.result, list(quality.warnings))

    def import_keypoints(self, path: str | os.PathLike, fmt: str, *, name: str | None = None,
                         tags: Iterable[str] = (), fps: float | None = None,
                         size: tuple[int, int] | None = None, person: int = 0) -> IngestResult:
        """Store keypoints made elsewhere (exchange.IMPORT_FORMATS) as the next version of ``name``,
        scored like an ingest. Importing the same content with the same settings again is a no-op."""
        from motionlib import exchange
        from motionlib.processing.quality import assess_motion

        path = Path(path)
        if fmt not in exchange.IMPORT_FORMATS:
            raise InputError(f"--format {fmt!r}: import reads {', '.join(exchange.IMPORT_FORMATS)}")
        stem = path.name[: -len(path.suffix)] if path.suffix and path.is_file() else path.name
        name = validate_name(name if name is not None else stem)
        tags = [validate_tag(t) for t in dict.fromkeys(tags)]
        if fmt == "npz":
            got = exchange.import_npz(path)
        else:
            got = exchange.import_openpose_json(path, fps=fps, size=size, person=person)
        quality = assess_motion(got.motion)
        manifest = _import_manifest(name, got, quality)
        digest = manifest["estimator"]["settings_digest"]
        with self.index.reader() as r:
            same = r.find_same(name, got.sha256, digest, operation="import")
        if same is not None:
            return IngestResult(str(path), "unchanged", same)
        record = self._store(name, tags, got.motion, manifest, dedupe="import")
        if record is None:
            with self.index.reader() as r:
                same = r.find_same(name, got.sha256, digest, operation="import")
            return IngestResult(str(path), "unchanged", same)
        return IngestResult(str(path), "created", record, got.notes + list(quality.warnings))

    def _store(self, name, tags, motion, manifest, *, dedupe: str | None = None):
        """Write ``motion`` aside and commit it as the next version of ``name`` (no source copy)."""
        from motionlib.store import write_version

        staging = self._new_staging()
        try:
            staged = staging / "version"
            write_version(staged, motion, manifest)
            _fault("after-write")
            return self._commit(name, tags, staged, None, manifest, dedupe=dedupe)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def source_file(self, record) -> Path | None:
        """The kept source clip of a version, when the library holds it."""
        if not record.source_path:
            return None
        p = self.root / record.source_path
        return p if p.exists() else None

    def aligned_source(self, record) -> tuple[Path, float] | str:
        """(kept source clip, time offset) of a version whose frames still sit on that clip (source
        time = offset + motion time); else why not, as a sentence."""
        source = self.manifest(record)["source"]
        if not source.get("aligned", True):
            return (f"{record.ref} was made by {record.operation}, so its frames no longer sit on the "
                    "source clip")
        path = self.source_file(record)
        if path is None:
            return f"{record.ref} has no kept source clip (ingested with --no-keep-source or imported)"
        return path, float(source.get("time_offset") or 0.0)

    def _next_version(self, s, name: str) -> int:
        from sqlalchemy import func
        from sqlmodel import select

        from motionlib.index.models import MotionRow, NameCounter

        counter = s.get(NameCounter, name)
        highest = s.exec(select(func.max(MotionRow.version)).where(MotionRow.name == name)).one() or 0
        version = max(highest, counter.last_version if counter else 0) + 1
        if counter is None:
            s.add(NameCounter(name=name, last_version=version))
        else:
            counter.last_version = version
            s.add(counter)
        return version

    # ------------------------------------------------------------------ tags
    def _link_tags(self, s, motion_id: int, tags: Iterable[str]) -> None:
        from sqlmodel import select

        from motionlib.index.models import MotionTag, Tag

        for name in tags:
            tag = s.exec(select(Tag).where(Tag.name == name)).first()
            if tag is None:
                tag = Tag(name=name)
                s.add(tag)
                s.flush()
            if s.get(MotionTag, (motion_id, tag.id)) is None:
                s.add(MotionTag(motion_id=motion_id, tag_id=tag.id))

    def tag(self, ref: str, tags: Iterable[str]):
        return self._retag(ref, [validate_tag(t) for t in tags], add=True)

    def untag(self, ref: str, tags: Iterable[str]):
        return self._retag(ref, [validate_tag(t) for t in tags], add=False)

    def _retag(self, ref: str, tags: list[str], add: bool):
        from sqlmodel import select

        from motionlib.index.models import MotionTag, Tag

        if not tags:
            raise InputError("give at least one tag")
        record = self.get(ref)
        with self.index.write() as s:
            if add:
                self._link_tags(s, record.id, tags)
            else:
                missing = [t for t in tags if t not in record.tags]
                if missing:
                    raise NotFound(f"{record.ref} is not tagged {', '.join(missing)}")
                for t in s.exec(select(Tag).where(Tag.name.in_(tags))).all():
                    link = s.get(MotionTag, (record.id, t.id))
                    if link is not None:
                        s.delete(link)
                s.flush()
                # drop tags nobody uses any more
                for t in s.exec(select(Tag).where(Tag.name.in_(tags))).all():
                    if s.exec(select(MotionTag).where(MotionTag.tag_id == t.id)).first() is None:
                        s.delete(t)
        record = self.get(record.ref)
        self._write_tag_sidecar(Path(record.store_path), record.tags)
        return record

    def _write_tag_sidecar(self, rel: Path, tags: Iterable[str]) -> None:
        self._write_sidecar(rel, ".tags.json", sorted(tags))

    def _write_sidecar(self, rel: Path, suffix: str, data) -> None:
        """Replace the ``<version>{suffix}`` JSON beside a version directory, atomically."""
        path = self.root / Path(str(rel) + suffix)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)
        except OSError:
            pass  # the index is authoritative; sidecars only help reindex

    # ------------------------------------------------------------------ identities
    def identities(self) -> list:
        with self.index.reader() as r:
            return r.identities()

    def get_identity(self, name: str):
        with self.index.reader() as r:
            return r.get_identity(validate_name(name))

    def identity_image(self, record):
        """The identity's picture, upright (RGB uint8)."""
        from motionlib.ingest.image import load_image

        return load_image(self.root / record.path).image

    def add_identity(self, path: str | os.PathLike, *, name: str | None = None):
        """Check an image, find the person's pose, keep a content-addressed copy, index it."""
        from motionlib.index.models import IdentityRow
        from motionlib.ingest.image import ESTIMATOR, detect_pose, load_image
        from sqlmodel import select

        path = Path(path)
        name = validate_name(name if name is not None else path.stem)
        with self.index.reader() as r:
            if r.identities(name):
                raise InputError(f"an identity named {name!r} exists already (remove it first, or choose another name)")
        img = load_image(path)
        pose = detect_pose(img.image, path.name)
        staging = self._new_staging()
        try:
            sha, size, staged = _hash_and_copy(path, staging)
            rel = (Path("identities") / sha[:2] / f"{sha}{img.ext}").as_posix()
            h, w = img.image.shape[:2]
            warnings = list(pose.warnings) + (["EXIF orientation applied"] if img.exif_rotated else [])
            with self.index.write() as s:
                if s.exec(select(IdentityRow).where(IdentityRow.name == name)).first() is not None:
                    raise InputError(f"an identity named {name!r} exists already")
                _place(staged, self.root / rel)
                s.add(IdentityRow(
                    name=name, created=_now(), file_name=path.name, sha256=sha, path=rel, format=img.format,
                    width=w, height=h, size_bytes=size, body=pose.body, skeleton="mediapipe_pose_33",
                    pose=json.dumps(pose.to_json()), estimator=ESTIMATOR, warnings=json.dumps(warnings),
                ))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get_identity(name)

    def remove_identity(self, name: str):
        from motionlib.index.models import IdentityRow
        from sqlmodel import select

        record = self.get_identity(name)
        with self.index.write() as s:
            row = s.get(IdentityRow, record.id)
            if row is not None:
                s.delete(row)
            s.flush()
            still = s.exec(select(IdentityRow).where(IdentityRow.sha256 == record.sha256)).first()
        if still is None:
            (self.root / record.path).unlink(missing_ok=True)
        return record

    # ------------------------------------------------------------------ renders
    def cache_dir(self, kind: str) -> Path:
        """A directory for derived data that can always be rebuilt (``cache/<kind>``)."""
        path = self.root / "cache" / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_render(self, prep) -> int:
        """Record a render about to run (status ``running``, with this process's id)."""
        from dataclasses import asdict

        from motionlib.index.models import RenderRow

        job = dict(prep.job.to_json(), seed=prep.seed, params=prep.params)
        row = RenderRow(
            created=_now(), status="running", pid=os.getpid(), motion_ref=prep.motion.ref,
            motion_store=prep.motion.store_path, identity_name=prep.identity.name,
            identity_sha256=prep.identity.sha256, backend=prep.job.backend,
            models=json.dumps([asdict(m) for m in prep.backend.models(prep.params)]),
            params=json.dumps(jsonable(job)), seed=prep.seed, output=str(Path(prep.output).resolve()),
            campaign=prep.job.campaign,
        )
        with self.index.write() as s:
            s.add(row)
            s.flush()
            return int(row.id)

    def finish_render(self, render_id: int, status: str, *, output_sha256: str | None = None,
                      timings: dict | None = None, error: str | None = None, extra: dict | None = None):
        from motionlib.index.models import RenderRow

        with self.index.write() as s:
            row = s.get(RenderRow, render_id)
            row.status = status
            row.finished = _now()
            row.pid = None
            row.output_sha256 = output_sha256
            row.error = error
            row.timings = json.dumps({k: round(v, 4) for k, v in (timings or {}).items()})
            if extra:
                params = json.loads(row.params)
                params["result"] = jsonable(extra)
                row.params = json.dumps(params)
            s.add(row)
        return self.get_render(render_id)

    def renders(self, *, limit: int | None = None) -> list:
        """Render records, oldest first. Runs whose process died (SIGKILL, power loss) are marked
        failed here, so no record stays ``running`` for ever."""
        with self.index.reader() as r:
            records = r.renders(limit=limit)
        stale = [rec.id for rec in records if rec.status == "running" and rec.pid and not _pid_alive(rec.pid)]
        if stale:
            from motionlib.index.models import RenderRow

            with self.index.write() as s:
                for rid in stale:
                    row = s.get(RenderRow, rid)
                    if row is not None and row.status == "running":
                        row.status, row.error, row.pid, row.finished = "failed", "process died", None, _now()
                        s.add(row)
            with self.index.reader() as r:
                records = r.renders(limit=limit)
        return records

    def get_render(self, render_id: int):
        with self.index.reader() as r:
            found = r.renders(ids=[int(render_id)])
        if not found:
            raise NotFound(f"no render with id {render_id} (see `motionlib renders`)")
        return found[0]

    # ------------------------------------------------------------------ rename
    def rename(self, old: str, new: str) -> list:
        """Rename a motion: every version keeps its number under the new name, and references to
        it as a parent follow. Stored versions are not rewritten; a ``.name.json`` sidecar beside
        each version records the new name (and the old ones) so that ``reindex`` keeps it."""
        from sqlmodel import select

        from motionlib.index.models import MotionRow, NameCounter

        old = validate_name(Ref.parse(old).name if "@" in old else old)
        new = validate_name(new)
        if old == new:
            raise InputError(f"{old!r} already has that name")
        with self.index.write() as s:
            rows = s.exec(select(MotionRow).where(MotionRow.name == old)).all()
            if not rows:
                raise NotFound(f"no motion named {old!r} in this library")
            if s.exec(select(MotionRow).where(MotionRow.name == new)).first() is not None:
                raise InputError(f"a motion named {new!r} exists already; choose another name")
            if s.get(NameCounter, new) is not None:
                raise InputError(f"{new!r} was used before (its version numbers are spent); choose another name")
            for row in rows:
                row.name = new
                s.add(row)
            for child in s.exec(select(MotionRow).where(MotionRow.parent.like(old.replace("%", "") + "@%"))).all():
                pname, _, pver = child.parent.rpartition("@")
                if pname == old:
                    child.parent = f"{new}@{pver}"
                    s.add(child)
            counter = s.get(NameCounter, old)
            if counter is not None:
                s.add(NameCounter(name=new, last_version=counter.last_version))
                s.delete(counter)
            paths = [r.store_path for r in rows]
        for rel in paths:
            self._write_name_sidecar(Path(rel), new, old)
        return self.list(name=new)

    def _write_name_sidecar(self, rel: Path, new: str, old: str) -> None:
        path = self.root / Path(str(rel) + ".name.json")
        was: list[str] = []
        try:
            was = json.loads(path.read_text()).get("was", [])
        except (OSError, ValueError, AttributeError):
            pass
        self._write_sidecar(rel, ".name.json", {"name": new, "was": [n for n in dict.fromkeys(was + [old]) if n != new]})

    # ------------------------------------------------------------------ remove
    def remove(self, ref: str, *, all_versions: bool = False) -> list:
        from sqlmodel import select

        from motionlib.index.models import MotionRow, MotionTag

        parsed = Ref.parse(ref)
        if parsed.version is None and not all_versions:
            raise InputError(f"say which version to remove ({parsed.name}@N), or use --all for every version")
        if parsed.version is not None and all_versions:
            raise InputError("--all removes every version: give the name without @version")
        with self.index.reader() as r:
            if all_versions:
                victims = r.list(name=parsed.name)
                if not victims:
                    raise NotFound(f"no motion named {parsed.name!r} in this library")
            else:
                victims = [r.get(parsed)]
        with self.index.write() as s:
            for rec in victims:
                for link in s.exec(select(MotionTag).where(MotionTag.motion_id == rec.id)).all():
                    s.delete(link)
                row = s.get(MotionRow, rec.id)
                if row is not None:
                    s.delete(row)
        # Rows are gone; now the data. A crash here leaves unreferenced directories that the
        # next write sweeps.
        with self.index.reader() as r:
            still_used = r.source_paths()
        for rec in victims:
            _rmtree(self.root / rec.store_path)
            _remove_sidecars(self.root / rec.store_path)
            if rec.source_path and rec.source_path not in still_used:
                (self.root / rec.source_path).unlink(missing_ok=True)
        return victims

    # ------------------------------------------------------------------ maintenance
    def _new_staging(self) -> Path:
        self._clean_staging()
        path = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def _clean_staging(self) -> int:
        """Remove staging directories whose process is gone (or that are a day old)."""
        removed = 0
        now = time.time()
        for entry in self.tmp_dir.iterdir() if self.tmp_dir.exists() else ():
            pid_text = entry.name.split("-", 1)[0]
            pid = int(pid_text) if pid_text.isdigit() else None
            if pid == os.getpid():
                continue
            try:
                old = now - entry.stat().st_mtime > STALE_STAGING_SECONDS
            except OSError:
                continue
            if pid is None or not _pid_alive(pid) or old:
                _rmtree(entry)
                removed += 1
        return removed

    def _sweep(self, s) -> dict:
        """Under the write lock: remove version directories and sources no row references."""
        from sqlmodel import select

        from motionlib.index.models import MotionRow

        rows = s.exec(select(MotionRow.store_path, MotionRow.source_path)).all()
        stores = {r[0] for r in rows}
        sources = {r[1] for r in rows if r[1]}
        removed = {"versions": 0, "sources": 0}
        for d in self.motions_dir.glob("*/v[0-9]*"):
            if d.is_dir() and d.relative_to(self.root).as_posix() not in stores:
                _rmtree(d)
                _remove_sidecars(d)
                removed["versions"] += 1
        for f in self.sources_dir.glob("*/*"):
            if f.is_file() and f.relative_to(self.root).as_posix() not in sources:
                f.unlink(missing_ok=True)
                removed["sources"] += 1
        return removed

    def recover(self) -> dict:
        staging = self._clean_staging()
        with self.index.write() as s:
            removed = self._sweep(s)
        return {"staging": staging, **removed}

    def reindex(self) -> dict:
        """Rebuild the index from the store: one row per readable version directory."""
        from sqlmodel import delete, select

        from motionlib.index.models import MotionRow, MotionTag, NameCounter, Tag
        from motionlib.store import read_manifest

        self._clean_staging()
        found, skipped, seen = 0, [], set()
        with self.index.write() as s:
            counters = {c.name: c.last_version for c in s.exec(select(NameCounter)).all()}
            s.exec(delete(MotionTag))
            s.exec(delete(Tag))
            s.exec(delete(MotionRow))
            s.flush()
            renamed = _renames(self.motions_dir)
            for d in sorted(self.motions_dir.glob("*/v[0-9]*")):
                if not d.is_dir():
                    continue
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
                    row = _row_from_manifest(m, d.relative_to(self.root).as_posix(), kept)
                    validate_name(row.name)
                except Exception as err:  # one unreadable version must not stop the rebuild
                    skipped.append(f"{d.relative_to(self.root)}: {err}")
                    continue
                if (row.name, row.version) in seen:
                    skipped.append(f"{d.relative_to(self.root)}: duplicate of {row.name}@{row.version}")
                    continue
                seen.add((row.name, row.version))
                s.add(row)
                s.flush()
                sidecar = Path(str(d) + ".tags.json")
                if sidecar.exists():
                    try:
                        self._link_tags(s, row.id, [validate_tag(t) for t in json.loads(sidecar.read_text())])
                    except (ValueError, InputError):
                        skipped.append(f"{sidecar.relative_to(self.root)}: unreadable tags")
                counters[row.name] = max(counters.get(row.name, 0), row.version)
                found += 1
            s.exec(delete(NameCounter))
            for n, v in counters.items():
                s.add(NameCounter(name=n, last_version=v))
        return {"versions": found, "skipped": skipped}


SIDECARS = (".tags.json", ".name.json")  # beside each version directory


def _remove_sidecars(version_dir: Path) -> None:
    for suffix in SIDECARS:
        Path(str(version_dir) + suffix).unlink(missing_ok=True)


def _place(staged: Path, dest: Path) -> None:
    """Move a staged content-addressed file to ``dest`` (read-only) unless it is there already."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o444)
        os.replace(staged, dest)


def _renames(motions_dir: Path) -> dict[tuple[str, int], str]:
    """(any earlier name, version) -> current name, from the ``.name.json`` sidecars."""
    from motionlib.store import read_manifest

    out: dict[tuple[str, int], str] = {}
    for side in motions_dir.glob("*/v[0-9]*.name.json"):
        try:
            doc = json.loads(side.read_text())
            version = int(read_manifest(Path(str(side)[: -len(".name.json")]))["version"])
            for old in doc.get("was", []):
                out[(old, version)] = validate_name(doc["name"])
        except Exception:  # noqa: BLE001 - a broken sidecar leaves the stored name
            continue
    return out


def _row_from_manifest(m: dict, store_path: str, kept: str | None):
    """The index row of a stored version, from its manifest (commit and reindex alike)."""
    from motionlib.index.models import MotionRow

    q, src, lineage = m["quality"], m["source"], m["lineage"]
    return MotionRow(
        name=m["name"], version=int(m["version"]), created=m["created"],
        duration=m["duration"], fps=m["fps"], frames=m["frames"], width=m["width"],
        height=m["height"], skeleton=m["skeleton"],
        source_name=src.get("file_name"), source_sha256=src.get("sha256"),
        source_size=src.get("size_bytes"), source_path=kept,
        estimator=m["estimator"]["name"], settings_digest=m["estimator"]["settings_digest"],
        parent=lineage.get("parent"), operation=lineage.get("operation", "ingest"),
        op_params=json.dumps(lineage.get("params", {})),
        store_path=store_path,
        overall=q.get("overall"), occlusion=q["scores"].get("occlusion"),
        occlusion_raw=q["raw"].get("occlusion"), jitter=q["scores"].get("jitter"),
        jitter_raw=q["raw"].get("jitter"), framing=q["scores"].get("framing"),
        framing_raw=q["raw"].get("framing"), warnings=json.dumps(q.get("warnings", [])),
    )


def _map_time(t: float, edit) -> float | None:
    """Parent seconds -> child seconds for an edit, None when that moment is not in the child."""
    t0 = edit.span[0] if edit.span else 0.0
    if edit.span and not (edit.span[0] <= t < edit.span[1]):
        return None
    child = (t - t0) / edit.time_scale
    return child if 0 <= child < edit.motion.duration else None


def _carry_events(parent_manifest: dict, edit) -> tuple[dict, list[dict]]:
    """The parent's hard cuts and track jumps, moved to the child's timeline (those it keeps)."""
    import numpy as np

    ts = edit.motion.timestamps
    q = parent_manifest.get("quality", {})
    cuts = []
    for cut in q.get("details", {}).get("framing", {}).get("cuts", []):
        t = _map_time(float(cut["time"]), edit)
        if t is not None and t > 0:
            cuts.append(dict(cut, time=round(t, 3), frame=int(np.searchsorted(ts, t - 1e-6))))
    track = parent_manifest.get("track") or {"jumps": [], "dropped_frames": 0, "people": 0}
    jumps = []
    for jump in track.get("jumps", []):
        t = _map_time(float(jump["time"]), edit)
        if t is not None:
            jumps.append(dict(jump, time=round(t, 3), frame=int(np.searchsorted(ts, t - 1e-6))))
    whole = edit.span is None
    carried = {
        "jumps": jumps,
        "dropped_frames": int(track.get("dropped_frames", 0)) if (whole or jumps) else 0,
        "people": int(track.get("people", 0)) if (whole or jumps) else min(1, int(track.get("people", 0))),
    }
    return carried, cuts


def _derived_manifest(parent, pm: dict, edit, quality, track) -> dict:
    from motionlib import __version__
    from motionlib.core.motion import SCHEMA_VERSION

    m = edit.motion
    src = dict(pm["source"])
    offset = float(src.get("time_offset") or 0.0)
    aligned = bool(src.get("aligned", True)) and edit.aligned
    if edit.span is not None:
        offset += edit.span[0]
    src.update(time_offset=round(offset, 6), aligned=aligned)
    return jsonable({
        **pm,
        "schema_version": SCHEMA_VERSION,
        "name": None, "version": None, "created": None,
        **_motion_fields(m),
        "source": src,
        "lineage": {
            "source_sha256": pm["lineage"].get("source_sha256"),
            "parent": parent.ref,
            "operation": edit.operation,
            "params": edit.params,
            "result": edit.result,
        },
        "quality": quality.as_dict(),
        "track": track,
        "motionlib_version": __version__,
    })


def _motion_fields(m) -> dict:
    """The manifest fields that describe the stored arrays of Motion ``m``."""
    return {
        "skeleton": m.skeleton.name,
        "joint_names": list(m.skeleton.joint_names),
        "frames": m.frames,
        "fps": round(m.fps, 6),
        "duration": round(m.duration, 6),
        "width": m.width,
        "height": m.height,
        "variable_frame_rate": _is_vfr(m.timestamps),
        "arrays": _array_docs(m),
    }


def _array_docs(m) -> dict:
    return {
        "keypoints": "float32 [T,J,2] pixels of the displayed source frame, NaN when not detected",
        "confidence": "float32 [T,J] visibility in [0,1], 0 when not detected",
        "timestamps": "float64 [T] seconds from the first frame",
        **({"world": "float32 [T,J,3] metres, hip-centred"} if m.world is not None else {}),
        **({"presence": "float32 [T,J] in [0,1]"} if m.presence is not None else {}),
    }


def _import_manifest(name: str, got, quality) -> dict:
    from motionlib import __version__
    from motionlib.core.motion import SCHEMA_VERSION

    m = got.motion
    digest = hashlib.sha256(json.dumps(got.settings, sort_keys=True).encode()).hexdigest()[:16]
    return jsonable({
        "schema_version": SCHEMA_VERSION,
        "name": name, "version": None, "created": None,
        **_motion_fields(m),
        "source": {
            "file_name": got.file_name, "sha256": got.sha256, "size_bytes": got.size_bytes,
            "container": got.settings["format"], "codec": None, "coded_width": None, "coded_height": None,
            "rotation": 0, "time_offset": 0.0, "start": None, "end": None, "kept_path": None,
            "aligned": False,
        },
        "estimator": {
            "name": "import", "library": got.settings["format"], "settings": got.settings,
            "inference_size": None, "settings_digest": digest,
        },
        "lineage": {"source_sha256": got.sha256, "parent": None, "operation": "import",
                    "params": got.settings, "result": {"notes": got.notes}},
        "quality": quality.as_dict(),
        "track": {"jumps": [], "dropped_frames": 0, "people": 1},
        "motionlib_version": __version__,
    })


def _warm_imports() -> None:
    """Import what storing needs (zarr, SQLModel: ~1 s here) while pose workers are busy."""
    import motionlib.index.models  # noqa: F401
    import motionlib.processing.quality  # noqa: F401
    import motionlib.store.zarrstore  # noqa: F401
    import zarr  # noqa: F401
    from sqlalchemy import event  # noqa: F401


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _is_vfr(timestamps) -> bool:
    import numpy as np

    if len(timestamps) < 3:
        return False
    d = np.diff(timestamps)
    return bool((d.max() - d.min()) > 0.1 * np.median(d))


def _rmtree(path: Path) -> None:
    def _onerror(func, p, _exc):
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o644)
            func(p)
        except OSError:
            pass

    if path.exists():
        shutil.rmtree(path, onerror=_onerror)


def _hash_and_copy(path: Path, staging: Path | None) -> tuple[str, int, Path | None]:
    """SHA-256 and size of ``path``, copying it into ``staging`` in the same pass if asked."""
    h = hashlib.sha256()
    size = 0
    out = None
    dest = None
    if staging is not None:
        ext = path.suffix.lower()
        ext = ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ".bin"
        dest = staging / f"source{ext}"
        out = open(dest, "wb")
    try:
        with open(path, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
                if out is not None:
                    out.write(chunk)
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    finally:
        if out is not None:
            out.close()
    return h.hexdigest(), size, dest


def _prepare_root(root: Path, create: bool) -> None:
    if root.exists() and not root.is_dir():
        raise LibraryError(f"library path {root} exists and is not a directory")
    if root.exists():
        entries = {p.name for p in root.iterdir()}
        ours = {INDEX_FILE, "motions", "sources", "tmp", "identities", "cache"}
        if entries and not (entries & ours):
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
