"""Identities and the render pipeline with the pose backend, through the command line."""

from __future__ import annotations

import json
import shutil
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import (
    ROOT, assert_one_line_error, cli_json, library_snapshot, run_cli, schema_validator, spawn_cli, wait_for_fault,
)

ASTRONAUT = ROOT / "assets" / "samples" / "astronaut.png"


@pytest.fixture(scope="module")
def rlib(demo_library, tmp_path_factory) -> Path:
    """The demo library with the astronaut as an identity."""
    root = tmp_path_factory.mktemp("render") / "lib"
    shutil.copytree(demo_library[0], root)
    out = cli_json("identity", "add", ASTRONAUT, "--name", "astronaut", library=root)
    assert out["body"] == "upper"
    return root


@pytest.fixture
def lib(rlib, tmp_path) -> Path:
    root = tmp_path / "lib"
    shutil.copytree(rlib, root)
    return root


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (a decompression bomb, without the memory)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    raw += chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(raw)
    return path


def test_identity_add_show_list_rm(lib, tmp_path):
    listed = cli_json("identity", "list", library=lib)
    assert [i["name"] for i in listed] == ["astronaut"]
    shown = cli_json("identity", "show", "astronaut", library=lib)
    assert shown["format"] == "PNG" and len(shown["pose"]["keypoints"]) == 33 and shown["pose"]["faces"] == 1
    assert any("half-body" in w for w in shown["warnings"])
    assert (lib / shown["path"]).exists()
    # EXIF orientation: a sideways JPEG marked "rotate 90" comes out upright, with the same pose
    from PIL import Image

    img = Image.open(ASTRONAUT).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera held sideways: display = rotate 90 degrees clockwise
    side = tmp_path / "Sideways Photo (1).jpg"
    img.save(side, exif=exif.tobytes(), quality=95)
    rec = cli_json("identity", "add", side, "--name", "astro sideways", library=lib)
    assert (rec["width"], rec["height"]) == (512, 512)
    assert "EXIF orientation applied" in rec["warnings"]
    a = np.array(shown["pose"]["keypoints"][:13])
    b = np.array(rec["pose"]["keypoints"][:13])
    assert np.median(np.abs(a - b)) < 6, "upright pose matches the original"
    proc = run_cli("identity", "rm", "astro sideways", library=lib)
    assert proc.returncode == 0
    assert not (lib / rec["path"]).exists()
    assert [i["name"] for i in cli_json("identity", "list", library=lib)] == ["astronaut"]


def test_identity_bad_images_are_refused_with_one_line(lib, tmp_path):
    from PIL import Image

    before = library_snapshot(lib)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(ASTRONAUT.read_bytes()[:20000])
    nobody = tmp_path / "wall.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))).convert("RGB").save(nobody)
    two = tmp_path / "two.png"
    a = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    Image.fromarray(np.concatenate([a, a], axis=1)).save(two)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 20)).save(tiny)
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (100, 100)).save(gif)
    cases = [
        (text, "not an image"), (truncated, "damaged or truncated"), (nobody, "no person"),
        (two, "shows 2 people"), (tiny, "at least 64"), (gif, "GIF"),
        (_png_header(tmp_path / "bomb.png", 60000, 60000), "megapixels"),
        (tmp_path / "missing.jpg", "does not exist"),
    ]
    for path, words in cases:
        proc = run_cli("identity", "add", path, "--name", "x", library=lib)
        assert_one_line_error(proc, words, path.name)
    proc = run_cli("identity", "add", ASTRONAUT, "--name", "astronaut", library=lib)
    assert proc.returncode == 1 and "exists already" in proc.stderr
    assert library_snapshot(lib) == before


def _joint_positions(frame: np.ndarray, colours, min_pixels: int = 4):
    """Re-read joints from a pose map: centroid of the pixels of each joint's full colour."""
    f = frame.astype(np.int32)
    out = {}
    for j, c in colours.items():
        d = np.abs(f - np.array(c)).sum(axis=2)
        ys, xs = np.nonzero(d < 70)
        if len(xs) >= min_pixels:
            out[j] = (xs.mean(), ys.mean(), len(xs))
    return out


