"""Every search's receipt carries its ledger proof (issue 13): the entry number, the signed
checkpoint holding it (or when one is due) and the inclusion proof, checked offline with the
log's key; held searches carry their request's receipt, approved ones their result's; the
receipt route answers as reading the search does."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from faceledger.accounts import users as accounts
from faceledger.accounts.users import Principal
from faceledger.errors import NotFoundError, PermissionDeniedError
from faceledger.gallery.ingest import Ingest
from faceledger.governance import checkpoints, ledger, notes, proofs
from faceledger.search import approval, receipts
from faceledger.search.service import SearchRequest, run_search
from faceledger.server import create_app
from tests.conftest import World
from tests.photos import astronaut_face, encode, grace_hopper

POLICY = """
purposes = ["criminal investigation"]
offences = ["robbery", "fraud"]
[approval]
rules = [{ name = "fraud", offences = ["fraud"] }]
"""


def req(offence: str = "robbery") -> SearchRequest:
    return SearchRequest("RC-1", "criminal investigation", offence, "test basis", top_k=5)


@pytest.fixture
def gallery(world: World, tmp_path: Path) -> World:
    d = tmp_path / "gallery"
    d.mkdir()
    (d / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (d / "grace.jpg").write_bytes(encode(grace_hopper()))
    Ingest(world.app, world.admin).run([d], "gallery")
    return world


def vkey(world: World) -> str:
    return checkpoints.key_of(world.app).vkey


def viewed(world: World) -> list[dict[str, object]]:
    with world.app.db.read() as s:
        return [json.loads(e.payload or "{}") for e in ledger.read(s, kind="search.viewed")]


def test_receipt_names_the_missing_checkpoint_then_verifies(gallery: World) -> None:
    """Right after the search: the entry's proof against the log as it stands, no signed
    checkpoint yet (check_receipt says so); after a checkpoint, the receipt read again is
    signed, of that checkpoint's size, and checks out with the log key alone."""
    res = run_search(gallery.app, gallery.investigator, encode(astronaut_face()), req())
    rec = res.receipt
    assert rec is not None and res.as_dict()["receipt"] == rec
    assert rec["search_id"] == res.search_id and rec["seq"] == res.ledger_seq
    assert rec["leaf"]["kind"] == "search" and rec["tree_size"] >= res.ledger_seq
    assert rec["checkpoint"] is None and rec["checkpoint_at"] is None
    assert "next checkpoint" in rec["checkpoint_due"]
    assert len(rec["path"]) > 0  # the gallery's entries came first: a real path
    assert proofs.check_receipt(rec, vkey(gallery)) == [
        "no signed checkpoint covers this entry yet: fetch the receipt again"]

    cp = checkpoints.create_checkpoint(gallery.app, gallery.auditor)
    later = receipts.search_receipt(gallery.app, gallery.investigator, res.search_id)
    assert later["seq"] == res.ledger_seq and later["tree_size"] == cp["size"]
    assert later["checkpoint"] == cp["note"] and later["checkpoint_at"]
    assert "checkpoint_due" not in later
    assert proofs.check_receipt(later, vkey(gallery)) == []
    # A later search is not in that checkpoint: its receipt is due again.
    again = run_search(gallery.app, gallery.investigator, encode(grace_hopper()), req())
    assert again.receipt is not None and again.receipt["checkpoint"] is None


def test_tampered_receipts_fail(gallery: World) -> None:
    res = run_search(gallery.app, gallery.investigator, encode(astronaut_face()), req())
    checkpoints.create_checkpoint(gallery.app, gallery.auditor)
    rec = receipts.search_receipt(gallery.app, gallery.investigator, res.search_id)
    key = vkey(gallery)
    assert proofs.check_receipt(rec, key) == []

    path = copy.deepcopy(rec)
    first = path["path"][0]
    path["path"][0] = ("0" if first[0] != "0" else "1") + first[1:]
    assert any("inclusion proof does not lead to the root" in p
               for p in proofs.check_receipt(path, key))

    leaf = copy.deepcopy(rec)
    leaf["leaf"]["kind"] = "search.refused"
    assert "the leaf fields do not hash to the leaf hash" in proofs.check_receipt(leaf, key)

    stranger = notes.Signer(checkpoints.key_of(gallery.app).origin,
                            Ed25519PrivateKey.generate()).vkey()
    assert any("does not verify with the given key" in p
               for p in proofs.check_receipt(rec, stranger))


def test_who_may_read_a_receipt(gallery: World) -> None:
    """As reading the search: its searcher (not ledgered), another investigator or a
    supervisor (ledgered as a look at someone else's search), never an auditor; an unknown
    search is not found."""
    res = run_search(gallery.app, gallery.investigator, encode(astronaut_face()), req())
    with gallery.app.db.write() as s:
        ian, _ = accounts.create_user(s, "ian", "investigator", actor=gallery.admin)
    other = Principal(ian.id, ian.name, ian.role)
    own = receipts.search_receipt(gallery.app, gallery.investigator, res.search_id)
    assert own["seq"] == res.ledger_seq and viewed(gallery) == []
    theirs = receipts.search_receipt(gallery.app, other, res.search_id)
    assert theirs["seq"] == res.ledger_seq
    assert viewed(gallery) == [{"search_id": res.search_id, "searcher": "ivy", "by": "ian",
                                "role": "investigator"}]
    with pytest.raises(PermissionDeniedError):
        receipts.search_receipt(gallery.app, gallery.auditor, res.search_id)
    with pytest.raises(PermissionDeniedError):
        receipts.search_receipt(gallery.app, gallery.admin, res.search_id)
    with pytest.raises(NotFoundError):
        receipts.search_receipt(gallery.app, gallery.investigator, res.search_id + 99)


