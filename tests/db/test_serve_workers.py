"""`faceledger serve --workers N`: several API processes on PostgreSQL; refused on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from faceledger.governance import ledger
from tests.conftest import World
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(world: World, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update(FACELEDGER_HOME=str(world.app.settings.home), FACELEDGER_PORT=str(port),
               FACELEDGER_WORKERS="1", FACELEDGER_COOKIE_SECURE="false")
    if world.app.settings.database_url:
        env["FACELEDGER_DATABASE_URL"] = world.app.settings.database_url
    return env


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def test_several_workers_are_refused_on_sqlite(world: World) -> None:
    done = subprocess.run([sys.executable, "-m", "faceledger", "serve", "--workers", "2"],
                          cwd=ROOT, env=_env(world, free_port()), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "needs PostgreSQL" in done.stdout + done.stderr


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_serve_one_postgresql_database(world: World, tmp_path: Path) -> None:
    """Two API processes answer; users created through both at once each leave one ledger
    entry, and the chain verifies."""
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "faceledger", "serve", "--workers", "2"],
                            cwd=ROOT, env=_env(world, port), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while not _ready(url):
            assert proc.poll() is None and time.time() < deadline, (
                (tmp_path / "serve.log").read_text(errors="replace"))
            time.sleep(0.5)
        assert len(_children(proc.pid)) >= 2  # uvicorn's worker processes
        headers = {"authorization": f"Bearer {world.admin_token}"}

        def add(i: int) -> int:
            r = httpx.post(f"{url}/api/v1/users", headers=headers, timeout=60,
                           json={"name": f"user{i}", "role": "investigator"})
            return r.status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(add, range(16)))
        assert codes == [201] * 16
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    with world.app.db.read() as s:
        report = ledger.verify(s)
        created = Counter(ledger.entry_dict(e)["payload"]["user"]
                          for e in ledger.read(s, kind="user.created"))
    assert report.ok, report.reason
    assert all(created[f"user{i}"] == 1 for i in range(16))


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
