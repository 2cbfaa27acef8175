"""Every route x every role (anonymous included), CSRF, headers, caps, and no secrets in logs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from faceledger.roles import PERMISSIONS, Role
from faceledger.server import create_app
from faceledger.settings import Settings
from tests.live import LiveServer

PUBLIC = {("GET", "/health"), ("GET", "/ready"), ("GET", "/docs"), ("GET", "/login"),
          ("POST", "/login")}
PARAMS = {"search_id": "1", "face_id": "1", "image_id": "1", "job_id": "1",
          "name": "nobody-xyz"}
ROLE_USER = {"admin": "root", "investigator": "ivy", "supervisor": "sue", "auditor": "audrey"}


def _permission(route: Any) -> str | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        perm = getattr(dep.call, "permission", None)
        if perm:
            return str(perm)
        stack.extend(dep.dependencies)
    return None


def _flatten(routes: list[Any]) -> list[Any]:
    """Routes as served, including those of included routers (FastAPI keeps them nested)."""
    out: list[Any] = []
    for r in routes:
        if isinstance(r, APIRoute):
            out.append(r)
        elif hasattr(r, "effective_route_contexts"):
            out.extend(r.effective_route_contexts())
    return out


def all_routes() -> list[tuple[str, str, str | None]]:
    """Every route the app serves (REST API and web pages), with the permission it declares."""
    app = create_app(Settings(), load_models=False)
    out = []
    for r in _flatten(app.routes):
        for m in sorted(set(r.methods) - {"HEAD"}):
            out.append((m, r.path, _permission(r)))
    return out


EVERY = all_routes()
ROUTES = [(m, p, perm) for m, p, perm in EVERY if perm is not None]


def test_every_route_declares_a_permission_or_is_public() -> None:
    assert len(ROUTES) >= 60
    undeclared = {(m, p) for m, p, perm in EVERY if perm is None}
    assert undeclared == PUBLIC
    assert all(perm in PERMISSIONS for _, _, perm in ROUTES)
    assert any(p.startswith("/api/") for _, p, _ in ROUTES)
    assert any(not p.startswith("/api/") for _, p, _ in ROUTES)


@pytest.mark.parametrize("method,path,perm", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_role_matrix(live_server: LiveServer, method: str, path: str, perm: str) -> None:
    url = re.sub(r"\{(\w+)\}", lambda mt: PARAMS[mt.group(1)], path)
    with live_server.client() as anon:
        assert anon.request(method, url).status_code == 401
    for role in Role:
        with live_server.client(ROLE_USER[role.value]) as c:
            status = c.request(method, url).status_code
        if role in PERMISSIONS[perm]:
            assert status not in (401, 403), f"{role} should reach {method} {path}"
        else:
            assert status == 403, f"{role} must not reach {method} {path} (got {status})"


def test_public_endpoints_and_docs_offline(live_server: LiveServer) -> None:
    with live_server.client() as c:
        assert c.get("/health").json()["status"] == "ok"
        ready = c.get("/ready").json()
        assert ready["ready"] and ready["models_loaded"]
        r = c.get("/docs")
        docs = r.text
        assert "/static/swagger/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
        assert "<script>" not in docs and "/static/docs.js" in docs  # no inline script
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe" not in csp and "https:" not in csp
        bundle = c.get("/static/swagger/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and re.search(r"\"5\.\d+\.\d+\"", bundle.text)  # UI 5: 3.1
        assert c.get("/static/docs.js").status_code == 200
        spec = c.get("/api/v1/openapi.json").json()
        assert spec["openapi"].startswith("3.1") and "/api/v1/searches" in spec["paths"]


def test_security_headers(live_server: LiveServer) -> None:
    with live_server.client("ivy") as c:
        r = c.get("/api/v1/collections")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


def _session_cookie(live_server: LiveServer, user: str) -> tuple[str, str]:
    from faceledger.accounts import websessions
    from faceledger.db.engine import Database

    db = Database(f"sqlite:///{live_server.home / 'faceledger.db'}")
    with db.write() as s:
        sid, csrf = websessions.sign_in(s, user, live_server.users[user]["password"], 1)
    db.dispose()
    return sid, csrf


def test_cookie_session_needs_csrf_on_writes(live_server: LiveServer) -> None:
    sid, csrf = _session_cookie(live_server, "root")
    body = {"name": "csrf-probe", "legal_basis": "x"}
    with httpx.Client(base_url=live_server.url, cookies={"faceledger_session": sid}) as c:
        assert c.get("/api/v1/me").json()["via"] == "session"
        r = c.post("/api/v1/collections", json=body)
        assert r.status_code == 403 and r.json()["reason"] == "csrf"
        r = c.post("/api/v1/collections", json=body, headers={"x-csrf-token": "wrong"})
        assert r.status_code == 403
        r = c.post("/api/v1/collections", json=body, headers={"x-csrf-token": csrf})
        assert r.status_code == 201


def test_wrong_and_revoked_tokens(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url,
                      headers={"authorization": "Bearer flk_not-a-token"}) as c:
        r = c.get("/api/v1/collections")
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


def test_request_body_cap(live_server: LiveServer) -> None:
    big = b"\xff\xd8" + b"0" * (31 * 1024 * 1024)
    with live_server.client("ivy") as c:
        r = c.post("/api/v1/searches", files={"probe": ("big.jpg", big, "image/jpeg")},
                   data={"case": "C", "purpose": "p", "offence": "o", "legal_basis": "b"})
    assert r.status_code == 413 and r.json()["code"] == "image_too_large"


def test_malformed_requests_get_json_problems(live_server: LiveServer) -> None:
    cases: list[Callable[[httpx.Client], httpx.Response]] = [
        lambda c: c.post("/api/v1/searches", data={"top_k": "many"}),
        lambda c: c.post("/api/v1/searches/1/reviews", content=b"{not json",
                         headers={"content-type": "application/json"}),
        lambda c: c.get("/api/v1/searches/not-a-number"),
    ]
    with live_server.client("ivy") as c:
        for make in cases:
            r = make(c)
            assert r.status_code == 422
            body: dict[str, Any] = r.json()
            assert body["code"] == "invalid_request" and body["errors"]


def test_no_tokens_or_passwords_in_server_log(live_server: LiveServer) -> None:
    with live_server.client("ivy") as c:
        c.get("/api/v1/collections")
    log = (live_server.home.parent / "server.log").read_text(errors="replace")
    assert "GET /api/v1/collections" in log  # the log is being written
    for u in live_server.users.values():
        assert u["token"] not in log and u["password"] not in log
    assert "flk_" not in log


def test_any_signed_in_user_is_its_own_permission() -> None:
    """"signed_in" (every role) gates what any signed-in user may do; "collections.read" no
    longer stands in for it."""
    declared = {(m, p): perm for m, p, perm in ROUTES}
    for route in [("GET", "/api/v1/me"), ("GET", "/api/v1/models"),
                  ("GET", "/api/v1/models/card"), ("POST", "/logout"), ("GET", "/")]:
        assert declared[route] == "signed_in", route
    assert {p for _, p, perm in ROUTES if perm == "collections.read"} == {
        "/api/v1/collections", "/api/v1/collections/{name}"}
    assert PERMISSIONS["signed_in"] == frozenset(Role)


def test_gallery_and_account_routes_document_their_responses() -> None:
    spec = create_app(Settings(), load_models=False).openapi()
    for method, path in [("get", "/api/v1/collections"), ("post", "/api/v1/collections"),
                         ("get", "/api/v1/collections/{name}"), ("get", "/api/v1/me"),
                         ("get", "/api/v1/users"), ("post", "/api/v1/users"),
                         ("post", "/api/v1/users/{name}/disable"),
                         ("post", "/api/v1/users/{name}/token"),
                         ("get", "/api/v1/ingest/jobs"), ("get", "/api/v1/ingest/jobs/{job_id}"),
                         ("get", "/api/v1/faces/{face_id}"), ("get", "/api/v1/images/{image_id}"),
                         ("get", "/api/v1/models"), ("get", "/health"), ("get", "/ready")]:
        responses = spec["paths"][path][method]["responses"]
        ok = responses.get("200") or responses["201"]
        schema = ok["content"]["application/json"]["schema"]
        assert "$ref" in schema or "$ref" in schema.get("items", {}), (method, path, schema)


FACE_ROUTES = {"/api/v1/faces/{face_id}", "/api/v1/faces/{face_id}/thumbnail",
               "/api/v1/images/{image_id}", "/api/v1/images/{image_id}/file"}


def test_face_routes_serve_only_within_a_search(live_server: LiveServer) -> None:
    """The purpose rule on top of the role matrix: every route that serves a gallery face is
    under it, and a role that may see faces still gets none without naming the search that
    returned it (422; the matrix above only asks that such roles are not refused 401/403)."""
    assert {p for _, p, perm in ROUTES if perm == "faces.read"} == FACE_ROUTES
    spec = create_app(Settings(), load_models=False).openapi()
    for path in FACE_ROUTES:
        params = spec["paths"][path]["get"]["parameters"]
        assert any(p["name"] == "search" and p["in"] == "query" for p in params), path
        url = re.sub(r"\{(\w+)\}", lambda mt: PARAMS[mt.group(1)], path)
        for role in PERMISSIONS["faces.read"]:
            with live_server.client(ROLE_USER[role.value]) as c:
                r = c.get(url)
            assert r.status_code == 422 and r.json()["field"] == "search", (role, path, r.text)
