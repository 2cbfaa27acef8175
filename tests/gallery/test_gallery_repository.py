"""The gallery repository's batch write: it returns what it did and changes nothing passed in."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import func, select

from faceledger.db.schema import Face, ImageSource, IngestJob, LedgerEntry, Rejection
from faceledger.faces.pipeline import ImageResult
from faceledger.gallery.ingest import Ingest
from faceledger.gallery.repository import BatchResult, JobTotals, PendingImage, write_batch
from faceledger.gallery.sources import Provenance, SourceItem
from faceledger.governance import ledger
from tests.conftest import BOTH_DATABASES, World
from tests.photos import astronaut_face, collage, encode

DB_BACKENDS = BOTH_DATABASES  # every test here runs on SQLite and on PostgreSQL


def _job(world: World, tmp_path: Path) -> int:
    (tmp_path / "empty").mkdir()
    return Ingest(world.app, world.admin).prepare([tmp_path / "empty"], "gallery").summary.job_id


def _pending(world: World, name: str, data: bytes, url: str | None = None) -> PendingImage:
    result = world.app.pipeline().process(data)
    assert isinstance(result, ImageResult)
    return PendingImage(name, _sha(data), data, result, Provenance(source_url=url))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_write_batch_returns_counts_and_leaves_its_inputs_alone(world: World,
                                                                tmp_path: Path) -> None:
    job_id = _job(world, tmp_path)
    one, two = encode(astronaut_face()), encode(collage())
    images = [_pending(world, "a.jpg", one), _pending(world, "pair.jpg", two)]
    early = (SourceItem("copy-of-a.jpg", "copy-of-a.jpg"), _sha(one), Provenance("https://x/a"))
    later = (SourceItem("unseen.jpg", "unseen.jpg"), "f" * 64, Provenance())
    dupes = [early, later]
    rejects = [Rejection(job_id=job_id, path="bad.jpg", code="bad_image", reason="broken")]
    before = JobTotals(processed=6, added=1, duplicates=2, rejected=0, faces=3)

    result = write_batch(world.app, job_id, 1, "root", images, dupes, rejects, before)

    assert isinstance(result, BatchResult)
    faces_in_pair = len(images[1].result.faces)
    assert faces_in_pair >= 2
    assert result.added == (("a.jpg", 1), ("pair.jpg", faces_in_pair))
    assert result.faces == 1 + faces_in_pair
    assert (result.duplicates, result.new_sources, result.rejected) == (1, 1, 1)
    assert result.pending == (later,)  # its original is not committed: for the next batch
    assert dupes == [early, later] and len(images) == 2  # the caller's lists are untouched
    assert sum(len(ids) for _, ids, _, _ in result.index_adds) == result.faces
    with world.app.db.read() as s:
        job = s.get(IngestJob, job_id)
        assert job is not None
        assert (job.processed, job.added, job.duplicates, job.rejected, job.faces) == (
            6, 1 + 2, 2 + 1, 1, 3 + result.faces)
        assert s.execute(select(func.count(Face.id))).scalar_one() == result.faces
        assert s.execute(select(func.count(ImageSource.id))).scalar_one() == 3
        entry = s.execute(select(LedgerEntry).where(LedgerEntry.kind == "ingest.batch")
                          .order_by(LedgerEntry.seq.desc()).limit(1)).scalar_one()
        assert entry.payload is not None
        payload = json.loads(entry.payload)
        assert payload["duplicates"] == 1 and payload["new_sources"] == 1
        assert payload["faces"] == result.faces and payload["job"] == job_id
        assert payload["rejected"] == [{"path": "bad.jpg", "code": "bad_image"}]
        assert ledger.verify(s).ok


def test_write_batch_counts_an_image_a_peer_committed_as_a_duplicate(world: World,
                                                                     tmp_path: Path) -> None:
    job_id = _job(world, tmp_path)
    img = _pending(world, "a.jpg", encode(astronaut_face()))
    first = write_batch(world.app, job_id, 1, "root", [img], [], [], JobTotals())
    again = write_batch(world.app, job_id, 1, "root", [img], [], [],
                        JobTotals(processed=2, added=1, faces=1))
    assert (first.added, first.duplicates) == ((("a.jpg", 1),), 0)
    assert (again.added, again.duplicates, again.faces, again.index_adds) == ((), 1, 0, ())
    with world.app.db.read() as s:
        job = s.get(IngestJob, job_id)
        assert job is not None and (job.added, job.duplicates, job.faces) == (1, 1, 1)


def test_face_sources_reads_each_face_with_its_image_sources_in_order(world: World,
                                                                    tmp_path: Path) -> None:
    """The search's provenance read (columns only): every source of a face's image, oldest
    first, the collection's name, and nothing for a face id no longer stored."""
    from faceledger.gallery.repository import face_sources

    job_id = _job(world, tmp_path)
    data = encode(astronaut_face())
    first = _pending(world, "a.jpg", data, "https://x/first")
    second = (SourceItem("copy.jpg", "copy.jpg"), _sha(data), Provenance("https://x/second"))
    write_batch(world.app, job_id, 1, "root", [first], [second], [], JobTotals())
    with world.app.db.read() as s:
        face = s.execute(select(Face)).scalars().one()
        got = face_sources(s, [face.id, face.id + 1000])
        image = face.image
    assert set(got) == {face.id}
    row = got[face.id]
    assert (row.image_id, row.image_path, row.image_sha256) == (image.id, image.stored_path,
                                                                image.sha256)
    assert (row.thumbnail_path, row.box, row.collection) == (face.thumbnail_path,
                                                             list(face.box), "gallery")
    assert [x["source_url"] for x in row.sources] == ["https://x/first", "https://x/second"]
    assert [x["original_path"] for x in row.sources] == ["a.jpg", "copy.jpg"]
