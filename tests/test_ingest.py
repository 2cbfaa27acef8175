from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from faceledger import ledger
from faceledger.db.schema import Face, ImageSource, Rejection
from faceledger.db.schema import Image as ImageRow
from faceledger.errors import NotFoundError, PermissionDeniedError, ValidationError
from faceledger.ingest import Ingest
from tests.conftest import World
from tests.photos import astronaut, astronaut_face, collage, encode, grace_hopper


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
