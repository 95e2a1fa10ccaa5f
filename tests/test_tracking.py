import json

import numpy as np

from motionlib.processing.tracking import follow_performer


def _person(x, y, torso=100.0):
    kp = np.zeros((33, 2), np.float32)
    kp[:, 0], kp[:, 1] = x, y
    kp[[11, 12], 1] = y - torso  # shoulders above the hips
    kp[[23, 24], 1] = y
    return kp


def test_jump_to_another_person_is_found_and_dropped():
    T = 100
    ts = np.arange(T) / 30.0
    kp = np.stack([_person(100 + i, 500) if not 50 <= i < 70 else _person(900, 520) for i in range(T)])
    kp[40:42] = np.nan  # a short dropout is not a jump
    rep = follow_performer(kp, ts)
    assert [j["frame"] for j in rep.jumps] == [50, 70]
    assert rep.jumps[0]["to_performer"] is False and rep.jumps[1]["to_performer"] is True
    assert rep.people == 2 and rep.dropped_frames == 20
    assert not rep.keep[50:70].any() and rep.keep[:40].all() and rep.keep[70:].all()


def test_slow_walk_and_size_change_within_limits_are_not_jumps():
    T = 90
    ts = np.arange(T) / 30.0
    kp = np.stack([_person(100 + 8 * i, 500, torso=100 + 0.3 * i) for i in range(T)])
    rep = follow_performer(kp, ts)
    assert rep.jumps == [] and rep.keep.all()


def test_sample_clip_track_jump_is_reported_not_stored(demo_library):
    """In the sample clip the tracker leaves the man on the box for the woman walking past."""
    lib, rec = demo_library
    from motionlib.library import Library

    library = Library(lib)
    record = library.get(rec["ref"])
    manifest = library.manifest(record)
    jumps = manifest["track"]["jumps"]
    away = [j for j in jumps if not j["to_performer"]]
    assert away, jumps
    assert any(5.0 <= j["time"] <= 6.0 for j in away)
    assert manifest["track"]["dropped_frames"] > 0
    assert any("track jumped to another person" in w for w in record.warnings)
    m = library.load(record.ref)
    j = next(j for j in away if 5.0 <= j["time"] <= 6.0)
    assert np.isnan(m.keypoints[j["frame"]]).all()  # the other person's pose is not stored
    assert (m.confidence[j["frame"]] == 0).all()
