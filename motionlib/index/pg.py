"""The index on a PostgreSQL server: a team's library (``postgresql://user@host/db``).

The same public API as the SQLite :class:`~motionlib.index.db.Index`: ``reader()`` gives the
same :class:`~motionlib.index.reader.Reader` (its SQL in PostgreSQL's dialect, index.dialect),
``write()`` the same :class:`~motionlib.index.writer.Writer` (SQLModel over a psycopg engine),
``close()``, ``read_only``, ``location``.

* Credentials come from the URL, the PG* environment variables or ~/.pgpass (libpq reads them);
  a password never appears in a message (``location`` and every error are redacted).
* Every write transaction takes a transaction-level advisory lock (``pg_advisory_xact_lock`` on
  migrations.WRITE_LOCK_KEY) as it begins: one writer at a time across every machine, as BEGIN
  IMMEDIATE gives on SQLite. The server releases it when the transaction ends - commit, rollback,
  or the writer's connection gone (a killed process).
* A lost connection, a server that is down, a full disk, a refused login become one LibraryError
  line (:func:`pg_problem`).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from motionlib.core.errors import LibraryError
from motionlib.index import migrations
from motionlib.index.dialect import POSTGRES, pg_placeholders, redact

if TYPE_CHECKING:
    from motionlib.index.reader import Reader
    from motionlib.index.writer import Writer

SCHEMES = ("postgresql://", "postgres://")
# how long a writer waits for another's write lock before giving up (SQLite's busy timeout is 30 s;
# a team's writers on several machines may hold it longer while they place files)
WRITE_LOCK_WAIT_S = 300
CONNECT_TIMEOUT_S = 10
_IDLE_READERS = 2  # connections kept for the next reader()
_CURSORS = itertools.count()  # server-side cursors' names


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.lower().startswith(SCHEMES)


def strip_store(url: str) -> str:
    """``url`` without its ``store=`` query parameter (the library's object store, not libpq's)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "store"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def redact_url(url: str) -> str:
    """``url`` as messages show it: no password, no query (``postgresql://user@host:port/db``)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    userinfo, host = (netloc[0], netloc[2]) if netloc[1] else ("", netloc[2])
    user = userinfo.partition(":")[0]
    return urlunsplit((parts.scheme, (f"{user}@" if user else "") + host, parts.path, "", ""))


def _password(url: str) -> str | None:
    userinfo, at, _host = urlsplit(url).netloc.rpartition("@")
    return userinfo.partition(":")[2] or None if at else None


# SQLSTATE -> what the user is told (after "the library's index at LOCATION")
_STATES = {
    "53100": "the PostgreSQL server has no disk space left: free some there and run the command again "
             "(nothing was changed)",
    "53200": "the PostgreSQL server is out of memory; nothing was changed",
    "53300": "the PostgreSQL server has too many connections; try again later",
    "25006": "is read-only for this login: it can be read, not changed",
    "42501": "permission denied",
    "28P01": "login refused",
    "28000": "login refused",
    "3D000": "the database does not exist (create it, e.g. `createdb`, then run the command again)",
    "55P03": f"another writer held the library's write lock for over {WRITE_LOCK_WAIT_S} s; try again",
    "57P01": "the PostgreSQL server shut down",
    "57P02": "the PostgreSQL server shut down",
    "57P03": "the PostgreSQL server is starting or stopping; try again shortly",
    "40P01": "a deadlock with another writer; nothing was changed, run the command again",
}


def pg_problem(err: BaseException, location: str, secret: str | None = None) -> LibraryError | None:
    """A LibraryError in one line for a PostgreSQL fault the user can act on (connection lost or
    refused, server down, login refused, disk full, read-only, lock wait too long); None for
    anything else (a bug: let it show). ``secret``: a password to keep out of the message."""
    import psycopg

    err = getattr(err, "orig", None) or err  # SQLAlchemy wraps the driver's error
    if not isinstance(err, psycopg.Error):
        return None
    state = getattr(err, "sqlstate", None) or ""
    detail = " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
    detail = redact(detail, secret)
    if len(detail) > 300:
        detail = detail[:297] + "..."
    if not state:  # a failed connection carries no SQLSTATE: libpq's words tell the cause
        low = detail.lower()
        if "password authentication failed" in low or "no password supplied" in low or \
                "authentication failed" in low or "no pg_hba.conf entry" in low:
            state = "28P01"
        elif "database" in low and "does not exist" in low:
            state = "3D000"
        elif "the database system is" in low:  # starting up / shutting down
            state = "57P03"
        if "fatal:" in low:  # "connection failed: connection to server at ... failed: FATAL:  why"
            detail = detail[low.rindex("fatal:") + 6:].strip()
    what = _STATES.get(state)
    if what is None:
        if isinstance(err, (psycopg.OperationalError, psycopg.InterfaceError)) or state.startswith("08"):
            what = "cannot reach the PostgreSQL server"
        else:
            return None
    if state == "55P03" or state in ("53100", "53200", "53300", "40P01", "57P01", "57P02"):
        return LibraryError(f"the library's index at {location}: {what}")
    return LibraryError(f"the library's index at {location}: {what} ({detail})" if detail
                        else f"the library's index at {location}: {what}")


class _Connection:
    """A psycopg connection as the Reader wants it: ``execute`` with ``?`` placeholders,
    ``stream`` (a server-side cursor: bounded memory), ``close`` (back to the index's idle
    connections); errors become pg_problem's LibraryError."""

    def __init__(self, conn, index: "PostgresIndex", pooled: bool = False):
        self._conn = conn
        self._index = index
        self._pooled = pooled  # an idle connection kept from an earlier reader: may have died since

    def _fail(self, err: BaseException):
        problem = pg_problem(err, self._index.location, self._index._secret)
        if problem is None:
            raise err
        raise problem from None

    def execute(self, sql: str, params: Any = ()):
        import psycopg

        params = tuple(params)
        sql = pg_placeholders(sql) if params else sql
        try:
            try:
                return self._conn.execute(sql, params or None)
            except psycopg.OperationalError:
                if not self._pooled:
                    raise
                # the kept connection died while idle (server restarted, idle timeout): a new one
                self._pooled = False
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = self._index._connect()
                return self._conn.execute(sql, params or None)
            finally:
                self._pooled = False
        except Exception as err:  # noqa: BLE001 - re-raised as it was unless it is the server's fault
            self._fail(err)

    def stream(self, sql: str, params: Any, batch: int) -> Iterator[tuple]:
        if self._pooled:  # make sure it is alive (and replaced if not) before a cursor is opened
            self.execute("SELECT 1")
        try:
            with self._conn.transaction():  # a named cursor lives in a transaction
                with self._conn.cursor(name=f"motionlib_{next(_CURSORS)}") as cursor:
                    cursor.itersize = batch
                    cursor.execute(pg_placeholders(sql), tuple(params))
                    while rows := cursor.fetchmany(batch):
                        yield from rows
        except GeneratorExit:
            raise
        except Exception as err:  # noqa: BLE001
            self._fail(err)

    def close(self) -> None:
        self._index._release(self._conn)
        self._conn = None


