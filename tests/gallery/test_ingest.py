from __future__ import annotations

import io
import json
import threading
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from faceledger.db.schema import Face, ImageSource, Rejection
from faceledger.db.schema import Image as ImageRow
from faceledger.errors import NotFoundError, PermissionDeniedError, ValidationError
from faceledger.faces.pipeline import FacePipeline
from faceledger.gallery.ingest import Ingest, IngestSummary
from faceledger.gallery.jobs import JobRunner
from faceledger.gallery.repository import job_face_tally, job_notes
from faceledger.governance import ledger
from tests.conftest import World
from tests.netpbm import pgm, pgm16, plain_ppm, ppm
from tests.photos import astronaut, astronaut_face, collage, encode, grace_hopper, noise_image


def bad_inputs(folder: Path) -> dict[str, str]:
    """Write hostile and awkward files; return file name -> expected rejection code."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = encode(astronaut_face())
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "text.jpg").write_text("this is not a photo\n")
    (folder / "bomb.png").write_bytes(encode(Image.new("L", (12_000, 12_000)), "PNG"))
    (folder / "notes.txt").write_text("a stray file")
    return {"zero.jpg": "bad_image", "truncated.jpg": "bad_image", "text.jpg": "bad_image",
            "bomb.png": "image_too_large", "notes.txt": "unsupported_type"}


def awkward_but_fine(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cmyk.jpg").write_bytes(encode(astronaut_face().convert("CMYK")))
    grey16 = Image.fromarray(
        __import__("numpy").asarray(grace_hopper().convert("L"), dtype="uint16") * 257)
    (folder / "grey16.png").write_bytes(encode(grey16, "PNG"))
    frames = [grace_hopper(), Image.new("RGB", grace_hopper().size, (0, 0, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    (folder / "animated.gif").write_bytes(buf.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 8  # displayed rotated 90 degrees counter-clockwise
    rotated = astronaut_face().rotate(-90, expand=True)  # stored sideways
    (folder / "exif_rotated.jpg").write_bytes(encode(rotated, exif=exif.tobytes()))
    return ["cmyk.jpg", "grey16.png", "animated.gif", "exif_rotated.jpg"]


def count(world: World, model: type) -> int:
    with world.app.db.read() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_bad_files_rejected_rest_ingested(world: World, tmp_path: Path) -> None:
    expected = bad_inputs(tmp_path / "in")
    fine = awkward_but_fine(tmp_path / "in")
    summary = Ingest(world.app, world.admin).run([tmp_path / "in"], "gallery")
    got = {Path(r["path"]).name: r["code"] for r in summary.rejections}
    assert got == expected
    assert summary.added == len(fine)
    assert summary.faces == len(fine)  # each awkward file holds exactly one face
    with world.app.db.read() as s:
        reasons = {Path(r.path).name: r.reason for r in s.execute(select(Rejection)).scalars()}
    assert "decompression bomb" in reasons["bomb.png"]
    assert "0 bytes" in reasons["zero.jpg"]


def test_reingest_is_noop_and_new_url_adds_provenance(world: World, tmp_path: Path) -> None:
    d = tmp_path / "a"
    d.mkdir()
    (d / "astro.jpg").write_bytes(encode(astronaut_face()))
    (d / "pair.jpg").write_bytes(encode(collage()))
    manifest = d / "manifest.csv"
    manifest.write_text("path,source_url,page_url,title,captured_at\n"
                        "astro.jpg,https://example.org/a.jpg,https://example.org/a,"
                        "Astronaut,2024-05-01T10:00:00Z\n")
    first = Ingest(world.app, world.admin).run([d], "gallery", manifest)
    assert (first.added, first.faces) == (2, 3)
    again = Ingest(world.app, world.admin).run([d], "gallery", manifest)
    assert (again.added, again.faces, again.duplicates, again.new_sources) == (0, 0, 2, 0)
    # The same bytes from another source URL: provenance grows, faces do not.
    e = tmp_path / "b"
    e.mkdir()
    (e / "copy.jpg").write_bytes(encode(astronaut_face()))
    (e / "m.jsonl").write_text(json.dumps({"path": "copy.jpg",
                                           "source_url": "https://mirror.example/x.jpg"}) + "\n")
    third = Ingest(world.app, world.admin).run([e], "gallery", e / "m.jsonl")
    assert (third.added, third.new_sources) == (0, 1)
    assert count(world, Face) == 3 and count(world, ImageRow) == 2
    with world.app.db.read() as s:
        urls = set(s.execute(select(ImageSource.source_url)).scalars())
    assert {"https://example.org/a.jpg", "https://mirror.example/x.jpg"} <= urls


def test_zip_archive_and_pool(world: World, tmp_path: Path) -> None:
    z = tmp_path / "photos.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("people/astro.jpg", encode(astronaut_face()))
        zf.writestr("people/grace.jpg", encode(grace_hopper()))
        zf.writestr("people/readme.txt", "not a photo")
    summary = Ingest(world.app, world.admin).run([z], "gallery", workers=2)
    assert (summary.added, summary.faces, summary.rejected) == (2, 2, 1)
    assert world.app.indexes.get("dlib-resnet-v1", 1).count() == 2


def test_refusals(world: World, tmp_path: Path) -> None:
    with pytest.raises(PermissionDeniedError):
        Ingest(world.app, world.investigator)
    with pytest.raises(NotFoundError, match="collections add nowhere"):
        Ingest(world.app, world.admin).run([tmp_path], "nowhere")
    bad = tmp_path / "m.csv"
    bad.write_text("path,captured_at\nx.jpg,yesterday\n")
    with pytest.raises(ValidationError, match="ISO 8601"):
        Ingest(world.app, world.admin).run([tmp_path], "gallery", bad)


def test_ingest_is_ledgered_and_chain_verifies(world: World, tmp_path: Path) -> None:
    (tmp_path / "g.png").write_bytes(encode(astronaut(), "PNG"))
    Ingest(world.app, world.admin).run([tmp_path], "gallery")
    with world.app.db.read() as s:
        kinds = [e.kind for e in ledger.read(s, kind="ingest")]
        assert kinds == ["ingest.started", "ingest.batch", "ingest.finished"]
        assert ledger.verify(s).ok


# --- issue 10 part 7: faces per image, unmatched manifest rows, stages ---

def mixed_folder(folder: Path) -> Path:
    """One face, two faces, no face, and a manifest naming a file that is not there."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "astro.jpg").write_bytes(encode(astronaut_face()))
    (folder / "pair.jpg").write_bytes(encode(collage()))
    (folder / "noise.png").write_bytes(noise_image(3))
    manifest = folder / "manifest.csv"
    manifest.write_text("path,source_url,page_url,title,captured_at\n"
                        "astro.jpg,https://example.org/a.jpg,,Astronaut,\n"
                        "gone/missing.jpg,https://example.org/m.jpg,,Missing,\n"
                        "pair.jpg,https://example.org/p.jpg,,Pair,\n")
    return manifest


