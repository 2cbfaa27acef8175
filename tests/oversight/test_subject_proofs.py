"""Issue 13: a subject-access answer carries a proof for every search it lists, checkable offline
with nothing but the log's key; the proofs disclose only the fields the answer shows. And the
oversight report's "Ledger witnesses" section: the log key, the latest checkpoint, each witness
and the warnings (no witness, a witness silent for more than a day)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from typer.testing import CliRunner

from faceledger.cli.main import app as cli
from faceledger.db.schema import Search, User
from faceledger.gallery.ingest import Ingest
from faceledger.governance import checkpoints, notes, proofs, witnesses
from faceledger.oversight import service, subjects
from faceledger.oversight.render import render_html, render_json
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.photos import astronaut_face, encode, grace_hopper, variants

REQ = SearchRequest("CASE-SECRET-7", "criminal investigation", "robbery", "basis", top_k=2)
ASTRO = variants(astronaut_face())["mirror"]  # another photo of the person asking


@pytest.fixture
def gallery(world: World, tmp_path: Path) -> World:
    d = tmp_path / "g"
    d.mkdir()
    (d / "astro.jpg").write_bytes(encode(astronaut_face()))
    (d / "grace.jpg").write_bytes(encode(grace_hopper()))
    Ingest(world.app, world.admin).run([d], "gallery")
    return world


def vkey(w: World) -> str:
    return checkpoints.log_key(w.app, w.auditor).vkey


def test_each_listed_search_carries_a_proof_that_checks_with_the_log_key(gallery: World) -> None:
    app = gallery.app
    done = run_search(app, gallery.investigator, encode(astronaut_face()), REQ)
    checkpoints.create_checkpoint(app, gallery.auditor)
    rows = subjects.access(app, gallery.admin, ASTRO)
    assert [r["search_id"] for r in rows] == [done.search_id]
    row = rows[0]
    assert row["ledger_seq"] == done.ledger_seq and row["proof_problem"] is None
    assert row["log_key"]["vkey"] == vkey(gallery)
    proof = row["proof"]
    assert proof["seq"] == done.ledger_seq and proof["checkpoint"] is not None
    assert proofs.check_receipt(proof, vkey(gallery)) == []
    # What the answer shows is what the proof discloses, nothing more.
    fields = proof["payload"]["fields"]
    assert set(fields) == {"search_id", "purpose", "offence", "started_at"}
    assert (fields["search_id"], fields["purpose"], fields["offence"]) == (
        row["search_id"], row["purpose"], row["offence"])
    shown = datetime.fromisoformat(row["date"])
    assert datetime.fromisoformat(fields["started_at"]) == (
        shown if shown.tzinfo else shown.replace(tzinfo=UTC))
    hidden = proof["payload"]["other_field_digests"]
    assert {"user", "case", "candidates", "probe_sha256"} <= set(hidden)
    disclosed = json.dumps(proof["payload"])
    assert "ivy" not in disclosed and "CASE-SECRET-7" not in disclosed
    # The disclosure is bound to the entry: another purpose, or the wrong key, fails.
    forged = json.loads(json.dumps(proof))
    forged["payload"]["fields"]["purpose"] = "missing person"
    assert any("payload digest" in p for p in proofs.check_receipt(forged, vkey(gallery)))
    other = notes.Signer("impostor.example/log", Ed25519PrivateKey.generate()).vkey()
    assert any("does not verify" in p for p in proofs.check_receipt(proof, other))


def test_no_part_of_a_proof_names_the_user_or_case(gallery: World) -> None:
    """The leaf carries the actor and case as digests, the payload only the shown fields."""
    run_search(gallery.app, gallery.investigator, encode(astronaut_face()), REQ)
    row = subjects.access(gallery.app, gallery.admin, ASTRO)[0]
    text = json.dumps(row["proof"])
    assert "CASE-SECRET-7" not in text and '"ivy"' not in text


def test_before_a_checkpoint_the_proof_says_one_is_due(gallery: World) -> None:
    run_search(gallery.app, gallery.investigator, encode(astronaut_face()), REQ)
    proof = subjects.access(gallery.app, gallery.admin, ASTRO)[0]["proof"]
    assert proof["checkpoint"] is None and "next checkpoint" in proof["checkpoint_due"]
    problems = proofs.check_receipt(proof, vkey(gallery))
    assert problems == ["no signed checkpoint covers this entry yet: fetch the receipt again"]


def test_a_search_without_a_ledger_entry_has_no_proof_and_says_why(gallery: World) -> None:
    app = gallery.app
    vec = subjects.subject_embedding(app, encode(astronaut_face()), None).vector
    with app.db.write() as s:  # a record written outside faceledger: no ledger entry
        uid = s.execute(select(User.id).where(User.name == "ivy")).scalar_one()
        now = datetime.now(UTC)
        s.add(Search(user_id=uid, case_ref="X-1", purpose="criminal investigation",
                     offence="robbery", legal_basis="b", mode="investigate",
                     model_id=app.model_id, top_k=5, probe_sha256="0" * 64, started_at=now,
                     finished_at=now, ledger_seq=0, result_count=0, status="done",
                     probe_embedding=vec.astype("<f4").tobytes()))
    rows = subjects.access(app, gallery.admin, ASTRO)
    assert len(rows) == 1 and rows[0]["proof"] is None
    assert "no ledger entry" in rows[0]["proof_problem"]


def test_cli_out_file_proofs_check_with_check_receipt(gallery: World, tmp_path: Path) -> None:
    """`subject access --out F`: one proof per search, in order; each checks offline with
    `ledger check-receipt` (exit 0), and a tampered one fails (exit 9)."""
    app = gallery.app
    first = run_search(app, gallery.investigator, encode(astronaut_face()), REQ)
    second = run_search(app, gallery.investigator, encode(grace_hopper()),
                        replace(REQ, top_k=5))  # the astronaut is among its results
    checkpoints.create_checkpoint(app, gallery.auditor)
    photo, out = tmp_path / "me.jpg", tmp_path / "answer.json"
    photo.write_bytes(ASTRO)
    env = {"FACELEDGER_HOME": str(app.settings.home), "FACELEDGER_TOKEN": gallery.admin_token}
    res = CliRunner().invoke(cli, ["subject", "access", str(photo), "--out", str(out)], env=env)
    assert res.exit_code == 0, res.output
    assert f"proof: entry {first.ledger_seq}, checkpoint size" in res.stdout
    bundle = json.loads(out.read_text())
    assert [s["search_id"] for s in bundle["searches"]] == [first.search_id, second.search_id]
    assert [p["seq"] for p in bundle["proofs"]] == [first.ledger_seq, second.ledger_seq]
    assert bundle["log_key"]["vkey"] == vkey(gallery) and "check-receipt" in bundle["how_to_check"]
    assert all("proof" not in s for s in bundle["searches"])
    for i, proof in enumerate(bundle["proofs"]):
        f = tmp_path / f"p{i}.json"
        f.write_text(json.dumps(proof))
        ok = CliRunner().invoke(cli, ["ledger", "check-receipt", str(f), "--key", vkey(gallery)])
        assert ok.exit_code == 0, ok.output
    proof = bundle["proofs"][0]
    proof["path"][0] = "00" * 32
    f.write_text(json.dumps(proof))
    bad = CliRunner().invoke(cli, ["ledger", "check-receipt", str(f), "--key", vkey(gallery)])
    assert bad.exit_code == 9


def cosign(w: World, witness: notes.Signer, at: datetime) -> None:
    cp = checkpoints.latest_checkpoint(w.app, w.auditor)
    body = notes.unverified_body(cp["note"])
    witnesses.record_cosignature(w.app, w.auditor, cp["size"], cp["root_hash"],
                                 witness.witness_vkey(), notes.cosign(body, witness,
                                                                      int(at.timestamp())))


def test_transparency_warns_without_witnesses_then_lists_them(world: World) -> None:
    app = world.app
    bare = service.transparency(app)
    assert bare["latest_checkpoint"] is None and bare["witnesses"] == []
    assert any("no checkpoint" in w for w in bare["warnings"])
    assert any("no witness" in w for w in bare["warnings"])
    cp = checkpoints.create_checkpoint(app, world.auditor)
    fresh = notes.Signer("court.example/witness", Ed25519PrivateKey.generate())
    cosign(world, fresh, datetime.now(UTC))
    t = service.transparency(app)
    assert t["log_key"]["vkey"] == vkey(world) and t["log_key"]["problem"] is None
    assert t["latest_checkpoint"]["size"] == cp["size"]
    assert t["latest_checkpoint"]["cosignatures"] == 1
    (w,) = t["witnesses"]
    assert (w["witness"], w["last_size"], w["cosignatures"], w["stale"]) == (
        "court.example/witness", cp["size"], 1, False)
    assert t["warnings"] == []
    # A witness whose last cosignature is two days old is named in a warning.
    old = notes.Signer("sleepy.example/witness", Ed25519PrivateKey.generate())
    cosign(world, old, datetime.now(UTC) - timedelta(days=2))
    t = service.transparency(app)
    assert [x["witness"] for x in t["witnesses"] if x["stale"]] == ["sleepy.example/witness"]
    assert len(t["warnings"]) == 1 and "sleepy.example/witness last co-signed 2 days ago" in (
        t["warnings"][0])


def test_the_oversight_report_carries_the_witnesses(world: World) -> None:
    cp = checkpoints.create_checkpoint(world.app, world.auditor)
    cosign(world, notes.Signer("court.example/witness", Ed25519PrivateKey.generate()),
           datetime.now(UTC))
    rep = service.oversight_report(world.app, world.auditor, None, None).report
    got = json.loads(render_json(rep))["transparency_log"]
    assert got["witnesses"][0]["witness"] == "court.example/witness"
    assert got["latest_checkpoint"]["size"] == cp["size"]
    assert got["log_key"]["vkey"] == vkey(world)
    html = render_html(rep)
    assert "<h2>Ledger witnesses</h2>" in html and "court.example/witness" in html
    assert vkey(world) in html and f"{cp['size']} entries" in html