class PostgresIndex:
    """The library's index in a PostgreSQL database (see the module docstring). Opening it
    applies pending migrations; a schema newer than this code is refused."""

    dialect = POSTGRES

    def __init__(self, url: str, *, read_only: bool = False):
        self.url = strip_store(url)
        self.location = redact_url(self.url)
        self.read_only = read_only
        self._secret = _password(self.url)
        self._engine = None
        self._idle: list = []
        self._lock = threading.Lock()
        try:
            conn = self._connect()
        except Exception as err:  # noqa: BLE001
            raise self._problem(err) from None
        try:
            migrations.migrate_postgres(conn, read_only)
        except LibraryError:
            raise
        except Exception as err:  # noqa: BLE001
            raise self._problem(err) from None
        finally:
            conn.close()

    def describe(self) -> str:
        return self.location

    def __repr__(self) -> str:
        return f"PostgresIndex({self.location!r})"

    def _problem(self, err: BaseException) -> BaseException:
        problem = pg_problem(err, self.location, self._secret)
        if problem is not None:
            return problem
        return LibraryError(f"the library's index at {self.location}: "
                            f"{redact(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, self._secret)}")

    def _connect(self, autocommit: bool = True):
        import psycopg

        conn = psycopg.connect(self.url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="motionlib", keepalives=1, keepalives_idle=30,
                               keepalives_interval=10, keepalives_count=3)
        if self.read_only:
            conn.execute("SET default_transaction_read_only = on")
        return conn

    # -- reads ---------------------------------------------------------------------------
    def reader(self) -> "Reader":
        from motionlib.index.reader import Reader

        with self._lock:
            conn = self._idle.pop() if self._idle else None
        pooled = conn is not None
        if conn is None:
            try:
                conn = self._connect()
            except Exception as err:  # noqa: BLE001
                raise self._problem(err) from None
        return Reader(conn=_Connection(conn, self, pooled), dialect=POSTGRES)

    def _release(self, conn) -> None:
        import psycopg

        if conn is None:
            return
        reusable = (not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE)
        with self._lock:
            if reusable and len(self._idle) < _IDLE_READERS:
                self._idle.append(conn)
                return
        with contextlib.suppress(Exception):
            conn.close()

    # -- writes: SQLModel, one transaction under the advisory write lock each -------------------
    def _get_engine(self):
        if self._engine is None:
            from sqlalchemy import event
            from sqlmodel import create_engine

            engine = create_engine("postgresql+psycopg://", creator=lambda: self._connect(autocommit=False),
                                   pool_pre_ping=True, pool_size=1, max_overflow=4)

            @event.listens_for(engine, "begin")
            def _on_begin(conn):
                # the write lock, for this transaction: one writer at a time on every machine
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(WRITE_LOCK_WAIT_S)}s'")
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({migrations.WRITE_LOCK_KEY})")
                conn.exec_driver_sql("SET LOCAL lock_timeout = 0")

            self._engine = engine
        return self._engine

    @contextlib.contextmanager
    def write(self) -> Iterator["Writer"]:
        """A :class:`Writer` inside one transaction holding the write lock from its start;
        commits on success, rolls back on error."""
        from sqlalchemy.exc import SQLAlchemyError
        from sqlmodel import Session

        from motionlib.index.writer import Writer

        if self.read_only:
            raise LibraryError(f"the library's index at {self.location} is opened read-only: it can be read, "
                               "not changed")
        try:
            with Session(self._get_engine(), expire_on_commit=False) as session:
                with session.begin():
                    session.connection()  # BEGIN and the lock now, before the caller places any file
                    yield Writer(session)
        except SQLAlchemyError as err:  # rolled back by now (or the server did, its connection gone)
            problem = pg_problem(err, self.location, self._secret)
            if problem is None:
                raise
            raise problem from None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
