"""The witness (faceledger/governance/witness_client.py, `faceledger ledger witness`) against a
real server on loopback (tests/live.py), with its own state folder standing for the second
machine: it co-signs an honest log, and raises an ALARM (exit 9) when the operator cuts the
tail with plain SQL and re-signs, forks the log, or serves a checkpoint the pinned key did not
sign."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from faceledger.core import Faceledger
from faceledger.governance import notes, witness_client
from faceledger.settings import Settings
from tests.live import LiveServer, serve
from tests.tamper import cut_tail, db_file, fill

QUIET = {"FACELEDGER_CHECKPOINT_EVERY_ENTRIES": "100000000",
         "FACELEDGER_CHECKPOINT_EVERY_MINUTES": "1000000"}  # only the checkpoints tests make


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("witnessed"), **QUIET) as live:
        yield live


def _append(server: LiveServer, n: int) -> None:
    """New entries on the server's data home (another process, the same database)."""
    app = Faceledger(Settings(home=server.home, workers=1, checkpoint_every_entries=10**8,
                              checkpoint_every_minutes=10**6))
    try:
        fill(app, n)
    finally:
        app.close()


def _checkpoint(server: LiveServer) -> dict[str, object]:
    with server.client("root") as c:
        r = c.post("/api/v1/ledger/checkpoints")
    assert r.status_code == 201, r.text
    out: dict[str, object] = r.json()
    return out


def _run(server: LiveServer, state: Path, *, log_key: str | None = None, cosign: bool = True,
         name: str | None = None) -> witness_client.WitnessRun:
    return witness_client.run(server.url, server.users["audrey"]["token"], state,
                              log_key=log_key, cosign=cosign, name=name)


