"""decode -> estimate -> follow one performer -> score. Returns a Motion; the library stores it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from motionlib.core.errors import InputError, NoPersonError
from motionlib.core.motion import Motion
from motionlib.core.skeleton import get_skeleton
from motionlib.ingest.estimators import EstimatorSpec, spec_for
from motionlib.media.video import VideoInfo

if TYPE_CHECKING:
    from motionlib.processing.quality import QualityReport

PIPELINE_VERSION = 2  # bump when a change alters what the same settings produce


@dataclass
class IngestOptions:
    whole_body: bool = False  # = mediapipe-holistic
    task_file: Path | None = None  # = mediapipe-tasks with this model (default: the cached pose model)
    start: float | None = None
    end: float | None = None
    max_size: int = 640  # long side of the frames given to the estimator, in pixels
    workers: int = 0  # pose trackers run in parallel; 0 = one per core, at most 4
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    estimator: str | None = None  # estimators.ESTIMATORS; None: MediaPipe (by whole_body/task_file, else the default)
    models_config: Path | None = None  # where an ONNX estimator's weights are named (core.weights)

    def __post_init__(self):
        if self.max_size < 64:
            raise InputError("{max_size} must be at least 64 pixels", params=["max_size"])
        if self.workers < 0:
            raise InputError("{workers} must be >= 0", params=["workers"])
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{{{name}}} must lie in [0, 1]", params=[name])

    def spec(self) -> EstimatorSpec:
        return spec_for(
            estimator=self.estimator,
            whole_body=self.whole_body,
            task_file=self.task_file,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
            models_config=self.models_config,
        )

    def settings(self) -> dict[str, Any]:
        """Everything that decides the result (not ``workers``: that only changes speed)."""
        return {
            "pipeline": PIPELINE_VERSION,
            "start": self.start,
            "end": self.end,
            "max_size": self.max_size,
        }

    def digest(self) -> str:
        return self.spec().digest(**self.settings())


def _check_length(path: Path, frames: int | None, joints: int, fps: float | None) -> None:
    """Refuse, before any decoding, a clip longer than a stored version may be (core.limits)."""
    from motionlib.core.limits import max_frames

    most = max_frames(joints)
    if frames and frames > most:
        part = int(most / (fps or 30.0))
        raise InputError(f"{path.name} holds about {frames:,} frames; a version holds at most {most:,} frames of "
                         f"{joints} joints: ingest it in parts of up to {part} s with {{start}} and {{end}}",
                         params=["start", "end"])


@dataclass
class Analysis:
    motion: Motion  # the cleaned track: what is stored, scored and used
    quality: "QualityReport"
    info: VideoInfo
    track: dict  # the cleaning report (processing.cleaning.CleanReport.as_dict)
    stats: dict = field(default_factory=dict)
    raw: Motion | None = None  # the estimator's own track, kept beside the cleaned one
    tempo: dict | None = None  # processing.tempo.measure: from the audio track, else the motion


def analyze(
    path: Path,
    options: IngestOptions,
    *,
    on_start: Callable[[int | None], None] | None = None,
    progress: Callable[[int], None] | None = None,
    while_waiting: Callable[[], None] | None = None,
) -> Analysis:
    from motionlib.media import video
    from motionlib.ingest.estimators.mediapipe import TASKS_NAME, quiet_native_stderr
    from motionlib.ingest.tracker import track
    from motionlib.processing.cleaning import clean
    from motionlib.processing.quality import assess, detect_cuts
    from motionlib.ingest.tempo import measure as measure_tempo

    t0 = time.perf_counter()
    spec = options.spec()
    info = video.probe(Path(path))
    span = _expected_span(info, options)
    total_hint = int(round(span * info.average_fps)) if (span and info.average_fps) else info.declared_frames
    _check_length(Path(path), total_hint, get_skeleton(spec.skeleton).num_joints, info.average_fps)
    if on_start:
        on_start(total_hint)
    with quiet_native_stderr():
        out = track(
            info, spec, max_size=options.max_size, start=options.start, end=options.end,
            workers=options.workers, progress=progress, while_waiting=while_waiting,
        )
    t_track = time.perf_counter()
    results = [f.pose for f in out.frames]

    T = len(results)
    skeleton = get_skeleton(spec.skeleton)
    J = skeleton.num_joints
    keypoints = np.full((T, J, 2), np.nan, np.float32)
    confidence = np.zeros((T, J), np.float32)
    world = np.full((T, J, 3), np.nan, np.float32)
    presence = np.zeros((T, J), np.float32) if spec.name == TASKS_NAME else None
    size = np.array([info.width, info.height], np.float32)
    for i, r in enumerate(results):
        if r is None:
            continue
        keypoints[i] = r.xy * size  # normalised to the scaled displayed frame == to the source's
        confidence[i] = r.confidence
        if r.world is not None:
            world[i] = r.world
        if presence is not None and r.presence is not None:
            presence[i] = r.presence
    nan = ~np.isfinite(keypoints).all(axis=2)
    confidence[nan] = 0.0
    times = np.asarray([f.time for f in out.frames], np.float64)
    offset = float(times[0])
    timestamps = times - offset
    steps = np.diff(times)
    last = out.frames[-1].duration or (float(np.median(steps)) if steps.size else 1.0 / (info.average_fps or 30))
    duration = float(times[-1] + last - offset)

    if not np.isfinite(keypoints).any():
        raise NoPersonError(f"no person found in any frame of {info.path.name}")
    common = dict(skeleton=skeleton, timestamps=timestamps, width=info.width, height=info.height,
                  duration=duration)
    raw = Motion(keypoints=keypoints, confidence=confidence, world=world if np.isfinite(world).any() else None,
                 presence=presence, attrs={"source_time_offset": offset}, **common).validate()
    scene_cuts = detect_cuts(out.frame_diffs, timestamps)
    cleaned = clean(keypoints, confidence, timestamps, duration, skeleton, world=raw.world,
                    presence=presence, looks=out.looks, cut_frames=[c["frame"] for c in scene_cuts],
                    body_diffs=out.body_diffs, frame_diffs=out.frame_diffs)
    track_info = cleaned.report.as_dict()
    track_info["recovered_frames"] = out.stats.get("recovered_frames", 0)
    motion = Motion(keypoints=cleaned.keypoints, confidence=cleaned.confidence, world=cleaned.world,
                    presence=cleaned.presence, attrs={"source_time_offset": offset}, **common).validate()
    quality = assess(
        motion.keypoints, motion.confidence, timestamps, duration, info.width, info.height,
        track=track_info, skeleton=skeleton, cuts=scene_cuts + cleaned.report.jump_cuts,
    )
    t_tempo = time.perf_counter()
    tempo = measure_tempo(motion, info.path if info.has_audio else None, offset)
    t_tempo = time.perf_counter() - t_tempo
    stats = dict(out.stats)
    stats.update(
        frames=T,
        seconds_tracking=round(t_track - t0, 3),
        seconds_tempo=round(t_tempo, 3),
        seconds_total=round(time.perf_counter() - t0, 3),
        inference_size=list(info.scaled_size(options.max_size)),
    )
    return Analysis(motion=motion, quality=quality, info=info, track=track_info, stats=stats, raw=raw, tempo=tempo)


def _expected_span(info: VideoInfo, options: IngestOptions) -> float | None:
    if info.declared_duration is None:
        return None
    end = min(options.end, info.declared_duration) if options.end else info.declared_duration
    return max(0.0, end - (options.start or 0.0))
