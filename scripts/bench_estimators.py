#!/usr/bin/env python
"""The Tasks estimator against the legacy one on real clips, with a Tasks bundle made from the
legacy wheel's own models.

    .venv/bin/python scripts/bench_estimators.py [--clips demo,single,multi] [--end S] [--noise] [--json OUT]
    .venv/bin/python scripts/bench_estimators.py --bundle-only OUT.task

Python 3.13+ runs the Tasks API PoseLandmarker with the publisher's pose_landmarker_full.task
(`motionlib models fetch pose`), which cannot be downloaded here. A .task file is a zip of two
TFLite models, ``pose_detector.tflite`` and ``pose_landmarks_detector.tflite``; the legacy wheel
(mediapipe <= 0.10.21) carries BlazePose's two models, ``modules/pose_detection/pose_detection.tflite``
and ``modules/pose_landmark/pose_landmark_full.tflite``, without the TFLite metadata the Tasks graph
reads its input normalisation from ("Input tensor has type float32: it requires specifying
NormalizationOptions metadata"). ``assemble_bundle`` writes that metadata with mediapipe's own
metadata writer (the detector takes [-1, 1], the landmark model [0, 1], as the legacy graphs'
ImageToTensorCalculator options say) and zips the two as the Tasks bundle. The same weights then run
through both paths, so what differs is the graph around them (ROI, tracking, smoothing): the
distances below measure the Tasks path itself, not a different model. The bundle loads on
mediapipe 0.10.14, 0.10.21 and 1.x (Python 3.13).

Each clip is ingested twice by the pipeline (``analyze``; one worker): ``--estimator
mediapipe-pose`` and ``--estimator mediapipe-tasks --task-file BUNDLE``. On the estimators' own
tracks (before cleaning), for the frames where both found the performer: the distance of each
joint between the two, in pixels and in torso lengths (legacy's shoulder-midpoint to hip-midpoint
in that frame); median and 90th percentile over all joints, and over the joints both see
(visibility >= 0.5). Also: frames found by one path only, and the same figures after cleaning.
With ``--noise``, the legacy path against itself at a 5 % smaller inference size: a noise floor
that says what "the same motion within noise" may mean.

Clips: the Sports2D demo (``demo``), Pose2Sim's single performer by four cameras (``single``) and
its two-person performance (``multi``; the two paths may follow different people there, which the
``far_frames`` count shows); `scripts/fetch_samples.py --pose2sim` fetches them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "assets" / "samples"
CLIPS = {
    "demo": [SAMPLES / "demo.mp4"],
    "single": [SAMPLES / "pose2sim" / "single" / f"cam0{i}.mp4" for i in range(1, 5)],
    "multi": [SAMPLES / "pose2sim" / "multi" / f"cam0{i}.mp4" for i in range(1, 5)],
}
# input normalisation of the legacy graphs (pose_detection_cpu / pose_landmark_by_roi_cpu):
# value = (pixel - mean) / std
DETECTOR = ("modules/pose_detection/pose_detection.tflite", "pose_detector.tflite", 127.5, 127.5)
LANDMARKS = ("modules/pose_landmark/pose_landmark_full.tflite", "pose_landmarks_detector.tflite", 0.0, 255.0)
SHOULDERS, HIPS = [11, 12], [23, 24]


class NoBundle(Exception):
    """The bundle cannot be made with this mediapipe (no legacy models, or no metadata writer)."""


def assemble_bundle(out: Path) -> Path:
    """Write a Tasks pose landmarker bundle made of the legacy wheel's models to ``out``."""
    from motionlib.ingest.estimators.mediapipe import _import_mediapipe, mediapipe_root, mediapipe_version

    root = mediapipe_root()
    if root is None or not all((root / src).is_file() for src, *_ in (DETECTOR, LANDMARKS)):
        raise NoBundle(f"mediapipe {mediapipe_version()} has no legacy pose models to build a bundle from")
    _import_mediapipe()
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils
        from mediapipe.tasks.python.metadata.metadata_writers.model_asset_bundle_utils import (
            create_model_asset_bundle,
        )
    except ImportError as err:
        raise NoBundle(f"mediapipe {mediapipe_version()} has no TFLite metadata writer ({err})") from None
    models = {}
    for src, name, mean, std in (DETECTOR, LANDMARKS):
        model = (root / src).read_bytes()
        writer = metadata_writer.MetadataWriter.create(bytearray(model))
        writer.add_general_info(name.removesuffix(".tflite"), f"{src} of mediapipe {mediapipe_version()}")
        writer.add_image_input(norm_mean=[mean], norm_std=[std])
        for i in range(len(writer_utils.get_output_tensor_types(model))):
            writer.add_feature_output(name=f"output_{i}")
        content, _ = writer.populate()
        models[name] = bytes(content)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    create_model_asset_bundle(models, str(out))
    return out


def _analyze(path: Path, end: float | None, **kw):
    from motionlib.ingest.pipeline import IngestOptions, analyze

    t = time.perf_counter()
    a = analyze(path, IngestOptions(workers=1, end=end, **kw))
    return a, time.perf_counter() - t


def _stats(x: np.ndarray) -> dict:
    x = x[np.isfinite(x)]
    if not x.size:
        return {"median": None, "p90": None, "n": 0}
    return {"median": round(float(np.median(x)), 3), "p90": round(float(np.percentile(x, 90)), 3), "n": int(x.size)}


