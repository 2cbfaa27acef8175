"""A refusal explains itself in plain words (who may do it, and who you are), on the web page and
in the API problem, whose stable ``code`` and ``permission`` stay for programs."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from faceledger.roles import ACTIONS, PERMISSIONS, Role, explain, who_may
from tests.live import LiveServer


def test_every_permission_has_plain_words() -> None:
    assert set(ACTIONS) == set(PERMISSIONS)
    assert who_may("ledger.read") == "auditors and admins"
    assert who_may("searches.approve") == "supervisors"
    assert who_may("collections.read") == "investigators, supervisors, auditors and admins"
    assert explain("ledger.read", "investigator", "ivy") == (
        "Only auditors and admins can read the ledger. "
        "You are signed in as ivy (investigator).")
    assert explain("users.manage", "auditor") == (
        "Only admins can manage users, passwords and API tokens. "
        "You are signed in as an auditor.")
    for permission in PERMISSIONS:
        text = explain(permission, Role.auditor.value, "audrey")
        assert ("." not in permission or permission not in text) and text.startswith("Only "), text


def test_web_403_speaks_plainly(open_session: Any) -> None:
    s = open_session("ivy")
    response = s.goto("/ledger", shot="forbidden-plain-ledger")
    assert response.status == 403
    expect(s.page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    error = s.page.get_by_test_id("error")
    expect(error).to_have_text("Only auditors and admins can read the ledger. "
                               "You are signed in as ivy (investigator).")
    main = s.page.locator("main").inner_text()
    assert "ledger.read" not in main and "requires" not in main and "may not" not in main
    expect(s.page.get_by_test_id("permission")).to_contain_text("ask an admin")
    # The way back leads to the investigator's own start page.
    expect(s.page.get_by_role("link", name="Back")).to_have_attribute("href", "/search")

    audrey = open_session("audrey")
    assert audrey.goto("/search", shot="forbidden-plain-search").status == 403
    expect(audrey.page.get_by_test_id("error")).to_have_text(
        "Only investigators and supervisors can run face searches. "
        "You are signed in as audrey (auditor).")
    s.assert_clean()
    audrey.assert_clean()


def test_api_403_keeps_its_code_and_adds_plain_words(live_server: LiveServer) -> None:
    with live_server.client("ivy") as c:
        r = c.get("/api/v1/ledger")
    assert r.status_code == 403
    body = r.json()
    assert body["code"] == "forbidden"
    assert body["permission"] == "ledger.read"
    assert body["allowed_roles"] == ["auditor", "admin"]
    assert body["message"] == ("Only auditors and admins can read the ledger. "
                               "You are signed in as ivy (investigator).")
    with live_server.client("audrey") as c:
        r = c.post("/api/v1/users", json={"name": "mallory", "role": "admin"})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert r.json()["message"].startswith("Only admins can manage users")
