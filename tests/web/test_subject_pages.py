"""Subject rights in the browser: opt-out withholds a person from later searches, subject access
lists the searches that found them, and erasure (find, tick, confirm with the count) removes
their images. A photo with several faces: click the person's face, as on the search page."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.live import LiveServer
from tests.photos import astronaut_face, collage, encode, grace_hopper, variants

state: dict[str, Any] = {}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("subjects")
    out = {"grace": d / "grace.jpg", "collage": d / "collage.jpg", "grace2": d / "grace2.jpg"}
    out["grace"].write_bytes(encode(grace_hopper()))
    out["grace2"].write_bytes(variants(grace_hopper())["darker"])
    out["collage"].write_bytes(encode(collage()))
    return out


def image_loaded(page: Page, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


def search_sources(s: Any, photo: Path, case: str) -> tuple[int, list[str]]:
    """Search through the form; returns the search id and its candidates' source URLs."""
    page = s.page
    s.goto("/search")
    with page.expect_response("**/api/v1/probe/faces"):
        page.locator("#probe").set_input_files(str(photo))
    expect(page.locator(".facebox.pick")).to_have_count(1)
    page.get_by_label("Case reference").fill(case)
    page.get_by_label("Purpose").select_option("missing person")
    page.get_by_label("Offence").select_option("other")
    page.get_by_label("Legal basis").fill("missing person report 24/77")
    with page.expect_navigation():
        page.get_by_role("button", name="Run search").click()
    page.wait_for_load_state("networkidle")
    m = re.search(r"/searches/(\d+)$", page.url)
    assert m, page.locator("main").inner_text()
    return int(m.group(1)), page.locator(".cand-card .source a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")


def section(s: Any, name: str) -> Any:
    return s.page.locator(f"section#{name}")


def choose_photo(s: Any, form: Any, photo: Path, faces: int) -> Any:
    """Choose the photo in a form's face picker; wait for its faces to be drawn."""
    with s.page.expect_response(lambda r: r.url.endswith("/subjects/faces")) as info:
        form.get_by_label("Photo of the person").set_input_files(str(photo))
    assert info.value.status == 200
    picks = form.locator(".facebox.pick")
    expect(picks).to_have_count(faces)
    return picks


def submit(s: Any, form: Any, button: str) -> None:
    with s.page.expect_navigation():
        form.get_by_role("button", name=button).click()
    s.page.wait_for_load_state("networkidle")


def ledger_kinds(server: LiveServer, kind: str) -> list[str]:
    with server.client("audrey") as c:
        got = c.get("/api/v1/ledger", params={"kind": kind}).json()
    return [e["kind"] for e in (got["entries"] if isinstance(got, dict) else got)]


def test_optout_withholds_the_person_from_later_searches(open_session: Any,
                                                         photos: dict[str, Path],
                                                         live_server: LiveServer) -> None:
    ivy = open_session("ivy")
    sid, sources = search_sources(ivy, photos["grace"], "CASE-SUBJ-1")
    assert sources[0] == "https://example.org/grace.jpg"
    state["before"] = sid

    root = open_session("root")
    root.goto("/subjects", shot="subjects")
    optout = section(root, "optout")
    pick = choose_photo(root, optout, photos["grace"], 1)
    expect(pick).to_have_attribute("aria-pressed", "true")  # the only face is chosen
    assert optout.locator("[data-face-number]").input_value() == "1"
    optout.get_by_label("More photos of the person (optional, one face each)").set_input_files(
        str(photos["grace2"]))
    optout.get_by_label("Request reference").fill("DSR-2024-001")
    submit(root, optout, "Show what it withholds")
    # Issue 12, point 13: before anything is recorded, the faces it will withhold, as thumbnails.
    preview = section(root, "optout").get_by_test_id("optout-preview")
    expect(preview).to_contain_text("From 2 photos, this opt-out will withhold 1 gallery face")
    expect(preview.locator(".found-card img.found-thumb")).to_have_count(1)
    assert image_loaded(root.page, "#optout .found-card img.found-thumb")
    assert ledger_kinds(live_server, "subject.optout") == ["subject.optout_preview"]  # not yet made
    root.snap("subjects-optout-preview")
    submit(root, preview, "Confirm the opt-out")
    expect(section(root, "optout").get_by_test_id("notice")).to_contain_text(
        "added to the opt-out list")
    root.snap("subjects-optout-done")

    sid2, sources = search_sources(ivy, photos["grace"], "CASE-SUBJ-2")
    ivy.snap("search-after-optout")
    assert "https://example.org/grace.jpg" not in sources, sources
    state["after"] = sid2
    ivy.assert_clean()
    root.assert_clean()


