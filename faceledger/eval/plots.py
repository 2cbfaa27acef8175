"""PNG plots for the model card (matplotlib's Agg canvas; no pyplot, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from faceledger.eval import metrics

if TYPE_CHECKING:
    from faceledger.eval.identify import IdentifyReport
    from faceledger.eval.verify import VerifyReport


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(6.4, 4.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def roc(report: VerifyReport, path: Path) -> Path:
    fig, ax = _figure()
    fpr, tpr = report.roc.fpr, report.roc.tpr
    keep = fpr > 0
    ax.plot(fpr[keep], tpr[keep], lw=1.6, label=f"ROC (AUC {report.auc:.4f})")
    for far, op in report.tar.items():
        ax.plot([max(op.far, 1e-5)], [op.tar], "o", label=f"TAR {op.tar:.3f} @ FAR {far:g}")
    ax.plot([report.eer], [1 - report.eer], "s", label=f"EER {report.eer:.3%}")
    ax.set_xscale("log")
    ax.set_xlim(max(1e-4, 0.5 / max(1, int((~report.labels).sum()))), 1)
    ax.set_ylim(max(0.0, float(tpr[keep].min()) - 0.02) if keep.any() else 0, 1.005)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.set_title("Verification ROC")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def scores_hist(mate_counts: npt.ArrayLike, non_counts: npt.ArrayLike, edges: npt.ArrayLike,
                path: Path, *, title: str, labels: tuple[str, str] = ("mated", "non-mated"),
                thresholds: dict[str, float] | None = None) -> Path:
    fig, ax = _figure()
    e = np.asarray(edges, dtype=np.float64)
    centres = (e[1:] + e[:-1]) / 2
    for counts, label in ((np.asarray(mate_counts), labels[0]), (np.asarray(non_counts), labels[1])):
        total = counts.sum()
        if total:
            ax.step(centres, counts / total / np.diff(e), where="mid",
                    label=f"{label} (n={int(total):,})")
    for name, t in (thresholds or {}).items():
        if np.isfinite(t):
            ax.axvline(t, ls="--", lw=1, color="grey")
            ax.text(t, 0.02, f" {name}", rotation=90, fontsize=7,
                    va="bottom", transform=ax.get_xaxis_transform())
    used = np.flatnonzero(np.asarray(mate_counts) + np.asarray(non_counts))
    if used.size:
        ax.set_xlim(e[used[0]], e[used[-1] + 1])
    ax.set_yscale("log")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def scores_from_arrays(mate: npt.ArrayLike, non: npt.ArrayLike, path: Path, *, title: str,
                       labels: tuple[str, str] = ("mated", "non-mated"),
                       thresholds: dict[str, float] | None = None) -> Path:
    m, n = np.asarray(mate, dtype=np.float64), np.asarray(non, dtype=np.float64)
    both = np.concatenate([m[np.isfinite(m)], n[np.isfinite(n)]])
    lo, hi = (float(both.min()), float(both.max())) if both.size else (-1.0, 1.0)
    edges = np.linspace(lo - 1e-6, hi + 1e-6, 81)
    return scores_hist(np.histogram(m, edges)[0], np.histogram(n, edges)[0], edges, path,
                       title=title, labels=labels, thresholds=thresholds)


def cmc(report: IdentifyReport, path: Path) -> Path:
    fig, ax = _figure()
    for s in report.sizes:
        ranks = np.arange(1, s.cmc.size + 1)
        ax.plot(ranks, s.cmc, marker=".", lw=1.2, label=f"gallery {s.label}")
    ax.set_xscale("log")
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate (mate at rank <= r)")
    ax.set_title("Closed-set CMC")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def fnir_fpir(report: IdentifyReport, path: Path) -> Path:
    fig, ax = _figure()
    for s in report.sizes:
        if not s.nonmated.top1.size:
            continue
        fp, fn = metrics.fnir_fpir_curve(s.mated.mate_score, s.mated.mate_rank, s.nonmated.top1)
        keep = fp > 0
        ax.step(fp[keep], fn[keep], where="post", lw=1.2, label=f"gallery {s.label}")
    ax.set_xscale("log")
    ax.set_xlabel("FPIR (non-mated searches returning a candidate)")
    ax.set_ylabel("FNIR (mate not at rank 1 above threshold)")
    ax.set_title("Open-set identification (DET)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)
