"""The ledger's services: permission first, the paging rules every front end shares, plain data
back (entry dicts, never ORM rows), on a real database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from faceledger.errors import PermissionDeniedError, ValidationError
from faceledger.governance import ledger, ledger_service
from faceledger.governance.ledger_service import MAX_LIMIT, Filters
from tests.conftest import World


def _fill(world: World, n: int = 7) -> list[int]:
    with world.app.db.write() as s:
        return [ledger.append(s, "test.svc", {"i": i}, actor="svc", case_ref="SVC-1").seq
                for i in range(n)]


def test_read_entries_pages_newest_first_as_plain_dicts(world: World) -> None:
    seqs = _fill(world)
    first = ledger_service.read_entries(world.app, world.auditor, Filters(case="SVC-1"), limit=3)
    assert [e["seq"] for e in first.entries] == seqs[::-1][:3]
    assert all(isinstance(e, dict) and e["payload"]["i"] >= 0 for e in first.entries)
    assert first.newer is None and first.older == seqs[-3]
    second = ledger_service.read_entries(world.app, world.admin, Filters(case="SVC-1"),
                                         before=first.older, limit=3)
    assert [e["seq"] for e in second.entries] == seqs[::-1][3:6]
    oldest = ledger_service.read_entries(world.app, world.admin, Filters(case="SVC-1"),
                                         limit=2, newest_first=False)
    assert [e["seq"] for e in oldest.entries] == seqs[:2]


@pytest.mark.parametrize(("kw", "field"), [
    ({"limit": 0}, "limit"), ({"limit": MAX_LIMIT + 1}, "limit"), ({"before": 0}, "before"),
    ({"after": -1}, "after"), ({"before": 2**63}, "before")])
def test_paging_rules_are_the_service_s(world: World, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ledger_service.read_entries(world.app, world.auditor, Filters(), **kw)
    assert exc.value.details["field"] == field


@pytest.mark.parametrize(("name", "most"), [("user", 120), ("case", 200), ("kind", 40)])
def test_filter_lengths_are_refused(world: World, name: str, most: int) -> None:
    too_long = Filters(**{name: "x" * (most + 1)})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="too long") as exc:
        ledger_service.read_entries(world.app, world.auditor, too_long)
    assert exc.value.details["field"] == name
    fits = Filters(**{name: "x" * most})  # type: ignore[arg-type]
    assert ledger_service.read_entries(world.app, world.auditor, fits).entries == []


def test_investigators_may_not_read_or_verify(world: World) -> None:
    _fill(world, 1)
    with pytest.raises(PermissionDeniedError, match="read the ledger"):
        ledger_service.read_entries(world.app, world.investigator, Filters())
    with pytest.raises(PermissionDeniedError, match="verify the ledger"):
        ledger_service.verify_chain(world.app, world.investigator)
    with pytest.raises(PermissionDeniedError):
        ledger_service.ledger_view(world.app, world.investigator, Filters())
    assert ledger_service.verify_chain(world.app, world.auditor).ok


def test_ledger_view_swaps_reversed_days_and_reports_the_chain(world: World) -> None:
    seqs = _fill(world, 3)
    today = datetime.now(UTC).date()
    view = ledger_service.ledger_view(
        world.app, world.auditor,
        Filters(case="SVC-1", date_from=today + timedelta(days=1), date_to=today))
    assert [e["seq"] for e in view.page.entries] == seqs[::-1]  # both days, swapped
    assert view.status["ok"] and view.status["head_seq"] == seqs[-1]
    past = ledger_service.ledger_view(world.app, world.auditor,
                                      Filters(case="SVC-1", date_to=date(2000, 1, 1)))
    assert past.page.entries == []