def test_a_photo_with_two_faces_lets_you_click_the_face(open_session: Any,
                                                        photos: dict[str, Path]) -> None:
    root = open_session("root")
    page = root.page
    root.goto("/subjects")
    access = section(root, "access")
    picks = choose_photo(root, access, photos["collage"], 2)
    expect(picks.nth(0)).to_have_attribute("data-face", "1")
    expect(picks.nth(1)).to_have_attribute("data-face", "2")
    assert image_loaded(page, "#access [data-probe-img]")
    # Submitting before a face is chosen stays on the page and says so.
    access.get_by_role("button", name="Find searches").click()
    expect(access.locator("[data-face-status]")).to_contain_text("Click the face")
    assert page.url == root.url("/subjects")
    # Face 2 (right) is Grace Hopper, the probe of ivy's first search.
    picks.nth(1).click()
    expect(picks.nth(1)).to_have_attribute("aria-pressed", "true")
    assert access.locator("[data-face-number]").input_value() == "2"
    root.snap("subjects-pick-face")
    submit(root, access, "Find searches")
    row = section(root, "access").get_by_test_id("access-results").locator(
        f"tr[data-search-id='{state['before']}']")
    expect(row).to_contain_text("the probe")
    # Face 1 (left) is the astronaut: only a result of that search, never its probe.
    access = section(root, "access")
    choose_photo(root, access, photos["collage"], 2).nth(0).click()
    assert access.locator("[data-face-number]").input_value() == "1"
    submit(root, access, "Find searches")
    row = section(root, "access").get_by_test_id("access-results").locator(
        f"tr[data-search-id='{state['before']}']")
    expect(row).to_contain_text("a result")
    expect(row).not_to_contain_text("the probe")
    root.assert_clean()


def test_without_the_picker_the_server_asks_which_face(open_session: Any,
                                                       photos: dict[str, Path]) -> None:
    root = open_session("root")
    root.goto("/subjects")
    res = root.page.request.post(root.url("/subjects/optout"), multipart={
        "csrf_token": root.csrf(), "reference": "DSR-2024-002",
        "photo": {"name": "collage.jpg", "mimeType": "image/jpeg",
                  "buffer": photos["collage"].read_bytes()}})
    assert res.status == 409
    html = res.text()
    assert "the photo holds 2 faces and none was chosen" in html
    assert html.count("<li>Face ") == 2 and "Face 2 at (" in html
    assert 'value="DSR-2024-002"' in html  # the form keeps the reference


def test_optout_further_photos_and_a_bad_confirmation_are_refused(
        open_session: Any, photos: dict[str, Path], live_server: LiveServer) -> None:
    """A further photo must hold one face (it has no picker); a confirmation whose sealed
    preview was altered records nothing."""
    root = open_session("root")
    root.goto("/subjects")
    before = ledger_kinds(live_server, "subject.optout")
    res = root.page.request.post(root.url("/subjects/optout"), multipart={
        "csrf_token": root.csrf(), "reference": "DSR-2024-009",
        "photo": {"name": "g.jpg", "mimeType": "image/jpeg",
                  "buffer": photos["grace2"].read_bytes()},
        "more_photos": {"name": "c.jpg", "mimeType": "image/jpeg",
                        "buffer": photos["collage"].read_bytes()}})
    assert res.status == 409
    assert "photo 2 holds 2 faces" in res.text() and "show the person alone" in res.text()
    res = root.page.request.post(root.url("/subjects/optout/confirm"), form={
        "csrf_token": root.csrf(), "token": "bm90IGEgdG9rZW4gYXQgYWxsIGJ1dCBsb25nIGVub3VnaA=="})
    assert res.status == 422 and "start again from the photos" in res.text()
    assert ledger_kinds(live_server, "subject.optout") == before  # nothing recorded


