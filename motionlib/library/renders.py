"""Renders: the library owns each one's whole life. A job is checked and its output placed before
any work (``plan_renders``: a batch with one bad job renders nothing); ``render`` records it as
``running``, retargets (cached under ``cache/retarget``), lets the backend make the frames, writes
the video aside and renames it into place, hashes it, and finishes the record (``done``, or
``failed`` with the reason) and the JSON sidecar beside the video. ``render_all`` runs a batch or
a campaign: a failing job is recorded and the others go on. ``render_again`` repeats a recorded
render with every parameter and its seed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, Iterable, Iterator

from motionlib.core.errors import InputError, LibraryError, MotionlibError, RenderFailed, SourceUnavailable
from motionlib.core.faults import fault
from motionlib.core.jsonable import jsonable
from motionlib.core.names import file_stem
from motionlib.library.base import LibraryBase, pid_alive
from motionlib.library.paths import now

if TYPE_CHECKING:
    import numpy as np

    from motionlib.core.motion import Motion
    from motionlib.index.reader import IdentityRecord, MotionRecord, RenderRecord
    from motionlib.render.pipeline import RenderJob, Settings
    from motionlib.render.retarget import IdentityBody, Retargeted

# progress(stage, done, total) while a render runs
Progress = Callable[[str, int, int], None]
DEFAULT_DIR = Path("renders")
AGAIN_FIELDS = ("motion", "identity", "backend", "size", "retarget", "anchor_frame", "seed", "prompt", "negative_prompt",
                "threshold", "params", "campaign")


@dataclass
class Prepared:
    """A checked job: the records it renders, its settings, and where its video goes."""

    job: "RenderJob"
    motion: "MotionRecord"
    identity: "IdentityRecord"
    settings: "Settings"
    output: Path
    done: "RenderRecord | None" = None  # a finished render this job would only repeat (campaigns skip it)

    @property
    def label(self) -> str:
        return f"{self.motion.ref} x {self.identity.name} ({self.job.backend})"


def render_key(sha256: str) -> str:
    """Where a shared library's store keeps a finished render, by content."""
    from motionlib.store.files import content_path

    return f"renders/{content_path(sha256, '.mp4').as_posix()}"


def default_name(job: "RenderJob") -> str:
    """``<motion>_<identity>_<backend>.mp4``."""
    return f"{file_stem(job.motion)}_{file_stem(job.identity)}_{job.backend}.mp4"


def default_output(job: "RenderJob", directory: Path) -> Path:
    """``default_name`` in ``directory``, numbered when taken."""
    base = default_name(job)[:-4]
    path = directory / f"{base}.mp4"
    n = 2
    while path.exists():
        path = directory / f"{base}-{n}.mp4"
        n += 1
    return path


def _check_creatable(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} exists and is not a directory")
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise InputError(f"cannot write into {directory}: {probe} is not writable")


