"""The diffusion backends (controlnet, animatediff, wan-animate, wan-animate-2) on tiny randomly-initialised
checkpoints of the real diffusers / transformers classes, saved to a temp dir and loaded through
the same code as real weights, offline (HF_HUB_OFFLINE=1), on the CPU.

Renders and their records go through the library API in this process (``Library.render``,
``render_again``, ``plan_campaign`` + ``render_all``), so torch and diffusers are imported once and
a loaded pipeline is reused from test to test (the backends' pipeline cache); what the command prints
(one-line errors, ``motionlib models``) goes through ``invoke``, the command's entry point in this
process. (A render through a real ``motionlib`` process is in test_render.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import (
    ROOT, assert_one_line_error, copy_library, invoke, invoke_json, library_snapshot,
    schema_validator,
)
from tests.tiny_models import build_all

ASTRONAUT = ROOT / "assets" / "samples" / "astronaut.png"
pytestmark = [pytest.mark.slow,  # diffusion models, if tiny ones
              pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning", "ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny checkpoints and a models.toml pointing every backend at them."""
    return build_all(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="module")
def env(tiny, tmp_path_factory) -> dict:
    hf_home = tmp_path_factory.mktemp("hf-home")  # an empty Hugging Face cache
    return {"MOTIONLIB_MODELS_CONFIG": str(tiny), "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)}


@pytest.fixture(scope="module")
def dlib(demo_library, tmp_path_factory) -> Path:
    """The demo library, the astronaut, a 0.7 s cut of the clip (still on its source), its mirror
    and its half-speed retime (neither on the source any more)."""
    from motionlib.library import Library
    from motionlib.processing import ops

    root = tmp_path_factory.mktemp("diffusion") / "lib"
    shutil.copytree(demo_library[0], root)
    lib = Library(root)
    lib.add_identity(ASTRONAUT, name="astronaut")
    lib.derive("demo", lambda m: ops.trim(m, 0.3, 1.0), name="clip")
    lib.derive("clip", ops.mirror, name="flipped")
    lib.derive("clip", lambda m: ops.retime(m, speed=0.5), name="slow")
    lib.close()
    return root


@pytest.fixture(autouse=True)
def _offline(env, monkeypatch):
    """Every test's environment, for the library calls made in this process (``invoke`` too)."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def lib(dlib):
    from motionlib.library import Library

    lib = Library(dlib)
    yield lib
    lib.close()


def _job(motion: str, backend: str, output: Path, size: int | None = None, **kw):
    """``motionlib render -m MOTION -i astronaut -b BACKEND -o OUTPUT --size SIZE ...`` as a job."""
    from motionlib.render.pipeline import RenderJob

    return RenderJob(motion, "astronaut", backend, output=str(output), size=None if size is None else str(size), **kw)


def _decoded(path):
    import av

    with av.open(str(path)) as c:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    return [t for t, _ in frames], np.stack([a for _, a in frames])


# --- renders and their records, through the library ------------------------------------------------


@pytest.mark.parametrize("backend,size", [("controlnet", 64), ("animatediff", 64), ("wan-animate", 32)])
def test_backend_renders_a_clip_with_its_record(lib, tmp_path, backend, size):
    out = tmp_path / f"{backend}.mp4"
    rec = lib.render(_job("clip", backend, out, size, seed=7, params={"steps": 2})).to_json()
    assert rec["status"] == "done", rec
    motion = lib.load("clip")
    times, frames = _decoded(out)
    assert frames.shape == (motion.frames, size, size, 3)
    assert np.allclose(times, motion.timestamps - motion.timestamps[0], atol=2e-3)
    assert frames.std() > 1.0  # a picture, not a blank
    # the record: models as configured, every parameter, the device plan
    roles = {m["role"]: m for m in rec["models"]}
    assert set(roles) == {"controlnet": {"base", "controlnet", "ip_adapter", "image_encoder"},
                          "animatediff": {"base", "controlnet", "motion_adapter", "ip_adapter", "image_encoder"},
                          "wan-animate": {"pipeline"}}[backend]
    assert all(Path(m["model_id"]).exists() for m in rec["models"])
    p = rec["params"]
    assert p["seed"] == 7 and p["params"]["steps"] == 2 and p["params"]["models"].keys() == roles.keys()
    info = p["result"]["backend_report"]
    assert info["runtime"]["device"] == "cpu" and info["runtime"]["dtype"] == "fp32"
    assert info["runtime"]["attention"] == "sdpa" and info["runtime"]["offload"] == "none"
    assert 0 < info["parameters"] < 10_000_000
    # QA ran on the video: tiny random weights draw no person, and the record says so
    assert p["qa"]["verdict"] == "redo" and p["qa"]["lost"] == 1.0
    assert lib.qa(rec["id"]).params["qa"] == p["qa"]
    validator = schema_validator("render-record.schema.json")
    validator.validate(rec)
    validator.validate(json.loads(Path(str(out) + ".json").read_text()))
    if backend == "wan-animate":
        assert info["face_video"] == "source"  # the cut still sits on the kept source clip


def test_controlnet_again_reproduces_the_frames(lib, tmp_path):
    job = _job("clip", "controlnet", tmp_path / "a.mp4", 64, params={"steps": 2, "strength": 0.8})
    first = lib.render(job).to_json()
    assert first["params"]["params"]["strength"] == 0.8
    again = lib.render_again(first["id"], output=tmp_path / "b.mp4").to_json()
    assert again["seed"] == first["seed"] and again["models"] == first["models"]
    assert np.array_equal(_decoded(tmp_path / "a.mp4")[1], _decoded(tmp_path / "b.mp4")[1])


def test_wan_animate_segments_and_identity_face(lib, tmp_path):
    out = tmp_path / "w.mp4"
    # a version that left the source frames takes the identity's face; 9-frame segments, 1 frame shared
    rec = lib.render(_job("flipped", "wan-animate", out, 32, params={"steps": 1, "segment": 9})).to_json()
    info = rec["params"]["result"]["backend_report"]
    assert info["face_video"] == "identity"
    motion = lib.load("flipped")
    segs = info["segments"]
    assert segs[0] == [0, 9] and all(b[0] == a[1] - 1 for a, b in zip(segs, segs[1:])) and segs[-1][1] == motion.frames
    assert _decoded(out)[1].shape[0] == motion.frames


def test_a_campaign_of_diffusion_renders_loads_the_models_once(lib, tmp_path):
    from motionlib.render.backends import diffusion

    diffusion.clear_pipeline_cache()  # earlier tests left a pipeline loaded: this campaign starts with none
    camp = tmp_path / "spring.toml"
    camp.write_text('name = "spring"\noutput_dir = "out"\n[defaults]\nbackend = "controlnet"\nsize = 64\n'
                    '[defaults.params]\nsteps = 1\nstrength = 0.5\n\n'
                    '[[jobs]]\nmotions = ["clip", "flipped"]\nidentities = ["astronaut"]\n')
    recs = [r.to_json() for r in lib.render_all(lib.plan_campaign(camp))]
    assert [r["status"] for r in recs] == ["done", "done"]
    reports = [r["params"]["result"]["backend_report"] for r in recs]
    assert [r["pipeline_cached"] for r in reports] == [False, True] and "load_seconds" in reports[0]
    assert all(r["params"]["params"]["strength"] == 0.5 for r in recs)
    assert len(list((tmp_path / "out").glob("*.mp4"))) == 2


# --- before any work: missing weights, bad options (what the command says, in this process) -------


def test_missing_weights_are_named_before_any_work(lib, dlib, env, tiny, tmp_path):
    before = library_snapshot(dlib)
    # nothing configured and an empty Hugging Face cache: the default checkpoint is named with its fetch command
    bare = dict(env, MOTIONLIB_MODELS_CONFIG="")
    proc = invoke("render", "-m", "clip", "-i", "astronaut", "-b", "controlnet", "-o", tmp_path / "x.mp4",
                  library=dlib, env=bare)
    assert_one_line_error(proc, "stable-diffusion-v1-5/stable-diffusion-v1-5")
    assert "hf download stable-diffusion-v1-5/stable-diffusion-v1-5" in proc.stderr
    # one model of a configured set gone: that one is named
    broken = tmp_path / "broken"
    shutil.copytree(tiny.parent, broken)
    (broken / "motion" / "diffusion_pytorch_model.safetensors").unlink()
    cfg = tmp_path / "models.toml"
    cfg.write_text(tiny.read_text().replace(str(tiny.parent), str(broken)))
    proc = invoke("render", "-m", "clip", "-i", "astronaut", "-b", "animatediff", "--models-config", cfg,
                  "-o", tmp_path / "y.mp4", library=dlib, env=env)
    assert_one_line_error(proc, "motion_adapter")
    assert "holds no weights file" in proc.stderr
    # pickle weights are refused unless the config allows them
    (broken / "motion" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04N.")
    proc = invoke("render", "-m", "clip", "-i", "astronaut", "-b", "animatediff", "--models-config", cfg,
                  "-o", tmp_path / "y.mp4", library=dlib, env=env)
    assert_one_line_error(proc, "safetensors")
    # --model replaces one role for one render, and is checked too
    proc = invoke("render", "-m", "clip", "-i", "astronaut", "-b", "controlnet", "--model",
                  f"controlnet={tmp_path / 'nowhere'}", "-o", tmp_path / "z.mp4", library=dlib, env=env)
    assert_one_line_error(proc, "nowhere")
    assert library_snapshot(dlib) == before and not list(tmp_path.glob("*.mp4"))
    assert not lib.renders() or all(r.status == "done" for r in lib.renders())


@pytest.mark.parametrize("args,words", [
    (["-b", "controlnet", "--steps", "0"], "steps"),
    (["-b", "controlnet", "--strength", "5"], "strength"),
    (["-b", "controlnet", "--model", "unet=/x"], "no model role 'unet'"),
    (["-b", "controlnet", "--dtype", "fp16"], "fp16 is for GPUs"),
    (["-b", "controlnet", "--device", "cuda"], "no CUDA GPU"),
    (["-b", "controlnet", "--offload", "model"], "needs a CUDA GPU"),
    (["-b", "animatediff", "-p", "weighting=cosine"], "weighting"),
    (["-b", "wan-animate", "-p", "segment=10"], "4N+1"),
    (["-b", "wan-animate-2", "-p", "segment=10"], "4N+1"),
    (["-b", "wan-animate-2", "-p", "segment=9", "-p", "prev_frames=9"], "prev_frames"),
    (["-b", "wan-animate-2", "-p", "scheduler=ddim"], "own scheduler"),
    (["-b", "wan-animate-2", "-p", "distilled=yes"], "distilled must be true or false"),
    (["-b", "wan-animate-2", "-p", "margin=-1"], "margin"),
    (["-b", "wan-animate-2", "-p", "distilled=true", "--model", "pipeline=/x"], "uses model distilled"),
    (["-b", "pose", "--strength", "0.5"], "takes no parameter strength"),
])
def test_bad_diffusion_options_fail_before_any_work(dlib, env, tmp_path, args, words):
    before = library_snapshot(dlib)
    proc = invoke("render", "-m", "clip", "-i", "astronaut", *args, "-o", tmp_path / "o.mp4", library=dlib, env=env)
    assert_one_line_error(proc, words)
    assert library_snapshot(dlib) == before and not (tmp_path / "o.mp4").exists()


def test_models_command_lists_what_each_backend_needs(env, tiny, tmp_path):
    got = invoke_json("models", env=env, library=tmp_path / "lib")
    assert got["config"] == str(tiny) and got["safetensors_only"] is True
    assert {(m["backend"], m["role"]) for m in got["models"]} >= {("controlnet", "ip_adapter"),
                                                                  ("animatediff", "motion_adapter"),
                                                                  ("wan-animate", "pipeline")}
    assert all(m["present"] and m["weight_bytes"] > 0 for m in got["models"])
    bare = dict(env, MOTIONLIB_MODELS_CONFIG="")
    got = invoke_json("models", "wan-animate", env=bare, library=tmp_path / "lib")
    (m,) = got["models"]
    assert m["id"] == "Wan-AI/Wan2.2-Animate-14B-Diffusers" and not m["present"]
    assert m["fetch"].startswith("`hf download Wan-AI/Wan2.2-Animate-14B-Diffusers")
    text = invoke("models", env=bare, library=tmp_path / "lib")
    assert text.returncode == 0 and "missing" in text.stdout and "hf download h94/IP-Adapter" in text.stdout
    assert_one_line_error(invoke("models", "posenet", env=bare, library=tmp_path / "lib"), "is not a diffusion backend")
    bad = tmp_path / "bad.toml"
    bad.write_text('[controlnet]\nunet = "x/y"\n')
    assert_one_line_error(invoke("models", "--models-config", bad, env=env, library=tmp_path / "lib"), "no role 'unet'")


def test_a_real_size_model_on_the_cpu_needs_allow_cpu(dlib, env, tiny, tmp_path):
    """The parameter count comes from the safetensors header: a (sparse) 300M-parameter ControlNet
    is refused on the CPU before any work; --allow-cpu lifts exactly that refusal."""
    big = tmp_path / "models"
    shutil.copytree(tiny.parent, big)
    weights = big / "openpose" / "diffusion_pytorch_model.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [300_000_000], "data_offsets": [0, 1_200_000_000]}}).encode()
    with open(weights, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + 1_200_000_000)  # sparse: takes no disk
    cfg = tmp_path / "models.toml"
    cfg.write_text(tiny.read_text().replace(str(tiny.parent), str(big)))
    before = library_snapshot(dlib)
    args = ["render", "-m", "clip", "-i", "astronaut", "-b", "controlnet", "--size", "64", "--steps", "1",
            "--models-config", cfg, "-o", tmp_path / "o.mp4"]
    proc = invoke(*args, library=dlib, env=env)
    assert_one_line_error(proc, "--allow-cpu")
    assert "0.30 billion parameters" in proc.stderr and library_snapshot(dlib) == before
    scratch = copy_library(dlib, tmp_path / "lib")
    proc = invoke(*args, "--allow-cpu", library=scratch, env=env)
    assert "--allow-cpu" not in proc.stderr  # past the refusal; the fake weights then fail to load, in one line
    assert_one_line_error(proc, "could not load its models")
    assert not (tmp_path / "o.mp4").exists()


# --- models in the Hugging Face cache --------------------------------------------------------------


def test_models_are_found_in_the_hugging_face_cache(lib, dlib, env, tiny, tmp_path, monkeypatch):
    """A Hub id is looked up in the local cache ($HF_HOME/hub, the layout huggingface_hub writes),
    offline, where the environment points at the time of the call; the record names the snapshot
    commit it was read from."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--lllyasviel--control_v11p_sd15_openpose"
    shutil.copytree(tiny.parent / "openpose", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    cfg = tmp_path / "models.toml"
    lines = [ln for ln in tiny.read_text().splitlines() if not ln.startswith("controlnet = ")]
    cfg.write_text("\n".join(lines) + "\n")  # every backend takes the default ControlNet id
    cached = dict(env, HF_HOME=str(tmp_path / "hf"), MOTIONLIB_MODELS_CONFIG=str(cfg))
    got = {(m["backend"], m["role"]): m for m in invoke_json("models", env=cached, library=tmp_path / "l")["models"]}
    cn = got[("controlnet", "controlnet")]
    assert cn["id"] == "lllyasviel/control_v11p_sd15_openpose" and cn["present"]
    assert cn["path"] == str(repo / "snapshots" / commit)
    for k, v in cached.items():
        monkeypatch.setenv(k, v)
    rec = lib.render(_job("clip", "controlnet", tmp_path / "c.mp4", 64, params={"steps": 1})).to_json()
    assert rec["params"]["result"]["backend_report"]["model_files"]["controlnet"]["commit"] == commit
    # the same id without the cache: missing, named
    assert_one_line_error(invoke("render", "-m", "clip", "-i", "astronaut", "-b", "controlnet", "-o", tmp_path / "d.mp4",
                                 library=dlib, env=dict(cached, HF_HOME=str(tmp_path / "empty"))),
                          "lllyasviel/control_v11p_sd15_openpose")


# --- in process: what the backends do with frames ------------------------------------------------


def _render(backend_name: str, frames: int, pose_map, *, seed=0, size=64, params=None):
    from types import SimpleNamespace

    from motionlib.render.backends import get_backend
    from motionlib.render.backends.base import RenderContext

    backend = get_backend(backend_name)
    params = {"steps": 2, **(params or {})}
    backend.check(params)
    params = backend.resolve({**backend.defaults, **params})
    ident = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(ASTRONAUT).convert("RGB").resize((size, size)))
    ctx = RenderContext(ident, pose_map, SimpleNamespace(frames=frames), size, size, seed, "a person dancing",
                        params=params)
    plan = backend.plan(frames, 30.0)
    return np.stack(list(backend.render(ctx, plan, lambda *a: None))), backend, plan


def _maps(n: int, size: int = 64, period: int = 4) -> list[np.ndarray]:
    """Pose maps of a stick figure raising an arm; frame t and t + period are the same picture."""
    import cv2

    out = []
    for t in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        a = (t % period) / period * np.pi
        cv2.line(img, (size // 2, size // 4), (size // 2, 3 * size // 4), (255, 0, 0), 3)
        cv2.line(img, (size // 2, size // 3), (int(size / 2 + size / 3 * np.cos(a)), int(size / 3 - size / 3 * np.sin(a))),
                 (0, 255, 0), 3)
        out.append(img)
    return out


def test_controlnet_shares_latents_batches_frames_and_is_deterministic():
    maps = _maps(8)
    a, backend, _ = _render("controlnet", 8, lambda i: maps[i], params={"batch": 4})
    assert a.shape == (8, 64, 64, 3) and backend.report["batch"] == 4
    # one start for every frame: the same pose map gives the same frame, another pose another frame
    assert np.array_equal(a[0], a[4]) and np.array_equal(a[1], a[5])
    assert np.abs(a[0].astype(int) - a[1]).mean() > 0.05  # tiny random ControlNet: a small but real effect
    # the same seed again: the same frames; batching does not change them (beyond float rounding)
    b, _, _ = _render("controlnet", 8, lambda i: maps[i], params={"batch": 4})
    assert np.array_equal(a, b)
    c, _, _ = _render("controlnet", 8, lambda i: maps[i], params={"batch": 1})
    assert np.abs(a.astype(int) - c).max() <= 2
    d, _, _ = _render("controlnet", 8, lambda i: maps[i], seed=1, params={"batch": 4})
    assert np.abs(a.astype(int) - d).mean() > 0.5


def test_animatediff_blends_overlapping_windows():
    maps = _maps(30, period=7)
    frames, backend, plan = _render("animatediff", 30, lambda i: maps[i])
    assert frames.shape == (30, 64, 64, 3)
    assert [[c.start, c.stop] for c in plan] == [[0, 16], [12, 28], [14, 30]]
    report = backend.report
    assert report["windows"] == [[c.start, c.stop] for c in plan] and report["split_inference"] is False
    # every window of the plan went through the models at each of the 2 steps (both guidance halves at once)
    assert report["windows_run"] == [[c.start, c.stop, 2] for c in plan]
    again, _, _ = _render("animatediff", 30, lambda i: maps[i])
    assert np.array_equal(frames, again)
    # the weighting matters only where windows overlap: a long clip changes with it, one window does not
    flat, _, _ = _render("animatediff", 30, lambda i: maps[i], params={"weighting": "flat"})
    assert np.abs(frames.astype(int) - flat).max() > 0
    short, _, _ = _render("animatediff", 16, lambda i: maps[i])
    short_flat, _, _ = _render("animatediff", 16, lambda i: maps[i], params={"weighting": "flat"})
    assert np.array_equal(short, short_flat)


def test_animatediff_one_window_is_what_diffusers_pipeline_renders():
    """The backend's own denoising loop, on a clip of one window, gives the frames of diffusers'
    AnimateDiffControlNetPipeline with the same models, seed and settings."""
    import torch

    from motionlib.render.backends.diffusion import pil

    maps = _maps(12, period=5)
    ours, backend, _ = _render("animatediff", 12, lambda i: maps[i], seed=3)
    pipe = backend.pipeline()
    with torch.inference_mode():
        out = pipe(prompt="a person dancing", conditioning_frames=[pil(m) for m in maps],
                   ip_adapter_image=pil(np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(ASTRONAUT)
                                                   .convert("RGB").resize((64, 64)))),
                   num_frames=12, num_inference_steps=2, guidance_scale=7.5, controlnet_conditioning_scale=1.0,
                   generator=backend.generator(3), height=64, width=64, output_type="np")
    theirs = (np.clip(np.asarray(out.frames[0], np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.abs(ours.astype(int) - theirs).max() <= 1


@pytest.mark.parametrize("n", [33, 60, 200])
def test_animatediff_renders_long_clips_window_by_window(n):
    """Above every length the backend once switched on (FreeNoise above 16 frames, its split inference
    above 32: it broke with the IP-Adapter): every window of the plan is rendered at every step, and
    no model call ever sees more than one window (the GPU memory does not grow with the clip)."""
    from motionlib.render.backends import get_backend

    maps = _maps(n, size=32, period=7)
    seen = []
    pipe = None
    backend = get_backend("animatediff")
    try:
        # the pipeline is cached: load it once through a short render, then watch the UNet's calls
        _, backend, _ = _render("animatediff", 4, lambda i: maps[i], size=32, params={"steps": 1})
        pipe = backend.pipeline()
        hook = pipe.unet.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[2]))
        frames, backend, plan = _render("animatediff", n, lambda i: maps[i], size=32, params={"steps": 1})
    finally:
        if pipe is not None:
            hook.remove()
    assert frames.shape == (n, 32, 32, 3) and frames.std() > 1.0
    windows = [[c.start, c.stop] for c in plan]
    assert windows[0][0] == 0 and windows[-1][1] == n and all(b - a == 16 for a, b in windows)
    assert all(b2 - a2 >= 0 and windows[i][1] - a2 >= 4 for i, (a2, b2) in enumerate(windows[1:]))
    report = backend.report
    assert report["windows"] == windows and report["overlap"] == 4 and report["split_inference"] is False
    assert report["windows_run"] == [[a, b, 1] for a, b in windows]  # one step, both guidance halves at once
    assert seen == [16] * len(windows)  # every window, 16 frames a call


def test_device_plan_and_cpu_refusal(monkeypatch):
    from motionlib.core.errors import InputError
    from motionlib.render.backends import diffusion
    from motionlib.render.backends.controlnet import ControlNetBackend

    b = ControlNetBackend()
    rt = b.plan_runtime({"device": "auto", "dtype": "auto", "offload": "auto"}, 10**9, 10**8)
    assert (rt.device, rt.dtype, rt.offload, rt.vae_slicing, rt.vae_tiling) == ("cpu", "fp32", "none", False, False)
    assert rt.need_gib == pytest.approx(10**9 * 4 / 2**30 + b.headroom_gib, abs=0.01)
    assert rt.batch is None and rt.plan.startswith("cpu: ")
    # a model counted as "real" is refused on the CPU unless allowed
    monkeypatch.setattr(diffusion, "CPU_PARAM_LIMIT", 1000)
    with pytest.raises(InputError, match="allow_cpu"):  # the CLI spells it --allow-cpu
        b.resolve({**b.defaults})
    assert b.resolve({**b.defaults, "allow_cpu": True})["allow_cpu"] is True


def _face_centres(crops) -> list[tuple[float, float, float]]:
    """(centre x, centre y, width) of the face found in each crop that has one, as fractions of
    the crop: MediaPipe's legacy face detector where it exists (mediapipe <= 0.10.21, Python <=
    3.12), else OpenCV's frontal-face Haar cascade (in the opencv-contrib-python wheel: the Tasks
    face detector's model is not in the mediapipe wheel, and the tests run offline)."""
    from motionlib.ingest.estimators.mediapipe import legacy_available

    centres = []
    if legacy_available():
        import mediapipe as mp

        with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as fd:
            for c in crops:
                found = fd.process(c).detections
                if found:
                    b = found[0].location_data.relative_bounding_box
                    centres.append((b.xmin + b.width / 2, b.ymin + b.height / 2, b.width))
        return centres
    import cv2

    haar = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    for c in crops:
        found = haar.detectMultiScale(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), 1.1, 5, minSize=(40, 40))
        if len(found):  # measured on Python 3.14: a face in 21 of 21 crops, centre (0.47, 0.52), width 0.44
            x, y, w, h = max(found, key=lambda r: r[2] * r[3])
            side = c.shape[1]
            centres.append(((x + w / 2) / side, (y + h / 2) / c.shape[0], w / side))
    return centres


def test_face_video_crops_show_the_performers_face(lib):
    """Wan-Animate's face video from the kept source: a face detector finds a centred face."""
    from motionlib.render import face

    rec = lib.get("clip")
    motion = lib.load(rec.ref)
    crops = face.source_faces(motion, *lib.aligned_source(rec), 256)
    assert len(crops) == motion.frames and crops[0].shape == (256, 256, 3)
    centres = _face_centres(crops)
    assert len(centres) >= 0.9 * len(crops)
    cx, cy, width = np.median(centres, axis=0)
    assert abs(cx - 0.5) < 0.15 and abs(cy - 0.5) < 0.15 and 0.2 < width < 0.7


@pytest.mark.parametrize("free,total,largest,size,headroom,plan", [
    # SD 1.5 + OpenPose ControlNet + IP-Adapter (ViT-H): ~2.1 B parameters, the UNet 0.86 B, fp16
    (24.0, 2_080_000_000, 860_000_000, 2, 3.0, "none"),
    (6.0, 2_080_000_000, 860_000_000, 2, 3.0, "model"),
    (4.0, 2_080_000_000, 860_000_000, 2, 3.0, "sequential"),
    # Wan2.2-Animate-14B: ~21 B parameters with UMT5-XXL, the transformer ~15 B, bf16
    (79.0, 21_000_000_000, 15_000_000_000, 2, 20.0, "none"),
    (50.0, 21_000_000_000, 15_000_000_000, 2, 20.0, "model"),
    (23.0, 21_000_000_000, 15_000_000_000, 2, 20.0, "sequential"),
])
def test_memory_plan_from_free_gpu_memory(free, total, largest, size, headroom, plan):
    from motionlib.render.backends.diffusion import memory_plan

    assert memory_plan(free, total, largest, size, headroom) == plan


# The public checkpoints' parameters (what resolve reads from their files): controlnet's SD 1.5 +
# ControlNet + IP-Adapter ~2.08 B, the UNet the largest (0.86 B); animatediff's adds the motion adapter
# (0.45 B; the UNet with it 1.31 B); Wan2.2-Animate-14B ~21 B (its transformer ~15 B).
MODELS = {"controlnet": (2_080_000_000, 860_000_000), "animatediff": (2_530_000_000, 1_310_000_000),
          "wan-animate": (21_000_000_000, 15_000_000_000)}


@pytest.mark.parametrize("card,backend,offload,batch,slicing,tiling,words", [
    # controlnet: frames per call (x2 images for guidance) as many as fit up to 16, every model on the GPU
    (8, "controlnet", "none", 12, False, False, "6 frames per call"),
    (12, "controlnet", "none", 32, False, False, "16 frames per call"),
    (16, "controlnet", "none", 32, False, False, "16 frames per call"),
    (24, "controlnet", "none", 32, False, False, "16 frames per call"),
    (80, "controlnet", "none", 32, False, False, "16 frames per call"),
    # animatediff: one 16-frame window per call; on 12 GB its guidance halves one after the other,
    # on 8 GB the models take turns on the GPU too; the VAE decodes frame by frame where 16 do not fit
    (8, "animatediff", "model", 16, True, False, "halves one after the other"),
    (12, "animatediff", "none", 16, True, False, "halves one after the other"),
    (16, "animatediff", "none", 32, False, False, "with both guidance halves"),
    (24, "animatediff", "none", 32, False, False, "with both guidance halves"),
    (80, "animatediff", "none", 32, False, False, "with both guidance halves"),
    # wan-animate: 39 GiB of bf16 weights; only the 80 GB card holds them
    (8, "wan-animate", "sequential", None, True, True, "sequential offload"),
    (24, "wan-animate", "sequential", None, True, True, "sequential offload"),
    (80, "wan-animate", "none", None, False, False, "all models on the GPU"),
])
def test_memory_plan_for_ordinary_cards(monkeypatch, card, backend, offload, batch, slicing, tiling, words):
    """The automatic plan at 512 x 512 with a card's free memory pretended (its size less 0.5 GiB the
    driver holds), and the one line the render report carries."""
    import torch

    from motionlib.render.backends import get_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: ((card - 0.5) * 2**30, card * 2**30))
    b = get_backend(backend)
    rt = b.plan_runtime({**b.defaults}, *MODELS[backend])
    assert (rt.device, rt.offload, rt.batch, rt.vae_slicing, rt.vae_tiling) == ("cuda", offload, batch, slicing, tiling)
    assert words in rt.plan and f"{card - 0.5:.1f} GiB free" in rt.plan and "\n" not in rt.plan
    if rt.batch is not None:  # what it expects to use fits in what is free
        assert rt.need_gib <= card - 0.5
    # a larger frame needs more per image: at 1024 x 1024 no card below 80 GB keeps animatediff's halves together
    if backend == "animatediff" and card < 80:
        assert b.plan_runtime({**b.defaults}, *MODELS[backend], 1024, 1024).batch in (16, None)


def test_memory_plan_follows_the_options_given(monkeypatch):
    """offload and batch given by hand are kept; the plan still sizes the rest around them."""
    import torch

    from motionlib.render.backends import get_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (7.5 * 2**30, 8 * 2**30))
    b = get_backend("controlnet")
    rt = b.plan_runtime({**b.defaults, "offload": "model", "vae_slicing": True}, *MODELS["controlnet"])
    assert (rt.offload, rt.batch, rt.vae_slicing) == ("model", 24, True)  # 12 frames beside the UNet
    rt = b.plan_runtime({**b.defaults, "batch": 2, "guidance": 1.0}, *MODELS["controlnet"])
    assert (rt.offload, rt.batch) == ("none", 2)
    b = get_backend("animatediff")
    rt = b.plan_runtime({**b.defaults, "guidance": 1.0}, *MODELS["animatediff"])
    assert (rt.offload, rt.batch) == ("model", 16) and "halves" not in rt.plan


# --- wan-animate-2: driven by the kept source clip ---------------------------------------------------


def test_wan_animate_2_renders_from_the_source_clip_and_again(lib, dlib, env, tmp_path, monkeypatch):
    """The clip's kept source, cut to the performer and sampled at 24 fps, drives the pipeline in
    9-frame segments; the clip comes back on the motion's clock; ``render --again`` (the command)
    makes the same frames. (The frames are compared as the backend hands them to the encoder:
    libx264 through PyAV does not always encode the same noisy tiny-model frames to the same
    bytes twice in one process.)"""
    from motionlib.media import encode
    from motionlib.render import driving

    made = {}  # output name -> the frames the backend made
    write = encode.write_mp4

    def keep(path, frames, *args, **kw):
        made[Path(path).name] = kept = []
        return write(path, (kept.append(f.copy()) or f for f in frames), *args, **kw)

    monkeypatch.setattr(encode, "write_mp4", keep)
    out = tmp_path / "w2.mp4"
    rec = lib.render(_job("clip", "wan-animate-2", out, 32, seed=7, params={"steps": 1, "segment": 9})).to_json()
    assert rec["status"] == "done", rec
    motion = lib.load("clip")
    times, frames = _decoded(out)
    assert frames.shape == (motion.frames, 32, 32, 3)
    assert np.allclose(times, motion.timestamps - motion.timestamps[0], atol=2e-3)
    assert frames.std() > 1.0
    assert [m["role"] for m in rec["models"]] == ["pipeline"]
    p = rec["params"]
    assert p["params"]["steps"] == 1 and p["params"]["guidance"] == 3.0 and p["params"]["distilled"] is False
    assert list(p["params"]["models"]) == ["pipeline"]
    info = p["result"]["backend_report"]
    n = driving.model_frames(motion.duration)
    assert info["pipeline"] == "WanAnimate2ModularPipeline" and info["model_fps"] == 24 and info["model_frames"] == n
    assert n == int(np.ceil(motion.duration * 24 - 1e-6)) and n != motion.frames  # the clip is 30 fps
    segs = info["segments"]  # at 24 fps: 9 frames, each after the first sharing one with the one before
    assert segs[0] == [0, 9] and all(b[0] == a[1] - 1 for a, b in zip(segs, segs[1:])) and segs[-1][1] == n
    assert info["padded_frames"] == 9 + 8 * (len(segs) - 1) >= n
    assert info["runtime"]["attention"] == "flex" and info["compiled"] is False
    chunks = p["result"]["chunks"]  # the same segments, in the clip's frames
    assert len(chunks) == len(segs) and chunks[0][0] == 0 and chunks[-1][1] == motion.frames
    drive = info["driving_video"]
    assert drive["source_size"] == [motion.width, motion.height] and drive["margin"] == 0.1
    x0, y0, x1, y1 = drive["box"]
    assert (x1 - x0) == pytest.approx(y1 - y0, abs=0.2)  # the render is square
    assert "qa" in p and "source" in rec["timings"]
    validator = schema_validator("render-record.schema.json")
    validator.validate(rec)
    validator.validate(json.loads(Path(str(out) + ".json").read_text()))
    # again, through the command: the same version, seed and parameters, the same frames
    again = invoke_json("render", "--again", rec["id"], "-o", tmp_path / "again.mp4", library=dlib)[0]
    assert again["status"] == "done" and again["seed"] == 7 and again["models"] == rec["models"]
    assert again["params"]["params"] == p["params"]
    assert np.array_equal(np.stack(made["w2.mp4"]), np.stack(made["again.mp4"]))
    assert _decoded(tmp_path / "again.mp4")[1].shape == frames.shape


def test_wan_animate_2_distilled_preset_and_a_clip_shorter_than_a_segment(lib, tmp_path):
    """distilled=true takes the distilled checkpoint and its preset (10 steps, no guidance); with
    the default 81-frame segment the 17 frames at 24 fps are padded out by motionlib (diffusers'
    own padding would read before the first frame and fail), and cut back."""
    from motionlib.render.backends import get_backend

    b = get_backend("wan-animate-2")
    base = b.resolve({**b.defaults})
    assert (base["steps"], base["guidance"], list(base["models"])) == (40, 3.0, ["pipeline"])
    b = get_backend("wan-animate-2")
    dist = b.resolve({**b.defaults, "distilled": True})
    assert (dist["steps"], dist["guidance"], list(dist["models"])) == (10, 1.0, ["distilled"])
    assert b.resolve({**b.defaults, "distilled": True, "steps": 4, "guidance": 2.0})["steps"] == 4
    out = tmp_path / "d.mp4"
    rec = lib.render(_job("clip", "wan-animate-2", out, 32, seed=3, params={"distilled": True, "steps": 1})).to_json()
    assert rec["status"] == "done", rec
    assert [m["role"] for m in rec["models"]] == ["distilled"]
    info = rec["params"]["result"]["backend_report"]
    assert info["pipeline"] == "WanAnimate2DistilledModularPipeline" and rec["params"]["params"]["guidance"] == 1.0
    assert info["segments"] == [[0, info["model_frames"]]] and info["padded_frames"] == 81
    assert rec["params"]["result"]["chunks"] == [[0, lib.load("clip").frames]]
    assert _decoded(out)[1].shape == (lib.load("clip").frames, 32, 32, 3)


@pytest.mark.parametrize("motion,words", [("flipped", "was made by mirror"), ("slow", "was made by retime")])
def test_wan_animate_2_refuses_a_version_off_its_source(dlib, env, tmp_path, motion, words):
    before = library_snapshot(dlib)
    proc = invoke("render", "-m", motion, "-i", "astronaut", "-b", "wan-animate-2", "-o", tmp_path / "o.mp4",
                  library=dlib, env=env)
    assert_one_line_error(proc, words)
    assert "backend 'wan-animate-2' is driven by the version's kept source clip" in proc.stderr
    assert library_snapshot(dlib) == before and not (tmp_path / "o.mp4").exists()


def test_a_wan_animate_2_campaign_with_a_version_off_its_source_renders_nothing(dlib, env, tmp_path):
    before = library_snapshot(dlib)
    camp = tmp_path / "c.toml"
    camp.write_text('name = "c"\noutput_dir = "out"\n[defaults]\nbackend = "wan-animate-2"\nsize = 32\n'
                    '[[jobs]]\nmotions = ["clip", "flipped"]\nidentities = ["astronaut"]\n')
    proc = invoke("render", "--campaign", camp, library=dlib, env=env)
    assert_one_line_error(proc, "flipped@1 was made by mirror")
    assert library_snapshot(dlib) == before and not (tmp_path / "out").exists()


def test_wan_animate_2_refuses_without_a_kept_source_and_names_missing_weights(lib, dlib, env, tmp_path):
    from motionlib.library import Library

    scratch = copy_library(dlib, tmp_path / "lib")
    with Library(scratch) as other:
        (scratch / other.get("clip").source_path).unlink()  # the kept clip is gone
    before = library_snapshot(scratch)
    proc = invoke("render", "-m", "clip", "-i", "astronaut", "-b", "wan-animate-2", "-o", tmp_path / "o.mp4",
                  library=scratch, env=env)
    assert_one_line_error(proc, "has no kept source clip (ingested with --no-keep-source or imported)")
    assert library_snapshot(scratch) == before and not (tmp_path / "o.mp4").exists()
    # weights: the checkpoint the render would use is named, with the command that fetches it
    bare = dict(env, MOTIONLIB_MODELS_CONFIG="")
    proc = invoke("render", "-m", "clip", "-i", "astronaut", "-b", "wan-animate-2", "-o", tmp_path / "o.mp4",
                  library=dlib, env=bare)
    assert_one_line_error(proc, "needs model pipeline = Wan-AI/Wan2.2-Animate-2-14B-Diffusers")
    assert "`hf download Wan-AI/Wan2.2-Animate-2-14B-Diffusers --include" in proc.stderr
    proc = invoke("render", "-m", "clip", "-i", "astronaut", "-b", "wan-animate-2", "-p", "distilled=true",
                  "-o", tmp_path / "o.mp4", library=dlib, env=bare)
    assert_one_line_error(proc, "needs model distilled = Wan-AI/Wan2.2-Animate-2-14B-Distilled-Diffusers")
    assert not (tmp_path / "o.mp4").exists()
    assert all(r.status == "done" for r in lib.renders())


def test_models_lists_wan_animate_2(env, tmp_path):
    got = invoke_json("models", "wan-animate-2", env=env, library=tmp_path / "lib")
    assert [(m["role"], m["present"]) for m in got["models"]] == [("pipeline", True), ("distilled", True)]
    bare = dict(env, MOTIONLIB_MODELS_CONFIG="")
    got = invoke_json("models", "wan-animate-2", env=bare, library=tmp_path / "lib")
    rows = {m["role"]: m for m in got["models"]}
    assert rows["pipeline"]["id"] == "Wan-AI/Wan2.2-Animate-2-14B-Diffusers" and not rows["pipeline"]["present"]
    assert rows["distilled"]["id"] == "Wan-AI/Wan2.2-Animate-2-14B-Distilled-Diffusers"
    assert rows["distilled"]["fetch"].startswith("`hf download Wan-AI/Wan2.2-Animate-2-14B-Distilled-Diffusers --include")
    assert "unverified" in rows["distilled"]["note"] and "not checked" in rows["pipeline"]["note"]
    text = invoke("models", "wan-animate-2", env=bare, library=tmp_path / "lib")
    assert text.returncode == 0 and "hf download Wan-AI/Wan2.2-Animate-2-14B-Diffusers" in text.stdout
    assert "unverified" in text.stdout


def test_driving_video_is_the_source_around_the_performer_at_24_fps(lib):
    """The crop: one box for the clip, at the render's aspect, holding every confident keypoint with
    its margin; each frame the source frame of its 24 fps time, cut to that box (checked against
    a plain slice-and-resize of the same decoded frame)."""
    import cv2

    from motionlib.media import video
    from motionlib.render import driving, pipeline

    rec = lib.get("clip")
    motion = lib.load(rec.ref)
    path, offset = lib.aligned_source(rec)
    w, h = 96, 128
    frames_of, info = pipeline.driving_video(motion, (path, offset), w, h, 0.1, 0.3)
    x0, y0, x1, y1 = info["box"]
    assert (x1 - x0) / (y1 - y0) == pytest.approx(w / h, rel=1e-3)
    pts = motion.keypoints[..., :2][motion.confidence >= 0.3]
    assert (pts.min(axis=0) > [x0, y0]).all() and (pts.max(axis=0) < [x1, y1]).all()
    assert 0 <= x0 and x1 <= motion.width and 0 <= y0 and y1 <= motion.height  # it fits: no black
    times = driving.model_times(float(motion.timestamps[0]), motion.duration)
    assert np.allclose(np.diff(times), 1 / 24) and len(times) == driving.model_frames(motion.duration)
    crops = list(frames_of(times))
    assert len(crops) == len(times) and crops[0].shape == (h, w, 3)
    src = video.probe(path)
    size = src.scaled_size(driving.decode_side((src.width, src.height), info["box"], (w, h)))
    full = list(video.aligned_frames(src, times, motion.duration, offset, max(size), size))
    s = size[0] / motion.width

    def by_hand(frame, shift=0.0):  # slice the box (moved right by ``shift`` of its width) and resize
        dx = shift * (x1 - x0)
        cut = frame[int(round(y0 * s)):int(round(y1 * s)), int(round((x0 + dx) * s)):int(round((x1 + dx) * s))]
        return cv2.resize(cut, (w, h), interpolation=cv2.INTER_AREA)

    def diff(a, b):  # mean difference at a quarter of the size (rounding the box to pixels aside)
        return np.abs(cv2.resize(a, (w // 4, h // 4), interpolation=cv2.INTER_AREA).astype(int)
                      - cv2.resize(b, (w // 4, h // 4), interpolation=cv2.INTER_AREA)).mean()

    # the crop of each time is that time's frame: nearer it than any other time's (the performer
    # comes back to a pose, so a fixed other time can look alike: 0.25 s on, 1.8x the rounding
    # difference on the Tasks track; the nearest other time, often the next frame, measured 1.1-2.5x)
    hand = [by_hand(f) for f in full]
    for k, crop in enumerate(crops):
        near = diff(crop, hand[k])
        # measured: 1.6-1.7 grey levels on the legacy track's box, 2.3-2.4 on the Tasks track's (its
        # left edge falls half a decoded pixel between whole ones: by_hand's rounding at its worst)
        assert near < 3
        assert diff(crop, by_hand(full[k], 0.05)) > 3 * near  # 5 % off sideways: measured 11-13
        others = [diff(crop, h) for j, h in enumerate(hand) if j != k]
        assert min(others) > near, f"crop {k} is nearer another time's frame"


def test_driving_frame_plan():
    import math

    from motionlib.render import driving
    from motionlib.render.backends.wan_animate_2 import _area_args

    # padded out to whole segments, back and forth (the last frame repeated, as diffusers pads)
    assert driving.pad_to_segments(5, 9, 1) == [0, 1, 2, 3, 4, 4, 3, 2, 1]
    assert driving.pad_to_segments(3, 9, 1) == [0, 1, 2, 2, 1, 0, 0, 1, 2]
    assert driving.pad_to_segments(12, 9, 1) == list(range(12)) + [11, 10, 9, 8, 7]
    assert driving.segments(12, 9, 1) == [(0, 9), (8, 12)] and driving.segments(9, 9, 1) == [(0, 9)]
    assert len(driving.pad_to_segments(82, 81, 5)) == 81 + 76
    # back on the motion's clock: each 30 fps frame takes the nearest 24 fps one
    ts = np.arange(10) / 30
    assert driving.nearest_model_frames(ts, count=8).tolist() == [0, 1, 2, 2, 3, 4, 5, 6, 6, 7]
    assert driving.model_frames(10 / 30) == 8 and driving.model_frames(1.0) == 24
    # the pipeline reads height x width as an area (its resize step, redone here): the arguments
    # given give back exactly the size, where the size itself would lose 16 pixels (112x144 -> 96x144)
    def resolved(h, w, ratio):
        return int(math.sqrt(h * w * ratio)) // 16 * 16, int(math.sqrt(h * w / ratio)) // 16 * 16

    assert resolved(144, 112, 144 / 112) == (144, 96)
    for width, height in [(112, 144), (832, 480), (480, 832), (32, 32), (512, 288), (1280, 720)]:
        assert resolved(*_area_args(width, height), height / width) == (height, width)


# --- speed paths (backends/speed.py): the same frames as the plain path ----------------------------

PLAIN = {"compile": False, "fuse_qkv": False, "channels_last": False, "batch": 4}


def test_speed_paths_give_the_plain_paths_frames(monkeypatch, tmp_path, capsys):
    """channels-last, fused QKV and torch.compile each give the plain path's frames (fp32 here:
    within one level of 255). The compile is traced by dynamo with the ``aot_eager`` backend: the
    same captured graphs inductor would lower, without inductor's C++ build (about a minute per
    model on this CPU); the persistent cache and the one-time note are checked on the way."""
    from diffusers.models.attention_processor import FusedAttnProcessor2_0

    monkeypatch.setenv("MOTIONLIB_COMPILE_BACKEND", "aot_eager")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "compiled"))
    maps = _maps(6)
    plain, backend, _ = _render("controlnet", 6, lambda i: maps[i], params={**PLAIN, "steps": 3})
    assert backend.report["speed"]["compile"] is False
    for path in ({"channels_last": True}, {"fuse_qkv": True}, {"compile": True}):
        frames, backend, _ = _render("controlnet", 6, lambda i: maps[i], params={**PLAIN, **path, "steps": 3})
        assert np.abs(frames.astype(int) - plain).max() <= 1, path
        assert all(backend.report["speed"][k] == v for k, v in path.items())
        pipe = backend.pipeline()
        if "fuse_qkv" in path:
            fused = [n for n, p in pipe.unet.attn_processors.items() if isinstance(p, FusedAttnProcessor2_0)]
            assert fused and all(n.endswith("attn1.processor") for n in fused)  # IP-Adapter's cross-attention kept
            assert any(isinstance(p, FusedAttnProcessor2_0) for p in pipe.controlnet.attn_processors.values())
    # compile: one note the first time, the code kept in the cache folder, no note the second time
    assert "one-time wait" in capsys.readouterr().err
    assert backend.report["speed"]["compile_backend"] == "aot_eager" and not backend.report["speed"]["compile_warm"]
    assert backend.report["speed"]["cache_dir"] == str(tmp_path / "compiled")
    assert list((tmp_path / "compiled" / "motionlib-warm").iterdir())
    again, backend, _ = _render("controlnet", 6, lambda i: maps[i], params={**PLAIN, "compile": True, "steps": 3})
    assert np.array_equal(again, frames) and backend.report["speed"]["compile_warm"] is True
    assert "one-time" not in capsys.readouterr().err


def test_batched_decode_gives_the_pipelines_frames():
    """The backend's own path (pose maps as one tensor, latents decoded and rounded on the device)
    gives what diffusers' pipeline gives from PIL pose maps and its float output."""
    import torch

    from motionlib.render.backends.controlnet import decode_frames, host_frames
    from motionlib.render.backends.diffusion import pil, to_uint8

    maps = _maps(3)
    ours, backend, _ = _render("controlnet", 3, lambda i: maps[i], params=PLAIN)
    pipe = backend.pipeline()
    ctx_ident = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(ASTRONAUT).convert("RGB").resize((64, 64)))
    with torch.inference_mode():
        pos, neg = pipe.encode_prompt("a person dancing", "cpu", 1, True, "")
        ip = pipe.prepare_ip_adapter_image_embeds(pil(ctx_ident), None, "cpu", 1, True)
        side = 64 // pipe.vae_scale_factor
        noise = torch.randn((1, 4, side, side), generator=torch.Generator("cpu").manual_seed(0))
        out = pipe(prompt_embeds=pos.expand(3, -1, -1), negative_prompt_embeds=neg.expand(3, -1, -1),
                   image=[pil(m) for m in maps], ip_adapter_image_embeds=ip, latents=noise.expand(3, -1, -1, -1).clone(),
                   num_inference_steps=2, guidance_scale=7.5, height=64, width=64, output_type="np")
        assert np.array_equal(to_uint8(out.images), ours)
        latents = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(3))
        theirs = pipe.image_processor.postprocess(pipe.vae.decode(latents / pipe.vae.config.scaling_factor)[0],
                                                  output_type="np")
        assert np.array_equal(host_frames(decode_frames(pipe.vae, latents)), to_uint8(theirs))


def test_step_cache_is_opt_in_recorded_and_listed(lib, dlib, tmp_path, env):
    """step_cache=N (DeepCache-style) runs the UNet's deep blocks every N-th step only: other
    pictures, so off unless asked for, recorded with the render and shown by ``motionlib renders``."""
    maps = _maps(4)
    plain, _, _ = _render("controlnet", 4, lambda i: maps[i], params={**PLAIN, "steps": 4})
    every, backend, _ = _render("controlnet", 4, lambda i: maps[i], params={**PLAIN, "steps": 4, "step_cache": 1})
    assert np.array_equal(every, plain) and backend.report["speed"]["deep_runs"] == 4
    cached, backend, _ = _render("controlnet", 4, lambda i: maps[i], params={**PLAIN, "steps": 4, "step_cache": 2})
    assert backend.report["speed"]["deep_runs"] == 2  # steps 0 and 2 whole, 1 and 3 from the cache
    assert 0 < np.abs(cached.astype(int) - plain).mean() < 20
    clip, backend, _ = _render("animatediff", 16, lambda i: maps[i % 4], params={"steps": 4, "step_cache": 2})
    assert clip.shape == (16, 64, 64, 3) and backend.report["speed"]["deep_runs"] == 2
    rec = lib.render(_job("clip", "controlnet", tmp_path / "c.mp4", 64, params={"steps": 2, "step_cache": 2})).to_json()
    assert rec["status"] == "done" and rec["params"]["params"]["step_cache"] == 2
    assert rec["params"]["result"]["backend_report"]["speed"]["step_cache"] == 2
    schema_validator("render-record.schema.json").validate(rec)
    listing = invoke("renders", library=dlib, env=env).stdout
    line = next(ln for ln in listing.splitlines() if ln.split()[:1] == [str(rec["id"])])
    assert "controlnet step_cache=2" in line
    proc = invoke("render", "-m", "clip", "-i", "astronaut", "-b", "controlnet", "--size", "64", "--steps", "1",
                  "--no-compile", "-o", tmp_path / "n.mp4", "--json", library=dlib, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["params"]["params"]["compile"] is False
