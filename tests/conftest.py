"""Shared fixtures. Tests use the real sample clip (scripts/fetch_samples.py) and real libraries."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

# servers the tests start themselves (docs/team.md): a throwaway PostgreSQL server for the index
# on PostgreSQL, and moto's S3 server in-process for the object store (each its own module). pytest
# puts this folder on sys.path; the benchmarks import this file as tests.conftest, which it does not
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
from pgserver import index_target, pg_server, pg_url  # noqa: E402,F401
from s3server import s3_server, s3_store  # noqa: E402,F401

# Several pytest-xdist workers share the cores: one OpenMP thread each (torch), rather than every
# worker's threads spinning against the others' (measured here: 88 s for the suite instead of 106)
if os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") != "1":
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "demo.mp4"
SCHEMAS = ROOT / "schemas"


def pytest_configure(config):
    # once, in the main process (pytest-xdist's workers start after it)
    if not SAMPLE.exists() and not os.environ.get("PYTEST_XDIST_WORKER"):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_samples.py")], check=True)


# fixtures that bring the real sample clip (decoded, re-encoded or ingested): tests using them,
# directly or through other fixtures, take seconds and are marked slow
REAL_MEDIA = {"sample", "demo_frames", "short_clip", "demo_library"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if REAL_MEDIA & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@contextlib.contextmanager
def _shared(tmp_path_factory, name: str):
    """A directory shared by every pytest-xdist worker of this run (this run's own one when there
    are none), held under a lock: the first worker to get there builds what it holds."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the workers' temp dirs sit side by side in one run's folder
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield base / name
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


def read_frames(path: Path, count: int | None = None, width: int = 884, start: int = 0) -> list[np.ndarray]:
    """Frames of a clip as RGB arrays, scaled to ``width`` (keeps aspect, even sizes)."""
    import av

    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        h = int(round(s.codec_context.height * width / s.codec_context.width / 2)) * 2
        for i, f in enumerate(c.decode(s)):
            if i < start:
                continue
            out.append(f.to_ndarray(width=width, height=h, format="rgb24"))
            if count is not None and len(out) >= count:
                break
    return out


