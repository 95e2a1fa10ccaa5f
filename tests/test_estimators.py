import dataclasses
import hashlib
import http.server
import importlib.util
import io
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLE, assert_one_line_error, invoke
from motionlib.core.errors import EstimatorError, FetchFailed, InputError
from motionlib.ingest.estimators import default_estimator, spec_for
from motionlib.ingest.estimators import mediapipe as mpe
from motionlib.ingest.estimators import models
from motionlib.ingest.pipeline import IngestOptions

# mediapipe <= 0.10.21 (Python <= 3.12): the legacy solutions and their bundled models
legacy = pytest.mark.skipif(not mpe.legacy_available(), reason="this mediapipe has no legacy solutions (Python 3.13+)")


@legacy
def test_settings_digest_depends_on_what_changes_results_only():
    base = IngestOptions()
    assert base.digest() == IngestOptions(workers=3).digest()
    assert base.digest() != IngestOptions(end=2.0).digest()
    assert base.digest() != IngestOptions(max_size=960).digest()
    assert base.digest() != IngestOptions(whole_body=True).digest()
    assert spec_for().settings["model_complexity"] == 1


def test_option_conflicts_and_ranges(tmp_path):
    with pytest.raises(InputError, match="cannot be combined"):
        spec_for(whole_body=True, task_file=tmp_path / "x.task")
    # the library names its parameters; the command line spells them as its flags (test_layers)
    with pytest.raises(InputError, match="max_size"):
        IngestOptions(max_size=10)
    with pytest.raises(InputError, match="min_detection_confidence"):
        IngestOptions(min_detection_confidence=1.5)


def test_a_bad_task_file_is_a_clear_error(tmp_path):
    bogus = tmp_path / "pose.task"
    bogus.write_bytes(b"PK\x03\x04 not really a model")
    with pytest.raises(EstimatorError, match="not a usable MediaPipe pose landmarker model"):
        spec_for(task_file=bogus).build()
    with pytest.raises(EstimatorError, match="no such file"):
        spec_for(task_file=tmp_path / "missing.task").build()


