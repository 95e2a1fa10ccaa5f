"""The ONNX whole-body estimators (``--estimator rtmw|dwpose``) and the COCO-WholeBody 133-point
layout they store.

No wheel ships the real DWPose / RTMW weights, so the estimators run tiny ONNX models the tests
build with the real signatures (tests/tiny_models.py: DWPose's YOLOX before NMS and its 384x288
SimCC pose model; rtmlib's end-to-end detector and RTMW pose model inside ONNX SDK zips): the
plumbing, the errors and determinism are tested, not the real models' accuracy. Everything after
the estimator (cleaning, quality, pose maps, fitting, exports) is also tested on a synthetic
133-point motion of known shape."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from motionlib.core import weights
from motionlib.core.errors import EstimatorError, InputError
from motionlib.core.motion import Motion
from motionlib.core.openpose import from_openpose, to_openpose
from motionlib.core.skeleton import COCO_WHOLEBODY_133 as WB, MEDIAPIPE_POSE_33 as SK, get_skeleton
from tests.conftest import assert_one_line_error, invoke, invoke_json, read_frames, schema_validator

# --- a synthetic 133-point motion: the retarget tests' performer, its points renamed ---------------


def wholebody_from(body: Motion) -> Motion:
    """A MediaPipe-33 motion as COCO-WholeBody: the shared joints by name; big toes from the foot
    index, small toes beside them; a face of 68 points round the nose; 21-point hands hanging
    from the wrists (the body's own wrist points as the hands' wrists)."""
    T = body.frames
    kp = np.full((T, 133, 2), np.nan, np.float32)
    conf = np.zeros((T, 133), np.float32)
    for j, name in enumerate(WB.joint_names):
        src = SK.find(name) if SK.find(name) is not None else SK.find(name.replace("big_toe", "foot_index"))
        if src is not None:
            kp[:, j], conf[:, j] = body.keypoints[:, src], body.confidence[:, src]
    for side in ("left", "right"):
        small, big = WB.index(f"{side}_small_toe"), WB.index(f"{side}_big_toe")
        kp[:, small] = kp[:, big] + np.array([6.0 if side == "left" else -6.0, -2.0], np.float32)
        conf[:, small] = 0.9
        wrist = body.keypoints[:, SK.index(f"{side}_wrist")]
        block = list(WB.block(f"{side}_hand_"))
        shape = np.array([[0.0, 0.0]] + [[3.0 * (f - 2), 6.0 * (j + 1)] for f in range(5) for j in range(4)], np.float32)
        kp[:, block] = wrist[:, None] + shape
        conf[:, block] = 0.8
    nose = body.keypoints[:, SK.index("nose")]
    a = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    ring = np.stack([14 * np.cos(a), 18 * np.sin(a)], axis=1).astype(np.float32)
    face = list(WB.block("face68_"))
    kp[:, face] = nose[:, None] + ring
    conf[:, face] = 0.85
    return Motion(WB, kp, conf, body.timestamps, body.width, body.height, body.duration).validate()


@pytest.fixture
def synthetic():
    from tests.test_retarget import performer

    return wholebody_from(performer())


def test_the_layout_names_every_point_once_and_pairs_left_with_right():
    assert get_skeleton("coco_wholebody_133") is WB and WB.num_joints == 133
    assert len(set(WB.joint_names)) == 133
    assert WB.joint_names[:17] == ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                                   "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                                   "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
    assert WB.index("left_big_toe") == 17 and WB.index("right_heel") == 22
    assert WB.block("face68_") == tuple(range(23, 91))
    assert WB.block("left_hand_") == tuple(range(91, 112)) and WB.block("right_hand_") == tuple(range(112, 133))
    assert WB.body == tuple(range(23)) and len(WB.core) == 13
    assert set(WB.groups) == {"face", "shoulders", "elbows", "wrists", "hips", "knees", "ankles", "feet"}
    used = [j for p in WB.mirror_pairs for j in p]
    assert len(used) == len(set(used))  # a point has at most one counterpart
    for a, b in WB.mirror_pairs:
        na, nb = WB.joint_names[a], WB.joint_names[b]
        assert (na.replace("left_", "right_") == nb) or (na.startswith("face68_") and nb.startswith("face68_"))
    face_pairs = {(WB.joint_names[a], WB.joint_names[b]) for a, b in WB.mirror_pairs if a in WB.block("face68_")}
    assert ("face68_16", "face68_00") in face_pairs and ("face68_45", "face68_36") in face_pairs  # jaw, eye corners
    assert len(face_pairs) == 29  # 68 points, 10 on the middle line
    assert all(0 <= a < 133 and 0 <= b < 133 and a != b for a, b in WB.edges)


def test_openpose_points_of_the_133_layout(synthetic):
    m = synthetic
    op = to_openpose(m)
    kp = m.keypoints
    ls, rs = WB.index("left_shoulder"), WB.index("right_shoulder")
    np.testing.assert_allclose(op.body[:, 1], (kp[:, ls] + kp[:, rs]) / 2)  # the neck
    for k, name in enumerate(("nose", "neck", "right_shoulder")):
        if name != "neck":
            np.testing.assert_array_equal(op.body[:, k], kp[:, WB.index(name)])
    np.testing.assert_array_equal(op.hands[:, 0], kp[:, 91:112])
    np.testing.assert_array_equal(op.hands[:, 1], kp[:, 112:133])
    np.testing.assert_array_equal(op.face[:, :68], kp[:, 23:91])
    np.testing.assert_allclose(op.face[:, 68], kp[:, 23 + 36:23 + 42].mean(axis=1), rtol=1e-6)  # right pupil
    np.testing.assert_array_equal(op.toes[:, 0], kp[:, WB.index("left_big_toe")])
    sk, back, conf = from_openpose(op)
    assert sk.name == "openpose_130" and back.shape == (m.frames, 130, 2) and np.isfinite(back).all()
    from motionlib.render import posemap

    full = posemap.draw(op.frame(0), m.width, m.height)
    body = posemap.draw(op.frame(0), m.width, m.height, hands=False, face=False)
    assert (body.any(axis=2)).sum() > 1000  # limbs drawn
    hand_px = full.any(axis=2) & ~body.any(axis=2)
    wrist = kp[0, WB.index("left_hand_wrist")].astype(int)
    assert hand_px[wrist[1]:wrist[1] + 30, wrist[0] - 10:wrist[0] + 10].any()  # the left hand, at its wrist
    nose = kp[0, WB.index("nose")].astype(int)
    assert (full[nose[1] - 20:nose[1] + 20, nose[0] - 16:nose[0] + 16] == 255).all(axis=2).any()  # white face points
    wan = posemap.draw(op.frame(0), m.width, m.height, style="wan")
    toe = op.toes[0, 0].astype(int)
    assert wan[toe[1] - 3:toe[1] + 4, toe[0] - 3:toe[0] + 4].any()  # Wan's toe from the big toe


def test_cleaning_repairs_a_left_right_swap_of_the_whole_body(synthetic):
    from motionlib.processing.cleaning import clean

    m = synthetic
    kp, conf = m.keypoints.copy(), m.confidence.copy()
    frames = np.arange(40, 46)
    a = np.array([p[0] for p in WB.mirror_pairs])
    b = np.array([p[1] for p in WB.mirror_pairs])
    kp[np.ix_(frames, a)], kp[np.ix_(frames, b)] = m.keypoints[np.ix_(frames, b)], m.keypoints[np.ix_(frames, a)]
    out = clean(kp, conf, m.timestamps, m.duration, WB)
    assert [(s["part"], s["start_frame"], s["end_frame"]) for s in out.report.swaps] == [("body", 40, 46)]
    np.testing.assert_array_equal(out.keypoints, m.keypoints)  # face and hands swapped back along
    assert out.report.rejected == [] and out.report.people == 1


def test_quality_scores_the_body_and_warns_about_blocks(synthetic):
    from motionlib.processing.quality import assess_motion

    q = assess_motion(synthetic)
    assert q.overall is not None and all(0 <= s <= 1 for s in q.scores.values() if s is not None)
    assert q.scores["occlusion"] == 1.0  # every body point confidently inside the frame
    assert len(q.details["occlusion"]["visible_per_joint"]) == 23  # body and feet; hands, face unscored
    m = synthetic
    conf = m.confidence.copy()
    conf[10:, 91:112] = 0.0  # the left hand lost after frame 10
    q = assess_motion(Motion(WB, m.keypoints, conf, m.timestamps, m.width, m.height, m.duration))
    assert any(w.startswith("left hand found in only 10 of 90 frames") for w in q.warnings), q.warnings


def test_fitting_matches_the_33_point_fit_on_the_shared_joints(synthetic):
    from tests.test_retarget import identity_pose, performer

    from motionlib.render.retarget import retarget

    body = performer()
    ident = identity_pose()
    mine, theirs = retarget(synthetic, ident, "bones"), retarget(body, ident, "bones")
    for name in ("nose", "left_eye", "left_shoulder", "right_elbow", "right_wrist", "left_hip", "left_knee",
                 "right_ankle", "left_heel"):
        np.testing.assert_allclose(mine.motion.keypoints[:, WB.index(name)],
                                   theirs.motion.keypoints[:, SK.index(name)], atol=1e-3, err_msg=name)
    assert mine.report["scale"] == theirs.report["scale"] and mine.report["bone_length_error"] < 0.05
    fit = retarget(synthetic, ident, "global")  # one scale over the joints both have: body 17, heels
    assert fit.report["joints_fitted"] == 19 and fit.report["scale"] == pytest.approx(2.0, rel=0.2)
    out = mine.motion.keypoints
    for side in ("left", "right"):  # hands re-rooted at the fitted wrists
        np.testing.assert_allclose(out[:, WB.index(f"{side}_hand_wrist")], out[:, WB.index(f"{side}_wrist")], atol=1e-3)
    assert np.isfinite(out[:, WB.index("left_big_toe")]).all() and np.isfinite(out[:, 23:91]).all()


def test_mirror_exchanges_face_points_too(synthetic):
    from motionlib.processing import ops

    m = ops.mirror(synthetic).motion
    x = lambda mo, n: mo.keypoints[0, WB.index(n), 0]  # noqa: E731
    assert x(m, "face68_00") == pytest.approx(synthetic.width - x(synthetic, "face68_16"), abs=1e-3)
    assert x(m, "left_hand_thumb_tip") == pytest.approx(synthetic.width - x(synthetic, "right_hand_thumb_tip"), abs=1e-3)


def test_exports_of_a_133_point_motion(synthetic, tmp_path):
    from motionlib import exchange

    m = synthetic
    exchange.write(m, "npz", tmp_path / "m.npz", stem="m")
    back = exchange.read(tmp_path / "m.npz", "npz").motion
    assert back.skeleton is WB
    np.testing.assert_array_equal(back.keypoints, m.keypoints)
    exchange.write(m, "csv", tmp_path / "m.csv", stem="m")
    header = (tmp_path / "m.csv").read_text().splitlines()[0]
    assert "face68_67" in header and "right_hand_pinky_tip" in header
    exchange.write(m, "openpose-json", tmp_path / "op", stem="m")
    first = json.loads(sorted((tmp_path / "op").iterdir())[0].read_text())["people"][0]
    assert len(first["pose_keypoints_2d"]) == 18 * 3 and len(first["face_keypoints_2d"]) == 70 * 3
    assert len(first["hand_left_keypoints_2d"]) == 21 * 3


def test_the_tracker_reads_the_body_of_any_layout(synthetic):
    from motionlib.ingest.estimators.base import PoseResult
    from motionlib.ingest.tracker import MEDIAPIPE_BODY, BodyIndex, agree, body_box, body_look
    from tests.test_retarget import performer

    assert (MEDIAPIPE_BODY.shoulders, MEDIAPIPE_BODY.hips, MEDIAPIPE_BODY.knees) == ((11, 12), (23, 24), (25, 26))
    index = BodyIndex.of(WB)
    assert (index.shoulders, index.hips, index.knees, index.body) == ((5, 6), (11, 12), (13, 14), tuple(range(23)))
    body = performer()
    size = np.array([body.width, body.height], np.float32)
    image = np.random.default_rng(0).integers(0, 255, (body.height, body.width, 3), dtype=np.uint8)
    xy33, xy133 = body.keypoints[0] / size, synthetic.keypoints[0] / size
    np.testing.assert_array_equal(body_look(image, xy33), body_look(image, xy133, index))
    box33, box133 = body_box(xy33, image.shape), body_box(xy133, image.shape, index)
    assert abs(np.array(box33) - np.array(box133)).max() <= 25  # 33 has hand and face points beyond COCO's body
    a = PoseResult(xy133, synthetic.confidence[0])
    b = PoseResult(synthetic.keypoints[40] / size, synthetic.confidence[40])
    assert agree(a, a, 800 / 600, index) and not agree(a, PoseResult(xy133 + 0.2, a.confidence), 800 / 600, index)
    assert agree(a, b, 800 / 600, index) == agree(PoseResult(xy33, body.confidence[0]),
                                                 PoseResult(body.keypoints[40] / size, body.confidence[40]), 800 / 600)


# --- where the weights are ---------------------------------------------------------------------


def test_defaults_and_fetch_commands():
    refs = weights.defaults("dwpose")
    assert refs["pose"].label == "yzd-v/DWPose (dw-ll_ucoco_384.onnx)"
    assert weights.fetch_hint(refs["detector"]) == "`hf download yzd-v/DWPose yolox_l.onnx`"
    rtmw = weights.defaults("rtmw")["pose"]
    assert weights.fetch_hint(rtmw) == ("`hf download Tau-J/RTMPose "
                                        "rtmw/onnx_sdk/rtmw-dw-x-l_simcc-cocktail14_270e-384x288_20231122.zip`")


def test_weights_in_the_hugging_face_cache_and_in_zips(tmp_path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--Tau-J--RTMPose"
    inside = repo / "snapshots" / commit / "rtmw" / "onnx_sdk"
    inside.mkdir(parents=True)
    with zipfile.ZipFile(inside / "rtmw-dw-x-l_simcc-cocktail14_270e-384x288_20231122.zip", "w") as z:
        z.writestr("rtmw-dw-x-l/end2end.onnx", b"not really")
        z.writestr("rtmw-dw-x-l/pipeline.json", "{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv(weights.CONFIG_ENV, "")
    found = weights.locate(weights.defaults("rtmw")["pose"])
    assert found.present and found.path == inside / "rtmw-dw-x-l_simcc-cocktail14_270e-384x288_20231122.zip"
    assert weights.zip_member(found.path) == "rtmw-dw-x-l/end2end.onnx"
    missing = weights.locate(weights.defaults("rtmw")["detector"])
    assert not missing.present and "not in the local Hugging Face cache" in missing.problem
    message = weights.missing_message(missing)
    assert "\n" not in message and "hf download Tau-J/RTMPose rtmposev1/onnx_sdk/" in message
    # a zip without a model, a file that is no model
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", "x")
    assert weights.locate(weights.WeightRef("rtmw", "pose", str(empty))).problem == "empty.zip holds no .onnx model"
    (tmp_path / "w.pth").write_bytes(b"x")
    assert "is not an ONNX model" in weights.locate(weights.WeightRef("rtmw", "pose", str(tmp_path / "w.pth"))).problem


def test_the_models_config_names_estimator_files_beside_the_diffusion_models(tmp_path):
    from motionlib.render import models as registry

    folder = tmp_path / "dwpose"
    folder.mkdir()
    cfg = tmp_path / "models.toml"
    cfg.write_text(f'[controlnet]\nbase = "/x/sd15"\n\n[dwpose]\ndetector = "{folder}"\n'
                   f'pose = {{ id = "me/mirror", revision = "v2" }}\n\n[rtmw]\npose = "{tmp_path / "p.onnx"}"\n')
    refs, source = weights.load("dwpose", cfg)
    assert source == str(cfg)
    assert refs["detector"] == weights.WeightRef("dwpose", "detector", str(folder), None, "yolox_l.onnx")
    assert refs["pose"].file == "dw-ll_ucoco_384.onnx" and refs["pose"].revision == "v2"
    assert weights.fetch_hint(refs["pose"]) == "`hf download me/mirror dw-ll_ucoco_384.onnx --revision v2`"
    assert weights.load("rtmw", cfg)[0]["pose"].file is None  # the file itself
    assert registry.load_config(cfg).models["controlnet"]["base"].id == "/x/sd15"  # the diffusion side reads past them
    cfg.write_text("[dwpose]\nhead = \"x/y\"\n")
    with pytest.raises(InputError, match=r"\[dwpose\] has no role 'head' \(roles: detector, pose\)"):
        weights.load("dwpose", cfg)


# --- the estimators on tiny models with the real signatures --------------------------------------


@pytest.fixture(scope="session")
def rtm_config(tmp_path_factory) -> Path:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from tests.tiny_models import build_rtm_models

    return build_rtm_models(tmp_path_factory.mktemp("rtm-models"))


@pytest.fixture(scope="session")
def frame() -> np.ndarray:
    """The sample's first frame as ingest gives it to the estimator (640 px wide)."""
    import cv2

    from tests.conftest import SAMPLE

    img = read_frames(SAMPLE, count=1)[0]
    return cv2.resize(img, (640, 359), interpolation=cv2.INTER_AREA)


