import sqlite3

import pytest

from motionlib.core.errors import LibraryError
from motionlib.index import Index
from motionlib.index.migrations import LATEST


def test_migrated_schema_matches_the_sqlmodel_tables(tmp_path):
    from sqlmodel import SQLModel

    import motionlib.index.models  # noqa: F401  (registers the tables)
    from motionlib.index.reader import COLUMNS

    Index(tmp_path / "index.sqlite")
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        for table in SQLModel.metadata.sorted_tables:
            cols = conn.execute(f"PRAGMA table_info({table.name})").fetchall()
            assert {c[1] for c in cols} == {c.name for c in table.columns}, table.name
            notnull = {c[1] for c in cols if c[3] or c[5]}
            for c in table.columns:
                if not c.nullable:
                    assert c.name in notnull, (table.name, c.name)
        motion_cols = [c[1] for c in conn.execute("PRAGMA table_info(motion)")]
    assert set(COLUMNS) == set(motion_cols)
    assert conn is not None


def test_migrations_are_recorded_and_idempotent(tmp_path):
    Index(tmp_path / "i.sqlite")
    Index(tmp_path / "i.sqlite")
    with sqlite3.connect(tmp_path / "i.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_index_is_refused(tmp_path):
    Index(tmp_path / "i.sqlite")
    with sqlite3.connect(tmp_path / "i.sqlite") as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    with pytest.raises(LibraryError, match="newer than this motionlib"):
        Index(tmp_path / "i.sqlite")


def test_corrupt_index_is_reported_and_reindex_repairs_it(tmp_path, short_clip):
    from conftest import invoke

    from motionlib.library import Library

    lib = tmp_path / "lib"
    with Library(lib) as library:
        library.ingest(short_clip, tags=["t1"])
    for suffix in ("-wal", "-shm"):
        (lib / f"index.sqlite{suffix}").unlink(missing_ok=True)
    (lib / "index.sqlite").write_bytes(b"garbage" * 100)
    # the commands' words and exit codes: in this process (invoke)
    proc = invoke("list", library=lib)
    assert proc.returncode == 1 and "reindex" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = invoke("reindex", library=lib)
    assert proc.returncode == 0, proc.stderr
    with Library(lib) as library:
        assert [(r.ref, r.tags) for r in library.list()] == [("short@1", ["t1"])]
