"""Crash safety with real processes: SIGKILL mid-ingest and mid-edit, and two ingests at the same
time. The killed and the concurrent writers are real processes (a SIGKILL, two interpreters racing
for the index); the setup before and the write after each kill go through the library in this
process."""

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from conftest import copy_library, spawn_cli, wait_for_fault, write_clip
from motionlib.ingest.pipeline import IngestOptions
from motionlib.library import Library
from motionlib.processing import ops


@pytest.fixture(scope="module")
def victim_clip(tmp_path_factory, demo_frames) -> Path:
    """Half a second of the sample clip (the performer in view): the ingests that are killed at a
    fault point after estimation, where the clip's length does not matter."""
    return write_clip(tmp_path_factory.mktemp("victim") / "victim.mp4", demo_frames[60:75])


@pytest.fixture(scope="module")
def base_library(tmp_path_factory, victim_clip) -> Path:
    """A library holding the victim clip as base@1 (ingested once, with other settings): a killed
    ingest of that clip places a source that base@1 still needs, which the sweep must keep. Each
    test kills a writer in a copy."""
    root = tmp_path_factory.mktemp("faults") / "lib"
    with Library(root) as library:
        library.ingest(victim_clip, name="base", options=IngestOptions(max_size=320))
    return root


def _spawn(lib, *args, env=None):
    return spawn_cli(*args, library=lib, env=env)


def _kill_at_fault(proc, point: str, timeout: float = 120) -> None:
    """Wait until the process stops at fault point ``point``, then SIGKILL it."""
    wait_for_fault(proc, point, timeout)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _rows(lib: Path):
    with sqlite3.connect(lib / "index.sqlite") as conn:
        return conn.execute("SELECT name, version, store_path, source_path FROM motion").fetchall()


def _assert_consistent(lib: Path):
    """No index row without its data."""
    for name, version, store, source in _rows(lib):
        assert (lib / store / "zarr.json").exists(), (name, version)
        assert (lib / store / "keypoints" / "zarr.json").exists()
        if source:
            assert (lib / source).exists()


@pytest.mark.parametrize("point", ["after-write", "before-rename", "after-rename", "after-source", "before-commit"])
def test_sigkill_at_each_step_of_a_write_leaves_no_half_version(tmp_path, base_library, victim_clip, point):
    lib = copy_library(base_library, tmp_path / "lib")
    proc = _spawn(lib, "ingest", victim_clip, "--name", "victim", env={"MOTIONLIB_FAULT": point})
    _kill_at_fault(proc, point)
    _assert_consistent(lib)
    assert [r[0] for r in _rows(lib)] == ["base"]  # the killed ingest never committed
    # The next run cleans up and succeeds, as version 1.
    with Library(lib) as library:
        rec = library.ingest(victim_clip, name="victim")
    assert rec.record.ref == "victim@1" and rec.status == "created"
    _assert_consistent(lib)
    assert list((lib / "tmp").iterdir()) == []
    versions = sorted(p.relative_to(lib).as_posix() for p in (lib / "motions").glob("*/v*") if p.is_dir())
    assert versions == sorted(r[2] for r in _rows(lib))  # no orphaned version directories
    sources = sorted(p.relative_to(lib).as_posix() for p in (lib / "sources").glob("*/*"))
    assert sources == sorted({r[3] for r in _rows(lib) if r[3]})


def test_recover_sweeps_what_a_killed_writer_left(tmp_path, base_library, victim_clip):
    """Library.recover, without a write: the staging folder of the dead process and its renamed
    but uncommitted version go; the committed version and its source stay."""
    lib = copy_library(base_library, tmp_path / "lib")
    proc = _spawn(lib, "ingest", victim_clip, "--name", "victim", env={"MOTIONLIB_FAULT": "after-rename"})
    _kill_at_fault(proc, "after-rename")
    assert len(list((lib / "motions").glob("*/v*[0-9]"))) == 2 and list((lib / "tmp").iterdir())
    with Library(lib) as library:
        assert library.recover() == {"staging": 1, "versions": 1, "sources": 0}
        assert [r.ref for r in library.list()] == ["base@1"]
    assert len(list((lib / "motions").glob("*/v*[0-9]"))) == 1 and list((lib / "tmp").iterdir()) == []
    _assert_consistent(lib)