def _spec(name, config, **kw):
    from motionlib.ingest.estimators import spec_for

    return spec_for(estimator=name, models_config=config, **kw)


@pytest.mark.parametrize("name", ["dwpose", "rtmw"])
def test_the_estimator_finds_the_performer_deterministically(name, rtm_config, frame):
    spec = _spec(name, rtm_config)
    assert spec.skeleton == "coco_wholebody_133"
    assert len(spec.settings["pose"]["sha256"]) == 64 and spec.settings["detection_threshold"] == 0.5
    with spec.build() as est:
        assert est.num_joints == 133 and est.tracking is False
        boxes = est.detect(frame)
        # the performer and the passer-by; not the weak box, the chair, or YOLOX's duplicate (NMS)
        assert len(boxes) == 2, boxes
        r = est.process(frame, 0.0)
        again = est.process(frame, 0.0)
        dark = est.process((frame * 0.3).astype(np.uint8), 0.0)
    assert r.xy.shape == (133, 2) and r.confidence.shape == (133,)
    assert np.isfinite(r.xy).all() and ((r.confidence > 0) & (r.confidence <= 1)).all()
    np.testing.assert_array_equal(r.xy, again.xy)
    np.testing.assert_array_equal(r.confidence, again.confidence)
    assert not np.array_equal(r.xy, dark.xy), "the output must depend on the picture"
    px = r.xy * np.array([640, 359])
    ls, lh = px[WB.index("left_shoulder")], px[WB.index("left_hip")]
    assert 205 <= px[0, 0] <= 270 and 20 <= px[0, 1] < ls[1] < lh[1] <= 172  # on the performer, upright
    assert px[WB.index("left_shoulder"), 0] > px[WB.index("right_shoulder"), 0]  # facing the camera