class Renders(LibraryBase):
    # ------------------------------------------------------------------ before any work
    def plan_renders(self, jobs: Iterable["RenderJob"], *, output: Path | None = None, overwrite: bool = False,
                     default_dir: Path = DEFAULT_DIR) -> list[Prepared]:
        """Check every job and place its output, writing nothing. ``output`` is the MP4 of a single
        job, or the directory of several (default ``default_dir``); ``overwrite`` lets a named
        output replace a file."""
        jobs = list(jobs)
        if output is not None:
            output = Path(output)
            if len(jobs) == 1 and output.suffix.lower() == ".mp4":
                jobs[0] = replace(jobs[0], output=str(output))
            elif output.suffix.lower() == ".mp4":
                raise InputError(f"{len(jobs)} renders cannot all be written to {output}; give a directory")
            else:
                default_dir = output
        taken: set[Path] = set()
        return [self._prepare(j, overwrite, taken, Path(default_dir)) for j in jobs]

    def plan_campaign(self, path: Path, *, output: Path | None = None, overwrite: bool = False,
                      redo: bool = False) -> list[Prepared]:
        """The jobs of a campaign file (schemas/campaign.schema.json), checked and placed. A job
        whose video is already at its path, unchanged, from a finished render of the same motion
        version, identity picture and settings comes back with ``done`` set (the campaign skips
        it); ``redo`` renders such jobs again over their own files. Any other file in the way
        keeps its place and the job takes the next free name."""
        from motionlib.render import campaign

        _name, out_dir, jobs = campaign.load(path)
        default_dir = Path(output) if output is not None else out_dir
        if output is not None and default_dir.suffix.lower() == ".mp4":
            raise InputError(f"a campaign's renders cannot all be written to {output}; give a directory")
        finished = self._finished_by_output()
        taken: set[Path] = set()
        prepared = []
        for job in jobs:
            home = Path(job.output) if job.output else default_dir / default_name(job)
            previous = finished.get(str(home.resolve()))
            if previous is not None:
                probe = self._prepare(replace(job, output=str(home)), True, set(), default_dir)
                if self._repeats(probe, previous):
                    if home.resolve() in taken:
                        raise InputError(f"two jobs would write {home}")
                    taken.add(home.resolve())
                    prepared.append(probe if redo else replace(probe, done=previous))
                    continue
            prepared.append(self._prepare(job, overwrite, taken, default_dir))
        return prepared

    def _finished_by_output(self) -> dict[str, "RenderRecord"]:
        """The newest finished render of each output path whose file is still there."""
        out: dict[str, RenderRecord] = {}
        for rec in self.renders():
            if rec.status == "done" and rec.output_sha256 and Path(rec.output).is_file():
                out[rec.output] = rec
        return out

    @staticmethod
    def _repeats(prep: Prepared, previous: "RenderRecord") -> bool:
        """Would ``prep`` make what ``previous`` made: the same motion version, identity picture,
        backend and settings (and seed, when the job names one), and is that file unchanged?"""
        from motionlib.store.files import hash_file

        job, old = prep.job, previous.params
        same = (previous.motion_ref == prep.motion.ref and previous.identity_sha256 == prep.identity.sha256
                and previous.backend == job.backend
                and all(old.get(k) == v for k, v in jsonable(job.to_json()).items()
                        if k not in ("motion", "identity", "output", "seed", "params", "campaign"))
                and old.get("params") == jsonable(prep.settings.params)
                and (job.seed is None or previous.seed == job.seed))
        return same and hash_file(Path(previous.output)).sha256 == previous.output_sha256

    def plan_again(self, render_id: int, *, output: Path | None = None, overwrite: bool = False) -> Prepared:
        """Render ``render_id`` again: its exact motion version, identity picture, parameters and
        seed, written to ``output``, else to the first render's own path - replacing an existing
        file only with ``overwrite``."""
        from motionlib.render.pipeline import RenderJob

        old = self.get_render(render_id)
        p = dict(old.params)
        p.pop("result", None)
        identity = self.get_identity(old.identity_name)
        if identity.sha256 != old.identity_sha256:
            raise InputError(f"identity {old.identity_name!r} is not the picture render {render_id} used "
                             "(it was replaced); cannot reproduce it")
        fields = {k: p[k] for k in AGAIN_FIELDS if k in p}
        fields["motion"] = old.motion_ref  # the exact version, even if the name has newer ones
        fields["seed"] = old.seed
        fields["output"] = str(output) if output is not None else old.output
        return self._prepare(RenderJob(**fields), overwrite, set(), DEFAULT_DIR)

    def _prepare(self, job: "RenderJob", overwrite: bool, taken: set[Path], default_dir: Path) -> Prepared:
        from motionlib.media.encode import check_output
        from motionlib.core.limits import check_frames
        from motionlib.render import pipeline

        if self.read_only:  # every render is recorded in the index
            raise LibraryError(f"{self.shown} is on a read-only disk: renders are recorded in it, so none can run")

        record = self.get(job.motion)
        check_frames(record.ref, record.frames, record.skeleton, record.duration)  # a batch refuses before any job runs
        identity = self.get_identity(job.identity)
        settings = pipeline.check(job, identity.width, identity.height)
        if settings.backend.needs_source:
            self._driving_source(record, job.backend)
        if job.anchor_frame is not None and job.anchor_frame >= record.frames:
            raise InputError(f"{{anchor_frame}} {job.anchor_frame} is outside {record.ref}'s frames "
                             f"0-{record.frames - 1}", params=["anchor_frame"])
        if job.output and not (job.campaign and not Path(job.output).parent.exists()):
            out = Path(job.output).expanduser()
            check_output(out, overwrite=overwrite)
        else:
            # a directory we create: the default ./renders, -o DIR, or a campaign's output_dir
            directory = Path(job.output).parent if job.output else default_dir
            _check_creatable(directory)
            out = Path(job.output) if job.output else default_output(job, directory)
        if out.resolve() in taken:
            raise InputError(f"two jobs would write {out}")
        taken.add(out.resolve())
        return Prepared(job, record, identity, settings, out)

    def _driving_source(self, record: "MotionRecord", backend: str) -> tuple[Path, float]:
        """The kept source clip a ``needs_source`` backend is driven by, or one line saying why there
        is none to use."""
        try:
            return self.aligned_source(record)
        except SourceUnavailable as err:
            raise InputError(f"backend {backend!r} is driven by the version's kept source clip, and " + err.template,
                             params=err.params) from None

    # ------------------------------------------------------------------ running
    def render(self, job: "RenderJob | Prepared", *, overwrite: bool = False,
               progress: Progress | None = None) -> "RenderRecord":
        """Render one job (checked first unless it is already ``Prepared``); returns its record.
        Raises RenderFailed (with the ``failed`` record) when it fails once started."""
        prep = job if isinstance(job, Prepared) else self.plan_renders([job], overwrite=overwrite)[0]
        prep.output.parent.mkdir(parents=True, exist_ok=True)
        return self._run(prep, progress)

    def render_again(self, render_id: int, *, output: Path | None = None, overwrite: bool = False,
                     progress: Progress | None = None) -> "RenderRecord":
        return self.render(self.plan_again(render_id, output=output, overwrite=overwrite), progress=progress)

    def render_all(self, prepared: list[Prepared], *,
                   job_progress: Callable[[Prepared], ContextManager[Progress | None]] | None = None,
                   on_failure: Callable[[Prepared, Exception], None] | None = None) -> list["RenderRecord"]:
        """Run every prepared job in turn (a batch, a campaign): one that fails is recorded as
        failed, reported to ``on_failure``, and the others go on. ``job_progress(prep)`` gives
        each job's progress callback for the time it runs. An interrupt stops the batch (the
        running job is recorded as failed). ``render_all_ray`` runs them on a Ray cluster."""
        self._make_output_dirs(prepared)
        records = []
        for prep in prepared:
            if prep.done is not None:  # already rendered, unchanged: nothing to do
                records.append(prep.done)
                continue
            try:
                with (job_progress(prep) if job_progress else contextlib.nullcontext(None)) as cb:
                    records.append(self._run(prep, cb))
            except Exception as err:  # one failing job does not stop the others
                if isinstance(err, RenderFailed) and err.record is not None:
                    records.append(err.record)
                if on_failure is not None:
                    on_failure(prep, err)
        return records

    def render_all_ray(self, prepared: list[Prepared], address: str, *, workers: int | None = None,
                       progress: Progress | None = None,
                       on_failure: Callable[[Prepared, Exception], None] | None = None,
                       on_retry: Callable[[Prepared, Exception], None] | None = None) -> list["RenderRecord"]:
        """``render_all`` on a Ray cluster (``address``: ``auto``, ``local`` or the cluster's
        address; library/distributed.py): one worker per GPU (else per CPU), each keeping its
        models loaded; a job whose worker dies is rendered again once, then recorded as failed.
        ``progress(label, done, total)`` as jobs finish, in any order; the records come back in
        the order of ``prepared``."""
        from motionlib.library import distributed

        return distributed.render_all(self, prepared, address, workers=workers, progress=progress,
                                      on_failure=on_failure, on_retry=on_retry)

    @staticmethod
    def _make_output_dirs(prepared: list[Prepared]) -> None:
        for d in {p.output.parent for p in prepared if p.done is None}:
            d.mkdir(parents=True, exist_ok=True)

    def _run(self, prep: Prepared, progress: Progress | None) -> "RenderRecord":
        """Record a job as running, render it, finish its record."""
        return self._render_recorded(prep, self._start_render(prep), progress)

    def _render_recorded(self, prep: Prepared, render_id: int, progress: Progress | None, *,
                         worker: dict | None = None) -> "RenderRecord":
        """Render a job whose record ``render_id`` is running (``_start_render``) and finish that
        record: ``done`` with the video's hash, timings and result (``worker``: where it ran, for a
        job on a cluster), else ``failed`` with the reason (RenderFailed raised). The one per-job
        step of ``render_all`` and of the Ray workers (library/distributed.py)."""
        from motionlib.media.encode import write_mp4
        from motionlib.render import fit as fitting
        from motionlib.render import pipeline
        from motionlib.render.retarget import IdentityBody
        from motionlib.store.files import hash_file

        progress = progress or (lambda stage, done, total: None)
        backend = prep.settings.backend
        timings: dict[str, float] = {}
        t_all = time.perf_counter()
        try:
            t = time.perf_counter()
            motion = self.load(prep.motion.ref)
            image = self.identity_image(prep.identity)
            body = IdentityBody.from_record(prep.identity)
            timings["resolve"] = time.perf_counter() - t
            t = time.perf_counter()
            retargeted = self._retarget_cached(prep.motion, prep.identity, prep.job.retarget, motion, body,
                                               prep.job.anchor_frame)
            timings["retarget"] = time.perf_counter() - t
            ctx = pipeline.context(prep.job, prep.settings, retargeted.motion, image, prep.identity.width,
                                   prep.identity.height)
            if backend.needs_face:
                t = time.perf_counter()
                try:
                    source = self.aligned_source(prep.motion)
                except SourceUnavailable:
                    source = None
                ctx.source_face, backend.report["face_video"] = pipeline.face_video(
                    backend, motion, source, image, body,
                    f"the source clip of {prep.motion.ref} is not kept or shows none, and identity "
                    f"{prep.identity.name!r} shows no face either")
                timings["faces"] = time.perf_counter() - t
            if backend.needs_source:
                t = time.perf_counter()
                ctx.source_video, backend.report["driving_video"] = pipeline.driving_video(
                    motion, self._driving_source(prep.motion, prep.job.backend), ctx.width, ctx.height,
                    backend.source_margin(prep.settings.params), prep.job.threshold)
                timings["source"] = time.perf_counter() - t
            plan = backend.plan(motion.frames, motion.fps)
            t = time.perf_counter()
            write_mp4(prep.output, _watch(backend.render(ctx, plan, progress)), motion.timestamps, motion.duration)
            timings["render_encode"] = time.perf_counter() - t
            sha = hash_file(prep.output).sha256
            if self.files.shared:  # kept in the store by content: every machine of the team finds it
                self.files.put_file(prep.output, render_key(sha))
            timings["total"] = time.perf_counter() - t_all
            flags = _fit_flags(prep.motion, motion, retargeted, body)
            extra = {"warnings": [f["message"] for f in flags], "risk": fitting.risk_score(flags), "flags": flags,
                     "retarget": retargeted.report,
                     "chunks": [[c.start, c.stop] for c in plan], "frames": motion.frames,
                     "duration": motion.duration, "output_size": pipeline.video_size(prep.settings)}
            if backend.report:
                extra["backend_report"] = dict(backend.report)
            if worker:
                extra["worker"] = worker
            record = self._finish_render(render_id, "done", output_sha256=sha, timings=timings, extra=extra)
            if backend.generates:  # every generated video is checked against the pose that drove it
                record = self._qa_after_render(record, prep.output)
            _write_sidecar(prep.output, record, extra)
            return record
        except BaseException as err:
            reason = "interrupted" if isinstance(err, KeyboardInterrupt) else (str(err) or type(err).__name__)
            timings["total"] = time.perf_counter() - t_all
            record = self._finish_render(render_id, "failed", error=reason, timings=timings)
            if not isinstance(err, Exception):
                raise
            if isinstance(err, MotionlibError):
                raise RenderFailed(err.template, record, params=err.params) from err
            raise RenderFailed(f"{type(err).__name__}: {err}", record) from err

    def fit(self, motion_ref: str, identity: str, *, method: str = "bones", anchor: int | None = None,
            output: Path | None = None, preview: Path | None = None, overwrite: bool = False) -> dict:
        """Fit a motion onto an identity as ``render`` does (the same cached retarget), before any
        GPU time: returns the report (anchor frame and its error against her joints, proportions,
        risk flags and score); ``output`` writes the fitted track as npz (docs/exchange.md, the
        identity picture's pixels), ``preview`` a contact sheet of it over her picture at key
        frames (PNG). Both are checked before the work and written aside, then moved into place."""
        from motionlib.media.encode import check_output
        from motionlib.render import fit as fitting
        from motionlib.render.retarget import IdentityBody, METHODS

        if method not in METHODS:
            raise InputError(f"{{retarget}} {method!r}: choose {' or '.join(METHODS)}", params=["retarget"])
        record = self.get(motion_ref)
        ident = self.get_identity(identity)
        out = check_output(Path(output), overwrite=overwrite, suffixes=(".npz",)) if output is not None else None
        sheet = check_output(Path(preview), overwrite=overwrite, suffixes=(".png",)) if preview is not None else None
        motion = self.load(record.ref)
        body = IdentityBody.from_record(ident)
        result = self._retarget_cached(record, ident, method, motion, body, anchor)
        fitted = result.motion
        k = int(result.report.get("anchor_frame", anchor if anchor is not None else 0))
        flags = _fit_flags(record, motion, result, body, k)
        report = {
            "motion": record.ref, "identity": ident.name, "method": method, "anchor_frame": k,
            "anchor_error": fitting.anchor_errors(fitted, body, k, bool(result.report.get("identity_mirrored"))),
            "proportions": result.report.get("bones", []),
            "risk": fitting.risk_score(flags), "flags": flags,
            "retarget": {key: v for key, v in result.report.items() if key != "bones"},
        }
        if out is not None:
            from motionlib import exchange

            exchange.write(fitted, "npz", out, stem=file_stem(record.ref, "fit"),  # written aside, renamed
                           meta={"ref": record.ref, "identity": ident.name, "fit": method, "anchor_frame": k})
            report["output"] = str(out)
        if sheet is not None:
            import cv2

            from motionlib.store.files import atomic_path

            grid = fitting.contact_sheet(self.identity_image(ident), fitted, fitting.key_frames(fitted, k))
            with atomic_path(sheet) as tmp:
                _, data = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
                Path(tmp).write_bytes(data.tobytes())
            report["preview"] = str(sheet)
        return report

    def qa(self, render_id: int) -> "RenderRecord":
        """Check a finished render of a generating backend against the pose that drove it
        (render/qa.py): the pose estimator runs on its video, the result is stored in the record
        (``params.qa``) and the updated record returned."""
        from motionlib.render.backends import get_backend
        from motionlib.store.files import hash_file

        rec = self.get_render(render_id)
        if rec.status != "done":
            raise InputError(f"render {rec.id} is {rec.status}: only a finished render can be checked")
        if not get_backend(rec.backend).generates:
            raise InputError(f"render {rec.id} used the {rec.backend} backend, which draws the pose itself: "
                             "there is no generated person to check")
        out = Path(rec.output)
        if not out.is_file():
            raise InputError(f"render {rec.id}'s video {out} is gone")
        if hash_file(out).sha256 != rec.output_sha256:
            raise InputError(f"render {rec.id}'s video {out} has changed since it was made")
        qa = self._qa(rec, out)
        with self.index.write() as w:
            w.set_render_qa(rec.id, qa)
        return self.get_render(rec.id)

    def _qa(self, rec: "RenderRecord", video_path: Path) -> dict:
        from motionlib.core.errors import NoPersonError
        from motionlib.core.skeleton import MEDIAPIPE_POSE_33
        from motionlib.ingest.pipeline import IngestOptions, analyze
        from motionlib.render import qa as render_qa
        from motionlib.render.retarget import IdentityBody

        motion_record = self.get(rec.motion_ref)
        ident = self.get_identity(rec.identity_name)
        if ident.sha256 != rec.identity_sha256:
            raise InputError(f"identity {ident.name!r} has another picture than render {rec.id} used")
        motion = self.load(motion_record.ref)
        body = IdentityBody.from_record(ident)
        fitted = self._retarget_cached(motion_record, ident, rec.params.get("retarget", "bones"), motion, body,
                                       rec.params.get("anchor_frame")).motion
        if fitted.skeleton.name != MEDIAPIPE_POSE_33.name:
            if fitted.skeleton.joint_names[:33] != MEDIAPIPE_POSE_33.joint_names:
                raise InputError(f"QA compares MediaPipe bodies; {motion_record.ref} has the "
                                 f"{fitted.skeleton.name} layout")
            fitted = replace(fitted, skeleton=MEDIAPIPE_POSE_33, keypoints=fitted.keypoints[:, :33],
                             confidence=fitted.confidence[:, :33], presence=None, world=None)
        w, h = rec.params["result"]["output_size"]
        driving = render_qa.scaled(fitted, w, h)
        try:
            video = analyze(video_path, IngestOptions(workers=1)).motion
        except NoPersonError:
            return {"version": render_qa.QA_VERSION, "score": 0.0, "verdict": "redo", "frames": driving.frames,
                    "lost": 1.0, "reason": "no person in any frame of the render"}
        return render_qa.compare(video, driving)

    def _retarget_cached(self, motion_record: "MotionRecord", identity: "IdentityRecord", method: str,
                         motion: "Motion", body: "IdentityBody", anchor: int | None = None) -> "Retargeted":
        """Retarget, reusing an earlier result for the same (motion version, identity, method,
        anchor frame)."""
        import numpy as np

        from motionlib.render.retarget import RETARGET_VERSION, Retargeted, retarget
        from motionlib.store.files import atomic_path

        key_src = json.dumps([motion_record.store_path, motion_record.created, identity.sha256,
                              identity.pose, method, anchor, RETARGET_VERSION], sort_keys=True)
        key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
        path = self.cache_dir("retarget") / f"{key}.npz"
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    kp, conf, report = z["keypoints"], z["confidence"], json.loads(str(z["report"]))
                m = replace(motion, keypoints=kp, confidence=conf, width=body.width, height=body.height,
                            world=None, attrs={}).validate()
                return Retargeted(m, method, dict(report, cached=True))
            except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
                path.unlink(missing_ok=True)
        result = retarget(motion, body, method, anchor)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, keypoints=result.motion.keypoints, confidence=result.motion.confidence,
                     report=np.array(json.dumps(result.report)))
        result.report["cached"] = False
        return result

    def _qa_after_render(self, record: "RenderRecord", output: Path) -> "RenderRecord":
        """QA right after a render; a QA that cannot run is recorded, never fails the render."""
        try:
            qa = self._qa(record, output)
        except MotionlibError as err:
            qa = {"error": err.message()}
        with self.index.write() as w:
            w.set_render_qa(record.id, qa)
        return self.get_render(record.id)

    def mosaic(self, campaign: str, output: Path, *, tile: int = 256, overwrite: bool = False) -> dict:
        """A campaign's finished renders side by side (render/mosaic.py): motions down,
        identities across, the newest finished render of each pair whose video is still there;
        ``output`` ``.png`` (each render's middle frame) or ``.mp4`` (all playing together)."""
        from motionlib.media.encode import check_output, write_mp4
        from motionlib.render import mosaic

        output = check_output(Path(output), overwrite=overwrite, suffixes=(".png", ".mp4"))
        if not 64 <= tile <= 1024:
            raise InputError("{tile} must be 64 to 1024 pixels", params=["tile"])
        cells: dict[tuple[str, str], Path] = {}
        for rec in self.iter_renders():
            if rec.campaign == campaign and rec.status == "done":
                video = self.render_video(rec)
                if video is not None:
                    cells[(rec.motion_ref, rec.identity_name)] = video  # newest last
        if not cells:
            known = sorted({r.campaign for r in self.iter_renders() if r.campaign})
            raise InputError(f"campaign {campaign!r} has no finished render whose video is still there"
                             + (f" (campaigns: {', '.join(known[:10])})" if known else ""))
        motions, identities = mosaic.grid(cells)
        if output.suffix.lower() == ".png":
            import cv2

            from motionlib.store.files import atomic_path

            image = mosaic.still(cells, tile)
            with atomic_path(output) as tmp:
                ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                Path(tmp).write_bytes(data.tobytes())
            size = image.shape[1], image.shape[0]
        else:
            times, frames = mosaic.playing(cells, tile)
            write_mp4(output, frames, times, float(times[-1] + (times[1] - times[0] if len(times) > 1 else 1 / 30)))
            size = None
        return {"campaign": campaign, "path": str(output), "motions": motions, "identities": identities,
                "cells": len(cells), "missing": len(motions) * len(identities) - len(cells),
                **({"width": size[0], "height": size[1]} if size else {})}

    def render_video(self, record: "RenderRecord") -> Path | None:
        """A finished render's video: its output file where it still is, else (a shared library)
        the copy the store keeps by content, fetched once; None when neither is there."""
        out = Path(record.output)
        if out.is_file():
            return out
        if self.files.shared and record.output_sha256:
            return self.files.local(render_key(record.output_sha256))
        return None

    def cache_dir(self, kind: str) -> Path:
        """A directory for derived data that can always be rebuilt (``cache/<kind>``)."""
        path = self.root / "cache" / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ------------------------------------------------------------------ records
    def _start_render(self, prep: Prepared) -> int:
        """Record a render about to run (status ``running``, with this process's id)."""
        s = prep.settings
        job = dict(prep.job.to_json(), seed=s.seed, params=s.params)
        with self.index.write() as w:
            return w.insert_render(
                created=now(), status="running", pid=os.getpid(), motion_ref=prep.motion.ref,
                motion_store=prep.motion.store_path, identity_name=prep.identity.name,
                identity_sha256=prep.identity.sha256, backend=prep.job.backend,
                models=json.dumps([asdict(m) for m in s.backend.models(s.params)]),
                params=json.dumps(jsonable(job)), seed=s.seed, output=str(Path(prep.output).resolve()),
                campaign=prep.job.campaign,
            )

    def _finish_render(self, render_id: int, status: str, *, output_sha256: str | None = None,
                       timings: dict | None = None, error: str | None = None,
                       extra: dict | None = None) -> "RenderRecord":
        with self.index.write() as w:
            w.finish_render(render_id, status, now(), output_sha256=output_sha256, error=error,
                            timings={k: round(v, 4) for k, v in (timings or {}).items()},
                            result=jsonable(extra) if extra else None)
        return self.get_render(render_id)

    def _fail_running(self, render_ids: list[int], error: str) -> None:
        """Mark those of ``render_ids`` still ``running`` as failed (a finished one stays as it is)."""
        with self.index.write() as w:
            w.fail_renders(render_ids, error, now())

    def renders(self, *, limit: int | None = None) -> list["RenderRecord"]:
        """Render records, oldest first. Runs whose process died (SIGKILL, power loss) are marked
        failed here, so no record stays ``running`` for ever."""
        return list(self.iter_renders(limit=limit))

    def iter_renders(self, *, limit: int | None = None) -> Iterator["RenderRecord"]:
        """``renders``, streamed (bounded memory at any number of renders)."""
        with self.index.reader() as r:
            stale = [rec.id for rec in r.iter_renders(status="running") if rec.pid and not pid_alive(rec.pid)]
        if stale and not self.read_only:
            with self.index.write() as w:
                w.fail_renders(stale, "process died", now())
        with self.index.reader() as r:
            yield from r.iter_renders(limit=limit)


def _fit_flags(record: "MotionRecord", motion: "Motion", fit: "Retargeted", body: "IdentityBody",
               anchor: int = 0) -> list[dict]:
    """The fit's risk flags (render/fit.py), as ``fit`` reports them and every render records them;
    ``anchor`` where the fit reports no anchor frame (``global``)."""
    from motionlib.render import fit as fitting

    return fitting.risk_flags(motion, fit.motion, body, int(fit.report.get("anchor_frame", anchor)),
                              in_place=record.operation == "in-place")


def _watch(frames: Iterator["np.ndarray"]) -> Iterator["np.ndarray"]:
    """Pass frames through; the fault point ``render-frames`` stops after 10 of them."""
    for i, frame in enumerate(frames):
        if i == 10:
            fault("render-frames")
        yield frame


def _write_sidecar(output: Path, record: "RenderRecord", extra: dict) -> None:
    from motionlib import __version__
    from motionlib.store.files import write_json

    doc = {"motionlib_render": 1, "motionlib_version": __version__, **record.to_json(), **extra}
    write_json(output.with_name(output.name + ".json"), jsonable(doc), indent=2)
