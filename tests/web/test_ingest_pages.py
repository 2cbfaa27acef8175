"""Ingest in a real browser (issue 10 parts 7, 13, 14a): the only collection preselected, the job
page naming images with no face and unmatched manifest rows, Netpbm uploads and probes."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.live import LiveServer
from tests.netpbm import pgm, ppm
from tests.photos import astronaut_face, collage, encode, grace_hopper, noise_image

FIELDS = {"case": "NPM-1", "purpose": "criminal investigation", "offence": "robbery",
          "legal_basis": "test warrant 42"}


def test_job_page_reports_faces_per_image_and_warnings(open_session: Any, tmp_path: Path
                                                       ) -> None:
    s = open_session("root")
    files = {"astronaut.pgm": pgm(astronaut_face().rotate(3)),  # Netpbm: one face
             "pair.ppm": ppm(collage()),  # Netpbm: two faces
             "wall.png": noise_image(5),  # no face
             "scan": encode(grace_hopper().resize((280, 350)))}  # no extension: JPEG by content
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,source_url,page_url,title,captured_at\n"
                        "pair.ppm,https://example.org/pair,,Pair,\n"
                        "typo/astronot.pgm,https://example.org/x,,Typo,\n")
    s.goto("/ingest")
    # the only collection is chosen already (issue 10 part 14a)
    expect(s.page.get_by_label("Collection", exact=True)).to_have_value("gallery")
    s.page.get_by_label("Photos or zip archives").set_input_files(
        [str(tmp_path / n) for n in files])
    s.page.get_by_label("Provenance manifest").set_input_files(str(manifest))
    with s.page.expect_navigation():
        s.page.get_by_role("button", name="Upload and ingest").click()
    m = re.search(r"/ingest/jobs/(\d+)$", s.page.url)
    assert m, s.page.url
    expect(s.page.locator("[data-job-status]")).to_have_attribute("data-job-status", "done",
                                                                   timeout=90_000)
    s.page.wait_for_load_state("networkidle")
    s.snap("ingest-job-faces-per-image")
    expect(s.page.get_by_test_id("job-stage")).to_have_text("done")
    per_image = s.page.get_by_test_id("faces-per-image")
    expect(per_image.locator("[data-field='images_no_face']")).to_have_text("1")
    expect(per_image.locator("[data-field='images_one_face']")).to_have_text("2")
    expect(per_image.locator("[data-field='images_several_faces']")).to_have_text("1")
    expect(s.page.get_by_test_id("no-face-images").locator("tbody tr")).to_have_text(["wall.png"])
    warnings = s.page.get_by_test_id("job-warnings")
    expect(warnings).to_contain_text("typo/astronot.pgm")
    expect(warnings).to_contain_text("manifest.csv line 3")
    expect(s.page.locator("[data-field='rejected']")).to_have_text("0")
    s.assert_clean()

    with s.server.client("root") as c:
        job = c.get(f"/api/v1/ingest/jobs/{m.group(1)}").json()
    assert (job["stage"], job["added"], job["faces"]) == ("done", 4, 4)
    assert (job["images_no_face"], job["images_one_face"],
            job["images_several_faces"]) == (1, 2, 1)
    assert job["no_face_images"] == ["wall.png"] and job["rejections"] == []
    assert [w["path"] for w in job["warnings"]] == ["typo/astronot.pgm"]


def test_netpbm_probe_searches(live_server: LiveServer) -> None:
    probe = pgm(grace_hopper().resize((400, 500)))
    with live_server.client("ivy") as c:
        faces = c.post("/api/v1/probe/faces",
                       files={"probe": ("hopper.pgm", probe, "image/x-portable-graymap")})
        assert faces.status_code == 200, faces.text
        assert len(faces.json()["faces"]) == 1
        res = c.post("/api/v1/searches", data=FIELDS,
                     files={"probe": ("scan0001", probe, "application/octet-stream")})
        assert res.status_code == 200, res.text
        # Grace Hopper's seeded photo; her scan and the pair uploaded above may rank with it
        seeded = next(x for x in res.json()["candidates"]
                      if x["source_url"] == "https://example.org/grace.jpg")
        assert seeded["rank"] <= 3 and seeded["similarity"] > 0.9
        text = c.post("/api/v1/searches", data=FIELDS,
                      files={"probe": ("fake.pgm", b"P5\n12 12\n255\nshort", "image/x-pgm")})
        assert text.status_code == 422 and text.json()["code"] == "bad_image"


def test_collection_not_preselected_among_several(open_session: Any,
                                                  live_server: LiveServer) -> None:
    with live_server.client("root") as c:
        made = c.post("/api/v1/collections", json={"name": "scans", "legal_basis": "test"})
        assert made.status_code == 201, made.text
    s = open_session("root")
    s.goto("/ingest", shot="ingest-two-collections")
    select = s.page.get_by_label("Collection", exact=True)
    expect(select).to_have_value("")  # two to choose from: the user chooses
    expect(select.locator("option")).to_have_text(["Choose…", "gallery", "scans"])
    s.assert_clean()


def test_compare_view_shows_netpbm_probe_and_candidate(open_session: Any,
                                                       live_server: LiveServer) -> None:
    scan = ppm(astronaut_face().rotate(-6))  # a colour Netpbm scan, new bytes
    with live_server.client("root") as c:
        r = c.post("/api/v1/ingest", data={"collection": "gallery"},
                   files=[("files", ("astro-scan.ppm", scan, "image/x-portable-pixmap"))])
        assert r.status_code == 202, r.text
        deadline = time.time() + 120
        while (job := c.get(r.json()["status_url"]).json())["status"] == "running":
            assert time.time() < deadline
            time.sleep(0.3)
        assert (job["added"], job["images_one_face"]) == (1, 1), job
    probe = pgm(astronaut_face().resize((300, 265)))
    with live_server.client("ivy") as c:
        res = c.post("/api/v1/searches", data=FIELDS,
                     files={"probe": ("probe.pgm", probe, "image/x-portable-graymap")}).json()
        sid = res["search_id"]
        found = [x for x in res["candidates"]
                 if c.get(f"/api/v1/images/{x['image_id']}",
                       params={"search": sid}).json()["format"] == "PPM"]
        cand = next(x for x in found if x["sources"][0]["original_path"].endswith("astro-scan.ppm"))
        original = c.get(f"/api/v1/images/{cand['image_id']}/file", params={"search": sid})
        assert original.content == scan  # the evidence as ingested, byte for byte
        assert original.headers["content-type"] == "image/x-portable-anymap"
        shown = c.get(f"/api/v1/images/{cand['image_id']}/file",
                      params={"web": "true", "search": sid})
        assert shown.headers["content-type"] == "image/png"
        assert shown.content.startswith(b"\x89PNG")
    s = open_session("ivy")
    s.goto(f"/searches/{sid}/candidates/{cand['face_id']}", shot="compare-netpbm")
    imgs = s.page.locator(".compare-img img")
    expect(imgs).to_have_count(2)
    for i in range(2):  # both decoded by the browser: a PNG rendition, not a broken image
        width = imgs.nth(i).evaluate("img => img.complete ? img.naturalWidth : -1")
        assert width > 0, imgs.nth(i).get_attribute("src")
    s.assert_clean()


def test_search_page_previews_a_netpbm_probe(open_session: Any, tmp_path: Path) -> None:
    probe = tmp_path / "hopper.pgm"
    probe.write_bytes(pgm(grace_hopper().resize((360, 450))))
    s = open_session("ivy")
    s.goto("/search")
    s.page.locator("#probe").set_input_files(str(probe))
    expect(s.page.locator("[data-face-status]")).to_contain_text("One face found")
    img = s.page.locator("[data-probe-img]")
    expect(img).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    width = img.evaluate("i => new Promise(done => i.complete ? done(i.naturalWidth)"
                         " : i.addEventListener('load', () => done(i.naturalWidth)))")
    assert width == 360  # the browser shows the PNG rendition of the greyscale scan
    s.snap("search-netpbm-probe")
    s.assert_clean()
