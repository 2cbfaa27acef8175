"""Oversight and subject-rights endpoints over real HTTP."""

from __future__ import annotations

from tests.live import LiveServer
from tests.photos import astronaut_face, encode, grace_hopper, variants

FIELDS = {"case": "RIGHTS-1", "purpose": "criminal investigation", "offence": "fraud",
          "legal_basis": "basis"}


def test_approval_outcome_and_authorisation(live_server: LiveServer) -> None:
    probe = {"probe": ("g.jpg", encode(grace_hopper()), "image/jpeg")}
    with live_server.client("ivy") as c:
        # The packaged policy holds "intelligence" searches for a supervisor.
        held = c.post("/api/v1/searches", files=probe,
                      data={**FIELDS, "purpose": "intelligence", "urgent": "true"})
        assert held.status_code == 200 and held.json()["status"] == "pending"
        sid = held.json()["search_id"]
        assert held.json()["candidates"] == []
        assert c.get(f"/api/v1/searches/{sid}").json()["candidates"] == []
    with live_server.client("sue") as c:
        pending = c.get("/api/v1/approvals").json()
        assert [p["search_id"] for p in pending] == [sid]
        assert c.post(f"/api/v1/approvals/{sid}", json={"approve": True}).status_code == 422
        ok = c.post(f"/api/v1/approvals/{sid}", json={"approve": True, "reason": "justified"})
        assert ok.json()["status"] == "done"
    with live_server.client("ivy") as c:
        detail = c.get(f"/api/v1/searches/{sid}").json()
        assert detail["candidates"][0]["source_url"] == "https://example.org/grace.jpg"
        r = c.post(f"/api/v1/searches/{sid}/outcome",
                   json={"result": "arrest", "note": "n", "date": "2026-11-01"})
        assert r.status_code == 201 and r.json()["date"] == "2026-11-01"
        assert c.post(f"/api/v1/searches/{sid}/outcome", json={"result": "??"}
                      ).status_code == 422
        assert c.post(f"/api/v1/searches/{sid}/authorisation", json={"ref": "AUTH-1"}
                      ).json()["authorisation_ref"] == "AUTH-1"
    with live_server.client("audrey") as c:
        kinds = [e["kind"] for e in c.get("/api/v1/ledger", params={"case": "RIGHTS-1", "order": "oldest"}
                               ).json()["entries"]]
        assert kinds == ["search.requested", "search.approved", "search", "outcome",
                         "search.authorised"]


def test_subject_rights_endpoints(live_server: LiveServer) -> None:
    photo = {"photo": ("a.jpg", variants(astronaut_face())["mirror"], "image/jpeg")}
    with live_server.client("ivy") as c:
        c.post("/api/v1/searches", files={"probe": ("a.jpg", encode(astronaut_face()),
                                                    "image/jpeg")}, data=FIELDS)
    with live_server.client("root") as c:
        access = c.post("/api/v1/subjects/access", files=photo).json()
        assert any("probe" in a["matched_as"] for a in access)
        preview = c.post("/api/v1/subjects/erase/preview", files=photo).json()["faces"]
        assert preview and preview[0]["thumbnail"].startswith("data:image/jpeg;base64,")
        assert c.post("/api/v1/subjects/optout", files=photo, data={"reference": "REQ-9"}
                      ).status_code == 201
    with live_server.client("ivy") as c:
        res = c.post("/api/v1/searches", files={"probe": ("a.jpg", encode(astronaut_face()),
                                                          "image/jpeg")}, data=FIELDS).json()
        assert all("astro" not in (x["source_url"] or "") for x in res["candidates"])
    with live_server.client("root") as c:
        gone = c.post("/api/v1/subjects/erase",
                      json={"face_ids": [f["face_id"] for f in preview], "reference": "E-1"})
        assert gone.json()["faces"] >= 1
        assert c.get("/api/v1/policy").json()["purposes"]


def test_erasure_with_no_face_chosen_is_refused(live_server: LiveServer) -> None:
    with live_server.client("root") as c:
        before = c.get("/api/v1/ledger", params={"kind": "subject.erased"}).json()
        refused = c.post("/api/v1/subjects/erase", json={"face_ids": [], "reference": "E-0"})
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_request"
        assert "no face was chosen" in refused.json()["message"]
        after = c.get("/api/v1/ledger", params={"kind": "subject.erased"}).json()
        assert after == before  # nothing erased, nothing ledgered


def test_review_queue_endpoint(live_server: LiveServer) -> None:
    with live_server.client("ivy") as c:
        res = c.post("/api/v1/searches", files={"probe": ("g.jpg", encode(grace_hopper()),
                                                          "image/jpeg")},
                     data={**FIELDS, "case": "RIGHTS-Q"}).json()
        sid, fid = res["search_id"], res["candidates"][0]["face_id"]
        assert c.post(f"/api/v1/searches/{sid}/reviews",
                      json={"face_id": fid, "decision": "confirmed", "note": "same ears"}
                      ).json()["recorded"] is True
        mine = [w for w in c.get("/api/v1/reviews/waiting").json() if w["search_id"] == sid]
        assert [(w["face_id"], w["yours"]) for w in mine] == [(fid, True)]
    with live_server.client("sue") as c:
        waiting = [w for w in c.get("/api/v1/reviews/waiting").json() if w["search_id"] == sid]
        assert [(w["face_id"], w["confirmed_by"], w["note"], w["yours"], w["case"])
                for w in waiting] == [(fid, "ivy", "same ears", False, "RIGHTS-Q")]
        c.post(f"/api/v1/searches/{sid}/reviews", json={"face_id": fid, "decision": "confirmed"})
        assert all(w["search_id"] != sid for w in c.get("/api/v1/reviews/waiting").json())
    with live_server.client("audrey") as c:
        assert c.get("/api/v1/reviews/waiting").status_code == 403


def test_governance_endpoints_are_typed_and_keep_their_json(live_server: LiveServer) -> None:
    from faceledger.governance.policy import describe, load_policy

    with live_server.client("audrey") as c:
        spec = c.get("/api/v1/openapi.json").json()["paths"]
        for path, method in [("/api/v1/ledger", "get"), ("/api/v1/ledger/verify", "get"),
                             ("/api/v1/subjects/optout", "post"),
                             ("/api/v1/subjects/erase/preview", "post"),
                             ("/api/v1/subjects/erase", "post"),
                             ("/api/v1/subjects/access", "post"),
                             ("/api/v1/retention/run", "post"), ("/api/v1/policy", "get"),
                             ("/api/v1/reports/oversight", "get")]:
            ok = next(v for k, v in spec[path][method]["responses"].items() if k[0] == "2")
            assert ok["content"]["application/json"]["schema"], path  # documented
        assert c.get("/api/v1/policy").json() == describe(load_policy(None).policy)
        verify = c.get("/api/v1/ledger/verify").json()
        assert set(verify) == {"ok", "entries", "head_seq", "head_hash", "first_bad_seq",
                               "reason"} and verify["ok"] is True
        assert c.post("/api/v1/retention/run").status_code == 403
    with live_server.client("root") as c:
        assert c.post("/api/v1/retention/run").json() == {"probes": [], "results": [],
                                                         "unauthorised": []}
        photo = {"photo": ("a.jpg", encode(astronaut_face()), "image/jpeg")}
        zero = c.post("/api/v1/subjects/access", files=photo, data={"face": "0"})
        assert zero.status_code == 422 and zero.json()["code"] == "invalid_request"
