import sqlite3

import pytest

from motionlib.core.errors import LibraryError
from motionlib.index import Index, open_index
from motionlib.index.migrations import LATEST
from tests.pgserver import is_pg, raw_connection


def _columns(target) -> dict[str, dict[str, bool]]:
    """table -> column -> whether it is NOT NULL (or a primary key), on either backend."""
    out: dict[str, dict[str, bool]] = {}
    if is_pg(target):
        import psycopg

        with psycopg.connect(target) as conn:
            rows = conn.execute("SELECT table_name, column_name, is_nullable FROM information_schema.columns "
                                "WHERE table_schema = current_schema()").fetchall()
        for table, column, nullable in rows:
            out.setdefault(table, {})[column] = nullable == "NO"
        return out
    with sqlite3.connect(target) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            out[table] = {c[1]: bool(c[3] or c[5]) for c in conn.execute(f"PRAGMA table_info({table})")}
    return out


def _version(target) -> int:
    if is_pg(target):
        import psycopg

        with psycopg.connect(target) as conn:
            return conn.execute("SELECT version FROM motionlib_schema").fetchone()[0]
    with sqlite3.connect(target) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def _set_version(target, version: int) -> None:
    if is_pg(target):
        import psycopg

        with psycopg.connect(target) as conn:
            conn.execute("UPDATE motionlib_schema SET version = %s", (version,))
    else:
        with sqlite3.connect(target) as conn:
            conn.execute(f"PRAGMA user_version = {version}")


def test_migrated_schema_matches_the_sqlmodel_tables(index_target):
    from sqlmodel import SQLModel

    import motionlib.index.models  # noqa: F401  (registers the tables)
    from motionlib.index.reader import COLUMNS

    open_index(index_target).close()
    schema = _columns(index_target)
    for table in SQLModel.metadata.sorted_tables:
        cols = schema[table.name]
        assert set(cols) == {c.name for c in table.columns}, table.name
        for c in table.columns:
            if not c.nullable:
                assert cols[c.name], (table.name, c.name)
    assert set(COLUMNS) == set(schema["motion"])


