"""The command line, run as a user would: real processes, real models, a temporary data home."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import ImageEnhance

from faceledger.accounts import websessions
from faceledger.cli.admin import local_actor
from faceledger.core import Faceledger
from faceledger.errors import AuthenticationError
from faceledger.settings import Settings
from tests.live import free_port
from tests.photos import astronaut_face, collage, encode, grace_hopper


class CLI:
    def __init__(self, home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
        self.env["FACELEDGER_HOME"] = str(home)
        self.env["FACELEDGER_WORKERS"] = "2"

    def __call__(self, *args: str, token: str | None = None, check: bool = True,
                 env: dict[str, str] | None = None, stdin: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
        e = dict(self.env, **(env or {}))
        if token is not None:
            e["FACELEDGER_TOKEN"] = token
        proc = subprocess.run([sys.executable, "-m", "faceledger", *args], env=e,
                              capture_output=True, text=True, timeout=300,
                              input=stdin if stdin is not None else "")
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def popen(self, *args: str, token: str, env: dict[str, str]) -> subprocess.Popen[str]:
        e = dict(self.env, FACELEDGER_TOKEN=token, **env)
        return subprocess.Popen([sys.executable, "-m", "faceledger", *args], env=e,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path / "home")


def setup(cli: CLI) -> tuple[str, str, str]:
    out = cli("init", "--admin", "boss").stdout
    admin = out.strip().splitlines()[-1]
    assert admin.startswith("flk_")
    cli("collections", "add", "mugshots", "--legal-basis", "custody images, s.64A",
        token=admin)
    inv = json.loads(cli("users", "add", "ivy", "--role", "investigator", "--json",
                         token=admin).stdout)
    assert inv["role"] == "investigator" and inv["user"] == "ivy"
    aud = cli("users", "add", "audrey", "--role", "auditor", token=admin).stdout
    return admin, inv["token"], aud.strip().splitlines()[-1]


def test_quickstart_end_to_end(cli: CLI, tmp_path: Path) -> None:
    admin, ivy, audrey = setup(cli)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (photos / "grace.jpg").write_bytes(encode(grace_hopper()))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = cli("ingest", str(photos), "--collection", "mugshots", token=admin).stdout
    assert "2 images added, 2 faces" in out and "1 rejected" in out and "broken.jpg" in out

    probe = tmp_path / "probe.jpg"
    probe.write_bytes(encode(collage()))
    refused = cli("search", str(probe), "--case", "C-9", token=ivy, check=False)
    assert refused.returncode != 0 and "missing: purpose, offence, legal basis" in refused.stderr
    choose = cli("search", str(probe), "--case", "C-9", "--purpose", "criminal investigation",
                 "--offence", "burglary", "--legal-basis", "PACE", token=ivy, check=False)
    assert choose.returncode == 5 and "--face" in choose.stderr and "face 1:" in choose.stderr
    res = json.loads(cli("search", str(probe), "--case", "C-9", "--purpose", "criminal investigation",
                         "--offence", "burglary", "--legal-basis", "PACE", "--face", "2",
                         "--json", token=ivy).stdout)
    assert res["schema_version"] == 2 and res["face"] == 2  # faces are numbered from 1
    assert res["candidates"][0]["sources"][0]["original_path"].endswith("grace.jpg")
    assert {"rank", "similarity", "face_id", "image_path", "source_url", "page_url",
            "collection", "box", "thumbnail_path"} <= set(res["candidates"][0])

    # No command that reads faces runs without a token; investigators cannot read the ledger.
    anon = cli("search", str(probe), "--case", "x", "--purpose", "p", "--offence", "o",
               "--legal-basis", "b", check=False)
    assert anon.returncode == 3 and "FACELEDGER_TOKEN" in anon.stderr
    assert cli("ledger", "show", token=ivy, check=False).returncode == 3

    assert "OK:" in cli("ledger", "verify", token=audrey).stdout
    shown = json.loads(cli("ledger", "show", "--case", "C-9", "--reverse", "--json",
                           token=audrey).stdout)
    assert [e["kind"] for e in shown] == ["search.refused", "search"]
    assert shown[1]["payload"]["offence"] == "burglary"


def test_users_and_tokens(cli: CLI) -> None:
    admin, ivy, _ = setup(cli)
    assert cli("users", "add", "x", "--role", "investigator", token=ivy, check=False
               ).returncode == 3
    listing = cli("users", "list", token=admin).stdout
    assert "ivy" in listing and "investigator" in listing
    cli("users", "disable", "ivy", token=admin)
    gone = cli("collections", "list", token=ivy, check=False)
    assert gone.returncode == 3 and "revoked" in gone.stderr
    again = cli("init", check=False)
    assert again.returncode == 5 and "already initialised" in again.stderr


def test_killed_ingest_resumes_without_duplicates(cli: CLI, tmp_path: Path) -> None:
    admin, _, audrey = setup(cli)
    photos = tmp_path / "many"
    photos.mkdir()
    base = [astronaut_face(), grace_hopper()]
    n = 48
    for i in range(n):  # distinct bytes, one face each
        img = ImageEnhance.Brightness(base[i % 2]).enhance(0.8 + i * 0.02)
        (photos / f"p{i:02d}.jpg").write_bytes(encode(img))
    proc = cli.popen("ingest", str(photos), "--collection", "mugshots", token=admin,
                     env={"FACELEDGER_COMMIT_EVERY": "3", "FACELEDGER_WORKERS": "1"})
    db = Path(cli.env["FACELEDGER_HOME"]) / "faceledger.db"
    deadline = time.time() + 120
    batches = 0
    while time.time() < deadline and batches < 2:  # watched in the database: a CLI call per
        time.sleep(0.05)  # poll is slower than the ingest now is
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            batches = con.execute("SELECT count(*) FROM ledger WHERE kind = 'ingest.batch'"
                                  ).fetchone()[0]
        finally:
            con.close()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert batches >= 2, "the ingest never committed a batch"
    status = json.loads(cli("collections", "list", "--json", token=admin).stdout)[0]
    assert 0 < status["images"] < n  # killed part-way

    out = cli("ingest", str(photos), "--collection", "mugshots", "--json", token=admin).stdout
    summary = json.loads(out)
    assert summary["added"] + summary["duplicates"] == n
    final = json.loads(cli("collections", "list", "--json", token=admin).stdout)[0]
    assert final["images"] == n and final["faces"] == n
    idx = json.loads(cli("index", "status", "--json", token=admin).stdout)[0]
    assert idx["faces_in_index"] == idx["faces_in_db"] == n
    assert "OK:" in cli("ledger", "verify", token=audrey).stdout
    kinds = [e["kind"] for e in json.loads(
        cli("ledger", "show", "--kind", "ingest", "--json", token=audrey).stdout)]
    assert "ingest.interrupted" in kinds


def test_oversight_commands(cli: CLI, tmp_path: Path) -> None:
    admin, ivy, audrey = setup(cli)
    sue = cli("users", "add", "sue", "--role", "supervisor", token=admin).stdout.split()[-1]
    photos = tmp_path / "p"
    photos.mkdir()
    (photos / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (photos / "grace.jpg").write_bytes(encode(grace_hopper()))
    cli("ingest", str(photos), "--collection", "mugshots", token=admin)
    probe = photos / "grace.jpg"
    base = ["--case", "K-1", "--offence", "fraud", "--legal-basis", "b"]
    held = cli("search", str(probe), "--purpose", "intelligence", "--urgent", *base, token=ivy)
    assert "waiting for a supervisor" in held.stdout
    listed = json.loads(cli("approvals", "list", "--json", token=sue).stdout)
    sid = listed[0]["search_id"]
    assert "Approved" in cli("approvals", "approve", str(sid), "--reason", "ok", token=sue).stdout
    cli("outcome", str(sid), "--result", "charge", "--note", "charged", token=ivy)
    cli("authorise", str(sid), "--ref", "W-1", token=ivy)
    bad = cli("outcome", str(sid), "--result", "maybe", token=ivy, check=False)
    assert bad.returncode == 1 and "one of" in bad.stderr
    access = json.loads(cli("subject", "access", str(probe), "--json", token=admin).stdout)
    assert [a["search_id"] for a in access] == [sid] and access[0]["outcome"] == "charge"
    asked = cli("subject", "erase", str(probe), token=admin, stdin="n\n").stdout
    assert "Erase 1 face and its image? This cannot be undone." in asked
    assert "Nothing erased." in asked  # answered no: the erasure below still finds the image
    erased = json.loads(cli("subject", "erase", str(probe), "--yes", "--json",
                            token=admin).stdout)
    assert erased["images"] == 1
    assert "OK:" in cli("ledger", "verify", token=audrey).stdout
    assert json.loads(cli("retention", "--json", token=admin).stdout)["probes"] == []


def _signs_in(home: Path, user: str, password: str) -> bool:
    core = Faceledger(Settings(home=home, workers=1))
    try:
        with core.db.write() as s:
            websessions.sign_in(s, user, password, 1.0)
        return True
    except AuthenticationError:
        return False
    finally:
        core.close()


def _ledger(cli: CLI, token: str, kind: str) -> list[dict[str, object]]:
    out = json.loads(cli("ledger", "show", "--kind", kind, "--json", token=token).stdout)
    return list(out["entries"] if isinstance(out, dict) else out)


def test_init_again_admin_token_and_empty_token(cli: CLI) -> None:
    first = json.loads(cli("init", "--json").stdout)
    home = Path(cli.env["FACELEDGER_HOME"])
    again = cli("init", check=False)
    assert again.returncode == 5 and again.stdout == ""
    assert "already initialised" in again.stderr and "faceledger admin-token" in again.stderr
    quiet = cli("init", "--if-needed")
    assert "already initialised" in quiet.stdout and "admin-token" in quiet.stdout
    # A set-but-empty token (e.g. from a failed `$(...)`) is named as such, never taken as anonymous.
    empty = cli("collections", "list", token="", check=False)
    assert empty.returncode == 3 and "empty" in empty.stderr and "FACELEDGER_TOKEN" in empty.stderr
    # Whoever holds the data home gets an admin token without one; the old token keeps working.
    out = cli("admin-token").stdout.strip().splitlines()
    assert out[-1].startswith("flk_") and out[-1] != first["token"] and "admin" in out[0]
    assert cli("collections", "list", token=out[-1]).returncode == 0
    assert cli("collections", "list", token=first["token"]).returncode == 0
    issued = _ledger(cli, first["token"], "token.issued_locally")
    assert len(issued) == 1 and str(issued[0]["actor"]).startswith("local")
    assert out[-1] not in json.dumps(issued)  # only its prefix
    not_admin = cli("admin-token", "--admin", "nobody", check=False)
    assert not_admin.returncode == 4
    empty_home = CLI(home.parent / "elsewhere")
    assert empty_home("admin-token", check=False).returncode == 7  # not initialised


def test_users_password_cli_and_local_recovery(cli: CLI) -> None:
    admin, ivy, audrey = setup(cli)
    home = Path(cli.env["FACELEDGER_HOME"])
    kept = home / "first-admin.txt"
    assert kept.stat().st_mode & 0o777 == 0o600  # the first admin's initial sign-in, 0600
    assert not _signs_in(home, "ivy", "ivy-password-1")  # `users add` made her API-only
    cli("users", "password", "ivy", token=admin, stdin="ivy-password-1\n")
    assert _signs_in(home, "ivy", "ivy-password-1")
    short = cli("users", "password", "ivy", token=admin, stdin="short\n", check=False)
    assert short.returncode != 0 and "at least 10" in short.stderr
    assert cli("users", "password", "ivy", token=ivy, stdin="ivy-password-2\n",
               check=False).returncode == 3  # admins only
    generated = cli("users", "password", "ivy", "--generate", token=admin).stdout
    new = generated.strip().splitlines()[-1]
    assert "shown once" in generated and len(new) >= 10
    assert _signs_in(home, "ivy", new) and not _signs_in(home, "ivy", "ivy-password-1")
    # A lost admin password: whoever holds the data home resets it without a token.
    assert kept.exists()
    anon = cli("users", "password", "boss", "--generate", check=False)
    assert anon.returncode == 3  # not without --local
    local = cli("users", "password", "boss", "--generate", "--local").stdout
    boss_pw = local.strip().splitlines()[-1]
    assert _signs_in(home, "boss", boss_pw)
    assert not kept.exists()  # the initial password is gone once changed
    entries = _ledger(cli, audrey, "user.password_set")
    assert sorted((e["payload"]["user"], e["payload"]["how"], e["actor"])  # type: ignore[index]
                  for e in entries) == [("boss", "local", local_actor()), ("ivy", "cli", "boss"),
                                        ("ivy", "cli", "boss")]
    text = json.dumps(entries)
    assert new not in text and boss_pw not in text and "ivy-password-1" not in text
    assert "OK:" in cli("ledger", "verify", token=audrey).stdout


def _read_until(fd: int, needle: str, timeout: float) -> str:
    buf = b""
    deadline = time.time() + timeout
    while needle.encode() not in buf and time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace")


def test_serve_shows_first_sign_in_last(cli: CLI) -> None:
    first = json.loads(cli("init", "--json").stdout)
    home = Path(cli.env["FACELEDGER_HOME"])
    env = dict(cli.env, FACELEDGER_PORT=str(free_port()))
    # On a terminal (`make run`): the password, after uvicorn's start-up lines.
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "faceledger", "serve"], env=env,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        out = _read_until(master, "admin-token | tail -1)`", 120)
        time.sleep(0.5)
        out += _read_until(master, "\x00", 0.5)
    finally:
        proc.terminate()
        proc.wait(20)
        os.close(master)
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    started = max(i for i, line in enumerate(lines) if "startup complete" in line
                  or "Uvicorn running" in line)
    banner = next(i for i, line in enumerate(lines) if "faceledger is ready" in line)
    assert banner > started, out
    assert f"user admin, password {first['password']}" in lines[banner + 1]
    assert all("INFO" not in line for line in lines[banner:]), out  # nothing scrolls it away
    # Into a pipe or log: the file's path, never the password.
    env["FACELEDGER_PORT"] = str(free_port())
    proc = subprocess.Popen([sys.executable, "-m", "faceledger", "serve"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        logged = _read_until(proc.stdout.fileno(), "admin-token | tail -1)`", 120)
    finally:
        proc.terminate()
        proc.wait(20)
    assert "faceledger is ready" in logged and str(home.resolve() / "first-admin.txt") in logged
    assert first["password"] not in logged
