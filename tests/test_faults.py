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
