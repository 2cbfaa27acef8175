"""scripts/ensure-browser: what `make test` runs so the browser tests have a Chromium on a fresh machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ensure-browser"


def _run(tmp_path: Path, chromium: Path, python: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"  # a PATH with no apt-get and no sudo: nothing can be installed
    bin_dir.mkdir(exist_ok=True)
    for tool in ("id",):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "CHROMIUM_BIN": str(chromium), "HOME": str(tmp_path)}
    return subprocess.run(["/bin/bash", str(SCRIPT), python], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_present_browser_is_used_without_installing(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    os.chmod(fake, 0o755)
    done = _run(tmp_path, fake, "/bin/false")
    assert done.returncode == 0, done.stderr
    assert "installing" not in done.stderr


def test_clear_message_when_nothing_can_install_a_browser(tmp_path: Path) -> None:
    done = _run(tmp_path, tmp_path / "missing-chromium", "/bin/false")
    assert done.returncode == 1
    assert "missing-chromium is missing" in done.stderr
    assert "apt-get install chromium" in done.stderr and "playwright install chromium" in done.stderr
