"""A real faceledger server on loopback, over a temporary data home, for API and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from faceledger.accounts import users as accounts
from faceledger.accounts.passwords import hash_password
from faceledger.core import Faceledger
from faceledger.gallery.collections import add_collection
from faceledger.gallery.ingest import Ingest
from faceledger.settings import Settings
from tests.photos import astronaut_face, encode, grace_hopper

USERS = {"ivy": "investigator", "ian": "investigator", "sue": "supervisor",
         "audrey": "auditor"}


@dataclass
class LiveServer:
    url: str
    home: Path
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def client(self, user: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.users[user]['token']}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(home: Path) -> dict[str, dict[str, str]]:
    """Users with passwords and tokens, and a small gallery with provenance."""
    core = Faceledger(Settings(home=home, workers=1))
    users: dict[str, dict[str, str]] = {}
    _, token = core.initialise("root", "root-password-1")
    users["root"] = {"role": "admin", "password": "root-password-1", "token": token}
    admin = core.authenticate(token)
    with core.db.write() as s:
        for name, role in USERS.items():
            pw = f"{name}-password-1"
            _, tok = accounts.create_user(s, name, role, actor=admin,
                                          password_hash=hash_password(pw))
            users[name] = {"role": role, "password": pw, "token": tok}
        add_collection(s, "gallery", "test photos made by the suite", "", actor=admin)
    src = home.parent / "gallery-src"
    src.mkdir()
    (src / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (src / "grace.jpg").write_bytes(encode(grace_hopper()))
    (src / "manifest.csv").write_text(
        "path,source_url,page_url,title,captured_at\n"
        "astronaut.jpg,https://example.org/astro.jpg,https://example.org/astro,Astronaut,"
        "2023-04-01T12:00:00Z\n"
        "grace.jpg,https://example.org/grace.jpg,https://example.org/grace,Grace Hopper,\n")
    Ingest(core, admin).run([src], "gallery", src / "manifest.csv")
    core.close()
    return users


@contextmanager
def serve(root: Path, **settings: str) -> Iterator[LiveServer]:
    """A seeded data home under ``root``, served on loopback until the block ends; ``settings``:
    extra FACELEDGER_* environment variables for the server."""
    home = root / "home"
    users = seed(home)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update(FACELEDGER_HOME=str(home), FACELEDGER_COOKIE_SECURE="false",
               FACELEDGER_WORKERS="1", FACELEDGER_PORT=str(port), **settings)
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "faceledger", "serve"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", home, users, proc)
    deadline = time.time() + 90
    while True:
        try:
            if httpx.get(server.url + "/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError("server did not start:\n"
                               + (root / "server.log").read_text(errors="replace"))
        time.sleep(0.3)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("live")) as server:
        yield server
