#!/usr/bin/env python3
"""Motion fidelity: what ingest's cleaning (motionlib/processing/cleaning.py) does to real tracks,
each figure beside its baseline from the same run (the estimator's raw track).

1. swaps injected into real tracks (body, arms, legs; 1 to 30 frames): share repaired; and on four
   calibrated views of one performer, per part, the swaps the 3D reconstruction finds in the raw
   tracks that cleaning repaired, and the repairs it does not confirm (false);
2. the sample (and a Pose2Sim view) stored rotated 90/180/270 and re-encoded (another bitrate and
   container): p90 joint distance to the original at joints confident in both;
3. single-performer clips with fast motion: false track breaks (other person, jump cuts); a clip
   spliced from two performers: the switch caught; a jump cut in a static scene;
4. the first frame where the sample's performer is found, with and without the backward pass;
5. the calibrated views' p90 reprojection error against one triangulated body, raw and cleaned;
6. ingest speed against the naive loop (scripts/bench_ingest.py).

Needs the samples (scripts/fetch_samples.py --pose2sim, run for you). Takes ~3 min on 2 cores.
Usage: .venv/bin/python scripts/bench_fidelity.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "assets" / "samples"

from motionlib.core.skeleton import MEDIAPIPE_POSE_33 as SK  # noqa: E402
from motionlib.ingest.pipeline import IngestOptions, analyze  # noqa: E402
from motionlib.processing.cleaning import clean  # noqa: E402

BODY = list(SK.body)
GROUPS = {"body": [(11, 12), (23, 24)], "arms": [(13, 14), (15, 16)], "legs": [(25, 26), (27, 28)]}  # judged pairs
NAMES = SK.joint_names
PARTS = {
    "body": [p for p in SK.mirror_pairs],
    "arms": [p for p in SK.mirror_pairs if NAMES[p[0]][5:] in ("elbow", "wrist", "pinky", "index", "thumb")],
    "legs": [p for p in SK.mirror_pairs if NAMES[p[0]][5:] in ("knee", "ankle", "heel", "foot_index")],
}


# ----------------------------------------------------------------------------- clips
def frames_of(path: Path, count: int | None = None, scale: int = 1, start: int = 0) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i < start:
                continue
            if count is not None and len(out) >= count:
                break
            w, h = f.width // scale // 2 * 2, f.height // scale // 2 * 2
            out.append(f.to_ndarray(width=w, height=h, format="rgb24"))
    return out


def write(path: Path, frames, fps: float = 30, rotation: int = 0, crf: int = 18) -> Path:
    import av
    from fractions import Fraction

    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = {"preset": "veryfast", "crf": str(crf)}
        if rotation:
            s.set_display_rotation(rotation)
        for img in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def ingest(path: Path, **kw):
    """(cleaned Motion, raw Motion, cleaning report, all cuts, scores) as `motionlib ingest`
    stores them; scores = {"clean": (overall, jitter), "raw": (overall, jitter) of the raw track}."""
    from motionlib.processing.quality import assess_motion

    a = analyze(path, IngestOptions(workers=1, **kw))
    raw_q = assess_motion(a.raw, track={}, cuts=a.quality.details["framing"]["cuts"])
    scores = {"clean": (a.quality.overall, a.quality.scores["jitter"]), "raw": (raw_q.overall, raw_q.scores["jitter"])}
    return a.motion, a.raw, a.track, a.quality.details["framing"]["cuts"], scores


def fps_of(path: Path) -> float:
    from motionlib.media.video import probe

    return probe(path).average_fps or 30.0


# ----------------------------------------------------------------------------- 1. swaps
def inject_swaps(bases: dict, rng: np.random.Generator, trials: int) -> dict:
    out = {}
    for part in PARTS:
        for length in (1, 4, 12, 30):
            injected = repaired = 0
            for name, m in bases.items():
                kp, conf, ts = m.keypoints, m.confidence, m.timestamps
                torso = np.linalg.norm((kp[:, 11] + kp[:, 12]) / 2 - (kp[:, 23] + kp[:, 24]) / 2, axis=1)
                sep = np.mean([np.linalg.norm(kp[:, a] - kp[:, b], axis=1) for a, b in GROUPS[part]], axis=0) / torso
                ok = np.isfinite(sep) & (sep > 0.25)  # where left and right are apart, a swap matters
                starts = [s for s in range(0, len(ts) - length) if ok[s:s + length].all()]
                for s in rng.choice(starts, size=min(trials, len(starts)), replace=False) if starts else []:
                    bad_kp, bad_conf = kp.copy(), conf.copy()
                    frames = np.arange(s, s + length)
                    for a, b in PARTS[part]:
                        bad_kp[frames, a], bad_kp[frames, b] = kp[frames, b], kp[frames, a]
                        bad_conf[frames, a], bad_conf[frames, b] = conf[frames, b], conf[frames, a]
                    got = clean(bad_kp, bad_conf, ts, m.duration, SK).keypoints
                    for f in frames:
                        injected += 1
                        right = all(
                            np.linalg.norm(got[f, a] - kp[f, a]) < np.linalg.norm(got[f, a] - kp[f, b])
                            for a, b in GROUPS[part]
                        )
                        repaired += bool(right)
            out[f"{part} x{length}"] = (repaired, injected)
    return out


# ----------------------------------------------------------------------------- calibration
def read_qca(path: Path) -> list[dict]:
    """Cameras of a Qualisys .qca.txt calibration: K, distortion, world->camera R, T (metres)."""
    cams = []
    for cam in ET.parse(path).getroot().findall("cameras/camera"):
        fov, it, tr = cam.find("fov_video").attrib, cam.find("intrinsic").attrib, cam.find("transform").attrib
        K = np.array([[float(it["focalLengthU"]) / 64, 0, float(it["centerPointU"]) / 64 - float(fov["left"])],
                      [0, float(it["focalLengthV"]) / 64, float(it["centerPointV"]) / 64 - float(fov["top"])],
                      [0, 0, 1]])
        D = np.array([float(it[k]) / 64 for k in ("radialDistortion1", "radialDistortion2",
                                                   "tangentalDistortion1", "tangentalDistortion2")])
        R = np.array([float(tr[f"r{i}{j}"]) for i in (1, 2, 3) for j in (1, 2, 3)]).reshape(3, 3).T
        T = np.array([float(tr[k]) for k in "xyz"]) / 1000
        flip = np.diag([1.0, -1.0, -1.0])  # Qualisys looks down its camera's -z
        cams.append({"K": K, "D": D, "R": flip @ R.T, "T": flip @ (-R.T @ T)})
    return cams


def reprojection_errors(cams, kps, confs, min_conf=0.5) -> np.ndarray:
    """[V, T, J] pixel error of each view against the body triangulated from the pair of views
    that best agrees with all (least median error); NaN where fewer than 3 views are confident."""
    import cv2

    V, (T, J) = len(cams), kps[0].shape[:2]
    err = np.full((V, T, J), np.nan)
    norm = [cv2.undistortPoints(k.reshape(-1, 1, 2).astype(np.float64), c["K"], c["D"]).reshape(T, J, 2)
            for c, k in zip(cams, kps)]
    rvecs = [cv2.Rodrigues(c["R"])[0] for c in cams]
    P = [np.hstack([c["R"], c["T"][:, None]]) for c in cams]
    for t in range(T):
        for j in range(J):
            ok = [v for v in range(V) if confs[v][t, j] >= min_conf and np.isfinite(kps[v][t, j]).all()]
            if len(ok) < 3:
                continue
            best = None
            for a, b in itertools.combinations(ok, 2):
                A = np.stack([norm[a][t, j, 0] * P[a][2] - P[a][0], norm[a][t, j, 1] * P[a][2] - P[a][1],
                              norm[b][t, j, 0] * P[b][2] - P[b][0], norm[b][t, j, 1] * P[b][2] - P[b][1]])
                X = np.linalg.svd(A)[2][-1]
                X = X[:3] / X[3]
                e = np.array([np.linalg.norm(cv2.projectPoints(X[None], rvecs[v], cams[v]["T"], cams[v]["K"],
                                                               cams[v]["D"])[0].ravel() - kps[v][t, j]) for v in ok])
                if best is None or np.median(e) < best[0]:
                    best = (np.median(e), e)
            for v, e in zip(ok, best[1]):
                err[v, t, j] = e
    return err


def swapped_in_3d(cams, kps, confs) -> dict[str, list[np.ndarray]]:
    """Per part (torso, arms, legs) and view, [T] bool: frames whose part the 3D reconstruction
    from all views fits far better (half the median reprojection error) with left and right
    swapped in that view."""
    import warnings

    joints = [j for pairs in GROUPS.values() for p in pairs for j in p]
    col = {j: k for k, j in enumerate(joints)}
    base = reprojection_errors(cams, [k[:, joints] for k in kps], [c[:, joints] for c in confs])
    out: dict[str, list[np.ndarray]] = {}
    for part, pairs in GROUPS.items():
        mine = [col[j] for p in pairs for j in p]
        flip = list(range(len(joints)))
        for a, b in pairs:
            flip[col[a]], flip[col[b]] = col[b], col[a]
        out[part] = []
        for v in range(len(cams)):
            k2 = [k[:, joints] for k in kps]
            c2 = [c[:, joints] for c in confs]
            k2[v], c2[v] = k2[v][:, flip], c2[v][:, flip]
            sw = reprojection_errors(cams, k2, c2)[v]
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[part].append(np.nanmedian(sw[:, mine], axis=1) < 0.5 * np.nanmedian(base[v][:, mine], axis=1))
    return out


def net_swaps(track: dict, T: int) -> dict[str, np.ndarray]:
    """Per part, [T] bool: frames where the stored labels differ from the raw ones (a body swap
    moves arms and legs too; an arm or leg repair after it moves them back)."""
    got = {p: np.zeros(T, bool) for p in GROUPS}
    for s in track["swaps"]:
        got[s["part"]][s["start_frame"]:min(s["end_frame"], T)] = True
    return {"body": got["body"], "arms": got["body"] ^ got["arms"], "legs": got["body"] ^ got["legs"]}


# ----------------------------------------------------------------------------- helpers
def p90_to(a, b, joints=None) -> tuple[float, float]:
    """p90 and max distance (px) between two motions' joints confident in both."""
    joints = BODY if joints is None else joints
    ka, ca, kb, cb = a.keypoints[:, joints], a.confidence[:, joints], b.keypoints[:, joints], b.confidence[:, joints]
    T = min(len(ka), len(kb))
    ok = (ca[:T] >= 0.5) & (cb[:T] >= 0.5)
    d = np.linalg.norm(ka[:T] - kb[:T], axis=2)[ok]
    return float(np.percentile(d, 90)), float(d.max())


