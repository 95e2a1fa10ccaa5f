"""The manifest each version stores beside its arrays (schemas/motion-manifest.schema.json): how
it was made (ingest, edit, import), from what, with which settings, and how it scores.

``name``, ``version``, ``created`` and the kept source's path are filled in at commit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from motionlib import __version__
from motionlib.core.jsonable import jsonable
from motionlib.core.motion import SCHEMA_VERSION, Motion

if TYPE_CHECKING:
    from motionlib.exchange import Imported
    from motionlib.index.reader import MotionRecord
    from motionlib.ingest.pipeline import Analysis, IngestOptions
    from motionlib.processing.ops import Edit
    from motionlib.processing.quality import QualityReport


def motion_fields(m: Motion) -> dict:
    """The manifest fields that describe the stored arrays of Motion ``m``."""
    return {
        "skeleton": m.skeleton.name,
        "joint_names": list(m.skeleton.joint_names),
        "frames": m.frames,
        "fps": round(m.fps, 6),
        "duration": round(m.duration, 6),
        "width": m.width,
        "height": m.height,
        "variable_frame_rate": is_vfr(m.timestamps),
        "arrays": _array_docs(m),
    }


def _array_docs(m: Motion) -> dict:
    return {
        "keypoints": "float32 [T,J,2] pixels of the displayed source frame, NaN when not detected",
        "confidence": "float32 [T,J] visibility in [0,1], 0 when not detected",
        "timestamps": "float64 [T] seconds from the first frame",
        **({"world": "float32 [T,J,3] metres, hip-centred"} if m.world is not None else {}),
        **({"presence": "float32 [T,J] in [0,1]"} if m.presence is not None else {}),
    }


RAW_DOC = ("raw/: the estimator's own track before cleaning (keypoints, confidence, timestamps and, "
           "where it gives them, world and presence), same frames; see docs/fidelity.md")


def is_vfr(timestamps: np.ndarray) -> bool:
    if len(timestamps) < 3:
        return False
    d = np.diff(timestamps)
    return bool((d.max() - d.min()) > 0.1 * np.median(d))


def _model_fields(spec) -> dict:
    """What the manifest says about the estimator's model: for MediaPipe its version and model
    files (the .task bundle or the wheel's TFLite graphs), for an ONNX estimator its weights
    files, each with its SHA-256."""
    from motionlib.ingest.estimators import ESTIMATORS

    if ESTIMATORS.get(spec.name, "mediapipe") == "mediapipe":
        from motionlib.ingest.estimators.mediapipe import mediapipe_version, model_record

        return {"mediapipe_version": mediapipe_version(), "model": model_record(spec)}
    files = {Path(v["path"]).name: v["sha256"] for v in spec.settings.values()
             if isinstance(v, dict) and "sha256" in v and "path" in v}
    return {"model": {"source": "weights files", "file": None, "files": files,
                      "sha256": hashlib.sha256("".join(f"{k} {v}\n" for k, v in sorted(files.items())).encode()).hexdigest()}}


def _unset() -> dict:
    return {"schema_version": SCHEMA_VERSION, "name": None, "version": None, "created": None}


def ingest_manifest(path: Path, sha: str, size: int, options: "IngestOptions", analysis: "Analysis") -> dict:
    from motionlib.ingest.estimators import library_of

    m, info, spec = analysis.motion, analysis.info, options.spec()
    return jsonable({
        **_unset(),
        **motion_fields(m),
        "source": {
            "file_name": path.name,
            "sha256": sha,
            "size_bytes": size,
            "container": info.container,
            "codec": info.codec,
            "coded_width": info.coded_width,
            "coded_height": info.coded_height,
            "rotation": info.rotation,
            "declared_duration": info.declared_duration,
            "average_fps": info.average_fps,
            "time_offset": m.attrs.get("source_time_offset", 0.0),
            "aligned": True,
            "start": options.start,
            "end": options.end,
            "kept_path": None,
        },
        "estimator": {
            "name": spec.name,
            "library": library_of(spec),
            **_model_fields(spec),
            "settings": spec.settings,
            "inference_size": analysis.stats.get("inference_size"),
            "settings_digest": options.digest(),
            "workers": analysis.stats.get("workers"),
        },
        "lineage": {"source_sha256": sha, "parent": None, "operation": "ingest",
                    "params": {"start": options.start, "end": options.end},
                    "result": {"cleaning": cleaning_summary(analysis.track)}},
        "quality": analysis.quality.as_dict(),
        "track": analysis.track,
        "tempo": analysis.tempo,
        "raw": RAW_DOC if analysis.raw is not None else None,
        "motionlib_version": __version__,
    })


def cleaning_summary(track: dict) -> dict:
    """What cleaning changed, for the lineage: counts, and each range as [first, end) frames
    (the track report beside it has the times and reasons)."""
    return {
        "swapped_frames": track.get("swapped_frames", 0),
        "rejected_frames": track.get("rejected_frames", 0),
        "recovered_frames": track.get("recovered_frames", 0),
        "doubted_joints": track.get("doubted_joints", 0),
        "swaps": [[s["part"], s["start_frame"], s["end_frame"]] for s in track.get("swaps", [])],
        "rejected": [[r["reason"], r["start_frame"], r["end_frame"]] for r in track.get("rejected", [])],
        "jump_cuts": [c["frame"] for c in track.get("jump_cuts", [])],
    }


def derived_manifest(parent: "MotionRecord", pm: dict, edit: "Edit", quality: "QualityReport", track: dict) -> dict:
    """The manifest of an edit's result: the parent's (``pm``), with the new arrays, lineage and
    scores; its source offset moves with a trim, and ``aligned`` drops once frames leave the
    source's."""
    m = edit.motion
    src = dict(pm["source"])
    offset = float(src.get("time_offset") or 0.0)
    aligned = bool(src.get("aligned", True)) and edit.aligned
    if edit.span is not None:
        offset += edit.span[0]
    src.update(time_offset=round(offset, 6), aligned=aligned)
    return jsonable({
        **pm,
        **_unset(),
        **motion_fields(m),
        "source": src,
        "lineage": {
            "source_sha256": pm["lineage"].get("source_sha256"),
            "parent": parent.ref,
            "operation": edit.operation,
            "params": edit.params,
            "result": edit.result,
        },
        "quality": quality.as_dict(),
        "track": track,
        **_child_tempo(pm.get("tempo"), edit, parent.ref),
        "motionlib_version": __version__,
    })


def _child_tempo(stored: dict | None, edit: "Edit", parent_ref: str) -> dict:
    """The child's ``tempo`` field: the parent's stored one carried over; else the one the edit
    measured on the parent (retime --bpm, loop --beats of a version stored without one)."""
    if stored and stored.get("bpm"):
        return {"tempo": carry_tempo(stored, edit, parent_ref)}
    if edit.tempo:
        return {"tempo": carry_tempo(edit.tempo, edit, parent_ref)}
    return {"tempo": stored} if stored is not None else {}


def carry_tempo(tempo: dict, edit: "Edit", parent_ref: str) -> dict:
    """The parent's tempo on the child's timeline: beats kept where the child keeps them,
    moved and scaled like its time; the tempo scaled by the edit's speed (``time_scale``)."""
    if not tempo.get("bpm"):
        return tempo
    s = edit.time_scale
    beats = [round(t, 3) for t in (_map_time(float(b), edit) for b in tempo.get("beats") or []) if t is not None]
    out = dict(tempo, bpm=round(float(tempo["bpm"]) * s, 3), period=round(float(tempo["period"]) / s, 5),
               beats=beats, beat_count=len(beats), carried_from=parent_ref)
    if tempo.get("cycle") is not None:
        out["cycle"] = round(float(tempo["cycle"]) / s, 4)
    out.pop("beats_dropped", None)
    return out


def import_manifest(got: "Imported", quality: "QualityReport") -> dict:
    from motionlib.processing.tempo import measure as measure_tempo

    m = got.motion
    digest = hashlib.sha256(json.dumps(got.settings, sort_keys=True).encode()).hexdigest()[:16]
    return jsonable({
        **_unset(),
        **motion_fields(m),
        "source": {
            "file_name": got.file_name, "sha256": got.sha256, "size_bytes": got.size_bytes,
            "container": got.settings["format"], "codec": None, "coded_width": None, "coded_height": None,
            "rotation": 0, "time_offset": 0.0, "start": None, "end": None, "kept_path": None,
            "aligned": False,
        },
        "estimator": {
            "name": "import", "library": got.settings["format"], "settings": got.settings,
            "inference_size": None, "settings_digest": digest,
        },
        "lineage": {"source_sha256": got.sha256, "parent": None, "operation": "import",
                    "params": got.settings, "result": {"notes": got.notes}},
        "quality": quality.as_dict(),
        "track": {"swaps": [], "rejected": [], "jump_cuts": [], "doubted_joints": 0, "people": 1,
                  "swapped_frames": 0, "rejected_frames": 0, "recovered_frames": 0},
        "tempo": measure_tempo(m),
        "motionlib_version": __version__,
    })


def _map_time(t: float, edit: "Edit") -> float | None:
    """Parent seconds -> child seconds for an edit, None when that moment is not in the child."""
    t0 = edit.span[0] if edit.span else 0.0
    if edit.span and not (edit.span[0] <= t < edit.span[1]):
        return None
    child = (t - t0) / edit.time_scale
    return child if 0 <= child < edit.motion.duration else None


def _map_span(span: dict, edit: "Edit") -> dict | None:
    """A [start, end) seconds span of the parent on the child's timeline, clipped; None if gone."""
    a, b = float(span["start"]), float(span["end"])
    if edit.span:
        a, b = max(a, edit.span[0]), min(b, edit.span[1])
        a, b = a - edit.span[0], b - edit.span[0]
    a, b = a / edit.time_scale, min(b / edit.time_scale, edit.motion.duration)
    if b <= a or a >= edit.motion.duration:
        return None
    ts = edit.motion.timestamps
    fa, fb = int(np.searchsorted(ts, a - 1e-6)), int(np.searchsorted(ts, b - 1e-6))
    if fb <= fa:
        return None
    return dict(span, start=round(a, 3), end=round(b, 3), start_frame=fa, end_frame=fb, frames=fb - fa)


def carry_events(parent_manifest: dict, edit: "Edit") -> tuple[dict, list[dict]]:
    """The parent's hard cuts and track jumps, moved to the child's timeline (those it keeps)."""
    ts = edit.motion.timestamps
    q = parent_manifest.get("quality", {})
    cuts = []
    for cut in q.get("details", {}).get("framing", {}).get("cuts", []):
        t = _map_time(float(cut["time"]), edit)
        if t is not None and t > 0:
            cuts.append(dict(cut, time=round(t, 3), frame=int(np.searchsorted(ts, t - 1e-6))))
    track = parent_manifest.get("track") or {}
    carried = {k: v for k, v in track.items() if k not in ("swaps", "rejected", "jump_cuts", "jumps")}
    for key in ("swaps", "rejected"):
        carried[key] = [m for m in (_map_span(s, edit) for s in track.get(key, [])) if m is not None]
    carried["jump_cuts"] = [c for c in cuts if c.get("kind") == "jump"]
    if "jumps" in track:  # a parent stored before cleaning existed
        jumps = []
        for jump in track["jumps"]:
            t = _map_time(float(jump["time"]), edit)
            if t is not None:
                jumps.append(dict(jump, time=round(t, 3), frame=int(np.searchsorted(ts, t - 1e-6))))
        carried["jumps"] = jumps
        if not (edit.span is None or jumps):
            carried["dropped_frames"] = 0
    if edit.span is not None and not carried["rejected"]:
        carried["people"] = min(1, int(track.get("people", 0)))
    from motionlib.processing.cleaning import swapped_frames

    carried["swapped_frames"] = swapped_frames(carried["swaps"])
    carried["rejected_frames"] = int(sum(s["frames"] for s in carried["rejected"]))
    return carried, cuts
