"""The library's foundation: its directory and index, every read, and the write protocol that
all writes share (a private staging directory; under the index's write lock, files moved into
place and rows inserted together; leftovers of killed writers swept)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from motionlib.core.errors import InputError, LibraryError, NotFound, SourceUnavailable, disk_problem
from motionlib.core.names import Ref, validate_name
from motionlib.library import sidecars
from motionlib.library.paths import INDEX_FILE, prepare_root, resolve_library_path
from motionlib.store.files import remove_tree

if TYPE_CHECKING:
    import numpy as np

    from motionlib.core.motion import Motion
    from motionlib.index.reader import IdentityRecord, MotionRecord, RenderRecord
    from motionlib.index.writer import Writer

STALE_STAGING_SECONDS = 24 * 3600


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LibraryBase:
    def __init__(self, root: Path | str, *, create: bool = True):
        """Open the library at ``root``: a directory (SQLite index and files beside it), or a
        shared library's URL (``postgresql://...?store=s3://...``: docs/team.md)."""
        from motionlib.library.paths import is_shared

        if isinstance(root, str) and is_shared(root):
            self._open_shared(root)
            return
        from motionlib.index import Index
        from motionlib.store.location import LocalFiles

        self.root = Path(root)
        self.location = str(self.root)
        prepare_root(self.root, create)
        self.motions_dir = self.root / "motions"
        self.sources_dir = self.root / "sources"
        self.tmp_dir = self.root / "tmp"
        self.files = LocalFiles(self.root)
        # a library on a read-only disk (a snapshot, a shared mount) is read; writes say why not
        self.read_only = not os.access(self.root, os.W_OK)
        if not self.read_only:
            try:
                for d in (self.motions_dir, self.sources_dir, self.tmp_dir):
                    d.mkdir(exist_ok=True)
            except OSError as err:
                raise disk_problem(err, self.root) or LibraryError(f"cannot open {self.root}: {err}") from None
        self.index = Index(self.root / INDEX_FILE, read_only=self.read_only)

    def _open_shared(self, url: str) -> None:
        """A shared library: the index on PostgreSQL, the files in an object store, and a working
        directory on this machine (``root``: staging and caches, never the library's data)."""
        from motionlib.index import open_index
        from motionlib.library.paths import parse_shared
        from motionlib.store.location import ObjectFiles

        target = parse_shared(url)
        self.location = url
        self.root = target.work
        self.motions_dir = self.sources_dir = None
        self.tmp_dir = self.root / "tmp"
        try:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LibraryError(f"cannot create this machine's working directory {self.root}: {err.strerror}") from None
        self.read_only = False
        self.files = ObjectFiles(target.store_url, self.root / "cache")
        self.index = open_index(target.index_url)

    @property
    def shown(self) -> str:
        """The library as messages name it (a shared library's URL without its password)."""
        from motionlib.library.paths import redact

        return redact(self.location) if self.files.shared else str(self.root)

    @classmethod
    def open(cls, path: str | os.PathLike | None = None):
        """The library at ``path`` (a directory or a shared library's URL), else
        $MOTIONLIB_LIBRARY, else the per-user one."""
        return cls(resolve_library_path(path))

    def close(self) -> None:
        self.index.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ reads
    def list(self, **filters: Any) -> list["MotionRecord"]:
        """Versions matching ``filters`` (see index.reader.Reader.list)."""
        return list(self.iter_list(**filters))

    def iter_list(self, **filters: Any) -> Iterator["MotionRecord"]:
        """``list``, streamed: versions one at a time with bounded memory at any library size."""
        self._answer_like(filters)
        with self.index.reader() as r:
            yield from r.iter_list(**filters)

    def _answer_like(self, filters: dict) -> None:
        """A query's ``like:X`` terms answered with X's nearest versions (the index cannot)."""
        from motionlib.index.query import LIKE_TOP, Query

        q = filters.get("query")
        if not q:
            return
        q = q if isinstance(q, Query) else Query.parse(q)
        q.resolve_like(lambda ref: [r.id for r, _ in self.similar(ref, LIKE_TOP)])
        filters["query"] = q

    def similar(self, ref: str | Ref, top: int = 10) -> list[tuple["MotionRecord", float]]:
        """The ``top`` versions most like ``ref`` (processing/similarity.py), best first, with
        their similarity (1 = the same movement); ``ref`` itself left out."""
        from motionlib.processing import similarity

        if not 1 <= top <= 1000:
            raise InputError("{top} must be 1 to 1000", params=["top"])
        with self.index.reader() as r:
            record = r.get(ref)
            blob = r.descriptor(record.id, similarity.VERSION)
            if blob is None:
                raise NotFound(f"{record.ref} has no motion descriptor (fewer than {similarity.MIN_FRAMES} frames "
                               "show its torso, or it was stored before descriptors: `motionlib reindex` adds them)")
            ids, blobs = r.descriptors(similarity.VERSION)
            rows, sims = similarity.rank(similarity.from_blobs([blob])[0], similarity.from_blobs(blobs), top + 1)
            found = [(ids[k], float(v)) for k, v in zip(rows, sims) if ids[k] != record.id][:top]
            records = r.by_ids(i for i, _ in found)
        return [(records[i], v) for i, v in found if i in records]

    def get(self, ref: str | Ref) -> "MotionRecord":
        with self.index.reader() as r:
            return r.get(ref)

    def manifest(self, record: "MotionRecord") -> dict:
        return self.files.manifest(record.store_path)

    def load(self, ref: str | Ref, *, raw: bool = False,
             span: tuple[float | None, float | None] | None = None) -> "Motion":
        """The stored Motion of a version (imports zarr); ``raw=True``: the estimator's uncleaned
        track that an ingested version keeps beside it (docs/fidelity.md). ``span=(start, end)``
        (seconds): only the frames ``processing.ops.trim`` of that span needs, read alone (see
        ``store.read_motion``): any length of take. Without it, a version longer than the
        ``core.limits`` allow is refused before anything is read."""
        record = self.get(ref)
        if span is None:
            from motionlib.core.limits import check_frames

            check_frames(record.ref, record.frames, record.skeleton, record.duration)
        return self.files.motion(record.store_path, raw=raw, span=span)

    def tags(self) -> list[tuple[str, int]]:
        with self.index.reader() as r:
            return r.tags()

    def source_file(self, record: "MotionRecord") -> Path | None:
        """The kept source clip of a version, when the library holds it."""
        if not record.source_path:
            return None
        return self.files.local(record.source_path)

    def aligned_source(self, record: "MotionRecord") -> tuple[Path, float]:
        """(kept source clip, time offset) of a version whose frames still sit on that clip
        (source time = offset + motion time); raises SourceUnavailable saying why not."""
        source = self.manifest(record)["source"]
        if not source.get("aligned", True):
            raise SourceUnavailable(f"{record.ref} was made by {record.operation}, so its frames no longer sit "
                                    "on the source clip")
        path = self.source_file(record)
        if path is None:
            raise SourceUnavailable(f"{record.ref} has no kept source clip (ingested with {{no_keep_source}} or "
                                    "imported)", params={"no_keep_source": "keep_source=False"})
        return path, float(source.get("time_offset") or 0.0)

    def identities(self) -> list["IdentityRecord"]:
        with self.index.reader() as r:
            return r.identities()

    def get_identity(self, name: str) -> "IdentityRecord":
        with self.index.reader() as r:
            return r.get_identity(validate_name(name))

    def identity_image(self, record: "IdentityRecord") -> "np.ndarray":
        """The identity's picture, upright (RGB uint8)."""
        from motionlib.ingest.image import load_image

        path = self.files.local(record.path)
        if path is None:
            raise NotFound(f"identity {record.name!r}: its picture {record.path} is missing from the library "
                           f"(`motionlib identity rm {record.name}`, then add the picture again)")
        return load_image(path).image

    def get_render(self, render_id: int) -> "RenderRecord":
        with self.index.reader() as r:
            found = r.renders(ids=[int(render_id)])
        if not found:
            raise NotFound(f"no render with id {render_id} (see `motionlib renders`)")
        return found[0]

    def page(self, query=None, sort=None, *, limit: int = 200, after=None) -> list["MotionRecord"]:
        """One page of versions, after ``after`` (see index.reader.Reader.page)."""
        with self.index.reader() as r:
            return r.page(query, sort, limit=limit, after=after)

    def count(self, query=None, *, ids: Iterable[int] | None = None) -> int:
        """How many versions match ``query`` (see index.reader.Reader.count)."""
        with self.index.reader() as r:
            return r.count(query, ids=ids)

    def distinct(self, column: str) -> list[str]:
        with self.index.reader() as r:
            return r.distinct(column)

    # ------------------------------------------------------------------ the write protocol
    def new_staging(self) -> Path:
        """A private staging directory for one write (removed by the writer, or swept)."""
        if self.read_only:
            raise LibraryError(f"{self.shown} is on a read-only disk: it can be read, not changed")
        self.clean_staging()
        path = self.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def clean_staging(self) -> int:
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
            if pid is None or not pid_alive(pid) or old:
                remove_tree(entry)
                removed += 1
        return removed

    def sweep(self, w: "Writer") -> dict:
        """Under the write lock: remove version directories and sources no row references (which,
        under the lock, can only be leftovers of a writer that died)."""
        stores, sources = w.referenced_paths()
        removed = {"versions": 0, "sources": 0}
        for key in self.files.version_keys():
            if key not in stores:
                self.files.remove_version(key)
                sidecars.remove(self.files, key)
                removed["versions"] += 1
        for key in self.files.file_keys("sources"):
            if key not in sources:
                self.files.remove_file(key)
                removed["sources"] += 1
        return removed

    def remove_versions(self, victims: Iterable["MotionRecord"]) -> None:
        """Delete the versions' rows, then their data. A crash between the two leaves unreferenced
        directories that the next write sweeps."""
        victims = list(victims)
        with self.index.write() as w:
            w.delete_versions([rec.id for rec in victims])
        with self.index.reader() as r:
            still_used = r.source_paths()
        for rec in victims:
            self.files.remove_version(rec.store_path)
            sidecars.remove(self.files, rec.store_path)
            if rec.source_path and rec.source_path not in still_used:
                self.files.remove_file(rec.source_path)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A new staging directory, removed when the block ends."""
        path = self.new_staging()
        try:
            yield path
        except OSError as err:  # a full or failing disk while writing: the library is as it was
            problem = disk_problem(err, self.root)
            if problem is None:
                raise
            raise problem from err
        finally:
            shutil.rmtree(path, ignore_errors=True)