def breaks_of(track: dict) -> int:
    return len([r for r in track.get("rejected", []) if r["reason"] == "other person"]) + len(track.get("jump_cuts", []))


def row(label: str, value: str, baseline: str, goal: str = "") -> None:
    print(f"  {label:<46} {value:>16}   baseline {baseline:<16} {goal}")


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer injected swaps, no speed run")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_samples.py"), "--pose2sim"], check=True,
                   stdout=subprocess.DEVNULL)
    demo = SAMPLES / "demo.mp4"
    views = [SAMPLES / "pose2sim" / "single" / f"cam0{k}.mp4" for k in range(1, 5)]
    figures: dict = {}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        print("ingesting the sample and four calibrated views ...", flush=True)
        runs = {p.stem: ingest(p) for p in [demo] + views}

        # 1. swaps
        print("\n1. left/right swaps")
        bases = {k: runs[k][0] for k in ("cam01", "cam03", "cam04", "demo")}
        inj = inject_swaps(bases, rng, 3 if args.quick else 8)
        total = [sum(v[0] for v in inj.values()), sum(v[1] for v in inj.values())]
        for key, (rep, n) in inj.items():
            row(f"injected {key} frames repaired", f"{rep}/{n}", "0 (raw keeps them)")
        row("injected swaps repaired, all", f"{100 * total[0] / max(total[1], 1):.1f} %", "0 %", "goal >= 95 %")
        figures["swaps_repaired"] = total
        cams = read_qca(SAMPLES / "pose2sim" / "single" / "Calib.qca.txt")
        T = min(runs[p.stem][1].frames for p in views)
        raw_kp = [runs[p.stem][1].keypoints[:T] for p in views]
        raw_cf = [runs[p.stem][1].confidence[:T] for p in views]
        truth = swapped_in_3d(cams, raw_kp, raw_cf)
        figures["real_swaps"], figures["false_repairs"] = {}, {}
        for part in GROUPS:
            false = caught = real = frames = 0
            for v, p in enumerate(views):
                fixed = net_swaps(runs[p.stem][2], T)[part]
                sw = truth[part][v]
                false += int((fixed & ~sw).sum())
                caught += int((fixed & sw).sum())
                real += int(sw.sum())
                frames += T
            row(f"real {part} swaps (3D says) repaired", f"{caught}/{real}", "0")
            row(f"{part} repairs the 3D body does not confirm", f"{100 * false / frames:.2f} % of frames", "-",
                "goal <= 1 %")
            figures["real_swaps"][part] = [caught, real]
            figures["false_repairs"][part] = [false, frames]

        # 2. equivalent inputs
        print("\n2. equivalent inputs: p90 / max joint distance to the original (px, joints confident in both);"
              "\n   core = nose, shoulders, elbows, wrists, hips, knees, ankles (no hand or foot tips)")
        full = frames_of(demo)
        variants = {
            "rotated 90": write(tmp / "r90.mp4", [np.rot90(f, -1) for f in full], rotation=90),
            "rotated 180": write(tmp / "r180.mp4", [np.rot90(f, 2) for f in full], rotation=180),
            "rotated 270": write(tmp / "r270.mp4", [np.rot90(f, 1) for f in full], rotation=270),
            "re-encoded crf 30, mkv": write(tmp / "crf30.mkv", full, crf=30),
        }
        cam = frames_of(views[0])
        variants["cam01 rotated 90"] = write(tmp / "c90.mp4", [np.rot90(f, -1) for f in cam], fps=60, rotation=90)
        figures["equivalent"] = {}
        for label, path in variants.items():
            orig = runs["cam01" if label.startswith("cam01") else "demo"]
            got = ingest(path)
            p_clean, m_clean = p90_to(orig[0], got[0])
            p_raw, m_raw = p90_to(orig[1], got[1])
            c_clean, _ = p90_to(orig[0], got[0], list(SK.core))
            c_raw, _ = p90_to(orig[1], got[1], list(SK.core))
            row(label, f"{p_clean:5.1f} / {m_clean:4.0f}", f"{p_raw:5.1f} / {m_raw:4.0f}", "goal p90 <= 5 px")
            row(f"{label}, core joints", f"{c_clean:5.1f}", f"{c_raw:5.1f}")
            (o0, j0), (o1, j1) = orig[4]["clean"], got[4]["clean"]
            (r0, k0), (r1, k1) = orig[4]["raw"], got[4]["raw"]
            row(f"{label}, overall / jitter score change", f"{abs(o1 - o0):.2f} / {abs(j1 - j0):.2f}",
                f"{abs(r1 - r0):.2f} / {abs(k1 - k0):.2f}")
            figures["equivalent"][label] = {"p90": [p_clean, p_raw], "core_p90": [c_clean, c_raw],
                                            "score_change": [abs(o1 - o0), abs(r1 - r0)]}

        # 3. breaks
        print("\n3. track breaks")
        fast = {"cam0%d" % k: runs["cam0%d" % k] for k in range(1, 5)}
        fast["demo 0-3.3 s, half size"] = ingest(write(tmp / "cut.mp4", frames_of(demo, 100, scale=2)))
        false_breaks = 0
        for label, (_, _, track, _, _) in fast.items():
            n = breaks_of(track)
            false_breaks += n
            row(f"false breaks, one performer: {label}", str(n), "-", "goal 0")
        figures["false_breaks"] = false_breaks
        # two performers: the sample's, then the calibrated views' (letterboxed into the same size)
        one = frames_of(demo, 60, scale=2)
        h, w = one[0].shape[:2]
        two = []
        for f in frames_of(views[0], 40, scale=4):
            canvas = np.zeros((h, w, 3), np.uint8)
            f = f[: h, :]
            canvas[: f.shape[0], (w - f.shape[1]) // 2:(w - f.shape[1]) // 2 + f.shape[1]] = f
            two.append(canvas)
        _, _, track, _, _ = ingest(write(tmp / "splice.mp4", one + two))
        other = [r for r in track["rejected"] if r["reason"] == "other person"]
        caught = sum(r["frames"] for r in other if r["start_frame"] >= 60)
        row("spliced performers: 2nd one's frames rejected", f"{caught}/40", "-",
            f"switch at frame 60; rejected spans {[(r['start_frame'], r['end_frame']) for r in other]}")
        figures["splice_rejected"] = [caught, 40]
        # a jump cut: the sample's performer, 0.33 s left out, same camera and background; the
        # body lands about a torso length away
        cut = frames_of(demo, 60, scale=2) + frames_of(demo, 40, scale=2, start=70)
        _, _, track, cuts, _ = ingest(write(tmp / "jumpcut.mp4", cut))
        found = [(c["time"], c.get("kind", "scene")) for c in cuts]
        err = min((abs(t - 2.0) for t, _ in found), default=None)
        row("jump cut in a static scene (at 2.000 s)", f"{found}", "-",
            "found within 0.1 s" if err is not None and err <= 0.1 else "NOT found within 0.1 s")
        figures["jump_cut"] = found
        # 4. first frame
        print("\n4. frames found on the sample")
        from motionlib.ingest.tracker import track as run_tracker
        from motionlib.media.video import probe

        info = probe(demo)
        fwd = run_tracker(info, IngestOptions().spec(), max_size=640, start=None, end=None, workers=1,
                          recover_missed=False)
        first_fwd = next(i for i, f in enumerate(fwd.frames) if f.pose is not None)
        stored = runs["demo"][0]
        first = int(np.flatnonzero(stored.detected)[0])
        row("first stored frame of the performer", str(first), f"{first_fwd} (forward pass)")
        row("frames with the performer", str(int(stored.detected.sum())),
            f"{sum(f.pose is not None for f in fwd.frames)} (forward, anyone)")
        figures["first_frame"] = [first, first_fwd]

        # 5. multi-camera agreement
        print("\n5. calibrated views against one triangulated body: p90 reprojection error (px)")
        body = [11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
        clean_kp = [runs[p.stem][0].keypoints[:T][:, body] for p in views]
        clean_cf = [runs[p.stem][0].confidence[:T][:, body] for p in views]
        e_raw = reprojection_errors(cams, [k[:, body] for k in raw_kp], [c[:, body] for c in raw_cf])
        e_clean = reprojection_errors(cams, clean_kp, clean_cf)
        figures["reprojection_p90"] = {}
        for v, p in enumerate(views):
            a, b = np.nanpercentile(e_clean[v], 90), np.nanpercentile(e_raw[v], 90)
            row(p.stem, f"{a:.1f}", f"{b:.1f}", "goal < 30 px")
            figures["reprojection_p90"][p.stem] = [float(a), float(b)]

    # 6. speed
    if not args.quick:
        print("\n6. ingest speed (scripts/bench_ingest.py --runs 3)", flush=True)
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_ingest.py"), "--runs", "3"],
                              capture_output=True, text=True)
        print("  " + "\n  ".join(proc.stdout.strip().splitlines()[-6:]))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=float))


if __name__ == "__main__":
    main()
