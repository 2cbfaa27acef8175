"""JSON, CSV and HTML output, and the `faceledger report` command."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from faceledger.cli.report import register
from faceledger.errors import PermissionDeniedError
from faceledger.oversight.period import resolve
from faceledger.oversight.render import CSV_COLUMNS, render, render_html, render_html_fragment
from faceledger.oversight.report import OversightReport
from tests.oversight.conftest import Builder
from tests.oversight.test_report import MARCH, scenario

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def flagged(build: Builder) -> tuple[Builder, dict[str, int], OversightReport]:
    ids = scenario(build)
    person = build.faces.person()
    ids["w1"] = build.search("ivy", "2025-03-08 22:00", "C-1", emb=build.faces.photo(person))
    ids["w2"] = build.search("ivy", "2025-03-10 10:00", "=HYPERLINK(\"x\")<b>",
                             emb=build.faces.photo(person), outcome="no_match")
    return build, ids, build.report(*MARCH)


def test_csv_has_one_row_per_search_with_flags(
        flagged: tuple[Builder, dict[str, int], OversightReport]) -> None:
    _, ids, rep = flagged
    rows = list(csv.DictReader(io.StringIO(render(rep, "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r["search_id"]) for r in rows] == [r.id for r in rep.searches]
    by_id = {int(r["search_id"]): r for r in rows}
    s1 = by_id[ids["s1"]]
    assert (s1["user"], s1["case"], s1["purpose"], s1["offence"], s1["mode"], s1["results"],
            s1["outcome"]) == ("ivy", "C-1", "criminal investigation", "robbery", "investigate",
                               "3", "charge")
    assert s1["started_at"] == "2025-03-03T09:00:00+00:00" and s1["flags"] == ""
    assert by_id[ids["s6"]]["status"] == "pending"
    assert set(by_id[ids["w1"]]["flags"].split(";")) == {"same_face_across_cases",
                                                         "outside_working_hours"}
    assert by_id[ids["w2"]]["flags"] == "same_face_across_cases"
    assert by_id[ids["w2"]]["case"].startswith("'=")  # no spreadsheet formulas


def test_json_round_trips(flagged: tuple[Builder, dict[str, int], OversightReport]) -> None:
    rep = flagged[2]
    data = json.loads(render(rep, "json"))
    assert data["usage"]["searches"] == rep.total == 10
    assert {f["flag"] for f in data["flags"]} == {"same_face_across_cases",
                                                  "outside_working_hours"}
    for f in data["flags"]:
        assert set(f) >= {"flag", "user", "severity", "summary", "evidence"} and f["evidence"]


def test_html_answers_at_the_top_and_embeds_plots(
        flagged: tuple[Builder, dict[str, int], OversightReport]) -> None:
    rep = flagged[2]
    page = render_html(rep)
    assert page.startswith("<!doctype html>") and "<script" not in page
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 3 and all(base64.b64decode(u).startswith(PNG) for u in uris)
    answers = page.index("In brief")
    assert answers < page.index("data:image/png") and answers < page.index("By whom")
    for sentence in rep.answers():
        assert html.escape(sentence) in page
    assert "The system was first used on 2025-02-20 10:00" in page
    assert "made by 4 users" in page and "Yes: 1 search led to a charge" in page
    assert "led to an identification, arrest or charge" in page
    # case references are escaped, never markup
    assert "<b>" not in page.split("</style>")[1] and "&lt;b&gt;" in page


def test_fragment_has_no_inline_style_or_script(
        flagged: tuple[Builder, dict[str, int], OversightReport]) -> None:
    frag = render_html_fragment(flagged[2])
    assert frag.startswith('<div class="oversight-report">')
    lower = frag.lower()
    for banned in ("style=", "<style", "<script", "javascript:"):
        assert banned not in lower, banned
    assert re.search(r"<[^>]*\son[a-z]+=", lower) is None  # no event handler attributes
    assert frag.count("data:image/png;base64,") == 3


def test_empty_report_renders(build: Builder) -> None:
    rep = build.report(*MARCH)
    assert render_html(rep).count("data:image/png;base64,") == 3
    assert render(rep, "csv").strip() == ",".join(CSV_COLUMNS)
    with pytest.raises(ValueError):
        render(rep, "pdf")


def _cli(build: Builder) -> tuple[typer.Typer, CliRunner, dict[str, str]]:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a group, so that "report" is a subcommand
        pass

    register(app)
    env = {"FACELEDGER_HOME": str(build.world.app.settings.home),
           "FACELEDGER_TOKEN": build.world.admin_token}
    return app, CliRunner(), env


def test_cli_json_html_and_csv(build: Builder, tmp_path: Path) -> None:
    ids = scenario(build)
    app, runner, env = _cli(build)
    res = runner.invoke(app, ["report", "--from", "2025-03-01", "--to", "2025-03-31"], env=env)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["usage"]["searches"] == 8 and data["per_case"]["C-1"] == 2
    assert data["period"]["end"] == "2025-04-01T00:00:00+00:00"
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--from", "2025-03-01", "--to", "2025-03-31",
                              "--user", "ivy", "--format", "html", "--out", str(out)], env=env)
    assert res.exit_code == 0, res.output
    assert "data:image/png;base64," in out.read_text("utf-8")
    res = runner.invoke(app, ["report", "--from", "2025-03-03", "--to", "2025-03-03",
                              "--format", "csv"], env=env)
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [int(r["search_id"]) for r in rows] == [ids["s1"], ids["s2"]]


def test_cli_refuses_bad_input_and_investigators(build: Builder) -> None:
    app, runner, env = _cli(build)
    res = runner.invoke(app, ["report", "--from", "2025-03-31", "--to", "2025-03-01"], env=env)
    assert res.exit_code == 2 and "before" in res.output
    res = runner.invoke(app, ["report", "--from", "March", "--to", "2025-03-01"], env=env)
    assert res.exit_code == 2
    res = runner.invoke(app, ["report", "--from", "2025-03-01", "--to", "2025-03-02",
                              "--format", "pdf"], env=env)
    assert res.exit_code == 2
    env["FACELEDGER_TOKEN"] = build.world.investigator_token
    res = runner.invoke(app, ["report", "--from", "2025-03-01", "--to", "2025-03-02"], env=env)
    assert isinstance(res.exception, PermissionDeniedError)


def test_period_is_whole_local_days() -> None:
    p = resolve("2025-07-01", "2025-07-31", "Europe/London")
    assert p.start.isoformat() == "2025-06-30T23:00:00+00:00"
    assert p.end.isoformat() == "2025-07-31T23:00:00+00:00"
