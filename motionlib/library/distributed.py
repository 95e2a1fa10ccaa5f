"""Campaigns on a Ray cluster (``motionlib render --campaign FILE --ray auto|local|ADDRESS``).

The driver (this process) keeps the bookkeeping of ``render_all``: it records each job as
``running`` just before a worker takes it, and reads the finished record back from the shared
index. The workers are Ray actors, one per GPU of the cluster (one per CPU where it has none);
each opens the library once, by its URL (a shared library: docs/team.md) or its path (every node
must then see the directory at the same path), and needs motionlib and the backends' packages, and renders jobs with the same per-job step
as the local loop (``Renders._render_recorded``), which finishes the record. A worker is one
process for all its jobs, so the diffusion backends' pipeline cache keeps the models loaded from
one job to the next; a free worker takes a job for the models it has loaded first.

A worker that dies (killed, out of memory, its node lost) takes no record with it: its job is
rendered again, once, by another worker (a fresh one takes the dead one's place), and recorded
as failed with the reason if that worker dies too. When the run ends, by an interrupt or
anything else, no record it started is left ``running``.

``ray`` is imported only here, and only when a campaign runs on it.
"""

from __future__ import annotations

import collections
import json
import os
import socket
from typing import TYPE_CHECKING, Callable

from motionlib.core.errors import InputError, RenderFailed

if TYPE_CHECKING:
    from motionlib.index.reader import RenderRecord
    from motionlib.library.renders import Prepared, Progress, Renders

INSTALL = "pip install 'motionlib[team]'"
RETRIES = 1  # a job whose worker dies is rendered again this many times
PROBE_SECONDS = 5.0


class RenderWorker:
    """A Ray actor (``ray.remote(RenderWorker)``): the library opened once, jobs rendered one at a
    time. The backends' own caches live as long as the actor (the loaded diffusion pipeline)."""

    def __init__(self, root: str):
        from motionlib.library import Library

        self.library = Library.open(root)
        self.where = {"host": socket.gethostname(), "pid": os.getpid()}

    def render(self, prep: "Prepared", render_id: int, attempt: int) -> int:
        """Render a job the driver recorded as running; its record is finished either way."""
        try:
            self.library._render_recorded(prep, render_id, None, worker=dict(self.where, attempt=attempt))
        except RenderFailed:
            pass  # recorded as failed, with the reason; the driver reads it from the index
        return render_id


def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError(f"rendering on a Ray cluster needs the ray package: {INSTALL}") from None
    return ray


def connect(address: str):
    """``ray``, connected: to the cluster of this process when it has one already (the caller's,
    left running afterwards), else ``local`` starts one in this process, ``auto`` joins the one
    RAY_ADDRESS or ``ray start`` on this machine names, and anything else is the address of a
    cluster (``HOST:PORT``, or ``ray://HOST:PORT`` for Ray Client). Returns (ray, whether this
    call started the connection, so should end it)."""
    import logging

    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    kw = dict(log_to_driver=False, logging_level=logging.WARNING)
    if address == "local":
        ray.init(include_dashboard=False, **kw)
        return ray, True
    _probe(address, _auto_address() if address == "auto" else address)
    try:
        ray.init(address=address, **kw)
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise InputError(f"{{address}} {address!r}: cannot join the Ray cluster: {first}",
                         params=["address"]) from None
    return ray, True


def _auto_address() -> str:
    """The address ``ray.init(address="auto")`` would join, or one line saying there is none."""
    none = ("{address} 'auto': no Ray cluster is running on this machine and RAY_ADDRESS is not set (start "
            "one with `ray start --head`, give its address, or 'local' for one in this process)")
    try:
        from ray._private.services import canonicalize_bootstrap_address

        found = canonicalize_bootstrap_address("auto")
    except ConnectionError:
        raise InputError(none, params=["address"]) from None
    except Exception:  # noqa: BLE001 - a Ray without this helper: let ray.init find it
        return "auto"
    if not found:
        raise InputError(none, params=["address"])
    return found


