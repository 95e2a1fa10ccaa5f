"""The render pipeline: resolve -> retarget (cached) -> pose maps -> chunk plan -> backend ->
H.264 at the motion's timing -> record.

``prepare`` does every check that can fail (motion, identity, backend and its parameters, output
path) without heavy work, so a batch fails before its first render starts. ``run`` performs one
prepared job; its record is written before the work (status ``running``) and finished as ``done``
or ``failed``. The video is written aside and renamed into place, so an interrupted render never
leaves a half file under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from motionlib.core.errors import InputError
from motionlib.core.names import file_stem

PIPELINE_VERSION = 1
DEFAULT_LONG_SIDE = 512


@dataclass
class RenderJob:
    motion: str
    identity: str
    backend: str = "pose"
    output: str | None = None
    size: str | None = None  # long side or WxH of the picture (identity frame), default 512
    retarget: str = "bones"
    seed: int | None = None
    prompt: str = ""
    negative_prompt: str = ""
    threshold: float = 0.3
    params: dict[str, Any] = field(default_factory=dict)
    campaign: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Prepared:
    job: RenderJob
    motion: Any  # MotionRecord
    identity: Any  # IdentityRecord
    backend: Any  # Backend
    output: Path
    width: int  # pose-map size (identity frame, scaled)
    height: int
    seed: int
    params: dict


def default_output(job: RenderJob, directory: Path) -> Path:
    base = f"{file_stem(job.motion)}_{file_stem(job.identity)}_{job.backend}"
    path = directory / f"{base}.mp4"
    n = 2
    while path.exists():
        path = directory / f"{base}-{n}.mp4"
        n += 1
    return path


def prepare(lib, job: RenderJob, *, overwrite: bool = False, taken: set[Path] | None = None,
            default_dir: Path = Path("renders")) -> Prepared:
    """Check a job and resolve everything it needs; no rendering, nothing written."""
    from motionlib.render.backends import get_backend
    from motionlib.render.encode import check_output
    from motionlib.render.posemap import output_size
    from motionlib.render.retarget import METHODS

    record = lib.get(job.motion)
    identity = lib.get_identity(job.identity)
    backend = get_backend(job.backend)
    backend.check(job.params)
    params = backend.resolve({**backend.defaults, **job.params})
    if job.retarget not in METHODS:
        raise InputError(f"--retarget {job.retarget!r}: choose {' or '.join(METHODS)}")
    if not 0 <= job.threshold <= 1:
        raise InputError("--threshold must lie in [0, 1]")
    if job.seed is not None and not (0 <= int(job.seed) < 2**63):
        raise InputError("--seed must be a non-negative integer below 2^63")
    w, h = output_size(identity.width, identity.height, job.size, default_long=DEFAULT_LONG_SIDE)
    m = backend.multiple
    w, h = w // m * m, h // m * m
    if min(w, h) < max(16, m):
        raise InputError(f"--size gives {w}x{h}: too small for backend {job.backend!r}")
    if job.output and not (job.campaign and not Path(job.output).parent.exists()):
        out = Path(job.output).expanduser()
        check_output(out, overwrite=overwrite)
    else:
        # a directory we create: the default ./renders, -o DIR, or a campaign's output_dir
        directory = Path(job.output).parent if job.output else Path(default_dir)
        _check_creatable(directory)
        out = Path(job.output) if job.output else default_output(job, directory)
    if taken is not None:
        if out.resolve() in taken:
            raise InputError(f"two jobs would write {out}")
        taken.add(out.resolve())
    seed = int(job.seed) if job.seed is not None else secrets.randbelow(2**31)
    return Prepared(job, record, identity, backend, out, w, h, seed, params)


def _check_creatable(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} exists and is not a directory")
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise InputError(f"cannot write into {directory}: {probe} is not writable")


def retarget_cached(lib, prep: Prepared, motion):
    """Retarget, reusing an earlier result for the same (motion version, identity, method)."""
    from dataclasses import replace

    from motionlib.render.retarget import RETARGET_VERSION, IdentityBody, Retargeted, retarget

    key_src = json.dumps([prep.motion.store_path, prep.motion.created, prep.identity.sha256,
                          prep.identity.pose, prep.job.retarget, RETARGET_VERSION], sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    path = lib.cache_dir("retarget") / f"{key}.npz"
    ident = IdentityBody.from_record(prep.identity)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                kp, conf, report = z["keypoints"], z["confidence"], json.loads(str(z["report"]))
            m = replace(motion, keypoints=kp, confidence=conf, width=ident.width, height=ident.height,
                        world=None, attrs={}).validate()
            return Retargeted(m, prep.job.retarget, dict(report, cached=True))
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
            path.unlink(missing_ok=True)
    result = retarget(motion, ident, prep.job.retarget)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    with open(tmp, "wb") as f:
        np.savez(f, keypoints=result.motion.keypoints, confidence=result.motion.confidence,
                 report=np.array(json.dumps(result.report)))
    os.replace(tmp, path)
    result.report["cached"] = False
    return result


def run(lib, prep: Prepared, progress: Callable[[str, int, int], None] | None = None):
    """Render one prepared job; returns its finished RenderRecord (raises after recording a failure)."""
    from motionlib.core.openpose import to_openpose
    from motionlib.render import posemap
    from motionlib.render.backends import RenderContext
    from motionlib.render.encode import write_mp4

    progress = progress or (lambda stage, done, total: None)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    render_id = lib.start_render(prep)
    try:
        t = time.perf_counter()
        motion = lib.load(prep.motion.ref)
        image = lib.identity_image(prep.identity)
        timings["resolve"] = time.perf_counter() - t
        t = time.perf_counter()
        retargeted = retarget_cached(lib, prep, motion)
        timings["retarget"] = time.perf_counter() - t
        w, h = prep.width, prep.height
        place = posemap.Placement.fit(prep.identity.width, prep.identity.height, w, h)
        op = to_openpose(retargeted.motion)

        def pose_map(i: int) -> np.ndarray:
            return posemap.draw(op.frame(i), w, h, placement=place, threshold=prep.job.threshold)

        import cv2

        still = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        ctx = RenderContext(still, pose_map, retargeted.motion, w, h, prep.seed, prep.job.prompt,
                            prep.job.negative_prompt, prep.params)
        if prep.backend.needs_face:
            t = time.perf_counter()
            ctx.source_face, prep.backend.report["face_video"] = _faces(lib, prep, motion, image)
            timings["faces"] = time.perf_counter() - t
        plan = prep.backend.plan(motion.frames, motion.fps)
        t = time.perf_counter()
        frames = _watch(prep.backend.render(ctx, plan, progress))
        write_mp4(prep.output, frames, motion.timestamps, motion.duration)
        timings["render_encode"] = time.perf_counter() - t
        from motionlib.library import _hash_and_copy

        sha = _hash_and_copy(prep.output, None)[0]
        timings["total"] = time.perf_counter() - t_all
        extra = {"warnings": _framing_warnings(retargeted.motion), "retarget": retargeted.report, "chunks": [[c.start, c.stop] for c in plan],
                 "frames": motion.frames, "duration": motion.duration, "output_size": _video_size(prep, w, h)}
        if prep.backend.report:
            extra["backend_report"] = dict(prep.backend.report)
        record = lib.finish_render(render_id, "done", output_sha256=sha, timings=timings, extra=extra)
        _write_sidecar(prep.output, record, extra)
        return record
    except BaseException as err:
        reason = "interrupted" if isinstance(err, KeyboardInterrupt) else (str(err) or type(err).__name__)
        timings["total"] = time.perf_counter() - t_all
        lib.finish_render(render_id, "failed", error=reason, timings=timings)
        try:
            err.render_id = render_id  # lets a batch report this job's record
        except AttributeError:
            pass
        raise


def _faces(lib, prep: Prepared, motion, image: np.ndarray):
    """Face crops for each frame: from the kept source clip when the version still sits on it,
    else the identity's own face. Returns (frame -> crop, where they came from)."""
    from motionlib.render import face

    size = prep.backend.face_size()
    found = lib.aligned_source(prep.motion)
    crops = None if isinstance(found, str) else face.source_faces(motion, *found, size)
    if crops is not None:
        return (lambda i: crops[i]), "source"
    still = face.identity_face(image, prep.identity, size)
    if still is None:
        raise InputError(f"backend {prep.job.backend!r} needs a face: the source clip of {prep.motion.ref} is not "
                         f"kept or shows none, and identity {prep.identity.name!r} shows no face either")
    return (lambda i: still), "identity"


