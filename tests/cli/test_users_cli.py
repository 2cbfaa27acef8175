"""`faceledger users unlock NAME` (issue 12, part 3): an admin lifts a sign-in lock-out from the
command line, ledgered once; a second unlock is a no-op."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faceledger.accounts import service as account_services
from faceledger.accounts import websessions
from faceledger.core import Faceledger
from faceledger.errors import AuthenticationError, TooManyAttemptsError
from faceledger.governance import ledger
from faceledger.settings import Settings


def test_users_unlock(tmp_path: Path) -> None:
    home = tmp_path / "home"
    app = Faceledger(Settings(home=home, workers=1, signin_lockout_after=2))
    _, token = app.initialise("root", "root-password-1")
    admin = app.authenticate(token)
    account_services.add_user(app, admin, "ivy", "investigator", "ivy-password-1")
    for _ in range(2):
        with pytest.raises(AuthenticationError):
            websessions.open_session(app, "ivy", "wrong-password", "10.1.1.1")
    with pytest.raises(TooManyAttemptsError):
        websessions.open_session(app, "ivy", "ivy-password-1", "10.1.1.1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACELEDGER_")}
    env.update(FACELEDGER_HOME=str(home), FACELEDGER_TOKEN=token)

    def unlock() -> dict[str, object]:
        proc = subprocess.run([sys.executable, "-m", "faceledger", "users", "unlock", "ivy",
                               "--json"], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        out: dict[str, object] = json.loads(proc.stdout)
        return out

    assert unlock() == {"user": "ivy", "unlocked": True}
    assert unlock() == {"user": "ivy", "unlocked": False}
    assert websessions.open_session(app, "ivy", "ivy-password-1", "10.1.1.1")[0]
    with app.db.read() as s:
        unlocked = [ledger.entry_dict(e)["payload"]
                    for e in ledger.read(s, kind="signin.unlocked", limit=100)]
    assert unlocked == [{"user": "ivy", "by": "root"}]
    app.close()
