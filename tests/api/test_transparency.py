"""The transparency log's API (faceledger/api/routes/transparency.py) over real HTTP on a live
server: each route's answer and refusals, and proofs that verify with nothing but merkle.py
and the published key. The tests run in file order (the last one cuts the log)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from faceledger.governance import merkle, notes, proofs
from tests.live import LiveServer, serve
from tests.tamper import cut_tail, db_file

QUIET = {"FACELEDGER_CHECKPOINT_EVERY_ENTRIES": "100000000",
         "FACELEDGER_CHECKPOINT_EVERY_MINUTES": "1000000"}
API = "/api/v1/ledger"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("transparency"), **QUIET) as live:
        yield live


def _get(server: LiveServer, user: str | None, path: str) -> Any:
    with server.client(user) as c:
        return c.get(API + path)


def _post(server: LiveServer, user: str, path: str, body: Any = None) -> Any:
    with server.client(user) as c:
        return c.post(API + path, json=body)


def _vkey(server: LiveServer) -> notes.Verifier:
    r = _get(server, "ivy", "/key")
    assert r.status_code == 200, r.text
    return notes.parse_vkey(r.json()["vkey"])


def _signed(server: LiveServer, note: str) -> notes.Checkpoint:
    return notes.parse_checkpoint(notes.open_note(note, [_vkey(server)]).body)


def test_key_is_public_to_signed_in_users_and_no_checkpoint_is_404(server: LiveServer) -> None:
    r = _get(server, "ivy", "/key")
    assert r.status_code == 200
    key = r.json()
    assert set(key) == {"origin", "vkey", "key_id", "public_key_pem"}
    assert key["vkey"].startswith(key["origin"] + "+" + key["key_id"] + "+")
    assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert _get(server, None, "/key").status_code == 401
    r = _get(server, "ivy", "/checkpoint")
    assert r.status_code == 404 and "no checkpoint" in r.json()["message"]


def test_checkpoints_are_made_by_auditors_and_admins_only(server: LiveServer) -> None:
    assert _post(server, "ivy", "/checkpoints").status_code == 403
    assert _post(server, "sue", "/checkpoints").status_code == 403
    first = _post(server, "audrey", "/checkpoints")
    assert first.status_code == 201, first.text
    second = _post(server, "root", "/checkpoints")
    assert second.status_code == 201
    a, b = first.json(), second.json()
    assert b["size"] == a["size"] + 1
    signed = _signed(server, a["note"])
    assert (signed.size, signed.root.hex()) == (a["size"], a["root_hash"])
    listed = _get(server, "ivy", "/checkpoints?limit=2").json()
    assert [c["id"] for c in listed] == [b["id"], a["id"]]
    assert _get(server, "ivy", "/checkpoints?limit=0").status_code == 422
    latest = _get(server, "ivy", "/checkpoint").json()
    assert latest["id"] == b["id"] and latest["cosignatures"] == []


def test_inclusion_proof_verifies_against_the_signed_root(server: LiveServer) -> None:
    cp = _post(server, "root", "/checkpoints").json()
    for seq in (1, cp["size"] // 2, cp["size"]):
        r = _get(server, "audrey", f"/proof/inclusion?seq={seq}")
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["seq"] == seq and got["checkpoint"] is not None
        signed = _signed(server, got["checkpoint"])  # the first checkpoint holding seq
        assert signed.size == got["tree_size"] >= seq
        path = [bytes.fromhex(h) for h in got["path"]]
        assert merkle.verify_inclusion(bytes.fromhex(got["leaf_hash"]), seq - 1, signed.size,
                                       path, signed.root)
        assert proofs.check_receipt(got, _vkey(server).vkey()) == []
        assert not merkle.verify_inclusion(bytes.fromhex(got["entry_hash"]), seq - 1,
                                           signed.size, path, signed.root)
    assert _get(server, "ivy", "/proof/inclusion?seq=1").status_code == 403
    assert _get(server, "audrey", "/proof/inclusion?seq=0").status_code == 422
    assert _get(server, "audrey", f"/proof/inclusion?seq={10**9}").status_code == 404


def test_consistency_proof_verifies_between_two_signed_checkpoints(server: LiveServer) -> None:
    old = _signed(server, _post(server, "root", "/checkpoints").json()["note"])
    with server.client("root") as c:  # a few more entries: users added
        for i in range(3):
            assert c.post("/api/v1/users", json={"name": f"extra{i}", "role":
                                                  "investigator"}).status_code == 201
    new = _signed(server, _post(server, "root", "/checkpoints").json()["note"])
    assert new.size > old.size + 3
    r = _get(server, "ivy", f"/proof/consistency?from={old.size}&to={new.size}")
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["from"], got["to"]) == (old.size, new.size)
    assert (got["root_from"], got["root_to"]) == (old.root.hex(), new.root.hex())
    proof = [bytes.fromhex(h) for h in got["proof"]]
    assert merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
    assert not merkle.verify_consistency(old.size, new.size, new.root, old.root, proof)
    assert _get(server, "ivy", f"/proof/consistency?from={new.size}&to={old.size}"
                ).status_code == 422
    assert _get(server, "ivy", f"/proof/consistency?from=0&to={10**9}").status_code == 422
    assert _get(server, None, "/proof/consistency?from=1&to=2").status_code == 401


def _cosignature(server: LiveServer, note: str, signer: notes.Signer) -> dict[str, Any]:
    cp = _signed(server, note)
    body = notes.unverified_body(note)
    return {"size": cp.size, "root_hash": cp.root.hex(), "witness_vkey": signer.witness_vkey(),
            "cosignature": notes.cosign(body, signer, int(datetime.now(UTC).timestamp()))}


def test_cosignatures_are_kept_for_known_checkpoints_only(server: LiveServer) -> None:
    note = _get(server, "ivy", "/checkpoint").json()["note"]
    signer = notes.Signer("api-test.example/witness", Ed25519PrivateKey.generate())
    body = _cosignature(server, note, signer)
    assert _post(server, "ivy", "/cosignatures", body).status_code == 403
    assert _post(server, "root", "/cosignatures", body).status_code == 403  # witnesses only
    r = _post(server, "audrey", "/cosignatures", body)
    assert r.status_code == 201, r.text
    assert r.json()["witness"] == "api-test.example/witness"
    assert r.json()["line"] == body["cosignature"].strip()
    latest = _get(server, "ivy", "/checkpoint").json()
    assert [c["witness"] for c in latest["cosignatures"]] == ["api-test.example/witness"]
    rows = _get(server, "audrey", "/witnesses").json()
    assert any(w["witness"] == "api-test.example/witness" and w["last_size"] == body["size"]
               and w["cosignatures"] == 1 for w in rows)
    assert _get(server, "ivy", "/witnesses").status_code == 403

    unknown = dict(body, root_hash="ab" * 32)
    r = _post(server, "audrey", "/cosignatures", unknown)
    assert r.status_code == 404 and "fork" in r.json()["message"]
    assert _post(server, "audrey", "/cosignatures", dict(body, size=10**9)).status_code == 404
    for bad in ({"cosignature": "— api-test.example/witness AAAA"},
                {"cosignature": "garbage"},
                {"witness_vkey": "not a key"},
                {"root_hash": "xyz"},
                {"cosignature": _cosignature(server, note, notes.Signer(
                    "api-test.example/witness", Ed25519PrivateKey.generate()))["cosignature"]}):
        r = _post(server, "audrey", "/cosignatures", dict(body, **bad))
        assert r.status_code == 422, (bad, r.text)


def test_verify_route_accepts_the_log_then_catches_a_cut(server: LiveServer,
                                                         tmp_path: Path) -> None:
    held = _post(server, "root", "/checkpoints").json()
    assert _post(server, "ivy", "/verify", {}).status_code == 403
    r = _post(server, "audrey", "/verify", {"checkpoint": held["note"]})
    assert r.status_code == 200, r.text
    ok = r.json()
    assert ok["ok"] is True and ok["reason"] is None and ok["mode"] == "full"
    assert "the checkpoint given" in ok["checkpoints_checked"]
    inc = _post(server, "root", "/verify", {"incremental": True}).json()
    assert inc["ok"] is True and inc["mode"] == "incremental" and inc["from_size"] > 0
    stranger = notes.Signer(_vkey(server).name, Ed25519PrivateKey.generate())
    r = _post(server, "audrey", "/verify", {"checkpoint": held["note"], "vkey": stranger.vkey()})
    assert r.status_code == 200 and r.json()["ok"] is False
    assert _post(server, "audrey", "/verify", {"checkpoint": "x" * 70000}).status_code == 422
    for bad_key in ("0" * 900, "name+zz+AAAA", ""):  # malformed log keys are the caller's error
        r = _post(server, "audrey", "/verify", {"checkpoint": held["note"], "vkey": bad_key})
        assert r.status_code == (200 if bad_key == "" else 422), (bad_key, r.text)

    cut_tail(db_file(server.home), held["size"] - 7)
    r = _post(server, "audrey", "/verify", {"checkpoint": held["note"]})
    assert r.status_code == 200
    out = r.json()
    assert out["ok"] is False and out["reason"].startswith("TRUNCATED")
    assert out["first_bad_seq"] == held["size"] - 6
