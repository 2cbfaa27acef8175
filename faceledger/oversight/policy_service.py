"""The policy in force, as the entry layers show it: ``policy show``, ``GET /api/v1/policy`` and
the policy page (with the text and hash last ledgered, and whether the file has changed since)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from faceledger.db.schema import LedgerEntry
from faceledger.errors import FaceledgerError
from faceledger.governance.policy import describe, load_policy, policy_path
from faceledger.oversight.flags import WEEKDAYS
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger


@dataclass(frozen=True)
class PolicyView:
    policy: dict[str, Any]  # ``describe``: the validated policy as JSON data
    ledgered: dict[str, Any] | None  # sha256, source, text, seq, ts of the last ledgered one
    changed: bool  # the file on disk differs from the one ledgered (restart to apply it)
    working_days: str  # "Mon, Tue, …"


def show_policy(app: Faceledger, principal: Principal) -> dict[str, Any]:
    """The policy in force (validated), for every signed-in user."""
    require(principal.role, "signed_in", principal.name)
    return describe(app.policy())


def policy_view(app: Faceledger, principal: Principal) -> PolicyView:
    """The policy in force (loading and ledgering it if this process has not yet), the last
    ``policy.loaded`` entry, and whether the file on disk differs from it."""
    require(principal.role, "signed_in", principal.name)
    policy = app.policy()
    ledgered = _ledgered(app)
    on_disk: str | None = None
    try:
        current = load_policy(policy_path(app.settings.home, app.settings.policy_file))
        on_disk = current.sha256
        if ledgered is None:
            ledgered = {"sha256": current.sha256, "source": current.source,
                        "text": current.text, "seq": None, "ts": None}
    except FaceledgerError:
        on_disk = None
    days = ", ".join(WEEKDAYS[d] for d in sorted(policy.oversight.working_days))
    return PolicyView(describe(policy), ledgered,
                      bool(ledgered and on_disk and on_disk != ledgered["sha256"]), days)


def _ledgered(app: Faceledger) -> dict[str, Any] | None:
    """The latest "policy.loaded" ledger entry: the policy's hash, source and text."""
    with app.db.read() as s:
        entry = s.execute(select(LedgerEntry).where(LedgerEntry.kind == "policy.loaded")
                          .order_by(LedgerEntry.seq.desc()).limit(1)).scalar_one_or_none()
        if entry is None or not entry.payload:
            return None
        payload = json.loads(entry.payload)
        return {"sha256": payload.get("sha256"), "source": payload.get("source"),
                "text": payload.get("text"), "seq": entry.seq, "ts": entry.ts}
