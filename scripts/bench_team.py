"""Several writers on one shared library (docs/team.md): a PostgreSQL server and an S3-compatible
server (moto) started here, then N processes each ingesting M spans of the sample clip into the
same motion name at once, through the command line as a user runs it.

Prints each writer's time beside the same ingests into a local library by one process (the
baseline, same run), then checks what the issue asks: every version present, numbers unique,
every version's data readable from the store, and `doctor` clean.

    .venv/bin/python scripts/bench_team.py [--writers 2] [--ingests 20] [--span 0.5]
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
sys.path.insert(0, str(ROOT / "tests"))
SAMPLE = ROOT / "assets" / "samples" / "demo.mp4"
PERFORMER_SECONDS = 4.8  # how long the sample shows its performer from the start


def writer_script(library: str, spans: list[tuple[float, float]], who: str) -> list[str]:
    """One writer: ingests of the sample's spans, one command each (as a user's script would)."""
    lines = [f"{sys.executable} -m motionlib --library '{library}' ingest {SAMPLE} --name shared "
             f"--start {a:.3f} --end {b:.3f} --tag {who} --json > /dev/null" for a, b in spans]
    return ["bash", "-ec", "\n".join(lines)]


def run_writers(library: str, writers: int, ingests: int, span: float) -> tuple[float, list[float]]:
    procs, starts = [], []
    t0 = time.perf_counter()
    for w in range(writers):
        # distinct spans for every ingest (the same span again would be a no-op, by design)
        # the sample's first `span` seconds and more, a little longer each time: every span starts
        # where the performer is found from a cold start (the first frames; mid-clip starts such as
        # 1.0 s find nobody there), and stays within the 4.8 s the performer is in view
        step = (PERFORMER_SECONDS - span) / (writers * ingests)
        spans = [(0.0, round(span + (w * ingests + i) * step, 3)) for i in range(ingests)]
        if step < 1 / 30:
            raise SystemExit("too many ingests for the sample's length: lower --ingests or --span")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        procs.append(subprocess.Popen(writer_script(library, spans, f"w{w}"), env=env, stderr=subprocess.PIPE,
                                      text=True))
        starts.append(time.perf_counter())
    times = []
    for p, s in zip(procs, starts):
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a writer failed: {err.strip()[-1500:]}")
        times.append(time.perf_counter() - s)
    return time.perf_counter() - t0, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--ingests", type=int, default=20)
    ap.add_argument("--span", type=float, default=0.5, help="seconds of the clip in the shortest ingest")
    args = ap.parse_args()

    from motionlib.library import Library
    from pgserver import PgServer, find_bin
    from s3server import CREDENTIALS, S3Server

    if find_bin() is None:
        raise SystemExit("PostgreSQL is not installed (scripts/bootstrap.sh installs it where it can)")
    for k, v in CREDENTIALS.items():
        os.environ.setdefault(k, v)
    pg, s3 = PgServer(find_bin()), S3Server()
    pg.start()
    try:
        url = f"{pg.url(pg.create_database())}?store=s3://{s3.bucket()}/lib&endpoint={s3.endpoint}"
        with tempfile.TemporaryDirectory() as tmp:
            local = str(Path(tmp) / "lib")
            n = args.writers * args.ingests
            base_wall, _ = run_writers(local, 1, n, args.span)
            wall, times = run_writers(url, args.writers, args.ingests, args.span)
        print(f"{n} ingests of the first {args.span}-{PERFORMER_SECONDS} s of {SAMPLE.name}")
        print(f"  local library, 1 process (baseline)   {base_wall:7.1f} s   {n / base_wall:5.2f} ingests/s")
        print(f"  shared library, {args.writers} processes at once  {wall:7.1f} s   {n / wall:5.2f} ingests/s"
              f"   (each writer {', '.join(f'{t:.1f}' for t in times)} s)")
        with Library(url) as lib:
            records = lib.list(name="shared")
            versions = sorted(r.version for r in records)
            per_writer = {f"w{w}": len(lib.list(query=f"tag:w{w}")) for w in range(args.writers)}
            stored = set(lib.files.version_keys())
            readable = sum(lib.load(r.ref).frames == r.frames for r in records)
            problems = lib.doctor(quick=True)["problems"]
        ok = versions == list(range(1, n + 1)) and all(v == args.ingests for v in per_writer.values())
        print(f"  versions {versions[0] if versions else '-'}..{versions[-1] if versions else '-'}: {len(versions)} "
              f"of {n}, unique: {len(set(versions)) == len(versions)}, per writer {per_writer}")
        print(f"  every row's version in the store: {stored == {r.store_path for r in records}}; "
              f"read back whole: {readable}/{len(records)}; doctor problems: {len(problems)}")
        print("PASS" if ok and readable == len(records) and not problems else "FAIL")
    finally:
        s3.stop()
        pg.stop()


if __name__ == "__main__":
    main()