def test_faces_per_image_unmatched_rows_and_stages(world: World, tmp_path: Path) -> None:
    manifest = mixed_folder(tmp_path / "in")
    stages: list[tuple[str, int]] = []

    def progress(s: IngestSummary) -> None:
        if not stages or stages[-1][0] != s.stage:
            stages.append((s.stage, s.processed))

    summary = Ingest(world.app, world.admin).run([tmp_path / "in"], "gallery", manifest,
                                                 progress)
    assert (summary.added, summary.faces, summary.rejected) == (3, 3, 0)
    assert (summary.images_no_face, summary.images_one_face,
            summary.images_several_faces) == (1, 1, 1)
    assert [Path(p).name for p in summary.no_face_images] == ["noise.png"]
    assert summary.warnings == [{"path": "gone/missing.jpg", "code": "manifest_unmatched",
                                 "reason": "manifest.csv line 3: gone/missing.jpg matches no "
                                           "file in this ingest"}]
    # the models load before the first photo is processed, and the user is told so
    assert [name for name, _ in stages] == ["loading models", "processing", "indexing", "done"]
    assert stages[0][1] == 0
    d = summary.as_dict()
    assert d["images_no_face"] == 1 and d["warnings"][0]["path"] == "gone/missing.jpg"
    with world.app.db.read() as s:
        started = next(e for e in ledger.read(s, kind="ingest.started"))
        assert json.loads(started.payload or "{}")["manifest_unmatched"] == ["gone/missing.jpg"]
        finished = next(e for e in ledger.read(s, kind="ingest.finished"))
        assert json.loads(finished.payload or "{}")["images_no_face"] == 1
        # the warning is kept with the job but is not a rejection
        tally = job_face_tally(s, summary.job_id, world.app.model_id)
        rejected, warned = job_notes(s, summary.job_id)
    assert (tally["images_no_face"], tally["images_one_face"],
            tally["images_several_faces"]) == (1, 1, 1)
    assert [Path(p).name for p in tally["no_face_images"]] == ["noise.png"]
    assert rejected == [] and [w.path for w in warned] == ["gone/missing.jpg"]


