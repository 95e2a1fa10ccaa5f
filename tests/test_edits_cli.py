"""Edits, preview, export and import on the command line (in this process, through the installed
command's entry point): each command's options reach its edit, and bad input is refused with one
line naming the flag. What the edits, previews and exchange formats store and write is tested
through the library in test_edits.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motionlib.library import Library
from tests.conftest import (
    as_printed, assert_one_line_error, copy_library, invoke, invoke_json, library_snapshot,
)
from tests.test_edits import EDITS


@pytest.fixture
def lib(demo_library, tmp_path) -> Path:
    return copy_library(demo_library[0], tmp_path / "lib")


@pytest.mark.parametrize("command", EDITS, ids=EDITS.keys())
def test_each_edit_command_passes_its_options_to_its_edit(lib, command):
    """Every edit command, with the options of test_edits.EDITS, stores the edit the library
    makes from the same options (its lineage: test_edits.py)."""
    operation, edit = EDITS[command]
    name, *options = command.split()
    out = invoke_json(name, "demo", *options, library=lib)
    assert out["ref"] == "demo@2" and out["parent"] == "demo@1" and out["operation"] == operation
    with Library(lib) as library:
        assert out["params"] == as_printed(edit(library.load("demo@1")).params)


def test_edits_carry_their_parents_tags_unless_own_tags(lib):
    # demo@1 is tagged "sample" by the fixture; tags are case-insensitive
    assert invoke("tag", "demo", "JJ", library=lib).returncode == 0
    carried = invoke_json("mirror", "demo", "-t", "Flip", library=lib)
    assert sorted(carried["record"]["tags"]) == ["flip", "jj", "sample"]
    own = invoke_json("mirror", "demo@1", "-t", "solo", "--own-tags", library=lib)
    assert own["record"]["tags"] == ["solo"]
    latest = invoke_json("list", "--json", "tag:jj", "is:latest", library=lib)
    assert [r["ref"] for r in latest] == [], "demo@3 (own tags) is the latest; it has no jj"
    assert [r["ref"] for r in invoke_json("list", "--json", "tag:JJ", library=lib)] == ["demo@1", "demo@2"]


def _popping_window(lib: Path) -> tuple[str, str]:
    """--min-length and --max-length of a window of the real clip whose best loop, unblended, pops.
    Which window does depends on the estimator's track (0.4-0.5 s pops on the legacy one; on the
    Tasks one its best pair lies in fast movement and is seamless there, 0.3-0.4 s pops), so the
    library's own loop picks it; the CLI must then refuse it."""
    from motionlib.processing import ops

    with Library(lib) as library:
        m = library.load("demo")
    for lo, hi in ((0.4, 0.5), (0.3, 0.4), (0.2, 0.3), (0.5, 0.6), (0.6, 0.7)):
        if ops.loop(m, min_length=lo, max_length=hi, blend=0).result["verdict"] == "does not loop":
            return str(lo), str(hi)
    pytest.fail("no 0.1 s window between 0.2 and 0.7 s of the sample pops unblended")


def test_loop_verdict_is_recorded_and_strict_stores_nothing(lib):
    # a short window of the real clip with no blending: the seam pops
    lo, hi = _popping_window(lib)
    args = ("loop", "demo", "--min-length", lo, "--max-length", hi, "--blend", "0")
    before = library_snapshot(lib)
    assert_one_line_error(invoke(*args, "--strict", library=lib), "does not loop")
    assert library_snapshot(lib) == before
    stored = invoke_json(*args, library=lib)
    assert stored["result"]["verdict"] == "does not loop" and stored["result"]["loops"] is False
    shown = invoke_json("show", stored["ref"], library=lib)
    assert shown["warnings"][0].startswith("does not loop")
    assert shown["lineage"]["result"]["verdict"] == "does not loop"


@pytest.mark.parametrize("args, words", [
    (("smooth", "nope"), "no motion named 'nope'"),
    (("smooth", "demo@7"), "demo@7 does not exist"),
    (("trim", "demo", "--start", "20"), "past the end"),
    (("trim", "demo", "--start", "3", "--end", "2"), "after"),
    (("trim", "demo"), "--start and/or --end"),
    (("loop", "demo", "--min-length", "7"), "min-length"),
    (("retime", "demo", "--speed", "0"), "speed"),
    (("retime", "demo", "--bpm", "0"), "--bpm"),
    (("retime", "demo", "--bpm", "120"), "no measurable tempo"),  # silent audio, no periodic movement
    (("loop", "demo", "--beats", "0"), "--beats"),
    (("loop", "demo", "--beats", "8"), "no measurable tempo"),
    (("smooth", "demo", "--cutoff", "40"), "half the frame rate"),
    (("in-place", "demo", "--axes", "z"), "axes"),
    (("smooth", "demo", "--name", "bad/name"), "path separator"),
    (("preview", "demo", "-o", "/nonexistent/dir/x.mp4"), "does not exist"),
    (("preview", "demo", "--size", "huge"), "size"),
    (("export", "demo", "--format", "fbx", "-o", "x.fbx"), "--format"),
    (("export", "demo", "--format", "comfyui", "-o", "x.json", "--threshold", "2"), "--threshold"),
])
def test_bad_input_is_one_line_and_changes_nothing(lib, args, words, tmp_path):
    before = library_snapshot(lib)
    proc = invoke(*args, library=lib, cwd=tmp_path)
    assert_one_line_error(proc, words)
    assert library_snapshot(lib) == before


