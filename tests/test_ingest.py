"""Ingest through the library API on real video: records, manifests and the store against their
schemas, versions and lineage, tags, list filters, reindex, remove, and what real clips (spans,
rotation, variable frame rate, cuts, cropping, whole body) give. The command line's side of
ingest (its messages, exit codes and JSON) is in test_ingest_cli.py."""

import hashlib
import json
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from conftest import as_printed, library_snapshot, read_frames, schema_validator, write_clip
from motionlib.core.errors import InputError, NotFound
from motionlib.ingest.estimators.mediapipe import legacy_available
from motionlib.ingest.pipeline import IngestOptions
from motionlib.library import Library


@pytest.fixture
def open_library():
    """``Library(root)`` for a test; every library it opened is closed after the test."""
    opened = []

    def open_(root: Path) -> Library:
        opened.append(Library(root))
        return opened[-1]

    yield open_
    for library in opened:
        library.close()



def _layout(version_dir: Path) -> dict:
    return {
        str(p.relative_to(version_dir)): json.loads(p.read_text())
        for p in version_dir.rglob("zarr.json")
    }


def test_demo_ingest_record_manifest_and_store_follow_the_schemas(demo_library, open_library):
    lib, result = demo_library
    assert result["status"] == "created"
    library = open_library(lib)
    listed = [as_printed(r) for r in library.list()]
    assert [r["ref"] for r in listed] == ["demo@1"]
    schema_validator("motion-record.schema.json").validate(listed[0])
    shown = library.manifest(library.get("demo"))
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
    est = manifest["estimator"]
    from motionlib.ingest.estimators import default_estimator
    from motionlib.ingest.estimators.mediapipe import mediapipe_version

    assert est["name"] == default_estimator() and est["mediapipe_version"] == mediapipe_version()
    assert len(est["model"]["sha256"]) == 64 and all(len(v) == 64 for v in est["model"]["files"].values())
    if est["name"] == "mediapipe-pose":  # legacy: the wheel's models
        assert est["settings"]["model_complexity"] == 1 and est["model"]["source"].startswith("bundled with mediapipe")
    else:  # Python 3.13+: the Tasks estimator with the cached model
        assert est["model"]["source"] == "cache" and est["settings"]["model_sha256"] == est["model"]["sha256"]
    assert len(manifest["joint_names"]) == 33
    # immutable: every stored file is read-only
    for p in vdir.rglob("*"):
        if p.is_file():
            assert not (p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)), p

    # the kept source is the same bytes, content-addressed
    kept = lib / listed[0]["source"]["kept_path"]
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == listed[0]["source"]["sha256"]


def test_stored_arrays_are_consistent(demo_library, open_library):
    lib, rec = demo_library
    m = open_library(lib).load(rec["ref"])
    T = m.frames
    assert m.keypoints.shape == (T, 33, 2) and m.confidence.shape == (T, 33)
    assert m.world is not None and m.world.shape == (T, 33, 3)
    assert m.timestamps[0] == 0 and (np.diff(m.timestamps) > 0).all()
    det = m.detected
    assert det.sum() > 0.6 * T
    # pixel coordinates of the displayed 1768x994 frame, not normalised
    assert np.nanmax(m.keypoints[det][..., 0]) > 100
    assert (m.confidence[~det] == 0).all()


def test_same_file_same_settings_is_a_noop(demo_library, sample, open_library):
    lib, _ = demo_library
    before = library_snapshot(lib)
    again = open_library(lib).ingest(sample, name="demo")
    assert again.status == "unchanged" and again.record.ref == "demo@1"
    assert library_snapshot(lib) == before


def test_versions_lineage_tags_and_remove(tmp_path, short_clip, open_library):
    lib = tmp_path / "lib"
    library = open_library(lib)
    r1 = library.ingest(short_clip, name="wave", tags=["hook", "ugc"]).record
    assert r1.ref == "wave@1"
    # a different span of the same file is a new version with the same source lineage
    made = library.ingest(short_clip, name="wave", options=IngestOptions(end=1.5))
    assert made.record.ref == "wave@2" and made.status == "created"
    r2 = made.record
    assert r2.source_sha256 == r1.source_sha256
    assert r2.to_json()["lineage"] == {"parent": None, "operation": "ingest", "params": {"start": None, "end": 1.5}}
    assert r2.frames == 45

    assert library.get("wave").ref == "wave@2"  # latest by default
    assert library.get("wave@1").tags == ["hook", "ugc"]

    library.tag("wave@1", ["loop"])
    library.untag("wave@1", ["ugc"])
    assert library.get("wave@1").tags == ["hook", "loop"]
    assert [r.ref for r in library.list(tags=["hook"])] == ["wave@1"]
    assert library.list(tags=["hook", "nope"]) == []
    high = library.list(min_score=0.0)
    assert len(high) == 2 and library.list(min_score=1.01) == []
    with pytest.raises(NotFound, match="not tagged"):  # the command's exit code: test_ingest_cli.py
        library.untag("wave@1", ["never-there"])

    with sqlite3.connect(lib / "index.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    # reindex from the store alone keeps versions and tags
    library.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(lib / "index.sqlite") + suffix).unlink(missing_ok=True)
    library = open_library(lib)
    library.reindex()
    assert {r.ref: r.tags for r in library.list()} == {"wave@1": ["hook", "loop"], "wave@2": []}

    with pytest.raises(InputError, match="say which version"):  # which version? must be explicit
        library.remove("wave")
    library.remove("wave@1")
    assert [r.ref for r in library.list()] == ["wave@2"]
    assert not (lib / r1.store_path).exists()
    assert (lib / r2.source_path).exists()  # still used by wave@2
    # numbers are never reused: the next ingest is wave@3
    r3 = library.ingest(short_clip, name="wave", options=IngestOptions(end=1.0)).record
    assert r3.ref == "wave@3"
    library.remove("wave", all_versions=True)
    assert library.list() == []
    assert list((lib / "sources").rglob("*.mp4")) == []  # no longer referenced: removed