def test_sigkill_during_pose_estimation(tmp_path, short_clip):
    lib = tmp_path / "lib"
    proc = _spawn(lib, "ingest", short_clip)
    # wait until its staging directory holds the source copy (it is estimating), then kill it
    deadline = time.time() + 60
    while time.time() < deadline and not list((lib / "tmp").glob("*/source.*")):
        time.sleep(0.05)
    assert list((lib / "tmp").glob("*/source.*")), "the ingest never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _rows(lib) == []
    with Library(lib) as library:
        assert library.list() == []
        rec = library.ingest(short_clip)
    assert rec.record.ref == "short@1"
    assert list((lib / "tmp").iterdir()) == []


def test_two_concurrent_ingests_get_distinct_versions(tmp_path, demo_frames):
    a = write_clip(tmp_path / "a.mp4", demo_frames[:45])
    b = write_clip(tmp_path / "b.mp4", demo_frames[45:90])
    lib = tmp_path / "lib"
    Library(lib).close()  # create the library first
    p1 = _spawn(lib, "ingest", a, "--name", "same", "--json", "--workers", "1")
    p2 = _spawn(lib, "ingest", b, "--name", "same", "--json", "--workers", "1")
    out1, err1 = p1.communicate(timeout=180)
    out2, err2 = p2.communicate(timeout=180)
    assert p1.returncode == 0, err1
    assert p2.returncode == 0, err2
    refs = sorted([json.loads(out1)[0]["ref"], json.loads(out2)[0]["ref"]])
    assert refs == ["same@1", "same@2"]
    rows = _rows(lib)
    assert len({r[2] for r in rows}) == 2
    _assert_consistent(lib)


@pytest.mark.parametrize("point", ["after-write", "after-rename", "before-commit"])
def test_sigkill_during_an_edit_leaves_the_parent_and_no_half_version(tmp_path, base_library, point):
    lib = copy_library(base_library, tmp_path / "lib")
    before = _rows(lib)
    proc = _spawn(lib, "smooth", "base", env={"MOTIONLIB_FAULT": point})
    _kill_at_fault(proc, point)
    _assert_consistent(lib)
    assert _rows(lib) == before
    with Library(lib) as library:
        out = library.derive("base", lambda m: ops.smooth(m))  # `motionlib smooth base`
    assert out.record.ref == "base@2"
    _assert_consistent(lib)
    assert len(list((lib / "motions").glob("*/v*[0-9]"))) == 2  # the killed one's data was swept


# ---------------------------------------------------------------------- faults of the disk
def _mount(*args) -> bool:
    """Mount something for a test (a small tmpfs, a read-only bind); False where this machine
    does not let the tests mount (not root, no CAP_SYS_ADMIN): those tests skip."""
    import subprocess

    return subprocess.run(["mount", *map(str, args)], capture_output=True).returncode == 0


@pytest.fixture
def mounted(tmp_path):
    points = []

    def mount(kind: str, target: Path, source: Path | None = None, size: str = "8m") -> Path:
        target.mkdir(parents=True, exist_ok=True)
        ok = (_mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", target) if kind == "tmpfs" else
              _mount("--bind", source, target) and (points.append(target) or True)
              and _mount("-o", "remount,ro,bind", target))
        if not ok:
            pytest.skip("this machine does not let the tests mount a filesystem")
        if target not in points:
            points.append(target)
        return target

    yield mount
    import subprocess

    for p in reversed(points):
        subprocess.run(["umount", "-l", str(p)], capture_output=True)  # lazy: this process may hold a file open


def _no_traceback(proc, words=None):
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 0 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    if words:
        assert words in proc.stderr, proc.stderr


def test_a_read_only_library_is_read_and_refuses_every_write(tmp_path, base_library, mounted):
    from conftest import invoke, library_snapshot

    lib = copy_library(base_library, tmp_path / "lib")
    before = library_snapshot(lib)
    ro = mounted("bind", tmp_path / "ro", lib)
    listed = invoke("list", "--json", library=ro)
    assert listed.returncode == 0 and [r["name"] for r in json.loads(listed.stdout)] == ["base"]
    assert invoke("export", "base", "-f", "npz", "-o", tmp_path / "x.npz", library=ro).returncode == 0
    for args in (("smooth", "base"), ("tag", "base", "x"), ("rm", "base@1"), ("rename", "base", "b2"),
                 ("reindex",), ("render", "-m", "base", "-i", "nobody")):
        _no_traceback(invoke(*args, library=ro), "read-only")
    doctor = invoke("doctor", "--json", library=ro)
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["read_only"] is True
    assert library_snapshot(lib) == before


