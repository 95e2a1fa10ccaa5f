"""The SQLite index: one row per motion version, tags, render records later.

* ``migrations`` - the schema as ordered, versioned SQL migrations (``PRAGMA user_version``).
* ``models`` - SQLModel table classes; every write goes through them.
* ``writer`` - every write: ``Index.write()`` yields a ``Writer`` inside the write lock. The index
  is the only package that imports SQLModel or SQLAlchemy (a test checks it).
* ``reader`` - read-only queries with the stdlib ``sqlite3`` module. Importing SQLModel costs ~0.5 s
  here, which alone would break the 0.5 s budget of ``motionlib list``; reads therefore skip it.
  A test checks that the migrated schema and the SQLModel tables agree column for column.
"""

from motionlib.index.db import Index, warm_imports

__all__ = ["Index", "warm_imports"]
