"""The report's plots, drawn with matplotlib's Agg canvas (no display, no pyplot state) as PNG.

Drawing is kept cheap, since the oversight page draws all three on every view: fixed margins
instead of a layout engine (constrained layout measured every tick label and legend entry, twice
per figure), each stacked series as one PolyCollection instead of one Rectangle artist per bar,
and at most ``MAX_USERS`` users named in the legend (the rest stack as "others"). The last few
sets of plots are kept, keyed by a digest of what they show."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections import Counter, OrderedDict, defaultdict
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from faceledger.oversight.records import OUTCOME_RESULTS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from faceledger.oversight.report import OversightReport

MAX_DAILY_BARS = 120  # longer periods are drawn per week
MAX_USERS = 8  # users named in the over-time plot; the others stack as one series
MAX_DATE_TICKS = 10


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _figure(legend: bool = False) -> tuple[Figure, Axes]:
    """Fixed margins (in figure fractions); a legend gets a column on the right."""
    fig = Figure(figsize=(9, 3.6))
    fig.subplots_adjust(left=0.08, bottom=0.2, top=0.9, right=0.8 if legend else 0.97)
    return fig, fig.add_subplot()


def _stacked_bars(ax: Axes, x: list[float], heights: list[int], bottom: list[int],
                  width: float, label: str, color: str) -> None:
    """One series of (stacked) vertical bars as a single artist."""
    x0 = np.asarray(x, dtype=float) - width / 2
    b = np.asarray(bottom, dtype=float)
    top = b + np.asarray(heights, dtype=float)
    keep = top > b
    x0, b, top = x0[keep], b[keep], top[keep]
    verts = np.stack([np.column_stack([x0, b]), np.column_stack([x0, top]),
                      np.column_stack([x0 + width, top]), np.column_stack([x0 + width, b])],
                     axis=1)
    ax.add_collection(PolyCollection(list(verts), facecolors=color, edgecolors="none",
                                     label=label), autolim=True)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def searches_over_time(rep: OversightReport) -> bytes:
    """Stacked bars: searches per day (or week, for long periods) per user."""
    fig, ax = _figure(legend=True)
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
    ranked = sorted(per_user, key=lambda u: (-per_user[u].total(), u))
    series = [(u if len(u) <= 16 else u[:15] + "…", per_user[u])
              for u in sorted(ranked[:MAX_USERS])]
    if len(ranked) > MAX_USERS:
        others: Counter[date] = Counter()
        for u in ranked[MAX_USERS:]:
            others.update(per_user[u])
        series.append((f"{len(ranked) - MAX_USERS} others", others))
    x = [float(i) for i in range(len(buckets))]  # one unit per bucket, dates as tick labels
    colors = rcParams["axes.prop_cycle"].by_key()["color"]
    bottom = [0] * len(buckets)
    for i, (label, counts) in enumerate(series):
        heights = [counts[b] for b in buckets]
        _stacked_bars(ax, x, heights, bottom, 0.8, label, colors[i % len(colors)])
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    ax.set_xlim(-0.6, len(buckets) - 0.4)
    ax.set_ylim(0, max(bottom) * 1.05 + 0.5)
    every = max(1, -(-len(buckets) // MAX_DATE_TICKS))
    fmt = "%d %b %Y" if first.year != last.year else "%d %b"
    ax.set_xticks(x[::every], [b.strftime(fmt) for b in buckets[::every]])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("searches per " + ("week" if weekly else "day"))
    ax.set_title("Searches over time, by user")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def outcomes_by_purpose(rep: OversightReport) -> bytes:
    """Stacked bars: completed searches per purpose, split by their latest outcome."""
    fig, ax = _figure(legend=True)
    fig.subplots_adjust(left=0.22, right=0.72)  # room for the purposes and outcomes' names
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


_CACHE: OrderedDict[str, dict[str, tuple[str, str]]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 16


def plot_key(rep: OversightReport, working_hours: tuple[int, int] | None) -> str:
    """A digest of everything the plots show: the same report draws the same pictures."""
    h = hashlib.sha256(f"{rep.timezone}|{working_hours}|".encode())
    for r in rep.searches:
        h.update(f"{r.user}|{r.started_at.isoformat()}|{r.purpose}|{r.status}|{r.outcome}\n"
                 .encode())
    return h.hexdigest()


def all_plots(rep: OversightReport, working_hours: tuple[int, int] | None = None
              ) -> dict[str, tuple[str, str]]:
    """name -> (caption, data: URI). Kept for the last few reports: reloading the oversight
    page, or the same period again, does not draw again unless a search changed."""
    key = plot_key(rep, working_hours)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return dict(_CACHE[key])
    plots = {
        "over_time": ("Searches over time, by user", data_uri(searches_over_time(rep))),
        "outcomes": ("Outcomes by purpose (completed searches)",
                     data_uri(outcomes_by_purpose(rep))),
        "by_hour": ("Searches by hour of day", data_uri(searches_by_hour(rep, working_hours))),
    }
    with _CACHE_LOCK:
        _CACHE[key] = plots
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return dict(plots)
