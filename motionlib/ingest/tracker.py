"""Run a video-mode pose estimator over a clip, on several cores.

MediaPipe's tracker is sequential (each frame's region comes from the previous frame) and one graph
uses one core; in one Python process, decoding and several graphs fight over the GIL. So the clip
is cut in time into consecutive *segments*, one per worker **process**; each worker decodes its own
segment (seeking to it) and tracks it. A worker whose segment does not start the clip first *warms
up* on the ``WARMUP`` frames before its start. Stitching segment k after segment k-1: the warm-up
poses of k must agree with the poses of k-1 for the same frames (same person, within a quarter
torso); otherwise worker k-1, whose tracker state is exactly at segment k's first frame, goes on
until both agree for ``AGREE_FRAMES`` frames in a row, and its poses replace those of segment k up
to there. A stitched track therefore differs from a purely sequential one only in the smoothing
filter's first frames after a boundary, and a disagreement costs time, never a silent switch of
person. With one worker (``--workers 1``, short clips, or a length the container does not state)
everything runs in this process, decoding in a thread ahead of the tracker.

Worker protocol (pickles on the worker's stdin/stdout, see ``motionlib.ingest._worker``):
main -> worker: the job dict; later ("stop",) or ("extend", reference frames).
worker -> main: ("progress", n), ("frames", [FrameRecord...], warm), ("done", stats),
("extended", [FrameRecord...]), ("error", kind, message).
"""

from __future__ import annotations

import collections
import itertools
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from motionlib.core.errors import EstimatorError, MediaError, MotionlibError
from motionlib.ingest.estimators.base import THREADS_ENV, EstimatorSpec, PoseEstimator, PoseResult
from motionlib.media.video import VideoInfo

WARMUP = 8  # frames a worker's fresh tracker runs before its segment starts
AGREE_FRAMES = 3  # consecutive agreeing frames that make two tracks "the same"
MIN_SEGMENT_SECONDS = 2.0
RECOVER_SECONDS = 1.0  # how far back the backward pass goes (frames kept in memory for it)
RECOVER_MIN_RUN = 2  # missed frames in a row (inside a track) that call for the backward pass
RECOVER_WARMUP = 3  # frames the backward tracker runs where the forward one found someone

Progress = Callable[[int], None]


def default_workers() -> int:
    """One tracker per spare core, at most 4. On two cores a single in-process tracker with the
    decoder in a thread wins: measured on the sample clip (and a 30 s clip), two worker
    processes lost to it (start-up of a second interpreter, and catch-ups at the boundary)."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores - 1)


@dataclass
class FrameRecord:
    time: float
    duration: float | None
    diff: float | None  # mean abs difference to the previous frame's grey thumbnail
    pose: PoseResult | None
    look: np.ndarray | None = None  # body colours (see body_look), None when nobody was found
    recovered: bool = False  # found by the backward pass (SegmentRunner), not the forward one
    body_diff: float | None = None  # mean abs RGB change (0-1) inside the last frame's body box


@dataclass
class TrackOutput:
    frames: list[FrameRecord]
    stats: dict = field(default_factory=dict)

    @property
    def looks(self) -> np.ndarray:
        """[T, 9] body colours per frame (NaN where unknown)."""
        out = np.full((len(self.frames), LOOK_SIZE), np.nan, np.float32)
        for i, f in enumerate(self.frames):
            if f.look is not None:
                out[i] = f.look
        return out

    @property
    def body_diffs(self) -> np.ndarray:
        """[T] how much the picture changed where the body was (NaN where unknown): a jump cut
        in a static scene shows here, not in the whole frame's difference."""
        return np.asarray([np.nan if f.body_diff is None else f.body_diff for f in self.frames], np.float32)

    @property
    def frame_diffs(self) -> np.ndarray:
        return np.asarray([f.diff if f.diff is not None else 0.0 for f in self.frames[1:]], np.float32)


LOOK_SIZE = 9


