"""`subject`, `retention` and `policy show` refuse and answer as the API does: the rules are the
services' (the real CLI app, in-process, on a real database; ``main`` maps the error raised to
its exit code and message)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from faceledger.cli.main import app
from faceledger.errors import NoFaceError, PermissionDeniedError, ValidationError
from faceledger.governance.policy import describe, load_policy
from tests.conftest import World
from tests.photos import noise_image


def _run(world: World, *args: str, token: str | None = None) -> Result:
    env = {"FACELEDGER_HOME": str(world.app.settings.home),
           "FACELEDGER_TOKEN": token or world.admin_token}
    return CliRunner().invoke(app, list(args), env=env)


def test_subject_commands_apply_the_service_rules(world: World, tmp_path: Path) -> None:
    photo = tmp_path / "p.jpg"
    photo.write_bytes(noise_image())
    for extra in (["optout"], ["erase", "--yes"]):  # refused as the API and the web refuse it
        res = _run(world, "subject", *extra, str(photo), "--reference", "R" * 201)
        assert isinstance(res.exception, ValidationError), res.output
        assert "200 characters at most" in res.exception.message
        assert res.exception.code == "invalid_request"
    res = _run(world, "subject", "access", str(photo))
    assert isinstance(res.exception, NoFaceError)
    res = _run(world, "subject", "access", str(photo), token=world.investigator_token)
    assert isinstance(res.exception, PermissionDeniedError)


def test_retention_and_policy_show(world: World) -> None:
    res = _run(world, "retention", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"probes": [], "results": [], "unauthorised": []}
    res = _run(world, "retention", token=world.investigator_token)
    assert isinstance(res.exception, PermissionDeniedError)
    assert "purge data" in res.exception.message
    res = _run(world, "policy", "show", token=world.investigator_token)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == describe(load_policy(None).policy)
