"""The index on PostgreSQL (motionlib/index/pg.py): the writer's steps on both backends, and what
only a server has - writers in several processes, a killed writer, lost connections, passwords
kept out of messages, migrations under the lock. A server is started by tests/pgserver.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from motionlib.core.errors import LibraryError
from motionlib.index import open_index
from motionlib.index.dialect import glob_to_regex, redact
from motionlib.index.migrations import LATEST, MIGRATIONS, postgres_sql
from tests.pgserver import PASSWORD

ROOT = Path(__file__).resolve().parents[1]


def manifest(name: str, version: int, *, parent: str | None = None, sha: str = "abc", overall=0.5) -> dict:
    """The least of a version's manifest that index.writer.motion_row reads."""
    return {
        "name": name, "version": version, "created": f"2026-01-{version:02d}T00:00:00+00:00", "duration": 2.0,
        "fps": 30.0, "frames": 60, "width": 640, "height": 480, "skeleton": "mediapipe_pose_33",
        "quality": {"overall": overall, "scores": {"occlusion": 0.1, "jitter": None, "framing": 0.9},
                    "raw": {"occlusion": 0.2}, "warnings": ["w"]},
        "source": {"file_name": "clip.mp4", "sha256": sha, "size_bytes": 5_000_000_000},
        "estimator": {"name": "mediapipe-pose", "settings_digest": "d1"},
        "lineage": {"parent": parent, "operation": "smooth" if parent else "ingest", "params": {"k": 1}},
    }


def test_writer_and_reader_on_each_backend(index_target):
    """Every Writer step and Reader method gives the same records on SQLite and PostgreSQL."""
    index = open_index(index_target)
    assert index.location and PASSWORD not in index.location and PASSWORD not in repr(index)
    with index.write() as w:
        v1 = w.next_version("wave")
        id1 = w.insert_version(manifest("wave", v1), "motions/wave/1", "sources/abc.mp4", tags=["dance", "loop"],
                               descriptor=(1, b"\x00\x01\xff"))
        v2 = w.next_version("wave")
        id2 = w.insert_version(manifest("wave", v2, parent="wave@1", sha="def", overall=None), "motions/wave/2",
                               None, tags=["dance"])
        w.set_descriptor(id1, 2, b"\x02" * 8)  # replaces the first
        assert w.has_same("wave", "abc", "d1", "ingest") and not w.has_same("wave", "abc", "d1", "smooth")
        rid = w.insert_render(created="2026-01-01", status="running", pid=1, motion_ref="wave@1",
                              motion_store="motions/wave/1", identity_name="ann", identity_sha256="s", backend="b",
                              seed=7, output="renders/1.mp4")
        w.insert_identity(name="ann", created="2026-01-01", file_name="a.png", sha256="s", path="identities/a.png",
                          format="png", width=10, height=20, size_bytes=123, body="full", skeleton="x",
                          pose='{"keypoints": []}', estimator="e")
    assert (v1, v2) == (1, 2)
    with index.write() as w:
        w.finish_render(rid, "done", "2026-01-02", output_sha256="o", error=None, timings={"t": 1.5},
                        result={"frames": 3})
        w.unlink_tags(id1, ["loop"])
    with index.reader() as r:
        records = r.list()
        assert [x.ref for x in records] == ["wave@1", "wave@2"]
        one = r.get("wave@1")
        assert one.tags == ["dance"] and one.op_params == {"k": 1} and one.warnings == ["w"]
        assert one.source_size == 5_000_000_000 and one.jitter is None and one.occlusion == 0.1
        assert r.get("wave").ref == "wave@2" and r.get("wave@2").overall is None
        assert r.find_same("wave", "def", "d1", "smooth").ref == "wave@2"
        assert r.find_same("wave", "zzz", "d1", "smooth") is None
        assert [x.ref for x in r.children(["wave@1"])] == ["wave@2"] and r.children([]) == []
        assert set(r.by_ids([id1, id2])) == {id1, id2}
        assert r.distinct("name") == ["wave"] and r.distinct("operation") == ["ingest", "smooth"]
        assert r.tags() == [("dance", 2)]
        assert r.store_paths() == {"motions/wave/1", "motions/wave/2"}
        assert r.source_paths() == {"sources/abc.mp4"}
        assert r.descriptors(2) == ([id1], [b"\x02" * 8]) and r.descriptors(1) == ([], [])
        assert r.descriptor(id1, 2) == b"\x02" * 8 and r.descriptor(id2, 2) is None
        assert [x.ref for x in r.list(query="tag:dance score>0.1")] == ["wave@1"]
        assert [x.ref for x in r.iter_list(sort="-score", batch=1)] == ["wave@1", "wave@2"]
        (render,) = r.renders(limit=5)
        assert render.status == "done" and render.params == {"result": {"frames": 3}} and render.timings == {"t": 1.5}
        assert r.renders(ids=[]) == [] and [x.id for x in r.renders(ids=[rid], status="done")] == [rid]
        assert r.get_identity("ann").size_bytes == 123 and r.identities("bob") == []
        assert r.count() == 2 and r.count(ids=[]) == 0 and r.integrity() == ["ok"]
        assert r.plan(query="name:wave*")
    with index.write() as w:
        assert w.rename("wave", "hello") == ["motions/wave/1", "motions/wave/2"]
    with index.write() as w:
        w.delete_versions([id2])
        assert w.next_version("hello") == 3  # numbers are never reused
        counters = w.clear_versions()
        w.set_counters(counters)
    with index.reader() as r:
        assert r.list() == [] and r.tags() == []
    with index.write() as w:
        assert w.next_version("hello") == 4
    index.close()


