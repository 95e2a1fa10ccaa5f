"""Similarity ("more like this"): the descriptor ignores position, size, facing and tempo and
tells movements apart; the library stores it with every version, ranks by it (``similar``,
the ``like:`` query term), brings it back on reindex and reports near-duplicates at import.
Recall on real clips and their edits, and speed at 10,000 motions: scripts/bench_similar.py."""

from __future__ import annotations

import numpy as np
import pytest

from motionlib.core.errors import InputError, NotFound
from motionlib.core.motion import Motion
from motionlib.core.skeleton import MEDIAPIPE_POSE_33 as SK
from motionlib.library import Library
from motionlib.processing import ops, similarity
from tests.conftest import invoke, invoke_json
from tests.test_ops import POSE


def performer(kind: str, T: int = 120, fps: float = 30.0, seed: int = 0) -> Motion:
    """A standing performer who waves an arm (``wave``) or kicks a leg (``kick``)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    kp = np.repeat(POSE[None], T, axis=0) + np.array([320.0, 300.0], np.float32)
    phase = 2 * np.pi * 1.0 * t
    if kind == "wave":
        for j, r in (("right_elbow", 25), ("right_wrist", 60)):
            kp[:, SK.index(j), 0] += r * np.cos(phase) * 0.5
            kp[:, SK.index(j), 1] -= r * (1 + np.sin(phase)) * 0.6
    else:
        for j, r in (("left_knee", 30), ("left_ankle", 70)):
            kp[:, SK.index(j), 0] += r * (1 + np.sin(phase)) * 0.6
            kp[:, SK.index(j), 1] -= r * (1 + np.sin(phase)) * 0.3
    kp += rng.normal(0, 0.5, kp.shape).astype(np.float32)
    return Motion(SK, kp.astype(np.float32), np.full((T, SK.num_joints), 0.95, np.float32), t, 640, 480,
                  T / fps).validate()


def moved(m: Motion, scale: float, shift: tuple[float, float]) -> Motion:
    kp = m.keypoints * scale + np.array(shift, np.float32)
    return Motion(m.skeleton, kp.astype(np.float32), m.confidence, m.timestamps, m.width, m.height,
                  m.duration).validate()


def test_the_descriptor_ignores_position_size_facing_and_tempo_but_not_the_movement():
    wave = performer("wave")
    d = similarity.descriptor(wave)
    assert d.shape == (similarity.SIZE,) and abs(float(np.linalg.norm(d)) - 1) < 1e-5
    same = {
        "moved and smaller": moved(wave, 0.6, (80.0, -40.0)),
        "mirrored": ops.mirror(wave).motion,
        "twice as fast": ops.retime(wave, speed=2.0).motion,
        "slower at 24 fps": ops.retime(wave, speed=0.7, fps=24.0).motion,
        "another take": performer("wave", seed=5),
    }
    for what, m in same.items():
        assert float(similarity.descriptor(m) @ d) > 0.99, what
    kick = similarity.descriptor(performer("kick"))
    assert float(kick @ d) < 0.97, "a kick is not a wave"
    # too little of the body seen: no descriptor
    hidden = performer("wave")
    hidden.confidence[:, :] = 0.1
    assert similarity.descriptor(hidden) is None


@pytest.fixture
def lib(demo_copy):
    """The demo library to change: a local one, and a shared one (conftest.demo_copy)."""
    library = Library(demo_copy)
    yield library
    library.close()


def test_similar_ranks_edits_of_a_motion_first_and_like_combines_with_other_terms(lib, tmp_path):
    lib.derive("demo", ops.mirror, name="demo-mirrored")
    lib.derive("demo", lambda m: ops.retime(m, speed=1.5), name="demo-fast", tags=["fast"])
    for kind in ("wave", "kick"):
        path = tmp_path / f"{kind}.npz"
        from motionlib import exchange

        exchange.export_npz(performer(kind), path)
        lib.import_keypoints(path, "npz", name=kind)
    found = lib.similar("demo", 10)
    refs = [r.ref for r, _ in found]
    assert set(refs[:2]) == {"demo-mirrored@1", "demo-fast@1"} and "demo@1" not in refs
    assert found[0][1] >= found[-1][1]
    assert [r.ref for r in lib.list(query="like:demo")][:3] != []
    assert [r.ref for r in lib.list(query="like:demo tag:fast")] == ["demo-fast@1"]
    assert "demo@1" not in [r.ref for r in lib.list(query="like:demo")]
    assert [r.ref for r in lib.list(query="like:wave -name:demo*")][0] == "kick@1"
    # the command line: JSON with the similarity; errors are one line
    out = invoke_json("similar", "demo", "--top", "2", library=lib.location)
    assert [r["ref"] for r in out] == refs[:2] and all(0 < r["similarity"] <= 1.0001 for r in out)
    assert invoke("similar", "nope", library=lib.location).returncode == 1
    assert invoke("list", "like:", library=lib.location).returncode == 2
    with pytest.raises(InputError, match="top"):
        lib.similar("demo", 0)


def test_reindex_brings_descriptors_back_and_imports_report_near_duplicates(lib, tmp_path):
    from sqlalchemy import text

    lib.derive("demo", lambda m: ops.retime(m, speed=1.5), name="demo-fast")
    before = [(r.ref, round(s, 4)) for r, s in lib.similar("demo", 5)]
    assert before and before[0][0] == "demo-fast@1"
    with lib.index.write() as w:  # an index from before descriptors
        w.session.execute(text("DELETE FROM motion_descriptor"))
    lib.close()
    with Library(lib.location) as emptied, pytest.raises(NotFound, match="reindex"):
        emptied.similar("demo", 5)
    assert invoke("reindex", library=lib.location).returncode == 0
    with Library(lib.location) as again:
        assert [(r.ref, round(s, 4)) for r, s in again.similar("demo", 5)] == before
        again.export("demo", "npz", tmp_path / "demo.npz")
        result = again.import_keypoints(tmp_path / "demo.npz", "npz", name="demo-again")
    assert any(w.startswith("near-duplicate: moves like demo@1") for w in result.warnings), result.warnings
