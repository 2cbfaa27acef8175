"""Write an oversight report as JSON, CSV (one row per search) or HTML with embedded plots.

``render_html`` is a self-contained downloadable file (inline CSS, images as data: URIs, and a
CSP that forbids scripts). ``render_html_fragment`` is for embedding in the web app: no inline
styles or scripts, only class names, so it works under the app's strict CSP."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from faceledger.oversight.flags import WEEKDAYS, flags_by_search
from faceledger.oversight.summary import period_text, when

if TYPE_CHECKING:
    from faceledger.oversight.report import OversightReport

FORMATS = ("json", "csv", "html")
CSV_COLUMNS = ("search_id", "started_at", "local_time", "user", "role", "unit", "case",
               "purpose", "offence", "mode", "status", "results", "outcome", "outcome_date",
               "flags")


def render_json(rep: OversightReport) -> str:
    return rep.to_json()


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is quoted (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def render_csv(rep: OversightReport) -> str:
    tz = ZoneInfo(rep.timezone)
    marks = flags_by_search(rep.flags)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rep.searches:
        w.writerow([_cell(v) for v in (
            r.id, r.started_at.isoformat(), r.started_at.astimezone(tz).isoformat(), r.user,
            r.role, r.unit or "", r.case, r.purpose, r.offence, r.mode, r.status,
            r.result_count, r.outcome or "",
            r.outcome_date.isoformat() if r.outcome_date else "", ";".join(marks.get(r.id, [])))])
    return buf.getvalue()


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "None.") -> str:
    body = "".join("<tr>" + "".join(f"<td>{escape(_text(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    if not body:
        return f"<p class=\"empty\">{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(_text(x) for x in v)
    return str(v)


def _counts(title: str, label: str, counts: dict[str, int]) -> str:
    return (f"<section class=\"counts\"><h3>{escape(title)}</h3>"
            + _table((label, "searches"), counts.items()) + "</section>")


def _flags(rep: OversightReport) -> str:
    if not rep.flags:
        return "<p class=\"empty\">No misuse flags were raised.</p>"
    out = []
    for f in rep.flags:
        keys = list(dict.fromkeys(k for e in f.evidence for k in e))
        out.append(
            f"<article class=\"flag sev-{escape(f.severity)}\"><h3>"
            f"<span class=\"severity\">{escape(f.severity)}</span> {escape(f.flag)} — "
            f"{escape(f.user)}</h3><p>{escape(f.summary)}</p><details><summary>Evidence "
            f"({len(f.evidence)})</summary>"
            + _table(keys, ([e.get(k) for k in keys] for e in f.evidence)) + "</details></article>")
    return "".join(out)


def _witnesses(rep: OversightReport) -> str:
    """The transparency log: warnings, each witness, the latest checkpoint and the log key."""
    t = rep.transparency
    if t is None:
        return ""
    tz = rep.timezone
    warn = "".join(f"<article class=\"flag sev-medium witness-warning\"><p>{escape(w)}.</p>"
                   "</article>" for w in t["warnings"])
    rows = _table(("witness", "key id", "last co-signed", "largest size vouched for",
                   "checkpoints co-signed", "last received"),
                  ((w["witness"], w["key_id"], _when(w["last_signed_at"], tz), w["last_size"],
                    w["cosignatures"], _when(w["last_received_at"], tz))
                   for w in t["witnesses"]), "No witness has co-signed a checkpoint.")
    cp, key = t["latest_checkpoint"], t["log_key"]
    latest = ("<p class=\"empty\">No checkpoint signed yet.</p>" if cp is None else
              f"<p class=\"latest-checkpoint\">Latest signed checkpoint: {cp['size']} entries, "
              f"signed {escape(_when(cp['created_at'], tz))}, root <code class=\"hash\">"
              f"{escape(cp['root_hash'])}</code>, {cp['cosignatures']} cosignature(s); "
              f"{t['checkpoints']} checkpoint(s) in all.</p>")
    log = (f"<p class=\"log-key\">Log key (origin {escape(key['origin'])}, key id "
           f"{escape(key['key_id'])}): <code class=\"hash vkey\">{escape(key['vkey'])}</code>. "
           "Anyone holding a checkpoint or a receipt checks it against this key.</p>"
           if key["vkey"] else "")
    return ("<section class=\"witnesses\"><h2>Ledger witnesses</h2>"
            + warn + rows + latest + log + "</section>")


def _when(value: str | None, tz: str) -> str:
    return "—" if not value else when(datetime.fromisoformat(value), tz)


def _plots(rep: OversightReport) -> str:
    from faceledger.oversight.plots import all_plots  # matplotlib only when drawing

    return "".join(
        f"<figure class=\"plot plot-{name}\"><img src=\"{uri}\" alt=\"{escape(caption)}\">"
        f"<figcaption>{escape(caption)}</figcaption></figure>"
        for name, (caption, uri) in all_plots(rep, rep.working_hours).items())


def _body(rep: OversightReport) -> str:
    tz = rep.timezone
    marks = flags_by_search(rep.flags)
    hours = (f"{rep.working_hours[0]:02d}:00-{rep.working_hours[1]:02d}:00, "
             + ", ".join(WEEKDAYS[d][:3] for d in sorted(rep.working_days)))
    scope = f"user {rep.user}" if rep.user else "all users"
    sections = [
        "<header><h1>Face search oversight report</h1>"
        f"<p class=\"period\">Period {escape(period_text(rep))}; {escape(scope)}; working hours "
        f"{escape(hours)}. Generated {escape(when(rep.generated_at, tz))}.</p></header>",
        "<section class=\"answers\"><h2>In brief</h2><ul>"
        + "".join(f"<li>{escape(s)}</li>" for s in rep.answers()) + "</ul></section>",
        f"<section class=\"flags\"><h2>Misuse flags</h2>{_flags(rep)}</section>" + _witnesses(rep),
        f"<section class=\"plots\"><h2>Plots</h2>{_plots(rep)}</section>",
        "<section class=\"users\"><h2>By whom</h2>" + _table(
            ("user", "role", "unit", "first search", "last search", "searches", "cases",
             "searches per case"),
            ((u.name, u.role, u.unit, when(u.first_search, tz), when(u.last_search, tz),
              u.searches, u.cases, u.searches_per_case) for u in rep.users)) + "</section>",
        "<section class=\"breakdown\"><h2>What for</h2>"
        + _counts("Per day", "day", rep.per_day) + _counts("Per purpose", "purpose",
                                                           rep.per_purpose)
        + _counts("Per offence", "offence", rep.per_offence)
        + _counts("Per case", "case", rep.per_case) + _counts("Per status", "status",
                                                              rep.per_status) + "</section>",
        "<section class=\"outcomes\"><h2>Outcomes</h2>" + _table(
            ("outcome", "searches", "share of completed searches"),
            ((k.replace("_", " ") if k != "none" else "no outcome recorded", n,
              f"{rep.outcome_rates.get(k, rep.no_outcome_share):.1%}")
             for k, n in rep.outcomes.items()))
        + "<h3>Arrests and charges</h3>" + _table(
            ("search", "user", "case", "outcome", "outcome date"),
            ((c["search_id"], c["user"], c["case"], c["result"], c["outcome_date"])
             for c in rep.charged))
        + "<h3>Completed searches with no recorded outcome</h3>" + _table(
            ("search", "user", "case", "purpose", "started", "results"),
            ((c["search_id"], c["user"], c["case"], c["purpose"], c["started_at"],
              c["result_count"]) for c in rep.no_outcome)) + "</section>",
        "<section class=\"refusals\"><h2>Refused attempts and approvals</h2>" + _table(
            ("ledger entry", "time", "user", "case", "purpose", "rule", "reason"),
            ((x["seq"], x["ts"], x["user"], x["case"], x["purpose"], x["rule"] or x["code"],
              x["reason"]) for x in rep.refused_attempts), "No refused attempts.")
        + "<h3>Awaiting approval</h3>" + _table(
            ("search", "user", "case", "purpose", "started", "rules"),
            ((a["search_id"], a["user"], a["case"], a["purpose"], a["started_at"], a["rules"])
             for a in rep.approvals["pending"]))
        + "<h3>Refused approval</h3>" + _table(
            ("search", "user", "case", "purpose", "refused by", "reason"),
            ((a["search_id"], a["user"], a["case"], a["purpose"], a["refused_by"], a["reason"])
             for a in rep.approvals["refused"]))
        + "<p>Failed sign-ins in the period: "
        + f"{sum(int(x.get('count', 1)) for x in rep.signin_failures)}.</p></section>",
        "<section class=\"searches\"><h2>Every search</h2>" + _table(
            ("search", f"time ({tz})", "user", "case", "purpose", "offence", "mode", "status",
             "results", "outcome", "flags"),
            ((r.id, when(r.started_at, tz), r.user, r.case, r.purpose, r.offence, r.mode,
              r.status, r.result_count, r.outcome, marks.get(r.id, [])) for r in rep.searches),
            "No searches in this period.") + "</section>",
    ]
    return "".join(sections)


def render_html_fragment(rep: OversightReport) -> str:
    """The report body for the web app: no style attributes, no <style>, no <script>."""
    return f"<div class=\"oversight-report\">{_body(rep)}</div>"


_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1b1f24;
padding:0 1rem}h1{font-size:1.6rem}h2{border-bottom:1px solid #ccd;margin-top:2rem}
.answers li{margin:.35rem 0}.answers{background:#f3f6fa;padding:.5rem 1.2rem;border-radius:6px}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #d0d5dd;
padding:.2rem .5rem;text-align:left;vertical-align:top}th{background:#eef1f5}
.counts{display:inline-block;vertical-align:top;margin-right:1.5rem}
.flag{border-left:5px solid #999;padding:.1rem .8rem;margin:.8rem 0;background:#fafafa}
.sev-high{border-color:#c62828}.sev-medium{border-color:#ef6c00}.sev-low{border-color:#9e9d24}
.severity{text-transform:uppercase;font-size:.75rem;color:#555}figure{margin:1rem 0}
img{max-width:100%}.empty{color:#666;font-style:italic}
"""


def render_html(rep: OversightReport) -> str:
    """A self-contained HTML file (styles inline, plots as data: URIs, scripts forbidden)."""
    title = "Face search oversight report " + period_text(rep)
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "img-src data:; style-src 'unsafe-inline'\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
            f"<body>{render_html_fragment(rep)}</body></html>\n")


def render(rep: OversightReport, fmt: str) -> str:
    if fmt == "json":
        return render_json(rep)
    if fmt == "csv":
        return render_csv(rep)
    if fmt == "html":
        return render_html(rep)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
