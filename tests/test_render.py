"""Identities and the render pipeline with the pose backend: identities, render records, sidecars,
outputs and campaigns through the library API; the command line's one-line errors and exit codes
in this process (``invoke``); a render stopped by a signal in a real process."""

from __future__ import annotations

import json
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from motionlib.core.errors import InputError
from motionlib.ingest.estimators.mediapipe import legacy_available
from motionlib.library import Library
from motionlib.render.pipeline import RenderJob
from tests.conftest import (
    ROOT, as_printed, assert_one_line_error, copy_library, invoke, invoke_json, library_snapshot, schema_validator,
    spawn_cli,
    wait_for_fault,
)

ASTRONAUT = ROOT / "assets" / "samples" / "astronaut.png"


@pytest.fixture(scope="module")
def rlib(demo_library, tmp_path_factory) -> Path:
    """The demo library with the astronaut as an identity."""
    root = copy_library(demo_library[0], tmp_path_factory.mktemp("render") / "lib")
    with Library(root) as library:
        assert library.add_identity(ASTRONAUT, name="astronaut").body == "upper"
    return root


@pytest.fixture
def lib(rlib, tmp_path) -> Path:
    return copy_library(rlib, tmp_path / "lib")


@pytest.fixture
def library(lib):
    """The test's copy of the library, open."""
    library = Library(lib)
    yield library
    library.close()



def _render(library: Library, jobs: list[RenderJob], output: Path) -> list[dict]:
    """Check and place every job, then render them (`motionlib render ... -o OUTPUT`): the records."""
    return as_printed([r.to_json() for r in library.render_all(library.plan_renders(jobs, output=output))])


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (a decompression bomb, without the memory)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    raw += chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(raw)
    return path


def test_identity_add_show_list_rm(library, lib, tmp_path):
    assert [i.name for i in library.identities()] == ["astronaut"]
    shown = as_printed(library.get_identity("astronaut"))
    assert shown["format"] == "PNG" and len(shown["pose"]["keypoints"]) == 33
    assert shown["pose"]["faces"] == (1 if legacy_available() else None)  # the Tasks path counts no faces
    assert any("half-body" in w for w in shown["warnings"])
    assert (lib / shown["path"]).exists()
    # EXIF orientation: a sideways JPEG marked "rotate 90" comes out upright, with the same pose
    from PIL import Image

    img = Image.open(ASTRONAUT).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera held sideways: display = rotate 90 degrees clockwise
    side = tmp_path / "Sideways Photo (1).jpg"
    img.save(side, exif=exif.tobytes(), quality=95)
    rec = as_printed(library.add_identity(side, name="astro sideways"))
    assert (rec["width"], rec["height"]) == (512, 512)
    assert "EXIF orientation applied" in rec["warnings"]
    a = np.array(shown["pose"]["keypoints"][:13])
    b = np.array(rec["pose"]["keypoints"][:13])
    assert np.median(np.abs(a - b)) < 6, "upright pose matches the original"
    assert library.remove_identity("astro sideways").name == "astro sideways"
    assert not (lib / rec["path"]).exists()
    assert [i.name for i in library.identities()] == ["astronaut"]


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
        proc = invoke("identity", "add", path, "--name", "x", library=lib)
        assert_one_line_error(proc, words, path.name)
    proc = invoke("identity", "add", ASTRONAUT, "--name", "astronaut", library=lib)
    assert proc.returncode == 2 and "exists already" in proc.stderr
    assert library_snapshot(lib) == before
    # and the command that removes one exits 0 (what it removes: test_identity_add_show_list_rm)
    proc = invoke("identity", "rm", "astronaut", library=lib)
    assert proc.returncode == 0, proc.stderr


