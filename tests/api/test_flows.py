"""API flows over real HTTP: search, reviews, ingest jobs, ledger, users."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator

import pytest

from tests.conftest import BOTH_DATABASES
from tests.live import LiveServer, serve
from tests.photos import astronaut_face, collage, encode, grace_hopper, variants

FIELDS = {"case": "API-1", "purpose": "criminal investigation", "offence": "robbery",
          "legal_basis": "test warrant 42"}


@pytest.fixture(scope="module", params=BOTH_DATABASES)
def live_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Every flow here on a server over SQLite, then over PostgreSQL (a fresh database: the
    seeding reads FACELEDGER_DATABASE_URL from the environment, the server is handed it)."""
    if request.param == "sqlite":
        with serve(tmp_path_factory.mktemp("live")) as server:
            yield server
        return
    pg_server = request.getfixturevalue("pg_server")
    url = pg_server.create_database()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("FACELEDGER_DATABASE_URL", url)
            with serve(tmp_path_factory.mktemp("live-pg"), FACELEDGER_DATABASE_URL=url) as server:
                assert not (server.home / "faceledger.db").exists()  # no SQLite file: on PostgreSQL
                yield server
    finally:
        pg_server.drop_database(url)


def test_search_two_faces_then_choose(live_server: LiveServer) -> None:
    files = {"probe": ("collage.jpg", encode(collage()), "image/jpeg")}
    with live_server.client("ivy") as c:
        missing = c.post("/api/v1/searches", files=files, data={"case": "API-1"})
        assert missing.status_code == 422 and "purpose" in missing.json()["message"]
        choose = c.post("/api/v1/searches", files=files, data=FIELDS)
        assert choose.status_code == 409
        faces = choose.json()["faces"]
        # Faces are numbered 1, 2, ... left to right; the old 0-based field is refused.
        assert [f["face"] for f in faces] == [1, 2] and faces[0]["box"][0] < faces[1]["box"][0]
        old = c.post("/api/v1/searches", files=files, data={**FIELDS, "face_index": "1"})
        assert old.status_code == 422 and "replaced by `face`" in old.json()["message"]
        assert c.post("/api/v1/searches", files=files,
                      data={**FIELDS, "face": "0"}).status_code == 422
        detected = c.post("/api/v1/probe/faces", files=files).json()
        assert [f["face"] for f in detected["faces"]] == [1, 2]
        res = c.post("/api/v1/searches", files=files, data={**FIELDS, "face": "2"})
        assert res.status_code == 200
        body = res.json()
        assert body["schema_version"] == 2 and body["face"] == 2
        top = body["candidates"][0]
        assert top["source_url"] == "https://example.org/grace.jpg" and top["rank"] == 1
        # Calibrated bands: each candidate's band, the bands' thresholds and FMRs stated.
        bands = body["bands"]
        assert bands["likely"]["fmr"] == 1e-6 and bands["possible"]["fmr"] == 1e-3
        assert bands["likely"]["threshold"] > bands["possible"]["threshold"]
        for cand in body["candidates"]:
            want = ("likely" if cand["similarity"] >= bands["likely"]["threshold"] else
                    "possible" if cand["similarity"] >= bands["possible"]["threshold"]
                    else "unlikely")
            assert cand["band"] == want
            assert cand["probe_image"] is False and cand["duplicate_of"] is None
        assert top["title"] == "Grace Hopper" and "captured_at" in top
        within = {"search": body["search_id"]}  # faces open only within a search
        thumb = c.get(f"/api/v1/faces/{top['face_id']}/thumbnail", params=within)
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
        full = c.get(f"/api/v1/images/{top['image_id']}/file", params=within)
        assert full.status_code == 200 and len(full.content) > 1000
        probe = c.get(f"/api/v1/searches/{body['search_id']}/probe")
        assert probe.status_code == 200 and probe.content == encode(collage())
        detail = c.get(f"/api/v1/searches/{body['search_id']}").json()
        assert detail["probe_box"] == faces[1]["box"] and detail["face"] == 2
        assert detail["candidates"][0]["review"]["status"] == "unreviewed"
        assert detail["bands"] == bands
        assert [x["band"] for x in detail["candidates"]] == [x["band"] for x in
                                                             body["candidates"]]
    with live_server.client("audrey") as c:
        entries = c.get("/api/v1/ledger", params={"case": "API-1", "order": "oldest"}).json()["entries"]
        kinds = [e["kind"] for e in entries]
        # thumbnail, image and probe opened: one batched faces.opened entry
        assert kinds == ["search.refused", "search", "faces.opened"]
        assert entries[1]["payload"]["face_index"] == 1  # the ledger's format is unchanged
        assert c.get("/api/v1/ledger/verify").json()["ok"] is True


def test_identify_mode_and_variants(live_server: LiveServer) -> None:
    with live_server.client("sue") as c:
        for name, data in variants(astronaut_face()).items():
            r = c.post("/api/v1/searches", files={"probe": ("p.jpg", data, "image/jpeg")},
                       data={**FIELDS, "mode": "identify"})
            assert r.status_code == 200, name
            cands = r.json()["candidates"]
            assert [x["source_url"] for x in cands] == ["https://example.org/astro.jpg"], name
            assert r.json()["calibration"]["model_id"] == "dlib-resnet-v1"


