"""The longest motion a command takes whole, checked before any work (issue 16).

Edits, scores, previews, renders and exports hold a version's arrays in memory (keypoints,
confidence, world points) with the copies their steps need: time and memory grow with the
motion's length (edits, scores and the loop search in steps or windows, never all pairs), so the
length is what bounds them. ``MEMORY_BUDGET`` is what any one command may hold; at
``BYTES_PER_POINT`` bytes per (frame, joint) at its peak (the heaviest command, ``loop``, grows
by 55 measured by ``scripts/bench_long.py``; a stored point is 24 bytes: keypoints, confidence,
world point) beside ``BASE`` for the interpreter and its libraries, that allows
``max_frames(joints)`` frames: 492,424 frames of a 33-joint body (4.6 hours at 30 fps), 29,926
of a 543-point whole body (17 minutes).

Longer versions are refused before anything is read, in one line that names the limit and the
way round it: ``trim`` reads only the frames it keeps, so any length of take can be cut into
parts that fit (so does ``preview --start/--end``).
"""

from __future__ import annotations

from motionlib.core.errors import InputError

MEMORY_BUDGET = 1_500_000_000  # bytes, the goal for any command on an hour-long take
BASE = 200_000_000  # bytes: the interpreter and its libraries, and the fixed-size work blocks
BYTES_PER_POINT = 80  # peak bytes per (frame, joint), with a margin: loop grows by 55, import, scores,
# smooth and render by 40-47 (scripts/bench_long.py, 10,000 -> 100,000 frames)


def max_frames(joints: int) -> int:
    """The most frames of a ``joints``-point layout a command holds whole."""
    return int((MEMORY_BUDGET - BASE) // (BYTES_PER_POINT * max(1, joints)))


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def check_frames(ref: str, frames: int, skeleton: str, duration: float) -> None:
    """Refuse, before any work, a version too long to hold whole (InputError, one line)."""
    from motionlib.core.skeleton import get_skeleton

    joints = get_skeleton(skeleton).num_joints
    most = max_frames(joints)
    if frames <= most:
        return
    fps = frames / duration if duration > 0 else 30.0
    part = int(most / fps)  # seconds of this motion that fit
    raise InputError(
        f"{ref} has {frames:,} frames ({_hours(duration)}); a command holds at most {most:,} frames of "
        f"{joints} joints ({_hours(most / fps)} of it, {MEMORY_BUDGET / 1e9:.1f} GB): cut a part out first, "
        f"e.g. `motionlib trim {ref} {{end={part}}}` (trim reads only the frames it keeps)",
        params=["end"],
    )
