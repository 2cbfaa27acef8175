"""The search flow in a real browser: probe with two faces, pick one, results, compare,
two-person review, and the auditor's view of it all in the ledger."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import FloatRect, Page, expect

from tests.photos import astronaut_face, collage, encode

CASE = "CASE-WEB-7"
state: dict[str, Any] = {}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("probes")
    out = {"collage": d / "collage.jpg", "astronaut": d / "astronaut.jpg"}
    out["collage"].write_bytes(encode(collage()))
    out["astronaut"].write_bytes(encode(astronaut_face()))
    return out


def image_loaded(page: Page, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


def box_inside(page: Page, box_sel: str, img_sel: str) -> FloatRect:
    box = page.locator(box_sel).first.bounding_box()
    img = page.locator(img_sel).first.bounding_box()
    assert box and img, "box or image not rendered"
    assert box["width"] > 10 and box["height"] > 10, box
    assert img["x"] - 1 <= box["x"] and box["x"] + box["width"] <= img["x"] + img["width"] + 1
    assert img["y"] - 1 <= box["y"] and box["y"] + box["height"] <= img["y"] + img["height"] + 1
    return box


def fill_justification(page: Page, case: str = CASE) -> None:
    page.get_by_label("Case reference").fill(case)
    page.get_by_label("Purpose").select_option("criminal investigation")
    page.get_by_label("Offence").select_option("robbery")
    page.get_by_label("Legal basis").fill("warrant 24/1187 (test)")


def test_search_with_two_faces_picks_the_right_one(open_session: Any,
                                                   photos: dict[str, Path]) -> None:
    s = open_session("ivy")
    page = s.page
    s.goto("/search")
    with page.expect_response("**/api/v1/probe/faces") as detect:
        page.locator("#probe").set_input_files(str(photos["collage"]))
    assert detect.value.status == 200
    picks = page.locator(".facebox.pick")
    expect(picks).to_have_count(2)
    expect(page.locator("[data-face-status]")).to_contain_text("2 faces found")
    expect(page.locator("[data-face-status]")).to_contain_text("numbered 1-2 left to right")
    expect(page.locator("[data-face-help]")).to_contain_text("numbered 1, 2, … left to right")
    s.snap("search-two-faces")
    boxes = [picks.nth(i).bounding_box() for i in range(2)]
    assert all(b and b["width"] > 20 for b in boxes)
    right = max(range(2), key=lambda i: boxes[i]["x"])  # type: ignore[index]
    assert boxes[right]["x"] > boxes[1 - right]["x"] + boxes[1 - right]["width"]  # type: ignore[index]
    # Not chosen yet: the form refuses to submit.
    fill_justification(page)
    page.get_by_role("button", name="Run search").click()
    expect(page.locator("[data-face-status]")).to_contain_text("Click the face")
    assert page.url.endswith("/search")

    picks.nth(right).click()
    expect(picks.nth(right)).to_have_attribute("aria-pressed", "true")
    expect(picks.nth(1 - right)).to_have_attribute("aria-pressed", "false")
    # Faces are numbered 1, 2, ... left to right: the right-hand face is face 2.
    assert picks.nth(right).get_attribute("data-face") == "2"
    expect(picks.nth(right).locator(".facebox-label")).to_have_text("2")
    assert page.locator("[data-face-number]").input_value() == "2"
    s.snap("search-face-chosen")
    with page.expect_navigation():
        page.get_by_role("button", name="Run search").click()
    page.wait_for_load_state("networkidle")
    m = re.search(r"/searches/(\d+)$", page.url)
    assert m, page.locator("main").inner_text()
    state["search_id"] = int(m.group(1))
    s.snap("search-results")

    first = page.locator(".cand-card[data-rank='1']")
    link = first.locator(".source a")
    expect(link).to_have_attribute("href", "https://example.org/grace.jpg")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    expect(first.locator(".badge")).to_have_attribute("data-status", "unreviewed")
    assert image_loaded(page, ".cand-card[data-rank='1'] .cand-thumb img")
    expect(page.get_by_test_id("case")).to_have_text(CASE)
    assert image_loaded(page, ".probe-thumb img")
    box_inside(page, ".probe-thumb .facebox", ".probe-thumb img")
    # The probe box is around the right-hand face: it starts in the right half of the photo.
    probe_box = page.locator(".probe-thumb .facebox").bounding_box()
    probe_img = page.locator(".probe-thumb img").bounding_box()
    assert probe_box and probe_img and probe_box["x"] > probe_img["x"] + probe_img["width"] / 2
    sims = [float(t) for t in page.get_by_test_id("similarity").all_inner_texts()]
    assert sims == sorted(sims, reverse=True) and len(sims) == 2
    state["face_id"] = int(first.get_attribute("data-face-id") or 0)
    s.assert_clean()


def test_results_show_bands_on_a_visible_scale(open_session: Any) -> None:
    """Bands, their thresholds and FMRs, bars from 0.80 to 1.00 with threshold marks, and a
    rule where the likely matches end (issue 10, part 6)."""
    s = open_session("ivy")
    page = s.page
    s.goto(f"/searches/{state['search_id']}", shot="search-results-bands")
    legend = page.get_by_test_id("band-legend")
    expect(legend).to_contain_text("Bars run from 0.80 to 1.00")
    expect(legend.get_by_test_id("likely-threshold")).to_have_text("0.9613")
    expect(legend.get_by_test_id("possible-threshold")).to_have_text("0.9257")
    expect(legend).to_contain_text("false match rate 1e-06")
    expect(legend).to_contain_text("FMR 0.001")
    expect(page.get_by_test_id("probe-face")).to_contain_text("face 2 in the photo")
    cards = page.locator(".cand-card")
    expect(cards).to_have_count(2)
    assert [cards.nth(i).get_attribute("data-band") for i in range(2)] == ["likely", "unlikely"]
    expect(cards.nth(0).locator(".band-chip")).to_have_text("likely same person")
    expect(cards.nth(1).locator(".band-chip")).to_have_text("unlikely")
    # The rule between the bands sits between the two cards.
    rule = page.get_by_test_id("band-rule")
    expect(rule).to_have_count(1)
    expect(rule).to_contain_text("above this line")
    expect(rule).to_contain_text("0.9613")
    boxes = [cards.nth(0).bounding_box(), rule.bounding_box(), cards.nth(1).bounding_box()]
    assert all(boxes) and boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]  # type: ignore[index]
    # Bars: the scale is 0.80-1.00, so a fill is (score - 0.8) / 0.2 of the bar.
    for i in range(2):
        bar = cards.nth(i).locator(".scorebar-svg")
        whole, fill = bar.bounding_box(), bar.get_by_test_id("score-fill").bounding_box()
        marks = {m: bar.get_by_test_id(f"mark-{m}").bounding_box() for m in ("likely", "possible")}
        assert whole and fill and marks["likely"] and marks["possible"]
        score = float(cards.nth(i).locator(".scorebar").get_attribute("data-score") or 0)
        want = max(0.0, min(1.0, (score - 0.8) / 0.2))
        assert abs(fill["width"] / whole["width"] - want) < 0.03, (score, fill, whole)
        for m, thr in (("likely", 0.9613), ("possible", 0.9257)):
            centre = marks[m]["x"] + marks[m]["width"] / 2 - whole["x"]
            assert abs(centre / whole["width"] - (thr - 0.8) / 0.2) < 0.02, m
    s.assert_clean()


def test_one_face_is_preselected(open_session: Any, photos: dict[str, Path]) -> None:
    s = open_session("ian")
    s.goto("/search")
    with s.page.expect_response("**/api/v1/probe/faces"):
        s.page.locator("#probe").set_input_files(str(photos["astronaut"]))
    expect(s.page.locator(".facebox.pick")).to_have_count(1)
    expect(s.page.locator(".facebox.pick")).to_have_attribute("aria-pressed", "true")
    assert s.page.locator("[data-face-number]").input_value() == "1"
    s.snap("search-one-face")
    fill_justification(s.page, "CASE-WEB-8")
    with s.page.expect_navigation():
        s.page.get_by_role("button", name="Run search").click()
    first = s.page.locator(".cand-card[data-rank='1'] .source a")
    expect(first).to_have_attribute("href", "https://example.org/astro.jpg")
    # The probe is the gallery's own file (same bytes): marked, with its title and date.
    card = s.page.locator(".cand-card[data-rank='1']")
    expect(card.get_by_test_id("probe-image")).to_have_text("the probe image itself")
    expect(card).to_have_attribute("data-band", "likely")
    expect(card.get_by_test_id("title")).to_contain_text("Astronaut")
    expect(card.get_by_test_id("title")).to_contain_text("captured 2023-04-01")
    expect(s.page.locator(".cand-card[data-rank='2']").get_by_test_id("probe-image")
           ).to_have_count(0)
    s.snap("search-results-probe-itself")
    s.assert_clean()


def test_search_form_errors_rerender(open_session: Any, photos: dict[str, Path]) -> None:
    s = open_session("ivy")
    s.goto("/search")
    token = s.csrf()
    probe = {"name": "collage.jpg", "mimeType": "image/jpeg",
             "buffer": photos["collage"].read_bytes()}
    base = {"csrf_token": token, "purpose": "missing person", "offence": "other",
            "legal_basis": "test", "top_k": "5", "mode": "investigate"}
    # No face chosen on a two-face photo: the form comes back with the faces listed.
    r = s.context.request.post(s.url("/search"), multipart={**base, "case": "C-1", "probe": probe},
                               headers={"accept": "text/html"})
    assert r.status == 409
    assert "holds 2 faces" in r.text() and "Face 1 at" in r.text() and "Face 2 at" in r.text()
    # Missing case reference: 422, the other values kept.
    r = s.context.request.post(s.url("/search"), multipart={**base, "case": " ", "face": "2",
                                                            "probe": probe})
    assert r.status == 422 and "missing: case" in r.text()
    # Face numbers run from 1: face 3 of a two-face photo is out of range, face 0 too.
    for bad in ("3", "0"):
        r = s.context.request.post(s.url("/search"), multipart={**base, "case": "C-1",
                                                                "face": bad, "probe": probe})
        assert r.status == 422 and "numbered 1-2 left to right" in r.text(), bad
    assert 'value="test"' in r.text() and "<option value=\"missing person\" selected>" in r.text()
    # No photo at all.
    r = s.context.request.post(s.url("/search"), multipart={**base, "case": "C-1"})
    assert r.status == 422 and "choose a probe photo" in r.text()
    # Shown in the browser too: a photo without faces.
    blank = photos["collage"].parent / "blank.png"
    from tests.photos import noise_image

    blank.write_bytes(noise_image())
    s.page.locator("#probe").set_input_files(str(blank))
    expect(s.page.locator("[data-face-status]")).to_contain_text("no face")
    s.snap("search-no-face")


def test_compare_and_two_person_review(open_session: Any) -> None:
    sid, fid = state["search_id"], state["face_id"]
    ivy = open_session("ivy")
    page = ivy.page
    ivy.goto(f"/searches/{sid}")
    with page.expect_navigation():
        page.locator(".cand-card[data-rank='1']").get_by_role(
            "link", name="Compare & review").click()
    assert page.url == ivy.url(f"/searches/{sid}/candidates/{fid}")
    page.wait_for_load_state("networkidle")
    ivy.snap("compare")
    panes = page.locator(".compare-img")
    expect(panes).to_have_count(2)
    for i in range(2):
        assert image_loaded(page, f".compare-pane:nth-child({i + 1}) img")
        box_inside(page, f".compare-pane:nth-child({i + 1}) .facebox",
                   f".compare-pane:nth-child({i + 1}) img")
    cand_src = page.locator(".compare-pane:nth-child(2) img").get_attribute("src")
    assert cand_src and re.fullmatch(rf"/api/v1/images/\d+/file\?web=1&search={sid}", cand_src)
    assert image_loaded(page, ".prov-thumb")
    expect(page.locator(".kv .source a")).to_have_attribute("href", "https://example.org/grace.jpg")
    expect(page.locator(".review-status .badge")).to_have_attribute("data-status", "unreviewed")

    def decide(s: Any, decision: str, note: str = "") -> None:
        s.page.get_by_role("radio", name=re.compile(decision)).check()
        s.page.get_by_label("Note").fill(note)
        with s.page.expect_navigation():
            s.page.get_by_role("button", name="Record decision").click()
        s.page.wait_for_load_state("networkidle")

    decide(ivy, "Confirm", "same scar on the chin")
    badge = page.locator(".review-status .badge")
    expect(badge).to_have_attribute("data-status", "confirmed_once")
    expect(badge).to_contain_text("needs second")
    expect(page.get_by_test_id("confirmed-by")).to_have_text("ivy")
    expect(page.get_by_role("status").first).to_contain_text("recorded in the ledger")
    ivy.snap("compare-confirmed-once")
    decide(ivy, "Confirm", "still sure")  # the same person again does not count twice
    expect(badge).to_have_attribute("data-status", "confirmed_once")
    expect(page.get_by_test_id("confirmed-by")).to_have_text("ivy")

    ian = open_session("ian")
    ian.goto(f"/searches/{sid}/candidates/{fid}")
    expect(ian.page.locator(".review-status .badge")).to_have_attribute("data-status",
                                                                          "confirmed_once")
    decide(ian, "Confirm")
    expect(ian.page.locator(".review-status .badge")).to_have_attribute("data-status", "confirmed")
    expect(ian.page.get_by_test_id("confirmed-by")).to_have_text("ivy, ian")
    ian.snap("compare-confirmed")
    ivy.goto(f"/searches/{sid}")
    expect(page.locator(".cand-card[data-rank='1'] .badge")).to_have_attribute("data-status",
                                                                               "confirmed")
    ivy.snap("search-results-reviewed")
    ivy.assert_clean()
    ian.assert_clean()


def test_searches_lists(open_session: Any) -> None:
    ivy = open_session("ivy")
    ivy.goto("/searches", shot="searches-ivy")
    expect(ivy.page.get_by_role("link", name=CASE)).to_be_visible()
    expect(ivy.page.get_by_role("link", name="CASE-WEB-8")).to_have_count(0)  # ian's
    sue = open_session("sue")
    sue.goto("/searches?everyone=true", shot="searches-everyone")
    expect(sue.page.get_by_role("link", name=CASE)).to_be_visible()
    expect(sue.page.get_by_role("link", name="CASE-WEB-8")).to_be_visible()


def test_auditor_sees_search_and_reviews_in_ledger(open_session: Any) -> None:
    s = open_session("audrey")
    assert s.page.url == s.url("/ledger")
    expect(s.page.get_by_test_id("chain")).to_contain_text("Chain verified")
    s.snap("ledger")
    rows = s.page.locator(f"tr[data-kind='search']:has-text('{CASE}')")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ivy")
    s.page.get_by_label("Case").fill(CASE)
    with s.page.expect_navigation():
        s.page.get_by_role("button", name="Filter").click()
    s.snap("ledger-filtered")
    kinds = s.page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    actors = s.page.locator("tbody tr td:nth-child(4)").all_inner_texts()
    entries = list(zip(kinds, actors, strict=True))
    # ian opening ivy's search (results, compare view) is ledgered as search.viewed.
    assert {a for k, a in entries if k == "search.viewed"} == {"ian"}
    # Opening faces is ledgered once per person and search (not per thumbnail): ivy (results,
    # compare) and ian (compare, as second reviewer).
    assert sorted(a for k, a in entries if k == "faces.opened") == ["ian", "ivy"]
    entries = [e for e in entries if e[0] not in ("search.viewed", "faces.opened")]
    # ivy's repeated confirmation recorded nothing: one review entry per person.
    assert [k for k, _ in entries] == ["search", "review", "review"]
    assert [a for _, a in entries] == ["ivy", "ivy", "ian"]
    expect(s.page.locator("tr[data-kind='review']").first).to_contain_text("same scar")
    s.page.locator("tr[data-kind='search'] summary").click()
    expect(s.page.locator("tr[data-kind='search'] pre.payload")).to_contain_text(
        "warrant 24/1187 (test)")
    # Filter by kind and user.
    s.goto("/ledger?kind=signin&user=ian")
    assert set(s.page.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)")) == {"signin"}
    s.assert_clean()
