"""The tamper-evident ledger: an append-only, SHA-256 hash chain.

Each entry's hash covers its sequence number, time, kind, actor, case and the digest of its
canonical-JSON payload, plus the previous entry's hash. Appends go through ``append`` only,
inside the caller's write transaction, after locking the single ``ledger_head`` row, so an
action and its entry commit (or roll back) together and writers are serialised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerEntry, LedgerHead
from faceledger.errors import LedgerIntegrityError

GENESIS = "0" * 64


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_hash(
    seq: int, ts: str, kind: str, actor: str | None, case_ref: str | None,
    payload_digest: str, prev_hash: str,
) -> str:
    return sha256_hex(
        canonical_json(
            {
                "seq": seq, "ts": ts, "kind": kind, "actor": actor, "case": case_ref,
                "payload_digest": payload_digest, "prev": prev_hash,
            }
        )
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def initialise(session: Session) -> None:
    if session.get(LedgerHead, 1) is None:
        session.add(LedgerHead(id=1, seq=0, hash=GENESIS))
        session.flush()


def append(
    session: Session, kind: str, payload: dict[str, Any], *, actor: str | None = None,
    case_ref: str | None = None,
) -> LedgerEntry:
    """Append one entry in the caller's transaction (the single writer path)."""
    head = session.execute(
        select(LedgerHead).where(LedgerHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        raise LedgerIntegrityError("ledger head missing: the database was not initialised")
    seq = head.seq + 1
    ts = now_iso()
    body = canonical_json(payload)
    digest = sha256_hex(body)
    h = entry_hash(seq, ts, kind, actor, case_ref, digest, head.hash)
    entry = LedgerEntry(
        seq=seq, ts=ts, kind=kind, actor=actor, case_ref=case_ref, payload=body,
        payload_digest=digest, prev_hash=head.hash, hash=h,
    )
    session.add(entry)
    head.seq = seq
    head.hash = h
    session.flush()
    return entry


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "entries": self.entries, "head_seq": self.head_seq,
            "head_hash": self.head_hash, "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
        }


def verify(session: Session, batch: int = 5000) -> VerifyReport:
    """Walk the whole chain; name the first entry that does not check out."""
    head = session.get(LedgerHead, 1)
    if head is None:
        return VerifyReport(False, 0, 0, GENESIS, 0, "ledger head row is missing")
    prev_hash = GENESIS
    expected_seq = 1
    count = 0
    last_seq = 0
    while True:
        rows = session.execute(
            select(LedgerEntry).where(LedgerEntry.seq >= expected_seq)
            .order_by(LedgerEntry.seq).limit(batch)
        ).scalars().all()
        if not rows:
            break
        for e in rows:
            bad = _check(e, expected_seq, prev_hash)
            if bad:
                first_bad = expected_seq if e.seq != expected_seq else e.seq
                return VerifyReport(False, count, head.seq, head.hash, first_bad, bad)
            prev_hash = e.hash
            expected_seq = e.seq + 1
            last_seq = e.seq
            count += 1
        session.expunge_all()
    if last_seq != head.seq or prev_hash != head.hash:
        return VerifyReport(
            False, count, head.seq, head.hash, last_seq + 1 if last_seq < head.seq else last_seq,
            f"chain ends at entry {last_seq} but the head records entry {head.seq}: "
            "entries were deleted from the end, or the head was altered",
        )
    return VerifyReport(True, count, head.seq, head.hash)


def _check(e: LedgerEntry, expected_seq: int, prev_hash: str) -> str | None:
    if e.seq != expected_seq:
        return (f"entry {expected_seq} is missing (next entry found is {e.seq}): "
                "entries were deleted or renumbered")
    if e.prev_hash != prev_hash:
        return (f"entry {e.seq} does not link to entry {e.seq - 1}: "
                "entries were inserted, deleted or reordered")
    if e.payload is not None and sha256_hex(e.payload) != e.payload_digest:
        return f"entry {e.seq}: payload does not match its digest (payload edited)"
    if e.payload is None:
        return f"entry {e.seq}: payload missing without a redaction record"
    recomputed = entry_hash(e.seq, e.ts, e.kind, e.actor, e.case_ref, e.payload_digest, e.prev_hash)
    if recomputed != e.hash:
        return f"entry {e.seq}: hash does not match its contents (entry edited)"
    return None


def entry_dict(e: LedgerEntry) -> dict[str, Any]:
    return {
        "seq": e.seq, "ts": e.ts, "kind": e.kind, "actor": e.actor, "case": e.case_ref,
        "payload": json.loads(e.payload) if e.payload is not None else None,
        "payload_digest": e.payload_digest, "prev_hash": e.prev_hash, "hash": e.hash,
    }


def read(
    session: Session, *, user: str | None = None, case_ref: str | None = None,
    kind: str | None = None, limit: int = 200, after_seq: int = 0,
) -> list[LedgerEntry]:
    q = select(LedgerEntry).where(LedgerEntry.seq > after_seq)
    if user:
        q = q.where(LedgerEntry.actor == user)
    if case_ref:
        q = q.where(LedgerEntry.case_ref == case_ref)
    if kind:
        q = q.where(LedgerEntry.kind.startswith(kind))
    return list(session.execute(q.order_by(LedgerEntry.seq).limit(limit)).scalars())