def test_identity_of_several_people_needs_one_chosen(lib, tmp_path):
    # the astronaut beside a walker from the demo clip, seen from the side: one face found, two bodies
    import cv2
    from PIL import Image

    cap = cv2.VideoCapture(str(ROOT / "assets" / "samples" / "demo.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    ok, frame = cap.read()
    cap.release()
    assert ok
    crop = cv2.cvtColor(frame[380:994, 1180:1680], cv2.COLOR_BGR2RGB)
    crop = cv2.resize(crop, (crop.shape[1] * 512 // crop.shape[0], 512), interpolation=cv2.INTER_AREA)
    two = tmp_path / "two.png"
    Image.fromarray(np.concatenate([np.asarray(Image.open(ASTRONAUT).convert("RGB")), crop], axis=1)).save(two)
    before = library_snapshot(lib)
    proc = invoke("identity", "add", two, library=lib)
    assert_one_line_error(proc, "shows 2 people", "--person")
    assert_one_line_error(invoke("identity", "add", two, "--person", "3", library=lib), "--person 3")
    assert library_snapshot(lib) == before
    rec = invoke_json("identity", "add", two, "--person", "2", "--name", "walker", library=lib)
    shoulders = np.array(rec["pose"]["keypoints"][11:13])
    assert (shoulders[:, 0] > 512).all(), "the walker on the right, not the astronaut"
    assert any("2 people" in w for w in rec["warnings"])


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


def test_pose_render_rereads_as_the_retargeted_track(library, tmp_path):
    """Decode the rendered video and find each joint by its colour: it lies where the retargeted
    track says, frame by frame, at the motion's timing."""
    import av

    from motionlib.core.openpose import to_openpose
    from motionlib.render.posemap import LIMB_COLOURS, Placement
    from motionlib.render.retarget import IdentityBody, retarget

    out = tmp_path / "astro.mp4"
    recs = _render(library, [RenderJob("demo", "astronaut", size="768", seed=7, params={"layout": "posemap"})], out)
    rec = recs[0]
    assert rec["status"] == "done" and rec["seed"] == 7 and rec["backend"] == "pose"
    side = json.loads(Path(str(out) + ".json").read_text())
    import hashlib

    assert side["output_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() == rec["output_sha256"]
    assert side["retarget"]["method"] == "bones"
    with av.open(str(out)) as c:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
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


def test_matrix_records_again_and_history(library, tmp_path):
    from motionlib.processing import ops

    library.derive("demo", ops.smooth)  # `motionlib smooth demo`, its defaults
    outdir = tmp_path / "batch"
    recs = _render(library, [RenderJob(m, "astronaut", size="128") for m in ("demo@1", "demo@2")], outdir)
    assert [r["motion_ref"] for r in recs] == ["demo@1", "demo@2"] and all(r["status"] == "done" for r in recs)
    assert sorted(p.name for p in outdir.iterdir()) == sorted(
        ["demo-v1_astronaut_pose.mp4", "demo-v1_astronaut_pose.mp4.json", "demo-v2_astronaut_pose.mp4",
         "demo-v2_astronaut_pose.mp4.json"])
    hist = as_printed([r.to_json() for r in library.renders()])
    assert [h["id"] for h in hist] == [r["id"] for r in recs]
    validator = schema_validator("render-record.schema.json")
    for h in hist:
        validator.validate(h)
        validator.validate(json.loads(Path(h["output"] + ".json").read_text()))
    first = hist[0]
    assert first["params"]["size"] == "128" and first["params"]["retarget"] == "bones"
    assert first["timings"]["total"] > 0 and first["identity_sha256"] and first["models"] == []
    again = as_printed(library.render_again(first["id"], output=tmp_path / "again.mp4"))
    assert again["seed"] == first["seed"] and again["motion_ref"] == "demo@1"
    import av

    def decoded(p):
        with av.open(str(p)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])

    assert np.array_equal(decoded(first["output"]), decoded(tmp_path / "again.mp4"))


def _campaign(directory: Path) -> Path:
    """A campaign of three jobs whose second (motion ``nohips``) cannot be retargeted by bones."""
    directory.mkdir(exist_ok=True)
    camp = directory / "spring.toml"
    camp.write_text(
        'name = "spring"\noutput_dir = "out"\n[defaults]\nsize = 128\nseed = 3\n[defaults.params]\nlayout = "overlay"\n'
        '[[jobs]]\nmotion = "demo"\nidentity = "astronaut"\n'
        '[[jobs]]\nmotion = "nohips"\nidentity = "astronaut"\n'
        '[[jobs]]\nmotions = ["demo"]\nidentities = ["astronaut"]\nretarget = "global"\noutput = "global.mp4"\n'
    )
    return camp


def _import_nohips(library, tmp_path) -> None:
    """A motion that cannot be retargeted by bones: imported keypoints without hips."""
    frames = []
    for t in range(30):
        pts = [0.0] * 54
        for j, (x, y) in {0: (100, 50), 1: (100, 80), 2: (80, 80), 5: (120, 80), 3: (70, 110 + t), 6: (130, 110)}.items():
            pts[3 * j: 3 * j + 3] = [x, y, 0.9]
        frames.append({"people": [{"pose_keypoints_2d": pts}], "canvas_width": 200, "canvas_height": 200})
    src = tmp_path / "nohips.json"
    src.write_text(json.dumps(frames))
    library.import_keypoints(src, "openpose-json", name="nohips")


def test_campaign_runs_all_jobs_and_one_failure_does_not_stop_them(library, lib, tmp_path):
    _import_nohips(library, tmp_path)
    failures = []
    prepared = library.plan_campaign(_campaign(tmp_path))
    records = library.render_all(prepared, on_failure=lambda prep, err: failures.append(prep.label))
    recs = as_printed([r.to_json() for r in records])
    assert [r["status"] for r in recs] == ["done", "failed", "done"]
    for r in recs:
        schema_validator("render-record.schema.json").validate(r)
    assert "hips" in recs[1]["error"] and [label.split("@")[0] for label in failures] == ["nohips"]
    assert all(r["campaign"] == "spring" for r in recs)
    assert (tmp_path / "out" / "global.mp4").exists()
    assert not list((tmp_path / "out").glob("nohips*.mp4"))
    # the command line: the failed job named on stderr, exit code 1 (the same campaign, its own output_dir)
    proc = invoke("render", "--campaign", _campaign(tmp_path / "cli"), "--json", library=lib)
    assert proc.returncode == 1, proc.stderr
    assert [r["status"] for r in json.loads(proc.stdout)] == ["done", "failed", "done"]
    assert "nohips" in proc.stderr


def test_a_campaign_run_again_skips_what_is_rendered_and_redo_renders_it_over(library, lib, tmp_path):
    _import_nohips(library, tmp_path)
    camp = _campaign(tmp_path)
    out = tmp_path / "out"
    first = library.render_all(library.plan_campaign(camp))  # the nohips job fails
    done = {r.output: (r.id, r.output_sha256) for r in first if r.status == "done"}
    assert len(done) == 2
    # the same campaign again: both finished jobs are skipped, no copy written, no new record
    again = library.plan_campaign(camp)
    assert [p.done.id if p.done else None for p in again] == [first[0].id, None, first[2].id]
    before = sorted(p.name for p in out.iterdir())
    n_records = len(library.renders())
    library.render_all(again)
    assert sorted(p.name for p in out.iterdir()) == before and len(library.renders()) == n_records + 1
    # a changed setting is not the same job: the old video stays, the new one takes the next name
    # (a job's own named output is refused instead, as any existing file is without --force)
    camp.write_text(camp.read_text().replace("size = 128", "size = 96"))
    with pytest.raises(InputError, match="global.mp4 exists"):
        library.plan_campaign(camp)
    changed = library.plan_campaign(camp, overwrite=True)
    assert all(p.done is None for p in changed)
    assert changed[0].output.name.endswith("-2.mp4") and changed[2].output.name == "global.mp4"
    camp.write_text(camp.read_text().replace("size = 96", "size = 128"))
    # a file changed since it was rendered is not skipped either (and keeps its place)
    glob = out / "global.mp4"
    video = glob.read_bytes()
    glob.write_bytes(video + b"x")
    assert library.plan_campaign(camp, overwrite=True)[2].done is None
    glob.write_bytes(video)
    # --redo renders the matching job again over its own file, with a new record
    redone = library.plan_campaign(camp, redo=True)
    assert redone[0].done is None and redone[0].output.resolve() == Path(first[0].output)
    rec = library.render(redone[0])
    assert rec.status == "done" and rec.output == first[0].output and rec.id not in {i for i, _ in done.values()}
    # the command line: skipped jobs are flagged in --json, nothing rendered twice; --redo only with a campaign
    proc = invoke("render", "--campaign", camp, "--json", library=lib)
    recs = json.loads(proc.stdout)
    assert [r["skipped"] for r in recs] == [True, False, True] and recs[0]["id"] == rec.id
    assert_one_line_error(invoke("render", "-m", "demo", "-i", "astronaut", "--redo", library=lib), "--campaign")


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
    proc = invoke(*args, library=lib, cwd=tmp_path)
    assert_one_line_error(proc, words)
    after = library_snapshot(lib)
    assert after == before, "no record, no file"
    assert not (tmp_path / "renders").exists()


def test_bad_campaign_file_is_refused(library, lib, tmp_path):
    bad = tmp_path / "bad.toml"
    for text, words in (('[[jobs]]\nmotion = "demo"\n', "identity"), ('jobs = []\n', "jobs"),
                        ('[[jobs]]\nmotion = "demo"\nidentity = "astronaut"\ncolour = "red"\n', "colour"),
                        ('[[jobs]\n', "not valid TOML"), ('[defaults]\nsizee = 1\n[[jobs]]\nmotion="demo"\nidentity="astronaut"\n', "sizee")):
        bad.write_text(text)
        proc = invoke("render", "--campaign", bad, library=lib)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and words in proc.stderr, (text, proc.stderr)
    assert library.renders() == []


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_a_stopped_render_leaves_no_output_and_a_failed_record(lib, tmp_path, how):
    # A real process: it is stopped by a signal mid-render (SIGKILL cannot be caught in this one),
    # and its exit code, left-over files and record are what a user would find.
    out = tmp_path / "stopped.mp4"
    proc = spawn_cli("render", "-m", "demo", "-i", "astronaut", "-o", out, "--size", "128", library=lib,
                     env={"MOTIONLIB_FAULT": "render-frames"})
    wait_for_fault(proc, "render-frames", timeout=60)
    proc.send_signal(getattr(signal, how))
    proc.wait(timeout=30)
    assert proc.returncode == (130 if how == "SIGINT" else -9)
    assert not out.exists() and not Path(str(out) + ".json").exists()
    library = Library(lib)
    recs = library.renders()  # marks a render whose process died as failed, as `motionlib renders` does
    library.close()
    assert len(recs) == 1 and recs[0].status == "failed"
    assert recs[0].error == ("interrupted" if how == "SIGINT" else "process died")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")], "temporary file cleaned up"


def test_a_campaign_mosaic_puts_every_render_in_its_cell(library, lib, tmp_path):
    import av
    import cv2

    camp = tmp_path / "m.toml"
    camp.write_text('name = "matrix"\noutput_dir = "out"\n[defaults]\nsize = 96\nseed = 2\n'
                    '[[jobs]]\nmotion = "demo"\nidentity = "astronaut"\n')
    records = library.render_all(library.plan_campaign(camp))
    assert [r.status for r in records] == ["done"]
    info = library.mosaic("matrix", tmp_path / "m.png")
    assert (info["motions"], info["identities"], info["missing"]) == (["demo@1"], ["astronaut"], 0)
    image = cv2.imread(str(tmp_path / "m.png"))
    assert image.shape[:2] == (info["height"], info["width"]) and image[10:80, 10:80].std() > 5, "a real frame"
    video = library.mosaic("matrix", tmp_path / "m.mp4")
    with av.open(video["path"]) as c:
        s = c.streams.video[0]
        assert s.frames >= 30 and float(c.duration / 1e6) >= 0.9 * records[0].params["result"]["duration"]
    with pytest.raises(InputError, match="no finished render"):
        library.mosaic("nope", tmp_path / "n.png")
    with pytest.raises(InputError, match="exists"):
        library.mosaic("matrix", tmp_path / "m.png")
