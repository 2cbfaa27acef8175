"""Fast checks of the web pages in-process (no browser, no face models loaded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from faceledger.core import Faceledger
from faceledger.server import create_app
from faceledger.settings import Settings
from faceledger.web.auth_pages import safe_next
from faceledger.web.ledger_pages import summary
from faceledger.web.pages import safe_url, when

HTML = {"accept": "text/html"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / "home", workers=1, cookie_secure=False,
                        max_upload_files=3)
    core = Faceledger(settings)
    core.initialise("root", "root-password-1")
    core.close()
    with TestClient(create_app(settings, load_models=False), base_url="http://testserver") as c:
        r = c.post("/login", data={"name": "root", "password": "root-password-1"},
                   headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "max-age=28800" in cookie and "secure" not in cookie
        yield c


def csrf(client: TestClient, path: str = "/admin") -> str:
    html = client.get(path, headers=HTML).text
    return html.split('name="csrf-token" content="')[1].split('"')[0]


def test_csp_headers_on_pages(client: TestClient) -> None:
    r = client.get("/admin", headers=HTML)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")


def test_ingest_file_count_limits(client: TestClient) -> None:
    token = csrf(client, "/ingest")
    jpeg = b"\xff\xd8\xff\xe0 not really"
    files = [("files", (f"p{i}.jpg", jpeg, "image/jpeg")) for i in range(4)]
    r = client.post("/ingest", data={"csrf_token": token, "collection": "x"}, files=files,
                    headers=HTML)
    assert r.status_code == 422 and "the limit is 3" in r.text
    files = [("files", (f"p{i}.jpg", jpeg, "image/jpeg")) for i in range(9)]
    r = client.post("/ingest", data={"csrf_token": token, "collection": "x"}, files=files,
                    headers=HTML)
    assert r.status_code == 400 and "<h1" in r.text  # an HTML page, not JSON
    r = client.post("/ingest", data={"csrf_token": token, "collection": ""}, headers=HTML)
    assert r.status_code == 422 and "choose the collection" in r.text


def test_login_from_another_site_is_refused(client: TestClient) -> None:
    r = client.post("/login", data={"name": "root", "password": "root-password-1"},
                    headers={**HTML, "origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403


def test_admin_requires_csrf_even_with_cookie(client: TestClient) -> None:
    r = client.post("/admin/users", data={"name": "x", "role": "auditor"}, headers=HTML)
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post("/admin/users", data={"name": "x", "role": "auditor",
                                          "csrf_token": csrf(client)}, headers=HTML)
    assert r.status_code == 201 and "flk_" in r.text


@pytest.mark.parametrize(("target", "expected"), [
    ("/searches/3", "/searches/3"), ("/ledger?case=A", "/ledger?case=A"), ("", None),
    ("//evil.example", None), ("https://evil.example", None), ("/\\evil.example", None),
    ("evil", None), ("/login", None), ("/\x0aevil", None),
])
def test_safe_next(target: str, expected: str | None) -> None:
    assert safe_next(target) == expected


def test_helpers() -> None:
    assert safe_url("https://example.org/a.jpg") and not safe_url("javascript:alert(1)")
    assert not safe_url(None) and not safe_url("data:image/png;base64,xx")
    assert when("2024-05-01T10:00:00+02:00") == "2024-05-01 08:00:00 UTC"
    assert when(None) == "—" and when("garbage") == "garbage"
    assert "refused (no_face)" in summary("search.refused", {"code": "no_face", "reason": "x"})
    assert summary("review", {"decision": "rejected", "face_id": 3, "search": 9, "note": ""}) \
        == "rejected face 3 of search 9"
    assert len(summary("other", {"k": "v" * 500})) <= 160


# ---- policy, model card, oversight, subject rights (no face models needed) ----

def test_policy_page_shows_the_policy_and_its_hash(client: TestClient) -> None:
    r = client.get("/policy", headers=HTML)
    assert r.status_code == 200
    for text in ("intelligence-needs-approval", "criminal investigation", "terrorism",
                 "authorisation reference needed", "48 hours", "At most <strong>50</strong>",
                 "purged after 90 days", "07:00–19:00"):
        assert text in r.text, text
    sha = r.text.split('data-testid="policy-sha">')[1].split("<")[0]
    from faceledger.governance.policy import load_policy

    assert sha == load_policy(None).sha256
    assert 'href="/policy"' in r.text and 'href="/model"' in r.text  # footer links


def test_model_page_without_and_with_a_card(client: TestClient) -> None:
    core = client.app.state.core  # type: ignore[attr-defined]
    r = client.get("/model", headers=HTML)
    assert r.status_code == 200 and "faceledger eval card --lfw DIR" in r.text
    assert client.get("/model/card", headers=HTML).status_code == 404
    stamp = core.settings.home / "model-cards" / core.model_id / "20240101T000000000000Z"
    stamp.mkdir(parents=True)
    (stamp / "model-card.html").write_text(
        "<!doctype html><html><head><style>body{color:red}</style></head><body>"
        "<h1>Model card: test</h1></body></html>")
    (stamp / "model-card.md").write_text("# Model card: test\n")
    r = client.get("/model", headers=HTML)
    assert '<iframe class="card-frame" src="/model/card"' in r.text and "sandbox" in r.text
    card = client.get("/model/card", headers=HTML)
    assert card.status_code == 200 and "Model card: test" in card.text
    assert "sandbox" in card.headers["content-security-policy"]
    assert card.headers["x-frame-options"] == "SAMEORIGIN"
    md = client.get("/model/card?format=md")
    assert md.status_code == 200 and "attachment" in md.headers["content-disposition"]
    # A card that could run something is not framed, only offered as a download.
    newer = stamp.parent / "20250101T000000000000Z"
    newer.mkdir()
    (newer / "model-card.html").write_text("<html><body><script>alert(1)</script></body></html>")
    r = client.get("/model", headers=HTML)
    assert "<iframe" not in r.text and "active content" in r.text
    card = client.get("/model/card", headers=HTML)
    assert "attachment" in card.headers["content-disposition"]


def test_oversight_page_renders_the_report(client: TestClient) -> None:
    r = client.get("/oversight", headers=HTML)
    assert r.status_code == 200
    assert 'class="oversight-report"' in r.text and "In brief" in r.text
    assert "/api/v1/reports/oversight?from=" in r.text and "format=csv" in r.text
    assert ' style="' not in r.text.split('class="oversight-report"')[1]
    r = client.get("/oversight?date_from=2024-05-02&date_to=2024-05-01", headers=HTML)
    assert r.status_code == 422 and "bad period" in r.text
    r = client.get("/oversight?date_from=2024-05-01&date_to=2024-05-31&user=nobody",
                   headers=HTML)
    assert r.status_code == 404 and "no user" in r.text
    csv = client.get("/api/v1/reports/oversight?from=2024-05-01&to=2024-05-31&format=csv")
    assert csv.status_code == 200 and csv.text.startswith("search_id,")


def test_subject_pages_validate_before_acting(client: TestClient) -> None:
    r = client.get("/subjects", headers=HTML)
    assert r.status_code == 200
    for form in ("/subjects/optout", "/subjects/erase/find", "/subjects/access"):
        assert f'action="{form}"' in r.text
    token = csrf(client, "/subjects")
    r = client.post("/subjects/erase", data={"csrf_token": token, "reference": "REQ-1"},
                    headers=HTML)
    assert r.status_code == 422 and "no face was chosen" in r.text
    r = client.post("/subjects/erase", data={"csrf_token": token, "reference": " ",
                                             "face_id": ["1"]}, headers=HTML)
    assert r.status_code == 422 and "reference" in r.text
    r = client.post("/subjects/optout", data={"csrf_token": token, "reference": "R"},
                    headers=HTML)
    assert r.status_code == 422 and "choose a photo" in r.text
    r = client.post("/subjects/erase", data={"reference": "R", "face_id": ["1"]}, headers=HTML)
    assert r.status_code == 403  # no CSRF token


def test_admin_nav_and_approvals_forbidden(client: TestClient) -> None:
    r = client.get("/admin", headers=HTML)
    nav = r.text.split('aria-label="Main"')[1].split("</nav>")[0]
    for href in ("/ingest", "/admin", "/subjects", "/ledger", "/oversight"):
        assert f'href="{href}"' in nav, href
    assert 'href="/approvals"' not in nav
    assert client.get("/approvals", headers=HTML).status_code == 403
