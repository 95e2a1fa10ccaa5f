"""Cleaning of a real track (processing/cleaning.py): swaps repaired, other people and wrong bodies
rejected, jump cuts found, doubted joints capped; and the raw track kept beside the stored one."""

from __future__ import annotations

import numpy as np
import pytest

from motionlib.core.errors import LibraryError
from motionlib.core.skeleton import MEDIAPIPE_POSE_33 as SK
from motionlib.library import Library
from motionlib.processing.cleaning import DOUBT, clean

NAMES = SK.joint_names
BODY_PAIRS = list(SK.mirror_pairs)
LEG_PAIRS = [p for p in SK.mirror_pairs if NAMES[p[0]][5:] in ("knee", "ankle", "heel", "foot_index")]
ARM_PAIRS = [p for p in SK.mirror_pairs if NAMES[p[0]][5:] in ("elbow", "wrist", "pinky", "index", "thumb")]


@pytest.fixture(scope="module")
def stored(demo_library):
    """The sample's performer as ingest stores it (cleaned), frames 0-160 (before the walker)."""
    root, _ = demo_library
    with Library(root) as lib:
        m = lib.load("demo")
    return m.keypoints[:160].copy(), m.confidence[:160].copy(), m.timestamps[:160].copy()


def _swap(kp, conf, frames, pairs):
    kp, conf = kp.copy(), conf.copy()
    for a, b in pairs:
        kp[frames, a], kp[frames, b] = kp[frames, b], kp[frames, a]
        conf[frames, a], conf[frames, b] = conf[frames, b], conf[frames, a]
    return kp, conf


JUDGED = {id(BODY_PAIRS): [(11, 12), (23, 24)], id(LEG_PAIRS): [(25, 26), (27, 28)], id(ARM_PAIRS): [(13, 14), (15, 16)]}


def _apart(kp, pairs, frames) -> bool:
    """Left and right of the part apart in every frame (else a swap changes nothing)."""
    torso = np.linalg.norm((kp[:, 11] + kp[:, 12]) / 2 - (kp[:, 23] + kp[:, 24]) / 2, axis=1)
    return all((np.linalg.norm(kp[frames, a] - kp[frames, b], axis=1) > 0.25 * torso[frames]).all()
               for a, b in JUDGED[id(pairs)])


def test_a_clean_track_stays_as_it_is(stored):
    kp, conf, ts = stored
    got = clean(kp, conf, ts, ts[-1] + 1 / 30, SK)
    assert got.report.swaps == [] and got.report.rejected == []
    ok = np.isfinite(kp)
    assert np.array_equal(got.keypoints[ok], kp[ok])


