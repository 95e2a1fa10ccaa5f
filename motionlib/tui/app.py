"""The library browser: a table of versions, a query filter, details, an animated skeleton, and
tag / untag / rename / delete. Reads and writes go through motionlib.library in worker threads,
so the interface never waits on the disk.

The table pages through the index: the first screen and each filter or sort is one SQL query
with a LIMIT (library.page), the next page is read when the cursor or the scroll comes within
PREFETCH rows of the last row loaded, and the count of matching versions is a SQL count. So a
library of 100,000 versions opens and filters as fast as one of 100."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input, Label, Static

from motionlib.present import score_style
from motionlib.core.errors import MotionlibError

# column key -> (label, index column it sorts by, width on a wide terminal)
COLUMNS = (
    ("motion", "name", 18),
    ("dur", "duration", 6),
    ("fps", "fps", 5),
    ("occl", "occlusion", 4),
    ("jit", "jitter", 4),
    ("frm", "framing", 4),
    ("score", "overall", 5),
    ("tags", "tags", 24),
)
# the columns that give up cells when the terminal is too narrow for the widths above, in this
# order, and the least each keeps (the details pane shows every tag, and a ref keeps its @version)
SHRINK = (("tags", 8), ("motion", 12))
CELL_PADDING = 1  # cells of padding each side of every column
ARROW = 2  # " ▲" after the sorted column's label
SORTABLE = [c[0] for c in COLUMNS]
EIGHTHS = " ▏▎▍▌▋▊▉█"
PAGE = 200  # rows read from the index at a time: the first screen, and each page after it
PREFETCH = 100  # read the next page when the cursor or the scroll comes this close to the last row
FIRST_CHUNK = 200  # rows put in the table at once when it is refilled (a resize, a rename)
CHUNK = 1000  # rows per later step
SETTLE = 0.12  # seconds the cursor rests on a row before its details and keypoints are read
EMPTY_HINT = (
    "The library is empty.\n\nAdd a first clip with\n\n    motionlib ingest CLIP.mp4\n\n"
    "then press F5 (or restart motionlib browse)."
)


def bar(v: float | None, width: int = 4) -> Text:
    """A score in [0, 1] as a coloured bar of ``width`` cells (eighth-block resolution)."""
    if v is None:
        return Text("-".center(width), style="dim")
    eighths = int(round(max(0.0, min(1.0, v)) * width * 8))
    full, part = divmod(eighths, 8)
    s = "█" * full + (EIGHTHS[part] if part else "")
    return Text(s.ljust(width), style=score_style(v))


def column_widths(available: int, sort_column: str) -> dict[str, int]:
    """Each column's width in a table ``available`` cells wide. The sorted column is wide enough
    for its label and arrow (a 4-cell bar column would cut "occl ▲" to "occl"). Where the full
    widths do not fit, the SHRINK columns give up cells, so that every other column and every
    label stays whole instead of the last columns going off the right edge."""
    widths = {label: width for label, _attr, width in COLUMNS}
    widths[sort_column] = max(widths[sort_column], len(sort_column) + ARROW)
    over = sum(widths.values()) + 2 * CELL_PADDING * len(widths) - available
    for label, least in SHRINK:
        least = max(least, len(label) + (ARROW if label == sort_column else 0))
        give = max(0, min(over, widths[label] - least))
        widths[label] -= give
        over -= give
    return widths


def ref_text(r, width: int) -> Text:
    """``name@version`` in ``width`` cells: a long name is shortened before its ``@version``, so
    the versions of one long name stay told apart ("salsa-basic…@2", not "salsa-basic-st…")."""
    text = Text(r.ref, no_wrap=True, overflow="ellipsis")
    if text.cell_len <= width:
        return text
    suffix = f"@{r.version}"
    name = Text(r.name, no_wrap=True)
    name.truncate(max(1, width - len(suffix)), overflow="ellipsis")
    return Text(name.plain + suffix, no_wrap=True, overflow="ellipsis")


def cells(r, motion_width: int) -> tuple:
    return (
        ref_text(r, motion_width),
        Text(f"{r.duration:.1f}s", justify="right"),
        Text(f"{r.fps:.0f}", justify="right"),
        bar(r.occlusion), bar(r.jitter), bar(r.framing),
        Text("-" if r.overall is None else f"{r.overall:.2f}", style=score_style(r.overall), justify="right"),
        Text(", ".join(r.tags), no_wrap=True, overflow="ellipsis"),
    )


def sort_pairs(column: str, reverse: bool) -> list[tuple[str, bool]]:
    """The index order (library.page's ``sort``) of a table column: name@version sorts by name then
    version (both reversed with it); the others by their column, NULLs last either way, ties by
    name and version."""
    attr = next(a for label, a, _w in COLUMNS if label == column)
    return [("name", reverse), ("version", reverse)] if attr == "name" else [(attr, reverse)]


# ---------------------------------------------------------------------------------- widgets
class SkeletonView(Widget):
    """The selected motion, animated at its real timing (braille dots, OpenPose limb colours)."""

    DEFAULT_CSS = "SkeletonView { height: 1fr; }"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.frames = None  # tui.skeleton.SkeletonFrames
        self.index = 0
        self.playing = True
        self._origin = time.monotonic()  # monotonic time at which position 0 was shown
        self._paused_at = 0.0

    def on_mount(self) -> None:
        self.set_interval(1 / 30, self._tick)

    def show(self, frames) -> None:
        self.frames = frames
        self.index = 0
        self._origin = time.monotonic()
        self._paused_at = 0.0
        self.refresh()

    def clear(self) -> None:
        self.frames = None
        self.refresh()

    @property
    def position(self) -> float:
        if self.frames is None:
            return 0.0
        if not self.playing:
            return self._paused_at
        return (time.monotonic() - self._origin) % max(self.frames.duration, 1e-6)

    def toggle(self) -> None:
        if self.playing:
            self._paused_at = self.position
            self.playing = False
        else:
            self._origin = time.monotonic() - self._paused_at
            self.playing = True
        self.refresh()

    def step(self, delta: int) -> None:
        if self.frames is None:
            return
        if self.playing:
            self.toggle()
        self.index = (self.index + delta) % self.frames.frames
        self._paused_at = float(self.frames.timestamps[self.index])
        self.refresh()

    def _tick(self) -> None:
        if self.frames is None or not self.playing:
            return
        i = self.frames.frame_at(self.position)
        if i != self.index:
            self.index = i
            self.refresh()

    def render(self):
        if self.frames is None:
            return Text("no preview", style="dim")
        rows = max(1, self.size.height - 1)
        out = Text()
        for row in self.frames.render(self.index, self.size.width, rows):
            for ch, colour in row:
                out.append(ch, style=colour or "")
            out.append("\n")
        state = "▶" if self.playing else "■"
        out.append(f"{state} {self.index + 1}/{self.frames.frames} {self.frames.timestamps[self.index]:.2f}s",
                   style="bold")
        return out


class WordSuggester(Suggester):
    """Completes the line's last word (``complete``), keeping the words before it as typed. The
    Suggester's own case folding is off: it would lower-case the whole line, and each subclass
    ignores case where its words do."""

    def __init__(self):
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        word = re.search(r"\S*$", value).group()
        head = value[:len(value) - len(word)]
        done = self.complete(word, head) if word else None
        return head + done if done and done != word else None

    def complete(self, word: str, head: str) -> str | None:
        raise NotImplementedError


class TagSuggester(WordSuggester):
    """Tags, one a word: completes from ``tags``, leaving out a tag the line has already and those
    in ``exclude`` (when adding tags: the ones the version has). Tags are case-insensitive."""

    def __init__(self, tags: Iterable[str], exclude: Iterable[str] = ()):
        super().__init__()
        self.tags = sorted(tags)
        self.exclude = {t.lower() for t in exclude}

    def complete(self, word: str, head: str) -> str | None:
        from motionlib.index.query import first_completion

        return first_completion(word, self.tags, self.exclude | {w.lower() for w in head.split()})


class QuerySuggester(WordSuggester):
    """The filter's terms (motionlib.index.query.complete_term): fields, ``is:`` values, and tags,
    names and the other text fields' values from ``values``, which the app keeps current."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, list[str]] = {}

    def complete(self, word: str, head: str) -> str | None:
        from motionlib.index.query import complete_term

        return complete_term(word, self.values)


class CompletingInput(Input):
    """An Input whose Tab completes the word before the cursor with its suggester (the right
    arrow accepts the suggestion only with the cursor at the end). Where there is nothing to
    complete, Tab moves the focus on, as it does everywhere else."""

    BINDINGS = [Binding("tab", "complete", "Complete")]

    async def action_complete(self) -> None:
        # asks the suggester itself rather than taking the suggestion shown: that one comes from
        # a worker, and a Tab typed right after a key would find the previous line's
        before, after = self.value[:self.cursor_position], self.value[self.cursor_position:]
        if self.suggester is None or after[:1].strip():  # no completer, or inside a word
            raise SkipAction()
        done = await self.suggester.get_suggestion(before)
        if not done or done == before:
            raise SkipAction()
        self.value = done + after
        self.cursor_position = len(done)


class AskScreen(ModalScreen[str | None]):
    """One line of input (Enter accepts, Escape cancels)."""

    DEFAULT_CSS = """
    AskScreen { align: center middle; }
    AskScreen > Vertical { width: 60; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    AskScreen Label { width: 100%; }  /* a long prompt wraps instead of running past the border */
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, value: str = "", suggester: Suggester | None = None):
        super().__init__()
        self.prompt, self.value, self.suggester = prompt, value, suggester

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.prompt)
            yield CompletingInput(value=self.value, suggester=self.suggester, id="ask")

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 60; height: auto; border: thick $error; background: $surface; padding: 0 1; }
    ConfirmScreen Label { width: 100%; }
    """
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Label("[b]y[/b] yes    [b]n[/b] no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 70; height: 20; border: thick $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        t = Table(box=None, show_header=False, pad_edge=False)
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        for keys, what in HELP:
            t.add_row(keys, what)
        with VerticalScroll():
            yield Static(Text("motionlib browse - keys (Escape closes)\n", style="bold"))
            yield Static(t)
            yield Static(Text("\nFilter terms: tag:dance score>0.7 fps>=30 name:wave* -tag:draft "
                              "duration<6 is:latest, or a word of the name (docs/query.md). "
                              "Click a column header to sort by it; the mouse selects rows.", style="dim"))


HELP = (
    ("/", "edit the filter (Tab completes fields, tags and names; Enter applies it, Escape returns to the table)"),
    ("up/down, pgup/pgdn", "move through versions"),
    ("s / S", "sort by the next column / reverse the order"),
    ("space", "play or pause the skeleton"),
    (". / ,", "step one frame forward / back (pauses)"),
    ("t", "add tags (Tab completes existing tags)"),
    ("u", "remove tags"),
    ("r", "rename the motion (all its versions)"),
    ("d", "delete the selected version (asks first)"),
    ("F5", "reload from the library"),
    ("?", "this help"),
    ("q", "quit"),
)


# ---------------------------------------------------------------------------------- the app
class BrowseApp(App):
    TITLE = "motionlib browse"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    #filterbar { height: 1; }
    #filterbar Label { width: auto; padding: 0 1; color: $text-muted; }
    #filter { border: none; height: 1; padding: 0; width: 1fr; }
    #filter.-invalid { color: $error; }
    #table { height: 1fr; min-height: 5; }
    #empty { height: 1fr; content-align: center middle; display: none; }
    #bottom { height: 45%; min-height: 11; border-top: solid $primary-darken-2; }
    #detail { width: 1fr; padding: 0 1; scrollbar-size: 1 1; }
    #preview { width: 30; border-left: solid $primary-darken-2; }
    #status { height: 1; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("t", "tag", "Tag"),
        Binding("u", "untag", "Untag"),
        Binding("r", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
        Binding("s", "sort_next", "Sort"),
        Binding("S", "sort_reverse", "Reverse", show=False),
        Binding("space", "play_pause", "Play", show=False),
        Binding("full_stop", "step(1)", "Step", show=False),
        Binding("comma", "step(-1)", "Back", show=False),
        Binding("f5", "reload", "Reload", show=False),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self, library_root: Path | str, query: str = ""):
        super().__init__()
        from motionlib.library import Library

        self.library = Library(library_root if isinstance(library_root, str) else Path(library_root))
        self.query_text = query
        self.records: list = []  # the rows loaded so far, in the table's order
        self.total: int | None = None  # versions matching query_text (SQL count; None: counting)
        self.exhausted = False  # every matching version is loaded
        self.sort_column = "motion"
        self.sort_reverse = False
        self.widths: dict[str, int] = {}  # column -> width in cells, for this terminal (on_mount)
        self.selected = None
        self.detail = None  # the detail pane's renderable, for whoever wants to read it
        self._pending = None  # timer that loads the selection once the cursor rests
        self._generation = 0  # bumped by every new query or sort: stale pages and counts are dropped
        self._fill_generation = 0  # bumped by every refill; stale chunked fills stop
        self._more_for: int | None = None  # the generation a next page is being read for
        self._load_ms = 0.0  # how long the last query took
        self.filling = False
        self.first_drawn_wall: float | None = None
        self.loaded_at: float | None = None  # perf_counter when the table was first filled
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()
        self.completer = QuerySuggester()  # the filter's Tab; its values follow every load

    @property
    def selection_pending(self) -> bool:
        """Whether the cursor moved and the selection's details are still to be read."""
        return self._pending is not None

    # -------------------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="filterbar"):
            yield Label("filter")
            # validate_on=[]: the app marks the filter -invalid (Input's own check, on blur,
            # would clear the mark of a query that failed to parse)
            yield CompletingInput(value=self.query_text, suggester=self.completer, id="filter", validate_on=[],
                                  placeholder="tag:dance score>0.7 -tag:draft (Enter; Tab completes)")
        table = DataTable(id="table", cursor_type="row", zebra_stripes=True, cell_padding=CELL_PADDING)
        yield table
        yield Static(EMPTY_HINT, id="empty")
        with Horizontal(id="bottom"):
            yield VerticalScroll(Static("", id="detail-text"), id="detail")
            with Vertical(id="preview"):
                yield SkeletonView(id="skeleton")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#table", DataTable)
        self.widths = self._column_widths()
        for label, _attr, _width in COLUMNS:
            table.add_column(label, key=label, width=self.widths[label])
        table.focus()
        # the scroll wheel and the scrollbar move the view without the cursor: they read on too
        self.watch(table, "scroll_y", lambda _y: self._maybe_more(), init=False)
        self.load(self.query_text)

    def _column_widths(self) -> dict[str, int]:
        """The columns' widths for this terminal. The table spans the screen; the room of its
        vertical scrollbar is kept free whether or not the bar shows, so the widths do not change
        with the number of rows a filter leaves."""
        table = self.query_one("#table", DataTable)
        return column_widths(self.size.width - table.styles.scrollbar_size_vertical, self.sort_column)

    def on_resize(self, event: events.Resize) -> None:
        # Textual calls this before App's own handler records the new size: the widths are worked
        # out just after. The table is refilled only when they change (on a terminal wider than
        # the full widths, dragging its edge costs nothing).
        if self.widths:
            self.call_later(self._resized)

    def _resized(self) -> None:
        if self._column_widths() != self.widths:
            self._fill(self.selected.ref if self.selected else None)

    # -------------------------------------------------------------------------- loading
    def load(self, query: str, keep: str | None = None, rows: int = 0) -> None:
        """Show the first ``rows`` versions matching ``query`` in the current sort, the cursor on
        ``keep`` (a ref) if they hold it: one SQL query with a LIMIT, read in a worker; the count
        follows. A malformed query is reported and changes nothing."""
        from motionlib.index.query import Query

        try:
            q = Query.parse(query)
        except MotionlibError as err:
            self._query_error(str(err))
            return
        self._generation += 1
        self._read_first(q, query, sort_pairs(self.sort_column, self.sort_reverse), max(rows, PAGE),
                         keep, self._generation)

    @work(thread=True, exclusive=True, group="load")
    def _read_first(self, q, query: str, sort, limit: int, keep: str | None, generation: int) -> None:
        t0 = time.perf_counter()
        try:
            records = self.library.page(q, sort, limit=limit)
        except MotionlibError as err:
            self.call_from_thread(self._query_error, str(err))
            return
        seconds = time.perf_counter() - t0
        self.call_from_thread(self._show_records, generation, records, query, keep, seconds, limit)
        if len(records) < limit:
            total = len(records)  # all of them: nothing to count
        else:
            try:
                total = self.library.count(q)
            except MotionlibError as err:
                self.call_from_thread(self._status, f"[red]{err}[/red]")
                return
        self.call_from_thread(self._show_count, generation, total)

    def _query_error(self, message: str) -> None:
        self.query_one("#filter", Input).add_class("-invalid")
        self._status(f"[red]{message}[/red]")

    def _show_records(self, generation: int, records: list, query: str, keep: str | None, seconds: float,
                      limit: int) -> None:
        if generation != self._generation:
            return  # a newer query or sort is on its way
        self.query_one("#filter", Input).remove_class("-invalid")
        self.query_text = query
        self.records = records
        self.exhausted = len(records) < limit
        self.total = len(records) if self.exhausted else None
        self._more_for = None
        t0 = time.perf_counter()
        self._fill(keep or (self.selected.ref if self.selected else None))
        self.timings["fill"] = time.perf_counter() - t0
        empty = not records and not query.strip()
        self.query_one("#empty").display = empty
        self.query_one("#table").display = not empty
        if self.loaded_at is None:
            self.loaded_at = time.perf_counter()
            self.timings["first_table"] = self.loaded_at - self._started
            self.call_after_refresh(self._first_drawn)
            self.read_values()
        self.timings["last_load"] = seconds
        self._load_ms = seconds * 1000
        self._show_status()
        if not records:
            self._select(None)

    def _show_count(self, generation: int, total: int) -> None:
        if generation == self._generation:
            self.total = total
            self._show_status()

    def _show_status(self) -> None:
        query = self.query_text
        loaded = len(self.records)
        if self.total is None:
            head = f"{loaded:,}+ versions"
        else:
            head = f"{self.total:,} version{'s' if self.total != 1 else ''}"
        head += f" match {query!r}" if query.strip() else ""
        more = "" if self.exhausted else f", {loaded:,} loaded, more as you scroll"
        self._status(f"{head}  ({self._load_ms:.0f} ms{more})")

    def _maybe_more(self) -> None:
        """Read the next page when the cursor or the bottom of the view is within PREFETCH rows of
        the last row loaded (one page at a time)."""
        if (self.exhausted or not self.records or self.filling or self._more_for == self._generation
                or not self.is_mounted):
            return
        table = self.query_one("#table", DataTable)
        bottom = int(table.scroll_y) + table.scrollable_content_region.height
        if max(table.cursor_row, bottom) < len(self.records) - PREFETCH:
            return
        self._more_for = self._generation
        self._read_more(self.query_text, sort_pairs(self.sort_column, self.sort_reverse), self.records[-1],
                        self._generation)

    @work(thread=True, exclusive=True, group="more")
    def _read_more(self, query: str, sort, after, generation: int) -> None:
        t0 = time.perf_counter()
        try:
            records = self.library.page(query, sort, limit=PAGE, after=after)
        except MotionlibError as err:
            self.call_from_thread(self._more_failed, generation, str(err))
            return
        self.call_from_thread(self._append, generation, records, time.perf_counter() - t0)

    def _more_failed(self, generation: int, message: str) -> None:
        if self._more_for == generation:
            self._more_for = None
        self._status(f"[red]{message}[/red]")

    def _append(self, generation: int, records: list, seconds: float) -> None:
        if self._more_for == generation:
            self._more_for = None
        if generation != self._generation:
            return
        self.timings["page"] = seconds
        self.exhausted = len(records) < PAGE
        if self.exhausted and self.total is None:
            self.total = len(self.records) + len(records)
        self.records.extend(records)
        if not self.filling:  # a chunked refill under way puts them in with the rest
            self.query_one("#table", DataTable).add_rows(cells(r, self.widths["motion"]) for r in records)
        self._show_status()
        self.call_after_refresh(self._maybe_more)  # the cursor may be near the end again (End)

    def _fill(self, keep_ref: str | None) -> None:
        """(Re)fill the table from ``self.records``: a page goes in at once; more (a resize or a
        rename after many pages were read) follows in chunks between other events (a DataTable
        measures every new cell, ~0.1 ms each here), so the table answers keys meanwhile."""
        table = self.query_one("#table", DataTable)
        self._fill_generation += 1
        table.clear()
        self._size_columns()  # before the rows go in: the table measures itself as they do
        target = None
        if keep_ref is not None:
            target = next((i for i, r in enumerate(self.records) if r.ref == keep_ref), None)
        self._fill_from(0, self._fill_generation, target)

    def _fill_from(self, start: int, generation: int, target: int | None) -> None:
        if generation != self._fill_generation:
            return  # a newer fill replaced this one
        table = self.query_one("#table", DataTable)
        stop = min(len(self.records), start + (FIRST_CHUNK if start == 0 else CHUNK))
        table.add_rows([cells(r, self.widths["motion"]) for r in self.records[start:stop]])
        if target is not None and start <= target < stop:
            table.move_cursor(row=target, animate=False)
        if stop < len(self.records):
            self.filling = True
            self.call_after_refresh(self._fill_from, stop, generation, target)
        else:
            self.filling = False
            self.timings["filled"] = time.perf_counter() - self._started
            self.call_after_refresh(self._maybe_more)

    @work(thread=True, exclusive=True, group="values")
    def read_values(self) -> None:
        """What the filter's Tab completes a text field's value from (see
        motionlib.index.query.complete_term): the tags in use, and the library's names,
        operations, skeletons and estimators, read with SQL (not from the rows loaded)."""
        try:
            values = {"tag": sorted(name for name, n in self.library.tags() if n)}
            for column in ("name", "operation", "skeleton", "estimator"):
                values[column] = self.library.distinct(column)
        except MotionlibError:
            return
        self.call_from_thread(setattr, self.completer, "values", values)

    def _first_drawn(self) -> None:
        self.first_drawn_wall = time.time()  # wall clock: benchmarks compare it across processes
        self.timings["first_drawn"] = time.perf_counter() - self._started

    def _size_columns(self) -> None:
        """Widths for this terminal and the sort, and the sorted column's arrow."""
        table = self.query_one("#table", DataTable)
        self.widths = self._column_widths()
        for key, column in table.columns.items():
            label = key.value
            arrow = (" ▼" if self.sort_reverse else " ▲") if label == self.sort_column else ""
            column.label = Text(label + arrow)
            column.width = self.widths[label]
        table.refresh()

    def _status(self, markup: str) -> None:
        for status in self.query("#status"):  # none once the app is closing (a count came late)
            status.update(markup)

    # -------------------------------------------------------------------------- selection
    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        i = event.cursor_row
        self._select(self.records[i] if 0 <= i < len(self.records) else None)
        self._maybe_more()

    def _select(self, record) -> None:
        """Show the selection at once; read its details and keypoints once the cursor rests
        (SETTLE seconds), so that paging through thousands of rows never waits on the disk."""
        previous = self.selected
        self.selected = record
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        detail = self.query_one("#detail-text", Static)
        view = self.query_one("#skeleton", SkeletonView)
        if record is None:
            detail.update("")
            view.clear()
            return
        if previous is not None and previous.ref == record.ref and previous.id == record.id:
            self.load_detail(record)  # the record changed (tags ...): details again, keep playing
            return
        detail.update(Text(record.ref, style="bold"))
        view.clear()
        self._pending = self.set_timer(SETTLE, lambda: self._load_selected(record))

    def _load_selected(self, record) -> None:
        self._pending = None
        if self.selected is not None and self.selected.id == record.id:
            self.load_detail(record)
            self.load_motion(record)

    @work(thread=True, exclusive=True, group="detail")
    def load_detail(self, record) -> None:
        try:
            manifest = self.library.manifest(record)
        except MotionlibError as err:
            manifest = {"error": str(err)}
        self.call_from_thread(self._show_detail, record, manifest)

    def _show_detail(self, record, manifest: dict) -> None:
        if self.selected is None or self.selected.id != record.id:
            return
        self.detail = detail_text(record, manifest)
        self.query_one("#detail-text", Static).update(self.detail)

    @work(thread=True, exclusive=True, group="motion")
    def load_motion(self, record) -> None:
        from motionlib.tui.skeleton import SkeletonFrames

        try:
            frames = SkeletonFrames(self.library.load(record.ref))
        except MotionlibError as err:
            self.call_from_thread(self._status, f"[red]{err}[/red]")
            return
        self.call_from_thread(self._show_motion, record, frames)

    def _show_motion(self, record, frames) -> None:
        if self.selected is not None and self.selected.id == record.id:
            self.query_one("#skeleton", SkeletonView).show(frames)

    # -------------------------------------------------------------------------- actions
    @on(Input.Submitted, "#filter")
    def _filter(self, event: Input.Submitted) -> None:
        self.load(event.value)
        self.query_one("#table", DataTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#table", DataTable).focus()

    def action_reload(self) -> None:
        self.load(self.query_text)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_sort_next(self) -> None:
        i = SORTABLE.index(self.sort_column)
        self.sort_by(SORTABLE[(i + 1) % len(SORTABLE)])

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_column, reverse=not self.sort_reverse)

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = (not self.sort_reverse) if column == self.sort_column else column in ("occl", "jit", "frm", "score", "dur")
        self.sort_column, self.sort_reverse = column, reverse
        self._size_columns()  # the arrow moves at once; the rows follow from the index
        self.load(self.query_text, self.selected.ref if self.selected else None)

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(event.column_key.value)

    def action_play_pause(self) -> None:
        self.query_one("#skeleton", SkeletonView).toggle()

    def action_step(self, delta: int) -> None:
        self.query_one("#skeleton", SkeletonView).step(delta)

    def action_tag(self) -> None:
        if self.selected is None:
            return
        record = self.selected
        known = [name for name, _n in self.library.tags()]

        def done(value: str | None) -> None:
            if value and value.split():
                self.write(lambda lib: lib.tag(record.ref, value.split()), f"tagged {record.ref}",
                           lambda: self._reread(record))

        self.push_screen(AskScreen(f"Add tags to {record.ref} (space-separated; Tab completes)", "",
                                   TagSuggester(known, exclude=record.tags)), done)

    def action_untag(self) -> None:
        if self.selected is None:
            return
        record = self.selected
        if not record.tags:
            self.notify(f"{record.ref} has no tags")
            return

        def done(value: str | None) -> None:
            if value and value.split():
                self.write(lambda lib: lib.untag(record.ref, value.split()), f"untagged {record.ref}",
                           lambda: self._reread(record))

        self.push_screen(AskScreen(f"Remove tags from {record.ref}: {', '.join(record.tags)}", "",
                                   TagSuggester(record.tags)), done)

    def action_rename(self) -> None:
        if self.selected is None:
            return
        record = self.selected

        def done(value: str | None) -> None:
            if value and value.strip() and value != record.name:
                # every version of the name changes and may move: the rows loaded are read again
                self.write(lambda lib: lib.rename(record.name, value), f"renamed {record.name} to {value}",
                           lambda: self.call_from_thread(self.load, self.query_text, f"{value}@{record.version}",
                                                         len(self.records)))

        self.push_screen(AskScreen(f"Rename {record.name} (all {record.name} versions)", record.name), done)

    def action_delete(self) -> None:
        if self.selected is None:
            return
        record = self.selected

        def done(yes: bool | None) -> None:
            if yes:
                self.write(lambda lib: lib.remove(record.ref), f"deleted {record.ref}",
                           lambda: self.call_from_thread(self._replace_row, record.id, None))

        self.push_screen(ConfirmScreen(f"Delete {record.ref}? Its stored keypoints are removed for good."), done)

    @work(thread=True, exclusive=False, group="write")
    def write(self, change, message: str, refresh) -> None:
        """Apply one change through the library (committed at once), then ``refresh()`` (in this
        thread) the rows it touched, and the filter's completions."""
        try:
            change(self.library)
        except MotionlibError as err:
            self.call_from_thread(self.notify, str(err), severity="error")
            return
        self.call_from_thread(self.notify, message)
        refresh()
        self.call_from_thread(self.read_values)

    def _reread(self, record) -> None:
        """(In a worker) the version's row again, from the index, where it stands: a row whose
        version no longer matches the filter (tagged draft under -tag:draft) leaves the table."""
        try:
            fresh = self.library.get(record.ref)
            query = self.query_text
            if query.strip() and not self.library.count(query, ids=[fresh.id]):
                fresh = None
        except MotionlibError:
            fresh = None
        self.call_from_thread(self._replace_row, record.id, fresh)

    def _replace_row(self, record_id: int, fresh) -> None:
        """Put ``fresh`` in the place of the row of version ``record_id`` (in place: the rows
        around it and the cursor stay), or remove that row when ``fresh`` is None."""
        from textual.coordinate import Coordinate

        i = next((i for i, r in enumerate(self.records) if r.id == record_id), None)
        if i is None:
            return
        table = self.query_one("#table", DataTable)
        if i >= table.row_count:  # still going in (a chunked fill): read it all again instead
            self.load(self.query_text, self.selected.ref if self.selected else None, len(self.records))
            return
        if fresh is not None:
            self.records[i] = fresh
            for column, value in enumerate(cells(fresh, self.widths["motion"])):
                table.update_cell_at(Coordinate(i, column), value)
            if self.selected is not None and self.selected.id == record_id:
                self._select(fresh)
            return
        table.remove_row(table.coordinate_to_cell_key(Coordinate(i, 0)).row_key)
        del self.records[i]
        if self.total is not None:
            self.total -= 1
        self._show_status()
        row = table.cursor_row
        self._select(self.records[row] if 0 <= row < len(self.records) else None)
        self._maybe_more()


def detail_text(record, manifest: dict) -> Table:
    """The detail pane: scores with raw values, warnings, visibility, lineage, source."""
    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    t.title = f"{record.ref}  {record.frames} frames, {record.duration:.2f}s, {record.fps:.2f} fps, {record.width}x{record.height}"
    t.title_justify = "left"
    t.title_style = "bold"
    if "error" in manifest:
        t.add_row("error", Text(manifest["error"], style="red"))
        return t
    q = manifest.get("quality", {})
    raw = q.get("raw", {})
    for key in ("overall", "occlusion", "jitter", "framing"):
        v = getattr(record, key)
        line = bar(v, 8)
        line.append(f" {v:.2f}" if v is not None else " -", style=score_style(v))
        if key in raw and raw[key] is not None:
            line.append(f"  raw {raw[key]:.4f}", style="dim")
        t.add_row(key, line)
    for w in record.warnings:
        t.add_row("", Text("! " + w, style="yellow"))
    hidden = q.get("details", {}).get("occlusion", {}).get("hidden", {})
    if hidden:
        vis = Text()
        for group, frac in hidden.items():
            if frac is None:
                continue
            v = 1.0 - frac
            vis.append(f"{group} ")
            vis.append(f"{round(100 * v)}%", style=score_style(v))
            vis.append("  ")
        t.add_row("visible", vis)
    per_joint = q.get("details", {}).get("occlusion", {}).get("visible_per_joint")
    if per_joint:
        names = manifest.get("joint_names", [])
        worst = sorted((v, names[i] if i < len(names) else str(i)) for i, v in enumerate(per_joint) if v is not None)[:4]
        t.add_row("least seen", ", ".join(f"{n} {round(100 * v)}%" for v, n in worst))
    t.add_row("tags", ", ".join(record.tags) or "-")
    lin = manifest.get("lineage", {})
    lineage = lin.get("operation", "?")
    if lin.get("parent"):
        lineage += f" of {lin['parent']}"
    if lin.get("params"):
        lineage += "  " + ", ".join(f"{k}={v}" for k, v in lin["params"].items() if v is not None)
    t.add_row("lineage", lineage)
    if lin.get("result"):
        shown = {k: v for k, v in lin["result"].items() if isinstance(v, (int, float, str)) and v is not None}
        t.add_row("", Text(", ".join(f"{k}={v}" for k, v in list(shown.items())[:6]), style="dim"))
    src = manifest.get("source", {})
    source = f"{src.get('file_name')}"
    if src.get("codec"):
        source += f"  {src.get('codec')} {src.get('coded_width')}x{src.get('coded_height')}"
    if src.get("rotation"):
        source += f", rotated {src['rotation']}°"
    source += f"  sha256 {str(src.get('sha256'))[:12]}…  kept: {'yes' if src.get('kept_path') else 'no'}"
    t.add_row("source", source)
    est = manifest.get("estimator", {})
    t.add_row("estimator", f"{est.get('name')} ({est.get('library')})")
    t.add_row("created", str(record.created))
    return t


def run(library_root: Path | str, query: str = "") -> None:
    BrowseApp(library_root, query).run()


if __name__ == "__main__":  # pragma: no cover
    import sys

    run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("library"))
