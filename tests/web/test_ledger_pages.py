"""The ledger page in Chromium: pages of entries with older/newer links that keep the filters,
one-line summaries that open to the full payload, and a usable layout at phone width (375 px);
and the API's paged ledger (newest first, cursors, validated parameters)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from faceledger.core import Faceledger
from faceledger.governance import ledger
from faceledger.settings import Settings
from faceledger.web.ledger_pages import PAGE
from tests.live import LiveServer

CASE = "LEDGER-PAGING-1"
EXTRA = 30  # entries beyond one page


@pytest.fixture(scope="module")
def seqs(live_server: LiveServer) -> Iterator[list[int]]:
    """PAGE + EXTRA entries for one case, written into the running server's database, among
    them one with a long, unbroken payload and a multi-line note."""
    core = Faceledger(Settings(home=live_server.home, workers=1))
    try:
        with core.db.write() as s:
            out = [ledger.append(s, "outcome", {"search_id": i, "result": "lead_pursued",
                                                "date": "2025-03-01", "note": f"note {i}"},
                                 actor="ivy", case_ref=CASE).seq for i in range(PAGE + EXTRA)]
            out.append(ledger.append(
                s, "outcome", {"search_id": 9999, "result": "charge", "date": "2025-03-02",
                               "note": "x" * 600 + "\nsecond line"},
                actor="ivy", case_ref=CASE).seq)
            # Outcome entries need their outcome records (``ledger verify`` cross-checks them);
            # these have none, so they are marked purged as a ledgered retention would.
            ledger.append(s, "retention.records_purged", {"records_purged": {"entries": out}},
                          actor="root")
    finally:
        core.close()
    yield out


def _seqs_shown(page: Any) -> list[int]:
    return [int(x) for x in page.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.seq)")]


def test_pages_older_and_newer_keep_the_filter(open_session: Any, seqs: list[int]) -> None:
    s = open_session("audrey")
    s.goto(f"/ledger?case={CASE}", shot="ledger-paged")
    newest = seqs[-PAGE:]
    assert _seqs_shown(s.page) == newest  # the newest page, oldest to newest
    expect(s.page.get_by_test_id("newer")).to_have_count(0)
    expect(s.page.get_by_test_id("chain")).to_contain_text("Chain verified")
    expect(s.page.get_by_test_id("chain-checked")).to_contain_text("Whole chain walked at")
    with s.page.expect_navigation():
        s.page.get_by_test_id("pager-top").get_by_test_id("older").click()
    assert f"case={CASE}" in s.page.url and f"before={newest[0]}" in s.page.url
    assert _seqs_shown(s.page) == seqs[:-PAGE]
    expect(s.page.get_by_test_id("older")).to_have_count(0)
    expect(s.page.locator("tbody tr")).to_have_count(len(seqs) - PAGE)
    with s.page.expect_navigation():
        s.page.get_by_test_id("pager-top").get_by_test_id("newer").click()
    assert f"case={CASE}" in s.page.url and f"after={seqs[-PAGE - 1]}" in s.page.url
    assert _seqs_shown(s.page) == newest  # the page just after the older one
    expect(s.page.get_by_test_id("newer")).to_have_count(0)
    expect(s.page.get_by_test_id("pager-top").get_by_test_id("latest")).to_have_attribute(
        "href", f"/ledger?case={CASE}")
    # One line per entry until opened; opened, the full payload.
    row = s.page.locator(f"tr[data-seq='{seqs[-1]}']")
    summary = row.locator("summary")
    expect(summary).to_contain_text("search 9999: charge on 2025-03-02")
    line_height = summary.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert summary.bounding_box()["height"] <= 1.6 * line_height  # type: ignore[index]
    summary.click()
    expect(row.locator("pre.payload")).to_contain_text("second line")
    s.assert_clean()


def test_ledger_at_phone_width(open_session: Any, seqs: list[int]) -> None:
    s = open_session("audrey")
    s.page.set_viewport_size({"width": 375, "height": 812})
    s.goto(f"/ledger?case={CASE}", shot="ledger-375")
    widths = s.page.evaluate("() => [document.documentElement.scrollWidth, "
                             "document.documentElement.clientWidth]")
    assert widths[0] <= 375, widths
    heights = s.page.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.getBoundingClientRect().height)")
    assert len(heights) == PAGE and max(heights) <= 110, max(heights)
    # The unfiltered ledger (sign-ins, searches, ingest with long payloads) fits too.
    s.goto("/ledger", shot="ledger-375-all")
    assert s.page.evaluate("() => document.documentElement.scrollWidth") <= 375
    heights = s.page.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.getBoundingClientRect().height)")
    assert heights and max(heights) <= 110, max(heights)
    # An opened entry scrolls inside itself, never the page.
    s.goto(f"/ledger?case={CASE}")
    s.page.locator(f"tr[data-seq='{seqs[-1]}'] summary").click()
    s.snap("ledger-375-open")
    assert s.page.evaluate("() => document.documentElement.scrollWidth") <= 375
    s.assert_clean()


def test_api_ledger_pages_newest_first(live_server: LiveServer, seqs: list[int]) -> None:
    with live_server.client("audrey") as c:
        first = c.get("/api/v1/ledger", params={"case": CASE, "limit": 50}).json()
        assert [e["seq"] for e in first["entries"]] == seqs[::-1][:50]
        assert first["order"] == "newest" and first["prev"] is None
        assert first["next"] == {"before": seqs[-50]}
        second = c.get("/api/v1/ledger", params={"case": CASE, "limit": 50,
                                                 **first["next"]}).json()
        assert [e["seq"] for e in second["entries"]] == seqs[::-1][50:100]
        assert second["prev"] == {"after": seqs[-51]}
        back = c.get("/api/v1/ledger", params={"case": CASE, "limit": 50,
                                               **second["prev"]}).json()
        assert back["entries"] == first["entries"]
        oldest = c.get("/api/v1/ledger", params={"case": CASE, "limit": 10,
                                                 "order": "oldest"}).json()
        assert [e["seq"] for e in oldest["entries"]] == seqs[:10]
        assert oldest["next"] == {"after": seqs[9]} and oldest["prev"] is None
        for bad in ({"before": 0}, {"after": -1}, {"before": "x"}, {"limit": 0},
                    {"limit": 5000}, {"order": "sideways"}, {"kind": "search%"},
                    {"before": 2**63}):
            r = c.get("/api/v1/ledger", params=bad)
            assert r.status_code == 422 and r.json()["code"] == "invalid_request", bad
    with live_server.client("ivy") as c:
        assert c.get("/api/v1/ledger").status_code == 403
