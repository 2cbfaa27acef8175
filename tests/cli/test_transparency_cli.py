"""`faceledger ledger checkpoint | key | proof | consistency | check-receipt | verify`: the
transparency log's commands on a real data home (in-process CLI; `verify` after a cut also as
a real process, for its exit code and message)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from faceledger.cli.main import app
from faceledger.governance import merkle, notes
from tests.conftest import World
from tests.tamper import cut_tail, db_file, fill


def _run(world: World, *args: str, token: str | None = None) -> tuple[int, str, str]:
    env = {"FACELEDGER_HOME": str(world.app.settings.home),
           "FACELEDGER_TOKEN": token or world.admin_token}
    res = CliRunner().invoke(app, list(args), env=env)
    return res.exit_code, res.stdout, res.stderr


def _process(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update(FACELEDGER_HOME=str(world.app.settings.home), FACELEDGER_TOKEN=world.admin_token)
    return subprocess.run([sys.executable, "-m", "faceledger", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def _key(world: World) -> notes.Verifier:
    code, out, err = _run(world, "ledger", "key")
    assert code == 0, err
    assert out.splitlines()[1] == "-----BEGIN PUBLIC KEY-----"
    assert "key id" in err and "ledger-signing.key" in err
    return notes.parse_vkey(out.splitlines()[0])


def test_checkpoint_out_file_verifies_with_the_printed_key(world: World, tmp_path: Path
                                                           ) -> None:
    fill(world.app, 30)
    out_file = tmp_path / "cp.txt"
    code, out, err = _run(world, "ledger", "checkpoint", "--out", str(out_file))
    assert code == 0, err
    assert out == out_file.read_text() and f"written to {out_file}" in err
    signed = notes.parse_checkpoint(notes.open_note(out, [_key(world)]).body)
    code, out, _ = _run(world, "ledger", "key", "--json")
    assert json.loads(out)["vkey"] == _key(world).vkey()
    code, out, err = _run(world, "ledger", "checkpoint", "--json")
    assert code == 0 and json.loads(out)["size"] == signed.size + 1
    code, _, _ = _run(world, "ledger", "checkpoint", token=world.investigator_token)
    assert code != 0


def test_proof_json_is_a_receipt_that_checks_offline(world: World, tmp_path: Path) -> None:
    fill(world.app, 12)
    _run(world, "ledger", "checkpoint")
    code, out, err = _run(world, "ledger", "proof", "--seq", "5", "--json")
    assert code == 0, err
    got = json.loads(out)
    signed = notes.parse_checkpoint(notes.open_note(got["checkpoint"], [_key(world)]).body)
    assert signed.size == got["tree_size"]
    assert merkle.verify_inclusion(bytes.fromhex(got["leaf_hash"]), 4, signed.size,
                                   [bytes.fromhex(h) for h in got["path"]], signed.root)
    receipt = tmp_path / "receipt.json"
    receipt.write_text(out)
    vkey = _key(world).vkey()
    code, out, err = _run(world, "ledger", "check-receipt", str(receipt), "--key", vkey)
    assert code == 0 and out.startswith("OK: entry 5"), err
    got["path"][0] = "00" * 32
    receipt.write_text(json.dumps(got))
    code, _, err = _run(world, "ledger", "check-receipt", str(receipt), "--key", vkey)
    assert code == 9 and "FAILED: the inclusion proof" in err
    code, out, _ = _run(world, "ledger", "proof", "--seq", "5")
    assert code == 0 and out.startswith("entry 5 (leaf 4) in the log of size")


def test_consistency_json_verifies(world: World) -> None:
    fill(world.app, 10)
    code, out, _ = _run(world, "ledger", "checkpoint", "--json")
    old = json.loads(out)
    fill(world.app, 17)
    code, out, _ = _run(world, "ledger", "checkpoint", "--json")
    new = json.loads(out)
    code, out, err = _run(world, "ledger", "consistency", "--from", str(old["size"]), "--to",
                          str(new["size"]), "--json")
    assert code == 0, err
    got = json.loads(out)
    assert (got["root_from"], got["root_to"]) == (old["root_hash"], new["root_hash"])
    assert merkle.verify_consistency(old["size"], new["size"], bytes.fromhex(old["root_hash"]),
                                     bytes.fromhex(new["root_hash"]),
                                     [bytes.fromhex(h) for h in got["proof"]])
    code, _, _ = _run(world, "ledger", "consistency", "--from", str(new["size"]), "--to",
                      str(old["size"]))
    assert code != 0


def test_verify_with_a_checkpoint_file_then_after_a_cut(world: World, tmp_path: Path) -> None:
    fill(world.app, 120)
    held = tmp_path / "held.txt"
    code, _, err = _run(world, "ledger", "checkpoint", "--out", str(held))
    assert code == 0, err
    size = notes.parse_checkpoint(notes.unverified_body(held.read_text())).size
    code, out, err = _run(world, "ledger", "verify", "--checkpoint", str(held))
    assert code == 0, err
    assert out.startswith("OK:") and "(full)" in out and "the checkpoint given" in out
    code, out, err = _run(world, "ledger", "verify", "--incremental", "--json")
    assert code == 0 and json.loads(out)["mode"] == "incremental", err

    cut_tail(db_file(world.app), size - 50)
    res = _process(world, "ledger", "verify", "--checkpoint", str(held))
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"ledger verification FAILED at entry {size - 49}: TRUNCATED" in res.stderr
    assert f"vouches for {size}" in res.stderr and res.stdout == ""
    res = _process(world, "ledger", "verify", "--checkpoint", str(held), "--json")
    assert res.returncode == 1
    assert json.loads(res.stdout)["reason"].startswith("TRUNCATED")