def test_the_larger_person_is_chosen_then_followed(rtm_config, frame):
    with _spec("rtmw", rtm_config).build() as est:
        boxes = est.detect(frame)
        first = est._choose(boxes)
        assert first[0] == pytest.approx(205, abs=3)  # the performer: the larger box
        est._last = boxes[np.argmin((boxes[:, 2] - boxes[:, 0]))]  # following the passer-by ...
        assert est._choose(boxes)[0] == pytest.approx(528, abs=3)  # ... goes on with him
        est.reset()
        assert est._choose(boxes)[0] == pytest.approx(205, abs=3)
        assert est.process(np.zeros((359, 640, 3), np.uint8), 0.0) is not None  # the tiny detector always sees them


def test_missing_weights_are_one_line_naming_the_fetch_command(tmp_path, short_clip):
    pytest.importorskip("onnxruntime")
    env = {"HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_CACHE": "", "MOTIONLIB_MODELS_CONFIG": ""}
    proc = invoke("ingest", short_clip, "--estimator", "dwpose", library=tmp_path / "lib", env=env)
    assert_one_line_error(proc, "fetch it with `hf download yzd-v/DWPose yolox_l.onnx`")
    assert "estimator 'dwpose' needs its detector model" in proc.stderr
    assert not (tmp_path / "lib" / "motions").exists()
    listed = invoke_json("models", "dwpose", "rtmw", env=env, library=tmp_path / "lib")
    assert listed["models"] == [] and len(listed["estimators"]) == 4
    assert all(not r["present"] and r["fetch"].startswith("`hf download ") for r in listed["estimators"])
    text = invoke("models", "dwpose", env=env, library=tmp_path / "lib")
    assert text.returncode == 0 and "hf download yzd-v/DWPose dw-ll_ucoco_384.onnx" in text.stdout
    assert_one_line_error(invoke("ingest", short_clip, "--estimator", "openpose", library=tmp_path / "lib", env=env),
                          "--estimator 'openpose': choose one of mediapipe-pose, mediapipe-tasks, mediapipe-holistic, rtmw, dwpose")
    assert_one_line_error(invoke("ingest", short_clip, "--estimator", "rtmw", "--whole-body", library=tmp_path / "lib",
                                 env=env), "--estimator rtmw and --whole-body cannot be combined")


