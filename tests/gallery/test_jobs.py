"""The ingest job runner as a service: permissions, a failing job, listing, unknown jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from faceledger.db.schema import IngestJob
from faceledger.errors import NotFoundError, PermissionDeniedError
from faceledger.faces.pipeline import FacePipeline
from faceledger.gallery.jobs import JobRunner
from tests.conftest import World
from tests.photos import astronaut_face, encode


def _staged(tmp_path: Path, name: str) -> Path:
    """An upload as the HTTP front ends stage it: <uploads>/<random>/files/..."""
    files = tmp_path / "uploads" / name / "files"
    files.mkdir(parents=True)
    (files / "a.jpg").write_bytes(encode(astronaut_face()))
    return files


def _jobs(world: World) -> int:
    with world.app.db.read() as s:
        return int(s.execute(select(func.count(IngestJob.id))).scalar_one())


def test_only_ingesters_start_jobs_and_only_job_readers_follow_them(world: World,
                                                                     tmp_path: Path) -> None:
    runner = JobRunner(world.app)
    try:
        with pytest.raises(PermissionDeniedError, match="Only admins can ingest photos"):
            runner.submit(world.investigator, _staged(tmp_path, "x"), "gallery", None)
        assert _jobs(world) == 0  # refused before the job was opened
        with pytest.raises(NotFoundError, match="unknown collection"):
            runner.submit(world.admin, _staged(tmp_path, "y"), "nowhere", None)
        assert _jobs(world) == 0
        with pytest.raises(NotFoundError, match="no ingest job 42"):
            runner.status(world.admin, 42)
        with pytest.raises(PermissionDeniedError, match="follow ingest jobs"):
            runner.status(world.auditor, 42)
    finally:
        runner.shutdown()


def test_a_failing_job_is_marked_failed_and_its_upload_removed(world: World,
                                                               tmp_path: Path) -> None:
    def broken() -> FacePipeline:
        raise RuntimeError("models missing")

    world.app.pipeline = broken  # type: ignore[method-assign]
    runner = JobRunner(world.app)
    staged = _staged(tmp_path, "upload-1")
    try:
        job_id = runner.submit(world.admin, staged, "gallery", None)
        runner.wait(job_id, timeout=60)  # the failure is logged and recorded, not raised
    finally:
        runner.shutdown()
    job = runner.status(world.admin, job_id)
    assert (job["status"], job["stage"], job["total"], job["added"]) == ("failed", "failed", 1, 0)
    assert not staged.parent.exists()  # the upload's own folder, not just its files/


def test_recent_lists_newest_first_without_the_per_image_tally(world: World,
                                                                tmp_path: Path) -> None:
    runner = JobRunner(world.app)
    try:
        ids = [runner.submit(world.admin, _staged(tmp_path, f"u{i}"), "gallery", None)
               for i in range(3)]
        for job_id in ids:
            runner.wait(job_id, timeout=120)
    finally:
        runner.shutdown()
    listed = runner.recent(world.admin, limit=2)
    assert [j["id"] for j in listed] == ids[::-1][:2]
    assert all(j["status"] == "done" and j["images_one_face"] is None for j in listed)
    first = runner.status(world.admin, ids[0])
    assert (first["added"], first["faces"], first["images_one_face"]) == (1, 1, 1)
    later = runner.status(world.admin, ids[1])
    assert (later["added"], later["duplicates"]) == (0, 1)  # the same photo again
