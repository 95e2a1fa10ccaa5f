"""A throwaway PostgreSQL server for the tests (the index on PostgreSQL, motionlib/index/pg.py).

``pg_server`` (session): a cluster made with initdb in a temp dir, started with pg_ctl on a free
port (TCP on 127.0.0.1, password login) and a unix socket (trusted), stopped and removed at the
end. Run as root, the server runs as the ``postgres`` system user (initdb refuses root).
``pg_url`` (per test): a fresh, empty database on it (CREATE DATABASE ... TEMPLATE template0),
dropped afterwards. Without PostgreSQL's programs (PATH or /usr/lib/postgresql/*/bin) the tests
that need it are skipped, saying so; scripts/bootstrap.sh installs it where it can.

conftest.py imports the fixtures from here (a small hook), so that this stays its own module.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PASSWORD = "s3cret-Pa55word"  # the TCP login's; tests check it never shows in a message
USER = "motionlib"


def find_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then Debian's versioned dirs."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]) if
                    p.split("/")[-2].isdigit() else 0, reverse=True):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="motionlib-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._runas: list[str] = []
        self._names = itertools.count()
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("PostgreSQL tests run as root need a 'postgres' system user to run the server")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._runas = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self._runas + list(args), capture_output=True, text=True, timeout=timeout,
                              cwd=self.dir)

    def start(self) -> None:
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._runas:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        r = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile),
                      "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                      "--no-sync")
        if r.returncode != 0:  # an older initdb without C.UTF-8
            r = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile),
                          "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr.strip()[-500:]}")
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        r = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w",
                      "-t", "60", "-o", options, "start")
        if r.returncode != 0:
            log = (self.dir / "log").read_text()[-800:] if (self.dir / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()[-400:]} {log}")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: str, *, tcp: bool = True, password: str | None = PASSWORD) -> str:
        """A URL of database ``db``: over TCP with the password (as a team's would be), or over the
        unix socket (trusted, no password)."""
        if tcp:
            auth = f"{USER}:{password}" if password is not None else USER
            return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"
        return f"postgresql://{USER}@/{db}?host={self.dir}&port={self.port}"

    def admin(self):
        import psycopg

        return psycopg.connect(self.url("postgres", tcp=False), autocommit=True)

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _skip_reason() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[team,dev]')"
    if find_bin() is None:
        return ("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin): "
                "scripts/bootstrap.sh installs it where it can, or apt-get install postgresql")
    return None


@pytest.fixture(scope="session")
def pg_server():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    server = PgServer(find_bin())
    t = time.time()
    server.start()
    server.started_in = time.time() - t
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server):
    """The URL (TCP, with its password) of a fresh, empty database, dropped after the test."""
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def index_target(request, tmp_path):
    """Where a test's index lives, once on each backend: a SQLite file's path, or the URL of a
    fresh PostgreSQL database (motionlib.index.open_index takes either)."""
    if request.param == "sqlite":
        return tmp_path / "index.sqlite"
    return request.getfixturevalue("pg_url")


def is_pg(target) -> bool:
    return isinstance(target, str) and target.startswith("postgresql://")


class _Raw:
    """A DB-API connection to either backend taking SQLite's ``?`` placeholders (tests write
    synthetic rows with it). ``INSERT OR IGNORE`` becomes ``ON CONFLICT DO NOTHING``."""

    def __init__(self, target):
        self.pg = is_pg(target)
        if self.pg:
            import psycopg

            self.conn = psycopg.connect(target)
        else:
            import sqlite3

            self.conn = sqlite3.connect(target)

    def _sql(self, sql: str) -> str:
        if not self.pg:
            return sql
        from motionlib.index.dialect import pg_placeholders

        if sql.lstrip().upper().startswith("INSERT OR IGNORE"):
            sql = sql.replace("INSERT OR IGNORE", "INSERT", 1) + " ON CONFLICT DO NOTHING"
        return pg_placeholders(sql)

    def execute(self, sql: str, params=()):
        return self.conn.execute(self._sql(sql), tuple(params) or None) if self.pg else self.conn.execute(sql, params)

    def executemany(self, sql: str, rows):
        if self.pg:
            with self.conn.cursor() as cur:
                cur.executemany(self._sql(sql), list(rows))
        else:
            self.conn.executemany(sql, rows)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.conn.commit()
        else:
            self.conn.rollback()
        self.conn.close()


def raw_connection(target) -> _Raw:
    return _Raw(target)