def test_without_onnxruntime_the_estimator_says_what_to_install(monkeypatch, tmp_path):
    from motionlib.ingest.estimators import rtm

    monkeypatch.setattr(rtm, "available", lambda: False)
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # import fails
    with pytest.raises(EstimatorError, match=r"pip install 'motionlib\[rtm\]'"):
        _spec("dwpose", None)


def _config_with(tmp_path, rtm_config, **files) -> Path:
    folder = rtm_config.parent / "dwpose"
    det, pose = files.get("detector", folder / "yolox_l.onnx"), files.get("pose", folder / "dw-ll_ucoco_384.onnx")
    cfg = tmp_path / "models.toml"
    cfg.write_text(f'[dwpose]\ndetector = "{det}"\npose = "{pose}"\n')
    return cfg


@pytest.mark.parametrize("case, words", [
    ("one channel", "takes [1, 1, 384, 288]; a whole-body pose model takes one image [1, 3, H, W]"),
    ("body only", "gives 17 keypoints; the coco_wholebody_133 layout needs a whole-body model of 133"),
    ("simcc sizes", "for a 384x288 input; a whole-body pose model gives SimCC simcc_x [1, 133, k*288]"),
    ("files swapped", "gives [1, 8400, 85] for a 640x640 input"),
    ("not onnx", "is not a usable ONNX model"),
])
def test_a_model_with_the_wrong_signature_is_one_line(case, words, rtm_config, tmp_path, short_clip):
    from tests.tiny_models import build_pose_simcc

    folder = rtm_config.parent / "dwpose"
    bad = tmp_path / "bad.onnx"
    if case == "one channel":
        build_pose_simcc(bad, channels=1)
    elif case == "body only":
        build_pose_simcc(bad, keypoints=17)
    elif case == "simcc sizes":
        build_pose_simcc(bad, size=(384, 288), split=1.5)
        from onnx import load, save  # the split says 1.5 for x and y alike: make y's length disagree

        model = load(str(bad))
        model.graph.output[1].type.tensor_type.shape.dim[2].dim_value = 100
        save(model, str(bad))
    elif case == "files swapped":
        bad = folder / "yolox_l.onnx"
    else:
        bad.write_bytes(b"\x08\x07 not a model")
    cfg = _config_with(tmp_path, rtm_config, pose=bad)
    proc = invoke("ingest", short_clip, "--estimator", "dwpose", library=tmp_path / "lib",
                  env={"MOTIONLIB_MODELS_CONFIG": str(cfg)})
    assert_one_line_error(proc, words)
    assert f"estimator 'dwpose': pose model {bad}" in proc.stderr