def _distances(a, b) -> tuple[dict, dict]:
    """a: legacy, b: tasks (Motions on the same frames) -> (figures, samples for pooling)."""
    ka, kb = a.keypoints, b.keypoints
    T = min(len(ka), len(kb))
    ka, kb, ca, cb = ka[:T], kb[:T], a.confidence[:T], b.confidence[:T]
    found_a = np.isfinite(ka).all(-1).any(-1)
    found_b = np.isfinite(kb).all(-1).any(-1)
    both = found_a & found_b
    torso = np.linalg.norm(ka[:, SHOULDERS].mean(1) - ka[:, HIPS].mean(1), axis=-1)
    d = np.linalg.norm(ka - kb, axis=-1)[both]  # [F, J]
    dt = d / torso[both, None]
    seen = ((ca >= 0.5) & (cb >= 0.5))[both]
    samples = {"px": d.ravel(), "torso": dt.ravel(), "px_seen": np.where(seen, d, np.nan).ravel(),
               "torso_seen": np.where(seen, dt, np.nan).ravel()}
    with np.errstate(all="ignore"):
        per_frame = np.nanmedian(dt, axis=1) if both.any() else np.zeros(0)
    figures = {
        "frames": int(T), "both": int(both.sum()), "legacy_only": int((found_a & ~found_b).sum()),
        "tasks_only": int((found_b & ~found_a).sum()),
        **{k: _stats(v) for k, v in samples.items()},
        # frames whose median joint is more than a torso apart: the paths follow different people
        "far_frames": int((per_frame > 1.0).sum()),
    }
    return figures, samples


def compare(path: Path, bundle: Path, end: float | None = None, noise: bool = False) -> tuple[dict, dict]:
    legacy, t_legacy = _analyze(path, end, estimator="mediapipe-pose")
    tasks, t_tasks = _analyze(path, end, estimator="mediapipe-tasks", task_file=bundle)
    raw, samples = _distances(legacy.raw, tasks.raw)
    cleaned, _ = _distances(legacy.motion, tasks.motion)
    out = {"clip": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path),
           "size": [legacy.info.width, legacy.info.height], "inference_size": legacy.stats["inference_size"],
           "seconds": {"legacy": round(t_legacy, 2), "tasks": round(t_tasks, 2)},
           "raw": raw, "cleaned": cleaned}
    if noise:  # the legacy path against itself on frames 5 % smaller: what "within noise" means
        other, _ = _analyze(path, end, estimator="mediapipe-pose", max_size=int(round(max(legacy.stats["inference_size"]) * 0.95)))
        out["noise_raw"], samples["noise"] = _distances(legacy.raw, other.raw)
    return out, samples


def pooled(samples: list[dict]) -> dict:
    """Median and p90 over every joint of every frame of the clips given (not a mean of per-clip figures)."""
    out = {k: _stats(np.concatenate([s[k] for s in samples])) for k in ("px", "torso", "px_seen", "torso_seen")}
    if all("noise" in s for s in samples):
        out["noise"] = {k: _stats(np.concatenate([s["noise"][k] for s in samples])) for k in ("px", "torso")}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="demo,single,multi", help="comma-separated: demo, single, multi")
    ap.add_argument("--end", type=float, default=None, help="only the first END seconds of each clip")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--noise", action="store_true",
                    help="also the legacy path against itself at a 5%% smaller inference size (a noise floor)")
    ap.add_argument("--bundle", type=Path, default=None, help="use this .task instead of assembling one")
    ap.add_argument("--bundle-only", type=Path, default=None, metavar="OUT", help="only write the bundle to OUT")
    args = ap.parse_args(argv)
    from motionlib.ingest.estimators.mediapipe import mediapipe_version
    from motionlib.ingest.estimators.models import file_sha256

    if args.bundle_only:
        try:
            out = assemble_bundle(args.bundle_only)
        except NoBundle as err:
            print(f"no bundle: {err}", file=sys.stderr)
            return 3
        print(f"{out} sha256 {file_sha256(out)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        try:
            bundle = args.bundle or assemble_bundle(Path(tmp) / "legacy_pose_landmarker.task")
        except NoBundle as err:
            print(f"no bundle: {err}", file=sys.stderr)
            return 3
        report = {"python": sys.version.split()[0], "mediapipe": mediapipe_version(),
                  "bundle_sha256": file_sha256(bundle), "clips": [], "pooled": {}}
        groups: dict[str, list] = {}
        for group in args.clips.split(","):
            for path in CLIPS[group]:
                if not path.is_file():
                    print(f"skipped {path} (missing: scripts/fetch_samples.py --pose2sim)", file=sys.stderr)
                    continue
                r, samples = compare(path, bundle, args.end, args.noise)
                r["group"] = group
                report["clips"].append(r)
                groups.setdefault(group, []).append(samples)
                raw = r["raw"]
                print(f"{r['clip']:40s} frames {raw['frames']:4d} both {raw['both']:4d} (legacy only "
                      f"{raw['legacy_only']}, tasks only {raw['tasks_only']}, far {raw['far_frames']})  px median "
                      f"{raw['px']['median']} p90 {raw['px']['p90']}  torso median {raw['torso']['median']} p90 "
                      f"{raw['torso']['p90']}  [{r['seconds']['legacy']} s / {r['seconds']['tasks']} s]", flush=True)
        for group, samples in list(groups.items()) + [("all", [s for g in groups.values() for s in g])]:
            if samples:
                report["pooled"][group] = p = pooled(samples)
                print(f"pooled {group:7s} px median {p['px']['median']} p90 {p['px']['p90']}  torso median "
                      f"{p['torso']['median']} p90 {p['torso']['p90']}  (joints both see: px "
                      f"{p['px_seen']['median']} / {p['px_seen']['p90']}, torso {p['torso_seen']['median']} / "
                      f"{p['torso_seen']['p90']}; n {p['px']['n']})"
                      + (f"; noise floor px {p['noise']['px']['median']} / {p['noise']['px']['p90']}, torso "
                         f"{p['noise']['torso']['median']} / {p['noise']['torso']['p90']}" if "noise" in p else ""))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
