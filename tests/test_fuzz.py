"""Property-based tests (Hypothesis) at every door a user hands the library text or files
through: keypoint imports (npz and OpenPose JSON), the query language, names and tags, campaign
files, and the render flags a job carries. Whatever is generated, the outcome is one of two:
refused with a MotionlibError (one line on the command line) and the library unchanged, or
accepted as something that works - a version that loads and exports, a query whose SQL and Python
agree, a name that finds what it named, a campaign whose every job is checked and placed.

The examples are derandomised (the same ones every run, so CI cannot flake); the cases that once
crashed are in the regression tests of test_redteam.py and the modules of each door."""

from __future__ import annotations

import io
import json
import math
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from motionlib.core.errors import MotionlibError
from motionlib.core.skeleton import MEDIAPIPE_POSE_33
from motionlib.index.query import Query
from motionlib.library import Library
from tests.conftest import ROOT, copy_library, library_snapshot

J = MEDIAPIPE_POSE_33.num_joints
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def lib(demo_library, tmp_path_factory):
    """The demo library plus the astronaut as an identity and a derived, tagged version."""
    from motionlib.processing import ops

    root = copy_library(demo_library[0], tmp_path_factory.mktemp("fuzz") / "lib")
    library = Library(root)
    library.add_identity(ROOT / "assets" / "samples" / "astronaut.png", name="astronaut")
    library.derive("demo", ops.mirror, name="demo-flip", tags=["Flip"])
    yield library
    library.close()


def _accepted_or_unchanged(library, act, then=None):
    """Run ``act``: a MotionlibError must leave the library as it was; a result goes to ``then``."""
    before = library_snapshot(library.root)
    try:
        result = act()
    except MotionlibError as err:
        event("refused")
        assert str(err) and "\n" not in str(err), repr(err)
        assert library_snapshot(library.root) == before
        return None
    event("accepted")
    if then is not None:
        then(result)
    return result


# ---------------------------------------------------------------------- imports
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
dtypes = st.sampled_from([np.float32, np.float64, np.int8, np.int64, np.uint8, np.bool_, np.complex64])


@st.composite
def npz_files(draw) -> bytes:
    """Half the files start as a valid export and get at most one hostile change; the others are
    built from anything."""
    wild = draw(st.booleans())
    T = draw(st.integers(0 if wild else 2, 12))
    joints = draw(st.sampled_from([J, J, J, 0, 1, 18, 34])) if wild else J
    shape = draw(st.sampled_from([(T, joints, 2), (T, joints), (T, joints, 3), (T,)])) if wild else (T, J, 2)
    elements = floats if wild else st.floats(0, 480)
    values = draw(hnp.arrays(np.float64, shape, elements=elements, fill=st.floats(0, 480)))
    with np.errstate(all="ignore"):
        arrays = {"keypoints": values.astype(draw(dtypes) if wild else np.float32)}
    if not wild or draw(st.booleans()):
        arrays["confidence"] = draw(hnp.arrays(np.float32, (T, joints), elements=st.floats(0, 1, width=32),
                                               fill=st.just(np.float32(0.9))))
    if not wild or draw(st.booleans()):
        arrays["timestamps"] = np.arange(T) / 30.0
    meta = {"format": "motionlib-npz", "format_version": 1, "skeleton": "mediapipe_pose_33",
            "width": 640, "height": 480, "duration": T / 30.0}
    json_values = st.recursive(st.none() | st.booleans() | floats | st.integers() | st.text(max_size=8),
                               lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                               max_leaves=8)
    change = draw(st.sampled_from(["none", "none", "meta", "nan", "huge", "confidence", "timestamps"]))
    if wild or change == "meta":
        for key in draw(st.lists(st.sampled_from(["width", "height", "duration", "skeleton", "fps", "format_version",
                                                  "joint_names"]), min_size=0 if wild else 1, max_size=3)):
            meta[key] = draw(json_values)
    elif change != "none" and T:
        i, j = draw(st.integers(0, T - 1)), draw(st.integers(0, J - 1))
        value = draw(st.sampled_from([math.nan, math.inf, -1e38, 1e30, -5.0, 2.0, 1e-300]))
        if change in ("nan", "huge"):
            arrays["keypoints"][i, j, 0] = value
        elif change == "confidence":
            arrays["confidence"][i, j] = value
        else:
            arrays["timestamps"][i] = value
    arrays["meta"] = np.array(json.dumps(meta, allow_nan=True))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _loads_and_exports(library, tmp_path):
    def check(result):
        motion = library.load(result.record.ref)
        assert motion.frames == result.record.frames and np.isfinite(motion.timestamps).all()
        library.export(result.record.ref, "npz", tmp_path / "back.npz", overwrite=True)
        library.remove(result.record.ref, force=True)
    return check


