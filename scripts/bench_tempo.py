#!/usr/bin/env python3
"""Tempo on clips with a known beat (issue 19): the error in BPM, and what measuring costs.

* audio  - a metronome (30 ms 1 kHz clicks) at each of --bpm muxed under the first 4 s of the
           sample clip's real frames (H.264 + AAC, 48 kHz), clean and with white noise 20 dB
           under the clicks' peak: measured BPM, its error, the worst beat's distance to its click
* motion - the sample's real jumping jack (its first 3 s, one repetition cut out by `loop`),
           repeated 8 times and retimed so that one repetition lasts each of --periods seconds:
           measured cycle and BPM against 60 x (beats a cycle) / period
* cost   - the tempo's share of `ingest` on the metronome clip; from_audio on a --long-minute
           track and from_motion on a --long-minute motion (30 fps)

Usage: .venv/bin/python scripts/bench_tempo.py [--bpm 60 90 120 143 180] [--periods 0.75 1 1.5 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bpm", type=float, nargs="+", default=[60, 75, 90, 120, 143, 180, 200])
    ap.add_argument("--periods", type=float, nargs="+", default=[0.75, 1.0, 1.2, 1.5, 2.0])
    ap.add_argument("--long", type=float, default=10.0, help="minutes of the long audio track and motion")
    args = ap.parse_args()

    from motionlib.library import Library
    from motionlib.ingest import tempo as clip_tempo
    from motionlib.processing import ops, tempo
    from tests.conftest import SAMPLE, read_frames
    from tests.test_beats import RATE, _tile, beat_errors, metronome, write_with_audio

    frames = read_frames(SAMPLE, count=120)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("audio: metronome under the sample's frames (4 s)")
        print(f"  {'BPM':>6} {'noise':>6} {'measured':>9} {'error':>7} {'worst beat':>10} {'conf':>5}")
        small = [f[::2, ::2].copy() for f in frames]
        for bpm in args.bpm:
            for noisy in (False, True):
                samples, clicks = metronome(4.0, bpm)
                if noisy:
                    samples = samples + rng.normal(0, 0.05, samples.size).astype(np.float32)
                clip = write_with_audio(tmp / f"m{bpm}{noisy}.mp4", small, samples)
                got, why = clip_tempo.from_audio(clip, 0.0, 4.0)
                if got is None:
                    print(f"  {bpm:6g} {'-20dB' if noisy else '-':>6} {'none':>9}  ({why})")
                    continue
                worst = beat_errors(got.beats, clicks).max() * 1000
                print(f"  {bpm:6g} {'-20dB' if noisy else '-':>6} {got.bpm:9.3f} {got.bpm - bpm:+7.3f} "
                      f"{worst:8.1f}ms {got.confidence:5.2f}")

        print("motion: the sample's jumping jack, repeated and retimed to a known period")
        lib_dir = tmp / "lib"
        with Library(lib_dir) as lib:
            rec = lib.ingest(SAMPLE, name="demo", options=_options(end=3.0)).record
            first = lib.load(rec.ref)
        cut = ops.loop(first, min_length=0.8, max_length=2.0).motion
        print(f"  one repetition: {cut.duration:.3f}s of the clip ({cut.frames} frames)")
        print(f"  {'period':>7} {'cycle':>8} {'error':>7} {'BPM':>8} {'beats/cycle':>11} {'BPM error':>9}")
        for period in args.periods:
            m = ops.retime(_tile(cut, 8), speed=cut.duration / period).motion
            got = tempo.from_motion(m)
            if got is None:
                print(f"  {period:7.2f} none")
                continue
            k = round(got.bpm * (got.cycle or period) / 60)
            want = 60 * k / period
            print(f"  {period:7.2f} {got.cycle or float('nan'):8.4f} {((got.cycle or np.nan) / period - 1) * 100:+6.2f}% "
                  f"{got.bpm:8.2f} {k:11d} {(got.bpm / want - 1) * 100:+8.2f}%")

        print("cost")
        samples, _ = metronome(4.0, 120)
        clip = write_with_audio(tmp / "metro.mp4", frames, samples)
        with Library(lib_dir) as lib:
            r = lib.ingest(clip, name="metro")
        s = r.stats
        print(f"  ingest of the 4 s metronome clip: tempo {s['seconds_tempo']:.3f}s of {s['seconds_ingest']:.2f}s "
              f"({100 * s['seconds_tempo'] / s['seconds_ingest']:.1f}%)")
        minutes = args.long
        long_audio = tmp / "long.m4a"
        _long_track(long_audio, minutes, RATE)
        t = time.perf_counter()
        got, _ = clip_tempo.from_audio(long_audio)
        print(f"  from_audio, {minutes:g} min track: {time.perf_counter() - t:.2f}s ({got.bpm:.3f} BPM, "
              f"{len(got.beats)} beats)")
        from tests.test_ops import make_motion

        m = make_motion(T=int(minutes * 60 * 30), wave_hz=1.0, wave_px=40, noise=1.0, seed=1)
        t = time.perf_counter()
        got = tempo.from_motion(m)
        print(f"  from_motion, {minutes:g} min at 30 fps: {time.perf_counter() - t:.2f}s ({got.bpm:.3f} BPM)")


def _options(**kw):
    from motionlib.ingest.pipeline import IngestOptions

    return IngestOptions(**kw)


def _long_track(path: Path, minutes: float, rate: int) -> None:
    """An audio-only AAC file: the 120 BPM metronome for ``minutes``, written in 10 s pieces."""
    import av

    from tests.test_beats import metronome

    piece, _ = metronome(10.0, 120, first=0.25)
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=rate)
        pts = 0
        for _ in range(int(minutes * 6)):
            for i in range(0, piece.size, 1024):
                f = av.AudioFrame.from_ndarray(piece[None, i : i + 1024], format="fltp", layout="mono")
                f.sample_rate = rate
                f.pts = pts
                pts += f.samples
                for p in a.encode(f):
                    out.mux(p)
        for p in a.encode():
            out.mux(p)


if __name__ == "__main__":
    main()
