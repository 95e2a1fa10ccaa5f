"""Every write to the index, through the SQLModel tables, inside one write transaction.

``Index.write()`` opens the transaction (BEGIN IMMEDIATE: the index's write lock) and yields a
:class:`Writer`; the library composes its steps (number a version, move files, insert the row)
inside that block, so what it does on disk and in the index commits together or not at all.
Reads go through the fast stdlib reader (``reader.py``).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from sqlalchemy import delete, func
from sqlmodel import Session, select

from motionlib.core.errors import InputError, NotFound
from motionlib.index.models import IdentityRow, MotionRow, MotionTag, NameCounter, RenderRow, Tag


def motion_row(m: dict, store_path: str, kept: str | None) -> MotionRow:
    """The index row of a stored version, from its manifest (commit and reindex alike)."""
    q, src, lineage = m["quality"], m["source"], m["lineage"]
    return MotionRow(
        name=m["name"], version=int(m["version"]), created=m["created"],
        duration=m["duration"], fps=m["fps"], frames=m["frames"], width=m["width"],
        height=m["height"], skeleton=m["skeleton"],
        source_name=src.get("file_name"), source_sha256=src.get("sha256"),
        source_size=src.get("size_bytes"), source_path=kept,
        estimator=m["estimator"]["name"], settings_digest=m["estimator"]["settings_digest"],
        parent=lineage.get("parent"), operation=lineage.get("operation", "ingest"),
        op_params=json.dumps(lineage.get("params", {})),
        store_path=store_path,
        overall=q.get("overall"), occlusion=q["scores"].get("occlusion"),
        occlusion_raw=q["raw"].get("occlusion"), jitter=q["scores"].get("jitter"),
        jitter_raw=q["raw"].get("jitter"), framing=q["scores"].get("framing"),
        framing_raw=q["raw"].get("framing"), warnings=json.dumps(q.get("warnings", [])),
    )


class Writer:
    """The steps of a write transaction (see the module docstring)."""

    def __init__(self, session: Session):
        self.session = session
        self._pg = session.get_bind().dialect.name == "postgresql"

    def _sql(self, sql: str, params: tuple) -> None:
        """Raw SQL with ``?`` placeholders, in the driver's own style."""
        if self._pg:
            from motionlib.index.dialect import pg_placeholders

            sql = pg_placeholders(sql)
        self.session.connection().exec_driver_sql(sql, params)

    # ------------------------------------------------------------------ versions
    def has_same(self, name: str, sha256: str, digest: str, operation: str) -> bool:
        """Whether ``name`` already holds a version of this source, settings and operation."""
        s = self.session
        return s.exec(select(MotionRow.id).where(
            MotionRow.name == name, MotionRow.source_sha256 == sha256,
            MotionRow.settings_digest == digest, MotionRow.operation == operation,
        )).first() is not None

    def next_version(self, name: str) -> int:
        """Spend the next version number of ``name`` (numbers are never reused)."""
        s = self.session
        counter = s.get(NameCounter, name)
        highest = s.exec(select(func.max(MotionRow.version)).where(MotionRow.name == name)).one() or 0
        version = max(highest, counter.last_version if counter else 0) + 1
        if counter is None:
            s.add(NameCounter(name=name, last_version=version))
        else:
            counter.last_version = version
            s.add(counter)
        return version

    def insert_version(self, manifest: dict, store_path: str, kept: str | None,
                       tags: Iterable[str] = (), descriptor: tuple[int, bytes] | None = None) -> int:
        row = motion_row(manifest, store_path, kept)
        self.session.add(row)
        self.session.flush()
        self.link_tags(row.id, tags)
        if descriptor is not None:
            self.set_descriptor(int(row.id), *descriptor)
        return int(row.id)

    def set_descriptor(self, motion_id: int, kind: int, vector: bytes) -> None:
        """A version's motion descriptor (processing/similarity.py): its kind and packed values."""
        if self._pg:
            self._sql("INSERT INTO motion_descriptor (motion_id, kind, vector) VALUES (?, ?, ?) ON CONFLICT "
                      "(motion_id) DO UPDATE SET kind = excluded.kind, vector = excluded.vector",
                      (motion_id, int(kind), bytes(vector)))
        else:
            self._sql("INSERT OR REPLACE INTO motion_descriptor (motion_id, kind, vector) VALUES (?, ?, ?)",
                      (motion_id, int(kind), bytes(vector)))

    def referenced_paths(self) -> tuple[set[str], set[str]]:
        """(version directories, kept sources) that rows refer to."""
        rows = self.session.exec(select(MotionRow.store_path, MotionRow.source_path)).all()
        return {r[0] for r in rows}, {r[1] for r in rows if r[1]}

    def delete_versions(self, ids: Iterable[int]) -> None:
        s = self.session
        for motion_id in ids:
            for link in s.exec(select(MotionTag).where(MotionTag.motion_id == motion_id)).all():
                s.delete(link)
            row = s.get(MotionRow, motion_id)
            if row is not None:
                self._sql("DELETE FROM motion_descriptor WHERE motion_id = ?", (motion_id,))
                s.delete(row)

    def rename(self, old: str, new: str) -> list[str]:
        """Give every version of ``old`` the name ``new`` (parents that named it follow); returns
        the versions' store paths."""
        s = self.session
        rows = s.exec(select(MotionRow).where(MotionRow.name == old)).all()
        if not rows:
            raise NotFound(f"no motion named {old!r} in this library")
        if s.exec(select(MotionRow.id).where(MotionRow.name == new)).first() is not None:
            raise InputError(f"a motion named {new!r} exists already; choose another name")
        if s.get(NameCounter, new) is not None:
            raise InputError(f"{new!r} was used before (its version numbers are spent); choose another name")
        for row in rows:
            row.name = new
            s.add(row)
        for child in s.exec(select(MotionRow).where(MotionRow.parent.like(old.replace("%", "") + "@%"))).all():
            pname, _, pver = child.parent.rpartition("@")
            if pname == old:
                child.parent = f"{new}@{pver}"
                s.add(child)
        counter = s.get(NameCounter, old)
        if counter is not None:
            s.add(NameCounter(name=new, last_version=counter.last_version))
            s.delete(counter)
        return [r.store_path for r in rows]

    # ------------------------------------------------------------------ tags
    def link_tags(self, motion_id: int, tags: Iterable[str]) -> None:
        s = self.session
        for name in tags:
            tag = s.exec(select(Tag).where(Tag.name == name)).first()
            if tag is None:
                tag = Tag(name=name)
                s.add(tag)
                s.flush()
            if s.get(MotionTag, (motion_id, tag.id)) is None:
                s.add(MotionTag(motion_id=motion_id, tag_id=tag.id))

    def unlink_tags(self, motion_id: int, tags: list[str]) -> None:
        """Remove the tags from a version, and drop tags nobody uses any more."""
        s = self.session
        for t in s.exec(select(Tag).where(Tag.name.in_(tags))).all():
            link = s.get(MotionTag, (motion_id, t.id))
            if link is not None:
                s.delete(link)
        s.flush()
        for t in s.exec(select(Tag).where(Tag.name.in_(tags))).all():
            if s.exec(select(MotionTag).where(MotionTag.tag_id == t.id)).first() is None:
                s.delete(t)

    # ------------------------------------------------------------------ rebuilding
    def clear_versions(self) -> dict[str, int]:
        """Delete every version row and tag (reindex rebuilds them); returns the name counters,
        so that numbers stay spent."""
        s = self.session
        counters = {c.name: c.last_version for c in s.exec(select(NameCounter)).all()}
        s.exec(delete(MotionTag))
        s.exec(delete(Tag))
        self._sql("DELETE FROM motion_descriptor", ())
        s.exec(delete(MotionRow))
        s.flush()
        return counters

    def set_counters(self, counters: dict[str, int]) -> None:
        s = self.session
        s.exec(delete(NameCounter))
        for n, v in counters.items():
            s.add(NameCounter(name=n, last_version=v))

    # ------------------------------------------------------------------ identities
    def insert_identity(self, **fields: Any) -> int:
        s = self.session
        if s.exec(select(IdentityRow.id).where(IdentityRow.name == fields["name"])).first() is not None:
            raise InputError(f"an identity named {fields['name']!r} exists already")
        row = IdentityRow(**fields)
        s.add(row)
        s.flush()
        return int(row.id)

    def delete_identity(self, identity_id: int, sha256: str) -> bool:
        """Delete an identity; returns whether another identity still uses its picture."""
        s = self.session
        row = s.get(IdentityRow, identity_id)
        if row is not None:
            s.delete(row)
        s.flush()
        return s.exec(select(IdentityRow.id).where(IdentityRow.sha256 == sha256)).first() is not None

    # ------------------------------------------------------------------ renders
    def insert_render(self, **fields: Any) -> int:
        row = RenderRow(**fields)
        self.session.add(row)
        self.session.flush()
        return int(row.id)

    def finish_render(self, render_id: int, status: str, finished: str, *, output_sha256: str | None,
                      error: str | None, timings: dict, result: dict | None) -> None:
        s = self.session
        row = s.get(RenderRow, render_id)
        row.status = status
        row.finished = finished
        row.pid = None
        row.output_sha256 = output_sha256
        row.error = error
        row.timings = json.dumps(timings)
        if result:
            params = json.loads(row.params)
            params["result"] = result
            row.params = json.dumps(params)
        s.add(row)

    def set_render_qa(self, render_id: int, qa: dict) -> None:
        """Store a render's QA (render/qa.py) in its params, replacing an earlier one."""
        row = self.session.get(RenderRow, render_id)
        params = json.loads(row.params)
        params["qa"] = qa
        row.params = json.dumps(params)
        self.session.add(row)

    def fail_renders(self, render_ids: Iterable[int], error: str, finished: str) -> None:
        """Mark runs still ``running`` as failed (their process is gone)."""
        s = self.session
        for rid in render_ids:
            row = s.get(RenderRow, rid)
            if row is not None and row.status == "running":
                row.status, row.error, row.pid, row.finished = "failed", error, None, finished
                s.add(row)
