"""End to end through the real CLI on real video: records, schemas, versions, tags, bad input."""

import json
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from conftest import (cli_json, library_snapshot, read_frames, run_cli, schema_validator, write_audio_only,
                      write_clip)


def _layout(version_dir: Path) -> dict:
    return {
        str(p.relative_to(version_dir)): json.loads(p.read_text())
        for p in version_dir.rglob("zarr.json")
    }


def test_demo_ingest_record_manifest_and_store_follow_the_schemas(demo_library):
    lib, result = demo_library
    assert result["status"] == "created"
    listed = cli_json("list", library=lib)
    assert [r["ref"] for r in listed] == ["demo@1"]
    rec_validator = schema_validator("motion-record.schema.json")
    rec_validator.validate(listed[0])
    shown = cli_json("show", "demo", library=lib)
    rec_validator.validate(shown)
    assert shown["quality"]["scores"]["occlusion"] == listed[0]["scores"]["occlusion"]
    assert listed[0]["frames"] == 230 and listed[0]["fps"] == pytest.approx(30.0)
    assert listed[0]["duration"] == pytest.approx(230 / 30, abs=1e-3)
    assert listed[0]["tags"] == ["sample"]
    for key in ("overall", "occlusion", "jitter", "framing"):
        assert 0 <= listed[0]["scores"][key] <= 1

    vdir = lib / listed[0]["store_path"]
    schema_validator("motion-store.schema.json").validate(_layout(vdir))
    manifest = json.loads((vdir / "zarr.json").read_text())["attributes"]["motionlib"]
    assert manifest["name"] == "demo" and manifest["version"] == 1
    assert manifest["estimator"]["settings"]["model_complexity"] == 1
    assert len(manifest["joint_names"]) == 33
    # immutable: every stored file is read-only
    for p in vdir.rglob("*"):
        if p.is_file():
            assert not (p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)), p

    # the kept source is the same bytes, content-addressed
    kept = lib / listed[0]["source"]["kept_path"]
    import hashlib

    assert hashlib.sha256(kept.read_bytes()).hexdigest() == listed[0]["source"]["sha256"]


def test_stored_arrays_are_consistent(demo_library):
    from motionlib.library import Library

    lib, rec = demo_library
    m = Library(lib).load(rec["ref"])
    T = m.frames
    assert m.keypoints.shape == (T, 33, 2) and m.confidence.shape == (T, 33)
    assert m.world is not None and m.world.shape == (T, 33, 3)
    assert m.timestamps[0] == 0 and (np.diff(m.timestamps) > 0).all()
    det = m.detected
    assert det.sum() > 0.6 * T
    # pixel coordinates of the displayed 1768x994 frame, not normalised
    assert np.nanmax(m.keypoints[det][..., 0]) > 100
    assert (m.confidence[~det] == 0).all()


def test_same_file_same_settings_is_a_noop(demo_library, sample):
    lib, _ = demo_library
    before = library_snapshot(lib)
    proc = run_cli("ingest", sample, "--name", "demo", library=lib)
    assert proc.returncode == 0
    assert "unchanged" in proc.stdout
    assert library_snapshot(lib) == before
    data = cli_json("ingest", sample, "--name", "demo", library=lib)
    assert data[0]["status"] == "unchanged" and data[0]["ref"] == "demo@1"


