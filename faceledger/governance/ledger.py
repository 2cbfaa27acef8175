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
from faceledger.governance import merkle, tree

GENESIS = "0" * 64


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


REDACTED = "__redacted__"


def payload_digest(payload: dict[str, Any]) -> str:
    """Digest over per-field digests, so single fields can be purged later and the entry still
    verifies: a purged field leaves its digest behind under ``__redacted__``."""
    fields = dict(payload.get(REDACTED, {}))
    for key, value in payload.items():
        if key != REDACTED:
            fields[key] = sha256_hex(canonical_json(value))
    return sha256_hex(canonical_json(fields))


def entry_preimage(
    seq: int, ts: str, kind: str, actor: str | None, case_ref: str | None,
    payload_digest: str, prev_hash: str,
) -> bytes:
    """The exact bytes an entry's chain hash covers (canonical JSON, UTF-8)."""
    return canonical_json(
        {
            "seq": seq, "ts": ts, "kind": kind, "actor": actor, "case": case_ref,
            "payload_digest": payload_digest, "prev": prev_hash,
        }
    ).encode("utf-8")


def leaf_data(
    seq: int, ts: str, kind: str, actor: str | None, case_ref: str | None,
    payload_digest: str, prev_hash: str,
) -> bytes:
    """The data of an entry's Merkle leaf (``tree``): the chain preimage's fields with the
    actor and the case as digests (SHA-256 of their canonical JSON), so a receipt can prove an
    entry to someone who may not learn who searched or for which case (a subject, a lawyer)."""
    return canonical_json({
        "seq": seq, "ts": ts, "kind": kind, "actor_digest": sha256_hex(canonical_json(actor)),
        "case_digest": sha256_hex(canonical_json(case_ref)), "payload_digest": payload_digest,
        "prev": prev_hash}).encode("utf-8")


def entry_hash(
    seq: int, ts: str, kind: str, actor: str | None, case_ref: str | None,
    payload_digest: str, prev_hash: str,
) -> str:
    return hashlib.sha256(
        entry_preimage(seq, ts, kind, actor, case_ref, payload_digest, prev_hash)).hexdigest()


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
    if REDACTED in payload:
        raise ValueError(f"{REDACTED} is reserved")
    body = canonical_json(payload)
    digest = payload_digest(payload)
    preimage = entry_preimage(seq, ts, kind, actor, case_ref, digest, head.hash)
    h = hashlib.sha256(preimage).hexdigest()
    tree.append_leaf(session, seq - 1,
                     leaf_data(seq, ts, kind, actor, case_ref, digest, head.hash))
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
    # Records (searches, reviews, outcomes, approvals, opt-outs) that do not match their ledger
    # entries, or entries whose record is gone (ledger_records.check_records); empty when the
    # cross-check was not run or found nothing.
    record_problems: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "entries": self.entries, "head_seq": self.head_seq,
            "head_hash": self.head_hash, "first_bad_seq": self.first_bad_seq,
            "reason": self.reason, "record_problems": list(self.record_problems),
        }


def verify(session: Session, batch: int = 5000, *, after_seq: int = 0,
           after_hash: str = GENESIS) -> VerifyReport:
    """Walk the whole chain; name the first entry that does not check out. With ``after_seq``
    and ``after_hash`` (an entry already checked, and its hash) only the entries after it are
    walked, and the first of them must link to that hash. Each tile of the Merkle tree whose
    entries were all walked must match its stored root (``tree``); a chain break is reported
    before a tile mismatch."""
    head = session.get(LedgerHead, 1)
    if head is None:
        return VerifyReport(False, 0, 0, GENESIS, 0, "ledger head row is missing")
    prev_hash = after_hash
    expected_seq = after_seq + 1
    count = 0
    last_seq = after_seq
    tile_bad: tuple[int, str] | None = None
    tile: list[bytes] = []  # leaves of the tile being walked (when walked from its start)
    while True:
        rows = session.execute(
            select(LedgerEntry).where(LedgerEntry.seq >= expected_seq)
            .order_by(LedgerEntry.seq).limit(batch)
        ).scalars().all()
        if not rows:
            break
        stored = tree.tiles(session, (rows[0].seq - 1) >> tree.TILE, (rows[-1].seq - 1)
                            >> tree.TILE)
        for e in rows:
            bad = _check(e, expected_seq, prev_hash)
            if bad is None:
                tile_bad = tile_bad or _check_tile(e, tile, stored)
            if bad is None and e.payload and REDACTED in e.payload:
                bad = _check_redactions(session, e)
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
    if tile_bad:
        return VerifyReport(False, count, head.seq, head.hash, *tile_bad)
    return VerifyReport(True, count, head.seq, head.hash)


