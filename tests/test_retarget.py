"""Retargeting on synthetic skeletons of known proportions, and on the real clip."""

from __future__ import annotations

import numpy as np
import pytest

from motionlib.core.motion import Motion
from motionlib.core.skeleton import MEDIAPIPE_HOLISTIC_543, MEDIAPIPE_POSE_33 as SK
from motionlib.render.retarget import IdentityBody, bone_errors, retarget
from tests.test_ops import POSE

BONES = [("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
         ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
         ("right_hip", "right_knee"), ("right_knee", "right_ankle")]


def performer(T=90, travel=40.0):
    """The standing pose with the right forearm circling (constant bone lengths, no foreshortening)."""
    t = np.arange(T) / 30.0
    kp = np.repeat(POSE[None], T, axis=0) + np.array([300.0, 400.0], np.float32)
    kp[:, :, 0] += (travel * t)[:, None]
    re, rw = SK.index("right_elbow"), SK.index("right_wrist")
    forearm = np.linalg.norm(POSE[rw] - POSE[re])
    ang = 2 * np.pi * 0.5 * t
    kp[:, rw] = kp[:, re] + forearm * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    for j in (SK.index("right_pinky"), SK.index("right_index"), SK.index("right_thumb")):
        kp[:, j] = kp[:, rw] + (POSE[j] - POSE[16])
    conf = np.full((T, 33), 0.95, np.float32)
    return Motion(SK, kp.astype(np.float32), conf, t, 800, 600, T / 30.0).validate()


def identity_pose(arm=1.5, leg=0.8, scale=2.0, at=(256.0, 300.0), W=512, H=700):
    """A person with longer arms and shorter legs than the performer, placed at ``at`` (hips)."""
    p = POSE.astype(np.float64).copy()
    names = SK.joint_names
    idx = {n: i for i, n in enumerate(names)}
    for side in ("left", "right"):
        s, e, w = idx[f"{side}_shoulder"], idx[f"{side}_elbow"], idx[f"{side}_wrist"]
        old_e, old_w = p[e].copy(), p[w].copy()
        p[e] = p[s] + arm * (old_e - p[s])
        p[w] = p[e] + arm * (old_w - old_e)
        for f in ("pinky", "index", "thumb"):
            p[idx[f"{side}_{f}"]] += p[w] - old_w
        h, k, a = idx[f"{side}_hip"], idx[f"{side}_knee"], idx[f"{side}_ankle"]
        old_k, old_a = p[k].copy(), p[a].copy()
        p[k] = p[h] + leg * (old_k - p[h])
        p[a] = p[k] + leg * (old_a - old_k)
        for f in ("heel", "foot_index"):
            p[idx[f"{side}_{f}"]] += p[a] - old_a
    hips = (p[idx["left_hip"]] + p[idx["right_hip"]]) / 2
    p = (p - hips) * scale + np.array(at)
    return IdentityBody(p.astype(np.float32), np.full(33, 0.99, np.float32), W, H)


def _length(m, a, b):
    return np.linalg.norm(m.keypoints[:, SK.index(b)] - m.keypoints[:, SK.index(a)], axis=1)


def _angle(kp, a, b):
    d = kp[:, SK.index(b)] - kp[:, SK.index(a)]
    return np.arctan2(d[:, 1], d[:, 0])


def test_bones_give_identity_lengths_and_performer_angles():
    m = performer()
    ident = identity_pose()
    r = retarget(m, ident, "bones")
    out = r.motion
    assert (out.width, out.height) == (512, 700)
    for a, b in BONES:
        want = np.linalg.norm(ident.keypoints[SK.index(b)] - ident.keypoints[SK.index(a)])
        np.testing.assert_allclose(_length(out, a, b), want, rtol=1e-4, err_msg=f"{a}-{b}")
        np.testing.assert_allclose(_angle(out.keypoints, a, b), _angle(m.keypoints, a, b), atol=1e-4, err_msg=f"{a}-{b}")
    assert r.report["bone_length_error"] < 1e-4 and r.report["bone_length_error_per_frame"] < 1e-4
    assert r.report["bones_by_scale"] == [] and r.report["anchor_frame"] == 0
    # anchored: frame 0's hip centre on the identity's hips; the travel scaled by the body's scale
    hips = (out.keypoints[:, SK.index("left_hip")] + out.keypoints[:, SK.index("right_hip")]) / 2
    np.testing.assert_allclose(hips[0], [256.0, 300.0], atol=1e-3)
    travel = np.ptp(hips[:, 0])
    np.testing.assert_allclose(travel, 40.0 * (89 / 30) * r.report["scale"], rtol=1e-3)
    assert r.report["scale"] == pytest.approx(2.0)


def test_half_body_identity_legs_take_the_body_scale():
    m = performer()
    ident = identity_pose()
    for n in ("left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
              "left_foot_index", "right_foot_index"):
        ident.confidence[SK.index(n)] = 0.1
    r = retarget(m, ident, "bones")
    assert "left_hip-left_knee" in r.report["bones_by_scale"]
    np.testing.assert_allclose(_length(r.motion, "left_hip", "left_knee"),
                               r.report["scale"] * _length(m, "left_hip", "left_knee"), rtol=1e-4)


def test_a_portrait_is_anchored_at_the_neck_never_on_guessed_hips():
    """Hips below the picture (guessed, low confidence): frame k's neck and head sit on hers."""
    m = performer()
    ident = identity_pose(at=(256.0, 650.0), H=600)  # hips 50 px below a 600-px picture
    for n in ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
              "left_heel", "right_heel", "left_foot_index", "right_foot_index"):
        ident.confidence[SK.index(n)] = 0.25
    r = retarget(m, ident, "bones", anchor=20)
    assert r.report["anchored_at"] == "neck" and r.report["anchor_frame"] == 20
    kp, ik = r.motion.keypoints, ident.keypoints
    neck = (kp[20, SK.index("left_shoulder")] + kp[20, SK.index("right_shoulder")]) / 2
    np.testing.assert_allclose(neck, (ik[SK.index("left_shoulder")] + ik[SK.index("right_shoulder")]) / 2, atol=1e-3)
    for n in ("nose", "left_ear", "right_ear", "left_shoulder", "right_shoulder"):
        np.testing.assert_allclose(kp[20, SK.index(n)], ik[SK.index(n)], atol=1e-2, err_msg=n)


