"""verify_log (faceledger/governance/log_verify.py) catches what the hash chain alone cannot: each
attack is made on a real SQLite data home of ~120 entries by someone with write access to the
database (plain SQL, recomputed hashes, a rebuilt tree) but not to the log's signing key. The
chain check alone is shown to pass after each attack, so the test proves the checkpoint's part."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, update

from faceledger.core import Faceledger
from faceledger.db.schema import LedgerCheckpoint
from faceledger.errors import LedgerIntegrityError, PermissionDeniedError
from faceledger.governance import checkpoints, ledger, log_verify, notes, signing_key, tree
from faceledger.governance.log_verify import LogReport
from faceledger.settings import Settings
from tests.conftest import BOTH_DATABASES, SQLITE_ONLY, World, make_settings
from tests.tamper import cut_tail, db_file, delete_checkpoints, fill, head_seq, rewrite_entry

DB_BACKENDS = BOTH_DATABASES  # but the tests that tamper with the SQLite file itself


def _chain_ok(world: World) -> bool:
    with world.app.db.read() as s:
        return ledger.verify(s).ok


def _checkpoint_file(world: World, tmp_path: Path) -> tuple[Path, int]:
    """~120 entries, then a checkpoint kept outside the database (its size)."""
    fill(world.app, 120 - head_seq(world.app))
    cp = checkpoints.create_checkpoint(world.app, world.auditor)
    out = tmp_path / "checkpoint.txt"
    out.write_text(cp["note"])
    return out, int(cp["size"])


def _verify(world: World, note: Path | None = None, *, vkey: str | None = None,
            incremental: bool = False) -> LogReport:
    return log_verify.verify_log(world.app, world.auditor,
                                 checkpoint=note.read_text() if note else None, vkey=vkey,
                                 incremental=incremental)


@SQLITE_ONLY
@pytest.mark.parametrize("cut", [1, 50])
@pytest.mark.parametrize("drop_stored", [False, True])
def test_tail_cut_and_head_rewind_is_truncated(world: World, tmp_path: Path, cut: int,
                                               drop_stored: bool) -> None:
    note, size = _checkpoint_file(world, tmp_path)
    fill(world.app, 5)
    keep = size - cut
    cut_tail(db_file(world.app), keep)  # also removes the stored checkpoints above keep
    if drop_stored:
        delete_checkpoints(db_file(world.app))
    assert _chain_ok(world)  # the chain alone cannot tell
    report = _verify(world, note)
    assert not report.ok
    assert report.problem is not None and report.problem.startswith("TRUNCATED")
    assert f"holds {keep} entries" in report.problem and f"vouches for {size}" in report.problem
    assert report.first_bad_seq == keep + 1
    out = report.as_dict()
    assert out["ok"] is False and out["reason"] == report.problem
    assert _verify(world, note, incremental=True).problem == report.problem


@SQLITE_ONLY
def test_cut_then_regrown_past_the_checkpoint_is_rewritten_history(world: World,
                                                                    tmp_path: Path) -> None:
    note, size = _checkpoint_file(world, tmp_path)
    cut_tail(db_file(world.app), size - 10)
    fill(world.app, 30)  # the log grows back past the size the checkpoint signed
    assert head_seq(world.app) > size and _chain_ok(world)
    report = _verify(world, note)
    assert not report.ok and report.problem is not None
    assert report.problem.startswith("REWRITTEN HISTORY") and f"1..{size}" in report.problem


@SQLITE_ONLY
def test_middle_entry_rewritten_with_every_later_hash_recomputed(world: World,
                                                                 tmp_path: Path) -> None:
    note, _ = _checkpoint_file(world, tmp_path)
    fill(world.app, 10)
    rewrite_entry(world.app, 60)
    assert _chain_ok(world)  # chain, head and tree all agree with each other
    report = _verify(world, note)
    assert not report.ok and report.problem is not None
    assert report.problem.startswith("REWRITTEN HISTORY")
    assert "the checkpoint given" in report.problem
    stored = _verify(world)  # no file: the stored checkpoint (signed) still catches it
    assert not stored.ok and "REWRITTEN HISTORY" in (stored.problem or "")
    assert "stored checkpoint" in (stored.problem or "")
    delete_checkpoints(db_file(world.app))
    assert not _verify(world, note).ok  # the outside copy does not depend on the database


def test_a_fork_with_the_same_key_and_size_is_caught(world: World, tmp_path: Path) -> None:
    key = signing_key.key_path(world.app.settings)  # a second data home signs with it too
    other = Faceledger(make_settings(tmp_path / "other", ledger_key_file=key))
    try:
        _, token = other.initialise("root")
        other_admin = other.authenticate(token)
        fill(other, 60 - head_seq(other), kind="other.event")
        fill(world.app, 60 - head_seq(world.app))
        mine = checkpoints.create_checkpoint(world.app, world.admin)
        theirs = checkpoints.create_checkpoint(other, other_admin)
        vkey = checkpoints.log_key(world.app, world.admin).vkey
        assert checkpoints.log_key(other, other_admin).vkey == vkey
        assert mine["size"] == theirs["size"] == 60
        assert mine["root_hash"] != theirs["root_hash"]  # two logs, both validly signed
        for cp in (mine, theirs):
            notes.open_note(cp["note"], [notes.parse_vkey(vkey)])
        report = log_verify.verify_log(other, other_admin, checkpoint=mine["note"])
        assert not report.ok and (report.problem or "").startswith("REWRITTEN HISTORY")
        assert log_verify.verify_log(other, other_admin, checkpoint=theirs["note"]).ok
    finally:
        other.close()


def _other_signer(origin: str) -> notes.Signer:
    return notes.Signer(origin, Ed25519PrivateKey.generate())


def test_forged_checkpoint_signatures_are_refused(world: World, tmp_path: Path) -> None:
    note, size = _checkpoint_file(world, tmp_path)
    text = note.read_text()
    body, _, sig_line = text.rpartition("\n\n")
    name, _, blob = sig_line.strip().removeprefix("— ").partition(" ")
    flipped = blob[:20] + ("A" if blob[20] != "A" else "B") + blob[21:]
    report = log_verify.verify_log(world.app, world.auditor,
                                   checkpoint=f"{body}\n\n— {name} {flipped}\n")
    assert not report.ok and "forged or altered" in (report.problem or "")
    bigger = body.replace(f"\n{size}\n", f"\n{size + 1000}\n") + "\n\n" + sig_line
    report = log_verify.verify_log(world.app, world.auditor, checkpoint=bigger)
    assert not report.ok and "does not verify" in (report.problem or "")
    # Signed by another key under the same origin name: no valid signature from the log key.
    cp = notes.parse_checkpoint(body + "\n")
    forged = notes.sign_note(notes.Checkpoint(cp.origin, 3, cp.root).body(),
                             _other_signer(cp.origin))
    report = log_verify.verify_log(world.app, world.auditor, checkpoint=forged)
    assert not report.ok and "forged or altered" in (report.problem or "")
    assert _verify(world, note).ok  # the genuine file still verifies


def test_a_stored_checkpoint_re_signed_with_another_key_is_refused(world: World,
                                                                   tmp_path: Path) -> None:
    """After a rewrite the attacker re-signs the stored checkpoint with a key of their own."""
    _, size = _checkpoint_file(world, tmp_path)
    rewrite_entry(world.app, 30)
    with world.app.db.read() as s:
        root = tree.root(s, size)
    origin = checkpoints.log_key(world.app, world.admin).origin
    forged = notes.sign_note(notes.Checkpoint(origin, size, root).body(), _other_signer(origin))
    with world.app.db.write() as s:
        s.execute(update(LedgerCheckpoint).values(note=forged, root_hash=root.hex()))
    report = _verify(world)
    assert not report.ok and "forged or altered" in (report.problem or "")
    # Trusting the attacker's key (given by them) is what --key guards against: with the
    # published key pinned, the stored notes fail; with theirs, the genuine ones do.
    other = _other_signer(origin)
    assert not _verify(world, vkey=other.vkey()).ok


def test_a_correct_log_verifies_full_then_incrementally(world: World, tmp_path: Path) -> None:
    note, size = _checkpoint_file(world, tmp_path)
    full = _verify(world, note)
    assert full.ok, full.problem
    assert full.mode == "full" and full.from_size == 0
    assert full.chain.entries == head_seq(world.app) == size + 1
    assert full.tree_size == size + 1
    assert "the checkpoint given" in full.checkpoints_checked
    with world.app.db.read() as s:
        proven = s.execute(select(LedgerCheckpoint.verified_at)).scalars().all()
    assert proven and all(p is not None for p in proven)
    fill(world.app, 37)
    second = checkpoints.create_checkpoint(world.app, world.admin)
    fill(world.app, 4)
    inc = _verify(world, incremental=True)
    assert inc.ok, inc.problem
    assert inc.mode == "incremental" and inc.from_size == size
    n = head_seq(world.app)
    assert inc.chain.entries == n - size  # only the entries after the proven checkpoint
    assert inc.tree_size == n
    assert f"stored checkpoint {second['id']} (size {second['size']})" in inc.checkpoints_checked
    again = _verify(world, incremental=True)  # now from the second checkpoint
    assert again.ok and again.from_size == second["size"]
    assert again.chain.entries == n - second["size"]
    assert _verify(world, note, incremental=True).ok  # an older checkpoint, proven earlier


@SQLITE_ONLY
def test_incremental_still_catches_a_cut_below_the_proven_checkpoint(world: World,
                                                                     tmp_path: Path) -> None:
    note, size = _checkpoint_file(world, tmp_path)
    assert _verify(world).ok  # proves the stored checkpoint
    cut_tail(db_file(world.app), size - 20)
    report = _verify(world, note, incremental=True)
    assert not report.ok and (report.problem or "").startswith("TRUNCATED")


def test_investigators_cannot_verify_and_the_empty_log_needs_no_key(world: World,
                                                                    tmp_path: Path) -> None:
    with pytest.raises(PermissionDeniedError):
        log_verify.verify_log(world.app, world.investigator)
    home = tmp_path / "bare"
    bare = Faceledger(Settings(home=home, workers=1))
    try:
        _, token = bare.initialise("root")
        admin = bare.authenticate(token)
        signing_key.key_path(bare.settings).unlink()  # no key, no checkpoint: nothing signed
        report = log_verify.verify_log(bare, admin)
        assert report.ok and report.checkpoints_checked == []
    finally:
        bare.close()


@SQLITE_ONLY
def test_an_append_after_a_careless_cut_is_refused_by_name(world: World) -> None:
    """A cut that leaves the tree's tiles behind: the next append names the cut instead of
    failing on a key conflict (and nothing is written)."""
    app = world.app
    n = fill(app, tree.TILE_SIZE + 3)
    db = sqlite3.connect(db_file(app))
    keep = tree.TILE_SIZE - 3  # the stored first tile covers entries past the head
    assert n > tree.TILE_SIZE
    head_hash = db.execute("SELECT hash FROM ledger WHERE seq = ?", (keep,)).fetchone()[0]
    db.execute("DELETE FROM ledger WHERE seq > ?", (keep,))
    db.execute("UPDATE ledger_head SET seq = ?, hash = ?", (keep, head_hash))
    db.commit()
    db.close()
    with pytest.raises(LedgerIntegrityError, match="already holds entry"), app.db.write() as s:
        ledger.append(s, "test.after_cut", {"n": 1})
    assert head_seq(app) == keep