def test_preview_over_source_refuses_versions_that_left_the_source(lib, tmp_path):
    from motionlib.processing import ops

    with Library(lib) as library:
        library.derive("demo", ops.mirror)
    proc = invoke("preview", "demo@2", "--over-source", "-o", tmp_path / "x.mp4", library=lib)
    assert proc.returncode == 2 and "no longer sit on the source" in proc.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_export_keeps_an_existing_file_without_force(lib, tmp_path):
    path = tmp_path / "demo.csv"
    with Library(lib) as library:
        library.export("demo", "csv", path)
    proc = invoke("export", "demo", "--format", "csv", "-o", path, library=lib)
    assert proc.returncode == 2 and "--force" in proc.stderr


def test_export_for_other_tools_bvh_and_controlnet(lib, tmp_path):
    """bvh, comfyui and controlnet-aux from the command line (what they hold: test_exports.py);
    a version without 3D landmarks has no BVH: one line, nothing written."""
    out = invoke_json("export", "demo", "--format", "bvh", "-o", tmp_path / "d.bvh", library=lib)
    assert out["format"] == "bvh" and out["bvh_frames"] == 230 and out["frame_time"] == pytest.approx(1 / 30)
    assert (tmp_path / "d.bvh").read_text().startswith("HIERARCHY\nROOT Hips")
    shown = invoke("export", "demo", "-f", "comfyui", "-o", tmp_path / "d.json", "--threshold", "0.5", library=lib)
    assert shown.returncode == 0 and "as comfyui, 230 frames" in shown.stdout, shown.stderr
    assert len(json.loads((tmp_path / "d.json").read_text())) == 230
    cn = invoke_json("export", "demo", "-f", "controlnet-aux", "-o", tmp_path / "cn", library=lib)
    assert cn["files"] == 230 and cn["threshold"] == 0.3
    with Library(lib) as library:
        library.export("demo", "openpose-json", tmp_path / "op")
        library.import_keypoints(tmp_path / "op", "openpose-json", name="flat")
    proc = invoke("export", "flat", "-f", "bvh", "-o", tmp_path / "flat.bvh", library=lib)
    assert_one_line_error(proc, "flat@1: no 3D world landmarks")
    assert not (tmp_path / "flat.bvh").exists()


def test_export_raw_writes_the_estimators_track_and_edits_have_none(lib, tmp_path):
    import numpy as np

    out = invoke_json("export", "demo", "--format", "npz", "-o", tmp_path / "raw.npz", "--raw", library=lib)
    assert out["raw"] is True and out["frames"] == 230
    with Library(lib) as library, np.load(tmp_path / "raw.npz") as z:
        raw, stored = library.load("demo", raw=True), library.load("demo")
        assert np.array_equal(z["keypoints"], raw.keypoints, equal_nan=True)
        assert not np.array_equal(z["keypoints"], stored.keypoints, equal_nan=True)
        from motionlib.processing import ops

        library.derive("demo", ops.mirror)
    proc = invoke("export", "demo@2", "--format", "csv", "-o", tmp_path / "m.csv", "--raw", library=lib)
    assert_one_line_error(proc, "keeps no raw track")
    assert not (tmp_path / "m.csv").exists()


def test_import_rejects_bad_files_and_stores_nothing(lib, tmp_path):
    before = library_snapshot(lib)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "f_000000000000_keypoints.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2, 0.9]')
    cases = [
        ((bad, "--format", "openpose-json"), "malformed JSON at line 1"),
        ((tmp_path / "missing", "--format", "openpose-json"), "does not exist"),
        ((tmp_path, "--format", "npz"), "not a file"),
        ((bad, "--format", "bvh"), "--format"),
    ]
    short = tmp_path / "short"
    short.mkdir()
    (short / "a.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2, 3]}]}))
    cases.append(((short, "--format", "openpose-json"), "must hold 54 numbers"))
    norm = tmp_path / "norm.json"
    norm.write_text(json.dumps([{"people": [{"pose_keypoints_2d": [0.5, 0.5, 1.0] * 18}]}] * 3))
    cases.append(((norm, "--format", "openpose-json"), "--size"))
    notnpz = tmp_path / "x.npz"
    notnpz.write_bytes(b"PK\x03\x04garbage")
    cases.append(((notnpz, "--format", "npz"), "not a readable .npz"))
    for args, words in cases:
        proc = invoke("import", *args, library=lib)
        assert_one_line_error(proc, words, args)
    assert library_snapshot(lib) == before
    # the normalised file imports once the frame size is given
    ok = invoke_json("import", norm, "--format", "openpose-json", "--size", "640x480", "--fps", "25", library=lib)
    assert ok["record"]["width"] == 640 and ok["record"]["fps"] == pytest.approx(25)
