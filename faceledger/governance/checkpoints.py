"""Signed checkpoints of the Merkle log: made on demand and when due, each ledgered.

A checkpoint is a C2SP ``tlog-checkpoint`` signed note (``notes``): the log's origin, its size
and the RFC 9162 root hash at that size (``tree``), signed with the log's Ed25519 key, which
lives in a file outside the database (``signing_key``), so a copy of the database alone cannot
forge one. Each checkpoint is stored and then ledgered (``ledger.checkpoint``, the next entry:
a checkpoint of size n is vouched for by entry n + 1)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerCheckpoint, LedgerCosignature, LedgerEntry, LedgerHead
from faceledger.errors import ConfigError, NotFoundError
from faceledger.governance import ledger, notes, signing_key, tree
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

log = logging.getLogger("faceledger")


@dataclass(frozen=True)
class LogKey:
    """The log's public identity: what outside parties pin."""

    origin: str
    vkey: str  # C2SP note verifier key: <name>+<key id>+<base64 key>
    key_id: str  # 8 hex digits
    public_key_pem: str
    key_file: str

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "vkey": self.vkey, "key_id": self.key_id,
                "public_key_pem": self.public_key_pem}


def _has_checkpoints(app: Faceledger) -> bool:
    with app.db.read() as s:
        return s.execute(select(LedgerCheckpoint.id).limit(1)).first() is not None


def load_signer(app: Faceledger, *, create: bool = False) -> notes.Signer:
    """The log's signer. The key file is made only when asked (``init``, the first checkpoint)
    and only while no checkpoint exists: a missing key after that is an error, never silently
    replaced (every published checkpoint names the old key)."""
    path = signing_key.key_path(app.settings)
    if not path.exists():
        if _has_checkpoints(app):  # asked only when the key is missing
            raise ConfigError(
                f"the ledger signing key {path} is missing, but checkpoints signed with it "
                "exist: restore the key file (FACELEDGER_LEDGER_KEY_FILE names where it is)")
        if not create:
            raise ConfigError(
                f"the ledger signing key {path} does not exist yet: run `faceledger ledger "
                "checkpoint` to make it")
        signing_key.create_key(path)
        log.warning("faceledger: created the ledger signing key %s (keep a copy offline)", path)
    return signing_key.ledger_signer(app.settings)


def log_key(app: Faceledger, principal: Principal) -> LogKey:
    """The log's origin and public key (any signed-in user: it is meant to be published)."""
    require(principal.role, "ledger.checkpoint.read", principal.name)
    return key_of(app)


def key_of(app: Faceledger) -> LogKey:
    signer = load_signer(app, create=True)  # refused once checkpoints exist
    return LogKey(signer.name, signer.vkey(), signer.key_id.hex(), signing_key.public_pem(signer),
                  str(signing_key.key_path(app.settings)))


def checkpoint_dict(row: LedgerCheckpoint, cosigs: list[LedgerCosignature] | None = None
                    ) -> dict[str, Any]:
    return {"id": row.id, "size": row.size, "root_hash": row.root_hash, "note": row.note,
            "created_at": row.created_at.isoformat(), "reason": row.reason,
            "cosignatures": [cosignature_dict(c) for c in cosigs or []]}


def cosignature_dict(c: LedgerCosignature) -> dict[str, Any]:
    return {"witness": c.witness, "key_id": c.key_id, "signed_at": c.signed_at.isoformat(),
            "received_at": c.received_at.isoformat(), "line": c.signature}


def _make(s: Session, signer: notes.Signer, reason: str, actor: str | None) -> LedgerCheckpoint:
    """Sign the tree as it stands (the head row locked, so no append slips in between)."""
    head = s.execute(select(LedgerHead).where(LedgerHead.id == 1).with_for_update()).scalar_one()
    size = head.seq
    root = tree.root(s, size)
    body = notes.Checkpoint(signer.name, size, root, ()).body()
    row = LedgerCheckpoint(size=size, root_hash=root.hex(), note=notes.sign_note(body, signer),
                           created_at=datetime.now(UTC), reason=reason)
    s.add(row)
    s.flush()
    ledger.append(s, "ledger.checkpoint", {
        "checkpoint_id": row.id, "size": size, "root_hash": root.hex(), "origin": signer.name,
        "key_id": signer.key_id.hex(), "reason": reason}, actor=actor)
    return row


