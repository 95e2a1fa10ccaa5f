"""The SQLite index: one row per motion version, tags, render records later.

* ``migrations`` - the schema as ordered, versioned SQL migrations (``PRAGMA user_version``).
* ``models`` - SQLModel table classes; every write goes through them (``Index.write()``).
* ``reader`` - read-only queries with the stdlib ``sqlite3`` module. Importing SQLModel costs ~0.5 s
  here, which alone would break the 0.5 s budget of ``motionlib list``; reads therefore skip it.
  A test checks that the migrated schema and the SQLModel tables agree column for column.
"""

from motionlib.index.db import Index

__all__ = ["Index"]
