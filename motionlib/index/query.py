"""The query language of ``motionlib list`` and the browser's filter box.

A query is a list of terms, all of which must hold (AND)::

    tag:dance score>0.7 fps>=30 name:wave* -tag:draft duration<6 is:latest point

* ``field:value`` - text fields match exactly, or as a glob with ``*``/``?``; numeric fields equal;
  ``a,b`` means either (``tag:dance,loop``).
* ``field>v``, ``>=``, ``<``, ``<=``, ``=``, ``!=`` - comparisons (numbers; ``created`` compares
  ISO dates as text, ``created>=2026-11``).
* ``-term`` negates a term (after ``--`` on a command line if the shell or a flag gets in the way).
* a bare word matches names and tags containing it (case-insensitive); tags are case-insensitive.
* ``like:NAME`` (or ``like:NAME@N``): the versions most like that motion (processing/similarity.py:
  the LIKE_TOP nearest by descriptor, the motion itself left out), with any other term.
* ``is:latest`` (the newest version of each name), ``is:derived`` (made by an edit),
  ``is:original`` (ingested or imported).

Each term becomes SQL for the index (``Query.where``) and a Python predicate over records
(``Query.matches``) that give the same answer; the terminal browser filters with either.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from motionlib.core.errors import InputError
from motionlib.index.dialect import SQLITE, Dialect

# field -> (column, kind); kind: "text", "num", "date", "tag"
FIELDS: dict[str, tuple[str, str]] = {
    "name": ("name", "text"),
    "tag": ("tag", "tag"),
    "score": ("overall", "num"),
    "overall": ("overall", "num"),
    "occlusion": ("occlusion", "num"),
    "jitter": ("jitter", "num"),
    "framing": ("framing", "num"),
    "fps": ("fps", "num"),
    "duration": ("duration", "num"),
    "frames": ("frames", "num"),
    "version": ("version", "num"),
    "width": ("width", "num"),
    "height": ("height", "num"),
    "skeleton": ("skeleton", "text"),
    "estimator": ("estimator", "text"),
    "op": ("operation", "text"),
    "operation": ("operation", "text"),
    "parent": ("parent", "text"),
    "source": ("source_name", "text"),
    "created": ("created", "date"),
}
IS_VALUES = ("latest", "derived", "original")
LIKE_TOP = 20  # like:X holds for the versions most like X (processing/similarity.py)
SORT_FIELDS = tuple(f for f, (_c, k) in FIELDS.items() if k != "tag")
# bounds that keep a query's SQL within SQLite's limits (expression depth 1000, LIKE/GLOB
# pattern length 50,000) with room to spare
MAX_QUERY_CHARS = 4096
MAX_TERMS = 64
MAX_ALTERNATIVES = 64
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_TERM = re.compile(r"^(?P<field>[A-Za-z_]+)(?P<op>>=|<=|!=|:|>|<|=)(?P<value>.*)$", re.S)


@dataclass(frozen=True)
class Term:
    field: str  # a FIELDS key, "is", or "" for a bare word
    op: str
    value: str
    negate: bool = False

    def __str__(self) -> str:
        body = self.value if not self.field else f"{self.field}{self.op}{self.value}"
        return ("-" if self.negate else "") + body


def _fields_hint() -> str:
    return ", ".join(sorted(FIELDS)) + ", is, like"


def parse_term(text: str) -> Term:
    raw = text
    negate = False
    if text.startswith("-") and len(text) > 1:
        negate, text = True, text[1:]
    m = _TERM.match(text)
    if not m:
        if not text.strip():
            raise InputError(f"empty query term {raw!r}")
        if any(c in text for c in "<>=!"):
            raise InputError(f"malformed query term {raw!r}: write FIELD OP VALUE, e.g. score>0.7")
        return Term("", ":", text, negate)
    field, op, value = m.group("field").lower(), m.group("op"), m.group("value")
    if field == "like":
        if op != ":" or not value:
            raise InputError(f"{raw!r}: write like:NAME or like:NAME@N (the versions most like that motion)")
        return Term("like", ":", value, negate)
    if field == "is":
        if op != ":" or value not in IS_VALUES:
            raise InputError(f"{raw!r}: 'is' takes {', '.join('is:' + v for v in IS_VALUES)}")
        return Term("is", ":", value, negate)
    if field not in FIELDS:
        raise InputError(f"unknown field {field!r} in {raw!r} (fields: {_fields_hint()})")
    if value == "":
        raise InputError(f"{raw!r}: missing a value after {op!r}")
    kind = FIELDS[field][1]
    if value.count(",") >= MAX_ALTERNATIVES:
        raise InputError(f"{raw[:40]!r}...: at most {MAX_ALTERNATIVES} alternatives a term")
    if kind == "num":
        for v in value.split(",") if op == ":" else [value]:
            if not _NUMBER.fullmatch(v) or not math.isfinite(float(v)):
                raise InputError(f"{raw!r}: {field} needs a number (like 0.7, 30 or 1e3), not {v!r}")
    elif op in (">", ">=", "<", "<=") and kind != "date":
        raise InputError(f"{raw!r}: {field} is text; use {field}:VALUE (globs like {field}:wave* work)")
    if kind == "date" and op == ":" and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value):
        raise InputError(f"{raw!r}: created:VALUE takes a date prefix like 2026-11 or 2026-11-23")
    return Term(field, op, value, negate)


class Query:
    def __init__(self, terms: list[Term]):
        self.terms = terms
        self.like_ids: dict[Term, frozenset[int]] = {}  # like:X -> the versions most like X

    def resolve_like(self, similar: Callable[[str], list[int]]) -> None:
        """Answer each ``like:X`` term with ``similar(X)`` (the library's nearest versions): a
        query holding one must be resolved before ``where`` or ``matches``."""
        for t in self.terms:
            if t.field == "like" and t not in self.like_ids:
                self.like_ids[t] = frozenset(similar(t.value))

    @classmethod
    def parse(cls, parts: list[str] | str | None) -> "Query":
        """Terms from a list of arguments or one string; an argument holding spaces is split
        like a shell would (``"tag:dance score>0.7"`` is two terms)."""
        import shlex

        if parts is None:
            return cls([])
        if isinstance(parts, str):
            parts = [parts]
        if sum(len(p) for p in parts) > MAX_QUERY_CHARS:
            raise InputError(f"the query is {sum(len(p) for p in parts):,} characters long; at most {MAX_QUERY_CHARS:,}")
        if any(c in p for p in parts for c in "\x00"):
            raise InputError("the query holds a NUL character")
        words: list[str] = []
        for p in parts:
            try:
                words += shlex.split(p) if any(c.isspace() for c in p) else [p]
            except ValueError as err:
                raise InputError(f"malformed query {p!r}: {err}") from None
        terms = [parse_term(w) for w in words if w.strip()]
        if len(terms) > MAX_TERMS:
            raise InputError(f"the query has {len(terms)} terms; at most {MAX_TERMS}")
        return cls(terms)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __str__(self) -> str:
        return " ".join(str(t) for t in self.terms)

    # ---------------------------------------------------------------- SQL
    def where(self, dialect: Dialect = SQLITE) -> tuple[str, list[Any]]:
        """The terms as one SQL condition over ``motion m`` (``?`` placeholders) and its
        parameters, in ``dialect`` (index.dialect: SQLite's or PostgreSQL's)."""
        clauses, params = [], []
        for t in self.terms:
            sql, p = self._like_sql(t, dialect) if t.field == "like" else _term_sql(t, dialect)
            clauses.append(f"NOT ({sql})" if t.negate else f"({sql})")
            params += p
        return " AND ".join(clauses), params

    # ---------------------------------------------------------------- Python
    def _like_sql(self, t: Term, dialect: Dialect = SQLITE) -> tuple[str, list[Any]]:
        if t not in self.like_ids:
            raise InputError(f"{t}: like: needs the library to answer it")
        ids = sorted(self.like_ids[t])
        return (f"m.id IN ({', '.join('?' * len(ids))})" if ids else dialect.false), list(ids)

    def matches(self, record, latest: Callable[[Any], bool] | None = None) -> bool:
        """Whether ``record`` (a MotionRecord) satisfies every term. ``latest(record)`` answers
        ``is:latest`` (the caller knows the other versions)."""
        for t in self.terms:
            if t.field == "like":
                if t not in self.like_ids:
                    raise InputError(f"{t}: like: needs the library to answer it")
                ok = record.id in self.like_ids[t]
            else:
                ok = _term_match(t, record, latest)
            if ok == t.negate:
                return False
        return True


_NUM_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "=", ":": "=", "!=": "!="}


def _glob(v: str) -> bool:
    return any(c in v for c in "*?[")


def _term_sql(t: Term, d: Dialect = SQLITE) -> tuple[str, list[Any]]:
    if t.field == "":
        escaped = t.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        return (f"(m.name {d.ilike} ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM motion_tag mt JOIN tag t ON "
                f"t.id = mt.tag_id WHERE mt.motion_id = m.id AND t.name {d.ilike} ? ESCAPE '\\'))"), [like, like]
    if t.field == "is":
        return {
            "latest": "m.version = (SELECT max(m2.version) FROM motion m2 WHERE m2.name = m.name)",
            "derived": "m.operation NOT IN ('ingest', 'import')",
            "original": "m.operation IN ('ingest', 'import')",
        }[t.value], []
    col, kind = FIELDS[t.field]
    if kind == "tag":  # tags are stored lower-case; the tag's own index finds it, then its versions
        alts = t.value.lower().split(",")
        cond = " OR ".join(d.glob("t.name") if _glob(a) else "t.name = ?" for a in alts)
        sql = f"m.id IN (SELECT mt.motion_id FROM motion_tag mt JOIN tag t ON t.id = mt.tag_id WHERE {cond})"
        return (f"NOT ({sql})" if t.op == "!=" else sql), [d.glob_param(a) if _glob(a) else a for a in alts]
    if kind == "num":
        if t.op == ":":
            vals = [float(v) for v in t.value.split(",")]
            return " OR ".join(f"abs(m.{col} - ?) < 1e-9" for _ in vals), vals
        if t.op in ("=", "!="):
            return f"abs(m.{col} - ?) {'<' if t.op == '=' else '>='} 1e-9", [float(t.value)]
        return f"m.{col} {_NUM_OPS[t.op]} ?", [float(t.value)]
    if kind == "date":
        if t.op == ":":
            return f"m.{col} LIKE ?", [t.value + "%"]
        return f"m.{col} {_NUM_OPS[t.op]} ?", [t.value]
    # text
    if t.op in (":", "="):
        alts = t.value.split(",")
        return (" OR ".join(d.glob(f"m.{col}") if _glob(a) else f"m.{col} = ?" for a in alts),
                [d.glob_param(a) if _glob(a) else a for a in alts])
    if t.op == "!=":
        return f"(m.{col} IS NULL OR m.{col} != ?)", [t.value]
    raise InputError(f"{t}: unsupported operator for {t.field}")


def _term_match(t: Term, r, latest) -> bool:
    if t.field == "":
        word = t.value.lower()
        return word in r.name.lower() or any(word in tag.lower() for tag in r.tags)
    if t.field == "is":
        if t.value == "latest":
            if latest is None:
                raise InputError("is:latest needs the other versions of each name")
            return latest(r)
        original = r.operation in ("ingest", "import")
        return original if t.value == "original" else not original
    col, kind = FIELDS[t.field]
    if kind == "tag":
        hit = any(_text_eq(tag.lower(), a) for a in t.value.lower().split(",") for tag in r.tags)
        return (not hit) if t.op == "!=" else hit
    value = getattr(r, col)
    if kind == "num":
        if value is None:
            return False
        if t.op == ":":
            return any(abs(value - float(v)) < 1e-9 for v in t.value.split(","))
        x = float(t.value)
        return {
            ">": value > x, ">=": value >= x, "<": value < x, "<=": value <= x,
            "=": abs(value - x) < 1e-9, "!=": abs(value - x) >= 1e-9,
        }[t.op]
    if kind == "date":
        if value is None:
            return False
        if t.op == ":":
            return value.startswith(t.value)
        return {">": value > t.value, ">=": value >= t.value, "<": value < t.value,
                "<=": value <= t.value, "=": value == t.value, "!=": value != t.value}[t.op]
    if t.op in (":", "="):
        return value is not None and any(_text_eq(value, a) for a in t.value.split(","))
    return value is None or value != t.value


def _text_eq(value: str, pattern: str) -> bool:
    """``value`` = ``pattern``, or matches it as SQLite's GLOB does (``[^...]`` negates, ``!`` is
    literal: fnmatch's sets differ), as the SQL of both backends answers (dialect.glob_to_regex)."""
    return _glob_re(pattern).fullmatch(value) is not None if _glob(pattern) else value == pattern


@functools.lru_cache(maxsize=256)
def _glob_re(pattern: str) -> "re.Pattern[str]":
    from motionlib.index.dialect import glob_to_regex

    return re.compile(glob_to_regex(pattern, anchored=False), re.S)


def parse_sort(spec: str | None) -> list[tuple[str, bool]]:
    """``score`` / ``-score`` / ``score:desc``, comma-separated -> [(column, descending)]."""
    if not spec:
        return []
    out = []
    for part in spec.split(","):
        part = part.strip()
        desc = False
        if part.startswith("-"):
            desc, part = True, part[1:]
        if ":" in part:
            part, direction = part.split(":", 1)
            if direction not in ("asc", "desc"):
                raise InputError(f"{{sort}} {spec!r}: direction must be asc or desc", params=["sort"])
            desc = direction == "desc"
        field = part.lower()
        if field not in SORT_FIELDS:
            raise InputError(f"{{sort}} {spec!r}: unknown field {field!r} (fields: {', '.join(SORT_FIELDS)})",
                             params=["sort"])
        out.append((FIELDS[field][0], desc))
    return out


def order_sql(sort: list[tuple[str, bool]], dialect: Dialect = SQLITE) -> str:
    """ORDER BY for parse_sort's result; NULL scores last either way; ties by name, version.
    SQLite sorts NULL first, so a descending sort needs no NULL term - and so can walk the
    column's index (``-score``, best first, is the common one); PostgreSQL says NULLS LAST."""
    from motionlib.index.reader import NOT_NULL

    terms = [dialect.desc(f"m.{col}", col not in NOT_NULL) if desc else dialect.asc(f"m.{col}") for col, desc in sort]
    return ", ".join(terms + ["m.name", "m.version"])


def complete_term(word: str, values: dict[str, list[str]]) -> str | None:
    """``word``, a query term being typed, completed (the browser's Tab), or None when there is
    nothing to complete. Before an operator it completes a field, given its ``:`` where that is
    the field's only sensible operator (``ta`` -> ``tag:``, ``is`` -> ``is:``) and bare where a
    comparison follows (``sc`` -> ``score``); a word that is no field's start completes as a bare
    word, to a tag and then to a name. After ``field:`` (or ``=``, ``!=``) it completes the value
    from ``values`` (keyed by FIELDS' column: ``tag``, ``name``, ``operation`` ...; ``is`` knows
    its own), after a comma the next alternative not given yet (``tag:dance,sm`` ->
    ``tag:dance,smooth``). Case is ignored, the completion is spelled as the value is; a leading
    ``-`` stays. A word that is whole already, a glob, a number or a quoted word is left alone."""
    neg = "-" if word.startswith("-") else ""
    body = word[len(neg):]
    if not body or any(c in body for c in "\"'"):
        return None
    m = _TERM.match(body)
    if m is None:
        if any(c in body for c in "<>=!"):
            return None
        fields = [f + ("" if FIELDS[f][1] in ("num", "date") else ":") for f in sorted(FIELDS)] + ["is:"]
        done = first_completion(body, fields + values.get("tag", []) + values.get("name", []))
    else:
        field, op, value = m.group("field").lower(), m.group("op"), m.group("value")
        if field == "is":
            options = list(IS_VALUES) if op == ":" else []
        elif field in FIELDS and FIELDS[field][1] in ("text", "tag") and op in (":", "=", "!="):
            options = values.get(FIELDS[field][0], [])
        else:
            return None
        given, comma, last = value.rpartition(",")
        if _glob(last):
            return None
        taken = {v.lower() for v in given.split(",")} if comma else set()
        done = first_completion(last, options, taken)
        if done is not None:
            done = body[:len(body) - len(last)] + done
    return None if done is None else neg + done


def first_completion(prefix: str, options: list[str], taken: set[str] | frozenset[str] = frozenset()) -> str | None:
    """The first of ``options`` that starts with ``prefix`` (ignoring case) and is not ``taken``;
    None when ``prefix`` is one of them already: it is whole, and Tab should not lengthen it
    (``dance`` to ``dance-floor``)."""
    p = prefix.lower()
    if any(o.lower() == p for o in options):
        return None
    return next((o for o in options if o.lower().startswith(p) and o.lower() not in taken), None)
