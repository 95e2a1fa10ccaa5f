"""Where a library lives and how its directory is laid out (see the package docstring)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from motionlib.core.errors import LibraryError

ENV_LIBRARY = "MOTIONLIB_LIBRARY"
INDEX_FILE = "index.sqlite"
# what a library directory holds; a non-empty directory with none of these is not a library
ENTRIES = (INDEX_FILE, "motions", "sources", "tmp", "identities", "cache")


def default_library_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("motionlib", appauthor=False))


SHARED_SCHEMES = ("postgresql", "postgres")
STORE_OPTIONS = ("endpoint", "region")  # options of a shared library URL that belong to its store


def is_shared(target: str | os.PathLike) -> bool:
    """Whether ``target`` names a shared library (a PostgreSQL URL) rather than a directory."""
    return isinstance(target, str) and target.split("://", 1)[0].lower() in SHARED_SCHEMES and "://" in target


def resolve_library_path(path: str | os.PathLike | None = None) -> Path | str:
    """The given path or URL, else $MOTIONLIB_LIBRARY, else the per-user data directory. A
    shared library's URL (``postgresql://...?store=s3://...``) comes back as it is."""
    value = path if path else os.environ.get(ENV_LIBRARY)
    if not value:
        return default_library_path()
    if is_shared(str(value)):
        return str(value)
    return Path(value).expanduser()


@dataclass(frozen=True)
class SharedTarget:
    """A shared library: its index (a PostgreSQL URL) and its store (an object-store URL)."""

    url: str = field(repr=False)  # as given (may hold a password: never printed; see ``shown``)
    index_url: str = field(repr=False)  # the PostgreSQL URL without the store's options
    store_url: str = ""

    @property
    def shown(self) -> str:
        """The URL as messages show it: any password replaced by ***."""
        return redact(self.url)

    @property
    def work(self) -> Path:
        """This machine's working directory for the library: staging and caches."""
        from motionlib.core.weights import cache_dir

        key = hashlib.sha256(redact(self.url).encode()).hexdigest()[:16]
        return cache_dir() / "shared" / key


def parse_shared(url: str) -> SharedTarget:
    """Split ``postgresql://user@host/db?store=s3://bucket/prefix[&endpoint=URL][&region=R][&PG
    options]``: ``endpoint`` and ``region`` go to the store (an S3-compatible server's address),
    the rest to PostgreSQL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    stores = [v for k, v in query if k == "store"]
    if len(stores) != 1 or not stores[0]:
        raise LibraryError(f"the shared library {redact(url)} needs one store=URL for its files "
                           "(postgresql://user@host/db?store=s3://bucket/prefix; docs/team.md)")
    store = stores[0]
    extra = [(k, v) for k, v in query if k in STORE_OPTIONS]
    if extra:
        store += ("&" if "?" in store else "?") + urlencode(extra)
    rest = urlencode([(k, v) for k, v in query if k != "store" and k not in STORE_OPTIONS])
    index_url = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
    return SharedTarget(url, index_url, store)


def redact(url: str) -> str:
    """``url`` with the password of its user part (and any password= option) replaced by ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = re.sub(r"(?i)((?:^|&)(?:password|secret[^=]*|aws_secret_access_key)=)[^&]*", r"\1***", parts.query)
    query = re.sub(r"(?i)(%26|&)(password=)[^&%]*", r"\1\2***", query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def prepare_root(root: Path, create: bool) -> None:
    """Refuse what is not a library; create a new one where asked."""
    if root.exists() and not root.is_dir():
        raise LibraryError(f"library path {root} exists and is not a directory")
    if root.exists():
        entries = {p.name for p in root.iterdir()}
        if entries and not (entries & set(ENTRIES)):
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


def name_key(name: str) -> str:
    """Directory name for a motion name: readable, filesystem-safe, collision-free."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40] or "motion"
    return f"{slug}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"


def version_dir(name: str, version: int) -> Path:
    """A version's directory, relative to the library root."""
    return Path("motions") / name_key(name) / f"v{version:04d}"


def now() -> str:
    """A record's time stamp: UTC, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