def test_held_search_has_its_request_receipt_then_its_result_receipt(gallery: World) -> None:
    (gallery.app.settings.home / "policy.toml").write_text(POLICY)
    gallery.app._policy = None
    with gallery.app.db.write() as s:
        sam, _ = accounts.create_user(s, "sam", "supervisor", actor=gallery.admin)
    held = run_search(gallery.app, gallery.investigator, encode(astronaut_face()),
                      req("fraud"))
    assert held.status == "pending" and held.receipt is not None
    assert held.receipt["seq"] == held.ledger_seq
    assert held.receipt["leaf"]["kind"] == "search.requested"
    done = approval.decide(gallery.app, Principal(sam.id, sam.name, sam.role),
                           held.search_id, True, "proportionate")
    assert done is not None and done.receipt is not None
    assert done.receipt["seq"] == done.ledger_seq > held.ledger_seq
    assert done.receipt["leaf"]["kind"] == "search"
    checkpoints.create_checkpoint(gallery.app, gallery.auditor)
    rec = receipts.search_receipt(gallery.app, gallery.investigator, held.search_id)
    assert rec["seq"] == done.ledger_seq and proofs.check_receipt(rec, vkey(gallery)) == []


@pytest.fixture
def api(gallery: World) -> Iterator[tuple[TestClient, dict[str, str], int]]:
    """The real app in process over the world's data home, with tokens by name and a search
    of ivy's."""
    res = run_search(gallery.app, gallery.investigator, encode(astronaut_face()), req())
    with gallery.app.db.write() as s:
        tokens = {"ivy": gallery.investigator_token, "root": gallery.admin_token}
        for name, role in (("ian", "investigator"), ("sue", "supervisor"), ("aud", "auditor")):
            tokens[name] = accounts.create_user(s, name, role, actor=gallery.admin)[1]
    with TestClient(create_app(gallery.app.settings, load_models=False)) as c:
        yield c, tokens, res.search_id


def test_receipt_route(api: tuple[TestClient, dict[str, str], int], gallery: World) -> None:
    c, tokens, sid = api

    def get(user: str | None, search_id: int = sid) -> tuple[int, dict[str, object]]:
        headers = {"authorization": f"Bearer {tokens[user]}"} if user else {}
        r = c.get(f"/api/v1/searches/{search_id}/receipt", headers=headers)
        return r.status_code, r.json()

    status, body = get("ivy")
    assert status == 200 and body["search_id"] == sid and body["checkpoint"] is None
    assert body["checkpoint_due"]
    made = c.post("/api/v1/ledger/checkpoints",
                  headers={"authorization": f"Bearer {tokens['aud']}"})
    assert made.status_code == 201
    status, body = get("ivy")
    assert status == 200 and body["tree_size"] == made.json()["size"]
    assert proofs.check_receipt(body, vkey(gallery)) == []  # nothing lost on the way out
    assert get("ian")[0] == 200 and get("sue")[0] == 200  # as reading the search: ledgered
    assert [v["by"] for v in viewed(gallery)] == ["ian", "sue"]
    assert get("aud")[0] == 403 and get("root")[0] == 403
    assert get(None)[0] == 401
    assert get("ivy", sid + 99)[0] == 404
    spec = c.get("/api/v1/openapi.json").json()
    op = spec["paths"]["/api/v1/searches/{search_id}/receipt"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SearchReceiptOut")


def test_cli_search_receipt_file_checks_offline(tmp_path: Path) -> None:
    """`faceledger search` prints where its entry stands and --json carries the receipt;
    `faceledger searches receipt ID --out F` writes the receipt that `ledger check-receipt F
    --key VKEY` accepts once a checkpoint covers it (exit 0) and refuses tampered (exit 9)."""
    from tests.cli.test_cli import CLI, setup

    cli = CLI(tmp_path / "home")
    admin, ivy, aud = setup(cli)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    cli("ingest", str(photos), "--collection", "mugshots", token=admin)
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(encode(astronaut_face()))
    why = ["--case", "C-9", "--purpose", "criminal investigation", "--offence", "burglary",
           "--legal-basis", "PACE"]
    out = cli("search", str(probe), *why, token=ivy).stdout
    line = out.strip().splitlines()[-1]
    assert line.startswith("Ledger receipt: ledger entry #") and "checkpoint due:" in line
    js = json.loads(cli("search", str(probe), *why, "--json", token=ivy).stdout)
    sid, seq = js["search_id"], js["ledger_seq"]
    assert js["receipt"]["seq"] == seq and js["receipt"]["checkpoint"] is None

    cli("ledger", "checkpoint", token=aud)
    key = json.loads(cli("ledger", "key", "--json", token=ivy).stdout)["vkey"]
    shown = json.loads(cli("searches", "receipt", str(sid), token=ivy).stdout)
    assert shown["seq"] == seq and shown["checkpoint"]
    file = tmp_path / "receipt.json"
    wrote = cli("searches", "receipt", str(sid), "--out", str(file), token=ivy).stdout
    assert f"ledger entry #{seq}, in checkpoint of size {shown['tree_size']}" in wrote
    ok = cli("ledger", "check-receipt", str(file), "--key", key)
    assert ok.returncode == 0 and f"OK: entry {seq}" in ok.stdout

    rec = json.loads(file.read_text())
    rec["path"][-1] = "00" * 32
    file.write_text(json.dumps(rec))
    bad = cli("ledger", "check-receipt", str(file), "--key", key, check=False)
    assert bad.returncode == 9 and "inclusion proof does not lead" in bad.stderr
    assert cli("searches", "receipt", str(sid), token=aud, check=False).returncode == 3
    assert cli("searches", "receipt", str(sid + 50), token=ivy, check=False).returncode == 4
