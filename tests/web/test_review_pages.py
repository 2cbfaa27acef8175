"""Two-person review in the browser: one verdict per person, reviewers' notes shown to the next
reviewer, and the review queue with its count in the navigation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.live import LiveServer
from tests.photos import encode, grace_hopper

CASE = "CASE-REVIEW-1"
state: dict[str, Any] = {}


@pytest.fixture(scope="module")
def search(live_server: LiveServer) -> tuple[int, int]:
    """ivy's search (over the API, as the search pages have their own tests)."""
    with live_server.client("ivy") as c:
        res = c.post("/api/v1/searches",
                     files={"probe": ("g.jpg", encode(grace_hopper()), "image/jpeg")},
                     data={"case": CASE, "purpose": "criminal investigation",
                           "offence": "robbery", "legal_basis": "warrant 24/1 (test)"})
        assert res.status_code == 200, res.text
        body = res.json()
    return int(body["search_id"]), int(body["candidates"][0]["face_id"])


def decide(s: Any, decision: str, note: str = "") -> None:
    s.page.get_by_role("radio", name=re.compile(decision)).check()
    s.page.get_by_label("Note").fill(note)
    with s.page.expect_navigation():
        s.page.get_by_role("button", name="Record decision").click()
    s.page.wait_for_load_state("networkidle")


def reviews_link(s: Any) -> Any:
    return s.page.get_by_role("navigation", name="Main").get_by_role(
        "link", name=re.compile(r"^Reviews"))


def test_a_repeated_confirmation_counts_once(open_session: Any, search: tuple[int, int]
                                             ) -> None:
    sid, fid = search
    ivy = open_session("ivy")
    page = ivy.page
    ivy.goto(f"/searches/{sid}/candidates/{fid}")
    decide(ivy, "Confirm", "same scar on the chin")
    expect(page.get_by_role("status").first).to_contain_text("recorded in the ledger")
    decide(ivy, "Confirm", "still sure")
    expect(page.get_by_test_id("repeat")).to_contain_text(
        "You had already confirmed this candidate: nothing new was recorded")
    expect(page.locator(".review-status .badge")).to_have_attribute("data-status",
                                                                   "confirmed_once")
    expect(page.get_by_test_id("confirmed-by")).to_have_text("ivy")
    history = page.get_by_test_id("review-history").locator("li")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("same scar on the chin")
    expect(page.get_by_test_id("review-history")).not_to_contain_text("still sure")
    ivy.snap("review-repeat")
    # The only confirmation is ivy's own: nothing waits for *her*, so no count.
    expect(reviews_link(ivy)).to_have_text("Reviews")
    ivy.goto("/reviews", shot="reviews-ivy")
    expect(page.get_by_test_id("review-queue")).to_contain_text(
        "No candidate waits for your confirmation")
    expect(page.get_by_test_id("review-yours").locator(
        f"tr[data-search-id='{sid}'][data-face-id='{fid}']")).to_have_count(1)
    # At a phone's width the queue reflows instead of scrolling sideways.
    page.set_viewport_size({"width": 375, "height": 800})
    ivy.snap("reviews-ivy-375")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    ivy.assert_clean()
    with ivy.server.client("audrey") as c:
        entries = c.get("/api/v1/ledger", params={"kind": "review"}).json()
    entries = entries["entries"] if isinstance(entries, dict) else entries
    assert [e["actor"] for e in entries if e["payload"]["search"] == sid] == ["ivy"]


def test_the_supervisor_sees_the_queue_and_the_notes(open_session: Any,
                                                     search: tuple[int, int]) -> None:
    sid, fid = search
    sue = open_session("sue")
    page = sue.page
    expect(reviews_link(sue)).to_have_text("Reviews (1)")
    expect(sue.page.get_by_test_id("nav-count")).to_have_text("(1)")
    with page.expect_navigation():
        reviews_link(sue).click()
    page.wait_for_load_state("networkidle")
    assert page.url == sue.url("/reviews")
    sue.snap("reviews-queue")
    # Showing ivy's candidate to sue is a look at someone else's search: ledgered.
    with sue.server.client("audrey") as c:
        viewed = c.get("/api/v1/ledger", params={"kind": "search.viewed"}).json()
    viewed = viewed["entries"] if isinstance(viewed, dict) else viewed
    assert ("sue", sid) in {(e["actor"], e["payload"]["search_id"]) for e in viewed}
    row = page.get_by_test_id("review-queue").locator(
        f"tr[data-search-id='{sid}'][data-face-id='{fid}']")
    expect(row).to_contain_text(CASE)
    expect(row.get_by_test_id("confirmer")).to_have_text("ivy")
    expect(row).to_contain_text("same scar on the chin")
    assert page.eval_on_selector(
        f"tr[data-face-id='{fid}'] img.queue-thumb",
        "img => img.complete && img.naturalWidth > 0")
    with page.expect_navigation():
        row.get_by_role("link", name="Compare & review").click()
    page.wait_for_load_state("networkidle")
    assert page.url == sue.url(f"/searches/{sid}/candidates/{fid}")
    # The next reviewer sees who decided what, when, and why.
    note = page.get_by_test_id("review-history").locator("li[data-user='ivy']")
    expect(note).to_have_attribute("data-decision", "confirmed")
    expect(note).to_contain_text("same scar on the chin")
    expect(note).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"))
    sue.snap("compare-with-notes")
    decide(sue, "Confirm", "agreed")
    expect(page.locator(".review-status .badge")).to_have_attribute("data-status", "confirmed")
    expect(page.get_by_test_id("review-history").locator("li")).to_have_count(2)
    # Nothing waits any more: no count, an empty queue.
    expect(reviews_link(sue)).to_have_text("Reviews")
    sue.goto("/reviews")
    expect(page.get_by_test_id("review-queue")).to_contain_text("No candidate waits")
    # The results page shows the notes on the candidate's card.
    sue.goto(f"/searches/{sid}", shot="results-with-notes")
    notes = page.locator(f".cand-card[data-face-id='{fid}']").get_by_test_id("review-notes")
    expect(notes.locator("li")).to_have_count(2)
    expect(notes).to_contain_text("same scar on the chin")
    expect(notes).to_contain_text("sue confirmed")
    sue.assert_clean()


def test_roles_that_cannot_review_have_no_queue(open_session: Any) -> None:
    audrey = open_session("audrey")
    expect(reviews_link(audrey)).to_have_count(0)
    response = audrey.goto("/reviews")
    assert response is not None and response.status == 403
