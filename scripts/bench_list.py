#!/usr/bin/env python
"""Time and peak memory of the listings on a large library, beside the floor of the same run.

    .venv/bin/python scripts/bench_list.py                    # 100,000 versions in a temp library
    .venv/bin/python scripts/bench_list.py --versions 10000 --runs 5
    .venv/bin/python scripts/bench_list.py --library /path/to/lib

The library is bench_browse.py's: one real ingested version of the sample clip and N index rows
with random names, tags and scores. Each command runs as its own process (its peak RSS read from
wait4), the commands in turn, ``--runs`` times; medians are printed. The baseline is a minimal
script that reads the same rows with sqlite3 (all columns and the tags) and writes them with one
``json.dumps``: what any listing costs at least. Goals (issue 17): ``list --json`` within 2x of it,
the table within 4x, each under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

MINIMAL = r"""
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
cols = [r[1] for r in con.execute("PRAGMA table_info(motion)")]
sql = ("SELECT m.*, (SELECT group_concat(t.name, char(31)) FROM motion_tag mt JOIN tag t ON t.id = mt.tag_id "
       "WHERE mt.motion_id = m.id) FROM motion m ORDER BY m.name, m.version")
rows = [dict(zip(cols + ["tags"], r)) for r in con.execute(sql)]
sys.stdout.write(json.dumps(rows))
"""


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def measure(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process, its output thrown away."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()}")
    return time.perf_counter() - t, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--library", type=Path, help="use this library instead of building one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.library or Path(tmp) / "lib"
        if args.library is None:
            import bench_browse

            t = time.perf_counter()
            bench_browse.build(root, args.versions)
            print(f"built a library of {args.versions:,} versions in {time.perf_counter() - t:.1f}s")
        lib = [python(), "-m", "motionlib", "--library", str(root)]
        subprocess.run(lib + ["list", "--limit", "1"], capture_output=True, check=True)  # migrate once
        cases = {
            "minimal sqlite3 + json.dumps (baseline)": [python(), "-c", MINIMAL, str(root / "index.sqlite")],
            "motionlib list --json": lib + ["list", "--json"],
            "motionlib list --jsonl": lib + ["list", "--jsonl"],
            "motionlib list (table)": lib + ["list"],
            "motionlib list --sort -score --limit 20": lib + ["list", "--sort", "-score", "--limit", "20"],
            "motionlib list tag:dance score>0.5 -tag:draft": lib + ["list", "tag:dance", "score>0.5", "-tag:draft"],
        }
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
        for _ in range(args.runs):
            for name, cmd in cases.items():
                got[name].append(measure(cmd))
        med = {k: (sorted(s for s, _ in v)[len(v) // 2], max(m for _, m in v)) for k, v in got.items()}
        base = med["minimal sqlite3 + json.dumps (baseline)"][0]
        goals = {"motionlib list --json": 2, "motionlib list (table)": 4}
        print(f"{'command':<48} {'time':>8} {'x base':>7} {'peak MB':>8}  goal")
        for name, (s, mb) in med.items():
            goal = f"<= {goals[name]}x, < 300 MB" if name in goals else ""
            print(f"{name:<48} {s:>7.2f}s {s / base:>6.2f}x {mb:>8.0f}  {goal}")
        print(f"(medians of {args.runs} runs, the commands in turn; peak memory is the largest of the runs)")


if __name__ == "__main__":
    main()