def test_pose_render_rereads_as_the_retargeted_track(lib, tmp_path):
    """Decode the rendered video and find each joint by its colour: it lies where the retargeted
    track says, frame by frame, at the motion's timing."""
    import av

    from motionlib.core.openpose import to_openpose
    from motionlib.library import Library
    from motionlib.render.posemap import LIMB_COLOURS, Placement
    from motionlib.render.retarget import IdentityBody, retarget

    out = tmp_path / "astro.mp4"
    recs = cli_json("render", "-m", "demo", "-i", "astronaut", "-o", out, "-p", "layout=posemap",
                    "--size", "768", "--seed", "7", library=lib)
    rec = recs[0]
    assert rec["status"] == "done" and rec["seed"] == 7 and rec["backend"] == "pose"
    side = json.loads(Path(str(out) + ".json").read_text())
    import hashlib

    assert side["output_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() == rec["output_sha256"]
    assert side["retarget"]["method"] == "bones"
    with av.open(str(out)) as c:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    library = Library(lib)
    m = library.load("demo")
    assert len(frames) == m.frames and frames[0][1].shape == (768, 768, 3)
    np.testing.assert_allclose([t for t, _ in frames], m.timestamps, atol=1e-3)
    ident = IdentityBody.from_record(library.get_identity("astronaut"))
    op = to_openpose(retarget(m, ident, "bones").motion)
    place = Placement.fit(512, 512, 768, 768)
    # joints whose colours are far apart on the hue circle: nose, neck, r-elbow, l-wrist, r-hip, l-knee
    joints = [0, 1, 3, 7, 8, 12]
    errors = []
    for t in range(0, m.frames, 5):
        img = frames[t][1]
        found = _joint_positions(img, {j: LIMB_COLOURS[j] for j in joints})
        want = place.apply(op.body[t])
        for j in joints:
            x, y = want[j]
            if op.body_conf[t, j] < 0.3 or not (10 < x < 758 and 10 < y < 758) or j not in found:
                continue
            errors.append(np.hypot(found[j][0] - x, found[j][1] - y))
    print(f"\nre-read {len(errors)} joints: median error {np.median(errors):.2f} px, 90th pct {np.percentile(errors, 90):.2f}")
    assert len(errors) >= 60
    assert np.median(errors) < 2.0


def test_matrix_records_again_and_history(lib, tmp_path):
    cli_json("smooth", "demo", library=lib)
    outdir = tmp_path / "batch"
    recs = cli_json("render", "-m", "demo@1", "-m", "demo@2", "-i", "astronaut", "-o", outdir, "--size", "128", library=lib)
    assert [r["motion_ref"] for r in recs] == ["demo@1", "demo@2"] and all(r["status"] == "done" for r in recs)
    assert sorted(p.name for p in outdir.iterdir()) == sorted(
        ["demo-v1_astronaut_pose.mp4", "demo-v1_astronaut_pose.mp4.json", "demo-v2_astronaut_pose.mp4",
         "demo-v2_astronaut_pose.mp4.json"])
    hist = cli_json("renders", library=lib)
    assert [h["id"] for h in hist] == [r["id"] for r in recs]
    validator = schema_validator("render-record.schema.json")
    for h in hist:
        validator.validate(h)
        validator.validate(json.loads(Path(h["output"] + ".json").read_text()))
    first = hist[0]
    assert first["params"]["size"] == "128" and first["params"]["retarget"] == "bones"
    assert first["timings"]["total"] > 0 and first["identity_sha256"] and first["models"] == []
    again = cli_json("render", "--again", str(first["id"]), "-o", tmp_path / "again.mp4", library=lib)[0]
    assert again["seed"] == first["seed"] and again["motion_ref"] == "demo@1"
    import av

    def decoded(p):
        with av.open(str(p)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])

    assert np.array_equal(decoded(first["output"]), decoded(tmp_path / "again.mp4"))


