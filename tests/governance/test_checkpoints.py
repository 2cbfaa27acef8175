"""Signed checkpoints (faceledger/governance/checkpoints.py) on a real SQLite data home with the
real key file: made on demand and when due, each ledgered, each verifying with the published
log key, and never signed with a silently replaced key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from faceledger.accounts.users import Principal
from faceledger.cli.main import app as cli
from faceledger.core import Faceledger
from faceledger.db.schema import LedgerCheckpoint, LedgerEntry
from faceledger.errors import ConfigError, NotFoundError, PermissionDeniedError
from faceledger.governance import checkpoints, ledger, merkle, notes, signing_key, tree
from tests.conftest import World, make_settings
from tests.tamper import fill, head_seq


@pytest.fixture
def timed(tmp_path: Path) -> Iterator[tuple[Faceledger, Principal]]:
    """A data home that checkpoints every 10 entries or 5 minutes."""
    app = Faceledger(make_settings(tmp_path / "home", checkpoint_every_entries=10,
                                   checkpoint_every_minutes=5))
    _, token = app.initialise("root")
    yield app, app.authenticate(token)
    app.close()


def _cli_vkey(world: World) -> str:
    env = {"FACELEDGER_HOME": str(world.app.settings.home), "FACELEDGER_TOKEN": world.admin_token}
    res = CliRunner().invoke(cli, ["ledger", "key"], env=env)
    assert res.exit_code == 0, res.stderr
    return res.stdout.splitlines()[0]


def test_checkpoint_on_demand_is_ledgered_and_verifies_with_the_published_key(world: World
                                                                              ) -> None:
    fill(world.app, 20)
    size = head_seq(world.app)
    cp = checkpoints.create_checkpoint(world.app, world.auditor)
    assert cp["size"] == size and cp["reason"] == "on demand"
    with world.app.db.read() as s:
        leaves = [tree.leaf_for(e) for e in
                  s.execute(select(LedgerEntry).where(LedgerEntry.seq <= size)
                            .order_by(LedgerEntry.seq)).scalars()]
        entry = s.get(LedgerEntry, size + 1)  # the checkpoint's own entry comes next
        assert entry is not None
        logged = ledger.entry_dict(entry)
    assert cp["root_hash"] == merkle.root_from_leaves(leaves).hex()
    assert logged["kind"] == "ledger.checkpoint" and logged["actor"] == world.auditor.name
    assert logged["payload"]["size"] == size
    assert logged["payload"]["root_hash"] == cp["root_hash"]
    assert logged["payload"]["checkpoint_id"] == cp["id"]
    vkey = _cli_vkey(world)  # what `faceledger ledger key` publishes
    assert vkey == checkpoints.log_key(world.app, world.investigator).vkey
    opened = notes.open_note(cp["note"], [notes.parse_vkey(vkey)])
    body = notes.parse_checkpoint(opened.body)
    assert (body.size, body.root.hex()) == (size, cp["root_hash"])
    assert body.origin == vkey.split("+")[0]
    latest = checkpoints.latest_checkpoint(world.app, world.investigator)
    assert latest["id"] == cp["id"] and latest["cosignatures"] == []


def test_investigators_cannot_sign_and_there_is_none_before_the_first(world: World) -> None:
    with pytest.raises(NotFoundError):
        checkpoints.latest_checkpoint(world.app, world.investigator)
    with pytest.raises(PermissionDeniedError):
        checkpoints.create_checkpoint(world.app, world.investigator)
    assert checkpoints.list_checkpoints(world.app, world.investigator) == []
    first = checkpoints.create_checkpoint(world.app, world.admin)
    second = checkpoints.create_checkpoint(world.app, world.admin)
    assert second["size"] == first["size"] + 1  # the first one's entry is in the second
    listed = checkpoints.list_checkpoints(world.app, world.investigator)
    assert [c["id"] for c in listed] == [second["id"], first["id"]]


def test_due_after_the_configured_number_of_entries(timed: tuple[Faceledger, Principal]
                                                    ) -> None:
    app, _ = timed
    start = head_seq(app)
    assert start < 10
    if start < 9:
        fill(app, 9 - start)
    assert checkpoints.maybe_checkpoint(app) is None  # 9 entries: not yet
    fill(app, 1)
    made = checkpoints.maybe_checkpoint(app)
    assert made is not None and made["reason"] == "entries" and made["size"] == 10
    assert checkpoints.maybe_checkpoint(app) is None  # its own entry does not count
    fill(app, 9)
    assert checkpoints.maybe_checkpoint(app) is None
    fill(app, 1)
    again = checkpoints.maybe_checkpoint(app)
    assert again is not None and again["size"] == 21 and again["reason"] == "entries"
    with app.db.read() as s:
        kinds = [e.kind for e in s.execute(select(LedgerEntry).where(
            LedgerEntry.seq.in_([11, 22]))).scalars()]
        actors = [e.actor for e in s.execute(select(LedgerEntry).where(
            LedgerEntry.kind == "ledger.checkpoint")).scalars()]
    assert kinds == ["ledger.checkpoint"] * 2 and actors == [None, None]


def _age_last_checkpoint(app: Faceledger, minutes: float) -> None:
    with app.db.write() as s:
        last = checkpoints.latest(s)
        assert last is not None
        s.execute(update(LedgerCheckpoint).where(LedgerCheckpoint.id == last.id).values(
            created_at=datetime.now(UTC) - timedelta(minutes=minutes)))


def test_due_after_the_configured_minutes_only_when_entries_arrived(
        timed: tuple[Faceledger, Principal]) -> None:
    app, admin = timed
    first = checkpoints.create_checkpoint(app, admin)
    _age_last_checkpoint(app, 6)
    assert checkpoints.maybe_checkpoint(app) is None  # nothing but its own entry since
    fill(app, 2)
    _age_last_checkpoint(app, 4)
    assert checkpoints.maybe_checkpoint(app) is None  # entries, but not 5 minutes yet
    _age_last_checkpoint(app, 6)
    made = checkpoints.maybe_checkpoint(app)
    assert made is not None and made["reason"] == "minutes"
    assert made["size"] == first["size"] + 3  # its entry and the two added
    assert checkpoints.maybe_checkpoint(app) is None


def test_key_file_is_0600_and_a_looser_one_is_refused(world: World) -> None:
    path = signing_key.key_path(world.app.settings)
    assert path.exists()  # `initialise` made it, outside the database
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        checkpoints.create_checkpoint(world.app, world.admin)
    with world.app.db.read() as s:
        assert checkpoints.checkpoint_count(s) == 0


def test_missing_key_with_checkpoints_is_an_error_never_replaced(world: World) -> None:
    checkpoints.create_checkpoint(world.app, world.admin)
    path = signing_key.key_path(world.app.settings)
    path.rename(path.with_suffix(".away"))
    fill(world.app, 3)
    with pytest.raises(ConfigError, match="missing"):
        checkpoints.create_checkpoint(world.app, world.admin)
    with pytest.raises(ConfigError, match="restore the key file"):
        checkpoints.log_key(world.app, world.investigator)
    with world.app.db.write() as s:  # make one due: the timer must not mint a key either
        s.execute(update(LedgerCheckpoint).values(
            created_at=datetime.now(UTC) - timedelta(days=1)))
    assert checkpoints.maybe_checkpoint(world.app) is None
    assert not path.exists()
    with world.app.db.read() as s:
        assert checkpoints.checkpoint_count(s) == 1


def test_missing_key_without_checkpoints_is_made_on_the_first_checkpoint(tmp_path: Path
                                                                        ) -> None:
    key = tmp_path / "elsewhere" / "log.key"
    app = Faceledger(make_settings(tmp_path / "home", ledger_key_file=key))
    try:
        _, token = app.initialise("root")
        admin = app.authenticate(token)
        key.unlink()  # e.g. the operator moved the key before any checkpoint
        cp = checkpoints.create_checkpoint(app, admin)
        assert key.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600
        vkey = checkpoints.log_key(app, admin).vkey
        notes.open_note(cp["note"], [notes.parse_vkey(vkey)])
        assert not (tmp_path / "home" / "keys" / "ledger-signing.key").exists()
    finally:
        app.close()
