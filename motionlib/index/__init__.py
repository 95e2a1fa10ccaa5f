"""The index: one row per motion version, tags, render records later - in SQLite (a library on
a disk) or PostgreSQL (a team's library, ``pg``); ``open_index`` chooses by its target.

* ``migrations`` - the schema as ordered, versioned SQL migrations (``PRAGMA user_version``).
* ``models`` - SQLModel table classes; every write goes through them.
* ``writer`` - every write: ``Index.write()`` yields a ``Writer`` inside the write lock. The index
  is the only package that imports SQLModel or SQLAlchemy (a test checks it).
* ``reader`` - read-only queries with the stdlib ``sqlite3`` module. Importing SQLModel costs ~0.5 s
  here, which alone would break the 0.5 s budget of ``motionlib list``; reads therefore skip it.
  A test checks that the migrated schema and the SQLModel tables agree column for column.
* ``dialect`` - what differs between SQLite's and PostgreSQL's SQL (the reader and the query
  language write one SQL text and ask it).
* ``pg`` - ``PostgresIndex``: the same API on a PostgreSQL server (psycopg, imported only there).
"""

from motionlib.index.db import Index, open_index, warm_imports

__all__ = ["Index", "open_index", "warm_imports"]
