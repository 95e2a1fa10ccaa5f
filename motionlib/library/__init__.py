"""The library: one directory holding the index, the Zarr store, kept source clips, identity
pictures and the render records. It is the only code that persists anything.

    <library>/index.sqlite                  SQLite index (WAL)
    <library>/motions/<key>/v0001/          one Zarr v3 group per version (read-only once written)
    <library>/motions/<key>/v0001.tags.json the version's current tags (so ``reindex`` keeps them)
    <library>/sources/<ab>/<sha256>.<ext>   content-addressed copies of source clips
    <library>/identities/<ab>/<sha256>.<ext> identity pictures, content-addressed
    <library>/cache/retarget/               retargeted keypoints (derived; safe to delete)
    <library>/tmp/<pid>-<random>/           staging area of running writes

Write protocol (crash safety): arrays and the source copy are written into a private staging
directory; then, holding the index's write lock (BEGIN IMMEDIATE), the version directory is renamed
into place and the row is inserted and committed. A process killed at any point leaves at most an
unreferenced directory, never a row without data; every write first removes staging directories
of dead processes and version directories or sources that no row references - which, under the
write lock, can only be leftovers.

One module per concern, joined into :class:`Library`:

* ``base``: the directory, the index, every read, staging and sweeping;
* ``versions``: ingest, edits (derive), imports, tags, rename, remove;
* ``exports``: previews and keypoint exports;
* ``identities``: the pictures motions are rendered onto;
* ``renders``: planning, running and recording renders and campaigns;
* ``maintenance``: recover and reindex;
* ``manifests``, ``sidecars``, ``paths``: what each version stores, the files beside it, the layout.
"""

from __future__ import annotations

from motionlib.library.base import LibraryBase
from motionlib.library.exports import Exports
from motionlib.library.identities import Identities
from motionlib.library.maintenance import Maintenance
from motionlib.library.paths import ENV_LIBRARY, INDEX_FILE, default_library_path, resolve_library_path
from motionlib.library.renders import Prepared, Renders
from motionlib.library.versions import DeriveResult, IngestResult, Versions


class Library(Versions, Exports, Identities, Renders, Maintenance, LibraryBase):
    """A motion library on disk (see the module docstring). ``Library.open(path)`` finds it the
    way the command line does: the path, else $MOTIONLIB_LIBRARY, else the per-user one."""


__all__ = [
    "ENV_LIBRARY", "INDEX_FILE", "DeriveResult", "IngestResult", "Library", "Prepared",
    "default_library_path", "resolve_library_path",
]
