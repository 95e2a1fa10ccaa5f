"""The library API on both kinds of library: a local directory (SQLite and files) and a shared
library (PostgreSQL from Debian's packages and moto's S3 server, both started by the tests;
docs/team.md). Every test of the ``target`` fixture runs on both and checks the same state:
rows, files in the store, what a reader gets back. The shared-only tests at the end cover what a
directory cannot show: several processes writing at once, a killed writer's uploads, URLs with
passwords, an unreachable store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from motionlib.core.errors import LibraryError, MotionlibError
from motionlib.library import Library
from tests.conftest import ROOT, shared_url, spawn_cli, wait_for_fault

ASTRONAUT = ROOT / "assets" / "samples" / "astronaut.png"


@pytest.fixture(params=["local", pytest.param("shared", marks=pytest.mark.postgres)])
def target(request, tmp_path) -> str:
    """Where a fresh library lives: a directory, or a shared library's URL."""
    if request.param == "local":
        return str(tmp_path / "lib")
    return shared_url(request.getfixturevalue("pg_url"), request.getfixturevalue("s3_store"))


@pytest.fixture
def shared(pg_url, s3_store) -> str:
    return shared_url(pg_url, s3_store)


@pytest.fixture(scope="module")
def npz_motion(tmp_path_factory, demo_library) -> Path:
    """The demo motion as an npz export (imports are quick: no pose estimation)."""
    out = tmp_path_factory.mktemp("npz") / "demo.npz"
    with Library(demo_library[0]) as lib:
        lib.export("demo", "npz", out)
    return out


def state(lib: Library) -> dict:
    """What a library holds: its rows (name, version, store path, tags) and the keys of its files."""
    files = lib.files
    keys = set(files.version_keys())
    for top in ("sources", "identities", "motions"):
        keys |= set(files.file_keys(top))
    rows = [(r.name, r.version, r.store_path, tuple(r.tags)) for r in lib.list()]
    return {"rows": rows, "files": sorted(keys)}


def assert_whole(lib: Library) -> None:
    """Every row's version is in the store and no version is without its row."""
    s = state(lib)
    stores = {r[2] for r in s["rows"]}
    assert stores == set(lib.files.version_keys()), s
    sources = {r.source_path for r in lib.list() if r.source_path}
    assert sources == set(lib.files.file_keys("sources"))


# ---------------------------------------------------------------- both kinds of library
def test_ingest_list_load_and_the_kept_source(target, short_clip):
    with Library(target) as lib:
        got = lib.ingest(short_clip, name="walk", tags=["Warmup"])
        assert got.record.ref == "walk@1" and got.status == "created"
        assert [r.ref for r in lib.list(query="tag:warmup")] == ["walk@1"]
        m = lib.load("walk")
        assert m.frames == got.record.frames == 60
        assert lib.manifest(got.record)["name"] == "walk"
        src = lib.source_file(got.record)
        assert src is not None and src.read_bytes() == short_clip.read_bytes()
        part = lib.load("walk", span=(0.5, 1.0))
        np.testing.assert_array_equal(part.keypoints, m.keypoints[part.attrs["first_frame"]:][:part.frames])
        again = lib.ingest(short_clip, name="walk")
        assert again.status == "unchanged" and again.record.ref == "walk@1"
        assert_whole(lib)


def test_edits_tags_rename_remove_and_reindex(target, npz_motion):
    from motionlib.processing import ops

    with Library(target) as lib:
        lib.import_keypoints(npz_motion, "npz", name="demo")
        assert lib.derive("demo", ops.smooth).record.ref == "demo@2"
        lib.tag("demo@2", ["keep"])
        lib.rename("demo", "dance")
        assert [(r.ref, r.parent) for r in lib.list()] == [("dance@1", None), ("dance@2", "dance@1")]
        before = state(lib)
        # the index rebuilt from the store alone: versions, renamed names, lineage, tags
        assert lib.reindex()["versions"] == 2
        assert state(lib) == before
        assert [(r.ref, r.parent, r.tags) for r in lib.list()] == [("dance@1", None, []),
                                                                  ("dance@2", "dance@1", ["keep"])]
        lib.remove("dance@1", force=True)
        assert [r.ref for r in lib.list()] == ["dance@2"]
        assert_whole(lib)
        assert lib.doctor()["problems"] == []