def test_a_detector_of_the_wrong_shape_is_one_line(rtm_config, tmp_path):
    from tests.tiny_models import build_pose_simcc

    cfg = _config_with(tmp_path, rtm_config, detector=build_pose_simcc(tmp_path / "det.onnx"))
    with pytest.raises(EstimatorError, match=r"detector model .* gives \[1, 133, 576\], \[1, 133, 768\]; a person "
                                             r"detector gives YOLOX's \[1, 2268, 5 \+ classes\] for a 384x288 input"):
        _spec("dwpose", cfg).build()


# --- ingest end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dwpose_ingest(tmp_path_factory, rtm_config, short_clip):
    root = tmp_path_factory.mktemp("dwpose-lib") / "lib"
    env = {"MOTIONLIB_MODELS_CONFIG": str(rtm_config)}
    got = invoke_json("ingest", short_clip, "--estimator", "dwpose", library=root, env=env)
    return root, env, got


def test_ingest_stores_the_native_133_points(dwpose_ingest, rtm_config, short_clip, tmp_path):
    from motionlib.library import Library

    root, env, (result,) = dwpose_ingest
    assert result["status"] == "created"
    with Library(root) as lib:
        rec = lib.get(result["ref"])
        m = lib.load(rec.ref)
        manifest = lib.manifest(rec)
    assert m.skeleton is WB and m.keypoints.shape == (60, 133, 2) and m.confidence.shape == (60, 133)
    assert m.world is None and m.presence is None
    assert manifest["skeleton"] == "coco_wholebody_133" and len(manifest["joint_names"]) == 133
    est = manifest["estimator"]
    assert est["name"] == "dwpose" and est["library"].startswith("onnxruntime ")
    assert est["settings"]["pose"]["weight_name"] == "dw-ll_ucoco_384.onnx" and len(est["settings"]["detector"]["sha256"]) == 64
    schema_validator("motion-manifest.schema.json").validate(manifest)
    assert np.isfinite(m.keypoints).all() and (m.confidence > 0.5).mean() > 0.9
    q = manifest["quality"]
    assert q["overall"] is not None and q["scores"]["framing"] > 0.5, q
    assert manifest["track"]["rejected_frames"] == 0 and manifest["track"]["people"] == 1
    # the same clip, the same weights: nothing new; another library: the same points, bit for bit
    again = invoke_json("ingest", short_clip, "--estimator", "dwpose", library=root, env=env)
    assert again[0]["status"] == "unchanged"
    other = tmp_path / "other"
    invoke_json("ingest", short_clip, "--estimator", "dwpose", library=other, env=env)
    with Library(other) as lib:
        twin = lib.load(lib.list()[0].ref)
    np.testing.assert_array_equal(twin.keypoints, m.keypoints)
    np.testing.assert_array_equal(twin.confidence, m.confidence)


