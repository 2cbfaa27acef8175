"""Administration and ingest in a real browser: users, tokens, collections, uploads, jobs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from playwright.sync_api import expect

from tests.photos import astronaut_face, encode, grace_hopper


def test_ingest_upload_reaches_done(open_session: Any, tmp_path: Path) -> None:
    s = open_session("root")
    photo = tmp_path / "hopper-mirror.jpg"
    photo.write_bytes(encode(grace_hopper().transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a photo")
    hidden = tmp_path / ".hidden.jpg"
    hidden.write_bytes(encode(astronaut_face()))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,source_url,page_url\n"
                        "hopper-mirror.jpg,https://example.org/mirror.jpg,https://example.org/m\n")
    s.goto("/ingest", shot="ingest")
    s.page.get_by_label("Collection", exact=True).select_option("gallery")
    s.page.get_by_label("Photos or zip archives").set_input_files(
        [str(photo), str(broken), str(hidden)])
    s.page.get_by_label("Provenance manifest").set_input_files(str(manifest))
    with s.page.expect_navigation():
        s.page.get_by_role("button", name="Upload and ingest").click()
    assert re.search(r"/ingest/jobs/\d+$", s.page.url), s.page.url
    s.snap("ingest-job-started")
    badge = s.page.locator("[data-job-status]")
    expect(badge).to_have_attribute("data-job-status", "done", timeout=90_000)
    s.page.wait_for_load_state("networkidle")
    s.snap("ingest-job-done")
    total = s.page.locator("[data-field='total']").inner_text()
    assert s.page.locator("[data-field='processed']").inner_text() == total == "2"  # not .hidden
    assert s.page.locator("[data-field='added']").inner_text() == "1"
    assert s.page.locator("[data-field='faces']").inner_text() == "1"
    rejections = s.page.locator("[data-field='rejections'] tr")
    expect(rejections).to_have_count(1)
    expect(rejections.first).to_contain_text("broken.jpg")
    # The job is listed on the ingest page and the collection grew.
    s.goto("/ingest")
    expect(s.page.locator("table").last).to_contain_text("done")
    expect(s.page.locator("tr", has_text="gallery").first).to_contain_text("3")
    s.assert_clean()


def test_ingest_errors_are_shown(open_session: Any, tmp_path: Path) -> None:
    s = open_session("root")
    s.goto("/ingest")
    photo = tmp_path / "a.jpg"
    photo.write_bytes(encode(astronaut_face()))
    r = s.context.request.post(s.url("/ingest"), multipart={
        "csrf_token": s.csrf(), "collection": "no-such-collection",
        "files": {"name": "a.jpg", "mimeType": "image/jpeg", "buffer": photo.read_bytes()}})
    assert r.status == 404 and "unknown collection" in r.text()
    left = [p for p in (s.server.home / "uploads").rglob("*") if p.is_file()]
    assert not left, f"a refused upload was left behind: {left}"


def test_admin_manages_users(open_session: Any) -> None:
    root = open_session("root")
    page = root.page
    page.on("dialog", lambda d: d.accept())
    root.goto("/admin", shot="admin")
    page.get_by_label("Name", exact=True).first.fill("nina")
    page.get_by_label("Role").select_option("investigator")
    page.get_by_label(re.compile("^Password")).fill("short")
    # The browser enforces minlength; the server does too.
    page.eval_on_selector("#u-password", "el => el.removeAttribute('minlength')")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_test_id("error")).to_contain_text("at least 10")
    page.get_by_label(re.compile("^Password")).fill("nina-password-1")
    page.eval_on_selector("#u-name", "el => el.value = 'nina'")
    page.get_by_role("button", name="Add user").click()
    token_box = page.get_by_test_id("new-token")
    expect(token_box).to_contain_text("API token for nina")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("flk_")
    root.snap("admin-user-added")
    me = httpx.get(root.url("/api/v1/me"), headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["user"] == "nina"
    root.goto("/admin")
    assert token not in page.content()  # shown once only
    expect(page.locator("tr[data-user='nina']")).to_contain_text("investigator")

    nina = open_session("nina", "nina-password-1")
    assert nina.page.url == nina.url("/search")

    page.locator("tr[data-user='nina']").get_by_role("button", name="Rotate token").click()
    expect(page.get_by_test_id("new-token")).to_contain_text("rotated")
    new_token = page.locator("#new-token").inner_text().strip()
    assert new_token.startswith("flk_") and new_token != token
    assert httpx.get(root.url("/api/v1/me"),
                     headers={"authorization": f"Bearer {token}"}).status_code == 401

    page.locator("tr[data-user='nina']").get_by_role("button", name="Disable").click()
    expect(page.locator("tr[data-user='nina']")).to_contain_text("disabled")
    root.snap("admin-user-disabled")
    nina.goto("/search")
    assert "/login" in nina.page.url  # her web session ended with the account
    root.assert_clean()


def test_admin_adds_collection(open_session: Any) -> None:
    s = open_session("root")
    s.goto("/admin")
    form = s.page.locator("form[action='/admin/collections']")
    form.get_by_label("Name").fill("archive-2019")
    form.get_by_label("Legal basis").fill("retention order 19/44")
    form.get_by_label("Description").fill("custody photos, 2019")
    with s.page.expect_navigation():
        form.get_by_role("button", name="Add collection").click()
    expect(s.page.locator("#collections + .table-wrap")).to_contain_text("archive-2019")
    expect(s.page.get_by_role("status").first).to_contain_text("Collection added")
    form = s.page.locator("form[action='/admin/collections']")
    form.get_by_label("Name").fill("archive-2019")
    form.get_by_label("Legal basis").fill("again")
    form.get_by_role("button", name="Add collection").click()
    expect(s.page.get_by_test_id("error")).to_contain_text("already exists")
    s.snap("admin-collection-conflict")
    s.assert_clean()


def _ledger(server: Any, kind: str) -> list[dict[str, Any]]:
    with server.client("audrey") as c:
        body = c.get("/api/v1/ledger", params={"kind": kind}).json()
    return list(body["entries"] if isinstance(body, dict) else body)


def test_admin_sets_and_resets_a_web_password(open_session: Any) -> None:
    root = open_session("root")
    with root.server.client("root") as c:  # an API-only user, as `users add` makes them
        assert c.post("/api/v1/users", json={"name": "paul", "role": "investigator"}
                      ).status_code == 201
    page = root.page
    page.on("dialog", lambda d: d.accept())
    root.goto("/admin")
    panel = page.locator("form[action='/admin/users/password']")
    expect(panel.get_by_label("User")).to_contain_text("paul (investigator, API only)")
    # CSRF like every other form: a post without the token is refused.
    refused = root.context.request.post(root.url("/admin/users/password"),
                                        form={"name": "paul", "password": "paul-password-1"})
    assert refused.status == 403
    # The server enforces the length rule too.
    panel.get_by_label("User").select_option("paul")
    page.eval_on_selector("#pw-new", "el => el.removeAttribute('minlength')")
    panel.get_by_label(re.compile("^New password")).fill("short")
    panel.get_by_role("button", name="Set password").click()
    expect(page.get_by_test_id("error")).to_contain_text("at least 10")

    panel = page.locator("form[action='/admin/users/password']")
    panel.get_by_label("User").select_option("paul")
    panel.get_by_label(re.compile("^New password")).fill("paul-password-1")
    with page.expect_navigation():
        panel.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status").first).to_contain_text("Web password set")
    expect(page.locator("tr[data-user='paul']")).to_contain_text("password")
    paul = open_session("paul", "paul-password-1")
    assert paul.page.url == paul.url("/search")

    # Reset with a generated password: shown once, the old password and session stop working.
    panel = page.locator("form[action='/admin/users/password']")
    panel.get_by_label("User").select_option("paul")
    panel.get_by_role("button", name="Set password").click()
    expect(page.get_by_test_id("new-password")).to_contain_text("Web password for paul")
    generated = page.locator("#new-password").inner_text().strip()
    assert len(generated) >= 10 and generated != "paul-password-1"
    root.snap("admin-password-generated")
    paul.goto("/search")
    assert "/login" in paul.page.url  # the reset ended paul's web session
    assert open_session("paul", generated).page.url.endswith("/search")
    stale = open_session()
    stale.sign_in("paul", "paul-password-1")
    assert "/login" in stale.page.url
    root.goto("/admin")
    assert generated not in page.content()  # shown once only

    entries = [e for e in _ledger(root.server, "user.password_set")
               if e["payload"]["user"] == "paul"]
    assert sorted(e["payload"]["generated"] for e in entries) == [False, True]
    assert all(e["actor"] == "root" and e["payload"]["how"] == "web" for e in entries)
    text = str(entries)
    assert "paul-password-1" not in text and generated not in text and "argon2" not in text
    root.assert_clean()
    paul.assert_clean()
