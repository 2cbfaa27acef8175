"""Property-based API fuzz (issue 12, part 7): schemathesis generates requests from
/api/v1/openapi.json (valid and invalid: boundary values, wrong types, huge numbers, odd strings
and files, unexpected methods) against a real server on a throwaway data home, once with the token
of each role. None may answer a server error (5xx) or leave a traceback in the server's log.

Bounded and deterministic: schemathesis' deterministic generation (no random seed), EXAMPLES
cases per operation and phase, no example database, no shrinking, no stateful phase. It runs the
schemathesis CLI (its stable interface; its pytest plugin does not load under this pytest), so a
failure prints the exact command to rerun by hand."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from faceledger.api.docs import OPENAPI_URL
from tests.live import LiveServer, serve

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "fuzz"  # outputs, JUnit
EXAMPLES = 8  # per operation and phase: the module (server start included) takes ~2 minutes
# Users fuzzed, one per role; the admin last, as its fuzz erases gallery faces.
ROLES = {"investigator": "ivy", "supervisor": "sue", "auditor": "audrey", "admin": "root"}
TARGET = "fuzz-target"  # the only account the fuzz may disable or re-token
# Generated requests fail on purpose, many from one address: the fuzz's server must not back
# off, or the fuzz would test the throttle instead of the routes (tests/accounts cover it).
UNTHROTTLED = {"FACELEDGER_SIGNIN_FREE_FAILURES": "1000000",
               "FACELEDGER_SIGNIN_ADDRESS_FREE_FAILURES": "1000000",
               "FACELEDGER_SIGNIN_LOCKOUT_AFTER": "0"}
CONFIG = f"""\
[generation]
database = "none"

# Real user names are in GET /users answers, which the fuzz reuses: only the fuzz's own
# account may be disabled or given a new token, so the role tokens keep working.
[[operations]]
include-path-regex = "^/api/v1/users/\\\\{{name\\\\}}/"
parameters = {{ "path.name" = "{TARGET}" }}
"""


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("fuzz"), **UNTHROTTLED) as server:
        with server.client("root") as c:
            made = c.post("/api/v1/users", json={"name": TARGET, "role": "investigator"})
            assert made.status_code == 201, made.text
        yield server


def schemathesis_command(server: LiveServer, user: str, config: Path, report: Path) -> list[str]:
    token = server.users[user]["token"]
    return [str(Path(sys.executable).parent / "schemathesis"), "--no-color",
            "--config-file", str(config), "run", server.url + OPENAPI_URL,
            "--header", f"Authorization: Bearer {token}",
            "--checks", "not_a_server_error",
            "--phases", "examples,coverage,fuzzing",
            "--max-examples", str(EXAMPLES),
            "--generation-deterministic", "--no-shrink",
            "--generation-with-security-parameters", "false",
            "--workers", "1", "--request-timeout", "60",
            "--report", "junit", "--report-junit-path", str(report)]


@pytest.mark.parametrize("role", list(ROLES))
def test_api_fuzz_answers_no_server_error(fuzz_server: LiveServer, tmp_path: Path,
                                          role: str) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cmd = schemathesis_command(fuzz_server, ROLES[role], config, ARTIFACTS / f"{role}.xml")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = done.stdout + done.stderr
    (ARTIFACTS / f"{role}.txt").write_text(out)
    shown = " ".join("Authorization: Bearer …" if a.startswith("Authorization") else a for a in cmd)
    assert done.returncode == 0, f"{shown}\n{out[-12000:]}"
    counted = re.search(r"(\d+) generated, (\d+) passed", out)
    assert counted, out[-4000:]
    generated, passed = int(counted.group(1)), int(counted.group(2))
    # Every operation was reached, with many cases each (a fuzz that generated nothing passes).
    assert generated == passed and generated >= 300, out[-4000:]
    selected, tested = re.search(r"Selected: (\d+)/\d+", out), re.search(r"Tested: (\d+)", out)
    assert selected and tested and int(tested.group(1)) == int(selected.group(1)) >= 30, out[-4000:]


def test_fuzz_left_no_traceback_and_the_tokens_usable(fuzz_server: LiveServer) -> None:
    """After the fuzz: the server logged no traceback (an error swallowed into a 4xx still is a
    bug), and every role's token still works (so the fuzz did not bounce off 401s)."""
    log = (fuzz_server.home.parent / "server.log").read_text(errors="replace")
    assert "Traceback" not in log, log[max(0, log.find("Traceback") - 1500):][:8000]
    assert " 500 " not in log
    for user in ROLES.values():
        r = httpx.get(fuzz_server.url + "/api/v1/me", timeout=30,
                      headers={"authorization": f"Bearer {fuzz_server.users[user]['token']}"})
        assert r.status_code == 200, (user, r.text)
