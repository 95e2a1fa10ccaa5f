"""Pose maps: the OpenPose/ControlNet drawing convention, golden images, and the joint mapping."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from motionlib.core.motion import Motion
from motionlib.core.openpose import FACE_MESH_TO_68, OpenPoseFrames, to_openpose
from motionlib.core.skeleton import MEDIAPIPE_HOLISTIC_543, MEDIAPIPE_POSE_33, OPENPOSE_18_LIMBS, OPENPOSE_18_NAMES
from motionlib.render import posemap

GOLDEN = Path(__file__).parent / "golden"

# A standing figure on a 128x128 canvas: body 18 in OpenPose order.
BODY = np.array([
    [64, 20], [64, 34], [50, 34], [42, 52], [38, 70], [78, 34], [86, 52], [90, 70],
    [56, 70], [55, 92], [54, 116], [72, 70], [73, 92], [74, 116], [60, 17], [68, 17], [55, 19], [73, 19],
], np.float32)


def figure(conf_override: dict | None = None, hands=True, face=True) -> OpenPoseFrames:
    conf = np.ones(18, np.float32)
    for j, c in (conf_override or {}).items():
        conf[j] = c
    hand = None
    hand_c = None
    if hands:
        base = np.stack([
            np.array([[0, 0], [-2, 2], [-4, 4], [-5, 6], [-6, 8], [-1, 4], [-1, 7], [-1, 9], [-1, 11],
                      [1, 4], [1, 7], [1, 10], [1, 12], [3, 4], [3, 7], [3, 9], [3, 11],
                      [5, 3], [5, 6], [5, 8], [5, 9]], np.float32)
        ])
        hand = np.stack([BODY[7] + base[0], BODY[4] + base[0]])[None]  # left at left wrist
        hand_c = np.ones((1, 2, 21), np.float32)
    f = None
    f_c = None
    if face:
        ang = np.linspace(0, 2 * np.pi, 70, endpoint=False)
        f = (np.stack([64 + 6 * np.cos(ang), 20 + 7 * np.sin(ang)], axis=1)).astype(np.float32)[None]
        f_c = np.ones((1, 70), np.float32)
    return OpenPoseFrames(BODY[None].copy(), conf[None], hand, hand_c, f, f_c)


def _golden(name: str, image: np.ndarray) -> None:
    import cv2

    path = GOLDEN / name
    if os.environ.get("MOTIONLIB_UPDATE_GOLDEN") or not path.exists():
        if not os.environ.get("MOTIONLIB_UPDATE_GOLDEN"):
            pytest.fail(f"golden image {path} missing (set MOTIONLIB_UPDATE_GOLDEN=1 to write it)")
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    want = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert want.shape == image.shape
    differ = (np.abs(want.astype(int) - image.astype(int)).max(axis=2) > 16).mean()
    assert differ <= 0.002, f"{name}: {differ:.2%} of pixels differ from the golden image"


def test_golden_body_hands_face():
    img = posemap.draw(figure(), 128, 128)
    _golden("figure_128.png", img)


def test_golden_body_only_scaled_up():
    # the same figure placed into a 512x384 output: strokes scale with the output
    place = posemap.Placement.fit(128, 128, 512, 384)
    img = posemap.draw(figure(hands=False, face=False), 512, 384, placement=place)
    _golden("figure_body_512x384.png", img)


def test_drawing_follows_the_openpose_convention():
    img = posemap.draw(figure(hands=False, face=False), 128, 128)
    assert img.dtype == np.uint8 and img.shape == (128, 128, 3)
    assert (img[0, 0] == 0).all() and (img[127, 127] == 0).all(), "background must be black"
    stick = posemap.stick_width(128, 128)
    for i, (a, b) in enumerate(OPENPOSE_18_LIMBS):
        pa, pb = BODY[a], BODY[b]
        if np.linalg.norm(pa - pb) < 4 * stick + 2:
            continue  # too short: the joint circles cover the middle
        mid = ((pa + pb) / 2).astype(int)
        want = [int(c * 0.6) for c in posemap.LIMB_COLOURS[i]]
        got = img[mid[1], mid[0]].tolist()
        # limbs drawn later may cross earlier ones at the hips; everything else must match exactly
        assert got == want, f"limb {OPENPOSE_18_NAMES[a]}-{OPENPOSE_18_NAMES[b]} is {got}, want {want}"
    for j in range(18):
        x, y = BODY[j].astype(int)
        assert img[y, x].tolist() == list(posemap.LIMB_COLOURS[j]), f"joint {OPENPOSE_18_NAMES[j]}"


def test_low_confidence_joints_and_their_limbs_are_not_drawn():
    full = posemap.draw(figure(hands=False, face=False), 128, 128)
    img = posemap.draw(figure({4: 0.1}, hands=False, face=False), 128, 128, threshold=0.3)
    x, y = BODY[4].astype(int)
    assert (img[y, x] == 0).all() and (full[y, x] != 0).any()
    mid = ((BODY[3] + BODY[4]) / 2).astype(int)  # right elbow -> right wrist
    assert (img[mid[1], mid[0]] == 0).all()
    # lowering the threshold draws it again
    again = posemap.draw(figure({4: 0.1}, hands=False, face=False), 128, 128, threshold=0.05)
    assert (again == full).all()


def test_hands_and_face_colours():
    img = posemap.draw(figure(), 128, 128)
    tip = figure().hands[0, 0, 8].astype(int)  # left index tip, drawn last as a blue point
    assert img[tip[1], tip[0]].tolist() == list(posemap.HAND_POINT)
    fp = figure().face[0, 0].astype(int)
    assert img[fp[1], fp[0]].tolist() == list(posemap.FACE_POINT)
    no_hands = posemap.draw(figure(), 128, 128, hands=False, face=False)
    assert (no_hands[tip[1], tip[0]] != img[tip[1], tip[0]]).any()


def test_output_size_parsing():
    assert posemap.output_size(1768, 994, None) == (512, 288)
    assert posemap.output_size(1768, 994, "768") == (768, 432)
    assert posemap.output_size(1768, 994, "512x768") == (512, 768)
    for bad in ("big", "0x10", "99999x10", "8"):
        with pytest.raises(Exception, match="size"):
            posemap.output_size(1768, 994, bad)


def _motion(skeleton, T=3, seed=0):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(10, 90, (T, skeleton.num_joints, 2)).astype(np.float32)
    conf = rng.uniform(0.5, 1.0, (T, skeleton.num_joints)).astype(np.float32)
    return Motion(skeleton, kp, conf, np.arange(T) / 30.0, 100, 100, T / 30.0)


def test_mediapipe_to_openpose_mapping_by_name():
    m = _motion(MEDIAPIPE_POSE_33)
    op = to_openpose(m)
    assert op.hands is None and op.face is None
    for k, name in enumerate(OPENPOSE_18_NAMES):
        if name == "neck":
            mid = (m.keypoints[:, 11] + m.keypoints[:, 12]) / 2
            np.testing.assert_allclose(op.body[:, 1], mid)
            np.testing.assert_allclose(op.body_conf[:, 1], np.minimum(m.confidence[:, 11], m.confidence[:, 12]))
        else:
            np.testing.assert_array_equal(op.body[:, k], m.keypoints[:, MEDIAPIPE_POSE_33.index(name)])
    # OpenPose's right shoulder (index 2) is MediaPipe's right shoulder (index 12)
    np.testing.assert_array_equal(op.body[:, 2], m.keypoints[:, 12])


def test_holistic_hands_and_face_mapping():
    m = _motion(MEDIAPIPE_HOLISTIC_543)
    op = to_openpose(m)
    np.testing.assert_array_equal(op.hands[:, 0], m.keypoints[:, 33:54])  # left hand block
    np.testing.assert_array_equal(op.hands[:, 1], m.keypoints[:, 54:75])
    assert len(FACE_MESH_TO_68) == 68 and len(set(FACE_MESH_TO_68)) == 68
    np.testing.assert_array_equal(op.face[:, :68], m.keypoints[:, [75 + i for i in FACE_MESH_TO_68]])
    np.testing.assert_allclose(op.face[:, 68], m.keypoints[:, [75 + FACE_MESH_TO_68[i] for i in range(36, 42)]].mean(axis=1), rtol=1e-5)


def test_pose_maps_of_the_real_clip_draw_the_performer(demo_library):
    """Every frame where the performer was found shows coloured strokes around its keypoints."""
    from motionlib.library import Library

    lib = Library(demo_library[0])
    m = lib.load("demo")
    op = to_openpose(m)
    w, h = posemap.output_size(m.width, m.height, 512)
    place = posemap.Placement.fit(m.width, m.height, w, h)
    drawn = 0
    for t, img in enumerate(posemap.pose_maps(m, w, h)):
        ok = op.body_conf[t] >= posemap.DEFAULT_THRESHOLD
        lit = img.max(axis=2) > 0
        if not ok.any():
            assert not lit.any(), f"frame {t}: nothing confident, yet something was drawn"
            continue
        drawn += 1
        ys, xs = np.nonzero(lit)
        pts = place.apply(op.body[t][ok])
        # the strokes' bounding box matches the confident keypoints' (within the stroke width)
        assert abs(xs.min() - pts[:, 0].min()) <= 4 and abs(xs.max() - pts[:, 0].max()) <= 4, t
        assert abs(ys.min() - pts[:, 1].min()) <= 4 and abs(ys.max() - pts[:, 1].max()) <= 4, t
    assert drawn >= 150


def test_wan_style_draws_a_toe_on_each_foot_and_the_backends_pick_their_style(demo_library):
    """Wan-Animate's pose video has a limb from each ankle to the big-toe tip, in its colours;
    ControlNet's OpenPose maps have none. Each backend declares the style it was trained on."""
    from motionlib.core.openpose import to_openpose
    from motionlib.library import Library
    from motionlib.render import posemap
    from motionlib.render.backends import get_backend

    with Library(demo_library[0]) as lib:
        m = lib.load("demo")
    t = 60
    op = to_openpose(m).frame(t)
    assert op.toes is not None and (op.toes_conf[0] > 0.3).all()
    place = posemap.Placement.fit(m.width, m.height, 884, 497)
    plain = posemap.draw(op, 884, 497, placement=place)
    wan = posemap.draw(op, 884, 497, placement=place, style="wan")
    changed = np.abs(wan.astype(int) - plain.astype(int)).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    toes = place.apply(op.toes[0])
    assert changed.sum() > 20
    # every changed pixel lies near a foot (ankle to toe), none elsewhere
    ankles = place.apply(op.body[0][[posemap.LEFT_ANKLE, posemap.RIGHT_ANKLE]])
    near = np.min([np.hypot(xs - p[0], ys - p[1]) for p in np.concatenate([toes, ankles])], axis=0)
    assert near.max() < 0.5 * np.linalg.norm(toes[0] - ankles[0]) + 10
    colours = {tuple(c) for c in wan[changed]}
    assert tuple(posemap.TOE_COLOURS[0]) in colours or tuple(posemap.TOE_COLOURS[1]) in colours
    assert get_backend("wan-animate").pose_style == "wan"
    assert {get_backend(b).pose_style for b in ("pose", "controlnet", "animatediff")} == {"openpose"}
    with pytest.raises(ValueError, match="style"):
        posemap.draw(op, 64, 64, style="dwpose")
