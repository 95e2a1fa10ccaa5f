"""Edits, preview and export/import through the library API, on the real sample clip: each edit
stored as the next version with its lineage, previews at the motion's timing, keypoint files that
round-trip. (The commands' flags and one-line errors: test_edits_cli.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from motionlib.library import Library
from motionlib.processing import ops
from tests.conftest import as_printed, library_snapshot, schema_validator


@pytest.fixture
def lib(demo_copy):
    """The demo library to change: a local one, and a shared one (conftest.demo_copy)."""
    with Library(demo_copy) as library:
        yield library


# id (the command line that makes the same edit) -> (operation, Motion -> Edit)
EDITS = {
    "smooth": ("smooth", ops.smooth),
    "smooth --method one-euro": ("smooth", lambda m: ops.smooth(m, method="one-euro")),
    "trim --start 1 --end 3": ("trim", lambda m: ops.trim(m, 1.0, 3.0)),
    "loop": ("loop", ops.loop),
    "mirror": ("mirror", ops.mirror),
    "in-place": ("in-place", ops.in_place),
    "retime --fps 24": ("retime", lambda m: ops.retime(m, fps=24.0)),
    "retime --speed 0.5": ("retime", lambda m: ops.retime(m, speed=0.5)),
    "fill-gaps --max 0.5": ("fill-gaps", lambda m: ops.fill_gaps(m, 0.5)),
}


@pytest.mark.parametrize("operation, edit", EDITS.values(), ids=EDITS.keys())
def test_each_edit_makes_the_next_version_with_lineage(lib, operation, edit):
    before = library_snapshot(lib)
    out = as_printed(lib.derive("demo", edit))
    assert out["ref"] == "demo@2" and out["parent"] == "demo@1" and out["operation"] == operation
    rec = out["record"]
    assert rec["lineage"]["parent"] == "demo@1" and rec["lineage"]["operation"] == operation
    # the parent is untouched, and the new version is a complete, schema-valid store
    after = library_snapshot(lib)
    assert set(before["files"]) < set(after["files"])
    assert before["rows"] == after["rows"][: len(before["rows"])]
    m = lib.manifest(lib.get("demo@2"))
    schema_validator("motion-manifest.schema.json").validate(m)
    assert m["lineage"]["params"] == out["params"] and m["lineage"]["result"] == out["result"]
    assert [r.ref for r in lib.list(query="op:" + operation)] == ["demo@2"]
    assert all(v is not None for k, v in rec["scores"].items() if k != "jitter")


def test_edit_details(lib):
    trim = as_printed(lib.derive("demo", lambda m: ops.trim(m, 1.0, 3.0)))
    assert trim["record"]["frames"] == 60 and trim["record"]["duration"] == pytest.approx(2.0)
    assert lib.manifest(lib.get("demo@2"))["source"]["time_offset"] == pytest.approx(1.0, abs=1e-3)
    sm = as_printed(lib.derive("demo@1", ops.smooth))
    assert sm["record"]["scores"]["jitter"] > sm["scores_before"]["jitter"] + 0.1
    assert lib.get(sm["ref"]).jitter_raw < 0.5 * lib.get("demo@1").jitter_raw, "smoothing halves the noise"
    assert abs(sm["result"]["lag_frames"]) < 0.25
    loop = as_printed(lib.derive("demo@1", ops.loop, name="demo-loop", tags=["loop"]))
    assert loop["ref"] == "demo-loop@1" and loop["record"]["tags"] == ["loop", "sample"]  # the parent's carry
    solo = as_printed(lib.derive("demo@1", ops.mirror, name="solo", tags=["Solo"], inherit_tags=False))
    assert solo["record"]["tags"] == ["solo"], "tags are case-insensitive (stored lower-case)"
    assert loop["result"]["seam_ratio"] < 2 and loop["record"]["duration"] >= 1.0
    # an edit of an edit records its own parent
    again = as_printed(lib.derive("demo-loop", ops.mirror))
    assert again["parent"] == "demo-loop@1" and again["ref"] == "demo-loop@2"


def _decode(path: Path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(s)]
    return frames


def test_preview_plays_at_the_motions_timing_and_shows_the_movement(lib, tmp_path):
    from motionlib.render.posemap import Placement, pose_maps

    out = tmp_path / "p.mp4"
    info = lib.preview("demo", out)
    assert info["width"] == 512 and info["height"] == 288 and info["frames"] == 230
    frames = _decode(out)
    m = lib.load("demo")
    assert len(frames) == m.frames
    times = np.array([t for t, _ in frames])
    np.testing.assert_allclose(times, m.timestamps, atol=1e-3)
    # each decoded frame is that moment's pose map (H.264 blurs it a little), not a neighbour's
    maps = list(pose_maps(m, 512, 288, placement=Placement.around(m, 512, 288)))  # the preview frames him
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


def test_sheet_shows_key_frames_over_the_source_with_their_times(lib, tmp_path):
    import cv2

    from motionlib.core.errors import InputError
    from motionlib.render.posemap import DEFAULT_THRESHOLD

    info = lib.sheet("demo", tmp_path / "s.png", count=8)
    assert info["over_source"] and len(info["frames"]) == 8
    image = cv2.imread(str(tmp_path / "s.png"))
    assert image.shape[:2] == (info["height"], info["width"])
    motion = lib.load("demo")
    body = list(motion.skeleton.body)
    shown = (motion.confidence[info["frames"]][:, body] >= DEFAULT_THRESHOLD).mean(axis=1)
    assert (shown >= 0.5).all(), "every key frame shows the performer"
    assert info["times"] == [round(float(motion.timestamps[t]), 4) for t in info["frames"]]
    assert info["times"][-1] - info["times"][0] > 0.5 * motion.duration, "spread over the performance"
    # an edit that left the source's frames: pose maps by default, refused when the source is asked for
    lib.derive("demo", lambda m: ops.retime(m, speed=2.0), name="fast")
    assert not lib.sheet("fast", tmp_path / "f.png", count=4)["over_source"]
    with pytest.raises(InputError, match="over_source"):
        lib.sheet("fast", tmp_path / "g.png", over_source=True)
    with pytest.raises(InputError, match="count"):
        lib.sheet("demo", tmp_path / "h.png", count=0)
    with pytest.raises(InputError, match="exists"):
        lib.sheet("demo", tmp_path / "s.png")


def test_preview_over_source_lines_up_with_the_clip(lib, tmp_path, sample):
    from motionlib.media import video

    out = tmp_path / "o.mp4"
    info = lib.preview("demo", out, over_source=True)
    assert info["over_source"] and info["frames"] == 230
    frames = _decode(out)
    src = [f.image for f in video.decode(video.probe(sample), max_size=512)]
    assert src[0].shape == frames[0][1].shape

    def corr(a, b):  # below the marks' text and inside their border (docs/posemap.md)
        h, w = a.shape[:2]
        a = a[h // 4:h - 8, 8:w - 8].astype(np.float64).mean(axis=2).ravel()
        b = b[h // 4:h - 8, 8:w - 8].astype(np.float64).mean(axis=2).ravel()
        return np.corrcoef(a, b)[0, 1]

    # frame 120 of the preview is source frame 120 dimmed (plus the skeleton), not its neighbours
    same = corr(frames[120][1], src[120])
    assert same > 0.97 and same > corr(frames[120][1], src[100]) + 0.01


def test_openpose_json_round_trip(lib, tmp_path):
    from motionlib.core.openpose import to_openpose

    out = tmp_path / "op"
    info = lib.export("demo", "openpose-json", out)
    files = sorted(out.iterdir())
    assert info["files"] == len(files) == 230
    doc = json.loads(files[100].read_text())
    assert doc["canvas_width"] == 1768 and doc["canvas_height"] == 994
    assert len(doc["people"][0]["pose_keypoints_2d"]) == 54 and doc["people"][0]["hand_left_keypoints_2d"] == []
    assert json.loads(files[200].read_text())["people"] == [], "frame 200 holds another person: rejected"
    imp = as_printed(lib.import_keypoints(out, "openpose-json", name="back"))
    assert imp["status"] == "created" and imp["ref"] == "back@1"
    rec = imp["record"]
    assert rec["skeleton"] == "openpose_18" and rec["frames"] == 230
    assert rec["scores"]["overall"] is not None and rec["lineage"]["operation"] == "import"
    a, b = lib.load("demo"), lib.load("back")
    opa = to_openpose(a)
    np.testing.assert_allclose(b.keypoints, opa.body, atol=1e-3, equal_nan=True)
    np.testing.assert_allclose(b.confidence, opa.body_conf, atol=1e-6)
    np.testing.assert_allclose(b.timestamps, a.timestamps, atol=1e-9)
    assert (b.width, b.height) == (a.width, a.height)
    schema_validator("motion-manifest.schema.json").validate(lib.manifest(lib.get("back@1")))
    # the same files again: nothing new
    again = lib.import_keypoints(out, "openpose-json", name="back")
    assert again.status == "unchanged" and again.record.ref == "back@1"
    # and the imported motion draws, previews and exports like any other
    lib.preview("back", tmp_path / "b.mp4")


def test_npz_round_trip_is_exact(lib, tmp_path):
    path = tmp_path / "demo.npz"
    lib.export("demo", "npz", path)
    imp = as_printed(lib.import_keypoints(path, "npz", name="copy"))
    a, b = lib.load("demo"), lib.load("copy")
    assert b.skeleton.name == a.skeleton.name
    for field in ("keypoints", "confidence", "timestamps", "world"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert imp["record"]["scores"] == as_printed(lib.get("demo"))["scores"]


def test_csv_and_mp4_export(lib, tmp_path):
    import csv

    from motionlib.core.errors import InputError

    path = tmp_path / "demo.csv"
    lib.export("demo", "csv", path)
    rows = list(csv.reader(path.open()))
    assert rows[0][:5] == ["frame", "time", "nose_x", "nose_y", "nose_c"] and len(rows) == 231
    assert len(rows[0]) == 2 + 33 * 3
    assert rows[201][2] == "" and float(rows[101][2]) > 0
    mp4 = tmp_path / "demo.mp4"
    info = lib.export("demo", "mp4", mp4, size="256")
    assert info["width"] == 256 and len(_decode(mp4)) == 230
    # an existing file is kept unless overwrite=True (the command line's --force: test_edits_cli.py)
    with pytest.raises(InputError, match="overwrite=True"):
        lib.export("demo", "csv", path)


def test_preview_frames_the_performer_unless_asked_for_the_full_frame(lib, tmp_path):
    """The sample's performer is small: the default preview draws him large, centred;
    full_frame=True keeps the source frame's layout (as exports do)."""
    lib.preview("demo", tmp_path / "c.mp4", size="256")
    lib.preview("demo", tmp_path / "f.mp4", size="256", full_frame=True)

    def drawn_height(path):
        heights = []
        for _, img in _decode(path)[:100]:
            rows = np.flatnonzero(img.max(axis=(1, 2)) > 40)
            if rows.size:
                heights.append(rows[-1] - rows[0])
        return np.median(heights)

    # he travels across the box top and jumps, so his whole travel sets the frame: ~1.7x here
    assert drawn_height(tmp_path / "c.mp4") > 1.5 * drawn_height(tmp_path / "f.mp4")