def _probe(address: str, target: str) -> None:
    """Fail in seconds, in one line, when nothing listens at the cluster's address (Ray itself
    waits a minute or more)."""
    if target == "auto":
        return
    hostport = target.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(f"{{address}} {address!r}: give auto, local, HOST:PORT or ray://HOST:PORT",
                         params=["address"])
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as err:
        why = "timed out" if isinstance(err, TimeoutError) else (err.strerror or type(err).__name__)
        via = " (RAY_ADDRESS, else the cluster last started here)" if address == "auto" else ""
        raise InputError(f"{{address}} {address!r}: cannot reach a Ray cluster at {hostport}{via}: {why}",
                         params=["address"]) from None


def worker_slots(ray, jobs: int, workers: int | None = None) -> tuple[int, dict]:
    """(how many workers, each one's resources): one per GPU of the cluster, else one per CPU,
    never more than there are jobs."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    n = workers if workers is not None else (gpus or cpus or 1)
    return max(1, min(n, jobs)), options


def died_errors(ray) -> tuple[type, ...]:
    """The errors of a call whose worker process is gone."""
    ex = ray.exceptions
    return tuple(getattr(ex, name) for name in ("RayActorError", "WorkerCrashedError", "NodeDiedError",
                                                 "OutOfMemoryError", "ObjectLostError")
                 if isinstance(getattr(ex, name, None), type))


def why_died(err: BaseException) -> str:
    """A Ray error in a few words: its type and the first line that says something."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = next((line for line in lines if "died" in line or "killed" in line or "exit" in line.lower()),
                  lines[0] if lines else "")
    return f"{type(err).__name__}: {detail[:200]}" if detail else type(err).__name__


def _model_key(prep: "Prepared") -> str:
    """What a worker keeps loaded for a job: its backend and models."""
    return json.dumps([prep.job.backend, prep.settings.params.get("models")], sort_keys=True, default=str)


def render_all(library: "Renders", prepared: list["Prepared"], address: str, *, workers: int | None = None,
               progress: "Progress | None" = None,
               on_failure: Callable[["Prepared", Exception], None] | None = None,
               on_retry: Callable[["Prepared", Exception], None] | None = None) -> list["RenderRecord"]:
    """See ``Renders.render_all_ray``."""
    if all(p.done is not None for p in prepared):  # nothing to render: no cluster to join
        return [p.done for p in prepared]
    ray, owned = connect(address)
    try:
        return _Run(ray, library, prepared, workers, progress, on_failure, on_retry).run()
    finally:
        if owned:
            ray.shutdown()


