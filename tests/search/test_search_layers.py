"""The search domain's entry layers (API routes, web pages, CLI commands) open no database
session, import nothing from SQLAlchemy or the schema, and run no SQL: the services do."""

from __future__ import annotations

from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "faceledger"
ENTRY = ["api/routes/searches.py", "api/routes/oversight.py", "web/search_pages.py",
         "web/results_pages.py", "web/approval_pages.py", "web/review_pages.py",
         "cli/searching.py", "cli/rights.py"]
FORBIDDEN = ["db.read()", "db.write()", "sqlalchemy", "faceledger.db", "select("]


@pytest.mark.parametrize("module", ENTRY)
def test_entry_layer_holds_no_session_or_sql(module: str) -> None:
    text = (PKG / module).read_text("utf-8")
    assert [f for f in FORBIDDEN if f in text] == []
