"""Ordered schema migrations. Never edit a released migration: append a new one.

``PRAGMA user_version`` holds the number of the last applied migration. A library whose index is
newer than this code refuses to open rather than guess.
"""

from __future__ import annotations

import re
import sqlite3

from motionlib.core.errors import LibraryError

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "motion versions, tags, per-name version counters",
        """
        CREATE TABLE motion (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            created TEXT NOT NULL,
            duration REAL NOT NULL,
            fps REAL NOT NULL,
            frames INTEGER NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            skeleton TEXT NOT NULL,
            source_name TEXT,
            source_sha256 TEXT,
            source_size INTEGER,
            source_path TEXT,
            estimator TEXT NOT NULL,
            settings_digest TEXT NOT NULL,
            parent TEXT,
            operation TEXT NOT NULL DEFAULT 'ingest',
            op_params TEXT NOT NULL DEFAULT '{}',
            store_path TEXT NOT NULL UNIQUE,
            overall REAL,
            occlusion REAL,
            occlusion_raw REAL,
            jitter REAL,
            jitter_raw REAL,
            framing REAL,
            framing_raw REAL,
            warnings TEXT NOT NULL DEFAULT '[]',
            UNIQUE (name, version)
        );
        CREATE INDEX ix_motion_source ON motion (source_sha256);
        CREATE TABLE tag (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        );
        CREATE TABLE motion_tag (
            motion_id INTEGER NOT NULL REFERENCES motion (id) ON DELETE CASCADE,
            tag_id INTEGER NOT NULL REFERENCES tag (id) ON DELETE CASCADE,
            PRIMARY KEY (motion_id, tag_id)
        );
        CREATE INDEX ix_motion_tag_tag ON motion_tag (tag_id);
        CREATE TABLE name_counter (
            name TEXT PRIMARY KEY,
            last_version INTEGER NOT NULL
        );
        """,
    ),
    (
        2,
        "identities (person images) and render records",
        """
        CREATE TABLE identity (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            file_name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            path TEXT NOT NULL,
            format TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL,
            body TEXT NOT NULL,
            skeleton TEXT NOT NULL,
            pose TEXT NOT NULL,
            estimator TEXT NOT NULL,
            warnings TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX ix_identity_sha ON identity (sha256);
        CREATE TABLE render (
            id INTEGER PRIMARY KEY,
            created TEXT NOT NULL,
            finished TEXT,
            status TEXT NOT NULL,
            pid INTEGER,
            motion_ref TEXT NOT NULL,
            motion_store TEXT NOT NULL,
            identity_name TEXT NOT NULL,
            identity_sha256 TEXT NOT NULL,
            backend TEXT NOT NULL,
            models TEXT NOT NULL DEFAULT '{}',
            params TEXT NOT NULL DEFAULT '{}',
            seed INTEGER NOT NULL,
            timings TEXT NOT NULL DEFAULT '{}',
            output TEXT NOT NULL,
            output_sha256 TEXT,
            error TEXT,
            campaign TEXT
        );
        CREATE INDEX ix_render_status ON render (status);
        """,
    ),
    (
        3,
        "indexes for the query language (score, created), and tags stored lower-case",
        """
        CREATE INDEX ix_motion_overall ON motion (overall);
        CREATE INDEX ix_motion_created ON motion (created);
        CREATE INDEX ix_render_output ON render (output);
        INSERT OR IGNORE INTO tag (name) SELECT DISTINCT lower(name) FROM tag WHERE name != lower(name);
        INSERT OR IGNORE INTO motion_tag (motion_id, tag_id)
            SELECT mt.motion_id, (SELECT t2.id FROM tag t2 WHERE t2.name = lower(t.name))
            FROM motion_tag mt JOIN tag t ON t.id = mt.tag_id WHERE t.name != lower(t.name);
        DELETE FROM motion_tag WHERE tag_id IN (SELECT id FROM tag WHERE name != lower(name));
        DELETE FROM tag WHERE name != lower(name);
        """,
    ),
    (
        4,
        "motion descriptors for similarity (processing/similarity.py), one per version",
        """
        CREATE TABLE motion_descriptor (
            motion_id INTEGER PRIMARY KEY REFERENCES motion (id) ON DELETE CASCADE,
            kind INTEGER NOT NULL,
            vector BLOB NOT NULL
        );
        """,
    ),
    (
        5,
        "score and created indexes in the descending sorts' whole order (column DESC, name, version)",
        # The one-column indexes of migration 3 left the ties' order (name, version) to a partial
        # sort. SQLite 3.40 walked the index and sorted that part; newer SQLite (3.53, the one
        # Debian's Python 3.14 links) scans the whole table and sorts every row instead, computing
        # each row's tags on the way: `-score` with LIMIT 50 over 200,000 versions took 300 ms
        # rather than 0.4. An index in the sort's whole order needs no sort on either.
        """
        DROP INDEX IF EXISTS ix_motion_overall;
        DROP INDEX IF EXISTS ix_motion_created;
        CREATE INDEX ix_motion_overall_desc ON motion (overall DESC, name, version);
        CREATE INDEX ix_motion_created_desc ON motion (created DESC, name, version);
        """,
    ),
]

LATEST = MIGRATIONS[-1][0]