@FUZZ
@given(data=npz_files())
def test_any_npz_is_refused_cleanly_or_stored_usable(lib, tmp_path, data):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(data)
    _accepted_or_unchanged(lib, lambda: lib.import_keypoints(path, "npz", name="fuzz"),
                           _loads_and_exports(lib, tmp_path))


json_numbers = st.one_of(st.floats(-1e3, 2e3), floats, st.integers(-2**70, 2**70), st.text(max_size=3),
                         st.none(), st.booleans())


@st.composite
def openpose_files(draw) -> str:
    """Half the files are valid OpenPose frames with at most one hostile value; the others hold
    anything where numbers should be."""
    wild = draw(st.booleans())
    frames = []
    for _ in range(draw(st.integers(0 if wild else 2, 6))):
        people = []
        for _ in range(draw(st.integers(0, 2)) if wild else 1):
            n = draw(st.sampled_from([54, 54, 75, 0, 53, 3])) if wild else 54
            if wild:
                pts = draw(st.lists(json_numbers, min_size=n, max_size=n))
            else:
                pts = [float(v) for v in np.linspace(5, 300, n)]
                pts[2::3] = [0.9] * (n // 3)
                if draw(st.booleans()):
                    pts[draw(st.integers(0, n - 1))] = draw(json_numbers)
            people.append({"pose_keypoints_2d": pts})
        frame = {"people": people}
        if wild or draw(st.booleans()):
            frame["canvas_width"] = draw(json_numbers) if wild else 640
            frame["canvas_height"] = draw(json_numbers) if wild else 480
        frames.append(frame)
    doc = frames if (not wild or draw(st.booleans())) else (frames[0] if frames else {})
    return json.dumps(doc, allow_nan=True)


@FUZZ
@given(text=openpose_files(), fps=st.one_of(st.none(), st.floats(-1, 1e6), st.sampled_from([0.0, math.nan, math.inf])))
def test_any_openpose_json_is_refused_cleanly_or_stored_usable(lib, tmp_path, text, fps):
    path = tmp_path / "fuzz.json"
    path.write_text(text)
    _accepted_or_unchanged(lib, lambda: lib.import_keypoints(path, "openpose-json", name="fuzz", fps=fps),
                           _loads_and_exports(lib, tmp_path))


# ---------------------------------------------------------------------- the query language
fields = ["name", "tag", "score", "fps", "duration", "frames", "version", "created", "op", "is", "source", "foo", ""]
ops = [":", ">", ">=", "<", "<=", "=", "!="]
values = st.one_of(st.text(max_size=12), st.sampled_from(["demo", "demo*", "flip", "FLIP", "0.5", "1e400", "nan",
                                                          "latest", "2026-11", "a,b", "mirror", "*", "?"]),
                   st.floats(allow_nan=False).map(str), st.integers(-2**80, 2**80).map(str))


@st.composite
def queries(draw) -> str:
    terms = []
    for _ in range(draw(st.integers(0, 5))):
        f, op, v = draw(st.sampled_from(fields)), draw(st.sampled_from(ops)), draw(values)
        term = (f + op + v) if f else v
        terms.append(("-" if draw(st.booleans()) else "") + term)
    if draw(st.booleans()):
        terms.append(draw(st.text(max_size=20)))
    return " ".join(terms)


@FUZZ
@given(text=queries())
def test_any_query_is_refused_cleanly_or_sql_and_python_agree(lib, text):
    try:
        q = Query.parse(text)
    except MotionlibError as err:
        event("refused")
        assert "\n" not in str(err)
        return
    event("accepted")
    everything = lib.list()
    latest = {}
    for r in everything:
        latest[r.name] = max(latest.get(r.name, 0), r.version)
    by_sql = [r.ref for r in lib.list(query=q)]
    by_python = [r.ref for r in everything if q.matches(r, lambda rec: rec.version == latest[rec.name])]
    assert by_sql == by_python, text


# ---------------------------------------------------------------------- names and tags
names = st.one_of(st.text(max_size=120), st.text(alphabet=string.printable, max_size=20),
                  st.sampled_from(["", ".", "..", "-x", "a/b", "a@1", "a\x00b", "Ünïcödé", "x" * 101, " pad "]))


@FUZZ
@given(name=names, tag=names)
def test_any_name_or_tag_is_refused_cleanly_or_finds_what_it_names(lib, name, tag):
    def renamed(records):
        assert [r.name for r in lib.list(name=name)] == [name] * len(records)
        lib.rename(name, "demo-flip")

    assume(name != "demo-flip")
    _accepted_or_unchanged(lib, lambda: lib.rename("demo-flip", name), renamed)

    def tagged(record):
        assert tag.lower() in [t.lower() for t in record.tags]
        assert "demo-flip@1" in [r.ref for r in lib.list(tags=[tag])]
        lib.untag("demo-flip@1", [tag])

    _accepted_or_unchanged(lib, lambda: lib.tag("demo-flip@1", [tag]), tagged)


# ---------------------------------------------------------------------- campaign files
toml_values = st.one_of(st.integers(-2**64, 2**64), st.floats(allow_nan=True, allow_infinity=True),
                        st.text(max_size=10), st.booleans(), st.lists(st.text(max_size=5), max_size=3),
                        st.sampled_from(["demo", "astronaut", "pose", "global", "bones", "128", "64x64",
                                         "x.mp4", "../x.mp4", "/tmp/x.mp4"]))
job_keys = ["motion", "motions", "identity", "identities", "backend", "size", "seed", "retarget", "anchor_frame",
            "threshold", "prompt", "output", "params", "colour"]


GOOD = {"size": [96, "128", "96x64"], "seed": [0, 7, 2**40], "retarget": ["bones", "global"],
        "threshold": [0.0, 0.3, 1.0], "backend": ["pose"], "anchor_frame": [0, 10], "prompt": ["", "a dancer"],
        "output": ["one.mp4"]}


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else "-inf" if value == -math.inf
                                                else repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # a TOML basic string is a JSON string


@st.composite
def campaigns(draw) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(f"name = {_toml(draw(st.one_of(st.text(max_size=12), st.just('spring'))))}")
    lines.append('output_dir = "out"')
    for _ in range(draw(st.integers(0, 3))):
        lines.append("[[jobs]]")
        valid = draw(st.booleans())
        job = {"motion": "demo", "identity": "astronaut"} if valid or draw(st.booleans()) else {}
        for key in draw(st.lists(st.sampled_from(list(GOOD) if valid else job_keys), max_size=4, unique=True)):
            job[key] = draw(st.sampled_from(GOOD[key]) if valid else toml_values)
        if draw(st.booleans()):
            job["params"] = {"layout": draw(st.sampled_from(["overlay", "posemap", "cubist", 5]))}
        for key, value in job.items():
            if key != "params":
                lines.append(f"{key} = {_toml(value)}")
        if isinstance(job.get("params"), dict):
            lines.append("[jobs.params]")
            lines += [f"{k} = {_toml(v)}" for k, v in job["params"].items()]
    return "\n".join(lines) + "\n"


@FUZZ
@given(text=campaigns())
def test_any_campaign_file_is_refused_cleanly_or_every_job_is_checked(lib, tmp_path, text):
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8")

    def planned(prepared):
        assert prepared, "a campaign with no jobs is refused"
        for p in prepared:
            assert p.output.suffix == ".mp4" and p.settings.width >= 16
            assert p.output.resolve().is_relative_to((tmp_path / "out").resolve()), p.output

    _accepted_or_unchanged(lib, lambda: lib.plan_campaign(path), planned)
