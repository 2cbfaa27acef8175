"""Issue 12 parts 8 and 9: zip archives are opened once and capped; manifest rows with unsafe URLs,
formula cells, over-long fields or paths outside the manifest's folder are refused and reported
with their line numbers."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from faceledger.db.schema import ImageSource, IngestJob
from faceledger.errors import ValidationError
from faceledger.gallery.ingest import Ingest
from faceledger.gallery.jobs import JobRunner
from faceledger.gallery.sources import load_manifest
from faceledger.governance import ledger
from tests.conftest import World
from tests.photos import astronaut_face, collage, encode, noise_image


def _jobs(world: World) -> int:
    with world.app.db.read() as s:
        return int(s.execute(select(func.count(IngestJob.id))).scalar_one())


# --- part 8: zip archives -------------------------------------------------------------------

def test_zip_is_opened_once_to_list_and_once_to_read_not_per_member(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("astro.jpg", encode(astronaut_face()))
        for i in range(300):  # distinct bytes that are not images: each member is read
            zf.writestr(f"junk/{i:04d}.jpg", f"not a photo {i}")
    opened: list[str] = []
    real = zipfile.ZipFile

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, file: Any, *args: Any, **kw: Any) -> None:
            opened.append(str(file))
            super().__init__(file, *args, **kw)

    monkeypatch.setattr(zipfile, "ZipFile", Counting)
    summary = Ingest(world.app, world.admin).run([z], "gallery")
    assert (summary.added, summary.rejected) == (1, 300)
    assert opened == [str(z), str(z)]  # once to list the members, once to read them all


def test_zip_with_too_many_members_is_refused_quickly(world: World, tmp_path: Path) -> None:
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w") as zf:  # 20,000 empty members: a ~2 MB file
        for i in range(20_000):
            zf.writestr(f"e{i:05d}", b"")
    assert world.app.settings.max_zip_members == 10_000
    t0 = time.perf_counter()
    with pytest.raises(ValidationError, match=r"bomb\.zip holds 20000 members; .* at most 10000"):
        Ingest(world.app, world.admin).run([z], "gallery")
    assert time.perf_counter() - t0 < 10
    assert _jobs(world) == 0  # refused before any job was opened


def test_files_per_ingest_are_capped(world: World, tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    for i in range(4):
        (d / f"n{i}.png").write_bytes(noise_image(i, 40))
    with zipfile.ZipFile(d / "more.zip", "w") as zf:
        for i in range(3):
            zf.writestr(f"m{i}.png", noise_image(10 + i, 40))
    world.app.settings.max_ingest_files = 6
    with pytest.raises(ValidationError, match="more than 6 files in one ingest"):
        Ingest(world.app, world.admin).run([d], "gallery")
    world.app.settings.max_ingest_files = 7
    assert Ingest(world.app, world.admin).run([d], "gallery").added == 7


# --- part 9: manifest rows --------------------------------------------------------------------

HOSTILE = ("path,source_url,page_url,title,captured_at\n"
           "a.jpg,javascript:alert(1),,A,\n"                          # line 2
           "b.jpg,https://example.org/b.jpg,DATA:text/html;base64;x,B,\n"  # line 3
           "c.jpg, vbscript:msgbox(1),,C,\n"                          # line 4
           "d.jpg,https://example.org/d.jpg,,=HYPERLINK(\"http://evil\"),\n"  # line 5
           "e.jpg,https://example.org/e.jpg,,@SUM(A1),\n"             # line 6
           f"f.jpg,https://example.org/{'x' * 10_000},,F,\n"          # line 7
           f"g.jpg,https://example.org/g.jpg,,{'t' * 10_000},\n"      # line 8
           "../outside.jpg,https://example.org/o.jpg,,O,\n"           # line 9
           "/etc/passwd,https://example.org/p.jpg,,P,\n"              # line 10
           "ok.jpg,https://example.org/ok.jpg,http://example.org/page,Fine -ish title,\n")


def test_manifest_refuses_unsafe_rows_with_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(HOSTILE)
    m = load_manifest(tmp_path / "m.csv")
    lines = [int(w["reason"].split(" line ")[1].split(":")[0]) for w in m.refused]
    assert lines == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert all(w["code"] == "manifest_refused" for w in m.refused)
    reasons = " | ".join(w["reason"] for w in m.refused)
    assert "source_url must be an http(s) URL" in reasons and "page_url must be" in reasons
    assert "spreadsheet formula" in reasons and "over the 2048-character limit" in reasons
    assert "relative to the manifest's folder" in reasons
    assert "javascript" not in reasons.lower() and "x" * 100 not in reasons  # values not echoed
    ok = m.get(str((tmp_path / "ok.jpg").resolve()))
    assert ok.source_url == "https://example.org/ok.jpg" and ok.title == "Fine -ish title"
    assert len(m.provenance) == 1  # refused rows give no provenance
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "x.jpg", "title": "+1 555"}) + "\n")
    refused = load_manifest(tmp_path / "m.jsonl").refused
    assert [w["reason"] for w in refused] == [
        "m.jsonl line 1: title looks like a spreadsheet formula (starts with +); row refused"]


def test_refused_rows_reported_in_summary_job_status_and_ledger(world: World,
                                                                tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    for name in ("a", "b", "d", "ok"):
        (d / f"{name}.jpg").write_bytes(encode(astronaut_face() if name != "b" else collage()))
    (d / "manifest.csv").write_text(HOSTILE)
    runner = JobRunner(world.app)
    try:
        job_id = runner.submit(world.admin, d, "gallery", d / "manifest.csv")
        runner.wait(job_id, timeout=120)
        status = runner.status(world.admin, job_id)
    finally:
        runner.shutdown()
    refused = [w for w in status["warnings"] if w["code"] == "manifest_refused"]
    assert [w["reason"].split(":")[0] for w in refused] == [
        f"manifest.csv line {n}" for n in range(2, 11)]
    assert status["status"] == "done" and status["rejected"] == 0  # the photos still went in
    with world.app.db.read() as s:
        urls = set(s.execute(select(ImageSource.source_url)).scalars())
        pages = set(s.execute(select(ImageSource.page_url)).scalars())
        titles = set(s.execute(select(ImageSource.title)).scalars())
        started = next(e for e in ledger.read(s, kind="ingest.started"))
    assert urls == {None, "https://example.org/ok.jpg"}
    assert pages == {None, "http://example.org/page"} and titles == {None, "Fine -ish title"}
    assert json.loads(started.payload or "{}")["manifest_refused"] == list(range(2, 11))
