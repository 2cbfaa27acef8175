from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from faceledger.accounts import users as accounts
from faceledger.accounts.users import Principal
from faceledger.core import Faceledger
from faceledger.gallery.collections import add_collection
from faceledger.settings import Settings
from tests import pg


@dataclass
class World:
    app: Faceledger
    admin: Principal
    admin_token: str
    investigator: Principal
    investigator_token: str
    auditor: Principal


def make_settings(home: Path, **kw: object) -> Settings:
    return Settings(home=home, workers=kw.pop("workers", 1), **kw)  # type: ignore[arg-type]


BOTH_DATABASES = ("sqlite", "postgresql")
# for a test in a DB_BACKENDS module that works on the SQLite file itself (sqlite3 tampering)
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module that sets ``DB_BACKENDS = BOTH_DATABASES`` runs each of its tests that use
    ``db_url`` (``world`` does) once on SQLite and once on PostgreSQL, except those that
    choose their own (``SQLITE_ONLY``)."""
    backends = getattr(metafunc.module, "DB_BACKENDS", None)
    chosen = any("db_url" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize"))
    if backends and "db_url" in metafunc.fixturenames and not chosen:
        metafunc.parametrize("db_url", backends, indirect=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg.PgServer]:
    """The tests' PostgreSQL server (tests/pg.py): FACELEDGER_TEST_DATABASE_URL's, or a
    throwaway one started here and stopped at the end of the session."""
    given = pg.server_from_env()
    if given is not None:
        yield given
        return
    bindir = pg.bin_dir()
    if bindir is None:
        message = ("PostgreSQL's initdb/pg_ctl are missing: run scripts/ensure-postgres "
                   "(make test does) or set FACELEDGER_TEST_DATABASE_URL")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = pg.PgServer.start(bindir)
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: pg.PgServer) -> Iterator[str]:
    """A fresh PostgreSQL database at the migrations' head, dropped after the test."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture
def db_url(request: pytest.FixtureRequest) -> str | None:
    """The database a test's app uses: None (SQLite in the data home) unless the module runs
    on both (``DB_BACKENDS``), where the PostgreSQL case gets a fresh database."""
    if getattr(request, "param", "sqlite") == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        return url
    return None


@pytest.fixture
def world(tmp_path: Path, db_url: str | None) -> Iterator[World]:
    app = Faceledger(make_settings(tmp_path / "home", database_url=db_url))
    _, token = app.initialise("root")
    admin = app.authenticate(token)
    with app.db.write() as s:
        _, inv_token = accounts.create_user(s, "ivy", "investigator", actor=admin)
        aud, _ = accounts.create_user(s, "audrey", "auditor", actor=admin)
        add_collection(s, "gallery", "test data", "photos made by tests", actor=admin)
    w = World(app, admin, token, app.authenticate(inv_token), inv_token,
              Principal(aud.id, aud.name, aud.role))
    yield w
    app.close()
