#!/usr/bin/env python3
"""Hostile inputs at every door: keypoint imports (through the library API, as a script would),
then the command line in this process for identities, names and tags, queries, campaign files, the
flags of imports, edits and renders, and faults of the library's disk (damaged chunks and index,
planted links, and - where this machine lets it mount - a read-only library and a full disk).

Each case must be refused cleanly (one ``error:`` line, a non-zero exit, the library unchanged) or
accepted and usable. Prints the counts per door: refused cleanly / accepted and usable /
traceback / hang (over 120 s) / changed on refusal. Exits 1 when any case crashed, hung or
changed the library on refusal.

Usage: .venv/bin/python scripts/redteam.py [-v]
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from motionlib.core.errors import MotionlibError  # noqa: E402
from motionlib.core.skeleton import MEDIAPIPE_POSE_33  # noqa: E402
from motionlib.library import Library  # noqa: E402

J = MEDIAPIPE_POSE_33.num_joints


def _npz(path: Path, **arrays) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return path


def _meta(**over) -> np.ndarray:
    meta = {"format": "motionlib-npz", "format_version": 1, "skeleton": "mediapipe_pose_33",
            "joint_names": list(MEDIAPIPE_POSE_33.joint_names), "width": 640, "height": 480, "duration": 1.0}
    meta.update(over)
    return np.array(json.dumps(meta))


def _good(T=30):
    rng = np.random.default_rng(0)
    kp = (rng.random((T, J, 2)) * [640, 480]).astype(np.float32)
    return {"keypoints": kp, "confidence": np.full((T, J), 0.9, np.float32),
            "timestamps": np.arange(T) / 30.0, "meta": _meta(duration=T / 30.0)}


def npz_cases(d: Path) -> dict[str, Path]:
    g = _good()
    cases = {}

    def case(name, **over):
        arrays = dict(g, **over)
        cases[name] = _npz(d / f"{name}.npz", **{k: v for k, v in arrays.items() if v is not None})

    case("good")
    case("coords_1e38", keypoints=np.full((30, J, 2), 1e38, np.float32))
    case("coords_inf", keypoints=np.full((30, J, 2), np.inf, np.float32))
    case("conf_strings", confidence=np.array([["0.9"] * J] * 30))
    case("conf_bytes", confidence=np.array([[b"x"] * J] * 30))
    case("ts_strings", timestamps=np.array([str(i) for i in range(30)]))
    case("ts_tiny_steps", timestamps=np.arange(30) * 1e-300)
    case("ts_equal", timestamps=np.zeros(30))
    case("kp_strings", keypoints=np.array([[["a", "b"]] * J] * 30))
    case("kp_int_huge", keypoints=np.full((30, J, 2), 2**62, np.int64))
    case("kp_wrong_shape", keypoints=np.zeros((30, J, 3), np.float32))
    case("meta_width_inf", meta=_meta(width=float("inf")))
    case("meta_width_1e30", meta=_meta(width=1e30))
    case("meta_width_2_63", meta=_meta(width=2**63))
    case("meta_width_400_digits", meta=np.array('{"skeleton": "mediapipe_pose_33", "width": ' + "9" * 400
                                                + ', "height": 480, "duration": 1.0}'))
    case("meta_duration_inf", meta=_meta(duration=float("inf")))
    case("meta_duration_negative", meta=_meta(duration=-1))
    case("meta_skeleton_list", meta=_meta(skeleton=["mediapipe_pose_33"]))
    case("meta_not_json", meta=np.array("{not json"))
    case("meta_deep", meta=np.array("[" * 100_000 + "]" * 100_000))
    case("holistic_with_33", meta=_meta(skeleton="mediapipe_holistic_543",
                                        joint_names=list(MEDIAPIPE_POSE_33.joint_names)))
    # a member holding a pickled object: np.load(allow_pickle=False) must refuse it
    obj = np.empty(1, dtype=object)
    obj[0] = {"a": 1}
    buf = io.BytesIO()
    np.save(buf, obj, allow_pickle=True)
    path = d / "pickled.npz"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in g.items():
            b = io.BytesIO()
            np.save(b, v)
            z.writestr(f"{k}.npy", b.getvalue())
        z.writestr("world.npy", buf.getvalue())
    cases["pickled_member"] = path
    (d / "garbage.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    cases["garbage"] = d / "garbage.npz"
    return cases


def json_cases(d: Path) -> dict[str, Path]:
    def frame(pose, **extra):
        return {"version": 1.3, "people": [{"pose_keypoints_2d": pose}], **extra}

    good = [float(v) for _ in range(18) for v in (100, 100, 0.9)]
    docs = {
        "good": [frame(good, canvas_width=640, canvas_height=480)] * 10,
        "coords_1e38": [frame([1e38 if i % 3 != 2 else 0.9 for i in range(54)])] * 3,
        "int_400_digits": [frame([int("9" * 400)] * 54)],
        "strings": [frame(["a"] * 54)],
        "deep": None,
        "canvas_inf": [frame(good, canvas_width=1e400, canvas_height=480)],
        "canvas_bool": [frame(good, canvas_width=True, canvas_height=480)],
        "timestamps_tiny": [frame(good, canvas_width=640, canvas_height=480, timestamp=i * 1e-300) for i in range(5)],
        "people_not_list": [{"people": {"a": 1}}],
        "empty_list": [],
    }
    cases = {}
    for name, doc in docs.items():
        path = d / f"{name}.json"
        path.write_text("[" * 50_000 + "]" * 50_000 if doc is None else json.dumps(doc))
        cases[name] = path
    return cases


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")
            if p.is_file() and "tmp" not in p.parts and not p.name.endswith(("-wal", "-shm"))}


OUTCOMES = ("refused", "usable", "traceback", "hang", "changed")
HANG_SECONDS = 120


class _Hang(Exception):
    pass


def _on_alarm(*_):
    raise _Hang()


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """``motionlib ARGV`` in this process: exit code, stdout, stderr; _Hang past HANG_SECONDS."""
    from motionlib.cli import main as cli_main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(HANG_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli_main([str(a) for a in argv])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return code, out.getvalue(), err.getvalue()


def _mount(*args) -> bool:
    return subprocess.run(["mount", *map(str, args)], capture_output=True).returncode == 0


class Doors:
    """The library every CLI case runs against, and the tally per door."""

    def __init__(self, tmp: Path, verbose: bool):
        self.tmp, self.verbose = tmp, verbose
        self.results: dict[str, dict[str, list[str]]] = {}

    def outcome(self, door: str) -> dict[str, list[str]]:
        return self.results.setdefault(door, {k: [] for k in OUTCOMES})

    def cli(self, door: str, name: str, lib: Path, *args, usable=None, reports: bool = False) -> None:
        """One CLI case: refused (one error line, exit != 0, library unchanged) or accepted (exit
        0, then ``usable()`` must hold). ``reports``: a command that reports problems on stdout
        and exits 1 (doctor) - that is its answer, not a refusal."""
        o = self.outcome(door)
        before = snapshot(lib) if lib.exists() else {}
        try:
            code, out, err = _cli(["--library", lib, *args])
        except _Hang:
            o["hang"].append(name)
            return
        except BaseException as e:  # noqa: BLE001 - an exception past the CLI is what we look for
            o["traceback"].append(f"{name}: {type(e).__name__}: {str(e)[:100]}")
            return
        if reports and code == 1 and not err and out:
            code = 0
        if "Traceback" in err or (code != 0 and not (err.startswith("error: ") and err.count("\n") == 1)):
            lines = err.strip().splitlines()
            o["traceback"].append(f"{name}: {lines[-1][:120] if lines else f'exit {code} and no message'}")
        elif code != 0:
            o["refused"].append(name)
            if lib.exists() and snapshot(lib) != before:
                o["changed"].append(name)
            if self.verbose:
                print(f"  {door} {name}: {err.strip()}")
        else:
            try:
                ok = usable() if usable is not None else True
            except BaseException as e:  # noqa: BLE001
                ok = False
                err = f"{type(e).__name__}: {e}"
            (o["usable"] if ok else o["traceback"]).append(name if ok else f"{name}: accepted, not usable: {err}")


def run(verbose: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        doors = Doors(tmp, verbose)
        _imports(doors, tmp)
        lib = _base_library(tmp)
        _identity_cases(doors, tmp, lib)
        _name_cases(doors, lib)
        _query_cases(doors, lib)
        _campaign_cases(doors, tmp, lib)
        _flag_cases(doors, tmp, lib)
        _fault_cases(doors, tmp, lib)
        return doors.results


def _imports(doors: Doors, tmp: Path) -> None:
    lib_root = tmp / "imports"
    with Library(lib_root) as lib:
        for door, fmt, cases in (("import npz", "npz", npz_cases(tmp)),
                                 ("import openpose-json", "openpose-json", json_cases(tmp))):
            outcome = doors.outcome(door)
            for name, path in cases.items():
                before = snapshot(lib_root)
                try:
                    got = lib.import_keypoints(path, fmt, name=f"{fmt}-{name}".replace("_", "-"),
                                               fps=30 if fmt == "openpose-json" and "timestamps" not in name else None)
                    m = lib.load(got.record.ref)
                    lib.export(got.record.ref, "csv", tmp / f"{fmt}-{name}.csv")
                    assert np.isfinite(m.timestamps).all()
                    outcome["usable"].append(name)
                except MotionlibError as err:
                    outcome["refused"].append(name)
                    if snapshot(lib_root) != before:
                        outcome["changed"].append(name)
                    if doors.verbose:
                        print(f"  {door} {name}: error: {err}")
                except BaseException as err:  # noqa: BLE001 - what the red team looks for
                    outcome["traceback"].append(f"{name}: {type(err).__name__}: {str(err)[:100]}")


ASTRONAUT = ROOT / "assets" / "samples" / "astronaut.png"


def _base_library(tmp: Path) -> Path:
    """A library with ``demo`` (a 3-second import, so no video is needed) and the astronaut."""
    root = tmp / "lib"
    T = 90
    t = np.arange(T) / 30.0
    rng = np.random.default_rng(1)
    base = np.stack([np.linspace(200, 440, J), np.linspace(60, 420, J)], -1)
    kp = (base[None] + 20 * np.sin(2 * np.pi * t)[:, None, None] + rng.normal(0, 1, (T, J, 2))).astype(np.float32)
    path = _npz(tmp / "demo.npz", keypoints=kp, confidence=np.full((T, J), 0.9, np.float32), timestamps=t,
                meta=_meta(duration=T / 30.0))
    with Library(root) as lib:
        lib.import_keypoints(path, "npz", name="demo")
        if ASTRONAUT.exists():
            lib.add_identity(ASTRONAUT, name="astronaut")
    return root


def _identity_cases(doors: Doors, tmp: Path, lib: Path) -> None:
    from PIL import Image

    d = tmp / "images"
    d.mkdir()
    (d / "notes.png").write_text("not an image")
    if ASTRONAUT.exists():
        (d / "cut.png").write_bytes(ASTRONAUT.read_bytes()[:20000])
        a = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
        Image.fromarray(np.concatenate([a, a], axis=1)).save(d / "two.png")
    Image.fromarray(np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))).convert("RGB").save(d / "wall.png")
    Image.new("RGB", (20, 20)).save(d / "tiny.png")
    Image.new("RGB", (100, 100)).save(d / "anim.gif")
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    (d / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
                                 + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
    (d / "dir.png").mkdir()
    for f in sorted(d.iterdir()):
        doors.cli("identity add", f.name, lib, "identity", "add", f, "--name", f.stem)
    doors.cli("identity add", "missing", lib, "identity", "add", d / "missing.jpg")
    doors.cli("identity add", "dev-zero", lib, "identity", "add", "/dev/zero")
    if ASTRONAUT.exists():
        for name in ("a/b", "", "..", "x" * 200, "a\x01b"):
            doors.cli("identity add", f"name {name[:10]!r}", lib, "identity", "add", ASTRONAUT, "--name", name)
        doors.cli("identity add", "person 0", lib, "identity", "add", ASTRONAUT, "--name", "p0", "--person", "0")
        doors.cli("identity add", "person 5", lib, "identity", "add", ASTRONAUT, "--name", "p5", "--person", "5")
        doors.cli("identity add", "two, person 2", lib, "identity", "add", d / "two.png", "--name", "two2",
                  "--person", "2", usable=lambda: _cli(["--library", lib, "identity", "rm", "two2"])[0] == 0)


HOSTILE_NAMES = ["", ".", "..", "-x", "a/b", "a\\b", "a@1", "a\x00b", "a\nb", "x" * 101, " ", "\u202e", "CON",
                 "ünïcödé", "a b", "*", "tag:x"]


def _name_cases(doors: Doors, lib: Path) -> None:
    for n in HOSTILE_NAMES:
        label = repr(n[:12])

        def renamed(n=n):
            code, out, _ = _cli(["--library", lib, "list", "--json"])
            assert code == 0 and n in {r["name"] for r in json.loads(out)}
            assert _cli(["--library", lib, "rename", n, "demo"])[0] == 0
            return True

        doors.cli("names (rename)", label, lib, "rename", "demo", n, usable=renamed)

        def tagged(n=n):
            code, out, _ = _cli(["--library", lib, "show", "demo", "--json"])
            assert n.lower() in json.loads(out)["tags"]
            assert _cli(["--library", lib, "untag", "demo", n])[0] == 0
            return True

        doors.cli("names (tag)", label, lib, "tag", "demo", n, usable=tagged)


HOSTILE_QUERIES = ["frames>" + "9" * 400, "score>1e400", "score>nan", "fps=inf", "tag:" + ",".join(["a"] * 5000),
                   " ".join(["score>0"] * 3000), "x" * 1_000_000, "name:\x00", "tag:[", "name:[!", "'unclosed",
                   "score>0x10", "foo:1", "is:", "<>", "created:last-week", "-", "--", "name:" + "*" * 3000,
                   "score>0.5 tag:x -name:y is:latest", "version>१२"]


def _query_cases(doors: Doors, lib: Path) -> None:
    for q in HOSTILE_QUERIES:
        doors.cli("query", repr(q[:20]), lib, "list", "--json", "--", q)
    for sort in ("nope", "-", "score,score," * 200, "tag"):
        doors.cli("query (sort)", repr(sort[:20]), lib, "list", "--sort", sort)


def _campaign_cases(doors: Doors, tmp: Path, lib: Path) -> None:
    d = tmp / "campaigns"
    d.mkdir()
    job = '[[jobs]]\nmotion = "demo"\nidentity = "astronaut"\n'
    cases = {
        "nan threshold": job + "threshold = nan\n", "inf threshold": job + "threshold = inf\n",
        "seed 2^64": job + "seed = 18446744073709551615\n", "seed -1": job + "seed = -1\n",
        "size huge": job + 'size = "99999x99999"\n', "anchor huge": job + "anchor_frame = 9223372036854775807\n",
        "output escapes": job + 'output = "../../x.mp4"\n', "output absolute": job + 'output = "/tmp/x.mp4"\n',
        "nested": "a = " + "[" * 5000 + "]" * 5000 + "\n" + job,
        "matrix": '[[jobs]]\nmotions = [' + ",".join(['"demo"'] * 3000) + ']\nidentities = ['
                  + ",".join(['"astronaut"'] * 3000) + ']\n',
        "params type": job + '[jobs.params]\nlayout = 5\n', "unknown key": job + 'colour = "red"\n',
        "huge file": job + 'prompt = "' + "x" * 2_000_000 + '"\n', "name escapes": 'name = "../../x"\n' + job,
        "name NUL": 'name = "a\\u0000b"\n' + job, "binary": "\x00\x01", "no jobs": "jobs = []\n",
        "datetime seed": job + "seed = 1979-05-27T07:32:00Z\n", "motion empty": job.replace('"demo"', '""'),
        "not utf-8": None,
    }
    for name, text in cases.items():
        path = d / f"{name.replace(' ', '-')}.toml"
        if text is None:
            path.write_bytes(b"name = \"\xff\xfe\"\n")
        else:
            path.write_text(text)
        doors.cli("campaign", name, lib, "render", "--campaign", path, "-q",
                  usable=lambda: True)


def _flag_cases(doors: Doors, tmp: Path, lib: Path) -> None:
    good = tmp / "good.json"
    good.write_text(json.dumps([{"people": [{"pose_keypoints_2d": [100.0, 100.0, 0.9] * 18}],
                                 "canvas_width": 640, "canvas_height": 480}] * 10))
    for flags in (["--fps", "0"], ["--fps", "-1"], ["--fps", "nan"], ["--fps", "1e400"], ["--fps", "1e9"],
                  ["--size", "0x0"], ["--size", "99999999x1"], ["--size", "axb"], ["--person", "-1"],
                  ["--person", "99"], ["-f", "pickle"]):
        doors.cli("flags (import)", " ".join(flags), lib, "import", good, "-f", "openpose-json", "--name", "flagged",
                  *flags, usable=lambda: _cli(["--library", lib, "rm", "flagged", "--all"])[0] == 0)
    edits = [["trim", "--start", "-1"], ["trim", "--start", "5", "--end", "1"], ["trim", "--end", "1e400"],
             ["smooth", "--cutoff", "0"], ["smooth", "--cutoff", "nan"], ["smooth", "--window", "0"],
             ["smooth", "--window", "100000000"], ["smooth", "--method", "magic"], ["loop", "--min-length", "0"],
             ["loop", "--min-length", "1e9"], ["loop", "--max-length", "-1"], ["loop", "--blend", "-3"],
             ["retime", "--fps", "0"], ["retime", "--fps", "1e9"], ["retime", "--speed", "0"],
             ["retime", "--speed", "inf"], ["fill-gaps", "--max", "-1"], ["in-place", "--axes", "z"]]
    for e in edits:
        doors.cli("flags (edit)", " ".join(e), lib, e[0], "demo", *e[1:], "--name", "edited",
                  usable=lambda: _cli(["--library", lib, "rm", "edited", "--all", "--force"])[0] == 0)
    renders = [["--size", "0"], ["--size", "99999"], ["--size", "1x1"], ["--seed", "-1"], ["--seed", str(2**70)],
               ["--threshold", "2"], ["--threshold", "nan"], ["--anchor-frame", "-1"], ["--anchor-frame", str(10**12)],
               ["-p", "layout=cubist"], ["-p", "steps=1e9"], ["-p", "=x"], ["--backend", "../x"],
               ["--retarget", "magic"], ["-o", "/nonexistent/dir/x.mp4"], ["-o", str(tmp / "x.txt")]]
    for r in renders:
        doors.cli("flags (render)", " ".join(r), lib, "render", "-m", "demo", "-i", "astronaut", "-q", *r)


def _fault_cases(doors: Doors, tmp: Path, lib: Path) -> None:
    # a damaged chunk: reads say which version, doctor names it
    damaged = tmp / "damaged"
    shutil.copytree(lib, damaged)
    chunk = next((damaged / "motions").rglob("keypoints/c/*/*/*"))
    os.chmod(chunk, 0o644)
    chunk.write_bytes(os.urandom(64))
    for args in (["smooth", "demo"], ["export", "demo", "-f", "csv", "-o", tmp / "d.csv"],
                 ["preview", "demo", "-o", tmp / "d.mp4"], ["doctor"]):
        doors.cli("faults", f"damaged chunk: {args[0]}", damaged, *args, reports=args[0] == "doctor")
    # planted links: one in tmp/ to a private directory outside, one in place of a version
    planted = tmp / "planted"
    shutil.copytree(lib, planted)
    victim = tmp / "victim"
    victim.mkdir()
    (victim / "private.txt").write_text("keep")
    os.chmod(victim / "private.txt", 0o600)
    (planted / "tmp" / "999999-planted").symlink_to(victim)
    for args in (["smooth", "demo", "--name", "s"], ["doctor", "--fix"]):
        doors.cli("faults", f"planted link: {args[0]}", planted, *args, reports=True, usable=lambda: (
            (victim / "private.txt").stat().st_mode & 0o777 == 0o600 and (victim / "private.txt").exists()))
    # a damaged index
    broken = tmp / "broken"
    shutil.copytree(lib, broken)
    (broken / "index.sqlite").write_bytes(b"not a database" * 200)
    for args in (["list"], ["smooth", "demo"], ["doctor"]):
        doors.cli("faults", f"damaged index: {args[0]}", broken, *args)
    # a read-only library and a full disk, where this machine lets us mount
    ro = tmp / "ro"
    ro.mkdir()
    if _mount("--bind", lib, ro):
        try:
            if _mount("-o", "remount,ro,bind", ro):
                for args in (["list"], ["smooth", "demo"], ["tag", "demo", "x"], ["rm", "demo@1"], ["reindex"],
                             ["render", "-m", "demo", "-i", "astronaut"], ["doctor"]):
                    doors.cli("faults", f"read-only: {args[0]}", ro, *args, reports=args[0] == "doctor")
        finally:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)
    disk = tmp / "disk"
    disk.mkdir()
    if _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", disk):
        try:
            full = shutil.copytree(lib, disk / "lib")
            for args in (["smooth", "demo"], ["tag", "demo", "x"], ["rename", "demo", "d2"],
                         ["import", tmp / "good.json", "-f", "openpose-json", "--name", "more"]):
                with open(disk / "filler", "wb") as f:
                    f.write(b"\0" * shutil.disk_usage(disk).free)
                doors.cli("faults", f"full disk: {args[0]}", full, *args)
                (disk / "filler").unlink()
        finally:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def main() -> None:
    verbose = "-v" in sys.argv[1:]
    results = run(verbose)
    print(f"{'door':<22} {'cases':>5} {'refused':>8} {'usable':>7} {'traceback':>10} {'hang':>5} {'changed':>8}")
    total = {k: 0 for k in OUTCOMES}
    for door, o in results.items():
        n = sum(len(o[k]) for k in ("refused", "usable", "traceback", "hang"))
        for k in OUTCOMES:
            total[k] += len(o[k])
        print(f"{door:<22} {n:>5} {len(o['refused']):>8} {len(o['usable']):>7} {len(o['traceback']):>10} "
              f"{len(o['hang']):>5} {len(o['changed']):>8}")
        for t in o["traceback"] + [f"hang: {h}" for h in o["hang"]] + [f"changed: {c}" for c in o["changed"]]:
            print(f"  ! {t}")
        if verbose:
            print(f"  usable: {', '.join(o['usable'])}")
    n = total["refused"] + total["usable"] + total["traceback"] + total["hang"]
    print(f"{'all doors':<22} {n:>5} {total['refused']:>8} {total['usable']:>7} {total['traceback']:>10} "
          f"{total['hang']:>5} {total['changed']:>8}")
    if total["traceback"] or total["hang"] or total["changed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
