"""Campaigns on a Ray cluster (`render --campaign FILE --ray ...`, library/distributed.py): a local
two-CPU cluster, the `pose` backend, workers killed with SIGKILL in the middle of a render (what
the out-of-memory killer does): every job ends recorded, a job whose worker died is rendered again
once, then recorded as failed; no record is left running."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from motionlib.library import Library
from motionlib.library.renders import render_key
from tests.conftest import (ROOT, assert_one_line_error, copy_library, invoke, schema_validator, share_library,
                            shared_url)

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'motionlib[team]')")

pytestmark = pytest.mark.slow  # a Ray cluster takes seconds to start

ASTRONAUT = ROOT / "assets" / "samples" / "astronaut.png"
TAG = "MOTIONLIB_TEST_CLUSTER"


def _walk(frames: int) -> list[dict]:
    """A person walking in place (COCO-18 OpenPose JSON, 200x200)."""
    out = []
    for t in range(frames):
        s = 8 * ((t % 20) / 10 - 1)
        pts = {0: (100, 40), 1: (100, 60), 2: (85, 60), 3: (78, 80 + s), 4: (72, 100 + s), 5: (115, 60),
               6: (122, 80 - s), 7: (128, 100 - s), 8: (92, 110), 9: (92 + s, 140), 10: (92 + s, 170),
               11: (108, 110), 12: (108 - s, 140), 13: (108 - s, 170), 14: (97, 37), 15: (103, 37),
               16: (94, 40), 17: (106, 40)}
        flat = [0.0] * 54
        for j, (x, y) in pts.items():
            flat[3 * j: 3 * j + 3] = [x, y, 0.9]
        out.append({"people": [{"pose_keypoints_2d": flat}], "canvas_width": 200, "canvas_height": 200})
    return out


@pytest.fixture(scope="module")
def ray_lib(tmp_path_factory) -> Path:
    """A library with a 120-frame motion `walk` and the astronaut as an identity."""
    base = tmp_path_factory.mktemp("ray")
    src = base / "walk.json"
    src.write_text(json.dumps(_walk(120)))
    with Library(base / "lib") as library:
        library.import_keypoints(src, "openpose-json", name="walk")
        library.add_identity(ASTRONAUT, name="astronaut")
    return base / "lib"


@pytest.fixture
def lib(ray_lib, tmp_path) -> Path:
    return copy_library(ray_lib, tmp_path / "lib")


@pytest.fixture(params=["local", pytest.param("shared", marks=pytest.mark.postgres)])
def any_lib(request, ray_lib, tmp_path) -> str:
    """``ray_lib`` copied: into a directory, or into a shared library (PostgreSQL and S3, both
    started by the tests; the workers open it by its URL)."""
    if request.param == "local":
        return str(copy_library(ray_lib, tmp_path / "lib"))
    url = share_library(ray_lib, shared_url(request.getfixturevalue("pg_url"), request.getfixturevalue("s3_store")))
    with Library(url) as library:  # (identities live in the index only: reindex does not bring them)
        library.add_identity(ASTRONAUT, name="astronaut")
    return url


def _campaign(directory: Path, jobs: int) -> Path:
    camp = directory / "spring.toml"
    text = 'name = "spring"\noutput_dir = "out"\n[defaults]\nsize = 160\nseed = 3\n'
    text += "".join(f'[[jobs]]\nmotion = "walk"\nidentity = "astronaut"\noutput = "j{n:02d}.mp4"\n'
                    for n in range(jobs))
    camp.write_text(text)
    return camp


@pytest.fixture
def cluster():
    """Start a local Ray cluster of two CPUs (the workers import this checkout, and carry a tag
    that tells their processes from any other's); ``start(**env)`` adds to their environment."""
    tag = uuid.uuid4().hex

    def start(**env):
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": path, TAG: tag, **env}})
        return tag

    yield start
    ray.shutdown()


def _rendering(tag: str) -> list[int]:
    """The processes of this test's cluster rendering a job now."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            title = Path(f"/proc/{name}/cmdline").read_bytes()
            if title.startswith(b"ray::RenderWorker.render") and \
                    f"{TAG}={tag}".encode() in Path(f"/proc/{name}/environ").read_bytes():
                pids.append(int(name))
        except OSError:
            continue
    return pids


class Killer(threading.Thread):
    """SIGKILL a worker in the middle of a render, ``times`` times, once ``ready()`` says so."""

    def __init__(self, tag: str, times: int, ready=lambda: True, busy=lambda pid: True):
        super().__init__(daemon=True)
        self.tag, self.times, self.ready, self.busy = tag, times, ready, busy
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self):
        while len(self.killed) < self.times and not self.stop.is_set():
            pids = [p for p in _rendering(self.tag) if p not in self.killed and self.busy(p)] if self.ready() else []
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                self.killed.append(pids[0])
            time.sleep(0.02)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers' processes in /proc")
def test_a_campaign_survives_a_worker_killed_mid_run(any_lib, tmp_path, cluster):
    """12 jobs on two workers, one killed in the middle of a render after three videos are
    written: every job recorded done, the killed one's rendered again by another worker."""
    tag = cluster()
    camp = _campaign(tmp_path, 12)
    out = tmp_path / "out"
    # killed while it writes a video (its part file is there: the record cannot be finished yet)
    killer = Killer(tag, 1, ready=lambda: len(list(out.glob("j*.mp4"))) >= 3,
                    busy=lambda pid: any(out.glob(f".j*.mp4.{pid}-*.part")))
    killer.start()
    t = time.perf_counter()
    try:
        proc = invoke("render", "--campaign", camp, "--ray", "auto", library=any_lib)
    finally:
        killer.stop.set()
    took = time.perf_counter() - t
    assert killer.killed, f"no worker was caught rendering: {proc.stdout[-800:]} {proc.stderr[-1500:]}"
    assert proc.returncode == 0, proc.stderr
    assert "12 of 12 rendered" in proc.stdout
    assert proc.stderr.count("its Ray worker died") == 1 and "rendering it again" in proc.stderr, proc.stderr

    with Library(any_lib) as library:
        records = [r for r in library.renders() if r.campaign == "spring"]
        if library.files.shared:  # every video kept in the store too, found without the local file
            assert all(library.files.has_file(render_key(r.output_sha256)) for r in records)
    assert len(records) == 12 and {r.status for r in records} == {"done"}  # one record a job, none lost
    assert sorted(Path(r.output).name for r in records) == [f"j{n:02d}.mp4" for n in range(12)]
    validate = schema_validator("render-record.schema.json")
    for r in records:
        validate.validate(json.loads(json.dumps(r.to_json())))
        assert Path(r.output).is_file() and Path(r.output + ".json").is_file()
        assert r.pid is None and r.error is None
    workers = [r.params["result"]["worker"] for r in records]
    retried = [w for w in workers if w["attempt"] == 2]
    assert len(retried) == 1 and retried[0]["pid"] != killer.killed[0]
    assert len({w["pid"] for w in workers}) == 3  # the two workers, and the one started for the killed one
    print(f"\n12 jobs on 2 workers, worker {killer.killed[0]} killed: {len(records)} recorded done, "
          f"{len(retried)} rendered again, {took:.1f} s")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers' processes in /proc")
def test_a_job_whose_worker_dies_twice_is_recorded_failed(lib, tmp_path, cluster):
    # every render stops at its 10th frame (the fault point) until its worker is killed
    tag = cluster(MOTIONLIB_FAULT="render-frames")
    killer = Killer(tag, 4)
    killer.start()
    failures, retries, progress = [], [], []
    try:
        with Library(lib) as library:
            prepared = library.plan_campaign(_campaign(tmp_path, 2))
            records = library.render_all_ray(
                prepared, "auto", progress=lambda label, done, total: progress.append((done, total)),
                on_failure=lambda prep, err: failures.append(str(err)),
                on_retry=lambda prep, err: retries.append(prep.label))
            stored = [r for r in library.renders() if r.campaign == "spring"]
    finally:
        killer.stop.set()
    assert len(killer.killed) == 4
    assert [r.status for r in records] == ["failed", "failed"] and len(stored) == 2
    assert {r.status for r in stored} == {"failed"}  # none left running
    for r in records:
        assert r.error.startswith("its Ray worker died 2 times (") and "; then " in r.error, r.error
    assert len(failures) == 2 and all("died 2 times" in f for f in failures)
    assert len(retries) == 2 and progress[-1] == (2, 2)
    assert not list((tmp_path / "out").glob("*.mp4"))


def test_ray_is_imported_only_for_ray(lib, tmp_path, monkeypatch):
    """Without ray installed, --ray says how to get it; a campaign without --ray runs as before."""
    camp = _campaign(tmp_path, 1)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert_one_line_error(invoke("render", "--campaign", camp, "--ray", "local", library=lib),
                          "needs the ray package: pip install 'motionlib[team]'")
    proc = invoke("render", "--campaign", camp, library=lib)
    assert proc.returncode == 0 and proc.stdout.startswith("render 1: walk@1 x astronaut"), proc.stderr


def test_ray_option_errors_are_one_line(lib, tmp_path, monkeypatch):
    import socket

    camp = _campaign(tmp_path, 1)
    assert_one_line_error(invoke("render", "-m", "walk", "-i", "astronaut", "--ray", "auto", library=lib),
                          "--ray goes with --campaign")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    proc = invoke("render", "--campaign", camp, "--ray", f"127.0.0.1:{port}", library=lib)
    assert_one_line_error(proc, f"cannot reach a Ray cluster at 127.0.0.1:{port}")
    proc = invoke("render", "--campaign", camp, "--ray", "auto", library=lib, env={"RAY_ADDRESS": f"127.0.0.1:{port}"})
    assert_one_line_error(proc, "--ray 'auto': cannot reach a Ray cluster at ")
    assert f":{port} (RAY_ADDRESS" in proc.stderr
    assert time.perf_counter() - t < 30  # not Ray's own minute of retries
    assert_one_line_error(invoke("render", "--campaign", camp, "--ray", "nowhere", library=lib),
                          "--ray 'nowhere': give auto, local, HOST:PORT")
    assert not ray.is_initialized()
    assert not list((tmp_path / "out").glob("*.mp4"))


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning", "ignore::DeprecationWarning")
def test_a_worker_keeps_its_models_loaded_from_one_job_to_the_next(lib, tmp_path, tmp_path_factory, monkeypatch):
    """Diffusion jobs (the tiny ControlNet checkpoints) on one worker: the models are loaded for the
    first job only."""
    pytest.importorskip("diffusers")
    from tests.tiny_models import build_ip_adapter, build_openpose_controlnet, build_sd15

    root = tmp_path_factory.mktemp("tiny-models")
    for build in (build_sd15, build_openpose_controlnet, build_ip_adapter):
        build(root)
    sd, cn, ip = root / "sd15", root / "openpose", root / "ip"  # as tiny_models.build_all names them
    config = root / "models.toml"
    config.write_text(f'[controlnet]\nbase = "{sd}"\ncontrolnet = "{cn}"\n'
                      f'ip_adapter = {{ id = "{ip}", subfolder = "models", weight_name = "ip-adapter_sd15.safetensors" }}\n'
                      f'image_encoder = {{ id = "{ip}", subfolder = "models/image_encoder" }}\n')
    env = {"MOTIONLIB_MODELS_CONFIG": str(config), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # the driver plans (locates the models), the worker loads them
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, **env}})
    try:
        camp = tmp_path / "spring.toml"
        camp.write_text('name = "spring"\noutput_dir = "out"\n[defaults]\nbackend = "controlnet"\nsize = 64\n'
                        '[defaults.params]\nsteps = 1\nstrength = 0.5\n'
                        + "".join(f'[[jobs]]\nmotion = "walk"\nidentity = "astronaut"\nseed = {n}\n'
                                  f'output = "c{n}.mp4"\n' for n in range(3)))
        with Library(lib) as library:
            records = library.render_all_ray(library.plan_campaign(camp), "auto")
    finally:
        ray.shutdown()
    assert [r.status for r in records] == ["done"] * 3, [r.error for r in records]
    reports = [r.params["result"]["backend_report"] for r in records]
    assert [r["pipeline_cached"] for r in reports] == [False, True, True]
    assert len({r.params["result"]["worker"]["pid"] for r in records}) == 1