@dataclass(frozen=True)
class BodyIndex:
    """Where a layout keeps the joints the tracker looks at: its body joints (no hand or face
    blocks), shoulders, hips and knees."""

    body: tuple[int, ...]
    shoulders: tuple[int, int]
    hips: tuple[int, int]
    knees: tuple[int, int]

    @classmethod
    def of(cls, skeleton=None) -> "BodyIndex":
        from motionlib.core.skeleton import MEDIAPIPE_POSE_33

        sk = skeleton or MEDIAPIPE_POSE_33
        pair = lambda j: (sk.index(f"left_{j}"), sk.index(f"right_{j}"))  # noqa: E731
        return cls(tuple(sk.body), pair("shoulder"), pair("hip"), pair("knee"))

    @property
    def look_points(self) -> tuple[tuple[int, ...], ...]:
        """Torso centre, middle of each thigh."""
        (ls, rs), (lh, rh), (lk, rk) = self.shoulders, self.hips, self.knees
        return ((ls, rs, lh, rh), (lh, lk), (rh, rk))

    def torso(self, xy: np.ndarray) -> float:
        (ls, rs), (lh, rh) = self.shoulders, self.hips
        return float(np.linalg.norm((xy[ls] + xy[rs]) / 2 - (xy[lh] + xy[rh]) / 2))


MEDIAPIPE_BODY = BodyIndex.of()


def body_look(image: np.ndarray, xy: np.ndarray, index: BodyIndex = MEDIAPIPE_BODY) -> np.ndarray:
    """What the followed person looks like: the mean RGB (0-1) of a small patch at the torso's
    centre and at the middle of each thigh, [9] float32, NaN for a patch outside the image. Used
    to tell the performer from someone else after a break (processing.cleaning). ``index``: where
    the estimator's layout keeps those joints."""
    h, w = image.shape[:2]
    pts = xy * np.array([w, h], np.float32)
    torso = index.torso(pts)
    r = max(1, int(round(0.08 * torso))) if np.isfinite(torso) else 1
    out = np.full(LOOK_SIZE, np.nan, np.float32)
    for k, joints in enumerate(index.look_points):
        c = pts[list(joints)].mean(axis=0)
        if not np.isfinite(c).all():
            continue
        x, y = int(round(c[0])), int(round(c[1]))
        if not (0 <= x < w and 0 <= y < h):
            continue
        patch = image[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]
        out[3 * k:3 * k + 3] = patch.reshape(-1, 3).mean(axis=0) / 255.0
    return out


