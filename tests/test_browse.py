"""The terminal browser, driven headless with Textual's Pilot; assertions on state and the index."""

from __future__ import annotations

import asyncio
import html
import os
import random
import re
import shutil
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from motionlib.index.query import complete_term
from motionlib.library import Library
from tests.conftest import copy_library, invoke

pytest.importorskip("textual")

from motionlib.tui.app import (  # noqa: E402
    COLUMNS, PAGE, SORTABLE, AskScreen, BrowseApp, ConfirmScreen, HelpScreen, SkeletonView, ref_text,
)


@pytest.fixture(scope="module")
def three_versions(demo_library, tmp_path_factory) -> Path:
    """The demo library plus a smoothed version (tagged smooth) and a trimmed one, made once."""
    from motionlib.processing import ops

    root = copy_library(demo_library[0], tmp_path_factory.mktemp("browse") / "lib")
    with Library(root) as library:
        library.derive("demo", ops.smooth)  # demo@2
        library.derive("demo@1", lambda m: ops.trim(m, 1.0, 3.0))  # demo@3
        library.tag("demo@2", ["smooth"])
    return root


@pytest.fixture
def lib(three_versions, tmp_path) -> Path:
    """A copy of ``three_versions`` for one test to browse and change."""
    return copy_library(three_versions, tmp_path / "lib")


def drive(root: Path, script, size=(80, 24), query: str = ""):
    """Run ``script(app, pilot)`` against a headless app; returns the app afterwards."""

    async def main():
        app = BrowseApp(root, query)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            await script(app, pilot)
        return app

    return asyncio.run(main())