def _cli(server: LiveServer, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update(FACELEDGER_TOKEN=server.users["audrey"]["token"],
               FACELEDGER_HOME=str(state.parent / "no-data-home-here"))
    return subprocess.run([sys.executable, "-m", "faceledger", "ledger", "witness", "--url",
                           server.url, "--state", str(state), *args],
                          env=env, capture_output=True, text=True, timeout=120)


def _witnesses(server: LiveServer) -> list[dict[str, object]]:
    with server.client("audrey") as c:
        r = c.get("/api/v1/ledger/witnesses")
    assert r.status_code == 200, r.text
    rows: list[dict[str, object]] = r.json()
    return rows


def test_witness_cosigns_then_alarms_on_rollback_fork_and_rewrite(server: LiveServer,
                                                                  tmp_path: Path) -> None:
    state = tmp_path / "oversight"
    first = _checkpoint(server)
    got = _run(server, state, name="oversight.example/witness")
    assert got.size == first["size"] and got.previous_size is None
    assert got.pinned_now and got.cosigned and got.root_hash == first["root_hash"]
    assert (state / "checkpoint").read_text() == first["note"]
    assert oct((state / "witness.key").stat().st_mode & 0o777) == oct(0o600)
    row = next(w for w in _witnesses(server) if w["witness"] == "oversight.example/witness")
    assert row["last_size"] == first["size"] and row["cosignatures"] == 1
    with server.client("audrey") as c:
        latest = c.get("/api/v1/ledger/checkpoint").json()
    line = latest["cosignatures"][0]["line"]
    body = notes.unverified_body(str(first["note"]))
    assert notes.verify_cosignature(line, body, (state / "witness.vkey").read_text()) > 0

    _append(server, 25)
    second = _checkpoint(server)
    got = _run(server, state)
    assert got.previous_size == first["size"] and got.size == second["size"] and got.cosigned
    assert next(w for w in _witnesses(server)
                if w["witness"] == "oversight.example/witness")["last_size"] == second["size"]

    seen = int(str(second["size"]))
    keep = seen - 5
    cut_tail(db_file(server.home), keep)  # plain SQL on the server's database
    rolled = _checkpoint(server)
    assert rolled["size"] == keep
    with pytest.raises(witness_client.Alarm, match="ROLLBACK"):
        _run(server, state)
    assert (state / "checkpoint").read_text() == second["note"]  # keeps what it proved

    _append(server, seen - keep - 1)  # back to exactly the size the witness saw
    forked = _checkpoint(server)
    assert forked["size"] == seen and forked["root_hash"] != second["root_hash"]
    with pytest.raises(witness_client.Alarm, match="FORK"):
        _run(server, state)

    _append(server, 12)  # past it: the consistency proof from the old size cannot hold
    _checkpoint(server)
    with pytest.raises(witness_client.Alarm, match="REWRITTEN HISTORY"):
        _run(server, state)
    history = [json.loads(x) for x in (state / "history.jsonl").read_text().splitlines()]
    assert [h["size"] for h in history] == [first["size"], second["size"]]


def test_cli_witness_exits_9_after_a_tail_cut(server: LiveServer, tmp_path: Path) -> None:
    state = tmp_path / "court"
    cp = _checkpoint(server)
    res = _cli(server, state, "--name", "court.example/witness")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("OK: ") and f"at size {cp['size']}" in res.stdout
    assert "co-signed" in res.stdout and "pinned the log key" in res.stderr
    _append(server, 8)
    grown = _checkpoint(server)
    res = _cli(server, state, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["previous_size"] == cp["size"] and out["size"] == grown["size"]
    assert any(w["witness"] == "court.example/witness" and w["cosignatures"] == 2
               for w in _witnesses(server))

    cut_tail(db_file(server.home), int(str(grown["size"])) - 3)
    _checkpoint(server)
    res = _cli(server, state)
    assert res.returncode == 9, res.stdout + res.stderr
    assert "ALARM: ROLLBACK" in res.stderr and res.stdout == ""


def _stranger(origin: str) -> str:
    return notes.Signer(origin, Ed25519PrivateKey.generate()).vkey()


def test_a_checkpoint_the_pinned_key_did_not_sign_is_bad_signature(server: LiveServer,
                                                                   tmp_path: Path) -> None:
    _checkpoint(server)
    with server.client("audrey") as c:
        origin = c.get("/api/v1/ledger/key").json()["origin"]
    other = _stranger(origin)
    res = _cli(server, tmp_path / "w1", "--log-key", other, "--no-cosign")
    assert res.returncode == 9 and "ALARM: BAD SIGNATURE" in res.stderr
    with pytest.raises(witness_client.Alarm, match="BAD SIGNATURE"):
        _run(server, tmp_path / "w2", log_key=other, cosign=False)
    assert not (tmp_path / "w2" / "checkpoint").exists()  # nothing stored from a bad note


def test_the_witness_refuses_a_key_other_than_the_pinned_one(server: LiveServer,
                                                            tmp_path: Path) -> None:
    _checkpoint(server)
    state = tmp_path / "w"
    _run(server, state, cosign=False)
    pinned = (state / "log.vkey").read_text().strip()
    with server.client("audrey") as c:
        published = c.get("/api/v1/ledger/key").json()
    assert pinned == published["vkey"]
    assert _run(server, state, log_key=pinned, cosign=False).size > 0  # the same key: fine
    origin = published["origin"]
    with pytest.raises(witness_client.Alarm, match="not the one pinned"):
        _run(server, state, log_key=_stranger(origin), cosign=False)
    # The log's own key in the witness (0x04 cosignature) form is not the pinned 0x01 key.
    as_cosigner = notes.witness_vkey(origin, notes.parse_vkey(pinned).public_key)
    with pytest.raises(witness_client.Alarm, match="not the one pinned"):
        _run(server, state, log_key=as_cosigner, cosign=False)
    res = _cli(server, state, "--log-key", _stranger(origin))
    assert res.returncode == 9 and "not the one pinned" in res.stderr
    assert (state / "log.vkey").read_text().strip() == pinned  # never replaced
    # A cosignature (0x04) key cannot sign checkpoints: refused as a log key on first use.
    with pytest.raises(witness_client.WitnessError, match="0x01"):
        _run(server, tmp_path / "fresh", log_key=as_cosigner, cosign=False)
    assert not (tmp_path / "fresh" / "log.vkey").exists()


def test_the_cli_witness_needs_a_token(server: LiveServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    res = subprocess.run([sys.executable, "-m", "faceledger", "ledger", "witness", "--url",
                          server.url, "--state", str(tmp_path / "s")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "FACELEDGER_TOKEN" in res.stderr
    env["FACELEDGER_TOKEN"] = server.users["ivy"]["token"]  # an investigator cannot co-sign
    _checkpoint(server)
    res = subprocess.run([sys.executable, "-m", "faceledger", "ledger", "witness", "--url",
                          server.url, "--state", str(tmp_path / "s")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode not in (0, 9) and "403" in res.stderr
