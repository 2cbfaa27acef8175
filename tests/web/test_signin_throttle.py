"""Sign-in throttling over HTTP (issue 12, part 3), in-process over the real app: the sign-in
form and bearer tokens answer 429 with Retry-After, and an admin lifts a lock-out on the Admin
page (ledgered)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faceledger.accounts import service as account_services
from faceledger.core import Faceledger
from faceledger.governance import ledger
from faceledger.server import create_app
from faceledger.settings import Settings

HTML = {"accept": "text/html"}
Make = Callable[..., TestClient]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    clients: list[TestClient] = []

    def _make(**kw: Any) -> TestClient:
        settings = Settings(home=tmp_path / f"home{len(clients)}", workers=1,
                            cookie_secure=False, **kw)
        core = Faceledger(settings)
        core.initialise("root", "root-password-1")
        admin = core.authenticate(account_services.local_admin_token(core, "local:t", None)
                                  ["token"])
        account_services.add_user(core, admin, "ivy", "investigator", "ivy-password-1")
        core.close()
        c = TestClient(create_app(settings, load_models=False), base_url="http://testserver")
        c.__enter__()
        clients.append(c)
        return c

    yield _make
    for c in clients:
        c.__exit__(None, None, None)


def _login(c: TestClient, name: str, password: str) -> Any:
    return c.post("/login", data={"name": name, "password": password}, headers=HTML,
                  follow_redirects=False)


def test_sign_in_form_backs_off_with_429_and_retry_after(make: Make) -> None:
    c = make(signin_free_failures=3, signin_backoff_s=30.0)
    assert [_login(c, "ivy", "wrong-password").status_code for _ in range(3)] == [401] * 3
    r = _login(c, "ivy", "ivy-password-1")  # the right password waits too
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 30
    assert "try again in" in r.text
    assert "faceledger_session" not in r.headers.get("set-cookie", "")


def test_bad_bearer_tokens_are_throttled_per_address(make: Make) -> None:
    c = make(signin_address_free_failures=3, signin_backoff_s=30.0)
    bad = {"authorization": "Bearer flk_not-a-token"}
    codes = [c.get("/api/v1/collections", headers=bad).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    r = c.get("/api/v1/collections", headers=bad)
    assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"
    assert int(r.headers["retry-after"]) >= 1


def test_admin_page_shows_and_lifts_a_lockout(make: Make) -> None:
    c = make(signin_lockout_after=3, signin_free_failures=100)
    assert _login(c, "root", "root-password-1").status_code == 303
    for _ in range(3):
        assert _login(c, "ivy", "wrong-password").status_code == 401
    assert _login(c, "ivy", "ivy-password-1").status_code == 429
    page = c.get("/admin", headers=HTML).text
    assert 'data-testid="locked-ivy"' in page and "/admin/users/ivy/unlock" in page
    csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
    r = c.post("/admin/users/ivy/unlock", data={"csrf_token": csrf}, headers=HTML,
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin?done=unlocked"
    assert 'data-testid="locked-ivy"' not in c.get("/admin", headers=HTML).text
    core: Faceledger = c.app.state.core  # type: ignore[attr-defined]
    with core.db.read() as s:
        kinds = [e.kind for e in ledger.read(s, kind="signin.", limit=1000)]
    assert "signin.locked" in kinds and "signin.unlocked" in kinds
    c.cookies.clear()
    assert _login(c, "ivy", "ivy-password-1").status_code == 303
