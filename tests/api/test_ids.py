"""Ids are validated once (faceledger.http.ids): an id out of SQLite's 64-bit range, zero or
negative answers 404/422 on every route of the API and the web UI, never a server error
(issue 12, part 7: `/api/v1/images/99999999999999999999999/file` answered 500 OverflowError)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from faceledger.roles import PERMISSIONS, Role
from faceledger.server import create_app
from faceledger.settings import Settings
from tests.api.test_security import EVERY
from tests.live import LiveServer
from tests.photos import astronaut_face, encode

ID_MAX = 2**63 - 1
HUGE = "99999999999999999999999"
BAD_IDS = [HUGE, str(ID_MAX + 1), "0", "-1"]
ROLE_USER = {Role.admin: "root", Role.investigator: "ivy", Role.supervisor: "sue",
             Role.auditor: "audrey"}
# A valid body for the JSON routes, so that only the id can be what is wrong.
BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/approvals/{search_id}": {"approve": False, "reason": "not needed"},
    "/api/v1/searches/{search_id}/outcome": {"result": "no_match", "note": ""},
    "/api/v1/searches/{search_id}/authorisation": {"ref": "AUTH-1"},
    "/api/v1/searches/{search_id}/reviews": {"face_id": 1, "decision": "confirmed"},
}
FORMS: dict[str, dict[str, str]] = {
    "/approvals/{search_id}": {"decision": "refuse", "reason": "not needed"},
    "/searches/{search_id}/outcome": {"result": "no_match"},
    "/searches/{search_id}/authorisation": {"reference": "AUTH-1"},
    "/searches/{search_id}/candidates/{face_id}/review": {"decision": "confirmed"},
}
ID_ROUTES = [(m, p, perm) for m, p, perm in EVERY
             if perm is not None and re.search(r"\{\w+_id\}", p)]


def _user_for(perm: str) -> str:
    return next(ROLE_USER[r] for r in (Role.investigator, Role.supervisor, Role.admin,
                                       Role.auditor) if r in PERMISSIONS[perm])


def _request(c: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response:
    return c.request(method, url, headers={"accept": "application/json"}, **kw)


def _call(c: httpx.Client, method: str, path: str, id_: str) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", id_, path)
    if path.startswith(("/api/v1/faces/", "/api/v1/images/")):
        url += f"?search={id_}"  # faces are opened within a search (an id too)
    if path in BODIES:
        return _request(c, method, url, json=BODIES[path])
    if path in FORMS:
        return _request(c, method, url, data=FORMS[path])
    return _request(c, method, url)


def test_id_routes_are_walked() -> None:
    """The walk below covers the API and the web UI (a route list gone empty would pass it)."""
    paths = {p for _, p, _ in ID_ROUTES}
    assert "/api/v1/images/{image_id}/file" in paths and "/searches/{search_id}" in paths
    assert len(ID_ROUTES) >= 15


def _integer_bounds(schema: dict[str, Any]) -> tuple[Any, Any]:
    """(minimum, maximum) of the integer in a parameter or property schema (optional, list)."""
    for alt in schema.get("anyOf", []):
        if alt.get("type") in ("integer", "array"):
            return _integer_bounds(alt)
    if schema.get("type") == "array":
        return _integer_bounds(schema["items"])
    return schema.get("minimum"), schema.get("maximum")


def test_every_api_id_is_declared_in_range() -> None:
    """OpenAPI documents every id (path, query, JSON body) as 1..2**63-1: the shared type."""
    spec = create_app(Settings(), load_models=False).openapi()
    found: dict[str, tuple[Any, Any]] = {}
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for p in op.get("parameters", []):
                if p["name"].endswith("_id") or p["name"] == "search":
                    found[f"{method} {path} {p['name']}"] = _integer_bounds(p["schema"])
            ref = (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                   .get("schema", {}).get("$ref"))
            if ref:
                props = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
                found.update({f"{method} {path} body.{name}": _integer_bounds(s)
                              for name, s in props.items() if name.endswith(("_id", "_ids"))})
    assert "get /api/v1/images/{image_id}/file image_id" in found
    assert "post /api/v1/subjects/erase body.face_ids" in found
    wrong = {k: v for k, v in found.items()
             if v[0] != 1 or v[1] is None or float(v[1]) > float(ID_MAX)}
    assert wrong == {}


@pytest.mark.parametrize("method,path,perm", ID_ROUTES, ids=[f"{m} {p}" for m, p, _ in ID_ROUTES])
def test_every_route_refuses_an_out_of_range_id(live_server: LiveServer, method: str, path: str,
                                                perm: str) -> None:
    with live_server.client(_user_for(perm)) as c:
        for bad in BAD_IDS:
            r = _call(c, method, path, bad)
            assert r.status_code in (404, 422), f"{method} {path} {bad}: {r.status_code} {r.text[:200]}"
        # The largest id that fits is a well-formed id that names nothing.
        r = _call(c, method, path, str(ID_MAX))
        assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text[:200]}"


SEARCH_FORM = {"case": "C-1", "purpose": "criminal investigation", "offence": "robbery",
               "legal_basis": "consent"}


def _probe() -> dict[str, Any]:
    return {"probe": ("p.jpg", encode(astronaut_face()), "image/jpeg")}


def test_out_of_range_ids_in_queries_and_bodies(live_server: LiveServer) -> None:
    """Ids outside paths (cursors, query ids, body and form ids), and a huge candidate id on a
    search that exists (so the search lookup cannot hide it)."""
    with live_server.client("ivy") as c:
        made = c.post("/api/v1/searches", data=SEARCH_FORM, files=_probe())
    assert made.status_code == 200, made.text[:300]
    sid = made.json()["search_id"]
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("ivy", "POST", f"/api/v1/searches/{sid}/reviews",
         {"json": {"face_id": int(HUGE), "decision": "confirmed"}}),
        ("ivy", "GET", f"/searches/{sid}/candidates/{HUGE}", {}),
        ("ivy", "POST", f"/searches/{sid}/candidates/{HUGE}/review", {"data": {"decision": "confirmed"}}),
        ("audrey", "GET", f"/api/v1/ledger?after={HUGE}", {}),
        ("audrey", "GET", f"/api/v1/ledger?before={HUGE}", {}),
        ("audrey", "GET", f"/ledger?after={HUGE}", {}),
        ("sue", "GET", f"/approvals?decided={HUGE}", {}),
        ("ivy", "POST", "/api/v1/searches/1/reviews",
         {"json": {"face_id": int(HUGE), "decision": "confirmed"}}),
        ("root", "POST", "/api/v1/subjects/erase", {"json": {"face_ids": [int(HUGE)]}}),
        ("root", "POST", "/api/v1/subjects/erase", {"json": {"face_ids": [0]}}),
        ("root", "POST", "/subjects/erase", {"data": {"reference": "R-1", "face_id": HUGE}}),
    ]
    bad: list[str] = []
    for user, method, url, kw in cases:
        with live_server.client(user) as c:
            r = _request(c, method, url, **kw)
        if r.status_code not in (404, 422):
            bad.append(f"{method} {url} {kw}: {r.status_code} {r.text[:120]}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("field,value", [("top_k", HUGE), ("face", HUGE), ("face", "-1")])
def test_search_with_out_of_range_numbers_is_refused(live_server: LiveServer, field: str,
                                                    value: str) -> None:
    """The API search and the web search page refuse a huge top-k or face number (422)."""
    form = {**SEARCH_FORM, field: value}
    with live_server.client("ivy") as c:
        api = c.post("/api/v1/searches", data=form, files=_probe())
        web = c.post("/search", data=form, files=_probe(), headers={"accept": "text/html"})
    assert api.status_code == 422, api.text[:300]
    assert web.status_code == 422, web.text[:300]
    assert "Internal Server Error" not in web.text


def test_a_browser_gets_a_page_for_an_out_of_range_id(live_server: LiveServer) -> None:
    """The web UI answers an id out of range with its error page (422), not JSON."""
    with live_server.client("ivy") as c:
        r = c.get(f"/searches/{HUGE}", headers={"accept": "text/html"})
        api = c.get(f"/api/v1/searches/{HUGE}", headers={"accept": "text/html"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "search_id" in r.text and "less than or equal to" in r.text
    assert api.status_code == 422 and api.json()["code"] == "invalid_request"  # the API: JSON