def test_subject_access_lists_the_searches(open_session: Any, photos: dict[str, Path]) -> None:
    root = open_session("root")
    root.goto("/subjects")
    access = section(root, "access")
    choose_photo(root, access, photos["grace"], 1)
    submit(root, access, "Find searches")
    root.snap("subjects-access")
    table = section(root, "access").get_by_test_id("access-results")
    first = table.locator(f"tr[data-search-id='{state['before']}']")
    expect(first).to_contain_text("missing person")
    expect(first).to_contain_text("the probe")
    expect(first).to_contain_text("a result")
    expect(first).to_contain_text("(no unit recorded)")
    second = table.locator(f"tr[data-search-id='{state['after']}']")
    expect(second).to_contain_text("the probe")
    expect(second).not_to_contain_text("a result")  # withheld after the opt-out
    root.assert_clean()


def add_to_gallery(server: LiveServer, name: str, data: bytes) -> None:
    with server.client("root") as c:
        job = c.post("/api/v1/ingest", data={"collection": "gallery"},
                     files={"files": (name, data, "image/jpeg")}).json()
        for _ in range(240):
            status = c.get(job["status_url"]).json()
            if status["status"] != "running":
                break
            time.sleep(0.5)
    assert status["status"] == "done" and status["added"] == 1, status


def test_erasure_ticks_nothing_and_names_the_count(open_session: Any, live_server: LiveServer,
                                                   photos: dict[str, Path]) -> None:
    add_to_gallery(live_server, "astronaut-brighter.jpg",
                   variants(astronaut_face())["brighter"])
    root = open_session("root")
    page = root.page
    dialogs: list[str] = []
    answers = ["dismiss", "accept"]

    def on_dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss() if answers.pop(0) == "dismiss" else d.accept()

    page.on("dialog", on_dialog)

    def find(reference: str) -> Any:
        erase = section(root, "erase")
        choose_photo(root, erase, photos["collage"], 2).nth(0).click()  # the astronaut
        erase.get_by_label("Request reference").fill(reference)
        submit(root, erase, "Find their faces")
        return section(root, "erase").get_by_test_id("erase-found")

    root.goto("/subjects")
    found = find("DSR-2024-003")
    expect(found).to_contain_text("2 matching faces found")
    boxes = found.locator("input[type='checkbox'][name='face_id']")
    expect(boxes).to_have_count(2)
    for i in range(2):
        expect(boxes.nth(i)).not_to_be_checked()  # nothing is pre-ticked
    assert image_loaded(page, "#erase img.found-thumb")
    expect(found).to_contain_text("astronaut")
    expect(found.locator("input[type='hidden'][name='reference']")).to_have_value(
        "DSR-2024-003")
    assert found.locator("input[type='file']").count() == 0  # the photo is not carried over
    root.snap("subjects-erase-found")
    # Nothing ticked: no question is asked and the server refuses, saying why.
    with page.expect_response(lambda r: r.url.endswith("/subjects/erase")) as info:
        found.get_by_role("button", name="Erase the ticked faces' images").click()
    assert info.value.status == 422
    page.wait_for_load_state("networkidle")
    expect(section(root, "erase").get_by_test_id("error")).to_contain_text(
        "no face was chosen")
    assert dialogs == []
    root.snap("subjects-erase-none-ticked")
    # Both ticked: the question names the count; "Cancel" erases nothing.
    found = find("DSR-2024-003")
    boxes = found.locator("input[type='checkbox'][name='face_id']")
    ids = [boxes.nth(i).get_attribute("value") for i in range(2)]
    boxes.nth(0).check()
    boxes.nth(1).check()
    button = found.get_by_role("button", name="Erase the ticked faces' images")
    button.click()
    assert dialogs == ["Erase 2 faces and their images? This cannot be undone."]
    assert page.url.endswith("/subjects/erase/find")
    expect(button).to_be_enabled()
    # One ticked: the question says one; accepted, only that face's image is erased.
    boxes.nth(1).uncheck()
    submit(root, found, "Erase the ticked faces' images")
    assert dialogs[1] == "Erase 1 face and its image? This cannot be undone."
    expect(section(root, "erase").get_by_test_id("notice")).to_contain_text(
        "Erased 1 image holding 1 face")
    root.snap("subjects-erased")
    # The unticked face is still there; the ticked one is gone.
    found = find("DSR-2024-004")
    expect(found).to_contain_text("1 matching face found")
    expect(found.locator("input[name='face_id']")).to_have_attribute("value", ids[1] or "")
    assert ledger_kinds(live_server, "subject.erased") == ["subject.erased"]
    root.assert_clean()
