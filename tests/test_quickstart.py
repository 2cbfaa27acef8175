"""The README's quickstart, run as a script: the code block is read from README.md and run with
bash over a temporary data home, both on a fresh one and after `make run` has initialised it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.photos import astronaut_face, encode, grace_hopper

REPO = Path(__file__).resolve().parents[1]


def quickstart_block() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Five-minute quickstart", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no ```sh block in the README's quickstart"
    return match.group(1)


def make_run_init() -> list[str]:
    """The init step of the Makefile's `run` target, as `make run` runs it."""
    recipe = (REPO / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    line = next(x for x in recipe.splitlines() if " init" in x)
    words = line.strip().lstrip("@").replace("$(VENV)", str(REPO / ".venv")).split()
    return words


@pytest.mark.parametrize("after_make_run", [False, True], ids=["fresh", "after-make-run"])
def test_readme_quickstart_runs_as_a_script(tmp_path: Path, after_make_run: bool) -> None:
    block = quickstart_block()
    assert "$PHOTOS" in block and "$PROBE" in block  # paths come from variables at its top
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(REPO / ".venv")  # `make install` made it
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "astronaut.jpg").write_bytes(encode(astronaut_face()))
    (photos / "grace.jpg").write_bytes(encode(grace_hopper()))
    (photos / "manifest.csv").write_text(
        "path,source_url,page_url,title,captured_at\n"
        "astronaut.jpg,https://example.org/a.jpg,https://example.org/a,Astronaut,2023-04-01T12:00:00Z\n"
        "grace.jpg,https://example.org/g.jpg,https://example.org/g,Grace Hopper,\n")
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(encode(grace_hopper().resize((300, 380))))
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update(FACELEDGER_HOME=str(home), FACELEDGER_WORKERS="1", PHOTOS=str(photos),
               PROBE=str(probe), HOME=str(tmp_path))
    if after_make_run:
        made = subprocess.run(make_run_init(), env=env, cwd=work, capture_output=True,
                              text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        assert (home / "first-admin.txt").exists()
    script = work / "quickstart.sh"
    script.write_text("set -euo pipefail\n" + block)
    run = subprocess.run(["bash", str(script)], env=env, cwd=work, capture_output=True,
                         text=True, timeout=600)
    out = run.stdout
    assert run.returncode == 0, f"quickstart failed ({run.returncode}):\n{out}\n{run.stderr}"
    assert ("already initialised" in out) == after_make_run
    assert "2 images added, 2 faces" in out
    assert "Web password for ivy set" in out
    # The probe (Grace Hopper) finds her photo first, the astronaut after.
    assert out.index("https://example.org/g.jpg") < out.index("https://example.org/a.jpg")
    assert "OK:" in out  # ledger verify
