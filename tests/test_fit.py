"""Fitting a motion onto an identity before any GPU time (Library.fit, `motionlib fit`): the anchor
frame on her joints, the report, the risk flags, and the files it writes."""

from __future__ import annotations

import numpy as np
import pytest

from motionlib.core.errors import InputError
from motionlib.core.skeleton import MEDIAPIPE_POSE_33 as SK
from motionlib.library import Library
from motionlib.render import fit as fitting
from motionlib.render.retarget import retarget
from tests.conftest import ROOT, assert_one_line_error, copy_library, invoke, invoke_json
from tests.test_retarget import identity_pose, performer


@pytest.fixture
def lib(demo_library, tmp_path):
    root = copy_library(demo_library[0], tmp_path / "lib")
    with Library(root) as library:
        library.add_identity(ROOT / "assets" / "samples" / "astronaut.png", name="astronaut")
        yield library


def _stillest_frame(m) -> int:
    """The frame around which (3 frames either side) the reported joints, all confidently seen,
    move least for their torso length."""
    J = [SK.index(n) for n in fitting.REPORT_JOINTS]
    kp = m.keypoints.astype(np.float64)
    torso = np.linalg.norm((kp[:, 11] + kp[:, 12]) / 2 - (kp[:, 23] + kp[:, 24]) / 2, axis=1)
    moves = {}
    for k in range(3, m.frames - 3):
        w = kp[k - 3:k + 4][:, J]
        if np.isfinite(w).all() and (m.confidence[k - 3:k + 4][:, J] >= 0.5).all():
            moves[k] = np.linalg.norm(np.diff(w, axis=0), axis=-1).max() / torso[k]
    return min(moves, key=moves.get)


