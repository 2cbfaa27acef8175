"""The report's plots, drawn with matplotlib's Agg canvas (no display, no pyplot state) as PNG."""

from __future__ import annotations

import base64
import io
from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from faceledger.oversight.records import OUTCOME_RESULTS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from faceledger.oversight.report import OversightReport

MAX_DAILY_BARS = 120  # longer periods are drawn per week


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    return fig, fig.add_subplot()


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def searches_over_time(rep: OversightReport) -> bytes:
    """Stacked bars: searches per day (or week, for long periods) per user."""
    fig, ax = _figure()
    tz = ZoneInfo(rep.timezone)
    if not rep.searches:
        _empty(ax, "No searches in this period")
        return _png(fig)
    days = [r.started_at.astimezone(tz).date() for r in rep.searches]
    first, last = min(days), max(days)
    weekly = (last - first).days + 1 > MAX_DAILY_BARS

    def bucket(d: date) -> date:
        return d - timedelta(days=d.weekday()) if weekly else d

    step = 7 if weekly else 1
    start = bucket(first)
    buckets = [start + timedelta(days=i) for i in range(0, (last - start).days + 1, step)]
    per_user: dict[str, Counter[date]] = defaultdict(Counter)
    for r, d in zip(rep.searches, days, strict=True):
        per_user[r.user][bucket(d)] += 1
    bottom = [0] * len(buckets)
    for user in sorted(per_user):
        heights = [per_user[user][b] for b in buckets]
        ax.bar(buckets, heights, width=step * 0.8, bottom=bottom, label=user)  # type: ignore[arg-type]
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("searches per " + ("week" if weekly else "day"))
    ax.set_title("Searches over time, by user")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.autofmt_xdate()
    return _png(fig)


def outcomes_by_purpose(rep: OversightReport) -> bytes:
    """Stacked bars: completed searches per purpose, split by their latest outcome."""
    fig, ax = _figure()
    done = [r for r in rep.searches if r.completed]
    if not done:
        _empty(ax, "No completed searches in this period")
        return _png(fig)
    purposes = sorted({r.purpose for r in done})
    results = [*OUTCOME_RESULTS, "none"]
    counts = Counter((r.purpose, r.outcome or "none") for r in done)
    left = [0] * len(purposes)
    for res in results:
        widths = [counts[(p, res)] for p in purposes]
        if any(widths):
            label = "no outcome recorded" if res == "none" else res.replace("_", " ")
            ax.barh(purposes, widths, left=left, label=label)
            left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("completed searches")
    ax.set_title("Outcomes by purpose")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def searches_by_hour(rep: OversightReport, working_hours: tuple[int, int] | None = None) -> bytes:
    """Bars: searches by local hour of day, working hours shaded."""
    fig, ax = _figure()
    hours = list(range(24))
    ax.bar(hours, [rep.per_hour.get(h, 0) for h in hours], width=0.8)
    if working_hours is not None:
        ax.axvspan(working_hours[0] - 0.5, working_hours[1] - 0.5, alpha=0.12,
                   label="working hours")
        ax.legend(fontsize="small")
    ax.set_xticks(hours)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"hour of day ({rep.timezone})")
    ax.set_ylabel("searches")
    ax.set_title("Searches by hour of day")
    return _png(fig)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def all_plots(rep: OversightReport, working_hours: tuple[int, int] | None = None
              ) -> dict[str, tuple[str, str]]:
    """name -> (caption, data: URI)."""
    return {
        "over_time": ("Searches over time, by user", data_uri(searches_over_time(rep))),
        "outcomes": ("Outcomes by purpose (completed searches)",
                     data_uri(outcomes_by_purpose(rep))),
        "by_hour": ("Searches by hour of day", data_uri(searches_by_hour(rep, working_hours))),
    }