async def settle(app, pilot, timeout: float = 10.0):
    """Until the app is quiet twice in a row: every worker (reads, writes) finished, its results
    handed to the interface, and no selection waiting to be read (the app's SETTLE timer)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)
        busy = app.selection_pending or any(not w.is_finished for w in app.workers)
        quiet = 0 if busy else quiet + 1


def screen_lines(app) -> list[str]:
    """The screen as a terminal shows it, one string a row, read from Textual's SVG screenshot:
    what lies past the right edge is not there. (Every character drawn is one cell wide.)"""
    from rich.cells import cell_len

    width, height = app.size
    rows = [[" "] * width for _ in range(height)]
    pattern = r'<text [^>]*?x="([\d.]+)" y="[\d.]+" textLength="([\d.]+)" clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)</text>'
    for x, length, line, text in re.findall(pattern, app.export_screenshot()):
        text = html.unescape(text).replace("\xa0", " ")
        if not cell_len(text):
            continue
        col = round(float(x) / (float(length) / cell_len(text)))
        for i, ch in enumerate(text):
            if col + i < width:
                rows[int(line)][col + i] = ch
    return ["".join(r) for r in rows]


def refs(app):
    return [r.ref for r in app.records]


async def select(app, pilot, ref: str):
    table = app.query_one("#table")
    table.move_cursor(row=refs(app).index(ref))
    await settle(app, pilot)
    assert app.selected.ref == ref


def test_table_filter_and_errors(lib):
    async def script(app, pilot):
        table = app.query_one("#table")
        assert refs(app) == ["demo@1", "demo@2", "demo@3"] and table.row_count == 3
        await pilot.press("slash", *"tag:smooth", "enter")
        await settle(app, pilot)
        assert refs(app) == ["demo@2"] and table.row_count == 1
        await pilot.press("slash", "ctrl+u", *"duration<3 -tag:smooth", "enter")
        await settle(app, pilot)
        assert refs(app) == ["demo@3"]
        # a malformed query says so and keeps what was shown
        await pilot.press("slash", "ctrl+u", *"fps>>x", "enter")
        await settle(app, pilot)
        assert refs(app) == ["demo@3"]
        assert app.query_one("#filter").has_class("-invalid")
        assert "malformed" in str(app.query_one("#status").render()) or "needs a number" in str(app.query_one("#status").render())
        await pilot.press("slash", "ctrl+u", "enter")
        await settle(app, pilot)
        assert len(refs(app)) == 3

    drive(lib, script)


def test_initial_query_and_sorting(lib):
    async def script(app, pilot):
        assert refs(app) == ["demo@1", "demo@2", "demo@3"]
        await pilot.press("s")  # next column: duration, longest first (read again from the index)
        await settle(app, pilot)
        assert app.sort_column == "dur" and refs(app)[-1] == "demo@3"
        await pilot.press("S")
        await settle(app, pilot)
        assert refs(app)[0] == "demo@3"
        app.sort_by("jit")
        await settle(app, pilot)
        jit = [r.jitter for r in app.records]
        assert jit == sorted(jit, reverse=True)
        # clicking a header sorts by it
        await pilot.click("#table", offset=(2, 0))
        await settle(app, pilot)
        assert app.sort_column == "motion"

    drive(lib, script)
    app = drive(lib, lambda app, pilot: asyncio.sleep(0), query="is:latest")
    assert refs(app) == ["demo@3"]


def test_tag_untag_rename_delete_write_the_index(lib):
    async def script(app, pilot):
        await select(app, pilot, "demo@1")
        # tag, completing an existing tag with the right arrow
        await pilot.press("t")
        assert isinstance(app.screen, AskScreen)
        await pilot.press(*"fresh smo", "right", "enter")
        await settle(app, pilot)
        assert sorted(Library(lib).get("demo@1").tags) == ["fresh", "sample", "smooth"]
        assert app.selected.ref == "demo@1" and "fresh" in app.selected.tags
        # untag
        await pilot.press("u", *"sample", "enter")
        await settle(app, pilot)
        assert sorted(Library(lib).get("demo@1").tags) == ["fresh", "smooth"]
        # rename the motion
        await pilot.press("r", "ctrl+u", *"dance", "enter")
        await settle(app, pilot)
        assert [r.ref for r in Library(lib).list()] == ["dance@1", "dance@2", "dance@3"]
        assert app.selected.ref == "dance@1" and refs(app) == ["dance@1", "dance@2", "dance@3"]
        # delete asks first; "n" keeps it
        await select(app, pilot, "dance@3")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(app, pilot)
        assert len(Library(lib).list()) == 3
        await pilot.press("d", "y")
        await settle(app, pilot)
        assert [r.ref for r in Library(lib).list()] == ["dance@1", "dance@2"]
        assert refs(app) == ["dance@1", "dance@2"]
        # an error from the library (tag with a comma) is reported, nothing changes
        await pilot.press("t", *"bad,tag", "enter")
        await settle(app, pilot)
        assert "bad,tag" not in Library(lib).get("dance@2").tags

    drive(lib, script)
    proc = invoke("list", "tag:fresh", "--json", library=lib)
    assert '"dance@1"' in proc.stdout, "changes are visible to motionlib list"


def test_preview_plays_at_real_timing_pauses_and_steps(lib):
    async def script(app, pilot):
        await select(app, pilot, "demo@1")
        view = app.query_one("#skeleton", SkeletonView)
        for _ in range(50):
            if view.frames is not None:
                break
            await settle(app, pilot)
        assert view.frames is not None and view.frames.frames == 230
        assert view.playing
        # the frame the clock shows now (the view's index may still lag it by a tick on a busy
        # machine, and then catch up: measured from it, that catching up read as 55 fps)
        t0, i0 = time.monotonic(), view.frames.frame_at(view.position)
        await pilot.pause(0.6)
        await settle(app, pilot)  # a tick has run since
        elapsed = time.monotonic() - t0
        advanced = (view.index - i0) % 230
        # 30 fps: about 30 frames a second (a headless tick may lag a frame or two)
        assert abs(advanced - 30 * elapsed) <= 8, (advanced, elapsed)
        await pilot.press("space")
        assert not view.playing
        frozen = view.index
        await pilot.pause(0.3)
        assert view.index == frozen
        await pilot.press("full_stop")
        assert view.index == (frozen + 1) % 230
        await pilot.press("comma", "comma")
        assert view.index == (frozen - 1) % 230
        text = str(view.render())
        assert any(0x2800 < ord(c) < 0x2900 for c in text), "braille skeleton drawn"
        await pilot.press("space")
        assert view.playing

    drive(lib, script)


def test_detail_pane_help_fit_and_quit(lib):
    async def script(app, pilot):
        await select(app, pilot, "demo@2")
        from rich.console import Console

        console = Console(width=60, record=True)
        console.print(app.detail)
        text = console.export_text()
        for words in ("jitter", "raw", "lineage", "smooth of demo@1", "source", "demo.mp4", "visible"):
            assert words in text, words
        # everything fits 80x24
        for wid in ("#table", "#detail", "#skeleton", "#filter", "Footer"):
            region = app.query_one(wid).region
            assert region.width > 0 and region.height > 0, wid
            assert region.right <= 80 and region.bottom <= 24, wid
        assert app.query_one("#table").region.height >= 5
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")

    app = drive(lib, script)
    assert app.return_code in (0, None)


def test_every_column_whole_at_80x24(lib):
    """On a wide terminal the columns have their full widths; at 80x24 every column and label
    still fits the screen (the tags and motion columns give up cells), whichever column sorts."""

    async def script(app, pilot):
        table = app.query_one("#table")
        assert app.widths == {label: width for label, _attr, width in COLUMNS}
        await pilot.resize_terminal(80, 24)
        await settle(app, pilot)
        for column in SORTABLE:
            app.sort_by(column)
            await pilot.pause()
            # nothing off the right edge to scroll to
            assert table.virtual_size.width <= table.scrollable_content_region.width, column
            lines = screen_lines(app)
            header = lines[table.region.y]
            arrow = "▼" if app.sort_reverse else "▲"
            for label in SORTABLE:
                shown = f"{label} {arrow}" if label == column else label
                assert re.search(rf"(^| ){re.escape(shown)}( |$)", header), (shown, header)
        rows = "\n".join(lines[table.region.y + 1:table.region.bottom])
        for ref in ("demo@1", "demo@2", "demo@3"):
            assert re.search(rf" {ref} .* 30 .* sample", rows), rows
        assert "sample, smooth" in rows
        assert lines[0].startswith(" filter ")
        assert "q Quit" in lines[-1] and "s Sort" in lines[-1], lines[-1]
        # the questions wrap rather than cut their text at the box's border
        for key, words in (("t", "(space-separated; Tab completes)"), ("d", "are removed for good.")):
            await pilot.press(key)
            await pilot.pause()
            box = [line.split("█")[1].strip() for line in screen_lines(app) if line.count("█") >= 2]
            assert words in " ".join(box), (key, box)
            await pilot.press("escape")

    drive(lib, script, size=(120, 30))


def test_a_long_name_keeps_its_version():
    r = SimpleNamespace(name="salsa-basic-step-front-view", version=12, ref="salsa-basic-step-front-view@12")
    assert ref_text(r, 18).plain == "salsa-basic-st…@12"
    assert ref_text(r, 40).plain == r.ref


async def type_tab(pilot, field, text: str) -> None:
    """``text`` typed at ``field``'s cursor, then Tab. The text goes in at once: pressed key by
    key here, each key waits on a screen refresh (~0.1 s)."""
    field.insert_text_at_cursor(text)
    await pilot.press("tab")


def test_tab_completes_the_filter_word(lib):
    """Tab completes the term before the cursor (a field, a tag after tag:, an is: value, a name),
    keeping the words before it; with nothing to complete it moves the focus on, as before."""

    async def script(app, pilot):
        flt, table = app.query_one("#filter"), app.query_one("#table")
        await pilot.press("slash", *"ta", "tab")
        assert flt.value == "tag:"
        for typed, line in (("SM", "tag:smooth"), (" -tag:sa", "tag:smooth -tag:sample"),
                            (" sc", "tag:smooth -tag:sample score"),
                            (">0.1 is:l", "tag:smooth -tag:sample score>0.1 is:latest")):
            await type_tab(pilot, flt, typed)
            assert flt.value == line and app.focused is flt
        # in the middle of the line: the word before the cursor, the rest kept
        flt.value, flt.cursor_position = "-tag:sm demo", len("-tag:sm")
        await pilot.press("tab")
        assert flt.value == "-tag:smooth demo" and flt.cursor_position == len("-tag:smooth")
        # inside a word, or after a whole one, there is nothing to complete: the focus moves on
        await pilot.press("left", "tab")
        assert flt.value == "-tag:smooth demo" and app.focused is table
        await pilot.press("slash", "end", "tab")
        assert flt.value == "-tag:smooth demo" and app.focused is table
        await pilot.press("slash", "enter")
        await settle(app, pilot)
        assert refs(app) == ["demo@1", "demo@3"]

    drive(lib, script)


def test_tab_completes_tags_in_the_tag_prompt(lib):
    async def script(app, pilot):
        await select(app, pilot, "demo@1")  # tagged sample
        await pilot.press("t")
        ask = app.screen.query_one("#ask")
        await type_tab(pilot, ask, "fresh SMO")
        assert ask.value == "fresh smooth", "the last word, in the tag's case"
        await type_tab(pilot, ask, " sa")
        await type_tab(pilot, ask, " smo")
        assert ask.value == "fresh smooth sa smo", "no tag the version or the line has already"
        await pilot.press("escape")
        # removing: the version's own tags
        await pilot.press("u")
        await type_tab(pilot, app.screen.query_one("#ask"), "sa")
        await pilot.press("enter")
        await settle(app, pilot)
        assert Library(lib).get("demo@1").tags == []

    drive(lib, script)


def test_complete_term():
    values = {"tag": ["dance", "dance-floor", "smooth"], "name": ["demo", "Wave"], "operation": ["ingest", "trim"]}
    for word, done in (("ta", "tag:"), ("tag", "tag:"), ("sc", "score"), ("i", "is:"), ("is:l", "is:latest"),
                       ("tag:SM", "tag:smooth"), ("-tag:da", "-tag:dance"), ("tag:smooth,d", "tag:smooth,dance"),
                       ("tag:dance,da", "tag:dance,dance-floor"), ("op:t", "op:trim"), ("wa", "Wave"),
                       ("name:w", "name:Wave"), ("tag!=sm", "tag!=smooth"),
                       # whole already, a glob, a number, a comparison, an unknown field: nothing
                       ("dance", None), ("tag:dance", None), ("score", None), ("tag:sm*", None),
                       ("fps:3", None), ("score>0", None), ("foo:b", None), ("-", None), ("zz", None)):
        assert complete_term(word, values) == done, word


def test_empty_library_says_how_to_start(tmp_path):
    async def script(app, pilot):
        empty = app.query_one("#empty")
        assert empty.display and not app.query_one("#table").display
        assert "motionlib ingest" in str(empty.render())

    drive(tmp_path / "new-lib", script)


def test_browse_command_refuses_without_a_terminal(lib):
    # in this process, stdout is captured: not a terminal
    proc = invoke("browse", library=lib)
    assert proc.returncode == 2 and "needs a terminal" in proc.stderr
    proc = invoke("browse", "foo:1", library=lib)
    assert proc.returncode == 2 and "unknown field" in proc.stderr


# ---------------------------------------------------------------------------------- paging
@pytest.fixture(scope="module")
def many_versions(three_versions, tmp_path_factory) -> Path:
    """three_versions plus two and a half pages more: index rows whose version directories link
    to demo@1's (selecting any of them reads real keypoints), with scores (some NULL) and the tag
    bulk on every other one."""
    root = tmp_path_factory.mktemp("browse-many") / "lib"
    shutil.copytree(three_versions, root)
    con = sqlite3.connect(root / "index.sqlite")
    cols = [r[1] for r in con.execute("PRAGMA table_info(motion)")]
    base = dict(zip(cols, con.execute("SELECT * FROM motion WHERE name = 'demo' AND version = 1").fetchone()))
    rng = random.Random(7)
    rows = []
    for i in range(2 * PAGE + 50):
        name, version = f"{rng.choice(['kick', 'spin', 'wave'])}-{i // 2:03d}", i % 2 + 1
        rel = f"motions/many-{i // 2:03d}/v{version:04d}"
        link = root / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(root / base["store_path"], link.parent), link, target_is_directory=True)
        rows.append(dict(base, id=None, name=name, version=version, store_path=rel, parent=None,
                         overall=None if i % 17 == 0 else round(rng.random(), 3)))
    with con:
        con.executemany(f"INSERT INTO motion ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [tuple(r[c] for c in cols) for r in rows])
        con.executemany("INSERT OR REPLACE INTO name_counter (name, last_version) VALUES (?, 2)",
                        [(r["name"],) for r in rows])
        tag = con.execute("INSERT INTO tag (name) VALUES ('bulk')").lastrowid
        con.execute("INSERT INTO motion_tag (motion_id, tag_id) SELECT id, ? FROM motion "
                    "WHERE store_path LIKE 'motions/many-%' AND id % 2 = 0", (tag,))
    con.close()
    return root


@pytest.fixture
def many(many_versions, tmp_path) -> Path:
    root = tmp_path / "lib"
    shutil.copytree(many_versions, root, symlinks=True)
    return root


@pytest.fixture
def small_pages(monkeypatch) -> int:
    """Pages of 60 rows (read on within 20 of the last): more pages in a small library."""
    import motionlib.tui.app as browser

    monkeypatch.setattr(browser, "PAGE", 60)
    monkeypatch.setattr(browser, "PREFETCH", 20)
    return 60


async def read_to_the_end(app, pilot):
    """Cursor to the last row loaded (ctrl+end), again, until every matching version is in."""
    for _ in range(50):
        if app.exhausted:
            break
        await pilot.press("ctrl+end")
        await settle(app, pilot)
    assert app.exhausted


def test_the_first_screen_is_one_page_and_the_rest_comes_as_you_scroll(many):
    """The first screen reads one page (not every version); the count shown is the index's;
    scrolling (the wheel, or the cursor near the last row) reads the next pages in order."""
    with Library(many) as library:
        total = library.count()
        everything = [r.ref for r in library.list()]
        first = [r.ref for r in library.page(limit=PAGE)]
    assert total == len(everything) > 2 * PAGE

    async def script(app, pilot):
        table = app.query_one("#table")
        assert table.row_count == PAGE < total and refs(app) == first
        assert app.total == total and not app.exhausted
        status = str(app.query_one("#status").render())
        assert f"{total:,} versions" in status and f"{PAGE:,} loaded" in status, status
        # the scroll wheel (the view moves, the cursor stays) reads on too
        table.scroll_to(y=table.max_scroll_y, animate=False)
        await settle(app, pilot)
        assert table.cursor_row == 0 and PAGE < table.row_count <= 2 * PAGE
        await read_to_the_end(app, pilot)
        assert refs(app) == everything and table.row_count == total
        assert f"{total:,} versions" in str(app.query_one("#status").render())
        # the cursor's record is the selection, however deep
        await select(app, pilot, everything[-3])
        assert app.detail.title.startswith(everything[-3] + " ")
        assert app.query_one("#skeleton", SkeletonView).frames is not None

    drive(many, script, size=(100, 30))


def test_filter_sort_and_count_page_through_sql(many, small_pages):
    PAGE = small_pages
    query = "tag:bulk score>0.3"
    with Library(many) as library:
        total = library.count(query)
        by_name = [r.ref for r in library.list(query=query)]
        by_score = [r.ref for r in library.list(query=query, sort="-score")]
        lowest_first = [r.ref for r in library.list(query=query, sort="score")]
    assert 2 * PAGE < total == len(by_name)

    async def script(app, pilot):
        await pilot.press("slash", *query, "enter")
        await settle(app, pilot)
        assert app.total == total and refs(app) == by_name[:PAGE]
        assert f"{total:,} versions match" in str(app.query_one("#status").render())
        await read_to_the_end(app, pilot)
        assert refs(app) == by_name
        # a sort reads the first page again, in the new order, from the index
        app.sort_by("score")
        await settle(app, pilot)
        assert (app.sort_column, app.sort_reverse) == ("score", True)
        # (a page more where the selection, kept, sits near the first page's end)
        assert PAGE <= len(refs(app)) < total and refs(app) == by_score[:len(refs(app))] and app.total == total
        await read_to_the_end(app, pilot)
        assert refs(app) == by_score
        app.sort_by("score")  # again: lowest first
        await settle(app, pilot)
        assert refs(app)[:PAGE] == lowest_first[:PAGE]

    drive(many, script, size=(100, 30))


def test_changes_refresh_their_rows_where_they_stand(many, small_pages):
    PAGE = small_pages
    """Tagging a row deep in the table changes that row in place (the rows loaded, the cursor and
    the count stay); untagging it out of the filter, or deleting it, takes it out and the count
    follows the index."""
    async def script(app, pilot):
        table = app.query_one("#table")
        await pilot.press("slash", *"tag:bulk", "enter")
        await settle(app, pilot)
        table.scroll_to(y=table.max_scroll_y, animate=False)
        await settle(app, pilot)
        loaded, total = table.row_count, app.total
        ref = refs(app)[PAGE + 5]
        await select(app, pilot, ref)
        await pilot.press("t", *"fresh", "enter")
        await settle(app, pilot)
        assert "fresh" in Library(many).get(ref).tags
        assert table.row_count == loaded and table.cursor_row == PAGE + 5 and app.total == total
        assert app.selected.ref == ref and "fresh" in app.selected.tags
        assert "bulk, fresh" in str(table.get_row_at(PAGE + 5)[-1])
        # untagged bulk, it no longer matches tag:bulk: it leaves, the cursor on the next one
        following = refs(app)[PAGE + 6]
        await pilot.press("u", *"bulk", "enter")
        await settle(app, pilot)
        assert ref not in refs(app) and table.row_count == loaded - 1
        assert app.total == total - 1 == Library(many).count("tag:bulk")
        assert app.selected.ref == following
        await pilot.press("d", "y")
        await settle(app, pilot)
        assert following not in refs(app) and app.total == total - 2 == Library(many).count("tag:bulk")
        assert [r.ref for r in Library(many).page("tag:bulk", limit=len(refs(app)))] == refs(app)

    drive(many, script, size=(100, 30))