class _Run:
    def __init__(self, ray, library, prepared, workers, progress, on_failure, on_retry):
        self.ray, self.library, self.prepared = ray, library, prepared
        self.workers = workers
        self.progress = progress or (lambda label, done, total: None)
        self.on_failure = on_failure or (lambda prep, err: None)
        self.on_retry = on_retry or (lambda prep, err: None)
        self.records: dict[int, RenderRecord] = {}
        self.render_ids: dict[int, int] = {}  # job -> its record, kept through a retry
        self.attempts: collections.Counter = collections.Counter()
        self.deaths: dict[int, list[str]] = {}
        self.done = 0

    def run(self) -> list["RenderRecord"]:
        todo = collections.deque(i for i, p in enumerate(self.prepared) if p.done is None)
        for i, p in enumerate(self.prepared):
            if p.done is not None:  # already rendered, unchanged: nothing to do
                self.records[i] = p.done
        self.total = len(todo)
        self.keys = {i: _model_key(self.prepared[i]) for i in todo}
        if todo:
            self.library._make_output_dirs(self.prepared)
            self._dispatch(todo)
        return [self.records[i] for i in range(len(self.prepared)) if i in self.records]

    def _dispatch(self, todo: collections.deque) -> None:
        ray = self.ray
        died = died_errors(ray)
        n, options = worker_slots(ray, len(todo), self.workers)
        make = ray.remote(RenderWorker).options(max_restarts=0, max_task_retries=0, **options)
        # a shared library's URL, or the directory (every node must see it at the same path)
        root = self.library.location if self.library.files.shared else str(self.library.root.resolve())
        idle = collections.deque(make.remote(root) for _ in range(n))
        loaded: dict = {}  # worker -> the model key of its last job
        inflight: dict = {}  # ObjectRef -> (worker, job)
        everyone = list(idle)
        try:
            while todo or inflight:
                while idle and todo:
                    worker = idle.popleft()
                    i = self._take(todo, loaded.get(worker))
                    if not self._start(i):
                        idle.appendleft(worker)
                        continue
                    loaded[worker] = self.keys[i]
                    self.attempts[i] += 1
                    ref = worker.render.remote(self.prepared[i], self.render_ids[i], self.attempts[i])
                    inflight[ref] = (worker, i)
                if not inflight:
                    break
                ready, _ = ray.wait(list(inflight), num_returns=1)
                for ref in ready:
                    worker, i = inflight.pop(ref)
                    try:
                        ray.get(ref)
                    except died as err:  # the worker is gone: a fresh one takes its place
                        loaded.pop(worker, None)
                        with _quiet():
                            ray.kill(worker)
                        fresh = make.remote(root)
                        everyone.append(fresh)
                        idle.append(fresh)  # behind the others: another worker renders it again
                        if self._died(i, err):
                            todo.appendleft(i)
                        continue
                    except Exception as err:  # noqa: BLE001 - the worker could not finish the record
                        idle.append(worker)
                        self._fail(i, f"{type(err).__name__}: {err}".splitlines()[0][:300], err)
                        continue
                    idle.append(worker)
                    self._finished(i)
        finally:
            for worker in everyone:  # free the GPUs at once, on a cluster that stays up
                with _quiet():
                    ray.kill(worker)
            # nothing this run started stays running: interrupted, or its worker never answered
            open_ids = [rid for i, rid in self.render_ids.items() if i not in self.records]
            if open_ids:
                self.library._fail_running(open_ids, "interrupted" if inflight or todo else "lost")

    def _take(self, todo: collections.deque, key: str | None) -> int:
        """The next job: the first one for the models this worker has loaded, if one is near the
        front of the queue (a job to retry is at the front), else the first."""
        if key is not None:
            for pos, i in enumerate(todo):
                if pos >= 64:
                    break
                if self.keys[i] == key:
                    del todo[pos]
                    return i
        return todo.popleft()

    def _start(self, i: int) -> bool:
        """Record job ``i`` as running (once: a retry keeps its record); False when even that fails."""
        if i in self.render_ids:
            return True
        prep = self.prepared[i]
        try:
            self.render_ids[i] = self.library._start_render(prep)
        except Exception as err:  # noqa: BLE001 - reported as the local loop does: unrecorded
            self.on_failure(prep, err)
            self._advance(prep)
            return False
        return True

    def _died(self, i: int, err: BaseException) -> bool:
        """Job ``i``'s worker died: True to render it again, else it is recorded as failed."""
        prep = self.prepared[i]
        record = self.library.get_render(self.render_ids[i])
        if record.status != "running":  # it finished its record before it went
            self._finished(i)
            return False
        self.deaths.setdefault(i, []).append(why_died(err))
        if len(self.deaths[i]) <= RETRIES:
            self.on_retry(prep, err)
            return True
        reason = "; then ".join(self.deaths[i])
        self._fail(i, f"its Ray worker died {len(self.deaths[i])} times ({reason})", err)
        return False

    def _fail(self, i: int, reason: str, err: BaseException) -> None:
        self.library._fail_running([self.render_ids[i]], reason)
        self._finished(i, err)

    def _finished(self, i: int, err: BaseException | None = None) -> None:
        prep = self.prepared[i]
        record = self.library.get_render(self.render_ids[i])
        self.records[i] = record
        if record.status != "done":
            failure = RenderFailed(record.error or "failed", record)
            if err is not None:
                failure.__cause__ = err
            self.on_failure(prep, failure)
        self._advance(prep)

    def _advance(self, prep: "Prepared") -> None:
        self.done += 1
        self.progress(prep.label, self.done, self.total)


class _quiet:
    """Ignore any error (killing a worker that is gone already)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return exc[0] is not None and issubclass(exc[0], Exception)
