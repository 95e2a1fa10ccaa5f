"""Crash safety with real processes: SIGKILL mid-ingest, and two ingests at the same time."""

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from conftest import cli_json, run_cli, spawn_cli, wait_for_fault, write_clip


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
def test_sigkill_at_each_step_of_a_write_leaves_no_half_version(tmp_path, short_clip, point):
    lib = tmp_path / "lib"
    cli_json("ingest", short_clip, "--name", "base", "--end", "1", library=lib)
    proc = _spawn(lib, "ingest", short_clip, "--name", "victim", env={"MOTIONLIB_FAULT": point})
    _kill_at_fault(proc, point)
    _assert_consistent(lib)
    assert [r[0] for r in _rows(lib)] == ["base"]  # the killed ingest never committed
    # The next run cleans up and succeeds, as version 1.
    rec = cli_json("ingest", short_clip, "--name", "victim", library=lib)[0]
    assert rec["ref"] == "victim@1" and rec["status"] == "created"
    _assert_consistent(lib)
    assert list((lib / "tmp").iterdir()) == []
    versions = sorted(p.relative_to(lib).as_posix() for p in (lib / "motions").glob("*/v*") if p.is_dir())
    assert versions == sorted(r[2] for r in _rows(lib))  # no orphaned version directories
    sources = sorted(p.relative_to(lib).as_posix() for p in (lib / "sources").glob("*/*"))
    assert sources == sorted({r[3] for r in _rows(lib) if r[3]})


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
    assert cli_json("list", library=lib) == []
    rec = cli_json("ingest", short_clip, library=lib)[0]
    assert rec["ref"] == "short@1"
    assert list((lib / "tmp").iterdir()) == []


def test_two_concurrent_ingests_get_distinct_versions(tmp_path, demo_frames):
    a = write_clip(tmp_path / "a.mp4", demo_frames[:45])
    b = write_clip(tmp_path / "b.mp4", demo_frames[45:90])
    lib = tmp_path / "lib"
    run_cli("list", library=lib)  # create the library first
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
def test_sigkill_during_an_edit_leaves_the_parent_and_no_half_version(tmp_path, short_clip, point):
    lib = tmp_path / "lib"
    cli_json("ingest", short_clip, "--name", "base", library=lib)
    before = _rows(lib)
    proc = _spawn(lib, "smooth", "base", env={"MOTIONLIB_FAULT": point})
    _kill_at_fault(proc, point)
    _assert_consistent(lib)
    assert _rows(lib) == before
    out = cli_json("smooth", "base", library=lib)
    assert out["ref"] == "base@2"
    _assert_consistent(lib)
    assert len(list((lib / "motions").glob("*/v*[0-9]"))) == 2  # the killed one's data was swept
