"""Issue 13 in the browser: the oversight page and the ledger page show each witness and when it
last co-signed (and warn while none has), the model page shows the log's key, and a
subject-access answer offers its proofs as JSON that check offline with that key. Real server,
real keys, real Chromium."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.sync_api import expect

from faceledger.governance import notes, proofs
from tests.live import LiveServer
from tests.photos import astronaut_face, encode, variants
from tests.web.test_mobile import PHONE, no_sideways_scroll

WITNESS = "oversight-board.example/witness"
FIELDS = {"case": "CASE-TLOG-1", "purpose": "criminal investigation", "offence": "robbery",
          "legal_basis": "warrant 13 (test)", "top_k": "2"}


def api(server: LiveServer, user: str, method: str, path: str, **kw: Any) -> Any:
    with server.client(user) as c:
        res = c.request(method, "/api/v1" + path, **kw)
    assert res.status_code in (200, 201), res.text
    return res.json()


def cosign_latest(server: LiveServer, witness: notes.Signer) -> dict[str, Any]:
    """Co-sign the latest checkpoint as a witness would and post it back (an auditor's token)."""
    cp = api(server, "audrey", "GET", "/ledger/checkpoint")
    line = notes.cosign(notes.unverified_body(cp["note"]), witness,
                        int(datetime.now(UTC).timestamp()))
    api(server, "audrey", "POST", "/ledger/cosignatures", json={
        "size": cp["size"], "root_hash": cp["root_hash"],
        "witness_vkey": witness.witness_vkey(), "cosignature": line})
    return dict(cp)


def test_oversight_and_ledger_pages_show_the_witnesses(open_session: Any,
                                                       live_server: LiveServer) -> None:
    key = api(live_server, "ivy", "GET", "/ledger/key")["vkey"]
    api(live_server, "audrey", "POST", "/ledger/checkpoints")
    audrey = open_session("audrey")
    audrey.goto("/oversight", shot="oversight-no-witness")
    section = audrey.page.locator("[data-testid='report'] section.witnesses")
    expect(section.get_by_role("heading", name="Ledger witnesses")).to_be_visible()
    expect(section.locator(".witness-warning")).to_contain_text("no witness has co-signed")
    expect(section.locator("code.vkey")).to_have_text(key)

    cp = cosign_latest(live_server, notes.Signer(WITNESS, Ed25519PrivateKey.generate()))
    audrey.goto("/oversight", shot="oversight-witness")
    section = audrey.page.locator("[data-testid='report'] section.witnesses")
    row = section.locator("tr", has_text=WITNESS)
    expect(row).to_have_count(1)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    expect(row).to_contain_text(today)  # last co-signed (the policy's timezone; UTC here)
    expect(row).to_contain_text(str(cp["size"]))
    expect(section.locator(".witness-warning")).to_have_count(0)

    audrey.goto("/ledger", shot="ledger-checkpoints")
    panel = audrey.page.get_by_test_id("checkpoints")
    expect(panel.get_by_role("heading", name="Signed checkpoints")).to_be_visible()
    expect(panel.get_by_test_id("latest-checkpoint")).to_contain_text(f"{cp['size']} entries")
    expect(panel.get_by_test_id("latest-checkpoint")).to_contain_text("1 cosignature")
    expect(panel.locator(f"tr[data-witness='{WITNESS}']")).to_contain_text(str(cp["size"]))
    expect(panel.get_by_test_id("log-vkey")).to_have_text(key)
    expect(panel.get_by_test_id("tlog-warning")).to_have_count(0)
    audrey.page.set_viewport_size(PHONE)  # fits a phone, as every page must
    for path in ("/ledger", "/oversight"):
        audrey.goto(path)
        no_sideways_scroll(audrey.page)
    audrey.assert_clean()


def test_model_page_shows_the_log_key(open_session: Any, live_server: LiveServer) -> None:
    key = api(live_server, "ivy", "GET", "/ledger/key")
    ivy = open_session("ivy")
    ivy.goto("/model", shot="model-log-key")
    panel = ivy.page.get_by_test_id("log-key")
    expect(panel.get_by_test_id("log-vkey")).to_have_text(key["vkey"])
    expect(panel).to_contain_text(key["origin"])
    ivy.assert_clean()


def test_subject_access_offers_proofs_that_check_offline(open_session: Any,
                                                         live_server: LiveServer,
                                                         tmp_path: Path) -> None:
    done = api(live_server, "ivy", "POST", "/searches", data=FIELDS,
               files={"probe": ("p.jpg", encode(astronaut_face()), "image/jpeg")})
    api(live_server, "audrey", "POST", "/ledger/checkpoints")
    key = api(live_server, "ivy", "GET", "/ledger/key")["vkey"]
    root = open_session("root")
    root.goto("/subjects")
    access = root.page.locator("section#access")
    photo = tmp_path / "me.jpg"
    photo.write_bytes(variants(astronaut_face())["mirror"])
    with root.page.expect_response(lambda r: r.url.endswith("/subjects/faces")):
        access.get_by_label("Photo of the person").set_input_files(str(photo))
    expect(access.locator(".facebox.pick")).to_have_count(1)
    with root.page.expect_navigation():
        access.get_by_role("button", name="Find searches").click()
    root.page.wait_for_load_state("networkidle")
    root.snap("subjects-access-proofs")
    access = root.page.locator("section#access")
    row = access.locator(f"tr[data-search-id='{done['search_id']}']")
    expect(row.get_by_test_id("proof")).to_contain_text("in the signed checkpoint of size")
    expect(access.get_by_test_id("log-vkey")).to_have_text(key)
    link = access.get_by_test_id("proofs-download")
    assert link.get_attribute("download") == "subject-access-proofs.json"
    href = link.get_attribute("href") or ""
    assert href.startswith("data:application/json;base64,")
    bundle = json.loads(base64.b64decode(href.split(",", 1)[1]))
    ids = [s["search_id"] for s in bundle["searches"]]
    assert done["search_id"] in ids and len(bundle["proofs"]) == len(ids)
    mine = bundle["proofs"][ids.index(done["search_id"])]
    assert mine["seq"] == done["ledger_seq"]
    assert proofs.check_receipt(mine, key) == []
    assert all(p is not None and proofs.check_receipt(p, key) == [] for p in bundle["proofs"])
    assert "CASE-TLOG-1" not in json.dumps(mine["payload"])
    root.assert_clean()
