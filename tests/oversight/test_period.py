"""The report's default period (the last 90 days) in the CLI, the API and the web page, and the
plots' cheap drawing (no layout collapse with many users; the same report is not drawn twice)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from faceledger.cli.main import app as cli_app
from faceledger.errors import ValidationError
from faceledger.oversight import plots
from faceledger.oversight.period import DEFAULT_DAYS, resolve
from faceledger.oversight.render import render_html_fragment
from faceledger.server import create_app
from tests.oversight.conftest import Builder

LABEL = "the default: the last 90 days"


def test_resolve_defaults_to_the_last_90_days() -> None:
    today = date(2025, 6, 30)
    p = resolve(None, None, "Europe/London", now=today)
    assert (p.first, p.last, p.label) == (date(2025, 4, 2), today, LABEL)
    assert (p.last - p.first).days + 1 == DEFAULT_DAYS == 90
    assert p.start.isoformat() == "2025-04-01T23:00:00+00:00"  # local midnight, as UTC
    assert p.end.isoformat() == "2025-06-30T23:00:00+00:00"
    p = resolve("", "2025-03-31", "UTC", now=today)
    assert p.first == date(2025, 1, 1) and "90 days up to 'to'" in (p.label or "")
    p = resolve("2025-06-01", None, "UTC", now=today)
    assert (p.first, p.last) == (date(2025, 6, 1), today) and "today" in (p.label or "")
    assert resolve("2025-06-01", "2025-06-02", "UTC").label is None
    with pytest.raises(ValidationError, match="before"):
        resolve("2025-06-02", "2025-06-01", "UTC")
    with pytest.raises(ValidationError, match="must be a date"):
        resolve("June", None, "UTC")


def _recent(build: Builder) -> dict[str, int]:
    build.user("ivy")
    now = datetime.now(UTC).replace(microsecond=0)
    return {"recent": build.search("ivy", now - timedelta(days=10), "R-1"),
            "old": build.search("ivy", now - timedelta(days=100), "R-0")}


def test_cli_report_without_dates_covers_the_last_90_days(build: Builder) -> None:
    ids = _recent(build)
    env = {"FACELEDGER_HOME": str(build.world.app.settings.home),
           "FACELEDGER_TOKEN": build.world.admin_token}
    res = CliRunner().invoke(cli_app, ["report"], env=env)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [s["search_id"] for s in data["searches"]] == [ids["recent"]]
    assert data["period"]["label"] == LABEL
    assert LABEL in res.stderr
    html = CliRunner().invoke(cli_app, ["report", "--format", "html"], env=env).stdout
    assert LABEL in html.split("</header>")[0]  # said in the report's header
    explicit = CliRunner().invoke(cli_app, ["report", "--from", "2020-01-01"], env=env)
    assert len(json.loads(explicit.stdout)["searches"]) == 2
    helptext = CliRunner().invoke(cli_app, ["report", "--help"], env=env).stdout
    assert "last 90 days" in " ".join(helptext.split())


@pytest.fixture
def api(build: Builder) -> Iterator[TestClient]:
    settings = build.world.app.settings
    with TestClient(create_app(settings, load_models=False), base_url="http://testserver",
                    headers={"authorization": f"Bearer {build.world.admin_token}"}) as c:
        yield c


def test_api_and_page_default_to_the_last_90_days(build: Builder, api: TestClient) -> None:
    ids = _recent(build)
    r = api.get("/api/v1/reports/oversight")
    assert r.status_code == 200, r.text
    assert [s["search_id"] for s in r.json()["searches"]] == [ids["recent"]]
    assert r.json()["period"]["label"] == LABEL
    r = api.get("/api/v1/reports/oversight", params={"from": "June", "to": "2025-06-01"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    page = api.get("/oversight", headers={"accept": "text/html"})
    assert page.status_code == 200 and LABEL in page.text and "Last 90 days" in page.text
    first = resolve(None, None, build.world.app.policy().oversight.timezone).first
    assert f'id="o-from" name="date_from" type="date" required value="{first}"' in page.text


def test_plots_with_many_users_draw_without_layout_warnings(build: Builder) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for u in range(30):
        build.user(f"user{u:02d}")
        for d in range(u % 4 + 1):
            build.search(f"user{u:02d}", now - timedelta(days=d * 3 + 1, hours=u % 12), f"C-{u}")
    rep = build.report(now - timedelta(days=30), now + timedelta(days=1))
    plots._CACHE.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old layout warned "axes sizes collapsed to zero"
        drawn = plots.all_plots(rep, rep.working_hours)
    assert all(uri.startswith("data:image/png;base64,") for _, uri in drawn.values())
    calls = []
    real = plots.searches_over_time
    plots.searches_over_time = lambda r: calls.append(r) or real(r)  # type: ignore[assignment]
    try:
        assert plots.all_plots(rep, rep.working_hours) == drawn  # kept, not drawn again
        assert calls == []
        assert "data:image/png;base64," in render_html_fragment(rep)
        build.search("user00", now - timedelta(days=2), "C-NEW")
        changed = build.report(now - timedelta(days=30), now + timedelta(days=1))
        assert plots.plot_key(changed, changed.working_hours) != plots.plot_key(
            rep, rep.working_hours)
        plots.all_plots(changed, changed.working_hours)
        assert len(calls) == 1  # a new search: drawn again
    finally:
        plots.searches_over_time = real  # type: ignore[assignment]
