import numpy as np
import pytest

from motionlib.core.errors import InputError, InvalidName
from motionlib.core.motion import Motion
from motionlib.core.names import Ref, validate_name, validate_tag
from motionlib.core.skeleton import MEDIAPIPE_HOLISTIC_543, MEDIAPIPE_POSE_33, get_skeleton


@pytest.mark.parametrize("name", ["point-rhythm", "Wave 2", "tänzchen_01", "a.b", "x" * 100, "日本"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name, words",
    [
        ("a/b", "path separator"), ("..\\x", "path separator"), ("a\x00b", "control"),
        ("tab\tname", "control"), ("bell\x07", "control"), ("x@2", "'@'"), ("", "empty"),
        (".hidden", "must not start"), ("-flag", "must not start"), (" pad", "whitespace"),
        ("x" * 101, "longer than"), ("zero\u200bwidth", "invisible"),
    ],
)
def test_invalid_names_say_why(name, words):
    with pytest.raises(InvalidName, match=words):
        validate_name(name)


def test_tags_reject_whitespace_and_commas():
    assert validate_tag("hook") == "hook"
    for bad in ("two words", "a,b", ""):
        with pytest.raises(InvalidName):
            validate_tag(bad)


def test_refs():
    assert Ref.parse("wave") == Ref("wave", None)
    assert Ref.parse("wave@3") == Ref("wave", 3)
    assert Ref.parse("wave@latest") == Ref("wave", None)
    assert str(Ref("wave", 2)) == "wave@2"
    for bad in ("wave@", "wave@0", "wave@x", "@3"):
        with pytest.raises(InvalidName):
            Ref.parse(bad)


def test_skeletons_are_consistent():
    assert MEDIAPIPE_POSE_33.num_joints == 33
    assert len(MEDIAPIPE_POSE_33.mirror_pairs) == 15
    assert MEDIAPIPE_HOLISTIC_543.num_joints == 543
    assert len(MEDIAPIPE_HOLISTIC_543.mirror_pairs) == 15 + 21
    for sk in (MEDIAPIPE_POSE_33, MEDIAPIPE_HOLISTIC_543):
        for a, b in sk.edges:
            assert 0 <= a < sk.num_joints and 0 <= b < sk.num_joints
        for a, b in sk.mirror_pairs:
            assert sk.joint_names[a].replace("left", "right") == sk.joint_names[b]
    assert get_skeleton("mediapipe_pose_33") is MEDIAPIPE_POSE_33
    with pytest.raises(InputError):
        get_skeleton("openpose_25")


def _motion(T=5, **kw):
    args = dict(
        skeleton=MEDIAPIPE_POSE_33,
        keypoints=np.zeros((T, 33, 2), np.float32),
        confidence=np.ones((T, 33), np.float32),
        timestamps=np.arange(T) / 30.0,
        width=640, height=480, duration=T / 30.0,
    )
    args.update(kw)
    return Motion(**args)


def test_motion_validate_catches_bad_shapes_and_timing():
    m = _motion().validate()
    assert m.frames == 5 and m.fps == pytest.approx(30.0)
    with pytest.raises(InputError, match="keypoints"):
        _motion(keypoints=np.zeros((5, 32, 2), np.float32)).validate()
    with pytest.raises(InputError, match="strictly increasing"):
        _motion(timestamps=np.array([0, 0.1, 0.1, 0.2, 0.3])).validate()
    with pytest.raises(InputError, match="confidence"):
        _motion(confidence=np.full((5, 33), 1.5, np.float32)).validate()
    with pytest.raises(InputError, match="world"):
        _motion(world=np.zeros((5, 33, 2), np.float32)).validate()
