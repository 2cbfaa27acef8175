"""The command line, run as a user would: real processes, real models, a temporary data home."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import ImageEnhance

from tests.photos import astronaut_face, collage, encode, grace_hopper


class CLI:
    def __init__(self, home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
        self.env["FACELEDGER_HOME"] = str(home)
        self.env["FACELEDGER_WORKERS"] = "2"

    def __call__(self, *args: str, token: str | None = None, check: bool = True,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        e = dict(self.env, **(env or {}))
        if token:
            e["FACELEDGER_TOKEN"] = token
        proc = subprocess.run([sys.executable, "-m", "faceledger", *args], env=e,
                              capture_output=True, text=True, timeout=300)
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
                         "--offence", "burglary", "--legal-basis", "PACE", "--face", "1",
                         "--json", token=ivy).stdout)
    assert res["schema_version"] == 1 and res["face_index"] == 1
    assert res["candidates"][0]["sources"][0]["original_path"].endswith("grace.jpg")
    assert {"rank", "similarity", "face_id", "image_path", "source_url", "page_url",
            "collection", "box", "thumbnail_path"} <= set(res["candidates"][0])

    # No command that reads faces runs without a token; investigators cannot read the ledger.
    anon = cli("search", str(probe), "--case", "x", "--purpose", "p", "--offence", "o",
               "--legal-basis", "b", check=False)
    assert anon.returncode == 3 and "FACELEDGER_TOKEN" in anon.stderr
    assert cli("ledger", "show", token=ivy, check=False).returncode == 3

    assert "OK:" in cli("ledger", "verify", token=audrey).stdout
    shown = json.loads(cli("ledger", "show", "--case", "C-9", "--json", token=audrey).stdout)
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
    for i in range(24):  # distinct bytes, one face each
        img = ImageEnhance.Brightness(base[i % 2]).enhance(0.8 + i * 0.02)
        (photos / f"p{i:02d}.jpg").write_bytes(encode(img))
    proc = cli.popen("ingest", str(photos), "--collection", "mugshots", token=admin,
                     env={"FACELEDGER_COMMIT_EVERY": "3", "FACELEDGER_WORKERS": "1"})
    deadline = time.time() + 120
    batches = 0
    while time.time() < deadline and batches < 2:
        time.sleep(0.3)
        shown = cli("ledger", "show", "--kind", "ingest.batch", "--json", token=audrey)
        batches = len(json.loads(shown.stdout))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert batches >= 2, "the ingest never committed a batch"
    status = json.loads(cli("collections", "list", "--json", token=admin).stdout)[0]
    assert 0 < status["images"] < 24  # killed part-way

    out = cli("ingest", str(photos), "--collection", "mugshots", "--json", token=admin).stdout
    summary = json.loads(out)
    assert summary["added"] + summary["duplicates"] == 24
    final = json.loads(cli("collections", "list", "--json", token=admin).stdout)[0]
    assert final["images"] == 24 and final["faces"] == 24
    idx = json.loads(cli("index", "status", "--json", token=admin).stdout)[0]
    assert idx["faces_in_index"] == idx["faces_in_db"] == 24
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
    erased = json.loads(cli("subject", "erase", str(probe), "--yes", "--json",
                            token=admin).stdout)
    assert erased["images"] == 1
    assert "OK:" in cli("ledger", "verify", token=audrey).stdout
    assert json.loads(cli("retention", "--json", token=admin).stdout)["probes"] == []
