#!/usr/bin/env python
"""Similarity ("more like this") on real clips and their edits, and its speed at 10,000 motions.

    .venv/bin/python scripts/bench_similar.py [--window 0.8] [--versions 10000]

Recall: the real clips (the Sports2D demo and Pose2Sim's two performances seen by four cameras
each; `scripts/fetch_samples.py --pose2sim`) are ingested, cut into windows of ``--window``
seconds - each window an *original* - and every original gets five copies made by the library's
own edits: mirrored, 1.25x faster, 0.8x slower at 24 fps, trimmed to its middle 70 %, smoothed.
Each copy asks for its nearest motion among the originals (itself and the other copies left out);
recall@1 is how often that is its source (goal >= 0.95). Beside it, the same among everything
(a hit when the nearest is the source or another copy of it), and the similarity of copies to
their source against that of the nearest unrelated original.

Speed: an index of ``--versions`` versions (bench_browse.py's builder) whose descriptors are the
real ones with noise; the time of ``Library.similar(ref, 10)`` (median of 20) and of the whole
``motionlib similar`` process (goal: top 10 among 10,000 under 200 ms).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from motionlib.library import Library  # noqa: E402
from motionlib.processing import ops  # noqa: E402

SAMPLES = ROOT / "assets" / "samples"
CLIPS = [SAMPLES / "demo.mp4"] + [SAMPLES / "pose2sim" / kind / f"cam0{k}.mp4" for kind in ("single", "multi")
                                  for k in range(1, 5)]
COPIES = {
    "mirrored": ops.mirror,
    "faster": lambda m: ops.retime(m, speed=1.25),
    "slower-24fps": lambda m: ops.retime(m, speed=0.8, fps=24.0),
    "trimmed": lambda m: ops.trim(m, 0.15 * m.duration, 0.85 * m.duration),
    "smoothed": ops.smooth,
}


def recall(window: float, keep: Path | None = None) -> dict:
    if not all(c.exists() for c in CLIPS):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_samples.py"), "--pose2sim"], check=True)
    with tempfile.TemporaryDirectory() as tmp, Library(keep or Path(tmp) / "lib") as lib:
        t = time.perf_counter()
        names = []
        for clip in CLIPS:
            name = f"{clip.parent.name}-{clip.stem}" if clip.parent.name != "samples" else clip.stem
            lib.ingest(clip, name=name)
            names.append(name)
        print(f"ingested {len(names)} real clips in {time.perf_counter() - t:.0f}s")
        originals: list[str] = []
        for name in names:
            m = lib.load(name)
            for k in range(int(m.duration // window)):
                ref = lib.derive(name, lambda m, k=k: ops.trim(m, k * window, (k + 1) * window),
                                 name=f"{name}-w{k}").record.ref
                if _has_descriptor(lib, ref):
                    originals.append(ref)
        copies: dict[str, tuple[str, str]] = {}
        for ref in originals:
            for kind, edit in COPIES.items():
                try:
                    c = lib.derive(ref, edit, name=f"{ref.split('@')[0]}-{kind}").record.ref
                except Exception as err:  # noqa: BLE001 - a window too short for an edit is left out
                    print(f"  (no {kind} copy of {ref}: {err})")
                    continue
                if _has_descriptor(lib, c):
                    copies[c] = (ref, kind)
        print(f"{len(originals)} originals of {window:g}s, {len(copies)} copies")
        family = {c: src for c, (src, _) in copies.items()}
        hits, family_hits, per_kind = 0, 0, {k: [0, 0] for k in COPIES}
        own, other = [], []
        for c, (src, kind) in copies.items():
            found = lib.similar(c, top=len(originals) + len(copies))
            among = [(r.ref, s) for r, s in found if r.ref in set(originals)]
            best = among[0][0] if among else None
            hits += best == src
            per_kind[kind][0] += best == src
            per_kind[kind][1] += 1
            nearest_any = found[0][0].ref if found else None
            family_hits += nearest_any == src or family.get(nearest_any) == src
            own += [s for r, s in among if r == src]
            other += [next((s for r, s in among if r != src), float("nan"))]
        n = len(copies)
        return {"originals": len(originals), "copies": n, "recall_at_1": hits / n, "family_recall_at_1": family_hits / n,
                "per_kind": {k: f"{a}/{b}" for k, (a, b) in per_kind.items()},
                "similarity_to_source_median": float(np.median(own)),
                "similarity_to_nearest_other_median": float(np.nanmedian(other))}


def _has_descriptor(lib: Library, ref: str) -> bool:
    from motionlib.processing import similarity

    with lib.index.reader() as r:
        return r.descriptor(lib.get(ref).id, similarity.VERSION) is not None


def speed(versions: int) -> dict:
    import bench_browse

    from motionlib.processing import similarity

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lib"
        bench_browse.build(root, versions)
        with Library(root) as lib:  # migrates the builder's index
            base = lib.get("sample-demo")  # the builder's one ingested version
            with lib.index.reader() as r:
                vec = similarity.from_blobs([r.descriptor(base.id, similarity.VERSION)])[0]
            ids = [rec.id for rec in lib.iter_list()]
        rng = np.random.default_rng(0)
        con = sqlite3.connect(root / "index.sqlite")
        with con:
            con.executemany("INSERT OR REPLACE INTO motion_descriptor (motion_id, kind, vector) VALUES (?, ?, ?)",
                            [(i, similarity.VERSION, similarity.to_blob(
                                (lambda v: v / np.linalg.norm(v))(np.abs(vec + rng.normal(0, 0.05, vec.shape)))))
                             for i in ids])
        con.close()
        with Library(root) as lib:
            times = []
            for _ in range(20):
                t = time.perf_counter()
                top = lib.similar(base.ref, 10)
                times.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "motionlib", "--library", str(root), "similar", base.ref, "--json"],
                       check=True, capture_output=True)
        process = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "motionlib", "--library", str(root), "list", "--limit", "1"],
                       check=True, capture_output=True)
        baseline = time.perf_counter() - t
        return {"versions": len(ids), "top": len(top), "library_similar_ms": 1000 * statistics.median(times),
                "process_s": process, "list_limit_1_process_s": baseline}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=0.8)
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="build the recall library here (a new directory) and keep it")
    args = ap.parse_args()
    r = recall(args.window, args.keep)
    print(f"recall@1 of the copy's source among the originals: {r['recall_at_1']:.3f} "
          f"({r['copies']} copies of {r['originals']} originals)   goal >= 0.95")
    print(f"  per copy kind: {r['per_kind']}")
    print(f"  nearest among everything is the source or a sibling copy: {r['family_recall_at_1']:.3f}")
    print(f"  median similarity to the source {r['similarity_to_source_median']:.4f}, "
          f"to the nearest other original {r['similarity_to_nearest_other_median']:.4f}")
    s = speed(args.versions)
    print(f"top {s['top']} among {s['versions']:,}: Library.similar {s['library_similar_ms']:.0f} ms (median of 20)   "
          f"goal < 200 ms")
    print(f"  `motionlib similar --json` process {s['process_s']:.2f}s, beside `motionlib list --limit 1` "
          f"{s['list_limit_1_process_s']:.2f}s (start-up) in the same run")


if __name__ == "__main__":
    main()