def test_versions_lineage_tags_and_remove(tmp_path, short_clip, demo_frames):
    lib = tmp_path / "lib"
    r1 = cli_json("ingest", short_clip, "--name", "wave", "--tag", "hook", "--tag", "ugc", library=lib)[0]
    assert r1["ref"] == "wave@1"
    # a different span of the same file is a new version with the same source lineage
    r2 = cli_json("ingest", short_clip, "--name", "wave", "--end", "1.5", library=lib)[0]
    assert r2["ref"] == "wave@2" and r2["status"] == "created"
    assert r2["record"]["source"]["sha256"] == r1["record"]["source"]["sha256"]
    assert r2["record"]["lineage"] == {"parent": None, "operation": "ingest", "params": {"start": None, "end": 1.5}}
    assert r2["record"]["frames"] == 45

    assert cli_json("show", "wave", library=lib)["ref"] == "wave@2"  # latest by default
    assert cli_json("show", "wave@1", library=lib)["tags"] == ["hook", "ugc"]

    assert run_cli("tag", "wave@1", "loop", library=lib).returncode == 0
    assert run_cli("untag", "wave@1", "ugc", library=lib).returncode == 0
    assert cli_json("show", "wave@1", library=lib)["tags"] == ["hook", "loop"]
    assert [r["ref"] for r in cli_json("list", "--tag", "hook", library=lib)] == ["wave@1"]
    assert cli_json("list", "--tag", "hook", "--tag", "nope", library=lib) == []
    high = cli_json("list", "--min-score", "0.0", library=lib)
    assert len(high) == 2 and cli_json("list", "--min-score", "1.01", library=lib) == []
    bad = run_cli("untag", "wave@1", "never-there", library=lib)
    assert bad.returncode == 1 and "not tagged" in bad.stderr

    with sqlite3.connect(lib / "index.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    # reindex from the store alone keeps versions and tags
    for suffix in ("", "-wal", "-shm"):
        Path(str(lib / "index.sqlite") + suffix).unlink(missing_ok=True)
    assert run_cli("reindex", library=lib).returncode == 0
    assert {r["ref"]: r["tags"] for r in cli_json("list", library=lib)} == {"wave@1": ["hook", "loop"], "wave@2": []}

    assert run_cli("rm", "wave", library=lib).returncode == 1  # which version? must be explicit
    proc = run_cli("rm", "wave@1", library=lib)
    assert proc.returncode == 0, proc.stderr
    assert [r["ref"] for r in cli_json("list", library=lib)] == ["wave@2"]
    assert not (lib / r1["record"]["store_path"]).exists()
    assert (lib / r2["record"]["source"]["kept_path"]).exists()  # still used by wave@2
    # numbers are never reused: the next ingest is wave@3
    r3 = cli_json("ingest", short_clip, "--name", "wave", "--end", "1.0", library=lib)[0]
    assert r3["ref"] == "wave@3"
    assert run_cli("rm", "wave", "--all", library=lib).returncode == 0
    assert cli_json("list", library=lib) == []
    assert list((lib / "sources").rglob("*.mp4")) == []  # no longer referenced: removed


def test_start_end_offsets_and_no_keep_source(tmp_path, short_clip):
    lib = tmp_path / "lib"
    r = cli_json("ingest", short_clip, "--start", "0.5", "--end", "1.5", "--no-keep-source", library=lib)[0]
    assert r["record"]["name"] == "short" and r["record"]["source"]["kept_path"] is None
    assert r["record"]["frames"] == 30
    shown = cli_json("show", "short", library=lib)
    assert shown["source"]["time_offset"] == pytest.approx(0.5, abs=1e-3)
    assert list((lib / "sources").rglob("*.*")) == []


def test_rotated_phone_clip_gives_upright_keypoints(tmp_path, demo_frames):
    from motionlib.library import Library

    upright = demo_frames[:45]
    coded = [np.ascontiguousarray(np.rot90(f, -1)) for f in upright]
    a = write_clip(tmp_path / "upright.mp4", upright)
    b = write_clip(tmp_path / "phone.mp4", coded, rotation=90)
    lib = tmp_path / "lib"
    cli_json("ingest", a, b, library=lib)
    library = Library(lib)
    ma, mb = library.load("upright"), library.load("phone")
    assert (mb.width, mb.height) == (ma.width, ma.height) == (884, 496)
    assert cli_json("show", "phone", library=lib)["source"]["rotation"] == 90
    both = ma.detected & mb.detected
    assert both.sum() > 30
    d = np.nanmedian(np.abs(ma.keypoints[both] - mb.keypoints[both]))
    assert d < 3.0, d  # the same pose, in the orientation a person sees


def test_variable_frame_rate_clip_keeps_its_timing(tmp_path, demo_frames):
    from motionlib.library import Library

    gaps = [1 / 60 if i % 3 else 1 / 12 for i in range(59)]
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    clip = write_clip(tmp_path / "vfr.mp4", demo_frames[:60], times=times)
    lib = tmp_path / "lib"
    rec = cli_json("ingest", clip, library=lib)[0]["record"]
    m = Library(lib).load(rec["ref"])
    assert np.allclose(m.timestamps, times, atol=1e-4)
    assert rec["duration"] == pytest.approx(times[-1] + gaps[-1], abs=0.02)
    assert cli_json("show", rec["ref"], library=lib)["variable_frame_rate"] is True
    assert rec["fps"] == pytest.approx(60 / rec["duration"], rel=1e-3)


def test_a_hard_cut_is_found_at_the_right_time(tmp_path, demo_frames, sample):
    shot_a = demo_frames[:60]
    # shot B: a closer framing of another part of the scene
    zoom = read_frames(sample, count=60, width=1768, start=60)
    shot_b = [np.ascontiguousarray(f[200:696, 700:1584]) for f in zoom]
    clip = write_clip(tmp_path / "cut.mp4", shot_a + shot_b)
    lib = tmp_path / "lib"
    rec = cli_json("ingest", clip, library=lib)[0]["record"]
    shown = cli_json("show", rec["ref"], library=lib)
    cuts = shown["quality"]["details"]["framing"]["cuts"]
    assert [c["frame"] for c in cuts] == [60]
    assert cuts[0]["time"] == pytest.approx(2.0, abs=1e-3)
    assert "cut at 2.0 s (a clip with a cut is a poor motion source)" in rec["warnings"]
    # and the uncut first shot has none
    plain = cli_json("ingest", write_clip(tmp_path / "plain.mp4", shot_a), library=lib)[0]["record"]
    assert cli_json("show", plain["ref"], library=lib)["quality"]["details"]["framing"]["cuts"] == []


def test_cropped_clip_scores_lower_framing(tmp_path, demo_frames):
    full = write_clip(tmp_path / "full.mp4", demo_frames[:45])
    # keep the top of the frame only: the performer's legs leave the picture
    cropped = write_clip(tmp_path / "cropped.mp4", [np.ascontiguousarray(f[:176, 200:700]) for f in demo_frames[:45]])
    lib = tmp_path / "lib"
    res = {r["record"]["name"]: r["record"] for r in cli_json("ingest", full, cropped, library=lib)}
    assert res["cropped"]["scores"]["framing"] < res["full"]["scores"]["framing"] - 0.1
    assert res["cropped"]["raw"]["framing"] < res["full"]["raw"]["framing"]


def test_whole_body_uses_holistic(tmp_path, demo_frames):
    clip = write_clip(tmp_path / "wb.mp4", demo_frames[:20])
    lib = tmp_path / "lib"
    rec = cli_json("ingest", clip, "--whole-body", library=lib)[0]["record"]
    assert rec["skeleton"] == "mediapipe_holistic_543" and rec["estimator"] == "mediapipe-holistic"
    from motionlib.library import Library

    m = Library(lib).load(rec["ref"])
    assert m.keypoints.shape == (20, 543, 2)
    assert np.isfinite(m.keypoints[:, :33]).any()


def _bad_inputs(tmp_path, sample, demo_frames):
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
    }


