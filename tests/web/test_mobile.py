"""Phone width (375 x 800) in real Chromium: no page scrolls sideways, navigation wraps, the key
content stays visible. Screenshots go to test-artifacts/screenshots/mobile-*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.live import LiveServer
from tests.photos import astronaut_face, encode, grace_hopper

WIDTH = 375
PHONE = {"width": WIDTH, "height": 800}

# Elements whose right edge passes the viewport: named in the failure message.
OVERFLOWING = """(w) => Array.from(document.querySelectorAll('body *'))
  .filter(e => { const r = e.getBoundingClientRect();
                 return r.width > 0 && r.right > w + 0.5 && !e.closest('.table-wrap, .scroll-x'); })
  .slice(0, 8)
  .map(e => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string'
       ? '.' + e.className.trim().split(/\\s+/).join('.') : '')
       + ' right=' + Math.round(e.getBoundingClientRect().right))"""


def phone(open_session: Any, user: str) -> Any:
    s = open_session(user)
    s.page.set_viewport_size(PHONE)
    return s


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    culprits = page.evaluate(OVERFLOWING, WIDTH)
    assert width <= WIDTH, f"page is {width}px wide at {WIDTH}px: {culprits}"


def visible_in_viewport_width(page: Page, selector: str) -> None:
    """The element is shown and starts inside the screen (not pushed off to the right)."""
    loc = page.locator(selector).first
    expect(loc).to_be_visible()
    box = loc.bounding_box()
    assert box is not None and 0 <= box["x"] < WIDTH and box["width"] > 0, (selector, box)


def within_screen(box: Any, what: str) -> None:
    """Wholly on screen horizontally: not cut off, not hidden in a sideways scroll."""
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH + 0.5, (what, box)


def nav_fits(page: Page) -> None:
    """Every main navigation link and the sign-out button are on screen, none cut off."""
    links = page.locator(".mainnav a")
    assert links.count() >= 1
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH + 0.5, (
            links.nth(i).inner_text(), box)
    out = page.get_by_role("button", name="Sign out").bounding_box()
    assert out is not None and out["x"] + out["width"] <= WIDTH + 0.5, out


def test_admin_page_fits_a_phone(open_session: Any) -> None:
    s = phone(open_session, "root")
    s.goto("/admin", shot="mobile-admin")
    no_sideways_scroll(s.page)
    nav_fits(s.page)
    expect(s.page.get_by_role("heading", name="Administration")).to_be_visible()
    # The users table is either reflowed or scrolls inside its own box: each user row's
    # actions are reachable, and the forms' inputs fit the screen.
    row = s.page.locator("tr[data-user='ivy']")
    expect(row).to_be_visible()
    for name in ("Rotate token", "Disable"):
        button = row.get_by_role("button", name=name)
        button.scroll_into_view_if_needed()
        expect(button).to_be_visible()
        within_screen(button.bounding_box(), name)
    # Reflowed into one block per user, each value labelled (the header row is hidden).
    label = row.locator("td[data-label='Web sign-in']").evaluate(
        "td => getComputedStyle(td, '::before').content")
    assert label == '"Web sign-in"', label
    head = s.page.get_by_test_id("users-table").locator("thead").bounding_box()
    assert head is not None and head["height"] <= 1, head
    for table in ("users-table", "collections-table"):
        within_screen(s.page.get_by_test_id(table).bounding_box(), table)
    for label in ("Name", "Role", "Legal basis"):
        field = s.page.get_by_label(label, exact=True).first
        field.scroll_into_view_if_needed()
        box = field.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, (label, box)
        assert box["width"] >= 200, (label, box)  # readable, not squeezed
    visible_in_viewport_width(s.page, "#add-user-title")
    s.assert_clean()


def test_oversight_page_fits_a_phone(open_session: Any, live_server: LiveServer) -> None:
    probe = {"probe": ("a.jpg", encode(astronaut_face()), "image/jpeg")}
    with live_server.client("ivy") as c:  # something for the report to show
        r = c.post("/api/v1/searches", files=probe,
                   data={"case": "CASE-PHONE-1", "purpose": "criminal investigation",
                         "offence": "robbery", "legal_basis": "warrant 1 (test)"})
        assert r.status_code == 200, r.text
    s = phone(open_session, "audrey")
    s.goto("/oversight", shot="mobile-oversight")
    no_sideways_scroll(s.page)
    nav_fits(s.page)
    expect(s.page.get_by_role("heading", name="Oversight", exact=True)).to_be_visible()
    visible_in_viewport_width(s.page, "[data-testid='report']")
    visible_in_viewport_width(s.page, "#o-from")
    visible_in_viewport_width(s.page, "[data-testid='downloads'] a")
    expect(s.page.get_by_role("button", name="Show report")).to_be_visible()
    s.assert_clean()


@pytest.mark.parametrize("user", ["ivy", "audrey"])
def test_policy_page_fits_a_phone(open_session: Any, user: str) -> None:
    s = phone(open_session, user)
    s.goto("/policy", shot=f"mobile-policy-{user}")
    no_sideways_scroll(s.page)
    nav_fits(s.page)
    expect(s.page.get_by_role("heading", name="Policy in force")).to_be_visible()
    visible_in_viewport_width(s.page, "[data-testid='purposes']")
    visible_in_viewport_width(s.page, "[data-testid='policy-sha']")
    rules = s.page.get_by_test_id("approval-rules")  # the default policy has one rule
    rules.scroll_into_view_if_needed()
    expect(rules).to_be_visible()
    within_screen(rules.bounding_box(), "approval rules")
    expect(rules.locator("td[data-label='Purposes']").first).to_be_visible()
    s.assert_clean()


def test_search_results_and_subject_pages_fit_a_phone(open_session: Any, live_server: LiveServer,
                                                      tmp_path: Path) -> None:
    probe = {"probe": ("a.jpg", encode(astronaut_face()), "image/jpeg")}
    with live_server.client("ivy") as c:
        r = c.post("/api/v1/searches", files=probe,
                   data={"case": "CASE-PHONE-2", "purpose": "criminal investigation",
                         "offence": "robbery", "legal_basis": "warrant 2 (test)"})
        assert r.status_code == 200, r.text
        sid = r.json()["search_id"]
    s = phone(open_session, "ivy")
    s.goto("/search", shot="mobile-search")
    no_sideways_scroll(s.page)
    nav_fits(s.page)
    visible_in_viewport_width(s.page, "#probe")
    s.goto(f"/searches/{sid}", shot="mobile-results")
    no_sideways_scroll(s.page)
    expect(s.page.locator("[data-testid='similarity']").first).to_be_visible()
    s.goto("/searches", shot="mobile-searches")
    no_sideways_scroll(s.page)
    assert s.goto("/ledger", shot="mobile-forbidden").status == 403  # the error page
    no_sideways_scroll(s.page)
    visible_in_viewport_width(s.page, "[data-testid='error']")
    s.assert_clean()
    admin = phone(open_session, "root")
    admin.goto("/subjects", shot="mobile-subjects")
    no_sideways_scroll(admin.page)
    nav_fits(admin.page)
    # The erasure's first step lists the matching faces (found cards were 360 px minimum).
    photo = tmp_path / "grace.jpg"
    photo.write_bytes(encode(grace_hopper()))
    erase = admin.page.locator("section#erase")
    erase.get_by_label("Photo of the person").set_input_files(str(photo))
    erase.get_by_label("Request reference").fill("DSR-PHONE-1")
    with admin.page.expect_navigation():
        erase.get_by_role("button", name="Find their faces").click()
    admin.page.wait_for_load_state("networkidle")
    found = admin.page.get_by_test_id("erase-found")
    expect(found).to_contain_text("matching face")
    admin.snap("mobile-subjects-erase-found")
    no_sideways_scroll(admin.page)
    within_screen(found.locator(".found-card").first.bounding_box(), "found face")
    admin.assert_clean()
