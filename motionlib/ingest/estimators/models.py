"""The model file the Tasks estimator needs, kept in the user cache and fetched once.

mediapipe's legacy ``solutions`` (mediapipe <= 0.10.21, Python <= 3.12) carry their models in the
wheel. mediapipe >= 0.10.30, the only one for Python 3.13 and 3.14, has the Tasks API alone and
ships no model: ``motionlib models fetch pose`` downloads the publisher's pose landmarker bundle
into ``<cache>/models/`` (``$MOTIONLIB_CACHE_DIR``, else the per-user cache directory), and ingest
finds it there afterwards, offline. Nothing is downloaded at ingest time.

The download is bounded (``max_bytes``), written to a ``.part`` file beside the target and moved
into place only when complete, checked (a zip holding the bundle's two models) and its SHA-256
matched: against the publisher's digest where one is pinned here, else against the digest
recorded at the first fetch (``<file>.sha256`` beside it: trust on first use, said so in
``motionlib models``). A later use re-checks the file against that digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from motionlib.core.errors import FetchFailed, InputError
from motionlib.core.weights import CACHE_ENV, cache_dir, file_sha256  # noqa: F401  (used by name here)
CHUNK = 1 << 16


@dataclass(frozen=True)
class TaskModel:
    name: str  # what `motionlib models fetch NAME` calls it
    file: str
    url: str  # the publisher's address
    sha256: str | None  # the publisher's digest, when one is published; else recorded at first fetch
    max_bytes: int  # a download larger than this is refused
    members: tuple[str, ...]  # what the .task bundle (a zip) must hold
    description: str

    @property
    def fetch_command(self) -> str:
        return f"motionlib models fetch {self.name}"


# Google's model card (ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker) links the
# ``float16/latest/`` address; ``float16/1/`` is the same release under a name that cannot move,
# so a recorded digest stays right. No SHA-256 for it is published next to the file, so none is
# pinned: the first fetch records one.
POSE = TaskModel(
    name="pose",
    file="pose_landmarker_full.task",
    url="https://storage.googleapis.com/mediapipe-models/pose_landmarker/pose_landmarker_full/float16/1/"
        "pose_landmarker_full.task",
    sha256=None,
    max_bytes=64 << 20,  # the file is about 9 MB
    members=("pose_detector.tflite", "pose_landmarks_detector.tflite"),
    description="MediaPipe Pose Landmarker, full, float16, version 1 (the Tasks estimator's model)",
)
MODELS: dict[str, TaskModel] = {POSE.name: POSE}


def model_path(model: TaskModel = POSE) -> Path:
    return cache_dir() / "models" / model.file


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")




@dataclass
class Found:
    model: TaskModel
    path: Path
    sha256: str | None = None  # of the file there
    expected: str | None = None  # pinned, or recorded at the first fetch
    problem: str | None = None  # why it is not usable (missing, damaged)

    @property
    def present(self) -> bool:
        return self.problem is None

    @property
    def verified(self) -> str:
        """How the file's digest is vouched for."""
        if self.model.sha256:
            return "publisher's digest"
        return "digest recorded at first fetch" if self.expected else "no recorded digest"

    def to_json(self) -> dict:
        return {"backend": "ingest", "role": self.model.name, "id": self.model.url, "weight_name": self.model.file,
                "present": self.present, "path": str(self.path), "sha256": self.sha256,
                "weight_bytes": self.path.stat().st_size if self.present else 0, "problem": self.problem,
                "verified": self.verified if self.present else None, "fetch": f"`{self.model.fetch_command}`"}


