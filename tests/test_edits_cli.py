"""Edits, preview and export/import through the command line, on the real sample clip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_one_line_error, cli_json, library_snapshot, run_cli, schema_validator


@pytest.fixture
def lib(demo_library, tmp_path) -> Path:
    root = tmp_path / "lib"
    shutil.copytree(demo_library[0], root)
    return root


def _manifest(root: Path, ref: str) -> dict:
    from motionlib.library import Library

    lib = Library(root)
    return lib.manifest(lib.get(ref))


EDITS = [
    ("smooth",), ("smooth", "--method", "one-euro"), ("trim", "--start", "1", "--end", "3"), ("loop",),
    ("mirror",), ("in-place",), ("retime", "--fps", "24"), ("retime", "--speed", "0.5"), ("fill-gaps", "--max", "0.5"),
]


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: " ".join(e))
def test_each_edit_makes_the_next_version_with_lineage(lib, edit):
    before = library_snapshot(lib)
    out = cli_json(edit[0], "demo", *edit[1:], library=lib)
    assert out["ref"] == "demo@2" and out["parent"] == "demo@1" and out["operation"] == edit[0]
    rec = out["record"]
    assert rec["lineage"]["parent"] == "demo@1" and rec["lineage"]["operation"] == edit[0]
    # the parent is untouched, and the new version is a complete, schema-valid store
    after = library_snapshot(lib)
    assert set(before["files"]) < set(after["files"])
    assert before["rows"] == after["rows"][: len(before["rows"])]
    m = _manifest(lib, "demo@2")
    schema_validator("motion-manifest.schema.json").validate(m)
    assert m["lineage"]["params"] == out["params"] and m["lineage"]["result"] == out["result"]
    listed = cli_json("list", "op:" + edit[0], library=lib)
    assert [r["ref"] for r in listed] == ["demo@2"]
    assert all(v is not None for k, v in rec["scores"].items() if k != "jitter")


def test_edit_details(lib):
    trim = cli_json("trim", "demo", "--start", "1", "--end", "3", library=lib)
    assert trim["record"]["frames"] == 60 and trim["record"]["duration"] == pytest.approx(2.0)
    assert _manifest(lib, "demo@2")["source"]["time_offset"] == pytest.approx(1.0, abs=1e-3)
    sm = cli_json("smooth", "demo@1", library=lib)
    assert sm["record"]["scores"]["jitter"] > sm["scores_before"]["jitter"] + 0.3
    assert abs(sm["result"]["lag_frames"]) < 0.25
    loop = cli_json("loop", "demo@1", "--name", "demo-loop", "--tag", "loop", library=lib)
    assert loop["ref"] == "demo-loop@1" and loop["record"]["tags"] == ["loop"]
    assert loop["result"]["seam_ratio"] < 2 and loop["record"]["duration"] >= 1.0
    # an edit of an edit records its own parent
    again = cli_json("mirror", "demo-loop", library=lib)
    assert again["parent"] == "demo-loop@1" and again["ref"] == "demo-loop@2"


@pytest.mark.parametrize("args, words", [
    (("smooth", "nope"), "no motion named 'nope'"),
    (("smooth", "demo@7"), "demo@7 does not exist"),
    (("trim", "demo", "--start", "20"), "past the end"),
    (("trim", "demo", "--start", "3", "--end", "2"), "after"),
    (("trim", "demo"), "--start and/or --end"),
    (("loop", "demo", "--min-length", "7"), "min-length"),
    (("retime", "demo", "--speed", "0"), "speed"),
    (("smooth", "demo", "--cutoff", "40"), "half the frame rate"),
    (("in-place", "demo", "--axes", "z"), "axes"),
    (("smooth", "demo", "--name", "bad/name"), "path separator"),
    (("preview", "demo", "-o", "/nonexistent/dir/x.mp4"), "does not exist"),
    (("preview", "demo", "--size", "huge"), "size"),
    (("export", "demo", "--format", "bvh", "-o", "x.bvh"), "--format"),
])
def test_bad_input_is_one_line_and_changes_nothing(lib, args, words, tmp_path):
    before = library_snapshot(lib)
    proc = run_cli(*args, library=lib, cwd=tmp_path)
    assert_one_line_error(proc, words)
    assert library_snapshot(lib) == before


def _decode(path: Path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(s)]
    return frames


def test_preview_plays_at_the_motions_timing_and_shows_the_movement(lib, tmp_path):
    from motionlib.library import Library
    from motionlib.render.posemap import pose_maps

    out = tmp_path / "p.mp4"
    info = cli_json("preview", "demo", "-o", out, library=lib)
    assert info["width"] == 512 and info["height"] == 288 and info["frames"] == 230
    frames = _decode(out)
    m = Library(lib).load("demo")
    assert len(frames) == m.frames
    times = np.array([t for t, _ in frames])
    np.testing.assert_allclose(times, m.timestamps, atol=1e-3)
    # each decoded frame is that moment's pose map (H.264 blurs it a little), not a neighbour's
    maps = list(pose_maps(m, 512, 288))
    centres = []
    for t, (_, img) in enumerate(frames):
        want = maps[t].max(axis=2) > 60
        if want.sum() < 50:
            continue
        got = img.max(axis=2) > 60
        ys, xs = np.nonzero(got)
        wy, wx = np.nonzero(want)
        centres.append(np.hypot(xs.mean() - wx.mean(), ys.mean() - wy.mean()))
        if 10 <= t < len(frames) - 10 and t % 10 == 0:
            iou = (got & want).sum() / (got | want).sum()
            for other in (t - 10, t + 10):
                o = maps[other].max(axis=2) > 60
                if (o & want).sum() > 0.8 * (o | want).sum():
                    continue  # the performer hardly moved: nothing to tell apart
                assert iou > (got & o).sum() / max(1, (got | o).sum()), f"frame {t} looks like frame {other}"
    assert len(centres) > 150 and np.percentile(centres, 95) < 1.5, np.percentile(centres, 95)


def test_preview_over_source_lines_up_with_the_clip(lib, tmp_path, sample):
    from motionlib.media import video

    out = tmp_path / "o.mp4"
    info = cli_json("preview", "demo", "--over-source", "-o", out, library=lib)
    assert info["over_source"] and info["frames"] == 230
    frames = _decode(out)
    src = [f.image for f in video.decode(video.probe(sample), max_size=512)]
    assert src[0].shape == frames[0][1].shape

    def corr(a, b):
        a = a.astype(np.float64).mean(axis=2).ravel()
        b = b.astype(np.float64).mean(axis=2).ravel()
        return np.corrcoef(a, b)[0, 1]

    # frame 120 of the preview is source frame 120 dimmed (plus the skeleton), not its neighbours
    same = corr(frames[120][1], src[120])
    assert same > 0.97 and same > corr(frames[120][1], src[100]) + 0.01


def test_preview_over_source_refuses_versions_that_left_the_source(lib, tmp_path):
    cli_json("mirror", "demo", library=lib)
    proc = run_cli("preview", "demo@2", "--over-source", "-o", tmp_path / "x.mp4", library=lib)
    assert proc.returncode == 1 and "no longer sit on the source" in proc.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_openpose_json_round_trip(lib, tmp_path):
    from motionlib.core.openpose import to_openpose
    from motionlib.library import Library

    out = tmp_path / "op"
    info = cli_json("export", "demo", "--format", "openpose-json", "-o", out, library=lib)
    files = sorted(out.iterdir())
    assert info["files"] == len(files) == 230
    doc = json.loads(files[100].read_text())
    assert doc["canvas_width"] == 1768 and doc["canvas_height"] == 994
    assert len(doc["people"][0]["pose_keypoints_2d"]) == 54 and doc["people"][0]["hand_left_keypoints_2d"] == []
    assert json.loads(files[0].read_text())["people"] == [], "frame 0 has no performer"
    imp = cli_json("import", out, "--format", "openpose-json", "--name", "back", library=lib)
    assert imp["status"] == "created" and imp["ref"] == "back@1"
    rec = imp["record"]
    assert rec["skeleton"] == "openpose_18" and rec["frames"] == 230
    assert rec["scores"]["overall"] is not None and rec["lineage"]["operation"] == "import"
    library = Library(lib)
    a, b = library.load("demo"), library.load("back")
    opa = to_openpose(a)
    np.testing.assert_allclose(b.keypoints, opa.body, atol=1e-3, equal_nan=True)
    np.testing.assert_allclose(b.confidence, opa.body_conf, atol=1e-6)
    np.testing.assert_allclose(b.timestamps, a.timestamps, atol=1e-9)
    assert (b.width, b.height) == (a.width, a.height)
    schema_validator("motion-manifest.schema.json").validate(_manifest(lib, "back@1"))
    # the same files again: nothing new
    again = cli_json("import", out, "--format", "openpose-json", "--name", "back", library=lib)
    assert again["status"] == "unchanged" and again["ref"] == "back@1"
    # and the imported motion draws, previews and exports like any other
    cli_json("preview", "back", "-o", tmp_path / "b.mp4", library=lib)


def test_npz_round_trip_is_exact(lib, tmp_path):
    from motionlib.library import Library

    path = tmp_path / "demo.npz"
    cli_json("export", "demo", "--format", "npz", "-o", path, library=lib)
    imp = cli_json("import", path, "--format", "npz", "--name", "copy", library=lib)
    library = Library(lib)
    a, b = library.load("demo"), library.load("copy")
    assert b.skeleton.name == a.skeleton.name
    for field in ("keypoints", "confidence", "timestamps", "world"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert imp["record"]["scores"] == cli_json("show", "demo", library=lib)["scores"]


def test_csv_and_mp4_export(lib, tmp_path):
    import csv

    path = tmp_path / "demo.csv"
    cli_json("export", "demo", "--format", "csv", "-o", path, library=lib)
    rows = list(csv.reader(path.open()))
    assert rows[0][:5] == ["frame", "time", "nose_x", "nose_y", "nose_c"] and len(rows) == 231
    assert len(rows[0]) == 2 + 33 * 3
    assert rows[1][2] == "" and float(rows[101][2]) > 0
    mp4 = tmp_path / "demo.mp4"
    info = cli_json("export", "demo", "--format", "mp4", "-o", mp4, "--size", "256", library=lib)
    assert info["width"] == 256 and len(_decode(mp4)) == 230
    proc = run_cli("export", "demo", "--format", "csv", "-o", path, library=lib)
    assert proc.returncode == 1 and "--force" in proc.stderr


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
        proc = run_cli("import", *args, library=lib)
        assert_one_line_error(proc, words, args)
    assert library_snapshot(lib) == before
    # the normalised file imports once the frame size is given
    ok = cli_json("import", norm, "--format", "openpose-json", "--size", "640x480", "--fps", "25", library=lib)
    assert ok["record"]["width"] == 640 and ok["record"]["fps"] == pytest.approx(25)
