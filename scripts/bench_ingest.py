#!/usr/bin/env python3
"""Ingest speed: `motionlib ingest` of the sample clip beside the naive per-frame loop.

The naive loop is what tutorials show: cv2.VideoCapture on the full-size frames, BGR->RGB, and
MediaPipe Pose (model complexity 1, video mode) `process()` on every frame - no scoring, no storage.
Both run in fresh processes, alternately, several times in the same run; the medians are compared:

* end to end  - wall time of the whole process (interpreter start and imports included)
* in-process  - the naive loop from Pose() creation to its last frame, against Library.ingest()
                (hashing, decoding, pose estimation, scoring, Zarr write and index commit)

With ``--clips N`` it measures many clips instead: N clips of 4 seconds cut from the sample (at
different starts), ingested by one ``motionlib ingest c1 .. cN`` (clips in parallel worker
processes, ``--jobs``), beside the naive loop run on each clip in turn (a process each, as a script
looping over files would). Goal (issue 17): >= 1.7x on 2 cores with 4 clips.

Usage: .venv/bin/python scripts/bench_ingest.py [--runs 3] [--clip PATH] [--workers N]
       .venv/bin/python scripts/bench_ingest.py --clips 4 [--jobs N] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

NAIVE = r"""
import sys, time
import cv2
import mediapipe as mp
t0 = time.perf_counter()
pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1)
cap = cv2.VideoCapture(sys.argv[1])
n = 0
while True:
    ok, frame = cap.read()
    if not ok:
        break
    pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    n += 1
print(n, time.perf_counter() - t0)
"""


def run_naive(clip: Path) -> tuple[int, float, float]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", NAIVE, str(clip)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"naive loop failed:\n{proc.stderr[-2000:]}")
    frames, loop = proc.stdout.split()
    return int(frames), float(loop), wall


def run_ingest(clip: Path, workers: int | None) -> tuple[int, float, float, dict]:
    with tempfile.TemporaryDirectory() as lib:
        cmd = [sys.executable, "-m", "motionlib", "--library", lib, "ingest", str(clip), "--json", "--quiet"]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"motionlib ingest failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)[0]
    return result["record"]["frames"], result["stats"]["seconds_ingest"], wall, result["stats"]


def make_clips(src: Path, n: int, seconds: float, out_dir: Path) -> list[Path]:
    """``n`` clips of ``seconds`` from ``src``, starting at spread-out times (H.264, as recorded)."""
    import av

    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    length = int(round(seconds * fps))
    starts = [round(k * (len(frames) - length) / max(1, n - 1)) for k in range(n)]
    clips = []
    for k, s0 in enumerate(starts):
        path = out_dir / f"clip{k + 1}.mp4"
        with av.open(str(path), "w") as out:
            st = out.add_stream("libx264", rate=round(fps))
            st.height, st.width = frames[0].shape[:2]
            st.pix_fmt = "yuv420p"
            st.options = {"preset": "veryfast", "crf": "20"}
            for img in frames[s0:s0 + length]:
                for p in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(p)
            for p in st.encode():
                out.mux(p)
        clips.append(path)
    return clips


def many_clips(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(args.clip, args.clips, 4.0, Path(tmp))
        naive, ours = [], []
        for i in range(args.runs):
            t = time.perf_counter()
            frames = sum(run_naive(c)[0] for c in clips)
            naive.append(time.perf_counter() - t)
            with tempfile.TemporaryDirectory() as lib:
                cmd = [sys.executable, "-m", "motionlib", "--library", lib, "ingest", *map(str, clips), "--json", "--quiet"]
                if args.jobs is not None:
                    cmd += ["--jobs", str(args.jobs)]
                t = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True)
                ours.append(time.perf_counter() - t)
                if proc.returncode != 0:
                    sys.exit(f"motionlib ingest failed:\n{proc.stderr[-2000:]}")
                stored = sum(r["record"]["frames"] for r in json.loads(proc.stdout))
            print(f"run {i + 1}: naive loop on each clip in turn {naive[-1]:.2f}s   one motionlib ingest {ours[-1]:.2f}s",
                  flush=True)
        n, o = statistics.median(naive), statistics.median(ours)
        print(f"\n{len(clips)} clips of 4 s ({frames} frames; {stored} stored), {os.cpu_count()} CPUs, "
              f"jobs {args.jobs if args.jobs is not None else 'default (one per core)'}")
        print(f"naive loop, each clip in turn: {n:.2f}s ({frames / n:.1f} f/s)")
        print(f"one motionlib ingest:          {o:.2f}s ({frames / o:.1f} f/s)  -> {n / o:.2f}x   goal: >= 1.70x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clip", type=Path, default=ROOT / "assets" / "samples" / "demo.mp4")
    ap.add_argument("--workers", type=int, default=None, help="passed to motionlib ingest")
    ap.add_argument("--clips", type=int, default=0, help="measure N clips of 4 s in one ingest instead")
    ap.add_argument("--jobs", type=int, default=None, help="with --clips: passed to motionlib ingest")
    args = ap.parse_args()
    if not args.clip.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_samples.py")], check=True)
    if args.clips:
        many_clips(args)
        return
    naive, ours = [], []
    for i in range(args.runs):
        naive.append(run_naive(args.clip))
        ours.append(run_ingest(args.clip, args.workers))
        print(f"run {i + 1}: naive loop {naive[-1][1]:.2f}s (process {naive[-1][2]:.2f}s)   "
              f"motionlib ingest {ours[-1][1]:.2f}s (process {ours[-1][2]:.2f}s)", flush=True)
    frames = naive[0][0]
    n_loop = statistics.median(r[1] for r in naive)
    n_wall = statistics.median(r[2] for r in naive)
    o_in = statistics.median(r[1] for r in ours)
    o_wall = statistics.median(r[2] for r in ours)
    print(f"\nclip: {args.clip.name}, {frames} frames, {os.cpu_count()} CPUs, workers {ours[0][3].get('workers')}")
    print(f"{'':14}{'naive loop':>14}{'motionlib':>14}{'ratio':>8}")
    print(f"{'in-process':14}{frames / n_loop:>10.1f} f/s{frames / o_in:>10.1f} f/s{n_loop / o_in:>7.2f}x")
    print(f"{'end to end':14}{frames / n_wall:>10.1f} f/s{frames / o_wall:>10.1f} f/s{n_wall / o_wall:>7.2f}x")
    print("goal: >= 1.30x end to end")


if __name__ == "__main__":
    main()
