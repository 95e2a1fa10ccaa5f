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


def _synthetic_index(path, n: int = 3000):
    """An index of ``n`` versions (names in fours, tags, scores, dates), written with SQL: only
    the index matters to the planner, not the store."""
    import random

    from motionlib.index.reader import COLUMNS

    Index(path)
    rng = random.Random(0)
    rows = []
    for i in range(n):
        row = {c: None for c in COLUMNS}
        row.update(id=i + 1, name=f"{rng.choice(['wave', 'spin', 'jump'])}-{i // 4:05d}", version=i % 4 + 1,
                   created=f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00+00:00",
                   duration=rng.uniform(1, 9), fps=30.0, frames=90, width=640, height=480,
                   skeleton="mediapipe_pose_33", estimator="mediapipe-pose", settings_digest="x",
                   operation=rng.choice(["ingest", "smooth"]), op_params="{}", store_path=f"motions/x/{i}",
                   overall=rng.random(), occlusion=rng.random(), jitter=rng.random(), framing=rng.random(),
                   warnings="[]")
        rows.append(tuple(row[c] for c in COLUMNS))
    with sqlite3.connect(path) as conn:
        conn.executemany(f"INSERT INTO motion ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
        for t in ("dance", "draft", "loop", "hook", "promo"):
            conn.execute("INSERT INTO tag (name) VALUES (?)", (t,))
        conn.executemany("INSERT OR IGNORE INTO motion_tag VALUES (?, ?)",
                         [(rng.randint(1, n), rng.randint(1, 5)) for _ in range(2 * n)])
        conn.execute("ANALYZE")


@pytest.mark.parametrize("filters, uses, sorts_matches", [
    ({}, "USING INDEX sqlite_autoindex_motion_2", False),  # name, version: the default order
    # a tag: its row by the tag's name, its versions by the link table, then only those sorted
    ({"query": "tag:dance"}, "SEARCH t USING COVERING INDEX sqlite_autoindex_tag_1 (name=?)", True),
    ({"query": "tag:dance"}, "SEARCH mt USING INDEX ix_motion_tag_tag (tag_id=?)", True),
    ({"tags": ["dance"]}, "SEARCH mt USING INDEX ix_motion_tag_tag (tag_id=?)", True),
    ({"sort": "-score", "limit": 50}, "SCAN m USING INDEX ix_motion_overall", False),
    ({"query": "score>0.95", "sort": "-score"}, "USING INDEX ix_motion_overall", False),
    ({"sort": "-created", "limit": 20}, "SCAN m USING INDEX ix_motion_created", False),
    ({"query": "created>=2026-12", "sort": "-created"}, "USING INDEX ix_motion_created", False),
    ({"query": "is:latest"}, "SEARCH m2 USING COVERING INDEX sqlite_autoindex_motion_2 (name=?)", False),
    ({"query": "name:wave*"}, "SEARCH m USING INDEX sqlite_autoindex_motion_2 (name>? AND name<?)", False),
    ({"name": "wave-00001"}, "SEARCH m USING INDEX sqlite_autoindex_motion_2 (name=?)", False),
])
def test_common_queries_use_the_indexes(tmp_path, filters, uses, sorts_matches):
    from motionlib.index.reader import Reader

    _synthetic_index(tmp_path / "index.sqlite")
    with Reader(tmp_path / "index.sqlite") as r:
        plan = r.plan(**filters)
    assert any(uses in step for step in plan), (filters, plan)
    assert not any(step.startswith("SCAN m") and "INDEX" not in step for step in plan), (filters, plan)
    if not sorts_matches:  # the order comes from the index: no sort of every row
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, (filters, plan)


def test_migration_3_stores_tags_lower_case_and_merges_twins(tmp_path):
    from motionlib.index.migrations import MIGRATIONS

    path = tmp_path / "index.sqlite"
    with sqlite3.connect(path) as conn:  # a library made before tags were case-insensitive
        for number, _what, sql in MIGRATIONS[:2]:
            conn.executescript(sql)
        conn.execute("PRAGMA user_version = 2")
        conn.execute("INSERT INTO motion (id, name, version, created, duration, fps, frames, width, height, skeleton, "
                     "estimator, settings_digest, store_path) VALUES (1, 'a', 1, 'x', 1, 30, 30, 1, 1, 's', 'e', 'd', 'p1'),"
                     " (2, 'b', 1, 'x', 1, 30, 30, 1, 1, 's', 'e', 'd', 'p2')")
        conn.execute("INSERT INTO tag (id, name) VALUES (1, 'Dance'), (2, 'dance'), (3, 'LOOP')")
        conn.execute("INSERT INTO motion_tag VALUES (1, 1), (2, 2), (2, 1), (2, 3)")
    Index(path)
    with sqlite3.connect(path) as conn:
        tags = dict(conn.execute("SELECT name, id FROM tag"))
        links = sorted(conn.execute("SELECT m.name, t.name FROM motion_tag mt JOIN motion m ON m.id = mt.motion_id "
                                    "JOIN tag t ON t.id = mt.tag_id"))
    assert set(tags) == {"dance", "loop"}
    assert links == [("a", "dance"), ("b", "dance"), ("b", "loop")]
