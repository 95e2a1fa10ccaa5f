#!/usr/bin/env python3
"""Fit and render QA on real clips, each figure beside its baseline from the same run.

1. Self-tests: the identity is frame k of a clip (the full picture, or the sample's performer
   cropped and enlarged); the fit's frame k is compared with her joints, as a share of her shown
   height. Baseline: the same fit anchored the old way (median position, 90th-percentile lengths),
   kept here as ``old_bones`` for the comparison only.
2. The astronaut (a half-body portrait) under the sample: the anchor frame's neck, nose and
   ear-to-ear width against hers, and the neck's range over the motion.
3. Render QA separating matching from non-matching pairs: each single-performer clip re-encoded at
   half size and estimated again, scored against its own motion and against every other clip's
   (the sample's included).

Needs the samples (scripts/fetch_samples.py --pose2sim, run for you). About a minute on 2 cores.
Usage: .venv/bin/python scripts/bench_fit.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "assets" / "samples"

from bench_fidelity import write  # noqa: E402  (scripts/ is on the path when a script runs)
from motionlib.core.skeleton import MEDIAPIPE_POSE_33 as SK  # noqa: E402
from motionlib.ingest.image import detect_pose, load_image  # noqa: E402
from motionlib.ingest.pipeline import IngestOptions, analyze  # noqa: E402
from motionlib.render.qa import compare, scaled  # noqa: E402
from motionlib.render.retarget import IdentityBody, retarget  # noqa: E402

CORE = [SK.index(n) for n in ("nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                              "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                              "right_ankle")]


def frame(path: Path, k: int) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == k:
                return f.to_ndarray(format="rgb24")
    raise SystemExit(f"{path} has no frame {k}")


def identity_of(image: np.ndarray) -> IdentityBody:
    pose = detect_pose(image, "frame")
    h, w = image.shape[:2]
    return IdentityBody(pose.keypoints.astype(np.float32), pose.confidence.astype(np.float32), w, h)


def old_bones(motion, identity: IdentityBody):
    """The previous anchoring, for the baseline: lengths by 90th percentile, the performer's median
    hip position on hers, no turning."""
    from dataclasses import replace

    from motionlib.render import retarget as R

    ipos, iseen = R._identity_points(identity)
    mpos, mconf = R._points(motion.keypoints.astype(np.float64), motion.confidence, motion.skeleton)

    def vis(n):
        return (mconf[n] >= 0.5) & np.isfinite(mpos[n]).all(axis=-1)

    lt = R._p90_length(mpos["hip_centre"], mpos["neck"], vis("hip_centre") & vis("neck"))
    torso_ratio = float(np.linalg.norm(ipos["neck"] - ipos["hip_centre"])) / lt
    root = mpos["hip_centre"]
    out = {"hip_centre": ipos["hip_centre"] + torso_ratio * (root - np.nanmedian(root, axis=0))}
    for p, c in R.TREE:
        if p in out and c in mpos:
            lm = R._p90_length(mpos[p], mpos[c], vis(p) & vis(c))
            li = float(np.linalg.norm(ipos[c] - ipos[p])) if (c in ipos and iseen.get(c) and iseen.get(p, True)) else None
            r = li / lm if (lm and li) else torso_ratio
            out[c] = out[p] + r * (mpos[c] - mpos[p])
    kp = np.full(motion.keypoints.shape, np.nan)
    for j, n in enumerate(motion.skeleton.joint_names):
        if n in out:
            kp[:, j] = out[n]
    return replace(motion, keypoints=kp.astype(np.float32), width=identity.width, height=identity.height)


def errors_at(fitted, identity: IdentityBody, k: int, mirrored: bool = False) -> np.ndarray:
    """Per core joint her picture shows, the distance at frame k as a share of her shown height
    (``mirrored``: her left and right compared the other way round, as the fit took them)."""
    from motionlib.render.fit import anchor_errors

    e = anchor_errors(fitted, identity, k, mirrored)["joints"]
    return np.array([v["of_height"] for n, v in e.items() if SK.index(n) in CORE])


def half(path: Path, tmp: Path) -> Path:
    import av

    frames, fps = [], 30.0
    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate or 30)
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(width=f.width // 4 * 2, height=f.height // 4 * 2, format="rgb24"))
    return write(tmp / f"{path.stem}-half.mp4", frames, fps=fps, crf=20)


def main() -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_samples.py"), "--pose2sim"], check=True,
                   stdout=subprocess.DEVNULL)
    demo = SAMPLES / "demo.mp4"
    views = [SAMPLES / "pose2sim" / "single" / f"cam0{k}.mp4" for k in range(1, 5)]
    motions = {p.stem: analyze(p, IngestOptions(workers=1)).motion for p in [demo] + views}

    print("1. self-tests: frame k's joints against the identity made from frame k (share of her height)")
    print(f"  {'clip, frame':<26} {'median':>8} {'max':>8}   baseline median / max (old anchoring)   goal <= 2 %")
    cases = [(p, k, None) for p in views for k in (0, 50)]
    cases += [(demo, k, "crop") for k in (40, 90)]
    worst = 0.0
    for path, k, how in cases:
        image = frame(path, k)
        m = motions[path.stem]
        if how == "crop":  # the performer is small: his crop, enlarged 3x, is the picture
            from PIL import Image

            pts = m.keypoints[k][np.isfinite(m.keypoints[k]).all(axis=1)]
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            x0, y0 = np.maximum(lo - 0.3 * (hi - lo), 0).astype(int)
            x1, y1 = np.minimum(hi + 0.3 * (hi - lo), [image.shape[1], image.shape[0]]).astype(int)
            image = np.asarray(Image.fromarray(image[y0:y1, x0:x1]).resize(((x1 - x0) * 3, (y1 - y0) * 3), Image.LANCZOS))
        ident = identity_of(image)
        fit = retarget(m, ident, "bones", anchor=k)
        new = errors_at(fit.motion, ident, k, fit.report["identity_mirrored"])
        old = errors_at(old_bones(m, ident), ident, k)
        worst = max(worst, float(new.max()))
        note = "  (her picture's left and right read the other way: fitted mirrored)" if fit.report["identity_mirrored"] else ""
        print(f"  {path.stem + ' k=' + str(k) + (' (crop)' if how else ''):<26} {100 * np.median(new):7.1f}% "
              f"{100 * new.max():7.1f}%   {100 * np.median(old):6.1f}% / {100 * old.max():5.1f}%{note}")
    print(f"  worst joint over all self-tests: {100 * worst:.1f}%")

    print("\n2. the astronaut under the sample, at the anchor frame")
    img = load_image(SAMPLES / "astronaut.png").image
    ident = identity_of(img)
    fit = retarget(motions["demo"], ident, "bones")
    base = old_bones(motions["demo"], ident)
    k = fit.report["anchor_frame"]
    ik = ident.keypoints
    shoulders = np.linalg.norm(ik[11] - ik[12])
    ears = np.linalg.norm(ik[7] - ik[8])
    for label, m in (("anchored fit", fit.motion), ("baseline", base)):
        kp = m.keypoints
        neck = (kp[:, 11] + kp[:, 12]) / 2
        print(f"  {label:<13} neck {np.linalg.norm(neck[k] - (ik[11] + ik[12]) / 2) / shoulders:5.2f} shoulder widths "
              f"(goal <= 0.1), nose {np.linalg.norm(kp[k, 0] - ik[0]) / ears:5.2f} ear widths (goal <= 0.25), "
              f"head {np.linalg.norm(kp[k, 7] - kp[k, 8]) / ears:4.2f}x hers (goal 0.75-1.25); neck y over the "
              f"motion {np.nanmin(neck[:, 1]):.0f}-{np.nanmax(neck[:, 1]):.0f} (hers {(ik[11, 1] + ik[12, 1]) / 2:.0f})")

    print("\n3. render QA: each clip re-encoded at half size and estimated again, against motions")
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        match, other = [], []
        # single-performer clips only: in the sample a walker crosses, and at half size the
        # tracker follows him instead - that video is not a rendering of the sample's motion
        for path in views:
            video = analyze(half(path, tmp), IngestOptions(workers=1)).motion
            for name, m in motions.items():
                q = compare(video, scaled(m, video.width, video.height))
                (match if name == path.stem else other).append((path.stem, name, q))
        for label, group in (("matching (own motion)", match), ("non-matching (another clip's)", other)):
            scores = [q["score"] for _, _, q in group]
            verdicts = {v: sum(q["verdict"] == v for _, _, q in group) for v in ("pass", "check", "redo")}
            print(f"  {label:<30} n={len(group):2d}  score min {min(scores):.2f} median {np.median(scores):.2f} "
                  f"max {max(scores):.2f}  verdicts {verdicts}")
        for clip, name, q in match:
            print(f"    {clip:<6} own: {q['verdict']} {q['score']:.2f} (error {q['median_error']}, lost {q['lost']}, "
                  f"swapped {q['swapped']})")
        top = max(other, key=lambda g: g[2]["score"])
        print(f"    best non-matching pair: {top[0]} vs {top[1]}: {top[2]['verdict']} {top[2]['score']:.2f}")


if __name__ == "__main__":
    main()
