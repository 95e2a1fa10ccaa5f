"""The ingest command and its neighbours as a user meets them: one-line errors and exit codes,
``--json`` output against the schemas, what is printed, and where the library is. What ingest
stores (records, versions, tags, real clips) is tested through the library in test_ingest.py.
Most tests run the real entry point in this process (invoke); the few that need a real process
say why."""

import json
import re

import numpy as np
import pytest

from conftest import (assert_one_line_error, copy_library, invoke, invoke_json, library_snapshot, run_cli,
                      schema_validator, write_audio_only, write_clip)
from motionlib.library import Library


@pytest.fixture(scope="module")
def short_library(tmp_path_factory, short_clip):
    """A library holding the short clip as short@1, tagged ``keep`` (ingested once, through the
    library); tests change copies of it."""
    root = tmp_path_factory.mktemp("short-library") / "lib"
    with Library(root) as library:
        library.ingest(short_clip, tags=["keep"])
    return root


def _names(root) -> list[str]:
    with Library(root) as library:
        return sorted(r.name for r in library.list())


def test_json_of_ingest_list_and_show_follows_the_record_schema(demo_library, sample):
    lib, _ = demo_library
    rec_validator = schema_validator("motion-record.schema.json")
    listed = invoke_json("list", library=lib)
    assert [r["ref"] for r in listed] == ["demo@1"]
    rec_validator.validate(listed[0])
    shown = invoke_json("show", "demo", library=lib)
    rec_validator.validate(shown)
    assert shown["quality"]["scores"]["occlusion"] == listed[0]["scores"]["occlusion"]
    # what cleaning did, with times (docs/fidelity.md), and in the lineage
    assert {r["reason"] for r in shown["track"]["rejected"]} >= {"other person"}
    assert shown["lineage"]["result"]["cleaning"]["rejected_frames"] == shown["track"]["rejected_frames"]

    # the same file with the same settings again: nothing changes, and the command says so
    before = library_snapshot(lib)
    proc = invoke("ingest", sample, "--name", "demo", library=lib)
    assert proc.returncode == 0
    assert "unchanged" in proc.stdout
    assert library_snapshot(lib) == before
    data = invoke_json("ingest", sample, "--name", "demo", library=lib)
    assert data[0]["status"] == "unchanged" and data[0]["ref"] == "demo@1"
    rec_validator.validate(data[0]["record"])