def body_box(xy: np.ndarray, shape: tuple[int, ...], index: BodyIndex = MEDIAPIPE_BODY) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, y0, x1, y1) around the body's landmarks, grown by a fifth, clipped."""
    h, w = shape[:2]
    pts = xy[list(index.body)] * np.array([w, h], np.float32)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) < 4:
        return None
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.2 * (hi - lo)
    x0, y0 = np.floor(np.maximum(lo - pad, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(hi + pad, [w, h])).astype(int)
    return (int(x0), int(y0), int(x1), int(y1)) if x1 - x0 >= 2 and y1 - y0 >= 2 else None


def agree(a: PoseResult | None, b: PoseResult | None, aspect: float, index: BodyIndex = MEDIAPIPE_BODY) -> bool:
    """Same person in the same place? ``aspect`` = width / height of the frames."""
    if a is None or b is None:
        return a is None and b is None
    body = list(index.body)
    scale = np.array([aspect, 1.0], np.float32)
    xa, xb = a.xy[body] * scale, b.xy[body] * scale
    torso = max(index.torso(a.xy * scale), index.torso(b.xy * scale), 1e-6)
    ok = (a.confidence[body] >= 0.5) & (b.confidence[body] >= 0.5)
    if ok.sum() < 4:
        ok = np.ones(len(body), bool)
    d = np.linalg.norm(xa[ok] - xb[ok], axis=1)
    return bool(np.nanmean(d) <= 0.25 * torso)


# ---------------------------------------------------------------------------- one segment
class SegmentRunner:
    """Decode [start, end) of a clip and track it; optionally warm up first; can go on past
    ``end`` to catch up with a reference track. Used in-process and inside worker processes."""

    def __init__(self, info: VideoInfo, spec: EstimatorSpec, *, max_size: int, start: float | None,
                 end: float | None, warmup: bool, clip_end: float | None = None, prefetch: bool = False,
                 recover: bool = True):
        """``prefetch`` decodes in a thread ahead of the tracker (used when this process has no
        other busy threads; worker processes decode inline, one per core). ``recover``: run the
        backward pass over frames the tracker missed (``_recover``)."""
        from motionlib.media import video

        self.end = end
        self.aspect = info.width / info.height
        fps = info.average_fps or 30.0
        self.warmup = warmup and bool(start)
        begin = max(0.0, start - (WARMUP + 1.5) / fps) if self.warmup else start
        self.seg_start = start
        # the estimator first: a model it refuses stops the run before any frame is decoded
        self.spec = spec
        self.tracker: PoseEstimator = spec.build()
        try:
            frames = video.decode(info, max_size=max_size, start=begin, end=clip_end, threads=False)
            self._frames = video.prefetch(frames) if prefetch else frames
        except BaseException:
            self.tracker.close()
            raise
        self._pending = None  # first frame at/after ``end``, read but not yet used
        self._prev_thumb = None
        self._prev_image: np.ndarray | None = None
        self._prev_box: tuple[int, int, int, int] | None = None
        self.index = BodyIndex.of(_skeleton(spec))
        # a per-frame detector finds in a frame what it finds, forwards or backwards
        self.recover = recover and getattr(self.tracker, "tracking", True)
        self._back: PoseEstimator | None = None  # the backward tracker, built when first needed
        self._recent: collections.deque = collections.deque(maxlen=int(round(RECOVER_SECONDS * fps)) + RECOVER_WARMUP + 1)
        self._due: int | None = None  # index in ``out`` at which to run the backward pass
        self._missed = 0  # frames missed in a row, up to the newest

    def _record(self, f) -> FrameRecord:
        diff = None if self._prev_thumb is None else float(np.abs(f.thumb - self._prev_thumb).mean())
        self._prev_thumb = f.thumb
        pose = self.tracker.process(f.image, f.time)
        look = body_look(f.image, pose.xy, self.index) if pose is not None else None
        moved = None
        prev = self._prev_image
        if self._prev_box is not None and prev is not None and prev.shape == f.image.shape:
            x0, y0, x1, y1 = self._prev_box  # only the box: the whole frame costs ~3 ms
            a = f.image[y0:y1, x0:x1].astype(np.int16)
            moved = float(np.abs(a - prev[y0:y1, x0:x1]).mean()) / 255.0
        self._prev_image = f.image
        self._prev_box = body_box(pose.xy, f.image.shape, self.index) if pose is not None else None
        return FrameRecord(f.time, f.duration, diff, pose, look, body_diff=moved)

    def run(self, progress: Progress | None = None) -> tuple[list[FrameRecord], list[FrameRecord]]:
        """(warm-up records, segment records)."""
        before: list = []  # the last WARMUP frames before the segment
        warm: list[FrameRecord] | None = None
        out: list[FrameRecord] = []
        for f in self._frames:
            if self.warmup and f.time < self.seg_start - 1e-6:
                before = (before + [f])[-WARMUP:]
                continue
            if self.end is not None and f.time >= self.end - 1e-9:
                self._pending = f
                break
            if warm is None:
                warm = [self._record(w) for w in before]
            out.append(self._record(f))
            if self.recover:
                self._watch(f, out)
            if progress:
                progress(len(out))
        if self.recover and self._due is not None:
            self._recover(out)
        return warm or [], out

    def _watch(self, frame, out: list[FrameRecord]) -> None:
        """Keep the last RECOVER_SECONDS of frames; RECOVER_WARMUP frames after the tracker finds
        someone right after missing, schedule the backward pass over what it missed."""
        self._recent.append((len(out) - 1, frame))
        k = len(out) - 1
        if out[k].pose is None:
            self._missed += 1
            return
        run, self._missed = self._missed, 0
        # a single missed frame inside a track is not worth a pass (interpolation is an edit);
        # a late start or a longer loss is
        if self._due is None and run and (run >= RECOVER_MIN_RUN or run == k):
            self._due = k + RECOVER_WARMUP
        if self._due is not None and k >= self._due:
            self._recover(out)

    def _recover(self, out: list[FrameRecord]) -> None:
        """The backward pass: a second tracker, fresh, runs from the newest kept frame back to the
        oldest missed one, and fills the frames the forward pass missed. MediaPipe detects only
        when it has lost a track, so a performer the detector misses (small, backlit, fast) is
        often followed once found. Whether it is the performer is for cleaning to judge."""
        self._due = None
        frames = list(self._recent)
        missed = [k for k, _ in frames if out[k].pose is None]
        if not missed:
            return
        if self._back is None:
            self._back = self.spec.build()
        else:
            self._back.reset()  # nothing of the last pass may carry over
        for k, f in reversed(frames):
            if k < missed[0]:
                break
            pose = self._back.process(f.image, f.time)
            if pose is not None and out[k].pose is None:
                out[k].pose = pose
                out[k].look = body_look(f.image, pose.xy, self.index)
                out[k].recovered = True

    def extend(self, reference: list[FrameRecord]) -> list[FrameRecord]:
        """Go on past ``end`` until this track agrees with ``reference`` (by time) for
        AGREE_FRAMES frames in a row; return the records computed on the way."""
        ref = {round(r.time, 6): r.pose for r in reference}
        out, streak = [], 0
        first = [self._pending] if self._pending is not None else []
        for f in itertools.chain(first, self._frames):
            rec = self._record(f)
            out.append(rec)
            key = round(f.time, 6)
            streak = streak + 1 if key in ref and agree(rec.pose, ref[key], self.aspect, self.index) else 0
            if streak >= AGREE_FRAMES:
                break
        return out

    def close(self) -> None:
        try:
            self._frames.close()
        finally:
            self.tracker.close()
            if self._back is not None:
                self._back.close()


# ---------------------------------------------------------------------------- planning
def plan_segments(info: VideoInfo, start: float | None, end: float | None, workers: int) -> list[float]:
    """Segment boundaries in seconds (len = segments + 1); one segment = run in this process."""
    s0 = start or 0.0
    s1 = min(end, info.declared_duration) if (end and info.declared_duration) else (end or info.declared_duration)
    if workers <= 1 or s1 is None:
        return [s0, s1] if s1 is not None else [s0, float("inf")]
    n = int(max(1, min(workers, (s1 - s0) // MIN_SEGMENT_SECONDS)))
    if n == 1:
        return [s0, s1]
    # Later workers first decode (without converting) from the keyframe before their start:
    # give the first segment a slightly larger share so that all finish together.
    weights = np.array([1.15] + [1.0] * (n - 1))
    cuts = s0 + (s1 - s0) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    return [float(c) for c in cuts]


# ---------------------------------------------------------------------------- entry point
def track(
    info: VideoInfo,
    spec: EstimatorSpec,
    *,
    max_size: int,
    start: float | None,
    end: float | None,
    workers: int = 0,
    progress: Progress | None = None,
    while_waiting: Callable[[], None] | None = None,
    recover_missed: bool = True,
) -> TrackOutput:
    """``while_waiting`` runs in this process while worker processes track (e.g. imports the
    caller needs afterwards); with a single in-process tracker it runs first. ``recover_missed``
    runs the backward pass (``SegmentRunner``) over frames the forward pass missed."""
    workers = workers or default_workers()
    bounds = plan_segments(info, start, end, workers)
    if len(bounds) == 2:
        out = _track_here(info, spec, max_size, start, end, progress, while_waiting, recover_missed)
    else:
        out = _track_workers(info, spec, max_size, bounds, end, progress, while_waiting, recover_missed)
    out.stats["recovered_frames"] = sum(f.recovered for f in out.frames)
    return out


def _track_here(info, spec, max_size, start, end, progress, while_waiting=None, recover=True) -> TrackOutput:
    side = None
    old_interval = sys.getswitchinterval()
    if while_waiting:
        # Runs beside the tracker. Imports are pure Python and hold the GIL; while they run, a
        # short switch interval hands it back quickly to the decoder and tracker (which release
        # it in C code); the usual interval returns as soon as they are done.
        def warm() -> None:
            try:
                while_waiting()
            finally:
                sys.setswitchinterval(old_interval)

        side = threading.Thread(target=warm, name="motionlib-warm", daemon=True)
    runner = SegmentRunner(info, spec, max_size=max_size, start=start, end=end, warmup=False,
                           clip_end=end, prefetch=True, recover=recover)
    try:
        if side is not None:
            sys.setswitchinterval(0.0005)
            side.start()
        _, records = runner.run(progress)
    finally:
        runner.close()
        if side is not None:
            side.join()
        sys.setswitchinterval(old_interval)
    return TrackOutput(records, {"workers": 1, "segments": 1, "fallbacks": 0})


class _Worker:
    def __init__(self, k: int, job: dict, events: queue.Queue, threads: int | None = None):
        env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
        if threads:  # the cores shared out among the workers (an estimator that runs threads reads it)
            env[THREADS_ENV] = str(threads)
        self.k = k
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "motionlib.ingest._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        self.send(job)
        self.thread = threading.Thread(target=self._read, args=(events,), daemon=True)
        self.thread.start()

    def send(self, msg) -> None:
        try:
            pickle.dump(msg, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reader reports the worker's end

    def _read(self, events: queue.Queue) -> None:
        try:
            while True:
                events.put((self.k, pickle.load(self.proc.stdout)))
        except (EOFError, OSError, pickle.UnpicklingError):
            events.put((self.k, ("exit", self.proc.wait())))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _track_workers(info, spec, max_size, bounds, end, progress, while_waiting=None, recover=True) -> TrackOutput:
    n = len(bounds) - 1
    events: queue.Queue = queue.Queue()
    workers: list[_Worker] = []
    done_counts = [0] * n
    warm: dict[int, list[FrameRecord]] = {}
    segs: dict[int, list[FrameRecord]] = {}
    extended: dict[int, list[FrameRecord]] = {}
    finished: set[int] = set()
    stats = {"workers": n, "segments": n, "fallbacks": 0, "fallback_frames": 0}

    def pump() -> None:
        who, msg = events.get()
        kind = msg[0]
        if kind == "progress":
            done_counts[who] = msg[1]
            if progress:
                progress(sum(done_counts))
        elif kind == "frames":
            warm[who], segs[who] = msg[1], msg[2]
        elif kind == "done":
            finished.add(who)
            stats.setdefault("per_worker", {})[who] = msg[1]
        elif kind == "extended":
            extended[who] = msg[1]
        elif kind == "error":
            cls = {"media": MediaError, "estimator": EstimatorError}.get(msg[1], MotionlibError)
            raise cls(msg[2])
        elif kind == "exit" and (who not in finished or who in waiting):
            raise EstimatorError(f"a pose worker process ended unexpectedly (exit code {msg[1]})")

    waiting: set[int] = set()
    try:
        for k in range(n):
            job = {
                "path": str(info.path), "spec": spec, "max_size": max_size,
                "start": bounds[k] if k else (bounds[0] or None),
                "end": bounds[k + 1] if k < n - 1 else end,
                "warmup": k > 0,
                "clip_end": end,
                "recover": recover,
            }
            workers.append(_Worker(k, job, events, threads=max(1, (os.cpu_count() or 1) // n)))
        t0 = time.perf_counter()
        if while_waiting:
            while_waiting()
        stats["while_waiting_s"] = round(time.perf_counter() - t0, 3)
        while len(finished) < n:
            pump()
        aspect = info.width / info.height
        index = BodyIndex.of(_skeleton(spec))
        accepted = list(segs[0])
        owner, k = 0, 1
        while k < n:
            seg = segs[k]
            last = accepted[-1].time if accepted else -1.0
            if not seg or last >= seg[-1].time:  # empty, or an extension already covered it
                k += 1
                continue
            if last >= seg[0].time:  # an extension caught up inside this segment
                accepted.extend(r for r in seg if r.time > last)
                owner, k = k, k + 1
                continue
            by_time = {round(r.time, 6): r.pose for r in accepted[-(WARMUP + 4):]}
            check = [w for w in warm[k][-AGREE_FRAMES:] if round(w.time, 6) in by_time]
            if all(agree(by_time[round(w.time, 6)], w.pose, aspect, index) for w in check):
                accepted.extend(seg)
                owner, k = k, k + 1
                continue
            # Different person or a lost track at the boundary: the tracker that produced the
            # end of ``accepted`` goes on until it agrees with the later segments.
            stats["fallbacks"] += 1
            t_fb = time.perf_counter()
            waiting.add(owner)
            workers[owner].send(("extend", [r for j in range(k, n) for r in segs[j]]))
            while owner not in extended:
                pump()
            waiting.discard(owner)
            ext = extended.pop(owner)
            stats["fallback_frames"] += len(ext)
            stats["fallback_s"] = round(stats.get("fallback_s", 0) + time.perf_counter() - t_fb, 3)
            accepted.extend(ext)
            if not ext:
                accepted.extend(seg)
                owner, k = k, k + 1
        for w in workers:
            w.send(("stop",))
        return TrackOutput(_dedupe(accepted), stats)
    finally:
        for w in workers:
            w.kill()


def _skeleton(spec: EstimatorSpec):
    from motionlib.core.skeleton import get_skeleton

    return get_skeleton(spec.skeleton)


def _dedupe(records: list[FrameRecord]) -> list[FrameRecord]:
    out, last = [], -np.inf
    for r in records:
        if r.time > last:
            out.append(r)
            last = r.time
    return out
