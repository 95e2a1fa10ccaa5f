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
  that shows rows (the app records the wall-clock time in a call_after_refresh callback), and from
  the app's own start (BrowseApp() created: imports and interpreter start-up left out); the rows
  then in the table, and when the count of versions shows;
* filter: from pressing Enter on a query until the table shows its first rows, and its count;
* paging: median time of a page-down press through the table (each press redraws), beside a key
  with no binding pressed in alternation (Textual's Pilot waits for the app to go idle after every
  press, so that key measures the harness; the ratio is what paging itself costs);
* reading on: the cursor put on the last row loaded, again and again, until --pages more pages of
  200 rows are in (--pages 0: every version), as holding End would;
* memory: the process's resident size at the first screen and at the end.
Beside them, the baseline of the same run: `motionlib list --json` over the same library, and the
browser's SQL queries alone. The browser before paging (every row read, then put in the table in
chunks) runs the same script: its figures are the first table and every row in it.
The scripts run the checkout they are in (PYTHONPATH), not whatever motionlib is installed.
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
pages = int(sys.argv[3])
from pathlib import Path
from motionlib.tui.app import BrowseApp

def rss_mb(field="VmRSS"):  # VmHWM: the peak (ru_maxrss would count the parent's, from before exec)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")

async def drawn(pilot):
    # until the screen has been refreshed once more (what the user sees)
    done = []
    pilot.app.call_after_refresh(lambda: done.append(time.perf_counter()))
    while not done:
        await pilot.pause(0.001)
    return done[0]

async def main():
    app = BrowseApp(Path(sys.argv[1]))
    paged = hasattr(app, "exhausted")  # the paging browser; the one before filled every row
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one("#table")
        while app.first_drawn_wall is None:
            await pilot.pause(0.005)
        out["first_table_s"] = app.first_drawn_wall - t_start
        out["first_table_app_s"] = app.timings["first_drawn"]
        out["first_rows"] = table.row_count
        out["rss_first_mb"] = rss_mb()
        out["cpu_first_s"] = time.process_time()  # every thread's, since the interpreter started
        if paged:
            while app.total is None:
                await pilot.pause(0.005)
            out["count_s"] = time.time() - t_start
            out["total"] = app.total
        while app.filling:
            await pilot.pause(0.01)
        out["all_rows_s"] = time.time() - t_start
        out["rows"] = table.row_count
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
        out["filter_rows"] = table.row_count
        if paged:
            while app.total is None:
                await pilot.pause(0.005)
            out["filter_count_s"] = time.perf_counter() - t0
            out["filter_total"] = app.total
        # the same without the Pilot's wait for idle after the key: Enter's action, until the
        # screen that shows the result is drawn
        await app.workers.wait_for_complete()
        for text in ("", query):
            flt = app.query_one("#filter")
            flt.value = text
            t0, cpu0 = time.perf_counter(), time.process_time()
            await flt.action_submit()
            while app.query_text != text:
                await pilot.pause(0.001)
            out["filter_drawn_s" if text else "unfilter_drawn_s"] = await drawn(pilot) - t0
            out["filter_cpu_s" if text else "unfilter_cpu_s"] = time.process_time() - cpu0
            await app.workers.wait_for_complete()
        # back to everything, then page through it
        await pilot.press("slash", "ctrl+u", "enter")
        while app.query_text != "":
            await pilot.pause(0.005)
        await app.workers.wait_for_complete()
        table.focus()
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
        out["cursor_row"] = table.cursor_row
        out["rows_after_paging"] = table.row_count
        if paged:
            # read on: the cursor to the last row loaded (ctrl+end) until `pages` more pages are in
            # (or every version), each page read in a worker and put in the table by the app
            await app.workers.wait_for_complete()
            start_rows, t0 = table.row_count, time.perf_counter()
            target = start_rows + pages * 200 if pages > 0 else float("inf")
            while table.row_count < target and not app.exhausted:
                n = table.row_count
                table.move_cursor(row=n - 1, animate=False)
                while table.row_count == n and not app.exhausted:
                    await pilot.pause(0.001)
            out["more_s"] = time.perf_counter() - t0
            out["more_rows"] = table.row_count - start_rows
            out["rows_loaded"] = table.row_count
    out["rss_end_mb"] = rss_mb()
    out["maxrss_mb"] = rss_mb("VmHWM")
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


def env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def motionlib(*args, library: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python(), "-m", "motionlib", "--library", str(library), *map(str, args)],
                          capture_output=True, text=True, check=True, env=env())


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


