"""Cross-checking the ledger against the records it vouches for.

The hash chain covers the ``ledger`` table only; a row deleted from ``searches``, ``reviews``,
``outcomes`` or ``blocklist`` (or an approval decision's search) would not break it. So every
such record must have its ledger entry, and the fields the entry holds must match the record
(compared by per-field digest, so a result set purged by retention still compares); and every
entry of those kinds must still have its record, unless a ledgered retention or erasure entry
names it as purged (``payload["records_purged"] = {"searches": [search ids], "entries": [seqs
of the entries whose records went]}``).
No code path deletes these rows today, so any missing one is reported."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from faceledger.db.schema import BlockedSubject, LedgerEntry, Outcome, Review, Search, User
from faceledger.governance.ledger import REDACTED, VerifyReport, canonical_json, sha256_hex

PURGING_KINDS = ("retention.", "subject.")  # entries that may name records they purged
MAX_PROBLEMS = 50


@dataclass(frozen=True)
class RecordProblem:
    seq: int | None  # the ledger entry concerned (None: a record points at no entry)
    message: str


def field_digests(entry: LedgerEntry) -> dict[str, str] | None:
    try:
        payload = json.loads(entry.payload or "")
    except json.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    out = dict(payload.get(REDACTED, {}))
    out.update({k: sha256_hex(canonical_json(v)) for k, v in payload.items() if k != REDACTED})
    return out


def _payload(entry: LedgerEntry) -> dict[str, Any]:
    try:
        payload = json.loads(entry.payload or "{}")
    except json.JSONDecodeError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _differing(entry: LedgerEntry, fields: dict[str, Any]) -> list[str]:
    """The fields whose digest in ``entry`` differs from the record's value (or is absent)."""
    held = field_digests(entry) or {}
    return sorted(k for k, v in fields.items() if held.get(k) != sha256_hex(canonical_json(v)))


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


def _search_fields(row: Search, user: str) -> dict[str, Any]:
    """What a search's entry (``search`` or ``search.requested``) holds about its record."""
    return {"search_id": row.id, "user": user, "case": row.case_ref, "purpose": row.purpose,
            "offence": row.offence, "legal_basis": row.legal_basis, "mode": row.mode,
            "top_k": row.top_k, "face_index": row.face_index, "probe_sha256": row.probe_sha256,
            "urgent": row.urgent}


def _check_record(s: Session, seq: int, kinds: tuple[str, ...], what: str,
                  fields: dict[str, Any]) -> RecordProblem | None:
    entry = s.get(LedgerEntry, seq) if seq else None
    if entry is None or entry.kind not in kinds:
        return RecordProblem(None, f"{what} has no ledger entry (it points at entry {seq}, "
                             f"which is {'not a ' + '/'.join(kinds) + ' entry' if entry else 'missing'})"
                             ": the record was added or altered outside faceledger")
    bad = _differing(entry, fields)
    if bad:
        return RecordProblem(seq, f"{what} does not match its ledger entry {seq} "
                             f"({', '.join(bad)} differ): the record was altered")
    return None


def _records(s: Session) -> Iterator[RecordProblem | None]:
    names: dict[int, str] = {i: n for i, n in s.execute(select(User.id, User.name)).all()}
    for row in s.execute(select(Search).order_by(Search.id)).scalars():
        kinds = ("search",) if row.status == "done" else ("search.requested",)
        fields = _search_fields(row, names.get(row.user_id, "?"))
        if row.status == "done":  # (a held search's entry holds the collections asked for)
            fields.update(model_id=row.model_id, collections=row.collections)
        yield _check_record(s, row.ledger_seq, kinds, f"search {row.id}", fields)
    for rv in s.execute(select(Review).order_by(Review.id)).scalars():
        yield _check_record(s, rv.ledger_seq, ("review",), f"review {rv.id} (search "
                            f"{rv.search_id}, face {rv.face_id})",
                            {"search": rv.search_id, "face_id": rv.face_id,
                             "decision": rv.decision, "note": rv.note,
                             "user": names.get(rv.user_id, "?")})
    for oc in s.execute(select(Outcome).order_by(Outcome.id)).scalars():
        yield _check_record(s, oc.ledger_seq, ("outcome",), f"outcome {oc.id} (search "
                            f"{oc.search_id})",
                            {"search_id": oc.search_id, "result": oc.result,
                             "date": _day(oc.outcome_date), "note": oc.note,
                             "by": names.get(oc.user_id, "?")})
    for b in s.execute(select(BlockedSubject).order_by(BlockedSubject.id)).scalars():
        yield _check_record(s, b.ledger_seq, ("subject.optout",), f"opt-out {b.id}",
                            {"model_id": b.model_id, "reference": b.reference})