def _run(code: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


WRITER = """
    import os, random, sys, time
    from motionlib.index import open_index
    from tests.test_index_pg import manifest
    url, start = sys.argv[1], float(sys.argv[2])
    index = open_index(url)  # both processes open (and migrate) a fresh database at once
    while time.time() < start:
        time.sleep(0.005)
    for i in range(20):
        with index.write() as w:
            v = w.next_version("wave")
            time.sleep(random.random() * 0.01)  # hold the lock a while: the other must wait
            w.insert_version(manifest("wave", v), f"motions/wave/{v}-{os.getpid()}", None, tags=["t"])
    index.close()
"""


@pytest.mark.postgres
def test_two_processes_write_one_database(pg_url):
    """Two processes x 20 writes, each numbering a version under the advisory lock: every version
    is there once, numbered 1..40, and the database was migrated once."""
    start = str(time.time() + 2.0)
    procs = [_run(WRITER, pg_url, start) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    index = open_index(pg_url)
    with index.reader() as r:
        versions = [x.version for x in r.list()]
        pids = {x.store_path.rsplit("-", 1)[1] for x in r.list()}
    index.close()
    assert sorted(versions) == list(range(1, 41)) and len(pids) == 2


KILLED = """
    import sys, time
    from motionlib.index import open_index
    from tests.test_index_pg import manifest
    index = open_index(sys.argv[1])
    with index.write() as w:
        v = w.next_version("wave")
        w.insert_version(manifest("wave", v), "motions/wave/1", None, tags=["t"])
        print("INSIDE", flush=True)
        time.sleep(120)
"""


@pytest.mark.postgres
def test_a_killed_writer_leaves_no_row_and_frees_the_lock(pg_url):
    import signal

    open_index(pg_url).close()
    proc = _run(KILLED, pg_url)
    assert proc.stdout.readline().strip() == "INSIDE", proc.stderr.read()
    index = open_index(pg_url)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    t = time.time()
    with index.write() as w:
        assert w.next_version("wave") == 1  # its number was never committed
    assert time.time() - t < 10
    with index.reader() as r:
        assert r.list() == [] and r.tags() == []
    index.close()


@pytest.mark.postgres
def test_a_writer_waits_for_the_lock(pg_url):
    """The lock is taken when write() begins, before any statement of the caller: a second writer
    (another process) waits for the first to commit."""
    index = open_index(pg_url)
    code = """
        import sys, time
        from motionlib.index import open_index
        index = open_index(sys.argv[1])
        t = time.time()
        with index.write() as w:
            print(round(time.time() - t, 2), w.next_version("wave"), flush=True)
    """
    with index.write() as w:
        proc = _run(code, pg_url)
        time.sleep(1.5)
        assert proc.poll() is None
        w.next_version("wave")
    out, err = proc.communicate(timeout=60)
    waited, version = out.split()
    assert float(waited) > 0.5 and version == "2", (out, err)
    index.close()


@pytest.mark.postgres
def test_passwords_never_show_in_messages(pg_server, pg_url):
    good = open_index(pg_url)
    assert PASSWORD not in good.location and "***" not in good.location
    good.close()
    wrong = pg_url.replace(PASSWORD, "wrong-Secret-99")
    with pytest.raises(LibraryError) as err:
        open_index(wrong)
    message = str(err.value)
    assert "wrong-Secret-99" not in message and "login refused" in message and "\n" not in message
    down = f"postgresql://motionlib:{PASSWORD}@127.0.0.1:1/nowhere?store=s3://bucket/prefix"
    with pytest.raises(LibraryError) as err:
        open_index(down)
    message = str(err.value)
    assert PASSWORD not in message and "cannot reach" in message and "\n" not in message, message
    assert "127.0.0.1:1/nowhere" in message and "s3://" not in message
    missing = pg_server.url("no_such_db")
    with pytest.raises(LibraryError, match="does not exist"):
        open_index(missing)
    assert redact(f"postgresql://u:{PASSWORD}@h/db password={PASSWORD} x", PASSWORD).count("***") == 2


@pytest.mark.postgres
def test_a_lost_connection_is_one_line(pg_server, pg_url):
    import psycopg

    index = open_index(pg_url)
    with index.write() as w:
        w.next_version("wave")
    with index.reader() as r:
        r.list()
    reader = index.reader()
    reader.count()

    def kill_others():
        with psycopg.connect(pg_url) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND pid <> pg_backend_pid()")
        time.sleep(0.2)

    kill_others()
    with pytest.raises(LibraryError) as err:
        reader.list()
    assert "\n" not in str(err.value) and PASSWORD not in str(err.value) and pg_url.split("@")[1] in str(err.value)
    reader.close()
    # kept connections (a reader's, the writer's pool) are replaced when they died while idle
    with index.reader() as r:
        assert r.count() == 0
    with index.write() as w:
        assert w.next_version("wave") == 2
    # a connection lost inside a write: one line, and nothing committed
    with pytest.raises(LibraryError, match="cannot reach|shut down"):
        with index.write() as w:
            w.next_version("wave")
            kill_others()
            w.next_version("other")
    with index.write() as w:
        assert w.next_version("wave") == 3
    index.close()


@pytest.mark.postgres
def test_read_only_and_fresh_databases(pg_url):
    with pytest.raises(LibraryError, match="older than this motionlib"):
        open_index(pg_url, read_only=True)  # nothing migrated yet, and it may not
    open_index(pg_url).close()
    index = open_index(pg_url, read_only=True)
    assert index.read_only
    with index.reader() as r:
        assert r.list() == []
    with pytest.raises(LibraryError, match="read-only"):
        with index.write():
            pass
    index.close()


@pytest.mark.postgres
def test_migration_3_on_postgres(pg_url):
    """The data step of migration 3 (tags lower-cased, twins merged) translated as the DDL is."""
    import psycopg

    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE motionlib_schema (version BIGINT NOT NULL)")
        conn.execute("INSERT INTO motionlib_schema VALUES (2)")
        for _number, _what, sql in MIGRATIONS[:2]:
            for statement in postgres_sql(sql):
                conn.execute(statement)
        # ids from the identity columns (explicit ones would leave their sequences behind)
        conn.execute("INSERT INTO motion (name, version, created, duration, fps, frames, width, height, skeleton, "
                     "estimator, settings_digest, store_path) VALUES ('a', 1, 'x', 1, 30, 30, 1, 1, 's', 'e', 'd', "
                     "'p1'), ('b', 1, 'x', 1, 30, 30, 1, 1, 's', 'e', 'd', 'p2')")
        conn.execute("INSERT INTO tag (name) VALUES ('Dance'), ('dance'), ('LOOP')")
        conn.execute("INSERT INTO motion_tag SELECT m.id, t.id FROM motion m, tag t WHERE (m.name, t.name) IN "
                     "(('a', 'Dance'), ('b', 'dance'), ('b', 'Dance'), ('b', 'LOOP'))")
    open_index(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        tags = {name for (name,) in conn.execute("SELECT name FROM tag")}
        links = sorted(conn.execute("SELECT m.name, t.name FROM motion_tag mt JOIN motion m ON m.id = mt.motion_id "
                                    "JOIN tag t ON t.id = mt.tag_id").fetchall())
        assert conn.execute("SELECT version FROM motionlib_schema").fetchone()[0] == LATEST
    assert tags == {"dance", "loop"}
    assert links == [("a", "dance"), ("b", "dance"), ("b", "loop")]


@pytest.mark.postgres
def test_postgres_plans_use_the_indexes(pg_url):
    from tests.test_index import _synthetic_index

    _synthetic_index(pg_url)
    index = open_index(pg_url)
    with index.reader() as r:
        for filters, uses in [({"name": "wave-00001"}, "motion_name_version_key"),
                              ({"query": "name:wave-0001*"}, "motion_name_version_key"),
                              ({"sort": "-created", "limit": 20}, "ix_motion_created"),
                              ({"sort": "created", "limit": 20}, "ix_motion_created"),
                              ({"sort": "score", "limit": 20}, "ix_motion_overall"),
                              ({"query": "is:latest"}, "motion_name_version_key")]:
            plan = "\n".join(r.plan(**filters))
            assert uses in plan, (filters, plan)
    index.close()


def test_migrations_translate_for_postgres():
    for _number, _what, sql in MIGRATIONS:
        for statement in postgres_sql(sql):
            assert "OR IGNORE" not in statement and " BLOB" not in statement and " REAL" not in statement
    with pytest.raises(ValueError, match="not translatable"):
        postgres_sql("INSERT OR REPLACE INTO tag (name) VALUES ('x')")
    assert postgres_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)") == [
        "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v BYTEA)"]


@pytest.mark.parametrize("glob, hits, misses", [
    ("wave*", ["wave", "wave-1", "wave\nx"], ["Wave", "awave"]),
    ("w?ve", ["wave", "w.ve"], ["wve", "waave"]),
    ("[wb]*", ["wave", "bow"], ["jump"]),
    ("[^w]*", ["bow", "Wave"], ["wave"]),
    ("[!w]*", ["!x", "wave"], ["bow"]),
    ("a.b*", ["a.b", "a.bc"], ["axb"]),
    ("x[*", [], ["x[", "x[yz", "x"]),
    ("(a|b)+*", ["(a|b)+"], ["a", "ab"]),
    ("[]a]*", ["]x", "ax"], ["bx"]),
    ("100%_*", ["100%_x"], ["100x"]),
])
def test_globs_match_as_sqlite_does(glob, hits, misses):
    """glob_to_regex answers as SQLite's GLOB (asked here) for PostgreSQL and Python alike."""
    import re
    import sqlite3

    conn = sqlite3.connect(":memory:")
    pattern = re.compile(glob_to_regex(glob, anchored=False), re.S)
    for value in hits + misses:
        sqlite_says = conn.execute("SELECT ? GLOB ?", (value, glob)).fetchone()[0] == 1
        assert sqlite_says == (value in hits), (glob, value)
        assert (pattern.fullmatch(value) is not None) == sqlite_says, (glob, value)
