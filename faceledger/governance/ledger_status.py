"""The chain status the ledger page shows, without walking the whole chain on every view.

A full walk (``ledger.verify``) costs about 60 us an entry (2 s at 35,000 entries), and the
ledger is the auditors' landing page. So a full walk is kept for ``FULL_CHECK_EVERY`` seconds;
within that time a view walks only the entries appended since, which must link to the fully
checked head. A full walk also cross-checks the records the ledger vouches for
(``ledger_records``). Anything else (an edited, deleted or reordered entry) shows at the next full walk,
at most ``FULL_CHECK_EVERY`` seconds later, and the page says when that was.
``faceledger ledger verify`` and ``GET /api/v1/ledger/verify`` always walk the whole chain."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from faceledger.governance import ledger
from faceledger.governance.ledger_records import check_records, with_records

FULL_CHECK_EVERY = 60.0  # seconds


@dataclass(frozen=True)
class _Checked:
    monotonic: float
    at: str  # ISO 8601 UTC
    seq: int
    hash: str
    entries: int


_checked: dict[str, _Checked] = {}
_lock = threading.Lock()


def chain_status(session: Session, key: str, *, max_age: float = FULL_CHECK_EVERY
                 ) -> dict[str, Any]:
    """``ledger.verify``'s report, plus ``full_check_at`` (when the whole chain was last
    walked) and ``new_checked`` (entries walked now, after that full walk). ``key`` names the
    database (one cache per data home)."""
    now = time.monotonic()
    with _lock:
        last = _checked.get(key)
    if last is not None and now - last.monotonic < max_age:
        recent = ledger.verify(session, after_seq=last.seq, after_hash=last.hash)
        if recent.ok:
            with _lock:
                _checked[key] = _Checked(last.monotonic, last.at, recent.head_seq,
                                         recent.head_hash, last.entries + recent.entries)
            return {**recent.as_dict(), "entries": last.entries + recent.entries,
                    "full_check_at": last.at, "new_checked": recent.entries}
    report = with_records(ledger.verify(session), check_records(session))
    at = datetime.now(UTC).isoformat(timespec="seconds")
    with _lock:
        if report.ok:
            _checked[key] = _Checked(now, at, report.head_seq, report.head_hash, report.entries)
        else:
            _checked.pop(key, None)
    return {**report.as_dict(), "full_check_at": at, "new_checked": 0}


def forget(key: str | None = None) -> None:
    """Drop the kept full walk (all of them without ``key``): the next view walks it all."""
    with _lock:
        if key is None:
            _checked.clear()
        else:
            _checked.pop(key, None)