def _check_tile(e: LedgerEntry, tile: list[bytes], stored: dict[int, bytes]
                ) -> tuple[int, str] | None:
    """Add ``e``'s leaf to the tile being walked; when that completes it, compare its root
    with the stored one: (first entry of the tile, the problem) or None."""
    index = e.seq - 1
    if index % tree.TILE_SIZE == 0:
        tile.clear()
    elif not tile:
        return None  # the walk began inside this tile: it is checked when walked whole
    tile.append(merkle.leaf_hash(leaf_data(e.seq, e.ts, e.kind, e.actor, e.case_ref,
                                           e.payload_digest, e.prev_hash)))
    if len(tile) < tree.TILE_SIZE:
        return None
    first, number = e.seq - tree.TILE_SIZE + 1, index >> tree.TILE
    got = stored.get(number)
    tile_root = tree.tile_hash(tile)
    tile.clear()
    if got is None:
        return first, f"entries {first}-{e.seq}: their Merkle tile is missing from the tree"
    if got != tile_root:
        return first, f"entries {first}-{e.seq}: their Merkle tile does not match the entries"
    return None


def _check(e: LedgerEntry, expected_seq: int, prev_hash: str) -> str | None:
    """The entry's chain problem (None: none)."""
    if e.seq != expected_seq:
        return (f"entry {expected_seq} is missing (next entry found is {e.seq}): "
                "entries were deleted or renumbered")
    if e.prev_hash != prev_hash:
        return (f"entry {e.seq} does not link to entry {e.seq - 1}: "
                "entries were inserted, deleted or reordered")
    try:
        payload = json.loads(e.payload) if e.payload is not None else None
    except json.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        return f"entry {e.seq}: payload missing or unreadable (payload edited)"
    if payload_digest(payload) != e.payload_digest:
        return f"entry {e.seq}: payload does not match its digest (payload edited)"
    preimage = entry_preimage(e.seq, e.ts, e.kind, e.actor, e.case_ref, e.payload_digest,
                              e.prev_hash)
    if hashlib.sha256(preimage).hexdigest() != e.hash:
        return f"entry {e.seq}: hash does not match its contents (entry edited)"
    return None


def _check_redactions(session: Session, e: LedgerEntry) -> str | None:
    """A purged field must be backed by a later, chained ``ledger.redacted`` entry."""
    payload = json.loads(e.payload or "{}")
    purged = sorted(payload.get(REDACTED, {}))
    if not purged:
        return None
    red = session.get(LedgerEntry, e.redacted_by) if e.redacted_by else None
    if red is None or red.kind != "ledger.redacted" or red.seq <= e.seq:
        return f"entry {e.seq}: fields {purged} were removed without a redaction entry"
    info = json.loads(red.payload or "{}")
    if info.get("target_seq") != e.seq or sorted(info.get("fields", [])) != purged:
        return f"entry {e.seq}: its redaction entry {red.seq} does not match what was removed"
    return None