def test_migrations_are_recorded_and_idempotent(index_target):
    open_index(index_target).close()
    open_index(index_target).close()
    assert _version(index_target) == LATEST
    if not is_pg(index_target):
        with sqlite3.connect(index_target) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_index_is_refused(index_target):
    open_index(index_target).close()
    _set_version(index_target, LATEST + 1)
    with pytest.raises(LibraryError, match="newer than this motionlib"):
        open_index(index_target)


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

    open_index(path).close()
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
    cols = COLUMNS[1:]  # ids: 1..n in a fresh index
    with raw_connection(path) as conn:
        conn.executemany(f"INSERT INTO motion ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                         [r[1:] for r in rows])
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
    # descending sorts walk an index in their whole order (migration 5): no sort, on any SQLite
    ({"sort": "-score", "limit": 50}, "SCAN m USING INDEX ix_motion_overall_desc", False),
    ({"query": "score>0.95", "sort": "-score"}, "USING INDEX ix_motion_overall_desc", False),
    ({"sort": "-created", "limit": 20}, "SCAN m USING INDEX ix_motion_created_desc", False),
    ({"query": "created>=2026-12", "sort": "-created"}, "USING INDEX ix_motion_created_desc", False),
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


def synthetic_index(path, versions: int, seed: int = 0):
    """An index of ``versions`` rows with ties, NULL scores and random tags (no stored data:
    for queries only)."""
    import random

    from motionlib.index.reader import COLUMNS

    open_index(path).close()
    rng = random.Random(seed)
    rows = []
    for i in range(versions):
        name = rng.choice(["wave", "Wave", "jump", "spin", "bow"]) + f"-{i // 3}"
        scores = [None if rng.random() < 0.15 else rng.choice([0.25, 0.5, round(rng.random(), 3)]) for _ in range(4)]
        rows.append(dict(
            id=None, name=name, version=i % 3 + 1, created=f"2026-01-{1 + i % 28:02d}", duration=rng.choice([1.0, 2.5, 4.0]),
            fps=rng.choice([24.0, 30.0]), frames=10, width=640, height=480, skeleton="s", source_name=None,
            source_sha256=None, source_size=None, source_path=None, estimator="e", settings_digest="d",
            parent=None, operation=rng.choice(["ingest", "smooth"]), op_params="{}", store_path=f"motions/x/v{i}",
            overall=scores[0], occlusion=scores[1], occlusion_raw=None, jitter=scores[2], jitter_raw=None,
            framing=scores[3], framing_raw=None, warnings="[]"))
    cols = COLUMNS[1:]
    with raw_connection(path) as conn:
        conn.executemany(f"INSERT INTO motion ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                         [tuple(r[c] for c in cols) for r in rows])
        tags = ["dance", "draft", "loop", "smooth"]
        conn.executemany("INSERT INTO tag (name) VALUES (?)", [(t,) for t in tags])
        links = {(mid, rng.randint(1, len(tags))) for (mid,) in conn.execute("SELECT id FROM motion ORDER BY id")
                 for _ in range(rng.randint(0, 2))}
        conn.executemany("INSERT INTO motion_tag (motion_id, tag_id) VALUES (?, ?)", sorted(links))
    return path


def expected_order(records, pairs):
    """``records`` sorted as Reader.page documents: each key NULLs last, then name, version."""
    def value(r, column):
        return (",".join(sorted(r.tags)) or None) if column == "tags" else getattr(r, column)

    out = sorted(records, key=lambda r: (r.name, r.version))
    for column, desc in reversed(pairs):
        present = [r for r in out if value(r, column) is not None]
        present.sort(key=lambda r: value(r, column), reverse=desc)
        out = present + [r for r in out if value(r, column) is None]
    return out


@pytest.mark.parametrize("sort", [
    None, [("name", True), ("version", True)], [("overall", True)], [("overall", False)], [("jitter", True)],
    [("duration", True)], [("duration", False), ("overall", True)], [("tags", False)], [("tags", True)],
    "-score,fps", "created", "version",
])
@pytest.mark.parametrize("query", ["", "tag:dance -tag:draft", "score>0.3", "is:latest"])
def test_pages_in_order_and_count(index_target, sort, query):
    """Paging with any page size (keyset: each page starts after the previous one's last record)
    gives every matching version once, in the order of the whole sorted list; count() agrees.
    On SQLite and on PostgreSQL alike."""
    from motionlib.index.query import Query, parse_sort

    index = open_index(synthetic_index(index_target, 150))
    with index.reader() as r:
        everything = r.list(query=query)
        pairs = parse_sort(sort) if isinstance(sort, str) or sort is None else sort
        want = [x.ref for x in expected_order(everything, pairs)]
        assert r.count(Query.parse(query)) == len(everything)
        for size in (1, 7, 50, 1000):
            got, after = [], None
            while True:
                page = r.page(query, sort, limit=size, after=after)
                assert len(page) <= size
                got += [x.ref for x in page]
                if len(page) < size:
                    break
                after = page[-1]
            assert got == want, (size, sort)
        first = r.page(query, sort, limit=5)
        assert r.count(query, ids=[x.id for x in first]) == len(first)
        assert r.count(query, ids=[]) == 0
    index.close()


@pytest.mark.parametrize("sort", [None, [("name", True), ("version", True)], [("overall", True)], [("overall", False)]])
@pytest.mark.parametrize("query", ["", "tag:dance", "tag:dance score>0.5 -tag:draft"])
def test_pages_read_in_index_order(tmp_path, sort, query):
    """Every page query, the first and one deep in the list, walks an index in the page's order
    and stops at its LIMIT: no scan of the whole table and no sort of it (the NULL scores, read
    after the others, are found through the index and only they are sorted). The index on overall
    is made here the way a migration would make it (name, version has its own since the first
    schema)."""

    from motionlib.index.reader import Reader

    path = synthetic_index(tmp_path / "index.sqlite", 300)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE INDEX IF NOT EXISTS ix_test_overall ON motion (overall)")
    with Reader(path) as r:
        statements = []
        r._conn.set_trace_callback(statements.append)
        deep = r.page(query, sort, limit=100)[-1]
        r.page(query, sort, limit=20, after=deep)
        r._conn.set_trace_callback(None)
        pages = [s for s in statements if "LIMIT" in s]
        assert pages
        for sql in pages:
            plan = [row[3] for row in r._conn.execute("EXPLAIN QUERY PLAN " + sql)]
            top = [p for p in plan if p.startswith(("SCAN m", "SEARCH m"))]
            assert top and all("INDEX" in p or "PRIMARY KEY (rowid=?)" in p for p in top), (sql, plan)
            nulls_only = "m.overall IS NULL" in sql and top[0].endswith("(overall=?)")
            # a tag term finds its versions through the tag's own index (query.py), so only those
            # are looked up by rowid and sorted, never the whole table
            by_tag = "rowid=?" in top[0] and any("ix_motion_tag_tag" in p for p in plan)
            assert "USE TEMP B-TREE FOR ORDER BY" not in plan or nulls_only or by_tag, (sql, plan)