def test_two_person_review(live_server: LiveServer) -> None:
    with live_server.client("ivy") as c:
        res = c.post("/api/v1/searches",
                     files={"probe": ("g.jpg", encode(grace_hopper()), "image/jpeg")},
                     data=FIELDS).json()
        sid, fid = res["search_id"], res["candidates"][0]["face_id"]
        first = c.post(f"/api/v1/searches/{sid}/reviews",
                       json={"face_id": fid, "decision": "confirmed", "note": "same scar"})
        assert first.json()["status"] == "confirmed_once"
        again = c.post(f"/api/v1/searches/{sid}/reviews",
                       json={"face_id": fid, "decision": "confirmed"})
        assert again.json()["status"] == "confirmed_once"  # the same person twice is not two
        assert again.json()["recorded"] is False  # and the repeat is not ledgered again
        other = c.post(f"/api/v1/searches/{sid}/reviews",
                       json={"face_id": 999999, "decision": "confirmed"})
        assert other.status_code == 404
    with live_server.client("ian") as c:
        assert c.get(f"/api/v1/searches/{sid}").status_code == 200  # someone else's search
        second = c.post(f"/api/v1/searches/{sid}/reviews",
                        json={"face_id": fid, "decision": "confirmed"})
        assert second.json()["status"] == "confirmed"
        assert sorted(second.json()["confirmed_by"]) == ["ian", "ivy"]
    with live_server.client("audrey") as c:
        kinds = [e["kind"] for e in c.get("/api/v1/ledger", params={"kind": "review"}).json()["entries"]]
        assert kinds.count("review") == 2  # ivy once (her repeat recorded nothing), ian once
        viewed = c.get("/api/v1/ledger", params={"kind": "search.viewed"}).json()["entries"]
        assert [(e["actor"], e["payload"]["searcher"]) for e in viewed
                if e["payload"]["search_id"] == sid] == [("ian", "ivy")]


def test_search_routes_document_their_responses(live_server: LiveServer) -> None:
    """Every search, review and approval route names its response schema in the OpenAPI."""
    with live_server.client() as c:
        paths = c.get("/api/v1/openapi.json").json()["paths"]
    routes = [("/api/v1/searches", "post", "200"), ("/api/v1/searches", "get", "200"),
              ("/api/v1/probe/faces", "post", "200"),
              ("/api/v1/searches/{search_id}", "get", "200"),
              ("/api/v1/searches/{search_id}/reviews", "post", "201"),
              ("/api/v1/reviews/waiting", "get", "200"), ("/api/v1/approvals", "get", "200"),
              ("/api/v1/approvals/{search_id}", "post", "200"),
              ("/api/v1/searches/{search_id}/outcome", "post", "201"),
              ("/api/v1/searches/{search_id}/authorisation", "post", "200")]
    for path, method, code in routes:
        responses = paths[path][method]["responses"]
        schema = responses[code]["content"]["application/json"]["schema"]
        assert "$ref" in schema or "$ref" in schema.get("items", {}), (path, method, schema)


def test_ingest_upload_job(live_server: LiveServer) -> None:
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a/astro-dark.jpg", variants(astronaut_face())["darker"])
        zf.writestr("a/broken.jpg", b"\xff\xd8\xff not a jpeg")
    manifest = b"path,source_url\nbatch.zip/a/astro-dark.jpg,https://example.org/dark.jpg\n"
    with live_server.client("root") as c:
        c.post("/api/v1/collections", json={"name": "uploads", "legal_basis": "consent"})
        r = c.post("/api/v1/ingest", data={"collection": "uploads"},
                   files=[("files", ("batch.zip", z.getvalue(), "application/zip")),
                          ("files", ("../../etc/evil.jpg", encode(grace_hopper()), "image/jpeg")),
                          ("manifest", ("m.csv", manifest, "text/csv"))])
        assert r.status_code == 202, r.text
        job_url = r.json()["status_url"]
        deadline = time.time() + 120
        while (status := c.get(job_url).json())["status"] == "running":
            assert time.time() < deadline
            time.sleep(0.3)
        assert status["status"] == "done"
        assert (status["added"], status["faces"], status["rejected"]) == (2, 2, 1)
        assert status["rejections"][0]["code"] == "bad_image"
        col = c.get("/api/v1/collections/uploads").json()
        assert col["faces"] == 2
    assert not (live_server.home.parent / "etc").exists()
    with live_server.client("ivy") as c:
        r = c.post("/api/v1/searches",
                   files={"probe": ("p.jpg", encode(astronaut_face()), "image/jpeg")},
                   data={**FIELDS, "collection": "uploads"}).json()
        assert r["candidates"][0]["source_url"] == "https://example.org/dark.jpg"
        assert r["collections"] == [{"collection": "uploads", "faces": 2}]


def test_users_api(live_server: LiveServer) -> None:
    with live_server.client("root") as c:
        r = c.post("/api/v1/users", json={"name": "newbie", "role": "investigator"})
        assert r.status_code == 201 and r.json()["token"].startswith("flk_")
        token = r.json()["token"]
        assert c.post("/api/v1/users", json={"name": "x", "role": "king"}).status_code == 422
        assert c.post("/api/v1/users", json={"name": "newbie", "role": "auditor"}
                      ).status_code == 409
        new = c.post("/api/v1/users/newbie/token").json()["token"]
    import httpx

    old = httpx.get(live_server.url + "/api/v1/me", headers={"authorization": f"Bearer {token}"})
    assert old.status_code == 401
    ok = httpx.get(live_server.url + "/api/v1/me", headers={"authorization": f"Bearer {new}"})
    assert ok.json() == {"user": "newbie", "role": "investigator", "via": "token"}