def test_self_test_frame_k_lands_on_the_identity_made_from_frame_k(lib, tmp_path, sample):
    """The identity is frame k of the sample itself (the performer's crop, enlarged 3x): the fit's
    frame k must lie on her joints (issue 15's goal: within 2 % of her height).

    k is where the performer stands stillest: the track is read in video mode, whose landmarks
    follow the body over time and lag it while it moves, her picture as a still, so only there do
    both readings of one picture agree well enough to leave the fit's own error. (Measured over
    frames 15-90 in full view: still frames 0.7-1.7 % on both estimators, moving ones often 2-5 %
    and more; the fixed frame 40 this test used, moving, 1.6 % on the legacy track and 2.2 % on the
    Tasks one. The stillest frame is 82 on the legacy track, 81 on the Tasks one.)"""
    import av
    from PIL import Image

    m = lib.load("demo")
    k = _stillest_frame(m)
    with av.open(str(sample)) as c:
        img = next(f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i == k)
    pts = m.keypoints[k][np.isfinite(m.keypoints[k]).all(axis=1)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    x0, y0 = np.maximum(lo - 0.3 * (hi - lo), 0).astype(int)
    x1, y1 = np.minimum(hi + 0.3 * (hi - lo), [img.shape[1], img.shape[0]]).astype(int)
    Image.fromarray(img[y0:y1, x0:x1]).resize(((x1 - x0) * 3, (y1 - y0) * 3), Image.LANCZOS).save(tmp_path / "self.png")
    lib.add_identity(tmp_path / "self.png", name="himself")
    report = lib.fit("demo", "himself", anchor=k)
    errors = [v["of_height"] for v in report["anchor_error"]["joints"].values()]
    assert len(errors) >= 13 and max(errors) <= 0.02 and np.median(errors) <= 0.005
    assert report["retarget"]["anchored_at"] == "hip_centre"
    # the crop is tight around frame k: the performer's travel takes him out of it, and that is all
    assert [f["flag"] for f in report["flags"]] == ["leaves_picture"]


def _anchored_on_hers(m, identity, report) -> tuple[list[str], list[str]]:
    """Of the nose, ears and shoulders: those each bone from the neck to which takes her length at
    the anchor frame (its ratio there within retarget.ANCHOR_RANGE of the report's body scale), and
    the others."""
    from motionlib.render.retarget import ANCHOR_RANGE, TREE, IdentityBody, _identity_points, _points

    k, scale = report["anchor_frame"], report["retarget"]["scale"]
    mpos, mconf = _points(m.keypoints.astype(np.float64), m.confidence, m.skeleton)
    ipos, _ = _identity_points(IdentityBody.from_record(identity))
    parent = {c: p for p, c in TREE}

    def hers(c: str) -> bool:
        p = parent[c]
        at = float(np.linalg.norm(mpos[c][k] - mpos[p][k]))
        if not (mconf[p][k] >= 0.5 and mconf[c][k] >= 0.5 and at > 0):
            return False
        ratio = float(np.linalg.norm(ipos[c] - ipos[p])) / at
        return ANCHOR_RANGE[0] * scale <= ratio <= ANCHOR_RANGE[1] * scale and (p == "neck" or hers(p))

    joints = ("nose", "left_ear", "right_ear", "left_shoulder", "right_shoulder")
    return [j for j in joints if hers(j)], [j for j in joints if not hers(j)]


def test_astronaut_report_flags_and_files(lib, tmp_path):
    from motionlib import exchange

    report = lib.fit("demo", "astronaut", output=tmp_path / "fit.npz", preview=tmp_path / "fit.png")
    assert report["retarget"]["anchored_at"] == "neck", "her hips are guessed below the picture"
    # at the anchor frame her head and shoulders are the fit's: each bone from the neck turned onto
    # hers, with her length there - unless that length is far from the body's scale (the bone is
    # foreshortened in one picture: retarget.ANCHOR_RANGE), which then moves what hangs from it too
    on, off = _anchored_on_hers(lib.load("demo"), lib.get_identity("astronaut"), report)
    assert {"nose", "left_shoulder", "right_shoulder"} <= set(on) and len(on) >= 4, (on, off)
    for joint in on:
        assert report["anchor_error"]["joints"][joint]["px"] < 0.5, joint
    for joint in off:  # the Tasks track's frame 0: nose to right eye half its usual length
        assert report["anchor_error"]["joints"][joint]["px"] >= 0.5, joint
    assert {f["flag"] for f in report["flags"]} >= {"half_body", "hands"}
    assert 0 < report["risk"] < 1 and report["risk"] == fitting.risk_score(report["flags"])
    bones = {b["bone"]: b for b in report["proportions"]}
    assert bones["neck-left_shoulder"]["from"] == "hers at the anchor"
    assert bones["left_hip-left_knee"]["from"] == "body scale"
    got = exchange.read(tmp_path / "fit.npz", "npz").motion
    assert (got.width, got.height) == (512, 512) and got.frames == lib.load("demo").frames
    from PIL import Image

    sheet = Image.open(tmp_path / "fit.png")
    assert sheet.size == (256 * len(fitting.key_frames(got, report["anchor_frame"])), 256)
    # the same fit again is the cached one, and render records the same flags
    assert lib.fit("demo", "astronaut")["retarget"]["cached"] is True


def test_bad_requests_write_nothing(lib, tmp_path):
    with pytest.raises(InputError, match="outside the motion's frames"):
        lib.fit("demo", "astronaut", anchor=10_000, output=tmp_path / "a.npz")
    with pytest.raises(InputError, match=r"must end in \.npz"):
        lib.fit("demo", "astronaut", output=tmp_path / "a.txt")
    with pytest.raises(InputError, match="bones or global"):
        lib.fit("demo", "astronaut", method="magic")
    assert list(tmp_path.glob("a.*")) == []


def test_risk_flags_on_known_bodies():
    m = performer(T=60, travel=0.0)
    front = identity_pose()
    assert fitting.risk_flags(m, retarget(m, front).motion, front, 0) == []
    # her picture from behind: left and right shoulders change sides
    back = identity_pose()
    back.keypoints[:, 0] = 2 * 256.0 - back.keypoints[:, 0]
    assert [f["flag"] for f in fitting.risk_flags(m, retarget(m, front).motion, back, 0)] == ["view"]
    # the performer filmed 40 degrees rolled
    kp = m.keypoints.copy()
    centre = kp.mean(axis=(0, 1))
    a = np.radians(40)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    rolled = type(m)(SK, (kp - centre) @ rot.T + centre, m.confidence, m.timestamps, 800, 600, m.duration)
    flags = [f["flag"] for f in fitting.risk_flags(rolled, retarget(rolled, front).motion, front, 0)]
    assert "roll" in flags
    # a performer who crosses their frame crosses her picture and leaves it
    walker = performer(T=60, travel=300.0)
    flags = fitting.risk_flags(walker, retarget(walker, front).motion, front, 0)
    assert [f["flag"] for f in flags] == ["leaves_picture"] and flags[0]["weight"] == 0.5


def test_cli_fit_json_and_one_line_errors(lib, tmp_path):
    root = lib.root
    report = invoke_json("fit", "-m", "demo", "-i", "astronaut", "--preview", tmp_path / "p.png", library=root)
    assert report["anchor_frame"] == 0 and (tmp_path / "p.png").exists()
    assert_one_line_error(invoke("fit", "-m", "demo", "-i", "nobody", library=root), "no identity named")
    assert_one_line_error(invoke("fit", "-m", "demo", "-i", "astronaut", "--anchor-frame", "-3", library=root),
                          "--anchor-frame")


def test_render_uses_the_same_fit_and_records_its_flags(lib, tmp_path):
    from motionlib.render.pipeline import RenderJob

    job = RenderJob(motion="demo", identity="astronaut", backend="pose", size="128", anchor_frame=30,
                    output=str(tmp_path / "r.mp4"))
    record = lib.render(job)
    result = record.params["result"]
    fit = lib.fit("demo", "astronaut", anchor=30)
    assert record.params["anchor_frame"] == 30 and result["retarget"]["anchor_frame"] == 30
    assert result["flags"] == fit["flags"] and result["risk"] == fit["risk"]
    assert result["warnings"] == [f["message"] for f in fit["flags"]]
    renders_before = len(lib.renders())
    with pytest.raises(InputError, match="outside demo@1's frames"):
        lib.render(RenderJob(motion="demo", identity="astronaut", anchor_frame=230, output=str(tmp_path / "x.mp4")))
    assert len(lib.renders()) == renders_before and not (tmp_path / "x.mp4").exists()


def test_leaving_the_picture_advice_is_not_circular(lib):
    from motionlib.processing import ops

    travels = lib.fit("demo", "astronaut")
    leave = [f for f in travels["flags"] if f["flag"] == "leaves_picture"]
    assert leave and "in-place" in leave[0]["message"]
    lib.derive("demo", ops.in_place, name="still")
    still = lib.fit("still", "astronaut")
    for f in still["flags"]:
        assert "in-place" not in f["message"], "in-place is no advice for a motion made by in-place"
