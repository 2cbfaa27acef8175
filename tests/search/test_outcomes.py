from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from faceledger.errors import PermissionDeniedError, ValidationError
from faceledger.gallery.ingest import Ingest
from faceledger.governance import ledger
from faceledger.search.outcomes import latest_outcome, record_outcome
from faceledger.search.service import SearchRequest, run_search
from tests.conftest import World
from tests.photos import astronaut_face, encode


def test_outcomes_recorded_latest_counts_and_ledgered(world: World, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(encode(astronaut_face()))
    Ingest(world.app, world.admin).run([tmp_path], "gallery")
    res = run_search(world.app, world.investigator, encode(astronaut_face()),
                     SearchRequest("O-1", "criminal investigation", "robbery", "b"))
    first_row = record_outcome(world.app, world.investigator, res.search_id, "lead_pursued",
                               "visited address", date(2026, 1, 2))
    assert (first_row.result, first_row.date) == ("lead_pursued", date(2026, 1, 2))
    record_outcome(world.app, world.investigator, res.search_id, "charge")
    with world.app.db.read() as s:
        latest = latest_outcome(s, res.search_id)
        assert latest is not None and latest.result == "charge"
        kinds = [e.kind for e in ledger.read(s, case_ref="O-1")]
        assert kinds[-2:] == ["outcome", "outcome"]
        first = ledger.entry_dict(ledger.read(s, kind="outcome")[0])["payload"]
        assert first["date"] == "2026-01-02" and first["note"] == "visited address"
    with pytest.raises(ValidationError, match="one of"):
        record_outcome(world.app, world.investigator, res.search_id, "vibes")
    with pytest.raises(ValidationError, match="future"):
        record_outcome(world.app, world.investigator, res.search_id, "charge",
                       on=date.today() + timedelta(days=1))
    with pytest.raises(PermissionDeniedError):
        record_outcome(world.app, world.admin, res.search_id, "charge")