def _framing_warnings(m) -> list[str]:
    """Say when the retargeted performer leaves the picture (travel is kept, scaled)."""
    from motionlib.processing.tracking import body_centre_and_scale

    centre, _ = body_centre_and_scale(m.keypoints, m.skeleton)
    known = np.isfinite(centre).all(axis=1)
    if not known.any():
        return []
    c = centre[known]
    out = ((c[:, 0] < 0) | (c[:, 0] > m.width) | (c[:, 1] < 0) | (c[:, 1] > m.height)).mean()
    if out >= 0.05:
        return [f"the performer's hips are outside the picture in {round(100 * out)}% of frames: the motion "
                "travels further than the picture allows (try `motionlib in-place` on it first)"]
    return []


def _watch(frames):
    """Pass frames through; the test hook MOTIONLIB_FAULT=render-frames stops after 10 of them."""
    from motionlib.library import _fault

    for i, frame in enumerate(frames):
        if i == 10:
            _fault("render-frames")
        yield frame


def _video_size(prep: Prepared, w: int, h: int) -> list[int]:
    vw, vh = prep.backend.output_size(w, h, prep.params)
    return [vw + vw % 2, vh + vh % 2]


def _write_sidecar(output: Path, record, extra: dict) -> None:
    from motionlib import __version__

    doc = {"motionlib_render": 1, "motionlib_version": __version__, **record.to_json(), **extra}
    side = output.with_name(output.name + ".json")
    tmp = side.with_name(f".{side.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, side)