def test_bad_input_gives_one_line_and_leaves_the_library_alone(tmp_path, sample, demo_frames, short_clip):
    lib = tmp_path / "lib"
    cli_json("ingest", short_clip, "--tag", "keep", library=lib)
    before = library_snapshot(lib)
    for label, (args, words) in _bad_inputs(tmp_path, sample, demo_frames).items():
        proc = run_cli("ingest", *args, library=lib)
        assert proc.returncode != 0, label
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, (label, proc.stderr)
        assert lines[0].startswith("error: "), (label, lines)
        import re

        assert re.search(words, lines[0]), (label, lines[0])
        assert "Traceback" not in proc.stderr
        assert library_snapshot(lib) == before, label
        assert list((lib / "tmp").iterdir()) == [], label


def test_other_commands_reject_unknown_things(tmp_path, short_clip):
    lib = tmp_path / "lib"
    cli_json("ingest", short_clip, library=lib)
    before = library_snapshot(lib)
    for args, words in (
        (["show", "nothing"], "no motion named"),
        (["show", "short@7"], "short@7 does not exist"),
        (["show", "short@0"], "positive integer"),
        (["tag", "nothing", "x"], "no motion named"),
        (["tag", "short", "two words"], "whitespace"),
        (["rm", "short@9"], "does not exist"),
    ):
        proc = run_cli(*args, library=lib)
        assert proc.returncode == 1 and proc.stderr.startswith("error: ") and words in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1
    assert library_snapshot(lib) == before


def test_many_clips_one_bad_does_not_stop_the_others(tmp_path, short_clip, demo_frames):
    clips = tmp_path / "clips"
    clips.mkdir()
    a = write_clip(clips / "alpha.mp4", demo_frames[:30])
    bad = clips / "broken.mp4"
    bad.write_text("garbage")
    c = write_clip(clips / "gamma.mp4", demo_frames[30:60])
    lib = tmp_path / "lib"
    proc = run_cli("ingest", a, bad, c, "--json", library=lib)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert [o["status"] for o in out] == ["created", "failed", "created"]
    assert [o.get("ref") for o in out] == ["alpha@1", None, "gamma@1"]
    assert "broken.mp4" in proc.stderr and proc.stderr.count("error:") == 1
    assert sorted(r["name"] for r in cli_json("list", library=lib)) == ["alpha", "gamma"]


def test_library_location_from_environment(tmp_path, short_clip):
    lib = tmp_path / "from-env"
    proc = run_cli("ingest", short_clip, env={"MOTIONLIB_LIBRARY": str(lib)})
    assert proc.returncode == 0, proc.stderr
    assert (lib / "index.sqlite").exists()
    assert run_cli("list", env={"MOTIONLIB_LIBRARY": str(lib)}).stdout.count("short@1") == 1
    # a non-empty foreign directory is refused rather than filled
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("x")
    proc = run_cli("list", library=foreign)
    assert proc.returncode == 1 and "not a motionlib library" in proc.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.txt"]
