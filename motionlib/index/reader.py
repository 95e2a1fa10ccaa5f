"""Read-only index queries with stdlib sqlite3 (fast start-up; see the package docstring)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from motionlib.core.errors import NotFound
from motionlib.core.names import Ref
from motionlib.index import migrations
from motionlib.index.dialect import SQLITE, Dialect

COLUMNS = (
    "id", "name", "version", "created", "duration", "fps", "frames", "width", "height", "skeleton",
    "source_name", "source_sha256", "source_size", "source_path", "estimator", "settings_digest",
    "parent", "operation", "op_params", "store_path", "overall", "occlusion", "occlusion_raw",
    "jitter", "jitter_raw", "framing", "framing_raw", "warnings",
)
SCORES = ("overall", "occlusion", "jitter", "framing")


@dataclass
class MotionRecord:
    id: int
    name: str
    version: int
    created: str
    duration: float
    fps: float
    frames: int
    width: int
    height: int
    skeleton: str
    source_name: str | None
    source_sha256: str | None
    source_size: int | None
    source_path: str | None
    estimator: str
    settings_digest: str
    parent: str | None
    operation: str
    op_params: dict[str, Any]
    store_path: str
    overall: float | None
    occlusion: float | None
    occlusion_raw: float | None
    jitter: float | None
    jitter_raw: float | None
    framing: float | None
    framing_raw: float | None
    warnings: list[str]
    tags: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        """The record as documented in docs/json.md and schemas/motion-record.schema.json."""
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "duration": self.duration,
            "fps": self.fps,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "skeleton": self.skeleton,
            "scores": {k: getattr(self, k) for k in SCORES},
            "raw": {k: getattr(self, k + "_raw") for k in SCORES[1:]},
            "warnings": self.warnings,
            "tags": self.tags,
            "source": {
                "file_name": self.source_name,
                "sha256": self.source_sha256,
                "size_bytes": self.source_size,
                "kept_path": self.source_path,
            },
            "estimator": self.estimator,
            "lineage": {"parent": self.parent, "operation": self.operation, "params": self.op_params},
            "store_path": self.store_path,
        }


def _record(row: sqlite3.Row | tuple, tags: str | None) -> MotionRecord:
    values = dict(zip(COLUMNS, row))
    values["op_params"] = json.loads(values["op_params"] or "{}")
    values["warnings"] = json.loads(values["warnings"] or "[]")
    return MotionRecord(**values, tags=sorted(tags.split("\x1f")) if tags else [])


def _select(dialect: Dialect) -> str:
    return "SELECT " + ", ".join(f"m.{c}" for c in COLUMNS) + f", {dialect.tags_list} AS tags FROM motion m"


_SELECT = _select(SQLITE)


IDENTITY_COLUMNS = ("id", "name", "created", "file_name", "sha256", "path", "format", "width", "height",
                    "size_bytes", "body", "skeleton", "pose", "estimator", "warnings")
RENDER_COLUMNS = ("id", "created", "finished", "status", "pid", "motion_ref", "motion_store", "identity_name",
                  "identity_sha256", "backend", "models", "params", "seed", "timings", "output",
                  "output_sha256", "error", "campaign")


@dataclass
class IdentityRecord:
    id: int
    name: str
    created: str
    file_name: str
    sha256: str
    path: str
    format: str
    width: int
    height: int
    size_bytes: int
    body: str  # "full" | "upper"
    skeleton: str
    pose: dict  # {"keypoints": [[x, y] | null ...], "confidence": [...]}
    estimator: str
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "created": self.created, "file_name": self.file_name, "sha256": self.sha256,
            "path": self.path, "format": self.format, "width": self.width, "height": self.height,
            "size_bytes": self.size_bytes, "body": self.body, "skeleton": self.skeleton,
            "estimator": self.estimator, "warnings": self.warnings, "pose": self.pose,
        }


@dataclass
class RenderRecord:
    id: int
    created: str
    finished: str | None
    status: str  # running | done | failed
    pid: int | None
    motion_ref: str
    motion_store: str
    identity_name: str
    identity_sha256: str
    backend: str
    models: dict
    params: dict
    seed: int
    timings: dict
    output: str
    output_sha256: str | None
    error: str | None
    campaign: str | None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in RENDER_COLUMNS}


def _identity(row) -> IdentityRecord:
    v = dict(zip(IDENTITY_COLUMNS, row))
    v["pose"] = json.loads(v["pose"])
    v["warnings"] = json.loads(v["warnings"] or "[]")
    return IdentityRecord(**v)


def _render(row) -> RenderRecord:
    v = dict(zip(RENDER_COLUMNS, row))
    for k in ("models", "params", "timings"):
        v[k] = json.loads(v[k] or "{}")
    return RenderRecord(**v)


class Reader:
    """Read-only queries. ``Reader(path)``: a stdlib connection to the SQLite index at ``path``;
    a PostgreSQL index (index.pg) passes its own ``conn`` (``execute(sql, params)`` with ``?``
    placeholders, ``stream``, ``close``) and ``dialect``."""

    def __init__(self, path: Path | None = None, read_only: bool = False, *, conn=None,
                 dialect: Dialect = SQLITE):
        self.dialect = dialect
        self._select = _SELECT if dialect is SQLITE else _select(dialect)
        self._conn = conn if conn is not None else migrations.connect(str(path), read_only)

    def close(self) -> None:
        self._conn.close()

    def _rows(self, sql: str, params, batch: int) -> Iterator[tuple]:
        """The rows of ``sql``, ``batch`` at a time from the database (bounded memory)."""
        stream = getattr(self._conn, "stream", None)
        if stream is not None:
            yield from stream(sql, params, batch)
            return
        cursor = self._conn.execute(sql, params)
        while rows := cursor.fetchmany(batch):
            yield from rows

    def integrity(self) -> list[str]:
        """The index's own check: ``["ok"]`` when sound (SQLite's quick_check; a PostgreSQL
        server checks its own pages, so there it is always ``["ok"]``)."""
        if self.dialect is not SQLITE:
            return ["ok"]
        return [row[0] for row in self._conn.execute("PRAGMA quick_check").fetchall()]

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _query(self, where: str = "", params: Iterable[Any] = (), order: str = "m.name, m.version",
               limit: int | None = None) -> list[MotionRecord]:
        sql = self._select + (f" WHERE {where}" if where else "") + f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_record(r[:-1], r[-1]) for r in self._conn.execute(sql, tuple(params))]

    def list(
        self,
        *,
        tags: Iterable[str] = (),
        min_score: float | None = None,
        name: str | None = None,
        query=None,
        sort: str | None = None,
        limit: int | None = None,
    ) -> list[MotionRecord]:
        """Versions by name then version (or ``sort``, see index.query.parse_sort); every tag and
        every term of ``query`` (an index.query.Query or its text) must match."""
        return list(self.iter_list(tags=tags, min_score=min_score, name=name, query=query, sort=sort, limit=limit))

    def iter_list(self, *, tags: Iterable[str] = (), min_score: float | None = None, name: str | None = None,
                  query=None, sort: str | None = None, limit: int | None = None,
                  batch: int = 1000) -> Iterator[MotionRecord]:
        """``list``'s versions one at a time, read ``batch`` rows at a time: memory stays bounded
        at any library size (the reader must stay open while it is consumed)."""
        sql, params = self._list_sql(tags=tags, min_score=min_score, name=name, query=query, sort=sort, limit=limit)
        for r in self._rows(sql, params, batch):
            yield _record(r[:-1], r[-1])

    def plan(self, **filters) -> list[str]:
        """The query plan for ``list(**filters)``: SQLite's EXPLAIN QUERY PLAN details (which
        indexes it uses; tests/test_index.py checks the common queries), PostgreSQL's EXPLAIN lines."""
        sql, params = self._list_sql(**filters)
        if self.dialect is not SQLITE:
            return [row[0] for row in self._conn.execute("EXPLAIN " + sql, params)]
        return [row[3] for row in self._conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

    def _list_sql(self, *, tags: Iterable[str] = (), min_score: float | None = None, name: str | None = None,
                  query=None, sort: str | None = None, limit: int | None = None) -> tuple[str, tuple]:
        from motionlib.index.query import Query, order_sql, parse_sort

        clauses, params = [], []
        if query:
            q = query if isinstance(query, Query) else Query.parse(query)
            where, qp = q.where(self.dialect)  # like: terms are answered by the library first
            if where:
                clauses.append(where)
                params += qp
        for tag in tags:
            clauses.append("m.id IN (SELECT mt.motion_id FROM motion_tag mt JOIN tag t ON t.id = mt.tag_id "
                           "WHERE t.name = ?)")
            params.append(tag.lower())  # tags are stored lower-cased: case-insensitive
        if min_score is not None:
            clauses.append("m.overall >= ?")
            params.append(min_score)
        if name is not None:
            clauses.append("m.name = ?")
            params.append(name)
        sql = self._select + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        sql += f" ORDER BY {order_sql(parse_sort(sort), self.dialect)}" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return sql, tuple(params)

    def descriptors(self, kind: int) -> tuple[list[int], list[bytes]]:
        """Every stored motion descriptor of ``kind``: (version ids, packed values)."""
        rows = self._conn.execute("SELECT motion_id, vector FROM motion_descriptor WHERE kind = ? ORDER BY motion_id",
                                  (kind,)).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def descriptor(self, motion_id: int, kind: int) -> bytes | None:
        row = self._conn.execute("SELECT vector FROM motion_descriptor WHERE motion_id = ? AND kind = ?",
                                 (motion_id, kind)).fetchone()
        return None if row is None else row[0]

    def by_ids(self, ids: Iterable[int]) -> dict[int, MotionRecord]:
        ids = [int(i) for i in ids]
        out: dict[int, MotionRecord] = {}
        for k in range(0, len(ids), 500):
            chunk = ids[k:k + 500]
            for rec in self._query(f"m.id IN ({', '.join('?' * len(chunk))})", chunk):
                out[rec.id] = rec
        return out

    def get(self, ref: Ref | str) -> MotionRecord:
        ref = Ref.parse(ref) if isinstance(ref, str) else ref
        if ref.version is None:
            rows = self._query("m.name = ?", [ref.name], order="m.version DESC")
        else:
            rows = self._query("m.name = ? AND m.version = ?", [ref.name, ref.version])
        if rows:
            return rows[0]
        if ref.version is not None and self._query("m.name = ?", [ref.name]):
            versions = ", ".join(str(r.version) for r in self._query("m.name = ?", [ref.name]))
            raise NotFound(f"{ref} does not exist ({ref.name} has versions {versions})")
        raise NotFound(f"no motion named {ref.name!r} in this library")

    def find_same(self, name: str, sha256: str, digest: str, operation: str = "ingest") -> MotionRecord | None:
        rows = self._query(
            "m.name = ? AND m.source_sha256 = ? AND m.settings_digest = ? AND m.operation = ?",
            [name, sha256, digest, operation],
        )
        return rows[0] if rows else None

    def store_paths(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT store_path FROM motion")}

    def source_paths(self) -> set[str]:
        return {r[0] for r in self._conn.execute("SELECT source_path FROM motion WHERE source_path IS NOT NULL")}

    def tags(self) -> list[tuple[str, int]]:
        return list(
            self._conn.execute(
                "SELECT t.name, count(mt.motion_id) FROM tag t LEFT JOIN motion_tag mt ON mt.tag_id = t.id "
                "GROUP BY t.id ORDER BY t.name"
            )
        )

    def identities(self, name: str | None = None) -> list[IdentityRecord]:
        sql = f"SELECT {', '.join(IDENTITY_COLUMNS)} FROM identity"
        rows = self._conn.execute(sql + (" WHERE name = ?" if name is not None else "") + " ORDER BY name",
                                  (name,) if name is not None else ())
        return [_identity(r) for r in rows]


    def get_identity(self, name: str) -> IdentityRecord:
        found = self.identities(name)
        if not found:
            known = [r[0] for r in self._conn.execute("SELECT name FROM identity ORDER BY name LIMIT 20")]
            hint = f" (identities: {', '.join(known)})" if known else " (add one with `motionlib identity add IMAGE --name NAME`)"
            raise NotFound(f"no identity named {name!r} in this library{hint}")
        return found[0]


    def renders(self, *, ids: Iterable[int] | None = None, limit: int | None = None,
                status: str | None = None) -> list[RenderRecord]:
        return list(self.iter_renders(ids=ids, limit=limit, status=status))

    def iter_renders(self, *, ids: Iterable[int] | None = None, limit: int | None = None,
                     status: str | None = None, batch: int = 1000) -> Iterator[RenderRecord]:
        """Render records, oldest first (``limit``: the newest N), ``batch`` rows at a time."""
        sql = f"SELECT {', '.join(RENDER_COLUMNS)} FROM render"
        clauses, params = [], []
        if ids is not None:
            ids = list(ids)
            if not ids:
                return
            clauses.append(f"id IN ({', '.join('?' * len(ids))})")
            params += ids
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        sql += (f" WHERE {' AND '.join(clauses)}" if clauses else "") + " ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace(' ORDER BY id', ' ORDER BY id DESC')} LIMIT {int(limit)}) AS r ORDER BY id"
        yield from (_render(r) for r in self._rows(sql, params, batch))

    # ---------------------------------------------------------------- pages (the browser)
    def page(self, query=None, sort=None, *, limit: int = 200,
             after: MotionRecord | None = None) -> list[MotionRecord]:
        """Up to ``limit`` versions matching ``query`` (an index.query.Query or its text), in
        ``sort`` order (parse_sort's spec, its result, or (column, descending) pairs that may name
        ``tags``; name then version by default and as the tie-break; NULLs last either way),
        starting after ``after``, the last record of the previous page.

        Keyset paging: a page is one query with a LIMIT that starts where the last one ended, so
        the 500th page costs what the first does. A column that may be NULL is read in two runs,
        its values, then its NULLs, so that an index on the column serves the order and the seek
        (``ORDER BY col IS NULL, col`` would scan and sort the whole table for every page)."""
        from dataclasses import replace

        where, params = _where(query, self.dialect)
        keys = _sort_keys(sort, self.dialect)
        first = keys[0]
        runs = [([replace(first, nullable=False)] + keys[1:], first.present)]
        if first.nullable:
            runs.append((keys[1:], first.absent))
        start = 1 if after is not None and first.nullable and first.value(after) is None else 0
        out: list[MotionRecord] = []
        for i in range(start, len(runs)):
            run_keys, run_where = runs[i]
            clauses, p = [c for c in (where, run_where) if c], list(params)
            if after is not None and i == start:
                seek, sp = _after(run_keys, after, self.dialect)
                clauses.append(seek)
                p += sp
            out += self._query(" AND ".join(clauses), p, order=", ".join(k.order() for k in run_keys),
                               limit=limit - len(out))
            if len(out) >= limit:
                break
        return out

    def count(self, query=None, *, ids: Iterable[int] | None = None) -> int:
        """The number of versions matching ``query`` (among ``ids`` when given)."""
        where, params = _where(query, self.dialect)
        if ids is not None:
            ids = [int(i) for i in ids]
            if not ids:
                return 0
            where = " AND ".join(c for c in (where, f"m.id IN ({', '.join('?' * len(ids))})") if c)
            params += ids
        sql = "SELECT count(*) FROM motion m" + (f" WHERE {where}" if where else "")
        return self._conn.execute(sql, params).fetchone()[0]

    def children(self, refs: Iterable[str]) -> list[MotionRecord]:
        """The versions made from any of ``refs`` (their lineage's parent), by name and version."""
        refs = list(refs)
        return self._query(f"m.parent IN ({', '.join('?' * len(refs))})", refs) if refs else []

    def distinct(self, column: str) -> list[str]:
        """The distinct values of a text column of motion (names, operations ...), sorted."""
        if column not in COLUMNS:
            raise ValueError(f"no column {column!r}")
        sql = f"SELECT DISTINCT {column} FROM motion WHERE {column} IS NOT NULL ORDER BY {column}"
        return [r[0] for r in self._conn.execute(sql)]


def _where(query, dialect: Dialect = SQLITE) -> tuple[str, list[Any]]:
    from motionlib.index.query import Query

    if not query:
        return "", []
    q = query if isinstance(query, Query) else Query.parse(query)
    return q.where(dialect)


NOT_NULL = {"id", "name", "version", "created", "duration", "fps", "frames", "width", "height", "skeleton",
            "estimator", "settings_digest", "operation", "op_params", "store_path", "warnings"}
# a version's tags as one sortable text (sorted, comma-separated; NULL when it has none)
TAGS_SQL = SQLITE.tags_sorted


@dataclass(frozen=True)
class _Key:
    """One term of a page's order: its SQL, direction, and how to read it from a record."""

    column: str  # a motion column, or "tags"
    desc: bool
    nullable: bool
    dialect: Dialect = SQLITE

    @property
    def sql(self) -> str:
        return self.dialect.tags_sorted if self.column == "tags" else f"m.{self.column}"

    @property
    def present(self) -> str:
        if self.column == "tags":
            return "EXISTS (SELECT 1 FROM motion_tag mt WHERE mt.motion_id = m.id)"
        return f"m.{self.column} IS NOT NULL"

    @property
    def absent(self) -> str:
        return f"NOT {self.present}" if self.column == "tags" else f"m.{self.column} IS NULL"

    def value(self, record: MotionRecord) -> Any:
        if self.column == "tags":
            return ",".join(sorted(record.tags)) or None
        return getattr(record, self.column)

    def order(self) -> str:
        direction = "DESC" if self.desc else "ASC"
        return f"{self.sql} IS NULL, {self.sql} {direction}" if self.nullable else f"{self.sql} {direction}"


def _sort_keys(sort, dialect: Dialect = SQLITE) -> list[_Key]:
    from motionlib.index.query import parse_sort

    pairs = parse_sort(sort) if isinstance(sort, str) or sort is None else list(sort)
    keys: list[_Key] = []
    for column, desc in pairs:
        if column != "tags" and column not in COLUMNS:
            raise ValueError(f"cannot sort by {column!r}")
        if column not in {k.column for k in keys}:
            keys.append(_Key(column, bool(desc), column == "tags" or column not in NOT_NULL, dialect))
    for column in ("name", "version"):  # the tie-break: (name, version) is unique
        if column not in {k.column for k in keys}:
            keys.append(_Key(column, False, False, dialect))
    return keys


def _after(keys: list[_Key], record: MotionRecord, dialect: Dialect = SQLITE) -> tuple[str, list[Any]]:
    """SQL for the rows that come after ``record`` in the order of ``keys`` (NULLs last in each).
    Neighbouring NOT NULL keys in one direction compare as one row value ((name, version) >
    (?, ?)). The first key bounds the range and the rest is a NOT (col <= ? AND NOT (col = ? AND
    (name, version) <= (?, ?))), never an OR of ranges, which SQLite would answer by reading every
    later row and sorting them; this way an index on the first key seeks and stops at the LIMIT."""
    groups: list[tuple[list[_Key], list[Any]]] = []
    for k in keys:
        v = k.value(record)
        last = groups[-1][0] if groups else None
        if last and not k.nullable and not last[-1].nullable and last[-1].desc == k.desc:
            groups[-1][0].append(k)
            groups[-1][1].append(v)
        else:
            groups.append(([k], [v]))

    def after(i: int) -> tuple[str, list[Any]]:
        gkeys, values = groups[i]
        key = gkeys[0]
        lhs = key.sql if len(gkeys) == 1 else "(" + ", ".join(k.sql for k in gkeys) + ")"
        rhs = "?" if len(gkeys) == 1 else "(" + ", ".join("?" * len(gkeys)) + ")"
        if key.nullable and values[0] is None:  # only NULLs come after a NULL
            rest, rp = after(i + 1)
            return f"{key.sql} IS NULL AND ({rest})", rp
        op = "<" if key.desc else ">"
        if i == len(groups) - 1:
            sql = f"{lhs} {op} {rhs}"
            return (f"({sql} OR {key.sql} IS NULL)" if key.nullable else sql), list(values)
        rest, rp = after(i + 1)
        eq = dialect.is_(key.sql) if key.nullable else f"{lhs} = {rhs}"
        ge = f"{lhs} {op}= {rhs}" + (f" OR {key.sql} IS NULL" if key.nullable else "")
        return f"({ge}) AND NOT ({eq} AND NOT ({rest}))", list(values) + list(values) + rp

    return after(0)