def test_a_full_disk_fails_each_write_cleanly_and_loses_nothing(tmp_path, base_library, victim_clip, mounted):
    import shutil

    from conftest import invoke, library_snapshot

    disk = mounted("tmpfs", tmp_path / "disk", size="8m")
    lib = copy_library(base_library, disk / "lib")
    filler = disk / "filler"
    failed = 0
    for args in (("smooth", "base"), ("tag", "base", "x"), ("ingest", victim_clip, "--name", "more"),
                 ("fill-gaps", "base"), ("rename", "base", "b2")):
        for leave in (0, 40 << 10):  # none, or enough for the write to start and then meet the full disk
            before = library_snapshot(lib)
            filler.unlink(missing_ok=True)
            with open(filler, "wb") as f:
                f.write(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
            proc = invoke(*args, library=lib)
            filler.unlink()
            if proc.returncode == 0:  # it fitted: then it is whole
                assert invoke("doctor", library=lib).returncode == 0, args
                continue
            failed += 1
            _no_traceback(proc, "no space left")
            assert library_snapshot(lib) == before, args
            assert not list((lib / "tmp").iterdir()), "no staging left behind"
    assert failed >= 5
    assert invoke("doctor", library=lib).returncode == 0


def test_damaged_chunks_and_planted_links_get_one_line_and_doctor_repairs_what_is_safe(tmp_path, base_library):
    import os

    from conftest import invoke

    lib = copy_library(base_library, tmp_path / "lib")
    (store,) = [s for _n, _v, s, _src in _rows(lib)]
    chunk = next((lib / store / "keypoints").rglob("c/*/*/*"))
    os.chmod(chunk, 0o644)
    chunk.write_bytes(os.urandom(100))
    for args in (("smooth", "base"), ("export", "base", "-f", "npz", "-o", tmp_path / "x.npz"),
                 ("preview", "base", "-o", tmp_path / "p.mp4")):
        _no_traceback(invoke(*args, library=lib), "base@1 is damaged")
    # planted: a link in tmp/ to a private directory outside, an unreferenced version, a dead writer's staging
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "private.txt").write_text("keep me")
    os.chmod(victim / "private.txt", 0o600)
    (lib / "tmp" / "999999-planted").symlink_to(victim)
    ghost = lib / "motions" / "ghost-00000000" / "v0001"
    ghost.mkdir(parents=True)
    (ghost / "zarr.json").write_text("{}")
    (lib / "tmp" / "999998-dead").mkdir()
    report = json.loads(invoke("doctor", "--json", library=lib).stdout)
    found = {p["check"] for p in report["problems"]}
    assert found == {"links", "versions", "leftovers"}, report
    fixed = invoke("doctor", "--fix", "--json", library=lib)
    assert fixed.returncode == 1, "the damaged version is left for the user to decide"
    left = json.loads(fixed.stdout)["problems"]
    assert [p["check"] for p in left] == ["versions"] and "rm base@1 --force" in left[0]["repair"]
    assert not (lib / "tmp" / "999999-planted").exists() and not ghost.exists()
    assert (victim / "private.txt").read_text() == "keep me"
    assert (victim / "private.txt").stat().st_mode & 0o777 == 0o600, "nothing it pointed to was touched"
    assert invoke("rm", "base@1", "--force", library=lib).returncode == 0
    assert invoke("doctor", library=lib).returncode == 0


def test_a_damaged_index_is_named_and_reindex_rebuilds_it(tmp_path, base_library):
    from conftest import invoke

    lib = copy_library(base_library, tmp_path / "lib")
    (lib / "index.sqlite").write_bytes(b"this is not a database" * 100)
    _no_traceback(invoke("list", library=lib), "doctor")
    _no_traceback(invoke("doctor", library=lib), "reindex")
    assert invoke("reindex", library=lib).returncode == 0
    assert [r["name"] for r in json.loads(invoke("list", "--json", library=lib).stdout)] == ["base"]
    assert invoke("doctor", library=lib).returncode == 0
