"""Ordered schema migrations. Never edit a released migration: append a new one.

``PRAGMA user_version`` holds the number of the last applied migration. A library whose index is
newer than this code refuses to open rather than guess.
"""

from __future__ import annotations

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


def migrate(conn: sqlite3.Connection, read_only: bool = False) -> int:
    """Bring the schema up to date; returns the version now in place."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > LATEST:
        raise LibraryError(
            f"this library's index has schema {current}, newer than this motionlib knows ({LATEST}); "
            "upgrade motionlib"
        )
    if current == LATEST:
        return current
    if read_only:
        raise LibraryError(f"this library's index has schema {current}, older than this motionlib's ({LATEST}), "
                           "and its disk is read-only: open it once where it can be written, to upgrade it")
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
