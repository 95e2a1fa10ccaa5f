#!/usr/bin/env python
"""Render every diffusion backend through ``motionlib render``, as a user runs it, and print what
each record says (status, device, precision, seconds). A check of the whole render path - library
record, retarget, backend, encode - on whatever machine this runs on (on a GPU: device auto).

* tiny checkpoints (tests/tiny_models.py), 2 steps: controlnet and animatediff at 64 px,
  wan-animate and wan-animate-2 at 32 px (wan-animate-2 needs a motion on its kept source clip);
* ``--full``: also a full-size random SD 1.5 + OpenPose ControlNet + IP-Adapter ``controlnet``
  render at 512 px, 20 steps (weights built as scripts/bench_render.py builds them; GPU only).

    python scripts/render_check.py --library LIB --motion clip --identity astronaut [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

SIZES = {"controlnet": 64, "animatediff": 64, "wan-animate": 32, "wan-animate-2": 32}


def render(library: str, motion: str, identity: str, backend: str, size: int, steps: int, config: Path,
           out: Path) -> dict:
    cmd = [sys.executable, "-m", "motionlib", "--library", library, "render", "-m", motion, "-i", identity,
           "-b", backend, "--size", str(size), "--steps", str(steps), "--seed", "1", "--models-config",
           str(config), "-o", str(out), "--json"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    wall = time.perf_counter() - t
    try:
        rec = json.loads(proc.stdout)[0]
    except (ValueError, IndexError):
        return {"backend": backend, "status": f"exit {proc.returncode}", "error": proc.stderr.strip()[-300:],
                "wall_s": round(wall, 1)}
    rt = rec["params"].get("result", {}).get("backend_report", {}).get("runtime", {})
    return {"backend": backend, "size": size, "status": rec["status"], "device": rt.get("device"),
            "dtype": rt.get("dtype"), "offload": rt.get("offload"), "frames": rec["params"].get("result", {}).get("frames"),
            "render_s": rec["timings"].get("total"), "wall_s": round(wall, 1), "error": rec.get("error")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--library", default=os.environ.get("MOTIONLIB_LIBRARY"), help="library holding the motion")
    ap.add_argument("--motion", default="clip")
    ap.add_argument("--identity", default="astronaut")
    ap.add_argument("--full", action="store_true", help="also a full-size controlnet render (GPU)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    if not args.library:
        ap.error("give --library (or set MOTIONLIB_LIBRARY)")
    from tiny_models import build_all

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = build_all(tmp / "tiny")
        for backend, size in SIZES.items():
            rows.append(render(args.library, args.motion, args.identity, backend, size, 2, config, tmp / f"{backend}.mp4"))
        if args.full:
            import torch
            from bench_render import build_full

            full = build_full(tmp / "full", torch.float16)
            row = render(args.library, args.motion, args.identity, "controlnet", 512, 20, full, tmp / "full.mp4")
            rows.append(dict(row, backend="controlnet (full size)"))
    cols = ("backend", "size", "status", "device", "dtype", "offload", "frames", "render_s", "wall_s")
    print("  ".join(f"{c:>22}" if c == "backend" else f"{c:>8}" for c in cols))
    for r in rows:
        print("  ".join(f"{str(r.get(c, '')):>22}" if c == "backend" else f"{str(r.get(c, '')):>8}" for c in cols))
        if r.get("error"):
            print(f"    error: {r['error']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    sys.exit(0 if all(r["status"] == "done" for r in rows) else 1)


if __name__ == "__main__":
    main()
