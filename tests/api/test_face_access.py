"""Faces are served only within a purpose, and every opening is ledgered (batched): gallery
images, thumbnails, face and image records and probes over real HTTP, on a live server.

Before issue 12 an investigator could walk the whole gallery by id and fetch another
investigator's probe, and none of it was ledgered."""

from __future__ import annotations

from typing import Any

import httpx

from tests.live import LiveServer
from tests.photos import astronaut_face, encode

FIELDS = {"case": "FA-1", "purpose": "criminal investigation", "offence": "robbery",
          "legal_basis": "test warrant 7", "top_k": "1"}


def _search(c: httpx.Client, case: str) -> dict[str, Any]:
    res = c.post("/api/v1/searches", data={**FIELDS, "case": case},
                 files={"probe": ("p.jpg", encode(astronaut_face()), "image/jpeg")})
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    assert len(body["candidates"]) == 1
    return body


def _opened(live_server: LiveServer, case: str) -> list[dict[str, Any]]:
    with live_server.client("audrey") as c:
        entries = c.get("/api/v1/ledger", params={"case": case, "kind": "faces.opened",
                                                  "order": "oldest"}).json()["entries"]
    return list(entries)


def test_no_face_is_served_without_a_search(live_server: LiveServer) -> None:
    """Walking the gallery by id, with no search, serves nothing (and so opens nothing)."""
    with live_server.client("ivy") as c:
        for face_id in (1, 2):
            for url in (f"/api/v1/faces/{face_id}/thumbnail", f"/api/v1/faces/{face_id}",
                        f"/api/v1/images/{face_id}/file", f"/api/v1/images/{face_id}"):
                r = c.get(url)
                assert r.status_code == 422, (url, r.status_code)
                assert "search" in r.json()["message"]


def test_only_the_search_s_own_candidates_are_served(live_server: LiveServer) -> None:
    with live_server.client("ivy") as c:
        body = _search(c, "FA-WALK")
        sid, top = body["search_id"], body["candidates"][0]
        within = {"search": sid}
        assert c.get(f"/api/v1/faces/{top['face_id']}/thumbnail", params=within
                     ).content[:2] == b"\xff\xd8"
        assert c.get(f"/api/v1/faces/{top['face_id']}", params=within).json()["id"] == \
            top["face_id"]
        assert c.get(f"/api/v1/images/{top['image_id']}/file", params=within).status_code == 200
        other_face = 3 - top["face_id"]  # the gallery holds faces 1 and 2; top_k=1
        other_image = 3 - top["image_id"]
        for url in (f"/api/v1/faces/{other_face}/thumbnail", f"/api/v1/faces/{other_face}",
                    f"/api/v1/images/{other_image}/file", f"/api/v1/images/{other_image}"):
            assert c.get(url, params=within).status_code == 404, url
        assert c.get(f"/api/v1/faces/{top['face_id']}/thumbnail",
                     params={"search": 10**9}).status_code == 404


def test_openings_are_ledgered_once_per_user_and_search(live_server: LiveServer) -> None:
    """Twenty thumbnail requests, the image and the probe: one entry, naming who and what."""
    with live_server.client("ivy") as c:
        body = _search(c, "FA-BATCH")
        sid, top = body["search_id"], body["candidates"][0]
        assert _opened(live_server, "FA-BATCH") == []  # running a search opens no face
        for _ in range(20):
            r = c.get(f"/api/v1/faces/{top['face_id']}/thumbnail", params={"search": sid})
            assert r.status_code == 200
        assert c.get(f"/api/v1/images/{top['image_id']}/file",
                     params={"search": sid}).status_code == 200
        assert c.get(f"/api/v1/searches/{sid}/probe").status_code == 200
    (entry,) = _opened(live_server, "FA-BATCH")
    p = entry["payload"]
    assert entry["actor"] == "ivy" and p["by"] == "ivy" and p["searcher"] == "ivy"
    assert p["search_id"] == sid and p["task"] == "search"
    assert p["first"] == {"thumbnail": top["face_id"]}
    assert p["faces"] == [top["face_id"]] and p["probe"] is True


def test_another_investigator_s_probe_is_ledgered_as_theirs(live_server: LiveServer) -> None:
    """ian opening ivy's probe (as a second reviewer would) is served only within her search
    and leaves an entry naming ian, ivy and the task."""
    with live_server.client("ivy") as c:
        sid = _search(c, "FA-PROBE")["search_id"]
    with live_server.client("ian") as c:
        r = c.get(f"/api/v1/searches/{sid}/probe")
        assert r.status_code == 200 and r.content == encode(astronaut_face())
    (entry,) = _opened(live_server, "FA-PROBE")
    assert entry["actor"] == "ian"
    assert (entry["payload"]["searcher"], entry["payload"]["task"]) == ("ivy", "review")
    assert entry["payload"]["first"] == {"probe": sid}
    with live_server.client("audrey") as c:  # auditors see the ledger, never the faces
        assert c.get(f"/api/v1/searches/{sid}/probe").status_code == 403
        assert c.get("/api/v1/ledger/verify").json()["ok"] is True