def test_the_anchor_frame_takes_the_identity_torso_and_head_the_limbs_stay_the_performers():
    """An identity leaning 20 degrees: at the anchor frame torso and head lie along hers; the arm
    keeps the performer's angle; a bad --anchor-frame is one clear error."""
    m = performer()
    ident = identity_pose()
    hips = (ident.keypoints[SK.index("left_hip")] + ident.keypoints[SK.index("right_hip")]) / 2
    a = np.radians(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    ident.keypoints[:] = (ident.keypoints - hips) @ rot.T + hips
    r = retarget(m, ident, "bones")
    kp, ik = r.motion.keypoints, ident.keypoints
    for n in ("left_shoulder", "right_shoulder", "nose", "left_eye", "right_ear", "left_hip", "right_hip"):
        np.testing.assert_allclose(kp[0, SK.index(n)], ik[SK.index(n)], atol=1e-2, err_msg=n)
    np.testing.assert_allclose(_angle(kp, "right_elbow", "right_wrist"), _angle(m.keypoints, "right_elbow", "right_wrist"),
                               atol=1e-4)
    with pytest.raises(Exception, match="outside the motion's frames"):
        retarget(m, ident, "bones", anchor=500)


def test_global_recovers_scale_and_offset():
    m = performer(travel=0.0)
    median = np.median(m.keypoints, axis=0)
    ident = IdentityBody((median * 1.7 + np.array([-100.0, 50.0])).astype(np.float32),
                         np.full(33, 0.99, np.float32), 1200, 1200)
    r = retarget(m, ident, "global")
    assert r.report["scale"] == pytest.approx(1.7, rel=1e-4)
    np.testing.assert_allclose(r.report["offset"], [-100.0, 50.0], atol=0.05)
    np.testing.assert_allclose(r.motion.keypoints, m.keypoints * 1.7 + np.array([-100.0, 50.0]), atol=1e-2)


def test_hands_are_rerooted_at_the_wrists():
    body = performer()
    T = body.frames
    kp = np.full((T, 543, 2), np.nan, np.float32)
    kp[:, :33] = body.keypoints
    rng = np.random.default_rng(0)
    shape = rng.normal(0, 6, (21, 2)).astype(np.float32)
    shape[0] = 0
    for side, wrist, base in (("left", 15, 33), ("right", 16, 54)):
        kp[:, base:base + 21] = body.keypoints[:, [wrist]] + shape + 2.0  # hand wrist 2 px off the body wrist
    conf = np.zeros((T, 543), np.float32)
    conf[:, :75] = 0.95
    m = Motion(MEDIAPIPE_HOLISTIC_543, kp, conf, body.timestamps, 800, 600, body.duration).validate()
    r = retarget(m, identity_pose(), "bones")
    out = r.motion.keypoints
    np.testing.assert_allclose(out[:, 54], out[:, 16], atol=1e-3)  # right hand wrist on the body wrist
    forearm_ratio = 1.5 * 2.0  # identity forearm / performer forearm
    np.testing.assert_allclose(out[:, 55:75] - out[:, [54]], forearm_ratio * (kp[:, 55:75] - kp[:, [54]]), atol=1e-2)


def test_unknown_method():
    with pytest.raises(Exception, match="bones or global"):
        retarget(performer(), identity_pose(), "magic")


def test_sample_clip_onto_the_astronaut(demo_library, tmp_path, sample):
    """The closing note's figure: bone-length error of `bones` on the real clip."""
    import shutil

    from motionlib.library import Library
    from tests.conftest import ROOT

    root = tmp_path / "lib"
    shutil.copytree(demo_library[0], root)
    lib = Library(root)
    rec = lib.add_identity(ROOT / "assets" / "samples" / "astronaut.png", name="astronaut")
    assert rec.body == "upper" and (rec.width, rec.height) == (512, 512)
    ident = IdentityBody.from_record(rec)
    m = lib.load("demo")
    r = retarget(m, ident, "bones")
    print(f"\nbones on the sample: {r.report}")
    # the figures: at the anchor frame, neck, nose and head width against hers
    k, kp, ik = r.report["anchor_frame"], r.motion.keypoints, ident.keypoints
    assert r.report["anchored_at"] == "neck", "her hips are guessed below the picture"
    idx = SK.index
    shoulders = np.linalg.norm(ik[idx("left_shoulder")] - ik[idx("right_shoulder")])
    ears = np.linalg.norm(ik[idx("left_ear")] - ik[idx("right_ear")])
    neck = (kp[k, idx("left_shoulder")] + kp[k, idx("right_shoulder")]) / 2
    assert np.linalg.norm(neck - (ik[idx("left_shoulder")] + ik[idx("right_shoulder")]) / 2) <= 0.1 * shoulders
    assert np.linalg.norm(kp[k, idx("nose")] - ik[idx("nose")]) <= 0.25 * ears
    assert abs(np.linalg.norm(kp[k, idx("left_ear")] - kp[k, idx("right_ear")]) / ears - 1) <= 0.25
    again = bone_errors(r.motion, ident)
    assert again["bone_length_error"] == pytest.approx(r.report["bone_length_error"], abs=1e-6)
    g = retarget(m, ident, "global")
    assert g.report["joints_fitted"] >= 6
    # the global fit keeps the performer's proportions, so its bones miss the identity's by more
    assert bone_errors(g.motion, ident)["bone_length_error"] > r.report["bone_length_error"]


def test_bone_lengths_hold_steady_but_keep_slow_foreshortening():
    """Estimator noise on a bone's length goes; a slow real shortening stays; the anchor frame
    keeps its length."""
    m = performer(T=90, travel=0.0)
    kp = m.keypoints.copy()
    re, rw = SK.index("right_elbow"), SK.index("right_wrist")
    rng = np.random.default_rng(1)
    slow = 1.0 - 0.3 * np.sin(np.linspace(0, np.pi, 90))  # the forearm turns towards the camera and back
    noise = 1.0 + rng.normal(0, 0.08, 90)
    kp[:, rw] = kp[:, re] + (kp[:, rw] - kp[:, re]) * (slow * noise)[:, None]
    noisy = type(m)(SK, kp, m.confidence, m.timestamps, m.width, m.height, m.duration)
    r = retarget(noisy, identity_pose(), "bones", anchor=10).motion
    got = _length(r, "right_elbow", "right_wrist")
    raw = np.linalg.norm(kp[:, rw] - kp[:, re], axis=1)
    want = np.linalg.norm(identity_pose().keypoints[rw] - identity_pose().keypoints[re])
    ratio = want / raw[10]
    assert got[10] == pytest.approx(ratio * raw[10], rel=1e-4), "the anchor frame keeps its length"
    jumps = np.abs(np.diff(got)) / np.median(got)
    assert np.percentile(jumps, 90) < 0.4 * np.percentile(np.abs(np.diff(raw)) / np.median(raw), 90)
    assert got[45] < 0.85 * got[0], "the slow foreshortening stays"