def test_job_status_reports_stage_faces_and_warnings(world: World, tmp_path: Path) -> None:
    """The service's job status, read while the models load and after the job ends."""
    manifest = mixed_folder(tmp_path / "in")
    runner = JobRunner(world.app)
    loading, release = threading.Event(), threading.Event()
    real_pipeline = world.app.pipeline

    def slow_pipeline() -> FacePipeline:
        loading.set()
        release.wait(30)  # hold the "loading models" stage until the test has looked
        return real_pipeline()

    world.app.pipeline = slow_pipeline  # type: ignore[method-assign]
    try:
        job_id = runner.submit(world.admin, tmp_path / "in", "gallery", manifest)
        assert loading.wait(30)
        live = runner.status(world.admin, job_id)
        assert (live["status"], live["stage"], live["processed"]) == ("running",
                                                                      "loading models", 0)
        assert [w["path"] for w in live["warnings"]] == ["gone/missing.jpg"]
        release.set()
        runner.wait(job_id, timeout=120)
    finally:
        release.set()
        runner.shutdown()
    done = runner.status(world.admin, job_id)
    assert (done["status"], done["stage"]) == ("done", "done")
    assert (done["images_no_face"], done["images_one_face"],
            done["images_several_faces"]) == (1, 1, 1)
    assert [Path(p).name for p in done["no_face_images"]] == ["noise.png"]
    assert done["rejected"] == 0 and done["rejections"] == []
    assert done["warnings"][0]["reason"].endswith("gone/missing.jpg matches no file in this ingest")
    listed = runner.recent(world.admin)[0]  # the listing skips the per-image tally of finished jobs
    assert listed["id"] == job_id and listed["images_no_face"] is None
    assert listed["warnings"] == done["warnings"]
    with pytest.raises(PermissionDeniedError):  # the runner checks "jobs.read" itself
        runner.status(world.investigator, job_id)
    with pytest.raises(PermissionDeniedError):
        runner.recent(world.investigator)


# --- issue 10 part 13: Netpbm and other images recognised by content ---

def test_netpbm_and_unnamed_images_ingested_by_content(world: World, tmp_path: Path) -> None:
    d = tmp_path / "scans"
    d.mkdir()
    (d / "grace.pgm").write_bytes(pgm(grace_hopper()))
    (d / "astro.ppm").write_bytes(ppm(astronaut_face()))
    (d / "pair.pnm").write_bytes(plain_ppm(collage()))
    (d / "scan0001").write_bytes(pgm16(astronaut_face().rotate(5)))  # no extension
    (d / "upload.dat").write_bytes(encode(grace_hopper().resize((300, 380))))  # JPEG content
    (d / "text.pgm").write_text("P5 but not really\n")
    (d / "notes.txt").write_text("a stray file")
    z = tmp_path / "more.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("m/hopper.pgm", pgm(grace_hopper().resize((260, 320))))
        zf.writestr("m/IMG_0007", encode(astronaut_face().resize((300, 265))))
        zf.writestr("m/readme.md", "# not a photo")
    summary = Ingest(world.app, world.admin).run([d, z], "gallery")
    got = {Path(r["path"].split("!")[-1]).name: r["code"] for r in summary.rejections}
    assert got == {"text.pgm": "bad_image", "notes.txt": "unsupported_type",
                   "readme.md": "unsupported_type"}
    assert summary.added == 7
    assert (summary.images_no_face, summary.images_one_face,
            summary.images_several_faces) == (0, 6, 1)
    with world.app.db.read() as s:
        formats = sorted(s.execute(select(ImageRow.format)).scalars())
        stored = sorted(s.execute(select(ImageRow.stored_path)
                                  .where(ImageRow.format == "PPM")).scalars())
    assert formats.count("PPM") == 5 and formats.count("JPEG") == 2
    assert all(p.endswith(".pnm") for p in stored)
    assert world.app.files.read(stored[0])[:1] == b"P"  # the original bytes are kept