def test_rtmw_from_sdk_zips_and_a_new_version_for_other_weights(dwpose_ingest, rtm_config, short_clip):
    from motionlib.library import Library

    root, env, _ = dwpose_ingest
    got = invoke_json("ingest", short_clip, "--estimator", "rtmw", "--name", "short", library=root, env=env)
    assert got[0]["status"] == "created"
    with Library(root) as lib:
        rtmw = lib.get(got[0]["ref"])
        assert lib.manifest(rtmw)["estimator"]["name"] == "rtmw"
        m = lib.load(rtmw.ref)
        settings = lib.manifest(rtmw)["estimator"]["settings"]
    assert m.skeleton is WB and np.isfinite(m.keypoints).all()
    assert settings["pose"]["path"].endswith(".zip")


def test_what_follows_ingest_works_on_the_stored_version(dwpose_ingest, tmp_path):
    from tests.conftest import copy_library

    lib, env, (result,) = dwpose_ingest
    root = copy_library(lib, tmp_path / "lib")  # smooth adds a version
    ref = result["ref"]
    for fmt, out in (("npz", tmp_path / "m.npz"), ("csv", tmp_path / "m.csv"), ("openpose-json", tmp_path / "op"),
                     ("controlnet-aux", tmp_path / "cn"), ("comfyui", tmp_path / "c.json"),
                     ("mp4", tmp_path / "pose.mp4")):
        proc = invoke("export", ref, "--format", fmt, "-o", out, library=root, env=env)
        assert proc.returncode == 0, (fmt, proc.stderr)
    people = json.loads(sorted((tmp_path / "op").iterdir())[0].read_text())["people"]
    assert len(people) == 1 and len(people[0]["hand_right_keypoints_2d"]) == 63
    assert (tmp_path / "pose.mp4").stat().st_size > 1000
    assert_one_line_error(invoke("export", ref, "--format", "bvh", "-o", tmp_path / "m.bvh", library=root, env=env),
                          "world")
    shown = invoke_json("show", ref, library=root, env=env)
    assert shown["skeleton"] == "coco_wholebody_133"
    smoothed = invoke_json("smooth", ref, library=root, env=env)
    assert smoothed["record"]["skeleton"] == "coco_wholebody_133" and smoothed["parent"] == ref