def _purged(s: Session) -> dict[str, set[int]]:
    """``records_purged`` of ledgered retention/erasure entries: {"searches": ids, "entries":
    seqs}."""
    out: dict[str, set[int]] = {}
    for e in s.execute(select(LedgerEntry).where(LedgerEntry.payload.contains(
            '"records_purged"'))).scalars():
        if e.kind.startswith(PURGING_KINDS):
            for table, ids in (_payload(e).get("records_purged") or {}).items():
                out.setdefault(table, set()).update(int(i) for i in ids)
    return out


def _entries(s: Session, purged: dict[str, set[int]]) -> Iterator[RecordProblem | None]:
    searches = {r.id: r for r in s.execute(select(Search)).scalars()}
    by_seq: dict[str, set[int]] = {
        "review": set(s.execute(select(Review.ledger_seq)).scalars()),
        "outcome": set(s.execute(select(Outcome.ledger_seq)).scalars()),
        "subject.optout": set(s.execute(select(BlockedSubject.ledger_seq)).scalars())}
    table = {"review": "reviews", "outcome": "outcomes", "subject.optout": "blocklist"}
    kinds = ("search", "search.requested", "search.approved", "search.approval_refused",
             *by_seq)
    for e in s.execute(select(LedgerEntry).where(LedgerEntry.kind.in_(kinds))
                       .order_by(LedgerEntry.seq)).scalars():
        if e.kind in by_seq:
            if e.seq not in by_seq[e.kind] and e.seq not in purged.get("entries", set()):
                yield RecordProblem(e.seq, f"ledger entry {e.seq} ({e.kind}) has no "
                                    f"{table[e.kind]} record: the record was deleted")
            continue
        sid = _payload(e).get("search_id")
        row = searches.get(sid) if isinstance(sid, int) else None
        if row is None:
            if sid not in purged.get("searches", set()) and e.seq not in purged.get("entries",
                                                                                     set()):
                yield RecordProblem(e.seq, f"ledger entry {e.seq} ({e.kind}) names search "
                                    f"{sid}, which is gone from the searches table: the record "
                                    "was deleted")
        elif e.kind == "search" and row.ledger_seq != e.seq:
            yield RecordProblem(e.seq, f"search {sid} no longer points at its result set "
                                f"(ledger entry {e.seq}): the record was altered")
        elif e.kind.startswith("search.approv") and row.approver_id is None:
            yield RecordProblem(e.seq, f"search {sid} does not record the approval decision "
                                f"of ledger entry {e.seq}: the record was altered")


def with_records(report: VerifyReport, problems: list[RecordProblem]) -> VerifyReport:
    """The chain's report, failed by the first record problem when the chain itself is sound."""
    texts = tuple(p.message for p in problems)
    if not problems or not report.ok:
        return replace(report, record_problems=texts)
    return replace(report, ok=False, first_bad_seq=problems[0].seq, reason=problems[0].message,
                   record_problems=texts)


def check_records(s: Session, limit: int = MAX_PROBLEMS) -> list[RecordProblem]:
    """Every mismatch between the records and their ledger entries (at most ``limit``)."""
    found: list[RecordProblem] = []
    sources: list[Callable[[], Iterator[RecordProblem | None]]] = [
        lambda: _records(s), lambda: _entries(s, _purged(s))]
    for source in sources:
        for p in source():
            if p is not None:
                found.append(p)
                if len(found) >= limit:
                    return found
    return found
