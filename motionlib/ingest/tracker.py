"""Run a video-mode pose estimator over a frame stream, on several cores.

MediaPipe's tracker is sequential (each frame's region comes from the previous frame), and one
graph uses one core. To use more cores the clip is cut into consecutive *segments*. The first
segment continues the running track; a segment started while another is still running gets a
fresh tracker that first *warms up* on the ``WARMUP`` frames before its start. When segment k is
stitched after segment k-1, its warm-up poses must agree with the poses already accepted for those
frames (same person, within a quarter torso); otherwise the tracker of segment k-1, whose state
is exactly at segment k's first frame, continues through segment k itself. So a stitched track
only differs from a purely sequential one in the smoothing filter's first frames after a
boundary, and a disagreement costs time, never a silent switch of person.

Memory stays bounded: the decoder runs ahead by at most a few segments, and frames are dropped
once no segment can still need them.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from motionlib.ingest.estimators.base import EstimatorSpec, PoseEstimator, PoseResult
from motionlib.ingest.video import Frame

WARMUP = 8  # frames a fresh tracker runs before its segment starts
AGREE_FRAMES = 3  # last warm-up frames compared at a boundary
MAX_SEGMENT = 150
SEQUENTIAL_SEGMENT = 150

Progress = Callable[[int], None]


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class TrackOutput:
    results: list[PoseResult | None]
    times: list[float]
    durations: list[float | None]
    frame_diffs: np.ndarray  # [T-1] mean abs difference of consecutive grey thumbnails
    stats: dict = field(default_factory=dict)


class _Buffer:
    """Decoded frames by index; consumers block until the frame they need has arrived."""

    def __init__(self, capacity: int):
        self._frames: dict[int, Frame] = {}
        self._cond = threading.Condition()
        self._count = 0
        self._done = False
        self._error: BaseException | None = None
        self._low = 0  # frames below this index were released
        self._capacity = capacity

    def put(self, frame: Frame) -> bool:
        with self._cond:
            while len(self._frames) >= self._capacity and not self._done:
                self._cond.wait(0.1)
            if self._done:
                return False
            self._frames[frame.index] = frame
            self._count = frame.index + 1
            self._cond.notify_all()
            return True

    def finish(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._done = True
            self._error = self._error or error
            self._cond.notify_all()

    def get(self, i: int) -> Frame | None:
        with self._cond:
            while i >= self._count and not self._done:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            return self._frames.get(i) if i < self._count else None

    @property
    def total(self) -> int | None:
        with self._cond:
            return self._count if self._done else None

    def release_before(self, i: int) -> None:
        with self._cond:
            for j in range(self._low, i):
                self._frames.pop(j, None)
            self._low = max(self._low, i)
            self._cond.notify_all()


@dataclass
class _Job:
    k: int
    start: int
    stop: int
    tracker: PoseEstimator
    warm: bool
    future: object = None


def _torso(xy: np.ndarray) -> float:
    s = (xy[11] + xy[12]) / 2
    h = (xy[23] + xy[24]) / 2
    return float(np.linalg.norm(s - h))


def agree(a: PoseResult | None, b: PoseResult | None, aspect: float) -> bool:
    """Same person in the same place? ``aspect`` = width / height of the frames."""
    if a is None or b is None:
        return a is None and b is None
    scale = np.array([aspect, 1.0], np.float32)
    xa, xb = a.xy[:33] * scale, b.xy[:33] * scale
    torso = max(_torso(xa), _torso(xb), 1e-6)
    ok = (a.confidence[:33] >= 0.5) & (b.confidence[:33] >= 0.5)
    if ok.sum() < 4:
        ok = np.ones(33, bool)
    d = np.linalg.norm(xa[ok] - xb[ok], axis=1)
    return bool(np.nanmean(d) <= 0.25 * torso)


def _bounds(total_hint: int | None, workers: int) -> Callable[[int], int]:
    """Start index of segment k."""
    if workers == 1:
        return lambda k: k * SEQUENTIAL_SEGMENT
    if total_hint and total_hint <= workers * MAX_SEGMENT:
        # The first segment starts at once while the decoder is still filling later ones:
        # give it a larger share so all trackers finish together.
        first = min(total_hint, int(round(1.3 * total_hint / workers)))
        rest = max(1, math.ceil((total_hint - first) / max(1, workers - 1)))
        return lambda k: 0 if k == 0 else first + (k - 1) * rest
    return lambda k: k * MAX_SEGMENT


def track(
    frames: Iterable[Frame],
    spec: EstimatorSpec,
    *,
    workers: int = 0,
    total_hint: int | None = None,
    progress: Progress | None = None,
) -> TrackOutput:
    workers = workers or default_workers()
    start_of = _bounds(total_hint, workers)
    longest = max(start_of(k + 1) - start_of(k) for k in range(max(2, workers + 1)))
    buf = _Buffer(capacity=(workers + 2) * longest + WARMUP + 8)
    times: list[float] = []
    durations: list[float | None] = []
    diffs: list[float] = []
    aspect = [1.0]

    def feed():
        prev = None
        try:
            for f in frames:
                if prev is None:
                    aspect[0] = f.image.shape[1] / f.image.shape[0]
                else:
                    diffs.append(float(np.abs(f.thumb - prev).mean()))
                prev = f.thumb
                times.append(f.time)
                durations.append(f.duration)
                if not buf.put(f):
                    return
            buf.finish()
        except BaseException as err:  # re-raised by the consumer
            buf.finish(err)

    results: dict[int, PoseResult | None] = {}
    lock = threading.Lock()
    done = [0]

    def tick():
        if progress is not None:
            with lock:
                done[0] += 1
                progress(done[0])

    def run(job: _Job) -> tuple[dict, dict, int]:
        out, warm = {}, {}
        if buf.get(job.start) is None:  # the clip ended before this segment
            return out, warm, job.start
        if job.warm:
            job.tracker.reset()
            for i in range(max(0, job.start - WARMUP), job.start):
                f = buf.get(i)
                if f is None:
                    break
                warm[i] = job.tracker.process(f.image, f.time)
        i = job.start
        while i < job.stop:
            f = buf.get(i)
            if f is None:
                break
            out[i] = job.tracker.process(f.image, f.time)
            tick()
            i += 1
        return out, warm, i

    trackers_built = []

    def new_tracker() -> PoseEstimator:
        t = spec.build()
        trackers_built.append(t)
        return t

    feeder = threading.Thread(target=feed, name="motionlib-decode", daemon=True)
    stats = {"workers": workers, "segments": 0, "fallbacks": 0}
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="motionlib-pose")
    try:
        feeder.start()
        held: PoseEstimator | None = None  # tracker whose state is at the end of the accepted track
        free: list[PoseEstimator] = []
        inflight: deque[_Job] = deque()
        k = 0
        while True:
            total = buf.total
            while len(inflight) < workers and (total is None or start_of(k) < total):
                if inflight:
                    tracker, warm = (free.pop() if free else new_tracker()), True
                else:
                    tracker, warm = (held or new_tracker()), False
                job = _Job(k, start_of(k), start_of(k + 1), tracker, warm)
                job.future = pool.submit(run, job)
                inflight.append(job)
                k += 1
                total = buf.total
            if not inflight:
                break
            job = inflight.popleft()
            out, warm, stop = job.future.result()
            stats["segments"] += 1
            if stop <= job.start:  # dispatched past the end of the clip
                free.append(job.tracker)
                continue
            check = [i for i in sorted(warm)[-AGREE_FRAMES:] if i in results]
            if job.warm and held is not None and not all(agree(results[i], warm[i], aspect[0]) for i in check):
                # Different person (or a lost track) at the boundary: the previous tracker, whose
                # state is at this segment's first frame, goes on until both trackers agree for
                # AGREE_FRAMES frames in a row; from there on the segment's own poses are kept.
                stats["fallbacks"] += 1
                streak, caught_up = 0, False
                for i in range(job.start, stop):
                    f = buf.get(i)
                    mine = held.process(f.image, f.time)
                    streak = streak + 1 if agree(mine, out[i], aspect[0]) else 0
                    out[i] = mine
                    if streak >= AGREE_FRAMES:
                        caught_up = True
                        break
                stats["fallback_frames"] = stats.get("fallback_frames", 0) + (i - job.start + 1)
                if caught_up and i + 1 < stop:
                    free.append(held)
                    held = job.tracker
                else:
                    free.append(job.tracker)
            else:
                if held is not None and held is not job.tracker:
                    free.append(held)
                held = job.tracker
            results.update(out)
            buf.release_before(max(0, min([stop] + [j.start for j in inflight]) - WARMUP))
        feeder.join()
        total = buf.total or 0
        if buf._error is not None:
            raise buf._error
    finally:
        buf.finish()
        pool.shutdown(wait=True)
        for t in trackers_built:
            try:
                t.close()
            except Exception:
                pass
    stats["trackers"] = len(trackers_built)
    return TrackOutput(
        results=[results.get(i) for i in range(total)],
        times=times[:total],
        durations=durations[:total],
        frame_diffs=np.asarray(diffs[: max(0, total - 1)], np.float32),
        stats=stats,
    )
