"""Follow one performer: find where a single-person track jumps to someone else.

MediaPipe Pose follows one person and re-detects when it loses them, possibly on somebody else.
A *jump* is a discontinuity between two consecutive detected frames (gaps allowed) that the body
could not have made: the hip centre moves further than ``0.6 + 4/s * gap`` torso lengths, or the
torso length changes by more than 1.6x. The track is split at jumps into segments; segments are
joined into people by the same rule (end of one, start of the next), and the person with the most
frames is the performer. Frames of anybody else are dropped (marked undetected) and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 11, 12, 23, 24

JUMP_BASE = 0.6  # torso lengths allowed between consecutive frames
JUMP_SPEED = 4.0  # torso lengths per second of gap (fast walking is ~3)
SCALE_RATIO = 1.6


@dataclass
class TrackReport:
    keep: np.ndarray  # [T] bool: frames of the performer (undetected frames are False)
    jumps: list[dict] = field(default_factory=list)  # {"time", "frame", "distance_torso"}
    dropped_frames: int = 0
    people: int = 0

    def as_dict(self) -> dict:
        return {"jumps": self.jumps, "dropped_frames": self.dropped_frames, "people": self.people}


def body_centre_and_scale(keypoints: np.ndarray, skeleton=None) -> tuple[np.ndarray, np.ndarray]:
    """[T, 2] hip centre and [T] torso length (shoulder centre to hip centre), NaN if unknown.
    ``skeleton`` gives the joint layout (default: MediaPipe's 33-point order)."""
    if skeleton is None:
        ls, rs, lh, rh = LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP
    else:
        ls, rs, lh, rh = (skeleton.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    hips = (keypoints[:, lh] + keypoints[:, rh]) / 2
    shoulders = (keypoints[:, ls] + keypoints[:, rs]) / 2
    return hips, np.linalg.norm(shoulders - hips, axis=1)


def _same_person(c0, s0, t0, c1, s1, t1) -> tuple[bool, float]:
    scale = max(s0, s1, 1e-6)
    dist = float(np.linalg.norm(c1 - c0)) / scale
    allowed = JUMP_BASE + JUMP_SPEED * max(0.0, t1 - t0)
    ratio = max(s0, s1) / max(min(s0, s1), 1e-6)
    return (dist <= allowed and ratio <= SCALE_RATIO), dist


def follow_performer(keypoints: np.ndarray, timestamps: np.ndarray, skeleton=None) -> TrackReport:
    T = keypoints.shape[0]
    centre, scale = body_centre_and_scale(keypoints, skeleton)
    detected = np.isfinite(centre).all(axis=1) & np.isfinite(scale) & (scale > 0)
    idx = np.flatnonzero(detected)
    if idx.size == 0:
        return TrackReport(keep=np.zeros(T, bool))
    # Split into segments at jumps.
    segments: list[list[int]] = [[int(idx[0])]]
    jumps = []
    for a, b in zip(idx[:-1], idx[1:]):
        same, dist = _same_person(centre[a], scale[a], timestamps[a], centre[b], scale[b], timestamps[b])
        if same:
            segments[-1].append(int(b))
        else:
            segments.append([int(b)])
            jumps.append({"time": round(float(timestamps[b]), 3), "frame": int(b), "distance_torso": round(float(dist), 2)})
    # Join segments into people: a segment continues the person whose last frame it fits best.
    people: list[list[int]] = []  # segment indices per person
    for si, seg in enumerate(segments):
        first = seg[0]
        best, best_dist = None, np.inf
        for pi, segs in enumerate(people):
            last = segments[segs[-1]][-1]
            same, dist = _same_person(
                centre[last], scale[last], timestamps[last], centre[first], scale[first], timestamps[first]
            )
            if same and dist < best_dist:
                best, best_dist = pi, dist
        if best is None:
            people.append([si])
        else:
            people[best].append(si)
    sizes = [sum(len(segments[s]) for s in segs) for segs in people]
    performer = int(np.argmax(sizes))  # ties: the earliest person
    person_of = {s: p for p, segs in enumerate(people) for s in segs}
    for k, jump in enumerate(jumps, start=1):  # jump k starts segment k
        jump["to_performer"] = person_of[k] == performer
        jump["from_performer"] = person_of[k - 1] == performer
    keep = np.zeros(T, bool)
    for s in people[performer]:
        keep[segments[s]] = True
    return TrackReport(
        keep=keep,
        jumps=jumps,
        dropped_frames=int(detected.sum() - keep.sum()),
        people=len(people),
    )
