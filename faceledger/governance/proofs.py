"""Proofs from the Merkle log: inclusion of an entry, consistency between two sizes, and the
receipts built from them (a search's, a subject-access answer's).

A receipt is self-contained: the entry's leaf fields (``tree.leaf_fields``: seq, time, kind,
digests of actor, case and payload, previous hash), the inclusion path to the root at a tree
size, and the signed checkpoint of that size when there is one yet (else the root, unsigned,
and when the next checkpoint is due). ``check_receipt`` verifies one with nothing but the log's
public key: no database, no trust in the operator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerEntry, LedgerHead
from faceledger.errors import CheckpointError, NotFoundError, ValidationError
from faceledger.governance import checkpoints, merkle, tree
from faceledger.governance.ledger import canonical_json, sha256_hex
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger


def _size(s: Session) -> int:
    head = s.get(LedgerHead, 1)
    return head.seq if head else 0


def inclusion(s: Session, seq: int, size: int | None = None) -> dict[str, Any]:
    """Entry ``seq``'s inclusion proof at tree ``size`` (default: the first checkpoint that
    holds it, else the log as it stands)."""
    n = _size(s)
    entry = s.get(LedgerEntry, seq)
    if entry is None or seq > n:
        raise NotFoundError(f"no ledger entry {seq} (the log holds {n})")
    cp = checkpoints.latest(s, at_least=seq) if size is None else None
    size = cp.size if cp is not None else (n if size is None else size)
    if not seq <= size <= n:
        raise ValidationError(f"size must be between {seq} and {n}", field="size")
    if cp is None:  # a checkpoint of exactly this size, when one exists
        cp = checkpoints.by_size(s, size)
    fields = tree.leaf_fields(entry)
    head, path = tree.root_and_inclusion(s, seq - 1, size)
    return {
        "seq": seq, "leaf_index": seq - 1, "tree_size": size,
        "leaf": fields, "leaf_hash": merkle.leaf_hash(tree.leaf_bytes(fields)).hex(),
        "entry_hash": entry.hash,
        "root_hash": head.hex(),
        "path": [h.hex() for h in path],
        "checkpoint": cp.note if cp is not None else None,
    }


def consistency(s: Session, first: int, second: int) -> dict[str, Any]:
    n = _size(s)
    if not 0 <= first <= second <= n:
        raise ValidationError(f"need 0 <= from <= to <= {n} (the log's size)", field="from")
    return {"from": first, "to": second,
            "root_from": tree.root(s, first).hex(), "root_to": tree.root(s, second).hex(),
            "proof": [h.hex() for h in tree.consistency_proof(s, first, second)]}


def inclusion_proof(app: Faceledger, principal: Principal, seq: int,
                    size: int | None = None) -> dict[str, Any]:
    """Any entry's proof (auditors and admins: the leaf fields name the entry's kind)."""
    require(principal.role, "ledger.read", principal.name)
    with app.db.read() as s:
        return inclusion(s, seq, size)


def consistency_proof(app: Faceledger, principal: Principal, first: int, second: int
                      ) -> dict[str, Any]:
    """That the log at ``second`` extends the log at ``first`` (hashes only: any signed-in
    user, and the witnesses)."""
    require(principal.role, "ledger.checkpoint.read", principal.name)
    with app.db.read() as s:
        return consistency(s, first, second)


def receipt(app: Faceledger, s: Session, seq: int,
            disclose: dict[str, Any] | None = None) -> dict[str, Any]:
    """A receipt for entry ``seq`` (inside the caller's read transaction). ``disclose``: payload
    fields given in the clear, with the digests of the others, so the payload digest can be
    recomputed without seeing them."""
    out = inclusion(s, seq)
    if out["checkpoint"] is None:
        st = app.settings
        out["checkpoint_due"] = (f"the next checkpoint, within {st.checkpoint_every_entries} "
                                 f"entries or {st.checkpoint_every_minutes:g} minutes; fetch "
                                 "the receipt again then")
    if disclose is not None:
        out["payload"] = _disclosure(s, seq, disclose)
    return out


def _disclosure(s: Session, seq: int, fields: dict[str, Any]) -> dict[str, Any]:
    from faceledger.governance.ledger_records import field_digests

    entry = s.get(LedgerEntry, seq)
    held = field_digests(entry) if entry is not None else None
    held = held or {}
    shown = {k: v for k, v in fields.items() if k in held}
    return {"fields": shown,
            "other_field_digests": {k: v for k, v in held.items() if k not in shown}}


def check_receipt(rec: dict[str, Any], vkey: str | None) -> list[str]:
    """Verify a receipt offline; the problems found (empty: it checks out). With ``vkey`` the
    checkpoint's signature is checked too, and a receipt without one is reported."""
    from faceledger.governance import notes

    problems: list[str] = []
    try:
        leaf = bytes.fromhex(rec["leaf_hash"])
        fields = rec["leaf"]
        if merkle.leaf_hash(tree.leaf_bytes(fields)) != leaf:
            problems.append("the leaf fields do not hash to the leaf hash")
        if fields.get("seq") != rec["seq"]:
            problems.append("the leaf fields name another entry")
        root = bytes.fromhex(rec["root_hash"])
        path = [bytes.fromhex(h) for h in rec["path"]]
        if not merkle.verify_inclusion(leaf, rec["seq"] - 1, rec["tree_size"], path, root):
            problems.append(f"the inclusion proof does not lead to the root at size "
                            f"{rec['tree_size']}")
        payload = rec.get("payload")
        if payload is not None:
            digests = dict(payload["other_field_digests"])
            digests.update({k: sha256_hex(canonical_json(v))
                            for k, v in payload["fields"].items()})
            if sha256_hex(canonical_json(digests)) != fields.get("payload_digest"):
                problems.append("the disclosed payload fields do not match the entry's "
                                "payload digest")
    except (KeyError, TypeError, ValueError) as exc:
        return [f"malformed receipt ({exc.__class__.__name__}: {exc})"]
    note = rec.get("checkpoint")
    if note is None:
        problems.append("no signed checkpoint covers this entry yet: fetch the receipt again")
    elif vkey is not None:
        try:
            opened = notes.open_note(note, [notes.parse_vkey(vkey)])
            cp = notes.parse_checkpoint(opened.body)
        except CheckpointError as exc:
            problems.append(f"the checkpoint does not verify with the given key: {exc}")
        else:
            if cp.size != rec["tree_size"] or cp.root.hex() != rec["root_hash"]:
                problems.append("the checkpoint signs another tree size or root than the "
                                "proof leads to")
    return problems