def test_fitting_a_stored_version_onto_an_identity(dwpose_ingest, tmp_path):
    from motionlib.library import Library
    from tests.conftest import ROOT, copy_library

    root, env, (result,) = dwpose_ingest
    ref = result["ref"]
    scratch = copy_library(root, tmp_path / "lib")
    with Library(scratch) as lib:
        lib.add_identity(ROOT / "assets" / "samples" / "astronaut.png", name="astronaut")
        report = lib.fit(ref, "astronaut", output=tmp_path / "fit.npz", preview=tmp_path / "fit.png")
    assert report["retarget"]["anchored_at"] == "neck"
    for joint in ("nose", "left_shoulder", "right_shoulder"):
        assert report["anchor_error"]["joints"][joint]["px"] < 1.0, joint
    assert 0 <= report["risk"] <= 1
    from motionlib import exchange

    fitted = exchange.read(tmp_path / "fit.npz", "npz").motion
    assert fitted.skeleton is WB and np.isfinite(fitted.keypoints[:, WB.index("left_hand_wrist")]).all()
    assert (tmp_path / "fit.png").stat().st_size > 1000


def test_the_settings_digest_follows_the_weights_content_not_their_place(rtm_config, tmp_path):
    import shutil

    from motionlib.ingest.pipeline import IngestOptions

    folder = tmp_path / "copy"
    shutil.copytree(rtm_config.parent / "dwpose", folder)
    moved = tmp_path / "moved.toml"
    moved.write_text(f'[dwpose]\ndetector = "{folder / "yolox_l.onnx"}"\npose = "{folder / "dw-ll_ucoco_384.onnx"}"\n')
    here = IngestOptions(estimator="dwpose", models_config=rtm_config)
    assert here.digest() == IngestOptions(estimator="dwpose", models_config=moved).digest()
    assert here.digest() != IngestOptions(estimator="rtmw", models_config=rtm_config).digest() != IngestOptions().digest()
    assert here.digest() != IngestOptions(estimator="dwpose", models_config=rtm_config, max_size=320).digest()
    from tests.tiny_models import build_pose_simcc

    build_pose_simcc(folder / "dw-ll_ucoco_384.onnx", seed=5)  # other weights, same name
    assert here.digest() != IngestOptions(estimator="dwpose", models_config=moved).digest()