@pytest.mark.parametrize("pairs,length", [(BODY_PAIRS, 1), (BODY_PAIRS, 10), (LEG_PAIRS, 4), (ARM_PAIRS, 1)])
def test_injected_swaps_are_repaired_and_reported(stored, pairs, length):
    kp, conf, ts = stored
    starts = [s for s in range(20, 140) if np.isfinite(kp[s:s + length]).all() and _apart(kp, pairs, np.arange(s, s + length))]
    start = starts[len(starts) // 2]
    frames = np.arange(start, start + length)
    bad_kp, bad_conf = _swap(kp, conf, frames, pairs)
    got = clean(bad_kp, bad_conf, ts, ts[-1] + 1 / 30, SK)
    ok = np.isfinite(kp[frames])
    assert np.allclose(got.keypoints[frames][ok], kp[frames][ok])
    spans = [(s["start_frame"], s["end_frame"]) for s in got.report.swaps]
    assert (start, start + length) in spans
    assert got.report.as_dict()["swapped_frames"] == length


def test_another_person_is_rejected_and_a_wrong_body_doubted_or_rejected(stored):
    kp, conf, ts = stored
    bad = kp.copy()
    bad[120:160] = kp[120:160] * 1.7 + np.array([900.0, 300.0])  # someone bigger, elsewhere
    hips = (kp[40:46, 23] + kp[40:46, 24]) / 2
    rel = kp[40:46] - hips[:, None]
    bad[40:46] = hips[:, None] + rel[..., ::-1] * np.array([1.0, -1.0])  # the body lying on its side
    got = clean(bad, conf, ts, ts[-1] + 1 / 30, SK)
    rejected = {(r["reason"], r["start_frame"], r["end_frame"]) for r in got.report.rejected}
    assert ("other person", 120, 160) in rejected
    assert np.isnan(got.keypoints[120:160]).all() and (got.confidence[120:160] == 0).all()
    body = list(SK.body)
    assert (got.confidence[40:46][:, body] <= DOUBT).all(), "a body on its side is never stored as certain"
    assert got.report.jump_cuts == []


def test_one_frame_of_a_wrong_body_is_cut_out_even_where_its_way_out_is_gentle(stored):
    """A body 1.7x the performer's for one frame while the performer comes nearer (1.07x): the
    track breaks into it (over 1.6x) but its way out stays under every limit (1.59x; its bigger
    torso makes the joint limit generous). The frames either side join, so it is an excursion and
    goes alone - not the performer's frames before it (the sample's Tasks track, frame 3)."""
    kp, conf, _ = stored
    body = list(SK.body)
    g = next(f for f in range(len(kp)) if np.isfinite(kp[f]).all() and (conf[f, body] >= 0.5).all())
    hips = (kp[g, 23] + kp[g, 24]) / 2
    shoulders = (kp[g, 11] + kp[g, 12]) / 2
    nearer = hips + 1.07 * (kp[g] - hips)
    track = np.stack([kp[g]] * 10 + [shoulders + 1.7 * (kp[g] - shoulders)] + [nearer] * 19)
    ts = np.arange(30) / 30
    got = clean(track, np.stack([conf[g]] * 30), ts, 1.0, SK)
    assert [(r["start_frame"], r["end_frame"]) for r in got.report.rejected] == [(10, 11)]
    keep = np.arange(30) != 10
    assert np.array_equal(got.keypoints[keep], track[keep].astype(np.float32))


def test_same_look_after_a_teleport_is_a_jump_cut_other_look_another_person(stored):
    kp, conf, ts = stored
    bad = kp.copy()
    bad[100:] = kp[100:] + np.array([500.0, 0.0])  # the same body, elsewhere from frame 100 on
    grey = np.full((len(ts), 9), 0.4, np.float32)
    same = clean(bad, conf, ts, ts[-1] + 1 / 30, SK, looks=grey)
    assert [c["frame"] for c in same.report.jump_cuts] == [100] and same.report.rejected == []
    other = grey.copy()
    other[100:] = [0.6, 0.3, 0.2] * 3  # red clothes
    diff = clean(bad, conf, ts, ts[-1] + 1 / 30, SK, looks=other)
    assert diff.report.jump_cuts == []
    assert [(r["reason"], r["start_frame"]) for r in diff.report.rejected] == [("other person", 100)]


def test_a_jump_cut_shows_in_the_pixels_where_the_body_was(stored):
    """The estimator glides a body over a cut in a few frames; the picture in its box does not."""
    kp, conf, ts = stored
    glide = kp.copy()
    shift = np.array([300.0, 0.0])
    for i, w in enumerate((0.25, 0.5, 0.75)):  # MediaPipe's smoothing spreads the jump
        glide[100 + i] += w * shift
    glide[103:] += shift
    quiet = np.full(len(ts), 0.01, np.float32)
    spike = quiet.copy()
    spike[100] = 0.08
    frames = np.full(len(ts) - 1, 0.01, np.float32)
    looks = np.full((len(ts), 9), 0.4, np.float32)
    got = clean(glide, conf, ts, ts[-1] + 1 / 30, SK, body_diffs=spike, frame_diffs=frames, looks=looks)
    assert [c["frame"] for c in got.report.jump_cuts] == [100] and got.report.rejected == []
    assert clean(glide, conf, ts, ts[-1] + 1 / 30, SK, body_diffs=quiet, frame_diffs=frames).report.jump_cuts == []
    still = clean(kp, conf, ts, ts[-1] + 1 / 30, SK, body_diffs=spike, frame_diffs=frames)
    assert still.report.jump_cuts == [], "a flicker where the body stays is no cut"
    whole = frames.copy()
    whole[99] = 0.5  # frame_diffs[t - 1] is the change into frame t
    assert clean(glide, conf, ts, ts[-1] + 1 / 30, SK, body_diffs=spike, frame_diffs=whole).report.jump_cuts == []


def test_a_bone_too_long_caps_its_joint(stored):
    kp, conf, ts = stored
    bad = kp.copy()
    f = 70
    bad[f, 15] = bad[f, 13] + 3 * (bad[f, 15] - bad[f, 13])  # left forearm three times its length
    got = clean(bad, np.maximum(conf, 0.9), ts, ts[-1] + 1 / 30, SK)
    assert got.confidence[f, 15] == pytest.approx(DOUBT)
    assert got.confidence[f - 1, 15] > DOUBT


def test_ingest_keeps_the_raw_track_and_reports_each_change(demo_library):
    root, result = demo_library
    with Library(root) as lib:
        stored, raw = lib.load("demo"), lib.load("demo", raw=True)
        manifest = lib.manifest(lib.get("demo"))
        track = manifest["track"]
    lineage = manifest["lineage"]["result"]["cleaning"]
    assert lineage["swaps"] == [[s["part"], s["start_frame"], s["end_frame"]] for s in track["swaps"]]
    assert lineage["rejected_frames"] == track["rejected_frames"] > 0
    assert raw.frames == stored.frames and np.array_equal(raw.timestamps, stored.timestamps)
    rejected = [r for r in track["rejected"] if r["reason"] == "other person"]
    assert rejected, "the walker the tracker jumped to is not the performer"
    for r in rejected:
        span = slice(r["start_frame"], r["end_frame"])
        assert np.isnan(stored.keypoints[span]).all() and np.isfinite(raw.keypoints[span]).any()
    for s in track["swaps"]:
        f = s["start_frame"]
        assert not np.allclose(stored.keypoints[f], raw.keypoints[f], equal_nan=True)
    assert stored.detected[0], "the first frames are found by the backward pass"
    assert track["recovered_frames"] > 0
    assert any("rejected" in w for w in result["record"]["warnings"])


def test_edits_and_imports_keep_no_raw_track(demo_library, tmp_path):
    from motionlib.processing import ops

    from conftest import copy_library

    root = copy_library(demo_library[0], tmp_path / "lib")
    with Library(root) as lib:
        out = lib.derive("demo", lambda m: ops.trim(m, start=1.0, end=3.0), name="part")
        with pytest.raises(LibraryError, match="keeps no raw track"):
            lib.load(out.record.ref, raw=True)
        track = lib.manifest(out.record)["track"]
    assert all(0 <= s["start"] < 2.0 for s in track["swaps"])
    assert track["rejected"] == [], "the trimmed part holds no frame of anyone else"


def track_of(root):
    with Library(root) as lib:
        return lib.manifest(lib.get("demo"))["track"]


def test_preview_over_source_marks_what_cleaning_did(demo_library, tmp_path):
    import av

    from motionlib.render.preview import MARK_COLOURS, frame_marks

    track = {"rejected": [{"reason": "other person", "start_frame": 2, "end_frame": 4}],
             "swaps": [{"part": "legs", "start_frame": 3, "end_frame": 5}, {"part": "body", "start_frame": 4, "end_frame": 5}],
             "jump_cuts": [{"time": 0.2, "frame": 6, "kind": "jump"}]}
    marks = frame_marks(track, 8)
    assert [[k for k, _ in m] for m in marks] == [[], [], ["rejected"], ["rejected", "swap"], ["swap"], [], ["jump cut"], []]
    assert marks[4] == [("swap", "left/right repaired: body, legs")]
    root, _ = demo_library
    with Library(root) as lib:
        rejected = lib.manifest(lib.get("demo"))["track"]["rejected"][-1]
        lib.preview("demo", tmp_path / "p.mp4", size="256", over_source=True)
    with av.open(str(tmp_path / "p.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    def left_edge(i):  # the left edge, half way down (the text sits top left)
        return frames[i][frames[i].shape[0] // 2, 0].astype(int)

    assert np.abs(left_edge(rejected["start_frame"] + 1) - MARK_COLOURS["rejected"]).max() < 50, "red border"
    unmarked = next(i for i, m in enumerate(frame_marks(track_of(root), len(frames))) if not m)
    assert np.abs(left_edge(unmarked) - MARK_COLOURS["rejected"]).max() > 50