def test_start_end_offsets_and_no_keep_source(tmp_path, short_clip, open_library):
    lib = tmp_path / "lib"
    library = open_library(lib)
    r = library.ingest(short_clip, options=IngestOptions(start=0.5, end=1.5), keep_source=False).record
    assert r.name == "short" and r.source_path is None
    assert r.frames == 30
    shown = library.manifest(library.get("short"))
    assert shown["source"]["time_offset"] == pytest.approx(0.5, abs=1e-3)
    assert list((lib / "sources").rglob("*.*")) == []


def test_rotated_phone_clip_gives_upright_keypoints(tmp_path, demo_frames, open_library):
    upright = demo_frames[:45]
    coded = [np.ascontiguousarray(np.rot90(f, -1)) for f in upright]
    a = write_clip(tmp_path / "upright.mp4", upright)
    b = write_clip(tmp_path / "phone.mp4", coded, rotation=90)
    library = open_library(tmp_path / "lib")
    library.ingest(a)
    library.ingest(b)
    ma, mb = library.load("upright"), library.load("phone")
    assert (mb.width, mb.height) == (ma.width, ma.height) == (884, 496)
    assert library.manifest(library.get("phone"))["source"]["rotation"] == 90
    both = ma.detected & mb.detected
    assert both.sum() > 30
    d = np.nanmedian(np.abs(ma.keypoints[both] - mb.keypoints[both]))
    assert d < 3.0, d  # the same pose, in the orientation a person sees


def test_variable_frame_rate_clip_keeps_its_timing(tmp_path, demo_frames, open_library):
    gaps = [1 / 60 if i % 3 else 1 / 12 for i in range(59)]
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    clip = write_clip(tmp_path / "vfr.mp4", demo_frames[:60], times=times)
    library = open_library(tmp_path / "lib")
    rec = library.ingest(clip).record
    m = library.load(rec.ref)
    assert np.allclose(m.timestamps, times, atol=1e-4)
    assert rec.duration == pytest.approx(times[-1] + gaps[-1], abs=0.02)
    assert library.manifest(rec)["variable_frame_rate"] is True
    assert rec.fps == pytest.approx(60 / rec.duration, rel=1e-3)


def _cuts(library: Library, rec) -> list:
    return library.manifest(rec)["quality"]["details"]["framing"]["cuts"]


def test_a_hard_cut_is_found_at_the_right_time(tmp_path, demo_frames, sample, open_library):
    shot_a = demo_frames[:60]
    # shot B: a closer framing of another part of the scene
    zoom = read_frames(sample, count=60, width=1768, start=60)
    shot_b = [np.ascontiguousarray(f[200:696, 700:1584]) for f in zoom]
    clip = write_clip(tmp_path / "cut.mp4", shot_a + shot_b)
    library = open_library(tmp_path / "lib")
    rec = library.ingest(clip).record
    cuts = _cuts(library, rec)
    assert [c["frame"] for c in cuts] == [60]
    assert cuts[0]["time"] == pytest.approx(2.0, abs=1e-3)
    assert "cut at 2.0 s (a clip with a cut is a poor motion source)" in rec.warnings
    # and the uncut first shot has none
    plain = library.ingest(write_clip(tmp_path / "plain.mp4", shot_a)).record
    assert _cuts(library, plain) == []


def test_cropped_clip_scores_lower_framing(tmp_path, demo_frames, open_library):
    full = write_clip(tmp_path / "full.mp4", demo_frames[:45])
    # keep the top of the frame only: the performer's legs leave the picture
    cropped = write_clip(tmp_path / "cropped.mp4", [np.ascontiguousarray(f[:176, 200:700]) for f in demo_frames[:45]])
    library = open_library(tmp_path / "lib")
    res = {r.name: r for r in (library.ingest(full).record, library.ingest(cropped).record)}
    assert res["cropped"].framing < res["full"].framing - 0.1
    assert res["cropped"].framing_raw < res["full"].framing_raw


@pytest.mark.skipif(not legacy_available(), reason="Holistic is a legacy solution: mediapipe <= 0.10.21, Python <= 3.12")
def test_whole_body_uses_holistic(tmp_path, demo_frames, open_library):
    clip = write_clip(tmp_path / "wb.mp4", demo_frames[:20])
    library = open_library(tmp_path / "lib")
    rec = library.ingest(clip, options=IngestOptions(whole_body=True)).record
    assert rec.skeleton == "mediapipe_holistic_543" and rec.estimator == "mediapipe-holistic"
    m = library.load(rec.ref)
    assert m.keypoints.shape == (20, 543, 2)
    assert np.isfinite(m.keypoints[:, :33]).any()