def test_campaign_runs_all_jobs_and_one_failure_does_not_stop_them(lib, tmp_path):
    # a motion that cannot be retargeted by bones: imported keypoints without hips
    frames = []
    for t in range(30):
        pts = [0.0] * 54
        for j, (x, y) in {0: (100, 50), 1: (100, 80), 2: (80, 80), 5: (120, 80), 3: (70, 110 + t), 6: (130, 110)}.items():
            pts[3 * j: 3 * j + 3] = [x, y, 0.9]
        frames.append({"people": [{"pose_keypoints_2d": pts}], "canvas_width": 200, "canvas_height": 200})
    src = tmp_path / "nohips.json"
    src.write_text(json.dumps(frames))
    cli_json("import", src, "--format", "openpose-json", "--name", "nohips", library=lib)
    camp = tmp_path / "spring.toml"
    camp.write_text(
        'name = "spring"\noutput_dir = "out"\n[defaults]\nsize = 128\nseed = 3\n[defaults.params]\nlayout = "overlay"\n'
        '[[jobs]]\nmotion = "demo"\nidentity = "astronaut"\n'
        '[[jobs]]\nmotion = "nohips"\nidentity = "astronaut"\n'
        '[[jobs]]\nmotions = ["demo"]\nidentities = ["astronaut"]\nretarget = "global"\noutput = "global.mp4"\n'
    )
    proc = run_cli("render", "--campaign", camp, "--json", library=lib)
    assert proc.returncode == 1, proc.stderr
    recs = json.loads(proc.stdout)
    assert [r["status"] for r in recs] == ["done", "failed", "done"]
    for r in recs:
        schema_validator("render-record.schema.json").validate(r)
    assert "hips" in recs[1]["error"] and "nohips" in proc.stderr
    assert all(r["campaign"] == "spring" for r in recs)
    assert (tmp_path / "out" / "global.mp4").exists()
    assert not list((tmp_path / "out").glob("nohips*.mp4"))


@pytest.mark.parametrize("args, words", [
    (("render", "-m", "nope", "-i", "astronaut"), "no motion named 'nope'"),
    (("render", "-m", "demo", "-i", "nobody"), "no identity named 'nobody'"),
    (("render", "-m", "demo", "-i", "astronaut", "-b", "magic"), "unknown backend 'magic'"),
    (("render", "-m", "demo", "-i", "astronaut", "-o", "/nonexistent/x.mp4"), "does not exist"),
    (("render", "-m", "demo", "-i", "astronaut", "-p", "layout=cubist"), "layout"),
    (("render", "-m", "demo", "-i", "astronaut", "-p", "steps=3"), "takes no parameter steps"),
    (("render", "-m", "demo", "-i", "astronaut", "--retarget", "magic"), "bones or global"),
    (("render", "-m", "demo"), "--identity"),
    (("render", "--again", "999"), "no render with id 999"),
    (("render", "-m", "demo", "-m", "demo@1", "-i", "astronaut", "-o", "one.mp4"), "give a directory"),
])
def test_bad_render_input_fails_before_any_work(lib, args, words, tmp_path):
    before = library_snapshot(lib)
    proc = run_cli(*args, library=lib, cwd=tmp_path)
    assert_one_line_error(proc, words)
    after = library_snapshot(lib)
    assert after == before, "no record, no file"
    assert not (tmp_path / "renders").exists()


def test_bad_campaign_file_is_refused(lib, tmp_path):
    bad = tmp_path / "bad.toml"
    for text, words in (('[[jobs]]\nmotion = "demo"\n', "identity"), ('jobs = []\n', "jobs"),
                        ('[[jobs]]\nmotion = "demo"\nidentity = "astronaut"\ncolour = "red"\n', "colour"),
                        ('[[jobs]\n', "not valid TOML"), ('[defaults]\nsizee = 1\n[[jobs]]\nmotion="demo"\nidentity="astronaut"\n', "sizee")):
        bad.write_text(text)
        proc = run_cli("render", "--campaign", bad, library=lib)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and words in proc.stderr, (text, proc.stderr)
    assert cli_json("renders", library=lib) == []


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_a_stopped_render_leaves_no_output_and_a_failed_record(lib, tmp_path, how):
    out = tmp_path / "stopped.mp4"
    proc = spawn_cli("render", "-m", "demo", "-i", "astronaut", "-o", out, "--size", "128", library=lib,
                     env={"MOTIONLIB_FAULT": "render-frames"})
    wait_for_fault(proc, "render-frames", timeout=60)
    proc.send_signal(getattr(signal, how))
    proc.wait(timeout=30)
    assert proc.returncode == (130 if how == "SIGINT" else -9)
    assert not out.exists() and not Path(str(out) + ".json").exists()
    recs = cli_json("renders", library=lib)
    assert len(recs) == 1 and recs[0]["status"] == "failed"
    assert recs[0]["error"] == ("interrupted" if how == "SIGINT" else "process died")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")], "temporary file cleaned up"