def write_clip(path: Path, frames, *, fps: int = 30, times=None, rotation: int = 0, audio: bool = False) -> Path:
    """Encode frames as H.264 MP4. ``times`` (seconds) gives each frame's timestamp (VFR);
    ``rotation`` stores a display matrix (degrees counter-clockwise) like phones do."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "18"}
        if times is not None:
            s.time_base = Fraction(1, 90000)
            s.codec_context.time_base = Fraction(1, 90000)
        if rotation:
            s.set_display_rotation(rotation)
        a = None
        if audio:
            a = out.add_stream("aac", rate=48000)
        for i, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if times is not None:
                vf.pts = int(round(times[i] * 90000))
                vf.time_base = Fraction(1, 90000)
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
        if a is not None:
            _write_tone(out, a, seconds=len(frames) / fps)
    return path


def _write_tone(container, stream, seconds: float) -> None:
    import av

    n = int(48000 * seconds)
    t = np.arange(n) / 48000
    samples = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
    for i in range(0, n, 1024):
        frame = av.AudioFrame.from_ndarray(samples[:, i : i + 1024], format="fltp", layout="mono")
        frame.sample_rate = 48000
        frame.pts = i
        for p in stream.encode(frame):
            container.mux(p)
    for p in stream.encode():
        container.mux(p)


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    import av

    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=48000)
        _write_tone(out, a, seconds)
    return path


@pytest.fixture(scope="session")
def demo_frames() -> list[np.ndarray]:
    """The first 120 frames of the sample clip at 884x496 (4 s)."""
    return read_frames(SAMPLE, count=120)


def run_cli(*args, library: Path | None = None, env: dict | None = None, timeout: float = 300, **kw):
    """``motionlib ARGS`` as a new process (the end-to-end tests: exit codes, signals, what a user
    sees); most CLI tests use :func:`invoke`, the same entry point in this process."""
    cmd = [sys.executable, "-m", "motionlib"]
    if library is not None:
        cmd += ["--library", str(library)]
    cmd += [str(a) for a in args]
    full_env = dict(os.environ)
    full_env.pop("MOTIONLIB_LIBRARY", None)
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, **kw)


@dataclass
class Ran:
    """What a command did: like subprocess.CompletedProcess."""

    args: list
    returncode: int
    stdout: str
    stderr: str


def invoke(*args, library: Path | None = None, env: dict | None = None, cwd: Path | None = None) -> Ran:
    """``motionlib ARGS`` in this process, through the installed command's entry point
    (``motionlib.cli.main``): its exit code and what it printed, without starting an interpreter
    and importing mediapipe or torch again for every call."""
    from motionlib.cli import main

    argv = (["--library", str(library)] if library is not None else []) + [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.pop("MOTIONLIB_LIBRARY", None)
    os.environ.update(env or {})
    os.environ["MOTIONLIB_NO_FAST_EXIT"] = "1"  # ingest would leave with os._exit
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Ran(argv, code, out.getvalue(), err.getvalue())


def as_printed(value):
    """A result as ``--json`` prints it: its ``to_json()`` (when it has one) through JSON, so
    tuples are lists and numbers plain."""
    return json.loads(json.dumps(value.to_json() if hasattr(value, "to_json") else value))


def invoke_json(*args, library: Path, **kw):
    """``motionlib ARGS --json`` in this process; its parsed output (the command must succeed)."""
    ran = invoke(*args, "--json", library=library, **kw)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def assert_one_line_error(proc, words: str | None = None, context=None) -> None:
    """A refused command: non-zero exit, one line on stderr starting ``error: `` (naming ``words``)."""
    assert proc.returncode != 0, context if context is not None else proc.args
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    if words is not None:
        assert words in proc.stderr, (context, proc.stderr)


def spawn_cli(*args, library: Path, env: dict | None = None) -> subprocess.Popen:
    """``motionlib`` as a background process (stdout/stderr piped, text)."""
    full_env = dict(os.environ)
    full_env.pop("MOTIONLIB_LIBRARY", None)
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "motionlib", "--library", str(library), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env,
    )


def wait_for_fault(proc, point: str, timeout: float = 120) -> None:
    """Wait until a process run with MOTIONLIB_FAULT=<point> stops there (see library._fault)."""
    import time

    deadline = time.time() + timeout
    line = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        if line.startswith("FAULT") or (not line and proc.poll() is not None):
            break
    assert line.strip() == f"FAULT {point}", line


def cli_json(*args, library: Path, **kw):
    proc = run_cli(*args, "--json", library=library, **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def cli():
    return run_cli


def library_snapshot(root) -> dict:
    """Everything observable about a library: index rows and the files on disk (not tmp/). Given
    an open Library (local or shared), the same through its index and store."""
    import sqlite3

    if not isinstance(root, (str, Path)):
        lib = root
        keys = set(lib.files.version_keys())
        for top in ("motions", "sources", "identities"):
            keys |= set(lib.files.file_keys(top))
        files = set()
        for k in keys:  # a version's files, as on disk
            files |= {k} if not lib.files.has_version(k) else _version_files(lib, k)
        with lib.index.reader() as r:
            records = sorted(r.list(), key=lambda m: m.id)
        return {"files": sorted(files),
                "rows": [(m.name, m.version, m.store_path) for m in records],
                "tags": sorted((m.id, t) for m in records for t in m.tags)}

    snap = {"files": sorted(
        str(p.relative_to(root)) for p in root.rglob("*")
        if p.is_file() and "tmp" not in p.relative_to(root).parts[:1] and not p.name.startswith("index.sqlite")
    )}
    db = root / "index.sqlite"
    if db.exists():
        with sqlite3.connect(db) as conn:
            snap["rows"] = conn.execute("SELECT name, version, store_path FROM motion ORDER BY id").fetchall()
            snap["tags"] = conn.execute("SELECT motion_id, tag_id FROM motion_tag ORDER BY 1, 2").fetchall()
    return snap


def _version_files(lib, key: str) -> set[str]:
    if lib.files.shared:
        n = len(lib.files.base) + 1
        return {p[n:] for p in lib.files.fs.find(lib.files._k(key))}
    return {p.relative_to(lib.root).as_posix() for p in (lib.root / key).rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory):
    """A library holding the whole sample clip, ingested once per test run (real pipeline) and
    shared by every worker; tests that change it work on a copy (copy_library). Returns (its
    directory, the ingest's result as ``motionlib ingest --json`` prints it)."""
    from motionlib.library import Library

    with _shared(tmp_path_factory, "demo-library") as root:
        result = root.with_suffix(".json")
        if not result.exists():
            with Library(root) as lib:
                result.write_text(json.dumps(as_printed(lib.ingest(SAMPLE, name="demo", tags=["sample"]))))
        return root, json.loads(result.read_text())


def copy_library(src: Path, dest: Path) -> Path:
    """A copy of a library (a fixture's), for a test to change."""
    import shutil

    shutil.copytree(src, dest)
    return dest


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory, demo_frames) -> Path:
    """2 s of the sample clip (the performer in full view), re-encoded small: quick to ingest."""
    return write_clip(tmp_path_factory.mktemp("clips") / "short.mp4", demo_frames[:60])


def load_schema(name: str):
    return json.loads((SCHEMAS / name).read_text())


def schema_validator(name: str):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry = Registry()
    for f in SCHEMAS.glob("*.json"):
        doc = json.loads(f.read_text())
        registry = registry.with_resource(f.name, Resource.from_contents(doc))
        registry = registry.with_resource(doc["$id"], Resource.from_contents(doc))
    schema = load_schema(name)
    return Draft202012Validator(schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)


def shared_url(database: str, store: str) -> str:
    """A shared library's URL (docs/team.md) from a database URL and a store URL (its endpoint
    moved out to the library URL's own options)."""
    base, _, endpoint = store.partition("?endpoint=")
    sep = "&" if "?" in database else "?"
    return f"{database}{sep}store={base}" + (f"&endpoint={endpoint}" if endpoint else "")


def share_library(src: Path, url: str) -> str:
    """A shared library holding a copy of the local library at ``src``, made as docs/team.md tells
    a team to bring a library in: its files copied into the store, then ``reindex`` (versions and
    their tags; identities are added again, as the docs say)."""
    from motionlib.library import Library

    with Library(url) as lib:
        for top in ("motions", "sources", "identities"):
            for p in sorted((src / top).rglob("*")) if (src / top).is_dir() else ():
                if p.is_file():
                    lib.files.fs.put_file(str(p), lib.files._k(p.relative_to(src).as_posix()))
        lib.reindex()
    return url


@pytest.fixture(params=["local", pytest.param("shared", marks=pytest.mark.postgres)])
def demo_copy(request, demo_library, tmp_path):
    """A library to change holding the demo motion: a local copy of ``demo_library``, or the same
    brought into a shared library (PostgreSQL and S3, both started by the tests). Returns the
    directory or URL ``Library`` opens."""
    if request.param == "local":
        return copy_library(demo_library[0], tmp_path / "lib")
    url = shared_url(request.getfixturevalue("pg_url"), request.getfixturevalue("s3_store"))
    return share_library(demo_library[0], url)
