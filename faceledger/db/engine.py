"""Engine and transactions. A write transaction takes the database's write lock up front
(``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL a transaction-scoped advisory lock taken as its
first statement, under READ COMMITTED) so the service that owns it does every check and the
write it guards, and commits the action with its ledger entry, as if alone: two searches
cannot both pass a quota of one, from threads or from several processes. Reads take no lock.
``ledger.append`` also locks the ``ledger_head`` row (``SELECT ... FOR UPDATE``), which keeps
the chain whole for any writer that bypasses ``Database.write``."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from faceledger.errors import NotInitialisedError

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("faceledger.db")


@cache
def head_revision() -> str:
    """The newest migration's revision id (the one no other migration names as its parent)."""
    revs: dict[str, str | None] = {}
    for f in (MIGRATIONS / "versions").glob("*.py"):
        body = f.read_text("utf-8")
        rev = re.search(r"^revision\s*=\s*['\"]([^'\"]+)", body, re.M)
        down = re.search(r"^down_revision\s*=\s*['\"]([^'\"]+)", body, re.M)
        if rev:
            revs[rev.group(1)] = down.group(1) if down else None
    heads = set(revs) - {d for d in revs.values() if d}
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


BUSY_TIMEOUT_S = 30  # how long a SQLite writer waits for the lock before "database is locked"


def _sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


# pg_advisory_xact_lock key of the writers' lock (any fixed 64-bit number; "faceledger" in ASCII)
WRITE_LOCK_KEY = 0x6661_6365_6C65_6467


def _postgres_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("faceledger_writer"):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = url.startswith("postgresql")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_hooks(self.engine)
            writer: Engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        elif self.is_postgres:
            _postgres_hooks(self.engine)
            writer = self.engine.execution_options(faceledger_writer=True)
        else:
            writer = self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(writer, expire_on_commit=False)
        self._schema_checked = False
        self._writers = threading.RLock() if self.is_sqlite else None

    def is_initialised(self) -> bool:
        try:
            return "ledger_head" in inspect(self.engine).get_table_names()
        except OperationalError:  # e.g. the data home's folder does not exist yet
            return False

    def require_initialised(self) -> None:
        """Initialised, and its schema brought up to this version's (once per process): a data
        home made by an earlier version gets the newer migrations when it is next opened."""
        if not self.is_initialised():
            raise NotInitialisedError(
                "faceledger is not initialised here; run `faceledger init` first "
                "(or set FACELEDGER_HOME to your data home)"
            )
        if not self._schema_checked:
            if self.schema_revision() != head_revision():
                log.warning("upgrading the database schema from %s to %s",
                            self.schema_revision(), head_revision())
                self.migrate()
            self._schema_checked = True

    def schema_revision(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return str(row[0]) if row else None

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: commits on success, rolls back on any exception. On SQLite this
        process's writers queue on a lock first: a writer that found the database locked
        would otherwise sleep in SQLite's busy handler (1, 2, 5 ... 100 ms) however soon the
        lock was free; other processes' writers still meet the busy handler."""
        with self._queued(), self._write() as session, session.begin():
            yield session

    @contextmanager
    def _queued(self) -> Iterator[None]:
        """Wait for this process's other writers (SQLite), as long as SQLite's busy timeout;
        past that, go on and let SQLite's busy handler decide."""
        got = self._writers is not None and self._writers.acquire(timeout=BUSY_TIMEOUT_S)
        try:
            yield
        finally:
            if got:
                assert self._writers is not None
                self._writers.release()

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection_url"] = self.url
        with self.engine.begin() as conn:
            if self.is_postgres:  # several processes opening one database migrate one at a time
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()