def connect(path: str, read_only: bool = False) -> sqlite3.Connection:
    """A stdlib connection in autocommit mode (we issue BEGIN ourselves), WAL, busy timeout.
    ``read_only``: for a library on a disk this process cannot write. SQLite then reads the WAL
    through its shared-memory file if a writer elsewhere left one; with none (and none can be
    made there) the file is opened as immutable, which is what it is from here."""
    if read_only:
        from urllib.parse import quote

        uri = f"file:{quote(str(path))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA user_version").fetchone()
        except sqlite3.OperationalError:
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
        return conn
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _up_to_date(current: int, read_only: bool, why_not_writable: str) -> bool:
    """Whether schema ``current`` needs nothing; refuses a newer one, and an older one that cannot
    be upgraded here."""
    if current > LATEST:
        raise LibraryError(
            f"this library's index has schema {current}, newer than this motionlib knows ({LATEST}); "
            "upgrade motionlib"
        )
    if current == LATEST:
        return True
    if read_only:
        raise LibraryError(f"this library's index has schema {current}, older than this motionlib's ({LATEST}), "
                           f"and {why_not_writable}, to upgrade it")
    return False


def migrate(conn: sqlite3.Connection, read_only: bool = False) -> int:
    """Bring the schema up to date; returns the version now in place."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if _up_to_date(current, read_only, "its disk is read-only: open it once where it can be written"):
        return current
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
        for number, _what, sql in MIGRATIONS:
            if number > current:
                for statement in sql.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return LATEST


# ------------------------------------------------------------------------------- PostgreSQL
# The same migrations on PostgreSQL (index.pg): each statement translated by postgres_sql, the
# version kept in SCHEMA_TABLE (there is no user_version), and migrating serialised by the index's
# write lock (a transaction-level advisory lock on WRITE_LOCK_KEY) so that two processes opening a
# fresh database at once do not both create the tables.

SCHEMA_TABLE = "motionlib_schema"
WRITE_LOCK_KEY = 0x6D6F74696F6E6C69  # "motionli": the one advisory lock key of an index's database

_PG_TYPES = [
    # a rowid alias that is also a foreign key (motion_descriptor.motion_id) keeps its values
    (re.compile(r"\bINTEGER PRIMARY KEY(?=\s+REFERENCES\b)", re.I), "BIGINT PRIMARY KEY"),
    # SQLite's rowid alias: numbered by the database
    (re.compile(r"\bINTEGER PRIMARY KEY\b", re.I), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),  # SQLite's integers are 64-bit (sizes in bytes)
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),  # SQLite's REAL is an 8-byte float
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    # byte order, as SQLite's BINARY collation sorts and compares, whatever the database's locale
    (re.compile(r"\bTEXT\b", re.I), 'TEXT COLLATE "C"'),
]
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.I)


def postgres_sql(sql: str) -> list[str]:
    """A migration's SQLite statements as PostgreSQL statements: column types (INTEGER PRIMARY
    KEY -> an identity column, INTEGER -> BIGINT, REAL -> DOUBLE PRECISION, BLOB -> BYTEA, TEXT ->
    TEXT COLLATE "C") and INSERT OR IGNORE -> INSERT ... ON CONFLICT DO NOTHING. Anything else
    SQLite-only raises, so a new migration cannot slip through untranslated."""
    out = []
    for statement in sql.split(";"):
        s = statement.strip()
        if not s:
            continue
        if re.match(r"^\s*CREATE\s+TABLE\b", s, re.I):
            for pattern, replacement in _PG_TYPES:
                s = pattern.sub(replacement, s)
        if _INSERT_OR_IGNORE.match(s):
            s = _INSERT_OR_IGNORE.sub("INSERT INTO", s) + " ON CONFLICT DO NOTHING"
        unknown = re.search(r"\b(PRAGMA|OR\s+REPLACE|OR\s+IGNORE|AUTOINCREMENT|GLOB|group_concat|WITHOUT\s+ROWID|"
                            r"BLOB|REAL)\b", s, re.I)
        if unknown:
            raise ValueError(f"migration statement not translatable to PostgreSQL ({unknown.group(0)}): {s[:80]}")
        out.append(s)
    return out


def postgres_version(conn) -> int | None:
    """The schema version recorded in a PostgreSQL index (psycopg connection); None before the
    first migration (no table yet)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,)).fetchone()
    if not row[0]:
        return None
    row = conn.execute(f"SELECT max(version) FROM {SCHEMA_TABLE}").fetchone()
    return row[0] if row and row[0] is not None else 0


def migrate_postgres(conn, read_only: bool = False) -> int:
    """Bring a PostgreSQL index (a psycopg connection in autocommit mode) up to date, as
    :func:`migrate` does for SQLite; returns the version now in place."""
    current = postgres_version(conn) or 0
    if _up_to_date(current, read_only, "it is opened read-only: open it once with write access"):
        return current
    with conn.transaction():  # DDL is transactional: every migration applies, or none
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
        conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version BIGINT NOT NULL)")
        current = postgres_version(conn) or 0  # another process may have won
        if current > LATEST:
            raise LibraryError(f"this library's index has schema {current}, newer than this motionlib knows "
                               f"({LATEST}); upgrade motionlib")
        for number, _what, sql in MIGRATIONS:
            if number > current:
                for statement in postgres_sql(sql):
                    conn.execute(statement)
                conn.execute(f"DELETE FROM {SCHEMA_TABLE}")
                conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (%s)", (number,))
    return LATEST
