from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from motionlib.core.errors import IndexDamaged, LibraryError, disk_problem
from motionlib.index import migrations
from motionlib.index.dialect import SQLITE

if TYPE_CHECKING:
    from motionlib.index.pg import PostgresIndex
    from motionlib.index.reader import Reader
    from motionlib.index.writer import Writer


def open_index(target: "str | os.PathLike", *, read_only: bool = False) -> "Index | PostgresIndex":
    """The index at ``target``: a path -> the SQLite :class:`Index` there; a ``postgresql://``
    (or ``postgres://``) URL -> a :class:`~motionlib.index.pg.PostgresIndex` in that database (a
    ``store=`` query parameter is ignored). Both have ``reader()``, ``write()``, ``close()``,
    ``read_only`` and ``location`` (for messages: a path, or the URL without its password)."""
    from motionlib.index.pg import is_postgres_url

    if is_postgres_url(target):
        from motionlib.index.pg import PostgresIndex

        return PostgresIndex(str(target), read_only=read_only)
    return Index(Path(target), read_only=read_only)


class Index:
    """The library's SQLite index. Opening it applies pending migrations (stdlib, fast)."""

    dialect = SQLITE
    open = staticmethod(open_index)

    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = Path(path)
        self.location = str(self.path)
        self.read_only = read_only
        self._engine = None
        if read_only and not self.path.is_file():
            raise LibraryError(f"{self.path.parent} has no index and is read-only: it is not a library yet")
        try:
            conn = migrations.connect(str(self.path), read_only)
            try:
                migrations.migrate(conn, read_only)
            finally:
                conn.close()
        except sqlite3.DatabaseError as err:
            problem = disk_problem(err, self.path.parent)
            if problem is not None:
                raise problem from None
            raise IndexDamaged(f"cannot open the index {self.path}: {err} (`motionlib doctor` says what is wrong; "
                               "`motionlib reindex` rebuilds the index from the store)") from None

    # -- reads: stdlib sqlite3 -------------------------------------------------------------
    def reader(self) -> "Reader":
        from motionlib.index.reader import Reader

        return Reader(self.path, read_only=self.read_only)

    # -- writes: SQLModel, one IMMEDIATE transaction each ---------------------------------------
    def _get_engine(self):
        if self._engine is None:
            from sqlalchemy import event
            from sqlalchemy.pool import NullPool
            from sqlmodel import create_engine

            engine = create_engine(
                f"sqlite:///{self.path}",
                connect_args={"timeout": 30.0, "isolation_level": None, "check_same_thread": False},
                poolclass=NullPool,
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA busy_timeout = 30000")
                cur.execute("PRAGMA foreign_keys = ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn):
                # Take the write lock up front: two writers queue on busy_timeout instead of
                # failing with "database is locked" when one upgrades a read to a write.
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            self._engine = engine
        return self._engine

    @contextlib.contextmanager
    def write(self) -> Iterator["Writer"]:
        """A :class:`Writer` inside BEGIN IMMEDIATE; commits on success, rolls back on error."""
        from sqlmodel import Session

        from motionlib.index.writer import Writer

        from sqlalchemy.exc import OperationalError

        if self.read_only:
            raise LibraryError(f"{self.path.parent} is on a read-only disk: it can be read, not changed")
        try:
            with Session(self._get_engine(), expire_on_commit=False) as session:
                with session.begin():
                    yield Writer(session)
        except (OSError, OperationalError, sqlite3.OperationalError) as err:  # rolled back by now
            problem = disk_problem(err, self.path.parent)
            if problem is None:
                raise
            raise problem from err

    def describe(self) -> str:
        return self.location

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def warm_imports() -> None:
    """Import what writing needs (SQLModel, SQLAlchemy: ~0.5 s here) ahead of time, e.g. while
    pose workers are busy."""
    import motionlib.index.writer  # noqa: F401
