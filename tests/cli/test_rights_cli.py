"""`subject`, `retention` and `policy show` refuse and answer as the API does: the rules are the
services' (the real CLI app, in-process, on a real database; ``main`` maps the error raised to
its exit code and message)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from faceledger.cli.main import app
from faceledger.errors import NoFaceError, PermissionDeniedError, ValidationError
from faceledger.gallery.ingest import Ingest
from faceledger.governance.policy import describe, load_policy
from tests.conftest import World
from tests.photos import astronaut_face, encode, grace_hopper, noise_image, variants


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


def test_optout_shows_the_faces_it_withholds_and_asks(world: World, tmp_path: Path) -> None:
    """Issue 12, point 13: `subject optout PHOTO...` lists the gallery faces it will withhold
    and asks before recording (--yes: no question); several photos make one opt-out."""
    src = tmp_path / "g"
    src.mkdir()
    (src / "astro.jpg").write_bytes(encode(astronaut_face()))
    (src / "grace.jpg").write_bytes(encode(grace_hopper()))
    Ingest(world.app, world.admin).run([src], "gallery")
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(variants(astronaut_face())["mirror"])
    b.write_bytes(variants(astronaut_face())["darker"])
    res = CliRunner().invoke(app, ["subject", "optout", str(a), str(b), "--reference", "R-1"],
                             env={"FACELEDGER_HOME": str(world.app.settings.home),
                                  "FACELEDGER_TOKEN": world.admin_token}, input="n\n")
    assert res.exit_code == 0, res.output
    assert "From 2 photo(s), the opt-out will withhold 1 gallery face(s)" in res.output
    assert "Nothing recorded." in res.output
    res = _run(world, "subject", "optout", str(a), str(b), "--reference", "R-1", "--yes",
               "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["photos"] == 2 and out["withheld_faces"] == 1 and out["optout_id"] >= 1
    assert out["threshold"] == 0.911115
