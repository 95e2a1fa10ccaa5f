"""The few places where the index's SQL differs between SQLite and PostgreSQL.

The reader and the query language write one SQL text with ``?`` placeholders; what differs is
asked of a :class:`Dialect`:

* ``glob`` - SQLite's case-sensitive ``GLOB`` (``*``, ``?``, ``[...]``); PostgreSQL matches the
  same pattern translated to an anchored regular expression (``~``), which a btree index on a
  ``COLLATE "C"`` column serves for a literal prefix as SQLite's GLOB does.
* ``ilike`` - SQLite's ``LIKE`` ignores ASCII case; PostgreSQL's needs ``ILIKE`` (``COLLATE "C"``
  columns: ASCII case as well).
* ``is_`` - ``IS ?`` (NULL-safe equality) is ``IS NOT DISTINCT FROM`` on PostgreSQL.
* ``desc``/``asc`` - SQLite sorts NULLs first, so ``x DESC`` puts them last and ascending needs
  ``x IS NULL, x``; PostgreSQL sorts them last, so ascending is plain and ``DESC`` needs ``NULLS
  LAST`` (for a nullable column: PostgreSQL then sorts rather than walking the index backwards).
* ``tags_list``/``tags_sorted`` - ``group_concat`` is ``string_agg``.
* ``false`` - ``0`` is no boolean on PostgreSQL.

Placeholders: PostgreSQL's driver (psycopg) takes ``%s``; :func:`pg_placeholders` turns the
``?`` of a statement into ``%s`` (the index's SQL holds no ``?`` or ``%`` in literals: values are
always parameters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" | "postgresql"

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    def glob(self, expr: str) -> str:
        """SQL that holds when ``expr`` matches the glob given as the next parameter (pass the
        pattern through :meth:`glob_param`)."""
        return f"{expr} ~ ?" if self.postgres else f"{expr} GLOB ?"

    def glob_param(self, pattern: str) -> str:
        return glob_to_regex(pattern) if self.postgres else pattern

    @property
    def ilike(self) -> str:
        return "ILIKE" if self.postgres else "LIKE"

    def is_(self, expr: str) -> str:
        return f"{expr} IS NOT DISTINCT FROM ?" if self.postgres else f"{expr} IS ?"

    def desc(self, expr: str, nullable: bool = True) -> str:
        """``expr`` descending, NULLs last (a NOT NULL column's plain DESC walks its index)."""
        return f"{expr} DESC NULLS LAST" if self.postgres and nullable else f"{expr} DESC"

    def asc(self, expr: str) -> str:
        """``expr`` ascending, NULLs last: SQLite needs ``IS NULL`` first; PostgreSQL sorts them
        last already (and so walks the column's index forwards)."""
        return expr if self.postgres else f"{expr} IS NULL, {expr}"

    @property
    def false(self) -> str:
        return "false" if self.postgres else "0"

    @property
    def tags_list(self) -> str:
        """A version's tags, unit-separator-joined, in any order (its record sorts them)."""
        if self.postgres:
            return ("(SELECT string_agg(t.name, chr(31)) FROM motion_tag mt JOIN tag t ON t.id = mt.tag_id "
                    "WHERE mt.motion_id = m.id)")
        return ("(SELECT group_concat(t.name, char(31)) FROM motion_tag mt JOIN tag t ON t.id = mt.tag_id "
                "WHERE mt.motion_id = m.id)")

    @property
    def tags_sorted(self) -> str:
        """A version's tags as one sortable text (sorted, comma-separated; NULL when it has none)."""
        if self.postgres:
            return ("(SELECT string_agg(t.name, ',' ORDER BY t.name) COLLATE \"C\" FROM motion_tag mt "
                    "JOIN tag t ON t.id = mt.tag_id WHERE mt.motion_id = m.id)")
        return ("(SELECT group_concat(x, ',') FROM (SELECT t.name AS x FROM motion_tag mt JOIN tag t "
                "ON t.id = mt.tag_id WHERE mt.motion_id = m.id ORDER BY t.name))")


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")


def glob_to_regex(pattern: str, anchored: bool = True) -> str:
    """SQLite's GLOB ``pattern`` as an anchored PostgreSQL regular expression (ARE): ``*`` any
    text, ``?`` one character, ``[...]`` a set (``[^...]`` its complement, a leading ``]`` a
    member, ``a-z`` ranges); everything else literal. A pattern with an unclosed ``[`` matches nothing.
    ``anchored=False`` leaves out ``^``/``$``: the same expression for Python's ``re.fullmatch``
    (with ``re.S``), which answers the query language's terms in Python (query.Query.matches)."""
    out = ["^"] if anchored else []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i + 1
            negate = j < n and pattern[j] == "^"
            if negate:
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            close = pattern.find("]", j)
            if close < 0:  # SQLite: a pattern with an unclosed set matches nothing
                return ".^"
            else:
                body = pattern[i + 1 + negate:close]
                members = "".join("\\" + ch if ch in "\\[]^" else ch for ch in body)
                out.append("[" + ("^" if negate else "") + members + "]")
                i = close
        else:
            out.append(_literal(c))
        i += 1
    if anchored:
        out.append("$")
    return "".join(out)


def _literal(c: str) -> str:
    # in an ARE a backslash before a letter or digit is an escape (\d, \w ...): only the others
    return "\\" + c if not c.isalnum() and c not in " _" and ord(c) < 128 else c


def pg_placeholders(sql: str) -> str:
    """``?`` -> ``%s`` (and a literal ``%`` doubled) for psycopg."""
    return sql.replace("%", "%%").replace("?", "%s")


_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", re.I)
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every password in it replaced by ``***``: the one in a URL's user part, a
    ``password=`` pair, and each of ``secrets`` (a URL's password, percent-encoded or not)."""
    from urllib.parse import unquote

    text = _URL_PASSWORD.sub(r"\1***@", text)
    text = _KV_PASSWORD.sub(r"\1***", text)
    for s in secrets:
        if s:
            for form in {s, unquote(s)}:
                if len(form) >= 3:
                    text = text.replace(form, "***")
    return text
