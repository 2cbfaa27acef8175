"""`faceledger ingest` as a user runs it: faces per image, unmatched manifest rows, stages,
Netpbm scans (issue 10 parts 7 and 13). Real processes, real models, a temporary data home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
