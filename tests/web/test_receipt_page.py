"""The "Ledger receipt" panel of a search's page in real Chromium: entry number, "due" until a
checkpoint covers the entry, then the checkpoint's size, root and proof length, and a
same-origin download of the receipt JSON that checks out with the log's key (no inline script:
a CSP violation is a console error and fails the test); it fits a phone's width."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from faceledger.governance import proofs
from tests.live import LiveServer, serve
from tests.photos import astronaut_face, encode

FIELDS = {"case": "RCPT-1", "purpose": "criminal investigation", "offence": "robbery",
          "legal_basis": "test warrant 7"}
WIDTH = 375


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server whose checkpoint timer stays quiet: only the test signs checkpoints."""
    with serve(tmp_path_factory.mktemp("receipt"), FACELEDGER_CHECKPOINT_EVERY_ENTRIES="100000",
               FACELEDGER_CHECKPOINT_EVERY_MINUTES="600") as server:
        yield server


def test_receipt_panel_due_then_signed_and_downloadable(open_session: Any,
                                                        live_server: LiveServer) -> None:
    with live_server.client("ivy") as c:
        res = c.post("/api/v1/searches", data=FIELDS,
                     files={"probe": ("a.jpg", encode(astronaut_face()), "image/jpeg")})
        assert res.status_code == 200, res.text
        sid, seq = res.json()["search_id"], res.json()["ledger_seq"]
        key = c.get("/api/v1/ledger/key").json()["vkey"]

    s = open_session("ivy")
    s.goto(f"/searches/{sid}", shot="receipt-due")
    panel = s.page.locator("[data-testid=receipt]")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-state", "due")
    expect(panel.get_by_role("heading", name="Ledger receipt")).to_be_visible()
    expect(panel.locator("[data-testid=receipt-entry]")).to_have_text(f"#{seq}")
    expect(panel.locator("[data-testid=receipt-checkpoint]")).to_have_text("due")
    expect(panel.locator("[data-testid=receipt-due]")).to_contain_text("next checkpoint")

    with live_server.client("audrey") as c:
        made = c.post("/api/v1/ledger/checkpoints")
        assert made.status_code == 201, made.text
        size, root = made.json()["size"], made.json()["root_hash"]

    s.goto(f"/searches/{sid}", shot="receipt-signed")
    expect(panel).to_have_attribute("data-state", "signed")
    expect(panel.locator("[data-testid=receipt-checkpoint]")).to_contain_text(f"size {size}")
    expect(panel.locator("[data-testid=receipt-checkpoint]")).to_contain_text("signed")
    expect(panel.locator("[data-testid=receipt-root]")).to_have_text(f"{root[:16]}…")
    expect(panel.locator("[data-testid=receipt-root]")).to_have_attribute("title", root)
    link = panel.locator("[data-testid=receipt-download]")
    expect(link).to_have_attribute("download", f"search-{sid}-receipt.json")
    href = link.get_attribute("href")
    assert href == f"/api/v1/searches/{sid}/receipt"
    got = s.page.request.get(s.url(href))  # the browser's own cookies: same origin
    assert got.status == 200
    rec = got.json()
    assert rec["seq"] == seq and rec["tree_size"] == size and rec["root_hash"] == root
    assert proofs.check_receipt(rec, key) == []
    hashes = len(rec["path"])
    expect(panel.locator("[data-testid=receipt-proof]")).to_contain_text(
        f"{hashes} hash{'' if hashes == 1 else 'es'}")
    s.assert_clean()

    s.page.set_viewport_size({"width": WIDTH, "height": 800})
    s.goto(f"/searches/{sid}", shot="mobile-receipt")
    box = panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH + 0.5, box
    assert s.page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    s.assert_clean()


def test_someone_else_s_receipt_in_the_browser(open_session: Any,
                                               live_server: LiveServer) -> None:
    """Another investigator sees the panel on ivy's search (as they may read it); an auditor
    cannot fetch the receipt (no search reading)."""
    with live_server.client("ivy") as c:
        sid = c.get("/api/v1/searches").json()[0]["id"]
    s = open_session("ian")
    s.goto(f"/searches/{sid}")
    expect(s.page.locator("[data-testid=receipt]")).to_be_visible()
    a = open_session("audrey")
    a.goto("/")
    assert a.page.request.get(a.url(f"/api/v1/searches/{sid}/receipt")).status == 403