def redact(session: Session, seq: int, fields: list[str], reason: str,
           actor: str | None) -> LedgerEntry:
    """Purge ``fields`` from entry ``seq`` (retention, erasure, refused authorisation), leaving
    their digests and a tombstone entry, so the chain still verifies and still detects edits."""
    target = session.get(LedgerEntry, seq, with_for_update=True)
    if target is None:
        raise LedgerIntegrityError(f"no ledger entry {seq}")
    payload = json.loads(target.payload or "{}")
    present = [f for f in fields if f in payload and f != REDACTED]
    if not present:
        raise LedgerIntegrityError(f"entry {seq} holds none of {fields}")
    tomb = append(session, "ledger.redacted",
                  {"target_seq": seq, "fields": sorted(set(present) | set(payload.get(REDACTED,
                                                                                         {}))),
                   "reason": reason}, actor=actor, case_ref=target.case_ref)
    kept = dict(payload.get(REDACTED, {}))
    for f in present:
        kept[f] = sha256_hex(canonical_json(payload.pop(f)))
    payload[REDACTED] = kept
    target.payload = canonical_json(payload)
    target.redacted_by = tomb.seq
    session.flush()
    return tomb


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


@dataclass(frozen=True)
class LedgerPage:
    """One page of entries, in the order asked for, with cursors to the pages on either side:
    ``older`` is a ``before`` cursor (entries with a smaller seq exist), ``newer`` an ``after``
    cursor (entries with a larger seq exist); None where there is nothing more that way."""

    entries: list[LedgerEntry]
    newest_first: bool
    older: int | None
    newer: int | None


def _filtered(q: Any, user: str | None, case_ref: str | None, kind: str | None,
              since: str | None, until: str | None) -> Any:
    if user:
        q = q.where(LedgerEntry.actor == user)
    if case_ref:
        q = q.where(LedgerEntry.case_ref == case_ref)
    if kind:
        q = q.where(LedgerEntry.kind.startswith(kind, autoescape=True))
    if since:  # ISO 8601 UTC text: text order is time order
        q = q.where(LedgerEntry.ts >= since)
    if until:
        q = q.where(LedgerEntry.ts < until)
    return q


def page(
    session: Session, *, user: str | None = None, case_ref: str | None = None,
    kind: str | None = None, since: str | None = None, until: str | None = None,
    before: int | None = None, after: int | None = None, limit: int = 50,
    newest_first: bool = True,
) -> LedgerPage:
    """A page of entries matching the filters (``kind`` is a prefix; ``since``/``until`` bound
    ``ts``, until excluded). Without cursors: the newest ``limit`` entries, or the oldest when
    ``newest_first`` is false. ``before``/``after`` bound seq (exclusive); with ``after`` alone
    the page holds the entries just after it, so paging back towards the newest works."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    base = _filtered(select(LedgerEntry), user, case_ref, kind, since, until)
    q = base
    if before is not None:
        q = q.where(LedgerEntry.seq < before)
    if after is not None:
        q = q.where(LedgerEntry.seq > after)
    ascending = (after is not None and before is None) or (
        before is None and after is None and not newest_first)
    order = LedgerEntry.seq.asc() if ascending else LedgerEntry.seq.desc()
    rows: list[LedgerEntry] = list(session.execute(q.order_by(order).limit(limit)).scalars())
    rows.sort(key=lambda e: e.seq, reverse=newest_first)

    def exists(cond: Any) -> bool:
        return session.execute(
            base.with_only_columns(LedgerEntry.seq).where(cond).limit(1)).first() is not None

    older = newer = None
    if rows:
        lo, hi = min(e.seq for e in rows), max(e.seq for e in rows)
        older = lo if exists(LedgerEntry.seq < lo) else None
        newer = hi if exists(LedgerEntry.seq > hi) else None
    else:  # paged past an end: point back at what is there
        if before is not None and exists(LedgerEntry.seq >= before):
            newer = before - 1
        if after is not None and exists(LedgerEntry.seq <= after):
            older = after + 1
    return LedgerPage(rows, newest_first, older, newer)
