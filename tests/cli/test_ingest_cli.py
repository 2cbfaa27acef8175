"""`faceledger ingest` as a user runs it: faces per image, unmatched manifest rows, stages,
Netpbm scans (issue 10 parts 7 and 13). Real processes, real models, a temporary data home."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from faceledger.cli.gallery import summary_lines
from faceledger.gallery.ingest import IngestSummary
from tests.netpbm import pgm, ppm
from tests.photos import astronaut_face, collage, encode, grace_hopper, noise_image


class CLI:
    def __init__(self, home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
        self.env.update(FACELEDGER_HOME=str(home), FACELEDGER_WORKERS="2")

    def __call__(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, **({"FACELEDGER_TOKEN": token} if token else {}))
        proc = subprocess.run([sys.executable, "-m", "faceledger", *args], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stderr}"
        return proc


@pytest.fixture
def admin(tmp_path: Path) -> tuple[CLI, str]:
    cli = CLI(tmp_path / "home")
    token = cli("init", "--admin", "boss").stdout.strip().splitlines()[-1]
    cli("collections", "add", "scans", "--legal-basis", "custody images, s.64A", token=token)
    return cli, token


def test_ingest_reports_faces_per_image_warnings_and_stages(admin: tuple[CLI, str],
                                                            tmp_path: Path) -> None:
    cli, token = admin
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (photos / "pair.jpg").write_bytes(encode(collage()))
    (photos / "wall.png").write_bytes(noise_image(7))
    (photos / "grace.pgm").write_bytes(pgm(grace_hopper()))  # Netpbm, by content
    (photos / "manifest.csv").write_text(
        "path,source_url,page_url,title,captured_at\n"
        "astronaut.jpg,https://example.org/a.jpg,,Astronaut,\n"
        "typo/astronot.jpg,https://example.org/x.jpg,,Typo,\n")
    run = cli("ingest", str(photos), "--collection", "scans",
              "--manifest", str(photos / "manifest.csv"), token=token)
    out = run.stdout
    assert "4 images added, 4 faces" in out and "0 rejected" in out
    assert "Faces per added image: 1 with no face, 2 with one, 1 with several" in out
    assert f"no face found in {photos / 'wall.png'}" in out
    assert ("warning: manifest.csv line 3: typo/astronot.jpg matches no file in this ingest"
            in out)
    # no live bar on a pipe: each stage is said on stderr, models first
    stages = [ln for ln in run.stderr.splitlines() if ln.startswith("ingest: ")]
    assert [s.split(" (")[0] for s in stages] == [
        "ingest: loading models", "ingest: processing", "ingest: indexing", "ingest: done"]
    assert stages[0] == "ingest: loading models (0/4 files)"

    more = tmp_path / "more"
    more.mkdir()
    (more / "astro.ppm").write_bytes(ppm(astronaut_face().rotate(4)))
    (more / "blank").write_bytes(noise_jpeg(11))  # no name, JPEG content
    (more / "m.jsonl").write_text(json.dumps({"path": "gone.jpg"}) + "\n")
    summary = json.loads(cli("ingest", str(more), "--collection", "scans", "--manifest",
                             str(more / "m.jsonl"), "--json", token=token).stdout)
    assert (summary["added"], summary["rejected"]) == (2, 0)
    assert (summary["images_no_face"], summary["images_one_face"],
            summary["images_several_faces"]) == (1, 1, 0)
    assert summary["no_face_images"] == [str(more / "blank")]
    assert summary["warnings"] == [{"path": "gone.jpg", "code": "manifest_unmatched",
                                    "reason": "m.jsonl line 1: gone.jpg matches no file in "
                                              "this ingest"}]
    assert summary["stage"] == "done"


def noise_jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return encode(Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)))


def test_text_summary_names_at_most_100_images_with_no_face() -> None:
    summary = IngestSummary(job_id=3, collection="scans", total=105, added=105)
    for i in range(105):
        summary.count_image(f"/photos/wall{i:03d}.png", 0)
    summary.warnings.append({"path": "x.jpg", "code": "manifest_unmatched",
                             "reason": "m.csv line 2: x.jpg matches no file in this ingest"})
    lines = summary_lines(summary)
    assert lines[1] == "Faces per added image: 105 with no face, 0 with one, 0 with several"
    named = [ln for ln in lines if ln.startswith("  no face found in ")]
    assert len(named) == 100 and named[-1].endswith("wall099.png")
    assert "  ... and 5 more images with no face (--json lists them all)" in lines
    assert lines[-1] == "  warning: m.csv line 2: x.jpg matches no file in this ingest"


# --- issue 12 part 11: kill PID (SIGTERM) stops the workers and marks the job interrupted ---

def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, from /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            out[int(d.name)] = (int(fields[1]), fields[0])
    return out


def _descendants(pid: int) -> set[int]:
    procs, found, todo = _processes(), set(), [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _) in procs.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    procs = _processes()
    return {p for p in pids if p in procs and procs[p][1] not in ("Z", "X")}


def _query(home: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{home / 'faceledger.db'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def test_sigterm_stops_workers_marks_job_interrupted_and_rerun_finishes(
        admin: tuple[CLI, str], tmp_path: Path) -> None:
    cli, token = admin
    home = Path(cli.env["FACELEDGER_HOME"])
    photos = tmp_path / "many"
    photos.mkdir()
    base = [astronaut_face().resize((1020, 900)), grace_hopper().resize((768, 1000))]
    for i in range(40):  # distinct bytes, one face each, big enough to take a while
        img = ImageEnhance.Brightness(base[i % 2]).enhance(0.8 + i * 0.01)
        (photos / f"p{i:02d}.jpg").write_bytes(encode(img))
    env = dict(cli.env, FACELEDGER_TOKEN=token, FACELEDGER_COMMIT_EVERY="2")
    proc = subprocess.Popen([sys.executable, "-m", "faceledger", "ingest", str(photos),
                             "--collection", "scans"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline, processed = time.time() + 180, 0
    while time.time() < deadline and processed == 0 and proc.poll() is None:
        time.sleep(0.2)
        rows = _query(home, "SELECT processed FROM ingest_jobs") if (
            home / "faceledger.db").exists() else []
        processed = int(rows[0][0]) if rows else 0  # type: ignore[call-overload]
    children = _descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert 0 < processed < 40, "the ingest was not caught part-way"
    assert len(children) >= 2  # the two workers (and multiprocessing's resource tracker)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM after" in err and "run the same command again" in err
    assert "Traceback" not in err
    survivors = _alive(children)
    for _ in range(50):
        if not survivors:
            break
        time.sleep(0.2)
        survivors = _alive(children)
    assert survivors == set(), f"left running: {survivors}"
    assert _query(home, "SELECT status FROM ingest_jobs") == [("interrupted",)]
    entry = _query(home, "SELECT payload FROM ledger WHERE kind = 'ingest.interrupted'")
    assert len(entry) == 1 and json.loads(str(entry[0][0]))["signal"] == "SIGTERM"

    summary = json.loads(cli("ingest", str(photos), "--collection", "scans", "--json",
                             token=token).stdout)
    assert summary["added"] + summary["duplicates"] == 40 and summary["added"] < 40
    final = json.loads(cli("collections", "list", "--json", token=token).stdout)[0]
    assert (final["images"], final["faces"]) == (40, 40)
    assert _query(home, "SELECT status FROM ingest_jobs ORDER BY id") == [("interrupted",),
                                                                          ("done",)]
