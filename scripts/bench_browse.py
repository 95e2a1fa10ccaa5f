#!/usr/bin/env python
"""Time `motionlib browse` on a large library, and save a screenshot of the browser.

    .venv/bin/python scripts/bench_browse.py                 # 10,000 versions in a temp library
    .venv/bin/python scripts/bench_browse.py --versions 2000
    .venv/bin/python scripts/bench_browse.py --screenshot docs/browse.svg --library ./library

The big library is made from one real ingested version of the sample clip: N index rows whose
version directories are symbolic links to it, with random names, tags, scores and operations, so
the browser reads real manifests and keypoints for whichever row it selects.

Measured, each in a fresh interpreter running the app headless (Textual's run_test, 120x40):
* start -> first table drawn: from before the interpreter starts until the first screen refresh
  that shows rows (the app records the wall-clock time in a call_after_refresh callback); and
  until every row is in the table (rows go in in chunks after the first screenful);
* filter: from pressing Enter on a query until the table shows its result;
* paging: median time of a page-down press through the table (each press redraws), beside a key
  with no binding pressed in alternation (Textual's Pilot waits for the app to go idle after every
  press, so that key measures the harness; the ratio is what paging itself costs).
Beside them, the baseline of the same run: `motionlib list --json` over the same library.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "demo.mp4"

CHILD = r"""
import asyncio, json, sys, time
t_start = float(sys.argv[2])
from pathlib import Path
from motionlib.tui.app import BrowseApp

