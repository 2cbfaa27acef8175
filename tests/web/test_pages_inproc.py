"""Fast checks of the web pages in-process (no browser, no face models loaded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from faceledger.api.app import create_app
from faceledger.core import Faceledger
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
