"""Render QA: does a rendered video move like the pose that drove it?

The pose estimator runs on the rendered video (as ingest does: tracking, then cleaning) and its
track is compared, frame by frame, with the driving pose (the fitted motion, in the video's pixels):

* ``error``: per frame, the median distance of the joints confident in both, in the driving
  pose's torso lengths; ``median_error`` and ``p90_error`` over frames (a frame with left and
  right swapped counts with its error as drawn);
* ``swapped``: share of frames whose body matches the driving pose far better mirrored (left and
  right exchanged: the render swapped the limbs, or the estimator read it so);
* ``lost``: share of driving frames where the video shows no body;
* ``jitter``: the video track's jitter score (processing.quality, robust).

score = exp(-median_error / 0.25) x (1 - lost), in [0, 1];
verdict = ``pass`` from 0.6, ``check`` from 0.35, else ``redo``.
"""

from __future__ import annotations

import math

import numpy as np

VISIBLE = 0.5
ERROR_SCALE = 0.25  # torso lengths: a median error of a quarter torso scores 0.37
PASS, CHECK = 0.6, 0.35
QA_VERSION = 1


def compare(video, driving) -> dict:
    """The QA of a video's pose track (``video``, a Motion in the video's pixels) against the
    ``driving`` Motion (same skeleton, the same pixels and frames)."""
    from motionlib.processing.cleaning import body_centre_and_scale
    from motionlib.processing.quality import jitter

    if video.skeleton.name != driving.skeleton.name:
        raise ValueError("the video's pose and the driving pose must share a skeleton")
    T = min(video.frames, driving.frames)
    sk = driving.skeleton
    body = list(sk.body)
    mirror = {a: b for a, b in sk.mirror_pairs} | {b: a for a, b in sk.mirror_pairs}
    flipped = [mirror.get(j, j) for j in body]
    dk, dc = driving.keypoints[:T], driving.confidence[:T]
    vk, vc = video.keypoints[:T], video.confidence[:T]
    _, torso = body_centre_and_scale(dk, sk)
    driven = np.isfinite(torso) & (torso > 0) & ((dc[:, body] >= VISIBLE).sum(axis=1) >= 4)
    seen = np.isfinite(vk[:, body]).all(axis=2).any(axis=1)
    errors, swapped, lost = [], 0, 0
    for t in np.flatnonzero(driven):
        if not seen[t]:
            lost += 1
            continue
        ok = (dc[t, body] >= VISIBLE) & (vc[t, body] >= VISIBLE)
        okf = (dc[t, body] >= VISIBLE) & (vc[t, flipped] >= VISIBLE)
        if ok.sum() < 4:
            lost += 1
            continue
        direct = float(np.median(np.linalg.norm(vk[t, body][ok] - dk[t, body][ok], axis=1))) / torso[t]
        mirrored = float(np.median(np.linalg.norm(vk[t, flipped][okf] - dk[t, body][okf], axis=1))) / torso[t] \
            if okf.sum() >= 4 else math.inf
        if mirrored < 0.5 * direct:
            swapped += 1
        errors.append(direct)  # a swapped frame counts with its error as drawn
    n = int(driven.sum())
    if n == 0:
        return {"version": QA_VERSION, "score": None, "verdict": "check", "frames": 0,
                "reason": "the driving pose shows no body to compare with"}
    lost_share, swap_share = lost / n, swapped / n
    med = float(np.median(errors)) if errors else math.inf
    p90 = float(np.percentile(errors, 90)) if errors else math.inf
    score = (math.exp(-med / ERROR_SCALE) if math.isfinite(med) else 0.0) * (1 - lost_share)
    j_score, _, _, _ = jitter(video.keypoints, video.confidence, video.timestamps, video.duration, sk)
    verdict = "pass" if score >= PASS else ("check" if score >= CHECK else "redo")
    return {
        "version": QA_VERSION,
        "score": round(score, 4),
        "verdict": verdict,
        "frames": n,
        "median_error": _r(med),
        "p90_error": _r(p90),
        "swapped": round(swap_share, 4),
        "lost": round(lost_share, 4),
        "jitter": None if j_score is None else round(float(j_score), 4),
    }


def _r(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


def scaled(motion, width: int, height: int):
    """``motion`` (the fit, in the identity picture's pixels) in a video of ``width`` x ``height``
    showing that picture scaled to fill it."""
    from dataclasses import replace

    s = np.array([width / motion.width, height / motion.height], np.float32)
    return replace(motion, keypoints=motion.keypoints * s, width=int(width), height=int(height), attrs={})
