"""The server's side of witnessing: keep the cosignatures witnesses post back, and say when each
witness last checked the log.

A witness (``witness_client``, run by an oversight body elsewhere) verifies each checkpoint it
fetches against the previous one it holds and co-signs it (C2SP ``tlog-cosignature``). The
server accepts a cosignature only for a checkpoint it signed, with a valid signature by the key
the witness names; each is ledgered (``ledger.witnessed``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from faceledger.db.schema import LedgerCheckpoint, LedgerCosignature
from faceledger.errors import CheckpointError, NotFoundError, ValidationError
from faceledger.governance import ledger, notes
from faceledger.governance.checkpoints import cosignature_dict
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

MAX_LINE = 1000


def record_cosignature(app: Faceledger, principal: Principal, size: int, root_hash: str,
                       witness_vkey: str, cosignature: str) -> dict[str, Any]:
    """Keep a witness's cosignature of the checkpoint of ``size`` and ``root_hash`` (auditors:
    the oversight body's witness runs with an auditor's token)."""
    require(principal.role, "ledger.witness", principal.name)
    if len(witness_vkey) > MAX_LINE or len(cosignature) > MAX_LINE:
        raise ValidationError("witness key or cosignature too long", field="cosignature")
    try:
        verifier = notes.parse_cosignature_vkey(witness_vkey)
    except CheckpointError as exc:
        raise ValidationError(f"not a witness key: {exc}", field="witness_vkey") from exc
    with app.db.write() as s:
        cp = s.execute(select(LedgerCheckpoint).where(
            LedgerCheckpoint.size == size, LedgerCheckpoint.root_hash == root_hash.lower())
            .order_by(LedgerCheckpoint.id).limit(1)).scalar_one_or_none()
        if cp is None:
            raise NotFoundError(f"this log signed no checkpoint of size {size} with root "
                                f"{root_hash[:16]}…: the witness saw another log (a fork?)")
        body = notes.unverified_body(cp.note)  # our own note, from our database
        try:
            stamp = notes.verify_cosignature(cosignature.strip(), body, witness_vkey)
        except CheckpointError as exc:
            raise ValidationError(f"the cosignature does not verify: {exc}",
                                  field="cosignature") from exc
        row = LedgerCosignature(
            checkpoint_id=cp.id, witness=verifier.name, key_id=verifier.key_id.hex(),
            vkey=witness_vkey, signature=cosignature.strip(),
            signed_at=datetime.fromtimestamp(stamp, UTC), received_at=datetime.now(UTC),
            posted_by=principal.name)
        s.add(row)
        s.flush()
        ledger.append(s, "ledger.witnessed", {
            "witness": verifier.name, "key_id": verifier.key_id.hex(), "checkpoint_id": cp.id,
            "size": cp.size, "root_hash": cp.root_hash, "signed_at": stamp},
            actor=principal.name)
        return cosignature_dict(row)


def witness_status(app: Faceledger, principal: Principal) -> list[dict[str, Any]]:
    """Each witness key seen: its name, when it last co-signed, the largest size it vouched
    for and how many checkpoints it co-signed (auditors and admins)."""
    require(principal.role, "ledger.read", principal.name)
    return witness_rows(app)


def witness_rows(app: Faceledger) -> list[dict[str, Any]]:
    c, cp = LedgerCosignature, LedgerCheckpoint
    with app.db.read() as s:
        rows = s.execute(
            select(c.witness, c.key_id, func.max(c.signed_at), func.max(cp.size),
                   func.count(c.id), func.max(c.received_at))
            .join(cp, cp.id == c.checkpoint_id).group_by(c.witness, c.key_id)
            .order_by(func.max(c.signed_at).desc())).all()
    return [{"witness": w, "key_id": k, "last_signed_at": _iso(t), "last_size": size,
             "cosignatures": n, "last_received_at": _iso(r)} for w, k, t, size, n, r in rows]


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
