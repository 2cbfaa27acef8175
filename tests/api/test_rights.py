"""Oversight and subject-rights endpoints over real HTTP."""

from __future__ import annotations

from typing import Any

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
                             ("/api/v1/subjects/optout/preview", "post"),
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
                               "reason", "record_problems", "mode", "tree_size", "root_hash",
                               "from_size", "checkpoints_checked"} and verify["ok"] is True
        assert verify["mode"] == "full" and verify["tree_size"] == verify["head_seq"]
        assert verify["record_problems"] == []  # records cross-checked against the ledger
        assert c.post("/api/v1/retention/run").status_code == 403
    with live_server.client("root") as c:
        assert c.post("/api/v1/retention/run").json() == {"probes": [], "results": [],
                                                         "unauthorised": []}
        photo = {"photo": ("a.jpg", encode(astronaut_face()), "image/jpeg")}
        zero = c.post("/api/v1/subjects/access", files=photo, data={"face": "0"})
        assert zero.status_code == 422 and zero.json()["code"] == "invalid_request"


def test_optout_preview_and_several_photos(live_server: LiveServer) -> None:
    """Issue 12, point 13: the API shows the faces an opt-out will withhold before it is made,
    and an opt-out may hold several photos (the "photo" field repeated). Runs last: it opts
    Grace Hopper out of this module's gallery."""
    two = [("photo", ("g.jpg", variants(grace_hopper())["mirror"], "image/jpeg")),
           ("photo", ("g2.jpg", variants(grace_hopper())["darker"], "image/jpeg"))]
    with live_server.client("ivy") as c:
        assert c.post("/api/v1/subjects/optout/preview", files=two).status_code == 403
    with live_server.client("root") as c:

        def optouts() -> list[dict[str, Any]]:
            got = c.get("/api/v1/ledger", params={"kind": "subject.optout"}).json()["entries"]
            return [e for e in got if e["kind"] == "subject.optout"]

        before = optouts()
        pv = c.post("/api/v1/subjects/optout/preview", files=two, data={"reference": "OPT-2"})
        assert pv.status_code == 200, pv.text
        body = pv.json()
        assert body["photos"] == 2 and body["threshold"] == 0.911115
        assert len(body["faces"]) == 1 and body["faces"][0]["similarity"] >= body["threshold"]
        assert body["faces"][0]["thumbnail"].startswith("data:image/jpeg;base64,")
        shown = c.get("/api/v1/ledger", params={"kind": "subject.optout_preview"}).json()
        assert shown["entries"][0]["payload"]["face_ids"] == [body["faces"][0]["face_id"]]
        assert optouts() == before  # nothing recorded by a preview
        bad = c.post("/api/v1/subjects/optout", files=two, data={"reference": "OPT-2",
                                                                 "face": ["1"]})
        assert bad.status_code == 422 and "one face number per photo" in bad.json()["message"]
        done = c.post("/api/v1/subjects/optout", files=two, data={"reference": "OPT-2"})
        assert done.status_code == 201 and done.json()["photos"] == 2
        entry = next(e for e in optouts() if e not in before)
        assert entry["payload"]["templates"] == 2 and entry["payload"]["reference"] == "OPT-2"
    with live_server.client("ivy") as c:
        res = c.post("/api/v1/searches", files={"probe": ("g.jpg", encode(grace_hopper()),
                                                          "image/jpeg")},
                     data={**FIELDS, "case": "RIGHTS-OPT"}).json()
        assert all("grace" not in (x["source_url"] or "") for x in res["candidates"])
