"""Verifying the log against signed checkpoints: what catches a cut tail, a rewound head and a
rewritten history, which the hash chain alone cannot (whoever can write the database can
recompute every hash after an edit, or cut the end and rewind the head row).

The entries are re-hashed into Merkle leaves and folded into a ``merkle.Frontier``; its root at
each checkpoint's size must equal the root the checkpoint signs (a signature the database alone
cannot forge), and no checkpoint may be larger than the log. Full (the default): from entry 1,
with the records cross-checked. Incremental: from the newest checkpoint a previous run proved,
its frontier restored from the stored tree and checked against that checkpoint's signed root;
the entries before it were proven then, and an edit to one of them that leaves the stored tree
alone shows only at the next full run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerCheckpoint, LedgerCosignature, LedgerEntry, LedgerHead
from faceledger.errors import CheckpointError, LedgerIntegrityError, ValidationError
from faceledger.governance import ledger, merkle, notes, signing_key, tree
from faceledger.governance.checkpoints import key_of
from faceledger.governance.ledger_records import check_records, with_records
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

BATCH = 5000
NOTE_MAX = 64 * 1024


@dataclass(frozen=True)
class SignedSize:
    size: int
    root: bytes
    label: str  # "checkpoint FILE", "stored checkpoint 12", …
    row_id: int | None = None


@dataclass
class LogReport:
    """``ledger.VerifyReport``'s fields (the chain walk; its problem first), plus the Merkle
    log's: the mode, the tree size and recomputed root, the checkpoints proven."""

    chain: ledger.VerifyReport
    mode: str  # "full" or "incremental"
    from_size: int
    tree_size: int = 0
    root_hash: str = ""
    checkpoints_checked: list[str] = field(default_factory=list)
    problem: str | None = None
    problem_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.problem is None

    @property
    def reason(self) -> str | None:
        return self.chain.reason if not self.chain.ok else self.problem

    @property
    def first_bad_seq(self) -> int | None:
        return self.chain.first_bad_seq if not self.chain.ok else self.problem_seq

    @property
    def entries(self) -> int:
        return self.chain.entries

    @property
    def head_seq(self) -> int:
        return self.chain.head_seq

    @property
    def head_hash(self) -> str:
        return self.chain.head_hash

    @property
    def record_problems(self) -> tuple[str, ...]:
        return self.chain.record_problems

    def as_dict(self) -> dict[str, Any]:
        out = self.chain.as_dict()
        out.update({"ok": self.ok, "reason": self.reason, "first_bad_seq": self.first_bad_seq,
                    "mode": self.mode, "from_size": self.from_size,
                    "tree_size": self.tree_size, "root_hash": self.root_hash,
                    "checkpoints_checked": self.checkpoints_checked})
        return out


def _opened(note: str, verifier: notes.Verifier, label: str) -> SignedSize:
    try:
        cp = notes.parse_checkpoint(notes.open_note(note, [verifier]).body)
    except CheckpointError as exc:
        raise _Bad(f"{label}: its signature does not verify with the log key "
                   f"{verifier.name} ({exc}): a forged or altered checkpoint", None) from exc
    if cp.origin != verifier.name:
        raise _Bad(f"{label} is for another log ({cp.origin!r})", None)
    return SignedSize(cp.size, cp.root, label)


class _Bad(Exception):
    def __init__(self, message: str, seq: int | None) -> None:
        super().__init__(message)
        self.message, self.seq = message, seq


def _leaves(s: Session, after: int, upto: int) -> Any:
    """(seq, leaf hash) of entries after..upto, recomputed from their stored fields."""
    seq = after
    while seq < upto:
        rows = s.execute(select(LedgerEntry).where(LedgerEntry.seq > seq,
                                                  LedgerEntry.seq <= upto)
                         .order_by(LedgerEntry.seq).limit(BATCH)).scalars().all()
        if not rows:
            return
        for e in rows:
            yield e.seq, merkle.leaf_hash(tree.leaf_bytes(tree.leaf_fields(e)))
        seq = rows[-1].seq
        s.expunge_all()


