"""The data home at rest (issue 12, part 10): the folder 0700 and its files 0600, whatever the
umask, and looser modes repaired (with a warning) when faceledger starts (CLI and serve)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from faceledger.core import Faceledger
from faceledger.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_data_home_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # what a login shell usually has
    try:
        app = Faceledger(Settings(home=tmp_path / "home", workers=1))
        app.initialise("root", "root-password-1")
        stored = app.files.put("images/ab/abcdef.jpg", b"\xff\xd8 not really a jpeg")
        app.indexes.flush()
        app.close()
    finally:
        os.umask(old)
    home = tmp_path / "home"
    loose = [f"{p.relative_to(home)} {oct(_mode(p))}" for p in [home, *home.rglob("*")]
             if _mode(p) & 0o077]
    assert loose == []
    assert _mode(home) == 0o700 and _mode(home / "faceledger.db") == 0o600
    assert _mode(stored) == 0o600 and _mode(stored.parent) == 0o700


def test_start_up_repairs_loose_modes_with_a_warning(tmp_path: Path) -> None:
    home = tmp_path / "home"
    app = Faceledger(Settings(home=home, workers=1))
    _, token = app.initialise("root", "root-password-1")
    app.close()
    os.chmod(home, 0o755)
    os.chmod(home / "faceledger.db", 0o644)
    os.chmod(home / "images", 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update(FACELEDGER_HOME=str(home), FACELEDGER_TOKEN=token)
    proc = subprocess.run([sys.executable, "-m", "faceledger", "users", "list"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "root" in proc.stdout
    assert "permissions" in proc.stderr and "faceledger.db" in proc.stderr
    assert _mode(home) == 0o700
    assert _mode(home / "faceledger.db") == 0o600
    assert _mode(home / "images") == 0o700
