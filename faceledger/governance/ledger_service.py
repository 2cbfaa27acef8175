"""The ledger's services for the entry layers: read a page, verify the chain, the auditors' view.

Each checks its permission first, applies the paging rules (cursors, limits, filter lengths) and
opens its own read transaction; it returns plain data (entries as dicts), never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from faceledger.errors import ValidationError
from faceledger.governance import ledger
from faceledger.governance.ledger_status import chain_status
from faceledger.governance.log_verify import LogReport, verify_log
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

SEQ_MAX = 2**63 - 1  # the column is a signed 64-bit integer
MAX_LIMIT = 10_000
MAX_LEN = {"user": 120, "case": 200, "kind": 40}


@dataclass(frozen=True)
class Filters:
    """What to read: ``kind`` is a prefix; ``date_from``/``date_to`` are whole UTC days,
    inclusive (given the wrong way round, they are swapped)."""

    user: str | None = None
    case: str | None = None
    kind: str | None = None
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class EntryPage:
    """Entries (``ledger.entry_dict``) in the order asked for; ``older`` is a ``before``
    cursor and ``newer`` an ``after`` cursor, None where there is nothing more that way."""

    entries: list[dict[str, Any]]
    newest_first: bool
    older: int | None
    newer: int | None


@dataclass(frozen=True)
class LedgerView:
    """The auditors' page: the chain status (``ledger_status.chain_status``) and a page."""

    status: dict[str, Any]
    page: EntryPage


def check_paging(filters: Filters, before: int | None, after: int | None, limit: int) -> None:
    """The paging rules every front end shares (ValidationError, naming the field)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if before is not None and not 1 <= before <= SEQ_MAX:
        raise ValidationError("'before' must be a sequence number of 1 or more",
                              field="before")
    if after is not None and not 0 <= after <= SEQ_MAX:
        raise ValidationError("'after' must be a sequence number of 0 or more", field="after")
    for name, most in MAX_LEN.items():
        value = getattr(filters, name)
        if value is not None and len(value) > most:
            raise ValidationError(f"'{name}' is too long ({most} characters at most)",
                                  field=name)


def _page(app: Faceledger, s: Any, filters: Filters, before: int | None, after: int | None,
          limit: int, newest_first: bool) -> EntryPage:
    start, end = filters.date_from, filters.date_to
    if start and end and end < start:
        start, end = end, start
    pg = ledger.page(s, user=filters.user or None, case_ref=filters.case or None,
                     kind=filters.kind or None,
                     since=start.isoformat() if start else None,
                     until=(end + timedelta(days=1)).isoformat() if end else None,
                     before=before, after=after, limit=limit, newest_first=newest_first)
    return EntryPage([ledger.entry_dict(e) for e in pg.entries], newest_first, pg.older,
                     pg.newer)


def read_entries(app: Faceledger, principal: Principal, filters: Filters, *,
                 before: int | None = None, after: int | None = None, limit: int = 50,
                 newest_first: bool = True) -> EntryPage:
    """A page of entries matching ``filters`` (see ``ledger.page`` for the cursors)."""
    require(principal.role, "ledger.read", principal.name)
    check_paging(filters, before, after, limit)
    with app.db.read() as s:
        return _page(app, s, filters, before, after, limit, newest_first)


def verify_chain(app: Faceledger, principal: Principal) -> LogReport:
    """Walk the whole chain, fold it into the Merkle log and check it against every stored
    (and witnessed) checkpoint, then cross-check the records it vouches for (searches,
    reviews, outcomes, approvals, opt-outs: ``ledger_records``); the report names the first
    problem (``log_verify``)."""
    return verify_log(app, principal)


def ledger_view(app: Faceledger, principal: Principal, filters: Filters, *,
                before: int | None = None, after: int | None = None,
                limit: int = 100) -> LedgerView:
    """The chain status (full walk at most once a minute) and the newest page of entries
    matching ``filters``, in one read transaction."""
    require(principal.role, "ledger.read", principal.name)
    check_paging(filters, before, after, limit)
    with app.db.read() as s:
        status = chain_status(s, str(app.settings.home))
        return LedgerView(status, _page(app, s, filters, before, after, limit, True))