def recorded_digest(path: Path) -> str | None:
    try:
        return json.loads(_record_path(path).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def locate(model: TaskModel = POSE) -> Found:
    """The model in the cache, checked against its pinned or recorded digest; never the network."""
    path = model_path(model)
    if not path.is_file():
        return Found(model, path, problem=f"{path} is missing")
    expected = model.sha256 or recorded_digest(path)
    try:
        sha = file_sha256(path)
    except OSError as err:
        return Found(model, path, problem=f"{path} is unreadable ({err.strerror or err})")
    if expected and sha != expected:
        return Found(model, path, sha, expected,
                     f"{path} has SHA-256 {sha[:12]}..., not the {expected[:12]}... it was fetched with "
                     "(damaged or replaced)")
    return Found(model, path, sha, expected)


def missing_message(found: Found) -> str:
    return (f"the Tasks estimator needs the {found.model.name} model, which is not usable here: {found.problem}; "
            f"fetch it once with `{found.model.fetch_command}` (or give a .task file with {{task_file}})")


def _check_digest(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip().lower()
    if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise InputError(f"{{digest}} {value!r} is not a SHA-256 (64 hex digits)", params=["digest"])
    return v


def fetch(model: TaskModel = POSE, *, url: str | None = None, digest: str | None = None, force: bool = False,
          timeout: float = 60.0, progress: Callable[[int, int | None], None] | None = None) -> Found:
    """Download ``model`` into the cache (from ``url``, default the publisher's) unless a good copy
    is there (``force``: again). The SHA-256 must be ``digest`` when given, else the pinned one,
    else the one recorded at an earlier fetch; the first fetch of an unpinned model records it.
    ``progress(done_bytes, total_or_None)``. Leaves no file behind when anything fails."""
    import urllib.error
    import urllib.request

    want = _check_digest(digest)
    src = url or model.url
    if not src.startswith(("https://", "http://", "file:")):
        raise InputError(f"{{url}} {src!r}: give an http(s):// or file: address", params=["url"])
    here = locate(model)
    if here.present and not force and (want is None or here.sha256 == want):
        return here
    expected = want or model.sha256 or recorded_digest(here.path)
    dest = here.path
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FetchFailed(f"cannot create {dest.parent}: {err.strerror or err}") from None
    part = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    done = 0
    try:
        try:
            request = urllib.request.Request(src, headers={"User-Agent": "motionlib"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = getattr(response, "status", None)
                if status is not None and status != 200 and not src.startswith("file:"):
                    raise FetchFailed(f"{src} answered HTTP {status}; nothing was kept")
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > model.max_bytes:
                    raise FetchFailed(f"{src} is {total:,} bytes, more than the {model.max_bytes:,} a "
                                      f"{model.name} model may be; nothing was kept")
                with open(part, "wb") as out:
                    while True:
                        block = response.read(CHUNK)
                        if not block:
                            break
                        done += len(block)
                        if done > model.max_bytes:
                            raise FetchFailed(f"{src} sent more than {model.max_bytes:,} bytes, more than a "
                                              f"{model.name} model may be; nothing was kept")
                        h.update(block)
                        out.write(block)
                        if progress is not None:
                            progress(done, total)
                    out.flush()
                    os.fsync(out.fileno())
                if total is not None and done != total:
                    raise FetchFailed(f"the download of {src} stopped after {done:,} of {total:,} bytes; "
                                      "nothing was kept (run the command again)")
        except urllib.error.HTTPError as err:
            raise FetchFailed(f"{src} answered HTTP {err.code} ({err.reason}); nothing was kept") from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", None) or getattr(err, "strerror", None) or err
            raise FetchFailed(f"could not download {src} ({reason}); nothing was kept. Without network "
                              "access here, fetch the file elsewhere and give its path as {url=file:PATH} "
                              "(or to ingest as {task_file})", params=["url", "task_file"]) from None
        except Exception as err:  # http.client.IncompleteRead and the like: the connection broke
            if isinstance(err, FetchFailed):
                raise
            raise FetchFailed(f"the download of {src} broke off after {done:,} bytes ({type(err).__name__}); "
                              "nothing was kept (run the command again)") from None
        got = h.hexdigest()
        if expected and got != expected:
            how = "" if want or model.sha256 else (
                " (the digest recorded at the first fetch; if the file has really changed, pass its new "
                "SHA-256 as {digest})")
            raise FetchFailed(f"{src} has SHA-256 {got}, not the expected {expected}{how}; refused, nothing "
                              "was kept", params=["digest"])
        _check_bundle(part, model, src)
        os.replace(part, dest)
        _record_path(dest).write_text(json.dumps({
            "sha256": got, "url": src, "bytes": done,
            "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "checked_against": "given" if want else ("publisher" if model.sha256 else
                                                     ("recorded" if expected else "first fetch (recorded now)")),
        }, indent=1) + "\n")
    finally:
        try:
            part.unlink()
        except FileNotFoundError:
            pass
    return locate(model)


def _check_bundle(path: Path, model: TaskModel, src: str) -> None:
    """A .task file is a zip of TFLite models: an HTML error page or a truncated file is refused."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError):
        raise FetchFailed(f"{src} is not a MediaPipe .task bundle (not a zip file); nothing was kept") from None
    lacking = [m for m in model.members if m not in names]
    if lacking:
        raise FetchFailed(f"{src} is not a {model.name} landmarker bundle (it lacks {', '.join(lacking)}); "
                          "nothing was kept")
