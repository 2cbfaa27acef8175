"""Policy in the browser: authorisation fields, searches held for a supervisor's approval,
approve / refuse, outcomes, the auditor's oversight dashboard and who may open what."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.photos import astronaut_face, encode, grace_hopper

state: dict[str, Any] = {}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("probes")
    out = {"astronaut": d / "astronaut.jpg", "grace": d / "grace.jpg"}
    out["astronaut"].write_bytes(encode(astronaut_face()))
    out["grace"].write_bytes(encode(grace_hopper()))
    return out


def image_loaded(page: Page, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


def search(s: Any, photo: Path, case: str, purpose: str, *, urgent: bool = False,
           reference: str = "") -> int:
    """Run a search through the form; returns the id of the search page it lands on."""
    page = s.page
    s.goto("/search")
    with page.expect_response("**/api/v1/probe/faces"):
        page.locator("#probe").set_input_files(str(photo))
    expect(page.locator(".facebox.pick")).to_have_count(1)
    page.get_by_label("Case reference").fill(case)
    page.get_by_label("Purpose").select_option(purpose)
    page.get_by_label("Offence").select_option("terrorism")
    page.get_by_label("Legal basis").fill("s.21 test authority")
    if reference:
        page.get_by_label("Authorisation reference").fill(reference)
    if urgent:
        page.get_by_role("checkbox", name=re.compile("Urgent")).check()
    with page.expect_navigation():
        page.get_by_role("button", name="Run search").click()
    page.wait_for_load_state("networkidle")
    m = re.search(r"/searches/(\d+)$", page.url)
    assert m, page.locator("main").inner_text()
    return int(m.group(1))


def test_authorisation_fields_follow_the_purpose(open_session: Any,
                                                 photos: dict[str, Path]) -> None:
    s = open_session("ivy")
    page = s.page
    s.goto("/search")
    fields = page.locator("[data-auth-fields]")
    expect(fields).to_be_hidden()
    page.get_by_label("Purpose").select_option("intelligence")
    expect(fields).to_be_visible()
    expect(fields).to_contain_text("required for this purpose")
    expect(fields).to_contain_text("within 48 hours")
    ref = page.get_by_label("Authorisation reference")
    assert ref.evaluate("el => el.required")
    page.get_by_role("checkbox", name=re.compile("Urgent")).check()
    assert not ref.evaluate("el => el.required")  # urgent: the reference may follow
    s.snap("search-authorisation-fields")
    page.get_by_label("Purpose").select_option("missing person")
    expect(fields).to_be_hidden()
    # The server enforces it (the policy check), naming the rule; the values are kept.
    r = s.context.request.post(s.url("/search"), multipart={
        "csrf_token": s.csrf(), "case": "C-AUTH", "purpose": "intelligence",
        "offence": "terrorism", "legal_basis": "b", "mode": "investigate", "top_k": "5",
        "probe": {"name": "a.jpg", "mimeType": "image/jpeg",
                  "buffer": photos["astronaut"].read_bytes()}},
        headers={"accept": "text/html"})
    assert r.status == 403
    html = r.text()
    assert '<code data-testid="rule">authorisation.required</code>' in html
    assert "needs an authorisation reference" in html
    assert 'value="C-AUTH"' in html and "data-auth-fields hidden" not in html
    s.assert_clean()


def test_held_search_waits_for_approval_then_shows_candidates(
        open_session: Any, photos: dict[str, Path]) -> None:
    ivy = open_session("ivy")
    sid = search(ivy, photos["astronaut"], "CASE-INT-1", "intelligence", urgent=True)
    state["approved"] = sid
    page = ivy.page
    banner = page.get_by_test_id("search-state")
    expect(banner).to_have_attribute("data-state", "pending")
    expect(banner).to_contain_text("Waiting for a supervisor's approval")
    expect(banner).to_contain_text("intelligence-needs-approval")
    expect(page.locator(".cand-card")).to_have_count(0)
    expect(page.get_by_role("heading", name=re.compile("^Candidates"))).to_have_count(0)
    expect(page.locator("#outcome")).to_have_count(0)
    ivy.snap("search-pending")
    ivy.goto("/searches")
    expect(page.locator("tr", has_text="CASE-INT-1")).to_contain_text("awaiting approval")
    # A candidate's compare page is not reachable either.
    assert ivy.goto(f"/searches/{sid}/candidates/1").status == 404

    sue = open_session("sue")
    sue.goto("/approvals", shot="approvals")
    card = sue.page.locator(f".approval-card[data-search-id='{sid}']")
    expect(card.get_by_test_id("requester")).to_have_text("ivy")
    expect(card).to_contain_text("CASE-INT-1")
    expect(card).to_contain_text("intelligence")
    expect(card).to_contain_text("terrorism")
    expect(card).to_contain_text("urgent")
    expect(card.get_by_test_id("rules")).to_have_text("intelligence-needs-approval")
    assert image_loaded(sue.page, f".approval-card[data-search-id='{sid}'] img")
    # The reason is required: the browser will not submit without it.
    card.get_by_role("button", name="Approve and run").click()
    assert card.get_by_label(re.compile("^Reason")).evaluate("el => !el.validity.valid")
    card.get_by_label(re.compile("^Reason")).fill("proportionate; urgent threat to life")
    with sue.page.expect_navigation():
        card.get_by_role("button", name="Approve and run").click()
    sue.page.wait_for_load_state("networkidle")
    decided = sue.page.get_by_test_id("decided")
    expect(decided).to_have_attribute("data-state", "done")
    expect(decided).to_contain_text(re.compile(r"approved\. It ran: \d+ candidates? now "
                                               r"visible to ivy"))
    expect(sue.page.locator(f".approval-card[data-search-id='{sid}']")).to_have_count(0)
    sue.snap("approvals-approved")

    ivy.goto(f"/searches/{sid}")
    expect(page.get_by_test_id("search-state")).to_contain_text("Approved by sue")
    expect(page.get_by_test_id("search-state")).to_contain_text("urgent threat to life")
    first = page.locator(".cand-card[data-rank='1'] .source a")
    expect(first).to_have_attribute("href", "https://example.org/astro.jpg")
    assert image_loaded(page, ".cand-card[data-rank='1'] .cand-thumb img")
    # Urgent without a reference: the deadline, and a form to add it.
    auth = page.get_by_test_id("authorisation")
    expect(auth).to_contain_text("Add it by")
    expect(page.get_by_test_id("auth-deadline")).to_contain_text("UTC")
    ivy.snap("search-approved-urgent")
    auth.get_by_label("Authorisation reference").fill("AUTH-24/0091")
    with page.expect_navigation():
        auth.get_by_role("button", name="Add reference").click()
    expect(page.get_by_test_id("notice")).to_contain_text("authorisation reference was added")
    expect(page.get_by_test_id("authorisation")).to_have_count(0)
    expect(page.locator(".search-meta")).to_contain_text("AUTH-24/0091")
    ivy.assert_clean()
    sue.assert_clean()


def test_refused_search_never_shows_candidates(open_session: Any,
                                               photos: dict[str, Path]) -> None:
    ivy = open_session("ivy")
    sid = search(ivy, photos["grace"], "CASE-INT-2", "intelligence", reference="AUTH-7")
    state["refused"] = sid
    expect(ivy.page.get_by_test_id("search-state")).to_have_attribute("data-state", "pending")
    sue = open_session("sue")
    sue.goto("/approvals")
    card = sue.page.locator(f".approval-card[data-search-id='{sid}']")
    expect(card).to_contain_text("AUTH-7")
    card.get_by_label(re.compile("^Reason")).fill("not proportionate for this case")
    with sue.page.expect_navigation():
        card.get_by_role("button", name="Refuse").click()
    decided = sue.page.get_by_test_id("decided")
    expect(decided).to_have_attribute("data-state", "refused")
    expect(decided).to_contain_text("refused")
    expect(sue.page.get_by_test_id("pending-count")).to_have_text("0")
    sue.snap("approvals-refused")

    ivy.goto(f"/searches/{sid}", shot="search-refused")
    banner = ivy.page.get_by_test_id("search-state")
    expect(banner).to_have_attribute("data-state", "refused")
    expect(banner).to_contain_text("Refused by sue")
    expect(banner).to_contain_text("not proportionate for this case")
    expect(ivy.page.locator(".cand-card")).to_have_count(0)
    expect(ivy.page.get_by_test_id("probe-gone")).to_be_visible()
    expect(ivy.page.locator("#outcome")).to_have_count(0)  # no outcome for what never ran
    ivy.goto("/searches")
    expect(ivy.page.locator("tr", has_text="CASE-INT-2")).to_contain_text("refused")
    # Deciding again is refused (and the page says why).
    sue.goto("/approvals")
    r = sue.context.request.post(sue.url(f"/approvals/{sid}"), form={
        "csrf_token": sue.csrf(), "decision": "approve", "reason": "changed my mind"},
        headers={"accept": "text/html"})
    assert r.status == 409 and "not waiting for approval" in r.text()
    ivy.goto(f"/searches/{sid}")
    expect(ivy.page.locator(".cand-card")).to_have_count(0)
    ivy.assert_clean()
    sue.assert_clean()


def test_investigator_records_an_outcome(open_session: Any) -> None:
    sid = state["approved"]
    ivy = open_session("ivy")
    page = ivy.page
    ivy.goto(f"/searches/{sid}")
    expect(page.get_by_test_id("outcome")).to_contain_text("No outcome recorded yet")
    labels = page.get_by_label("Result").locator("option").all_inner_texts()
    assert labels == ["Choose…", "No match", "Lead pursued", "Identification confirmed",
                      "Arrest", "Charge", "No further action"]
    page.get_by_label("Result").select_option("arrest")
    page.get_by_label("Date", exact=True).fill("2024-06-03")
    page.get_by_label(re.compile("^Note")).fill("suspect arrested at the port")
    with page.expect_navigation():
        page.get_by_role("button", name="Record outcome").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/searches/{sid}?done=outcome#outcome")
    latest = page.get_by_test_id("outcome")
    expect(latest.locator("[data-result]")).to_have_attribute("data-result", "arrest")
    expect(latest).to_contain_text("Arrest")
    expect(latest).to_contain_text("on 2024-06-03, recorded by ivy")
    expect(page.locator("#outcome .note")).to_have_text("suspect arrested at the port")
    ivy.snap("search-outcome")
    # A later outcome becomes the latest; both stay in the history.
    page.get_by_label("Result").select_option("charge")
    with page.expect_navigation():
        page.get_by_role("button", name="Record outcome").click()
    expect(page.get_by_test_id("outcome").locator("[data-result]")).to_have_attribute(
        "data-result", "charge")
    expect(page.get_by_test_id("outcome-history").locator("tbody tr")).to_have_count(2)
    # A date in the future is refused, the form kept.
    r = ivy.context.request.post(ivy.url(f"/searches/{sid}/outcome"), form={
        "csrf_token": ivy.csrf(), "result": "charge", "on": "2999-01-01", "note": "n"},
        headers={"accept": "text/html"})
    assert r.status == 422 and "future" in r.text()
    # Another investigator may not record one on ivy's search.
    ian = open_session("ian")
    ian.goto(f"/searches/{sid}")
    r = ian.context.request.post(ian.url(f"/searches/{sid}/outcome"), form={
        "csrf_token": ian.csrf(), "result": "no_match"}, headers={"accept": "text/html"})
    assert r.status == 403
    ivy.assert_clean()


def test_ledger_shows_requests_decisions_and_outcomes(open_session: Any) -> None:
    s = open_session("audrey")
    s.goto("/ledger?case=CASE-INT-1", shot="ledger-approval")
    kinds = s.page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    # Looking at the held search's probe (sue, deciding) is ledgered too, as faces.opened.
    expect(s.page.locator("tr[data-kind='faces.opened']").filter(
        has_text="sue opened faces").filter(has_text="approval")).to_have_count(1)
    kinds = [k for k in kinds if k != "faces.opened"]
    assert kinds[:3] == ["search.requested", "search.approved", "search"], kinds
    assert kinds.count("outcome") == 2 and "search.authorised" in kinds
    expect(s.page.locator("tr[data-kind='search.requested']")).to_contain_text(
        "held for approval (intelligence-needs-approval)")
    expect(s.page.locator("tr[data-kind='search.approved']")).to_contain_text(
        "approved by sue")
    expect(s.page.locator("tr[data-kind='search.approved'] td:nth-child(4)")).to_have_text("sue")
    s.goto("/ledger?case=CASE-INT-2")
    kinds = s.page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert [k for k in kinds if k != "faces.opened"] == ["search.requested",
                                                         "search.approval_refused"]
    expect(s.page.locator("tr[data-kind='search.approval_refused']")).to_contain_text(
        "not proportionate")
    s.assert_clean()


def test_auditor_dashboard(open_session: Any) -> None:
    s = open_session("audrey")
    nav = s.page.get_by_role("navigation", name="Main")
    with s.page.expect_navigation():
        nav.get_by_role("link", name="Oversight").click()
    s.page.wait_for_load_state("networkidle")
    s.snap("oversight")
    report = s.page.get_by_test_id("report")
    answers = report.locator(".answers li")
    assert answers.count() >= 3
    expect(report.locator(".answers")).to_contain_text("ivy")
    plots = report.locator(".plot img")
    assert plots.count() >= 1
    assert image_loaded(s.page, ".oversight-report .plot img")
    src = plots.first.get_attribute("src") or ""
    assert src.startswith("data:image/png;base64,")
    users = report.locator(".users table")
    expect(users).to_contain_text("ivy")
    expect(users.locator("tbody tr", has_text="ivy")).to_have_count(1)
    expect(report.locator(".refusals")).to_contain_text("not proportionate")
    # Narrow to one user.
    s.page.get_by_label("User").select_option("sue")
    with s.page.expect_navigation():
        s.page.get_by_role("button", name="Show report").click()
    expect(s.page.get_by_test_id("report").locator(".users")).not_to_contain_text("ivy")
    s.goto("/oversight")
    href = s.page.locator("[data-format='csv']").get_attribute("href")
    assert href and href.startswith("/api/v1/reports/oversight?from=") and "format=csv" in href
    r = s.context.request.get(s.url(href))
    assert r.status == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text().splitlines()
    assert lines[0].startswith("search_id,") and any(",ivy," in line for line in lines[1:])
    html_href = s.page.locator("[data-format='html']").get_attribute("href")
    assert html_href
    r = s.context.request.get(s.url(html_href))
    assert r.status == 200 and "oversight-report" in r.text()
    s.assert_clean()


def test_role_checks(open_session: Any) -> None:
    forbidden = {"ivy": ["/approvals", "/oversight", "/subjects"],
                 "sue": ["/oversight", "/subjects"],
                 "audrey": ["/approvals", "/subjects", "/search"]}
    for user, paths in forbidden.items():
        s = open_session(user)
        for path in paths:
            response = s.goto(path)
            assert response.status == 403, (user, path)
            expect(s.page.get_by_test_id("error")).to_contain_text(f"You are signed in as {user}")
        s.goto("/policy")
        expect(s.page.get_by_test_id("purposes")).to_contain_text("intelligence")
    ivy = open_session("ivy")
    r = ivy.context.request.post(ivy.url(f"/approvals/{state['approved']}"), form={
        "csrf_token": ivy.csrf(), "decision": "approve", "reason": "me"},
        headers={"accept": "text/html"})
    assert r.status == 403


def test_policy_page(open_session: Any) -> None:
    s = open_session("ivy")
    with s.page.expect_navigation():
        s.page.locator("footer").get_by_role("link", name="Policy in force").click()
    s.page.wait_for_load_state("networkidle")
    s.snap("policy")
    expect(s.page.get_by_test_id("policy-sha")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(s.page.get_by_test_id("approval-rules")).to_contain_text(
        "intelligence-needs-approval")
    expect(s.page.get_by_test_id("offences")).to_contain_text("terrorism")
    s.goto("/model", shot="model-card-missing")
    expect(s.page.get_by_test_id("no-model-card")).to_contain_text("faceledger eval card")
    # Once a card is published into the data home, it is shown, framed and sandboxed.
    model_id = s.page.locator(".page-head .mono").first.inner_text()
    card = s.server.home / "model-cards" / model_id / "20240101T000000000000Z"
    card.mkdir(parents=True)
    (card / "model-card.html").write_text(
        "<!doctype html><html><head><style>h1{color:#123}</style></head><body>"
        "<h1>Model card: test</h1><table><tr><th>figure</th><td>99.38%</td></tr></table>"
        "</body></html>")
    s.goto("/model", shot="model-card")
    frame = s.page.frame_locator("[data-testid='model-card']")
    expect(frame.locator("h1")).to_have_text("Model card: test")
    expect(frame.locator("td")).to_have_text("99.38%")
    s.assert_clean()
