"""Where a library's files live: a directory on this machine (``LocalFiles``) or a prefix in an
object store (``ObjectFiles``: S3 or anything else fsspec reaches), behind one small interface.

Every key is a library-relative POSIX path, the same on disk and in the store::

    motions/<name key>/v0001/...       a version: a Zarr v3 group (zarr.json last on upload)
    motions/<name key>/v0001.tags.json its sidecars (docs/store.md)
    sources/<sha[:2]>/<sha>.<ext>      kept source clips, by content
    identities/<sha[:2]>/<sha>.<ext>   identity pictures, by content
    renders/<sha[:2]>/<sha>.mp4        (object stores only) finished renders, by content

Both are written the same way by the library (``library/base.py``): a version is written aside
into a local staging directory, then, under the index's write lock, placed (``put_version``) and
its row inserted; content-addressed files are placed once (``put_file``); what no row refers
to under that lock can only be a killed writer's and is swept (``version_keys``, ``file_keys``).

An object store has no rename, so placing is an upload: every file of the version, ``zarr.json``
(which makes it a Zarr group) last. A writer killed mid-upload leaves objects without a row,
which the next writer sweeps under the lock, as a directory left by a killed local writer is.

Arrays are read through zarr's own ``FsspecStore``; files that other programs must open (source
clips for the video decoder, identity pictures) are fetched once into a local cache (they never
change: their key is their content's hash, and versions are written once).
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from motionlib.core.errors import LibraryError

if TYPE_CHECKING:
    from motionlib.core.motion import Motion

MAX_SMALL = 16 << 20  # a manifest or sidecar larger than this is not one
TOPS = ("motions", "sources", "identities", "renders")


class LocalFiles:
    """A library directory (the default): the behaviour motionlib always had."""

    shared = False

    def __init__(self, root: Path):
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    # -- reads
    def local(self, key: str) -> Path | None:
        """A local path to read the file at ``key`` from (None when there is none)."""
        p = self.root / key
        return p if p.is_file() else None

    def has_version(self, key: str) -> bool:
        return (self.root / key).is_dir()

    def has_file(self, key: str) -> bool:
        return (self.root / key).is_file()

    def manifest(self, key: str) -> dict[str, Any]:
        from motionlib.store.zarrstore import read_manifest

        return read_manifest(self.root / key)

    def motion(self, key: str, *, raw: bool = False, span=None) -> "Motion":
        from motionlib.store.zarrstore import read_motion

        return read_motion(self.root / key, raw=raw, span=span)

    def read_text(self, key: str) -> str | None:
        p = self.root / key
        return p.read_text() if p.is_file() else None

    def version_keys(self) -> list[str]:
        """Every version directory's key (complete or not)."""
        d = self.root / "motions"
        return sorted(p.relative_to(self.root).as_posix() for p in d.glob("*/v[0-9]*")
                      if p.is_dir() and not p.is_symlink())

    def file_keys(self, top: str) -> list[str]:
        """Every plain file below ``top`` (``sources``, ``identities``; sidecars: ``motions``)."""
        d = self.root / top
        if top == "motions":
            found = d.glob("*/v[0-9]*.*.json")
        elif top == "sources":
            found = d.glob("*/*")
        else:
            found = d.glob("**/*")
        return sorted(p.relative_to(self.root).as_posix() for p in found if p.is_file() and not p.is_symlink())

    # -- writes
    def put_version(self, staged: Path, key: str) -> None:
        from motionlib.store.zarrstore import finalize

        finalize(staged, self.root / key)

    def put_file(self, staged: Path, key: str) -> None:
        from motionlib.store.files import place

        place(staged, self.root / key)

    def write_text(self, key: str, text: str) -> None:
        from motionlib.store.files import write_text

        write_text(self.root / key, text)

    def remove_version(self, key: str) -> None:
        from motionlib.store.files import remove_tree

        remove_tree(self.root / key)

    def remove_file(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


class ObjectFiles:
    """A library's files below a prefix of an object store (``s3://bucket/prefix``, or any
    fsspec URL; ``file:///dir`` too). Credentials come from the environment or the usual files
    (AWS_ACCESS_KEY_ID, ~/.aws/credentials ...); the endpoint of an S3-compatible server from
    ``?endpoint=URL`` or AWS_ENDPOINT_URL. ``cache`` is a local directory for fetched files."""

    shared = True

    def __init__(self, url: str, cache: Path):
        import fsspec

        parts = urlsplit(url)
        if not parts.scheme or parts.scheme == "file" and not parts.path:
            raise LibraryError(f"store {url!r} is not an object-store URL (s3://bucket/prefix)")
        options = dict(parse_qsl(parts.query))
        self.url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.protocol = parts.scheme
        self.storage_options: dict[str, Any] = {}
        endpoint = options.pop("endpoint", None) or (os.environ.get("AWS_ENDPOINT_URL") if parts.scheme == "s3" else None)
        if parts.scheme == "s3":
            if endpoint:
                self.storage_options["endpoint_url"] = endpoint
            region = options.pop("region", None)
            if region:
                self.storage_options.setdefault("client_kwargs", {})["region_name"] = region
        if options:
            raise LibraryError(f"store URL {self.describe()} has options motionlib does not know: {', '.join(options)}")
        try:
            self.fs = fsspec.filesystem(self.protocol, **self.storage_options)
        except (ImportError, ValueError) as err:
            hint = " (pip install 'motionlib[team]')" if isinstance(err, ImportError) else ""
            raise LibraryError(f"cannot reach the store {self.describe()}: {err}{hint}") from None
        self.base = self.fs._strip_protocol(self.url).rstrip("/")
        self.cache = Path(cache)

    def describe(self) -> str:
        return self.url

    def _k(self, key: str) -> str:
        key = posixpath.normpath(key)
        if key.startswith(("/", "..")) or key.split("/", 1)[0] not in TOPS:
            raise LibraryError(f"{key!r} is not a key of a library")
        return f"{self.base}/{key}"

    def _guard(self, what: str):
        return _StoreErrors(self, what)

    # -- reads
    def local(self, key: str) -> Path | None:
        """The file at ``key``, fetched once into the local cache (keys never change content)."""
        dest = self.cache / "objects" / key
        if dest.is_file():
            return dest
        with self._guard(f"read {key}"):
            if not self.fs.exists(self._k(key)):
                return None
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
            try:
                self.fs.get_file(self._k(key), str(part))
                os.replace(part, dest)
            finally:
                part.unlink(missing_ok=True)
        return dest

    def has_version(self, key: str) -> bool:
        with self._guard(f"read {key}"):
            return self.fs.exists(self._k(key) + "/zarr.json")

    def has_file(self, key: str) -> bool:
        with self._guard(f"read {key}"):
            return self.fs.isfile(self._k(key))

    def _small(self, path: str) -> bytes:
        info = self.fs.info(path)
        if info.get("type") != "file" or int(info.get("size") or 0) > MAX_SMALL:
            raise ValueError(f"{path} is not a file of at most {MAX_SMALL >> 20} MiB")
        return self.fs.cat_file(path)

    def manifest(self, key: str) -> dict[str, Any]:
        from motionlib.store.zarrstore import MANIFEST_KEY

        try:
            with self._guard(f"read {key}"):
                return json.loads(self._small(self._k(key) + "/zarr.json"))["attributes"][MANIFEST_KEY]
        except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
            raise LibraryError(f"{key} is not a readable motion version ({err})") from None

    def zarr_store(self, key: str):
        """zarr's own fsspec store on the version at ``key``, read-only."""
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(f"{self.protocol}://{self._k(key)}", storage_options=self.storage_options or None,
                                    read_only=True)

    def motion(self, key: str, *, raw: bool = False, span=None) -> "Motion":
        from motionlib.store.zarrstore import read_group

        manifest = self.manifest(key)
        with self._guard(f"read {key}"):
            return read_group(self.zarr_store(key), manifest, key, raw=raw, span=span)

    def read_text(self, key: str) -> str | None:
        with self._guard(f"read {key}"):
            try:
                return self._small(self._k(key)).decode()
            except FileNotFoundError:
                return None

    def _find(self, top: str) -> list[str]:
        with self._guard(f"list {top}"):
            found = self.fs.find(f"{self.base}/{top}")
        n = len(self.base) + 1
        return sorted(p[n:] for p in found)

    def version_keys(self) -> list[str]:
        keys = set()
        for k in self._find("motions"):
            parts = k.split("/")
            if len(parts) >= 4 and parts[2].startswith("v") and parts[2][1:].isdigit():
                keys.add("/".join(parts[:3]))
        return sorted(keys)

    def file_keys(self, top: str) -> list[str]:
        found = self._find(top)
        if top == "motions":
            return [k for k in found if k.count("/") == 2 and k.endswith(".json")]
        return found

    # -- writes
    def put_version(self, staged: Path, key: str) -> None:
        """Upload every file of the staged version, ``zarr.json`` files last (the group's own
        at the very end): until it is there, no reader takes the prefix for a version."""
        staged = Path(staged)
        files = [p for p in staged.rglob("*") if p.is_file()]
        files.sort(key=lambda p: (p.name == "zarr.json", -len(p.relative_to(staged).parts)))
        with self._guard(f"write {key}"):
            for p in files:
                self.fs.put_file(str(p), f"{self._k(key)}/{p.relative_to(staged).as_posix()}")

    def put_file(self, staged: Path, key: str) -> None:
        with self._guard(f"write {key}"):
            if not self.fs.exists(self._k(key)):
                self.fs.put_file(str(staged), self._k(key))

    def write_text(self, key: str, text: str) -> None:
        with self._guard(f"write {key}"):
            self.fs.pipe_file(self._k(key), text.encode())

    def remove_version(self, key: str) -> None:
        with self._guard(f"remove {key}"):
            try:
                self.fs.rm(self._k(key), recursive=True)
            except FileNotFoundError:
                pass

    def remove_file(self, key: str) -> None:
        with self._guard(f"remove {key}"):
            try:
                self.fs.rm_file(self._k(key))
            except FileNotFoundError:
                pass


class _StoreErrors:
    """Turn an object store's network and permission errors into one LibraryError line."""

    def __init__(self, files: ObjectFiles, what: str):
        self.files, self.what = files, what

    def __enter__(self):
        return self

    def __exit__(self, kind, err, _tb) -> bool:
        if err is None or isinstance(err, (LibraryError, FileNotFoundError, KeyboardInterrupt)):
            return False
        if isinstance(err, (OSError, ConnectionError, TimeoutError)) or type(err).__module__.split(".")[0] in (
                "botocore", "aiobotocore", "aiohttp", "s3fs"):
            detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            raise LibraryError(f"the store {self.files.describe()} failed to {self.what}: {detail}") from None
        return False