@legacy
def test_matplotlib_still_works_after_the_deferred_import():
    code = (
        "from motionlib.ingest.estimators.mediapipe import _import_mediapipe\n"
        "import sys\n"
        "mp = _import_mediapipe()\n"
        "assert 'matplotlib' not in sys.modules, 'pyplot was imported eagerly'\n"
        "from mediapipe.python.solutions import drawing_utils\n"
        "assert callable(drawing_utils.plt.figure)\n"
        "import matplotlib.pyplot as plt\n"
        "assert plt is sys.modules['matplotlib.pyplot'] and callable(plt.plot)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


# --- choosing the estimator ---------------------------------------------------------------------



def _bundle_bytes(extra: bytes = b"") -> bytes:
    """A zip shaped like a pose landmarker .task (its members need not be real models to be fetched)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("pose_detector.tflite", b"detector" + extra)
        z.writestr("pose_landmarks_detector.tflite", b"landmarks" + extra)
    return buf.getvalue()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _cached_model(cache: Path, data: bytes | None = None) -> Path:
    path = cache / "models" / models.POSE.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if data is not None else _bundle_bytes())
    return path


def test_estimator_names_and_what_whole_body_and_task_file_mean(tmp_path, cache):
    task = _cached_model(cache)
    if mpe.legacy_available():
        assert default_estimator() == "mediapipe-pose" and spec_for().name == "mediapipe-pose"
        assert spec_for(estimator="mediapipe-holistic").name == spec_for(whole_body=True).name == "mediapipe-holistic"
        assert spec_for(whole_body=True, estimator="mediapipe-holistic").skeleton == "mediapipe_holistic_543"
    s = spec_for(estimator="mediapipe-tasks")
    assert s.name == "mediapipe-tasks" and s.settings["task_file"] == str(task)
    assert s.settings["model_sha256"] == hashlib.sha256(task.read_bytes()).hexdigest()
    # the earlier name of the Tasks estimator still works
    assert spec_for(estimator="mediapipe-pose-landmarker").name == "mediapipe-tasks"
    # a given .task file: the same estimator; the digest follows the model's content, not its place
    other = tmp_path / "elsewhere.task"
    other.write_bytes(task.read_bytes())
    given = spec_for(task_file=other)
    assert given.name == "mediapipe-tasks" and given.settings["model_source"] == "task file"
    assert given.digest() == s.digest()
    other.write_bytes(_bundle_bytes(b"v2"))
    assert spec_for(task_file=other).digest() != s.digest()


@pytest.mark.parametrize("kw, words", [
    ({"estimator": "openpose"}, "choose one of mediapipe-pose, mediapipe-tasks, mediapipe-holistic"),
    ({"whole_body": True, "estimator": "mediapipe-tasks"}, "cannot be combined with estimator=mediapipe-tasks"),
    ({"whole_body": True, "estimator": "mediapipe-pose"}, "whole_body is estimator=mediapipe-holistic"),
    ({"task_file": "x.task", "estimator": "mediapipe-pose"}, "task_file is a model for estimator=mediapipe-tasks"),
    ({"task_file": "x.task", "estimator": "mediapipe-holistic"}, "cannot be combined"),
])
def test_conflicting_estimator_options_fail_in_one_line(kw, words):
    with pytest.raises(InputError) as err:
        spec_for(**kw)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_cli_spells_the_conflicts_as_flags(tmp_path):
    ran = invoke("ingest", SAMPLE, "--whole-body", "--estimator", "mediapipe-tasks", library=tmp_path / "lib")
    assert_one_line_error(ran, "--whole-body is --estimator mediapipe-holistic; it cannot be combined with "
                               "--estimator mediapipe-tasks")
    ran = invoke("ingest", SAMPLE, "--estimator", "posenet", library=tmp_path / "lib")
    assert_one_line_error(ran, "--estimator 'posenet': choose one of")


def test_without_the_legacy_solutions_the_default_is_tasks_and_a_missing_model_names_the_fetch(
        tmp_path, cache, monkeypatch):
    """What Python 3.13+ sees (mediapipe >= 0.10.30 has no solutions), simulated here."""
    monkeypatch.setattr(mpe, "legacy_available", lambda: False)
    assert default_estimator() == "mediapipe-tasks"
    with pytest.raises(EstimatorError) as err:
        spec_for()
    msg = str(err.value)
    assert "fetch it once with `motionlib models fetch pose`" in msg and str(cache) in msg and "\n" not in msg
    with pytest.raises(EstimatorError, match="legacy solutions.*estimator=mediapipe-tasks"):
        spec_for(estimator="mediapipe-pose")
    with pytest.raises(EstimatorError, match="no whole-body estimator"):
        spec_for(whole_body=True)
    _cached_model(cache)
    assert spec_for().name == "mediapipe-tasks"
    # the command line says the same in one line, before any work
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "empty"))
    ran = invoke("ingest", SAMPLE, library=tmp_path / "lib")
    assert_one_line_error(ran, "motionlib models fetch pose")
    assert "--task-file" in ran.stderr


def test_a_damaged_cached_model_is_refused_with_the_fetch_command(server, cache):
    found = models.fetch(url=_serve_once(_bundle_bytes()))  # records the digest
    assert found.present and found.verified == "digest recorded at first fetch"
    found.path.write_bytes(_bundle_bytes(b"tampered"))
    with pytest.raises(EstimatorError, match="damaged or replaced.*motionlib models fetch pose"):
        spec_for(estimator="mediapipe-tasks")


# --- fetching the model (a local HTTP server plays the publisher) -------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802
        body, mode = self.routes.get(self.path, (None, None))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "cut":  # announces everything, sends half, hangs up
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode != "no-length":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


_SERVED = {}


@pytest.fixture(scope="module")
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    _SERVED["base"] = f"http://127.0.0.1:{srv.server_address[1]}"
    yield _SERVED["base"]
    srv.shutdown()
    srv.server_close()


def _serve_once(body: bytes, mode: str | None = None) -> str:
    """Put ``body`` on the test server (the ``server`` fixture); its address."""
    path = f"/{hashlib.sha256(body).hexdigest()[:12]}-{mode or 'ok'}.task"
    _Handler.routes[path] = (body, mode)
    return _SERVED["base"] + path


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "models").glob("*")) if (cache / "models").exists() else []


def test_fetch_records_the_digest_at_first_fetch_and_keeps_a_good_copy(server, cache):
    body = _bundle_bytes()
    url = _serve_once(body)
    found = models.fetch(url=url)
    assert found.present and found.path.read_bytes() == body
    assert found.sha256 == hashlib.sha256(body).hexdigest()
    record = json.loads((found.path.parent / (found.path.name + ".sha256")).read_text())
    assert record["sha256"] == found.sha256 and record["url"] == url
    assert record["checked_against"] == "first fetch (recorded now)"
    assert _leftovers(cache) == [models.POSE.file, models.POSE.file + ".sha256"]
    mtime = found.path.stat().st_mtime_ns
    assert models.fetch(url=url).path.stat().st_mtime_ns == mtime  # there already: nothing fetched
    # found offline afterwards: no address is needed any more
    assert models.locate().present and spec_for(estimator="mediapipe-tasks").settings["model_sha256"] == found.sha256


def test_fetch_refuses_a_wrong_digest_and_keeps_nothing(server, cache):
    body = _bundle_bytes()
    with pytest.raises(FetchFailed, match="not the expected 0000"):
        models.fetch(url=_serve_once(body), digest="0" * 64)
    assert _leftovers(cache) == []
    good = models.fetch(url=_serve_once(body), digest=hashlib.sha256(body).hexdigest())
    assert good.present
    # once recorded, a different file under --force is refused and the good copy stays
    with pytest.raises(FetchFailed, match="refused, nothing was kept"):
        models.fetch(url=_serve_once(_bundle_bytes(b"other")), force=True)
    assert models.locate().sha256 == good.sha256
    assert _leftovers(cache) == [models.POSE.file, models.POSE.file + ".sha256"]
    # the record outlives the file: a deleted model comes back only as what was fetched first
    good.path.unlink()
    with pytest.raises(FetchFailed, match=r"recorded at the first fetch; if the file has really changed, pass its new SHA-256 as digest\)"):
        models.fetch(url=_serve_once(_bundle_bytes(b"other")))
    assert models.fetch(url=_serve_once(body)).sha256 == good.sha256
    with pytest.raises(InputError, match="not a SHA-256"):
        models.fetch(url=_serve_once(body), digest="abc")


def test_an_interrupted_download_leaves_no_file(server, cache):
    with pytest.raises(FetchFailed, match="nothing was kept"):
        models.fetch(url=_serve_once(_bundle_bytes(b"x" * 100_000), mode="cut"))
    assert _leftovers(cache) == []
    assert not models.locate().present


def test_fetch_refuses_too_big_not_a_bundle_and_unreachable(server, cache):
    small = dataclasses.replace(models.POSE, max_bytes=1000)
    big = _bundle_bytes(b"y" * 5000)
    with pytest.raises(FetchFailed, match="more than the 1,000"):
        models.fetch(small, url=_serve_once(big))
    with pytest.raises(FetchFailed, match="sent more than 1,000 bytes"):  # no Content-Length: counted
        models.fetch(small, url=_serve_once(big, mode="no-length"))
    with pytest.raises(FetchFailed, match="not a MediaPipe .task bundle"):
        models.fetch(url=_serve_once(b"<html>quota exceeded</html>"))
    lacking = io.BytesIO()
    with zipfile.ZipFile(lacking, "w") as z:
        z.writestr("hand_detector.tflite", b"x")
    with pytest.raises(FetchFailed, match="lacks pose_detector.tflite"):
        models.fetch(url=_serve_once(lacking.getvalue()))
    with pytest.raises(FetchFailed, match="HTTP 404"):
        models.fetch(url=server + "/nothing-here.task")
    with pytest.raises(FetchFailed, match="could not download"):
        models.fetch(url="http://127.0.0.1:9/pose.task", timeout=5)
    assert _leftovers(cache) == []


def test_models_command_lists_and_fetches_the_pose_model(server, cache, tmp_path):
    lib = tmp_path / "lib"
    ran = invoke("models", "pose", "--json", library=lib)
    (row,) = json.loads(ran.stdout)["estimator_models"]
    assert not row["present"] and row["fetch"] == "`motionlib models fetch pose`"
    assert row["id"].startswith("https://storage.googleapis.com/mediapipe-models/pose_landmarker/")
    text = invoke("models", "pose", library=lib)
    assert text.returncode == 0 and "missing" in text.stdout and "motionlib models fetch pose" in text.stdout
    body = _bundle_bytes()
    ran = invoke("models", "fetch", "pose", "--url", _serve_once(body), library=lib)
    assert ran.returncode == 0, ran.stderr
    assert hashlib.sha256(body).hexdigest() in ran.stdout and "recorded now" in ran.stdout
    (row,) = json.loads(invoke("models", "pose", "--json", library=lib).stdout)["estimator_models"]
    assert row["present"] and row["verified"] == "digest recorded at first fetch"
    ran = invoke("models", "fetch", "pose", "--url", _serve_once(body), library=lib)
    assert "there already" in ran.stdout
    assert_one_line_error(invoke("models", "fetch", "pose", "--url", _serve_once(body, mode="cut"), "--force",
                                 library=lib), "nothing was kept")
    assert_one_line_error(invoke("models", "fetch", "hands", library=lib), "not a model motionlib fetches")
    assert_one_line_error(invoke("models", "fetch", "pose", "--sha256", "abc", library=lib), "--sha256 'abc' is not a SHA-256")
    (cache / "models" / models.POSE.file).unlink()
    assert_one_line_error(invoke("models", "fetch", "pose", "--url", _serve_once(_bundle_bytes(b"new")), library=lib),
                          "pass its new SHA-256 as --sha256")
    assert_one_line_error(invoke("models", "fetch", "pose", "--url", "ftp://x/y", library=lib), "--url 'ftp://x/y'")
    assert_one_line_error(invoke("models", "nope", library=lib), "is not a diffusion backend")
    assert invoke("models", "fetch", "--help", library=lib).returncode == 0


# --- the Tasks path against the legacy path, with a bundle made from the legacy wheel --------------


def _bench():
    spec = importlib.util.spec_from_file_location("bench_estimators", ROOT / "scripts" / "bench_estimators.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def legacy_bundle(tmp_path_factory):
    bench = _bench()
    try:
        return bench, bench.assemble_bundle(tmp_path_factory.mktemp("bundle") / "legacy_pose_landmarker.task")
    except bench.NoBundle as err:
        pytest.skip(f"no Tasks bundle can be assembled here: {err}")


@pytest.mark.slow
def test_tasks_path_follows_the_legacy_path_on_the_sample_clip(legacy_bundle):
    """The same BlazePose weights through the Tasks graph and through the legacy one: the same
    motion within noise (scripts/bench_estimators.py measures all the sample clips)."""
    bench, bundle = legacy_bundle
    with zipfile.ZipFile(bundle) as z:
        assert set(z.namelist()) == {"pose_detector.tflite", "pose_landmarks_detector.tflite"}
    r, _ = bench.compare(SAMPLE, bundle, end=3.0)
    raw = r["raw"]
    assert raw["both"] >= 0.95 * raw["frames"] and raw["far_frames"] <= 1
    assert raw["px"]["median"] < 5 and raw["torso"]["median"] < 0.05, raw  # 1768x994: 2.4 px measured
    assert raw["torso"]["p90"] < 0.3, raw  # 0.15 measured
    assert r["cleaned"]["torso"]["median"] < 0.05


@pytest.mark.slow
def test_manifest_records_estimator_mediapipe_version_and_model_hash(legacy_bundle, tmp_path):
    from motionlib.ingest.pipeline import IngestOptions
    from motionlib.library import Library

    _, bundle = legacy_bundle
    lib = Library.open(tmp_path / "lib")
    tasks = lib.ingest(SAMPLE, name="t", options=IngestOptions(end=1.0, workers=1, task_file=bundle)).record
    est = lib.manifest(tasks)["estimator"]
    assert est["name"] == "mediapipe-tasks" and est["mediapipe_version"] == mpe.mediapipe_version()
    assert est["model"]["sha256"] == hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert est["model"]["source"] == "task file" and est["model"]["file"] == bundle.name
    legacy = lib.ingest(SAMPLE, name="l", options=IngestOptions(end=1.0, workers=1)).record
    est = lib.manifest(legacy)["estimator"]
    assert est["name"] == "mediapipe-pose" and est["model"]["source"] == f"bundled with mediapipe {mpe.mediapipe_version()}"
    assert set(est["model"]["files"]) == {"pose_detection.tflite", "pose_landmark_full.tflite"}
    assert all(len(v) == 64 for v in est["model"]["files"].values())
    from conftest import schema_validator

    for rec in (tasks, legacy):
        schema_validator("motion-manifest.schema.json").validate(lib.manifest(rec))
    lib.close()


@pytest.mark.slow
def test_identity_pose_through_the_tasks_path(legacy_bundle, cache):
    """What `identity add` does on Python 3.13+, here with the bundle in the cache."""
    import numpy as np
    from PIL import Image

    from motionlib.ingest.image import detect_pose

    _, bundle = legacy_bundle
    _cached_model(cache, bundle.read_bytes())
    a = np.asarray(Image.open(ROOT / "assets" / "samples" / "astronaut.png").convert("RGB"))
    legacy_pose = detect_pose(a, "astronaut.png", estimator="mediapipe-pose")
    tasks_pose = detect_pose(a, "astronaut.png", estimator="mediapipe-tasks")
    assert tasks_pose.estimator == "mediapipe-tasks (static image)" and tasks_pose.faces is None
    assert legacy_pose.faces == 1 and tasks_pose.body == legacy_pose.body
    assert np.median(np.linalg.norm(legacy_pose.keypoints - tasks_pose.keypoints, axis=1)) < 2  # px of 512
    with pytest.raises(InputError, match="shows 2 people"):
        detect_pose(np.concatenate([a, a], axis=1), "two.png", estimator="mediapipe-tasks")