def test_identities_and_a_pose_render(target, npz_motion, tmp_path):
    from motionlib.render.campaign import RenderJob

    with Library(target) as lib:
        lib.import_keypoints(npz_motion, "npz", name="demo")
        ident = lib.add_identity(ASTRONAUT, name="astronaut")
        assert lib.files.has_file(ident.path)
        assert lib.identity_image(ident).shape == (512, 512, 3)
        out = tmp_path / "r.mp4"
        rec = lib.render(RenderJob(motion="demo", identity="astronaut", backend="pose", output=str(out)))
        assert rec.status == "done" and out.is_file()
        if lib.files.shared:  # kept in the store by content: found again without the local file
            out.unlink()
            video = lib.render_video(rec)
            assert video is not None and video != out and video.stat().st_size > 0
        assert lib.remove_identity("astronaut").name == "astronaut"
        assert not lib.files.has_file(ident.path)


def test_a_killed_writer_leaves_no_row_and_its_leftovers_are_swept(target, npz_motion):
    with Library(target) as lib:
        lib.import_keypoints(npz_motion, "npz", name="base")
    proc = spawn_cli("import", npz_motion, "--format", "npz", "--name", "victim", library=target,
                     env={"MOTIONLIB_FAULT": "before-commit"})
    wait_for_fault(proc, "before-commit")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Library(target) as lib:
        assert [r.ref for r in lib.list()] == ["base@1"]
        leftovers = [p for p in lib.doctor(quick=True)["problems"] if p["check"] == "leftovers"]
        assert any("victim" in p["problem"] for p in leftovers), leftovers  # uploaded, never committed
        # the next write sweeps it under the lock, and takes number 1 again (never committed)
        assert lib.import_keypoints(npz_motion, "npz", name="victim").record.ref == "victim@1"
        assert_whole(lib)
        assert [p for p in lib.doctor(quick=True)["problems"] if p["check"] != "renders"] == []


# ---------------------------------------------------------------- shared libraries only
WRITER = textwrap.dedent("""
    import os, sys, tempfile
    import numpy as np
    from motionlib.library import Library
    url, npz, who, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    base = dict(np.load(npz, allow_pickle=False))
    tmp = tempfile.mkdtemp()
    with Library(url) as lib:
        for i in range(n):  # a different take each time (the same one again would be a no-op)
            path = os.path.join(tmp, f"{who}-{i}.npz")
            np.savez(path, **dict(base, keypoints=base["keypoints"] + 0.01 * (i + 1) + (5.0 if who == "bob" else 0.0)))
            lib.import_keypoints(path, "npz", name="shared", tags=[who])
""")


def test_two_processes_twenty_writes_each_lose_nothing(shared, npz_motion):
    with Library(shared):
        pass  # migrated once, before the race
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, shared, str(npz_motion), who, "20"], env=env,
                              stderr=subprocess.PIPE, text=True) for who in ("alice", "bob")]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    with Library(shared) as lib:
        records = lib.list(name="shared")
        assert sorted(r.version for r in records) == list(range(1, 41))  # every one, numbers unique
        assert sorted(len(lib.list(query=f"tag:{who}")) for who in ("alice", "bob")) == [20, 20]
        assert_whole(lib)
        assert all(lib.load(r.ref).frames == records[0].frames for r in records[::7])


def test_a_password_in_the_url_is_never_shown(pg_url, s3_store):
    from urllib.parse import urlsplit

    parts = urlsplit(pg_url)
    bad = shared_url(f"postgresql://nobody:hunter2secret@{parts.hostname}:{parts.port}/nosuchdb", s3_store)
    with pytest.raises(MotionlibError) as err:
        Library(bad)
    assert "hunter2secret" not in str(err.value) and "nobody@" in str(err.value)
    proc = subprocess.run([sys.executable, "-m", "motionlib", "--library", bad, "list"], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode != 0 and "hunter2secret" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_an_unreachable_store_fails_in_one_line_and_changes_nothing(pg_url, npz_motion, s3_store):
    url = shared_url(pg_url, s3_store)
    with Library(url) as lib:
        lib.import_keypoints(npz_motion, "npz", name="base")
    dead = shared_url(pg_url, s3_store.split("?")[0] + "?endpoint=http://127.0.0.1:9")
    with Library(dead) as lib:
        with pytest.raises(LibraryError) as err:
            lib.import_keypoints(npz_motion, "npz", name="lost")
        assert "\n" not in str(err.value) and "store" in str(err.value)
    with Library(url) as lib:
        assert [r.ref for r in lib.list()] == ["base@1"]
        assert_whole(lib)


def test_a_url_without_a_store_is_refused(pg_url):
    with pytest.raises(LibraryError, match="store="):
        Library(pg_url)
