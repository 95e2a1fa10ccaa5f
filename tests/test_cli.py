"""Every command once, succeeding, through the command's entry point (in this process): the
options reach the library and the state it leaves is what they asked for. What each command does
in depth is tested through the library (test_ingest, test_edits, test_render ...); the errors a
user meets, in the *_cli test files."""

from __future__ import annotations

from pathlib import Path

import pytest

from motionlib.index.query import Query
from motionlib.ingest.estimators.mediapipe import legacy_available
from motionlib.library import Library
from tests.conftest import ROOT, assert_one_line_error, copy_library, invoke, invoke_json, write_clip

ASTRONAUT = ROOT / "assets" / "samples" / "astronaut.png"


@pytest.fixture
def lib(demo_library, tmp_path) -> Path:
    return copy_library(demo_library[0], tmp_path / "lib")


def ok(*args, **kw):
    ran = invoke(*args, **kw)
    assert ran.returncode == 0, (args, ran.stderr)
    return ran


def test_ingest_options_reach_the_library(tmp_path, demo_frames):
    clip = write_clip(tmp_path / "twenty.mp4", demo_frames[60:80])
    root = tmp_path / "lib"
    ok("ingest", clip, "--no-keep-source", "--name", "plain", "--tag", "a", "--max-size", "320", library=root)
    if legacy_available():
        ok("ingest", clip, "--whole-body", "--name", "whole", "--start", "0.1", library=root)
    else:  # Python 3.13+: Holistic is a legacy solution; --whole-body is refused in one line
        assert_one_line_error(invoke("ingest", clip, "--whole-body", "--name", "whole", library=root),
                              "no whole-body estimator for this Python")
        ok("ingest", clip, "--name", "whole", "--start", "0.1", library=root)
    with Library(root) as library:
        plain, whole = library.get("plain"), library.get("whole")
        assert plain.source_path is None and plain.tags == ["a"]
        assert library.manifest(plain)["estimator"]["inference_size"][0] == 320
        skeleton = "mediapipe_holistic_543" if legacy_available() else "mediapipe_pose_33"
        assert whole.skeleton == skeleton and whole.source_path is not None
        assert library.manifest(whole)["source"]["start"] == pytest.approx(0.1)


def test_list_filters_and_the_version_commands(lib):
    assert [r["ref"] for r in invoke_json("list", "--tag", "sample", "--min-score", "0", library=lib)] == ["demo@1"]
    assert invoke_json("list", "--tag", "sample", "--min-score", "1.01", library=lib) == []
    ok("smooth", "demo", library=lib)
    ok("tag", "demo@2", "dance", "loop", library=lib)
    ok("untag", "demo@2", "loop", library=lib)
    assert [r["ref"] for r in invoke_json("rename", "demo", "wave", library=lib)] == ["wave@1", "wave@2"]
    refused = invoke("rm", "wave@1", library=lib)  # wave@2 was made from it
    assert refused.returncode == 2 and "wave@2" in refused.stderr and "--force" in refused.stderr
    ok("rm", "wave@1", "--force", library=lib)
    assert invoke_json("reindex", library=lib)["versions"] == 1
    with Library(lib) as library:
        # the smoothed version carried its parent's tag; tags and bare words find it
        assert [(r.ref, r.tags) for r in library.list()] == [("wave@2", ["dance", "sample"])]
        assert [r.ref for r in library.list(query=Query.parse(["tag:SAMPLE", "is:latest"]))] == ["wave@2"]
        assert [r.ref for r in library.list(query=Query.parse(["danc"]))] == ["wave@2"]


def test_preview_and_export_write_their_files(lib, tmp_path):
    info = invoke_json("preview", "demo", "-o", tmp_path / "p.mp4", "--size", "128", "--threshold", "0.5", library=lib)
    assert (tmp_path / "p.mp4").stat().st_size > 0 and info["width"] == 128
    over = invoke_json("preview", "demo", "--over-source", "-o", tmp_path / "o.mp4", "--size", "128", library=lib)
    assert over["over_source"] and (tmp_path / "o.mp4").exists()
    for fmt, out in (("npz", tmp_path / "d.npz"), ("csv", tmp_path / "d.csv"), ("openpose-json", tmp_path / "op")):
        assert invoke_json("export", "demo", "--format", fmt, "-o", out, library=lib)["format"] == fmt
        assert out.exists()
    ok("export", "demo", "-f", "csv", "-o", tmp_path / "d.csv", "--force", library=lib)
    back = invoke_json("import", tmp_path / "op", "--format", "openpose-json", "--name", "back", "--tag", "x",
                       library=lib)
    assert back["status"] == "created" and back["record"]["tags"] == ["x"]


def test_identities_renders_again_and_history(lib, tmp_path):
    added = invoke_json("identity", "add", ASTRONAUT, "--name", "astronaut", library=lib)
    assert [i["name"] for i in invoke_json("identity", "list", library=lib)] == ["astronaut"]
    assert invoke_json("identity", "show", "astronaut", library=lib)["sha256"] == added["sha256"]
    first = invoke_json("render", "-m", "demo", "-i", "astronaut", "--size", "64", "--seed", "3", "--retarget",
                        "global", "--threshold", "0.4", "-p", "layout=overlay", "-o", tmp_path / "a.mp4",
                        library=lib)[0]
    assert first["status"] == "done" and (tmp_path / "a.mp4").exists()
    assert first["params"]["retarget"] == "global" and first["params"]["threshold"] == 0.4
    assert first["params"]["params"]["layout"] == "overlay"
    again = invoke_json("render", "--again", first["id"], "-o", tmp_path / "b.mp4", library=lib)[0]
    assert again["seed"] == 3 and again["params"]["retarget"] == "global" and (tmp_path / "b.mp4").exists()
    assert [r["id"] for r in invoke_json("renders", "--limit", "1", library=lib)] == [again["id"]]
    # without -o, --again writes to the first render's own path: refused while it exists, unless --force
    refused = invoke("render", "--again", first["id"], library=lib)
    assert refused.returncode == 2 and "--force" in refused.stderr
    same = invoke_json("render", "--again", first["id"], "--force", library=lib)[0]
    assert same["output"] == first["output"] and not list(tmp_path.glob("a-*.mp4"))
    ok("identity", "rm", "astronaut", library=lib)
    with Library(lib) as library:
        assert library.identities() == [] and len(library.renders()) == 3
