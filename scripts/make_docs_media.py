#!/usr/bin/env python
"""Remake the pictures and the short video under docs/ from a library made by scripts/demo.sh.

    .venv/bin/python scripts/make_docs_media.py [--library ./library]

docs/posemap-sample.png   one pose map of the sample clip (frame 100, 512x288)
docs/preview-sample.mp4   the sample clip's pose maps at its timing (384 px, H.264; no source pixels; git-ignored)
docs/render-sample.png    four frames of the pose render of the sample's loop onto the astronaut
docs/browse.svg           the browser with the sample selected (scripts/bench_browse.py)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, default=Path(os.environ.get("MOTIONLIB_LIBRARY", ROOT / "library")))
    args = ap.parse_args()
    import av
    import cv2
    import numpy as np

    from motionlib.library import Library
    from motionlib.render.posemap import pose_maps

    py = sys.executable
    ml = [py, "-m", "motionlib", "--library", str(args.library)]
    docs = ROOT / "docs"
    lib = Library(args.library)
    m = lib.load("sample-demo@1")
    maps = list(pose_maps(m, 512, 288))
    cv2.imwrite(str(docs / "posemap-sample.png"), cv2.cvtColor(maps[100], cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    # pose maps only: no frames of the sample clip go into the repository
    subprocess.run(ml + ["preview", "sample-demo@1", "--size", "384", "-o", str(docs / "preview-sample.mp4")],
                   check=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.mp4"
        subprocess.run(ml + ["render", "-m", "sample-demo-loop@1", "-i", "astronaut", "--size", "256",
                             "--seed", "1", "-o", str(out), "--quiet"], check=True)
        with av.open(str(out)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    picks = [frames[i] for i in np.linspace(0, len(frames) - 1, 4).round().astype(int)]
    grid = np.concatenate([np.concatenate(picks[:2], axis=1), np.concatenate(picks[2:], axis=1)], axis=0)
    cv2.imwrite(str(docs / "render-sample.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    subprocess.run([py, str(ROOT / "scripts" / "bench_browse.py"), "--screenshot", str(docs / "browse.svg"),
                    "--library", str(args.library)], check=True)
    print("wrote docs/posemap-sample.png, preview-sample.mp4, render-sample.png, browse.svg")


if __name__ == "__main__":
    main()