def _start(s: Session, verifier: notes.Verifier) -> tuple[merkle.Frontier, int]:
    """The frontier to fold from: the newest proven checkpoint's (else empty), restored
    from the stored tree and checked against its signed root."""
    row = s.execute(select(LedgerCheckpoint).where(LedgerCheckpoint.verified_at.is_not(None))
                    .order_by(LedgerCheckpoint.size.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        return merkle.Frontier(), 0
    signed = _opened(row.note, verifier, f"stored checkpoint {row.id} (size {row.size})")
    try:
        front = tree.frontier(s, signed.size)
    except LedgerIntegrityError as exc:
        raise _Bad(f"the stored Merkle tree no longer holds checkpoint {row.id}'s "
                   f"{signed.size} entries ({exc}): the log was cut", signed.size) from exc
    if front.root() != signed.root:
        raise _Bad(f"the stored Merkle tree at size {signed.size} does not match checkpoint "
                   f"{row.id}: history before it was rewritten", None)
    return front, signed.size


def _fold(s: Session, front: merkle.Frontier, upto: int, targets: list[SignedSize]
          ) -> list[str]:
    """Fold the entries into ``front`` up to ``upto``, checking each target on the way."""
    pending = sorted((t for t in targets if t.size > front.size), key=lambda t: t.size)
    checked = [t.label for t in targets if t.size == front.size]
    for t in targets:
        if t.size < front.size:
            checked.append(f"{t.label} (proven earlier)")
    for seq, leaf in _leaves(s, front.size, upto):
        front.append(leaf)
        while pending and pending[0].size == seq:
            t = pending.pop(0)
            if front.root() != t.root:
                raise _Bad(f"REWRITTEN HISTORY: the entries 1..{t.size} do not hash to the root "
                           f"{t.label} signed: an entry at or before {t.size} was changed, "
                           "inserted or removed (and the hashes after it recomputed)", None)
            checked.append(t.label)
    return checked


def _targets(s: Session, verifier: notes.Verifier, given: list[SignedSize]) -> list[SignedSize]:
    out = list(given)
    for row in s.execute(select(LedgerCheckpoint).order_by(LedgerCheckpoint.id)).scalars():
        signed = _opened(row.note, verifier, f"stored checkpoint {row.id} (size {row.size})")
        out.append(SignedSize(signed.size, signed.root, signed.label, row.id))
    return out


def _trusted(app: Faceledger, vkey: str | None, s: Session) -> notes.Verifier | None:
    """The log key to check signatures with: the one given, else this data home's (None when
    there is no key and no checkpoint yet: nothing was ever signed)."""
    if vkey:
        try:
            return notes.parse_vkey(vkey)
        except CheckpointError as exc:
            raise ValidationError(f"not a log key: {exc.message[:200]}", field="vkey") from exc
    has_cp = s.execute(select(LedgerCheckpoint.id).limit(1)).first() is not None
    if not has_cp and not signing_key.key_path(app.settings).exists():
        return None
    return notes.parse_vkey(key_of(app).vkey)


def _check_leftovers(s: Session, n: int) -> None:
    """What a careless cut leaves behind: tree tiles past the head, cosignatures of a deleted
    checkpoint."""
    covered = tree.tiled_size(s)
    if covered > n:
        raise _Bad(f"TRUNCATED: the Merkle tree's tiles cover {covered} entries but the log "
                   f"holds only {n}: entries were cut from the end (and the head rewound)", n + 1)
    orphan = s.execute(select(LedgerCosignature.witness, LedgerCosignature.checkpoint_id)
                       .where(LedgerCosignature.checkpoint_id.not_in(
                           select(LedgerCheckpoint.id))).limit(1)).first()
    if orphan is not None:
        raise _Bad(f"witness {orphan[0]} co-signed checkpoint {orphan[1]}, which is gone: "
                   "checkpoints were deleted (the log was cut or rewritten)", None)
    kept = set(s.execute(select(LedgerCheckpoint.id)).scalars())
    for e in s.execute(select(LedgerEntry).where(LedgerEntry.kind == "ledger.checkpoint")
                       .order_by(LedgerEntry.seq)).scalars():
        try:
            cp_id = json.loads(e.payload or "{}").get("checkpoint_id")
        except (ValueError, AttributeError):
            cp_id = None
        if cp_id not in kept:
            raise _Bad(f"entry {e.seq} records checkpoint {cp_id}, which is gone: stored "
                       "checkpoints were deleted", e.seq)


def _check_log(s: Session, report: LogReport, verifier: notes.Verifier | None,
               checkpoint: str | None, front: merkle.Frontier, n: int) -> list[int]:
    """The Merkle half of ``verify_log``; the stored checkpoints it proved."""
    if verifier is None:
        if checkpoint is not None:
            raise _Bad("no log key to check the checkpoint with: give one (--key)", None)
        targets: list[SignedSize] = []
    else:
        given = [_opened(checkpoint, verifier, "the checkpoint given")] if checkpoint else []
        targets = _targets(s, verifier, given)
    _check_leftovers(s, n)
    too_big = [t for t in targets if t.size > n]
    if too_big:
        t = max(too_big, key=lambda t: t.size)
        raise _Bad(f"TRUNCATED: the log holds {n} entries but {t.label} vouches for {t.size}: "
                   "entries were cut from the end (and the head rewound)", n + 1)
    report.checkpoints_checked = _fold(s, front, n, targets)
    report.tree_size, report.root_hash = n, front.root().hex()
    if n and tree.root(s, n) != front.root():
        raise _Bad("the stored Merkle tree does not match the entries: it was altered (or the "
                   "entries were, with their tree left behind)", None)
    return [t.row_id for t in targets if t.row_id is not None]


def verify_log(app: Faceledger, principal: Principal, *, checkpoint: str | None = None,
               vkey: str | None = None, incremental: bool = False) -> LogReport:
    """The chain, then the Merkle log against ``checkpoint`` (a signed note, e.g. one a
    witness or a court holds) and every stored checkpoint, then the records (see the module
    doc). ``vkey``: the log key to trust (default: this data home's key)."""
    require(principal.role, "ledger.verify", principal.name)
    if checkpoint is not None and len(checkpoint) > NOTE_MAX:
        raise ValidationError("that checkpoint is too long to be one", field="checkpoint")
    proven: list[int] = []
    with app.db.read() as s:
        head = s.get(LedgerHead, 1)
        n = head.seq if head else 0
        verifier = _trusted(app, vkey, s)
        report = LogReport(ledger.VerifyReport(True, 0, n, head.hash if head else ledger.GENESIS),
                           "incremental" if incremental else "full", 0)  # until walked
        try:
            front, start = (_start(s, verifier) if incremental and verifier
                            else (merkle.Frontier(), 0))
            prev = s.get(LedgerEntry, start) if start else None
            chain = ledger.verify(s, after_seq=start,
                                  after_hash=prev.hash if prev else ledger.GENESIS)
            if not start:
                chain = with_records(chain, check_records(s))
            report = LogReport(chain, "incremental" if start else "full", start)
            proven = _check_log(s, report, verifier, checkpoint, front, n)
        except _Bad as bad:
            report.problem, report.problem_seq = bad.message, bad.seq
    if report.ok and proven:
        with app.db.write() as s:
            s.execute(update(LedgerCheckpoint).where(LedgerCheckpoint.id.in_(proven))
                      .values(verified_at=datetime.now(UTC)))
    return report