def create_checkpoint(app: Faceledger, principal: Principal, reason: str = "on demand"
                      ) -> dict[str, Any]:
    """Sign a checkpoint of the log now (auditors and admins); ledgered."""
    require(principal.role, "ledger.checkpoint.create", principal.name)
    signer = load_signer(app, create=True)
    with app.db.write() as s:
        return checkpoint_dict(_make(s, signer, reason, principal.name))


def latest(s: Session, at_least: int = 0) -> LedgerCheckpoint | None:
    """The newest checkpoint, or with ``at_least`` the first one whose size covers that entry."""
    q = select(LedgerCheckpoint)
    if at_least:
        return s.execute(q.where(LedgerCheckpoint.size >= at_least)
                         .order_by(LedgerCheckpoint.size, LedgerCheckpoint.id).limit(1)
                         ).scalar_one_or_none()
    return s.execute(q.order_by(LedgerCheckpoint.id.desc()).limit(1)).scalar_one_or_none()


def by_size(s: Session, size: int) -> LedgerCheckpoint | None:
    return s.execute(select(LedgerCheckpoint).where(LedgerCheckpoint.size == size)
                     .order_by(LedgerCheckpoint.id).limit(1)).scalar_one_or_none()


def cosignatures(s: Session, checkpoint_id: int) -> list[LedgerCosignature]:
    return list(s.execute(select(LedgerCosignature)
                          .where(LedgerCosignature.checkpoint_id == checkpoint_id)
                          .order_by(LedgerCosignature.id)).scalars())


def latest_checkpoint(app: Faceledger, principal: Principal) -> dict[str, Any]:
    """The newest signed checkpoint with its witnesses' cosignatures (any signed-in user)."""
    require(principal.role, "ledger.checkpoint.read", principal.name)
    with app.db.read() as s:
        row = latest(s)
        if row is None:
            raise NotFoundError("no checkpoint has been signed yet: `faceledger ledger "
                                "checkpoint` (or POST /api/v1/ledger/checkpoints) makes one")
        return checkpoint_dict(row, cosignatures(s, row.id))


def list_checkpoints(app: Faceledger, principal: Principal, limit: int = 50
                     ) -> list[dict[str, Any]]:
    require(principal.role, "ledger.checkpoint.read", principal.name)
    with app.db.read() as s:
        rows = s.execute(select(LedgerCheckpoint).order_by(LedgerCheckpoint.id.desc())
                         .limit(limit)).scalars()
        return [checkpoint_dict(r) for r in rows]


def due(app: Faceledger, s: Session) -> str | None:
    """Why a checkpoint is due now (None: not due): ``checkpoint_every_entries`` entries were
    added since the last checkpoint (or since the start), or ``checkpoint_every_minutes``
    passed since it (or since the first entry) and anything besides its own entry was added."""
    head = s.get(LedgerHead, 1)
    if head is None or head.seq == 0:
        return None
    last = latest(s)
    if last is None:
        added, since = head.seq, _first_entry_time(s)
    else:  # the checkpoint's own entry does not count
        added, since = head.seq - last.size - 1, _aware(last.created_at)
    st = app.settings
    if added >= st.checkpoint_every_entries:
        return "entries"
    if added > 0 and since is not None and (
            datetime.now(UTC) - since >= timedelta(minutes=st.checkpoint_every_minutes)):
        return "minutes"
    return None


def _first_entry_time(s: Session) -> datetime | None:
    first = s.get(LedgerEntry, 1)
    if first is None:
        return None
    try:
        return _aware(datetime.fromisoformat(first.ts))
    except ValueError:
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def maybe_checkpoint(app: Faceledger) -> dict[str, Any] | None:
    """Sign a checkpoint when one is due (the server's timer, and the CLI as it exits);
    ledgered with no actor. Never raises: a failure is logged and retried next time."""
    try:
        if not app.db.is_initialised():
            return None
        with app.db.read() as s:
            if due(app, s) is None:
                return None
        signer = load_signer(app, create=True)
        with app.db.write() as s:
            why = due(app, s)  # again, under the lock: another process may have made it
            return checkpoint_dict(_make(s, signer, why, None)) if why else None
    except Exception as exc:  # noqa: BLE001 - a timer must not die: the next tick retries
        log.warning("faceledger: could not sign a ledger checkpoint: %s", exc)
        return None


def checkpoint_count(s: Session) -> int:
    return int(s.execute(select(func.count(LedgerCheckpoint.id))).scalar_one())