def bench(root: Path, pages: int) -> dict:
    t0 = time.time()
    proc = subprocess.run([python(), "-c", CHILD, str(root), repr(t0), str(pages)], capture_output=True, text=True,
                          env=env())
    if proc.returncode:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sql_figures(root: Path) -> dict:
    """The browser's queries alone (best of 5, in this process): what each screen asks the index."""
    sys.path.insert(0, str(ROOT))
    from motionlib.library import Library

    if not hasattr(Library, "page"):
        return {}
    query = "tag:dance score>0.5 -tag:draft"

    def best(f) -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return min(times) * 1000

    with Library(root) as lib:
        total = lib.count()
        deep = lib.page(limit=max(1, total - 200))[-1]
        by_score = lib.page(sort=[("overall", True)], limit=200)[-1]
        return {
            "first page": best(lambda: lib.page(limit=200)),
            "count": best(lambda: lib.count()),
            "filter page": best(lambda: lib.page(query, limit=200)),
            "filter count": best(lambda: lib.count(query)),
            f"page after row {total - 200:,}": best(lambda: lib.page(limit=200, after=deep)),
            "first page by score": best(lambda: lib.page(sort=[("overall", True)], limit=200)),
            "next page by score": best(lambda: lib.page(sort=[("overall", True)], limit=200, after=by_score)),
            "first page by tags": best(lambda: lib.page(sort=[("tags", False)], limit=200)),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pages", type=int, default=25,
                    help="pages of 200 rows to read on after the first screens (0: every row, to the end)")
    ap.add_argument("--library", type=Path, help="use this library instead of building one")
    ap.add_argument("--json", type=Path, help="also write every run's figures to this file")
    ap.add_argument("--screenshot", type=Path, help="save an SVG of the browser to this path and stop")
    ap.add_argument("--select", default="sample-demo@1", help="version to select for the screenshot")
    ap.add_argument("--frame", type=int, default=100, help="skeleton frame shown in the screenshot")
    args = ap.parse_args()
    if args.screenshot:
        lib = args.library or Path(os.environ.get("MOTIONLIB_LIBRARY", ROOT / "library"))
        subprocess.run([python(), "-c", SHOT, str(lib), str(args.screenshot.resolve()), args.select, str(args.frame)],
                       check=True, env=env())
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
        results = [bench(root, args.pages) for _ in range(args.runs)]
        med = {k: sorted(r[k] for r in results)[len(results) // 2] for k in results[0]}
        print(f"versions in the index:             {len(listed)}")
        print(f"baseline `motionlib list --json`:  {list_s:.2f} s")
        print(f"browse start -> first table drawn: {med['first_table_s']:.2f} s from before the interpreter starts "
              f"({med['first_table_s'] / list_s:.2f}x the list baseline); {med['first_table_app_s']:.3f} s from "
              f"the app's start; {med['first_rows']} rows in the table; {med['cpu_first_s']:.2f} s of CPU by then")
        if "total" in med:
            print(f"count of versions shown:           {med['total']} after {med['count_s']:.2f} s")
            print(f"filter 'tag:dance score>0.5 -tag:draft': {med['filter_s'] * 1000:.0f} ms -> first "
                  f"{med['filter_rows']} rows; its count ({med['filter_total']}) after {med['filter_count_s'] * 1000:.0f} ms")
        else:
            print(f"all {med['rows']} rows in the table after {med['all_rows_s']:.2f} s "
                  "(filled in chunks while the app already responds)")
            print(f"filter 'tag:dance score>0.5 -tag:draft': {med['filter_s'] * 1000:.0f} ms -> {med['filter_rows']} rows")
        print(f"  the same without the Pilot's key wait: {med['filter_drawn_s'] * 1000:.0f} ms until drawn, "
              f"{med['filter_cpu_s'] * 1000:.0f} ms of CPU (clearing the filter: {med['unfilter_drawn_s'] * 1000:.0f} ms, "
              f"{med['unfilter_cpu_s'] * 1000:.0f} ms of CPU)")
        print(f"page down (each redraws):          {med['page_ms']:.1f} ms per press, against "
              f"{med['idle_key_ms']:.1f} ms for a key with no binding (the Pilot's own wait): "
              f"{med['page_ms'] / med['idle_key_ms']:.2f}x; {med['rows_after_paging']} rows loaded after 30 presses")
        if "more_s" in med:
            print(f"reading on (cursor to the last row): {med['more_rows']} more rows in {med['more_s']:.2f} s, "
                  f"{med['more_s'] / max(1, med['more_rows']) * 200 * 1000:.0f} ms per page of 200; "
                  f"{med['rows_loaded']} rows loaded in all")
        print(f"memory (RSS):                      {med['rss_first_mb']:.0f} MB at the first screen, "
              f"{med['rss_end_mb']:.0f} MB at the end (peak {med['maxrss_mb']:.0f} MB)")
        print(f"(medians of {args.runs} runs, each in a fresh interpreter)")
        figures = sql_figures(root)
        if figures:
            print("the browser's queries alone (best of 5):")
            for what, ms in figures.items():
                print(f"  {what + ':':34} {ms:6.1f} ms")
        print(f"(load average during the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        if args.json:
            args.json.write_text(json.dumps({"list_s": list_s, "runs": results, "sql_ms": figures,
                                             "loadavg": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