def _bad_inputs(tmp_path, sample):
    text = tmp_path / "readme.mp4"
    text.write_text("not a video at all\n" * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    trunc = tmp_path / "truncated.mp4"
    trunc.write_bytes(sample.read_bytes()[:1_500_000])
    black = write_clip(tmp_path / "nobody.mp4", [np.zeros((240, 320, 3), np.uint8)] * 20)
    return {
        "not a video": ([text], "not a readable video"),
        "empty": ([empty], "is empty"),
        "truncated": ([trunc], "truncated|damaged|not a readable video"),
        "audio only": ([write_audio_only(tmp_path / "voice.m4a")], "only audio"),
        "missing": ([tmp_path / "nope.mp4"], "no such file"),
        "no person": ([black], "no person found"),
        "slash name": ([black, "--name", "a/b"], "path separator"),
        "control name": ([black, "--name", "bad\x1bname"], "control"),
        "at in name": ([black, "--name", "x@1"], "'@'"),
        "bad task file": ([black, "--task-file", tmp_path / "none.task"], "no such file"),
        "start after end": ([black, "--start", "2", "--end", "1"], "--end must be after --start"),
        "max size": ([black, "--max-size", "10"], "--max-size"),  # the library says max_size (test_estimators)
    }


# These fail inside FFmpeg or after pose estimation, and then leave through ingest's os._exit: only
# a real process shows that nothing native (FFmpeg, MediaPipe, TFLite) writes to stderr and that no
# traceback appears at teardown. The others fail in Python before any of that, in this process.
IN_A_REAL_PROCESS = {"not a video", "truncated", "no person"}


def test_bad_input_gives_one_line_and_leaves_the_library_alone(tmp_path, sample, short_library):
    lib = copy_library(short_library, tmp_path / "lib")
    before = library_snapshot(lib)
    for label, (args, words) in _bad_inputs(tmp_path, sample).items():
        proc = (run_cli if label in IN_A_REAL_PROCESS else invoke)("ingest", *args, library=lib)
        assert proc.returncode != 0, label
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, (label, proc.stderr)
        assert lines[0].startswith("error: "), (label, lines)
        assert re.search(words, lines[0]), (label, lines[0])
        assert "Traceback" not in proc.stderr
        assert library_snapshot(lib) == before, label
        assert list((lib / "tmp").iterdir()) == [], label


def test_other_commands_reject_unknown_things(tmp_path, short_library):
    lib = copy_library(short_library, tmp_path / "lib")
    before = library_snapshot(lib)
    # exit 2: bad input (as for a bad option); 1: a thing that does not exist
    for args, words, code in (
        (["show", "nothing"], "no motion named", 1),
        (["show", "short@7"], "short@7 does not exist", 1),
        (["show", "short@0"], "positive integer", 2),
        (["tag", "nothing", "x"], "no motion named", 1),
        (["tag", "short", "two words"], "whitespace", 2),
        (["untag", "short", "never-there"], "not tagged", 1),
        (["rm", "short@9"], "does not exist", 1),
        (["rm", "short"], "--all", 2),  # which version? must be explicit
    ):
        proc = invoke(*args, library=lib)
        assert proc.returncode == code and proc.stderr.startswith("error: ") and words in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    assert library_snapshot(lib) == before


def test_tag_untag_and_rm_exit_0(tmp_path, short_library):
    """The commands that change tags and remove versions succeed with exit code 0 (what they
    store: test_ingest.py::test_versions_lineage_tags_and_remove)."""
    from motionlib.processing import ops

    lib = copy_library(short_library, tmp_path / "lib")
    with Library(lib) as library:
        library.derive("short", ops.mirror)  # short@2
    assert invoke("tag", "short@1", "loop", library=lib).returncode == 0
    assert invoke("untag", "short@1", "keep", library=lib).returncode == 0
    assert invoke_json("show", "short@1", library=lib)["tags"] == ["loop"]
    assert invoke("rm", "short@1", library=lib).returncode == 2  # short@2 was made from it
    proc = invoke("rm", "short@1", "--force", library=lib)
    assert proc.returncode == 0, proc.stderr
    assert [r["ref"] for r in invoke_json("list", library=lib)] == ["short@2"]
    assert invoke("rm", "short", "--all", library=lib).returncode == 0
    assert _names(lib) == []


def test_many_clips_one_bad_does_not_stop_the_others(tmp_path, demo_frames):
    clips = tmp_path / "clips"
    clips.mkdir()
    a = write_clip(clips / "alpha.mp4", demo_frames[:30])
    bad = clips / "broken.mp4"
    bad.write_text("garbage")
    c = write_clip(clips / "gamma.mp4", demo_frames[30:60])
    lib = tmp_path / "lib"
    # a real process: ingest leaves with os._exit, which must still flush the JSON and give exit code 1
    proc = run_cli("ingest", a, bad, c, "--json", library=lib)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert [o["status"] for o in out] == ["created", "failed", "created"]
    assert [o.get("ref") for o in out] == ["alpha@1", None, "gamma@1"]
    rec_validator = schema_validator("motion-record.schema.json")
    for created in (out[0], out[2]):
        rec_validator.validate(created["record"])
    assert "broken.mp4" in proc.stderr and proc.stderr.count("error:") == 1
    assert _names(lib) == ["alpha", "gamma"]


def test_clips_ingested_in_parallel_into_one_name_get_distinct_versions(tmp_path, demo_frames):
    clips = [write_clip(tmp_path / f"take{k}.mp4", demo_frames[30 * k:30 * k + 30]) for k in range(3)]
    lib = tmp_path / "lib"
    proc = run_cli("ingest", *clips, "--name", "take", "--jobs", "3", "--json", library=lib)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [o["file"] for o in out] == [str(c) for c in clips], "results in the order the files were given"
    assert sorted(o["record"]["version"] for o in out) == [1, 2, 3]
    with Library(lib) as library:
        stored = {r.source_sha256: r.version for r in library.list()}
        assert len(stored) == 3 and sorted(stored.values()) == [1, 2, 3]
        assert not list((lib / "tmp").iterdir()), "every worker cleaned its staging"
    # and bad --jobs is one line
    assert_one_line_error(invoke("ingest", *clips, "--jobs", "-1", library=lib), "--jobs")


def test_library_location_from_environment(tmp_path, short_clip):
    lib = tmp_path / "from-env"
    proc = invoke("ingest", short_clip, env={"MOTIONLIB_LIBRARY": str(lib)})
    assert proc.returncode == 0, proc.stderr
    assert (lib / "index.sqlite").exists()
    # a real process: the variable comes from the environment it is started with
    assert run_cli("list", env={"MOTIONLIB_LIBRARY": str(lib)}).stdout.count("short@1") == 1
    # a non-empty foreign directory is refused rather than filled
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("x")
    proc = invoke("list", library=foreign)
    assert proc.returncode == 1 and "not a motionlib library" in proc.stderr
    assert_one_line_error(proc, "not a motionlib library")
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.txt"]
