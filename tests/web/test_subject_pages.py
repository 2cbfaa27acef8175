"""Subject rights in the browser: opt-out withholds a person from later searches, subject access
lists the searches that found them, and erasure (find, then confirm) removes their images."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.photos import collage, encode, grace_hopper

state: dict[str, Any] = {}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("subjects")
    out = {"grace": d / "grace.jpg", "collage": d / "collage.jpg"}
    out["grace"].write_bytes(encode(grace_hopper()))
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


def submit(s: Any, form: Any, button: str) -> None:
    with s.page.expect_navigation():
        form.get_by_role("button", name=button).click()
    s.page.wait_for_load_state("networkidle")


def test_optout_withholds_the_person_from_later_searches(open_session: Any,
                                                         photos: dict[str, Path]) -> None:
    ivy = open_session("ivy")
    sid, sources = search_sources(ivy, photos["grace"], "CASE-SUBJ-1")
    assert sources[0] == "https://example.org/grace.jpg"
    state["before"] = sid

    root = open_session("root")
    root.goto("/subjects", shot="subjects")
    optout = section(root, "optout")
    optout.get_by_label("Photo of the person").set_input_files(str(photos["grace"]))
    optout.get_by_label("Request reference").fill("DSR-2024-001")
    submit(root, optout, "Opt out")
    expect(section(root, "optout").get_by_test_id("notice")).to_contain_text(
        "added to the opt-out list")
    root.snap("subjects-optout-done")

    sid2, sources = search_sources(ivy, photos["grace"], "CASE-SUBJ-2")
    ivy.snap("search-after-optout")
    assert "https://example.org/grace.jpg" not in sources, sources
    state["after"] = sid2
    ivy.assert_clean()
    root.assert_clean()


def test_a_photo_with_two_faces_asks_which(open_session: Any, photos: dict[str, Path]) -> None:
    root = open_session("root")
    root.goto("/subjects")
    optout = section(root, "optout")
    optout.get_by_label("Photo of the person").set_input_files(str(photos["collage"]))
    optout.get_by_label("Request reference").fill("DSR-2024-002")
    with root.page.expect_response(lambda r: r.url.endswith("/subjects/optout")) as info:
        optout.get_by_role("button", name="Opt out").click()
    assert info.value.status == 409
    root.page.wait_for_load_state("networkidle")
    error = section(root, "optout").get_by_test_id("error")
    expect(error).to_contain_text("the photo holds 2 faces")
    expect(error.locator(".face-list li")).to_have_count(2)
    expect(error.locator(".facebox")).to_have_count(2)
    assert image_loaded(root.page, "#optout .face-choice-photo img")
    expect(section(root, "optout").get_by_label("Request reference")).to_have_value(
        "DSR-2024-002")
    root.snap("subjects-face-choice")
    root.assert_clean()


def test_subject_access_lists_the_searches(open_session: Any, photos: dict[str, Path]) -> None:
    root = open_session("root")
    root.goto("/subjects")
    access = section(root, "access")
    access.get_by_label("Photo of the person").set_input_files(str(photos["grace"]))
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


def test_erasure_in_two_steps(open_session: Any, photos: dict[str, Path]) -> None:
    root = open_session("root")
    page = root.page
    page.on("dialog", lambda d: d.accept())
    root.goto("/subjects")
    erase = section(root, "erase")
    erase.get_by_label("Photo of the person").set_input_files(str(photos["grace"]))
    erase.get_by_label("Request reference").fill("DSR-2024-003")
    submit(root, erase, "Find their faces")
    found = section(root, "erase").get_by_test_id("erase-found")
    expect(found).to_contain_text("1 matching face found")
    boxes = found.locator("input[type='checkbox'][name='face_id']")
    expect(boxes).to_have_count(1)
    expect(boxes.first).to_be_checked()
    thumb = found.locator("img.found-thumb")
    assert (thumb.get_attribute("src") or "").startswith("data:image/jpeg;base64,")
    assert image_loaded(page, "#erase img.found-thumb")
    expect(found).to_contain_text("grace.jpg")
    expect(found.locator("input[type='hidden'][name='reference']")).to_have_value(
        "DSR-2024-003")
    assert found.locator("input[type='file']").count() == 0  # the photo is not carried over
    root.snap("subjects-erase-found")
    submit(root, found, "Erase the ticked faces' images")
    expect(section(root, "erase").get_by_test_id("notice")).to_contain_text(
        "Erased 1 image holding 1 face")
    root.snap("subjects-erased")
    # Gone: a second look finds nothing, and the collection shrank.
    erase = section(root, "erase")
    erase.get_by_label("Photo of the person").set_input_files(str(photos["grace"]))
    erase.get_by_label("Request reference").fill("DSR-2024-003")
    submit(root, erase, "Find their faces")
    expect(section(root, "erase").get_by_test_id("erase-found")).to_contain_text(
        "No face in the gallery matches")
    root.goto("/admin")
    expect(page.locator("#collections + .table-wrap tr", has_text="gallery")).to_contain_text(
        "1")
    root.goto("/ledger?kind=subject")
    kinds = page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["subject.optout", "subject.access", "subject.erased"], kinds
    root.assert_clean()
