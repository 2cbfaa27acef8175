"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl in a temp folder, on 127.0.0.1
at a free port, as an unprivileged user (the server refuses to run as root), trust auth on
loopback only; every test that asks for it gets a fresh database (CREATE DATABASE from a
template that already carries the migrations), dropped afterwards.

``FACELEDGER_TEST_DATABASE_URL`` (a ``postgresql+psycopg://`` URL of a database on a server
you run, whose user may CREATE DATABASE) makes the tests use that server instead of starting
one. Without it the binaries must exist (Debian's ``postgresql``: ``scripts/ensure-postgres``
installs them; ``make test`` runs it first). Where they are missing the PostgreSQL tests are
skipped, except under CI (``CI`` set), where that is an error.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin"),
            Path("/usr/lib/postgresql/17/bin"))
ENV_URL = "FACELEDGER_TEST_DATABASE_URL"
TEMPLATE = "faceledger_template"


def bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: Debian's versioned folder, or the PATH."""
    for d in BIN_DIRS:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> list[str]:
    """Prefix that runs a command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as err:
        raise RuntimeError("running as root and there is no 'postgres' user to run the test "
                           "server as; install Debian's postgresql (scripts/ensure-postgres)") from err
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class PgServer:
    """A server the tests own (``folder`` set) or one named by ``FACELEDGER_TEST_DATABASE_URL``."""

    url: str  # SQLAlchemy URL of the maintenance database
    folder: Path | None = None
    bindir: Path | None = None
    _names: itertools.count[int] = field(default_factory=itertools.count)
    _template_ready: bool = False

    @classmethod
    def start(cls, bindir: Path) -> PgServer:
        folder = Path(tempfile.mkdtemp(prefix="faceledger-pg-"))
        prefix = _as_user()
        if prefix:
            shutil.chown(folder, "postgres", "postgres")
        data, log = folder / "data", folder / "server.log"
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                        "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, capture_output=True, timeout=120)
        for _ in range(5):
            port = free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            done = subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log),
                                   "-o", opts, "-w", "-t", "60", "start"],
                                  capture_output=True, timeout=90)
            if done.returncode == 0:
                url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
                return cls(url=url, folder=folder, bindir=bindir)
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"could not start the test PostgreSQL server:\n{tail}")

    def stop(self) -> None:
        if self.folder is None or self.bindir is None:
            return
        subprocess.run([*_as_user(), str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
                        "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)

    def url_of(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        import psycopg

        u = make_url(self.url)
        with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                             dbname=u.database, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def _ensure_template(self) -> None:
        """A database at the migrations' head, cloned by every fresh database (saves the
        migrations' time per test)."""
        if self._template_ready:
            return
        from faceledger.db.engine import Database

        self._admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{TEMPLATE}"')
        db = Database(self.url_of(TEMPLATE))
        try:
            db.migrate()
        finally:
            db.dispose()
        self._template_ready = True

    def create_database(self, *, migrated: bool = True) -> str:
        """A fresh, empty database (at the migrations' head when ``migrated``); its URL."""
        name = f"fl_{os.getpid()}_{next(self._names)}_{uuid.uuid4().hex[:6]}"
        if migrated:
            self._ensure_template()
            self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        else:
            self._admin(f'CREATE DATABASE "{name}"')
        return self.url_of(name)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        for _ in range(3):
            try:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except Exception:  # noqa: BLE001 - a connection still closing; try again
                time.sleep(0.2)


def server_from_env() -> PgServer | None:
    url = os.environ.get(ENV_URL)
    return PgServer(url=url) if url else None
