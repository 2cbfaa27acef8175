"""`faceledger ledger show`: newest first, --reverse, cursors, one readable line per entry, and
--json as the full machine form (the real CLI app, in-process, on a real database)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from faceledger.cli.main import app
from faceledger.governance import ledger
from tests.conftest import World


def _run(world: World, *args: str, token: str | None = None) -> tuple[int, str, str]:
    env = {"FACELEDGER_HOME": str(world.app.settings.home),
           "FACELEDGER_TOKEN": token or world.admin_token}
    res = CliRunner().invoke(app, list(args), env=env)
    return res.exit_code, res.stdout, res.stderr


def _entries(world: World) -> list[int]:
    with world.app.db.write() as s:
        seqs = [ledger.append(s, "outcome", {"search_id": i, "result": "no_match",
                                             "date": "2025-03-0" + str(i), "note": ""},
                              actor="ivy", case_ref="CLI-1").seq for i in range(1, 10)]
        ledger.append(s, "search.refused", {"user": "ivy", "case": "CLI-2", "code":
                                            "policy_refused", "rule": "purposes",
                                            "reason": "purpose 'curiosity' is not allowed"},
                      actor="ivy", case_ref="CLI-2")
    return seqs


def test_show_is_newest_first_one_line_each(world: World) -> None:
    seqs = _entries(world)
    code, out, err = _run(world, "ledger", "show", "--case", "CLI-1", "--limit", "4")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 4
    assert [int(x.split("#")[1].split()[0]) for x in lines] == seqs[::-1][:4]
    first = lines[0]
    assert first[:4].isdigit() and first[19] == "Z"  # time (UTC) first
    assert " ivy " in first and " outcome " in first and "[CLI-1]" in first
    assert first.endswith("search 9: no_match on 2025-03-09")
    assert "{" not in out  # summaries, not raw JSON
    assert f"--before {seqs[5]}" in err  # how to get the next page
    code, out, _ = _run(world, "ledger", "show", "--case", "CLI-1", "--limit", "4",
                        "--before", str(seqs[5]))
    assert [int(x.split("#")[1].split()[0]) for x in out.splitlines()] == seqs[1:5][::-1]


def test_reverse_json_and_refusals(world: World) -> None:
    seqs = _entries(world)
    code, out, err = _run(world, "ledger", "show", "--case", "CLI-1", "--reverse",
                          "--limit", "3", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["seq"] for r in rows] == seqs[:3]
    assert rows[0]["payload"] == {"search_id": 1, "result": "no_match", "date": "2025-03-01",
                                  "note": ""}
    assert {"hash", "prev_hash", "payload_digest"} <= set(rows[0])
    code, out, err = _run(world, "ledger", "show", "--case", "CLI-1", "--reverse",
                          "--limit", "5")
    assert [int(x.split("#")[1].split()[0]) for x in out.splitlines()] == seqs[:5]
    assert f"--after {seqs[4]}" in err
    code, out, _ = _run(world, "ledger", "show", "--kind", "search.refused")
    assert "refused (purposes): purpose 'curiosity' is not allowed" in out
    code, out, err = _run(world, "ledger", "show", "--case", "NOPE")
    assert code == 0 and out == "" and "No ledger entries match" in err


def test_bad_cursors_and_investigators_are_refused(world: World) -> None:
    code, _, err = _run(world, "ledger", "show", "--before", "0")
    assert code == 2 and "--before" in err
    code, _, err = _run(world, "ledger", "show", "--limit", "0")
    assert code == 2 and "--limit" in err
    code, _, _ = _run(world, "ledger", "show", token=world.investigator_token)
    assert code != 0