async def main():
    app = BrowseApp(Path(sys.argv[1]))
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        while app.first_drawn_wall is None:
            await pilot.pause(0.005)
        out["first_table_s"] = app.first_drawn_wall - t_start
        while app.filling:
            await pilot.pause(0.01)
        out["all_rows_s"] = time.time() - t_start
        out["rows"] = app.query_one("#table").row_count
        await app.workers.wait_for_complete()
        # filter
        query = "tag:dance score>0.5 -tag:draft"
        await pilot.press("slash", *query)
        t0 = time.perf_counter()
        await pilot.press("enter")
        while app.query_text != query:
            await pilot.pause(0.005)
        await pilot.pause(0)
        out["filter_s"] = time.perf_counter() - t0
        out["filter_rows"] = app.query_one("#table").row_count
        # back to everything, then page through it
        await pilot.press("slash", "ctrl+u", "enter")
        while app.query_text != "":
            await pilot.pause(0.005)
        await app.workers.wait_for_complete()
        app.query_one("#table").focus()
        # Pilot.press waits until the app is idle, which alone takes tens of ms; a key with no
        # binding (f12), pressed in alternation, measures that overhead in the same run.
        page, idle = [], []
        for _ in range(30):
            for key, acc in (("pagedown", page), ("f12", idle)):
                t0 = time.perf_counter()
                await pilot.press(key)
                acc.append(time.perf_counter() - t0)
        page.sort(); idle.sort()
        out["page_ms"] = page[len(page) // 2] * 1000
        out["idle_key_ms"] = idle[len(idle) // 2] * 1000
        out["cursor_row"] = app.query_one("#table").cursor_row
    print(json.dumps(out))

asyncio.run(main())
"""

SHOT = r"""
import asyncio, sys
from pathlib import Path
from motionlib.tui.app import BrowseApp, SkeletonView

async def main():
    app = BrowseApp(Path(sys.argv[1]))
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(50):
            await app.workers.wait_for_complete(); await pilot.pause(0.1)
            if app.records:
                break
        names = [r.ref for r in app.records]
        want = sys.argv[3]
        if want in names:
            app.query_one("#table").move_cursor(row=names.index(want))
        view = app.query_one("#skeleton", SkeletonView)
        for _ in range(50):
            await app.workers.wait_for_complete(); await pilot.pause(0.1)
            if view.frames is not None:
                break
        view.step(0)
        await pilot.press("full_stop")
        for _ in range(int(sys.argv[4])):
            view.step(1)
        await pilot.pause(0.2)
        app.save_screenshot(filename=Path(sys.argv[2]).name, path=str(Path(sys.argv[2]).parent))
        print("saved", sys.argv[2], "showing", app.selected.ref if app.selected else None)

asyncio.run(main())
"""


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def motionlib(*args, library: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python(), "-m", "motionlib", "--library", str(library), *map(str, args)],
                          capture_output=True, text=True, check=True)


def build(root: Path, versions: int, seed: int = 0) -> None:
    if not SAMPLE.exists():
        subprocess.run([python(), str(ROOT / "scripts" / "fetch_samples.py")], check=True)
    motionlib("ingest", SAMPLE, "--name", "sample-demo", "--tag", "sample", "--quiet", library=root)
    con = sqlite3.connect(root / "index.sqlite")
    cols = [r[1] for r in con.execute("PRAGMA table_info(motion)")]
    base = dict(zip(cols, con.execute("SELECT * FROM motion").fetchone()))
    real = root / base["store_path"]
    rng = random.Random(seed)
    words = ["wave", "point", "dance", "jump", "spin", "clap", "walk", "bow", "kick", "reach", "loop", "hook"]
    tags = ["dance", "draft", "hook", "ugc", "loop", "spring", "promo", "clean", "slow", "fast"]
    ops = ["ingest", "smooth", "trim", "loop", "mirror", "retime"]
    per_name = 4
    rows, links = [], []
    for i in range(versions - 1):
        name = f"{rng.choice(words)}-{rng.choice(words)}-{i // per_name:05d}"
        version = i % per_name + 1
        rel = f"motions/bench-{i // per_name:05d}/v{version:04d}"
        links.append(rel)
        scores = [round(rng.random(), 4) for _ in range(3)]
        overall = round((scores[0] * scores[1] * scores[2]) ** (1 / 3), 4)
        row = dict(base, id=None, name=name, version=version, store_path=rel, overall=overall,
                   occlusion=scores[0], jitter=scores[1], framing=scores[2],
                   duration=round(rng.uniform(1, 20), 3), fps=rng.choice([24.0, 25.0, 30.0, 60.0]),
                   operation=rng.choice(ops), parent=None if version == 1 else f"{name}@1")
        rows.append(row)
    for rel in links:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(real, p, target_is_directory=True)
    with con:
        con.executemany(f"INSERT INTO motion ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [tuple(r[c] for c in cols) for r in rows])
        tag_ids = {}
        for t in tags:
            tag_ids[t] = con.execute("INSERT OR IGNORE INTO tag (name) VALUES (?)", (t,)).lastrowid or \
                con.execute("SELECT id FROM tag WHERE name = ?", (t,)).fetchone()[0]
        ids = [r[0] for r in con.execute("SELECT id FROM motion")]
        links_rows = {(mid, tag_ids[t]) for mid in ids for t in rng.sample(tags, rng.randint(0, 3))}
        con.executemany("INSERT OR IGNORE INTO motion_tag (motion_id, tag_id) VALUES (?, ?)", sorted(links_rows))
    con.close()


def bench(root: Path) -> dict:
    t0 = time.time()
    proc = subprocess.run([python(), "-c", CHILD, str(root), repr(t0)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--library", type=Path, help="use this library instead of building one")
    ap.add_argument("--screenshot", type=Path, help="save an SVG of the browser to this path and stop")
    ap.add_argument("--select", default="sample-demo@1", help="version to select for the screenshot")
    ap.add_argument("--frame", type=int, default=100, help="skeleton frame shown in the screenshot")
    args = ap.parse_args()
    if args.screenshot:
        lib = args.library or Path(os.environ.get("MOTIONLIB_LIBRARY", ROOT / "library"))
        subprocess.run([python(), "-c", SHOT, str(lib), str(args.screenshot.resolve()), args.select, str(args.frame)],
                       check=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = args.library or Path(tmp) / "lib"
        if args.library is None:
            t = time.perf_counter()
            build(root, args.versions)
            print(f"built a library of {args.versions} versions in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()
        listed = json.loads(motionlib("list", "--json", library=root).stdout)
        list_s = time.perf_counter() - t
        results = [bench(root) for _ in range(args.runs)]
        med = {k: sorted(r[k] for r in results)[len(results) // 2] for k in results[0]}
        print(f"versions in the index:             {len(listed)}")
        print(f"baseline `motionlib list --json`:  {list_s:.2f} s")
        print(f"browse start -> first table drawn: {med['first_table_s']:.2f} s "
              f"({med['first_table_s'] / list_s:.2f}x the list baseline); all {med['rows']} rows in the "
              f"table after {med['all_rows_s']:.2f} s (filled in chunks while the app already responds)")
        print(f"filter 'tag:dance score>0.5 -tag:draft': {med['filter_s'] * 1000:.0f} ms -> {med['filter_rows']} rows")
        print(f"page down (each redraws):          {med['page_ms']:.1f} ms per press, against "
              f"{med['idle_key_ms']:.1f} ms for a key with no binding (the Pilot's own wait): "
              f"{med['page_ms'] / med['idle_key_ms']:.2f}x")
        print(f"(medians of {args.runs} runs, each in a fresh interpreter)")


if __name__ == "__main__":
    main()
