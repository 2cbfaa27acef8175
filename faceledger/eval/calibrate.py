"""Calibrate the identify threshold from the empirical non-mate score distribution.

The maths. A search compares the probe with each of the N faces of the gallery. If each
non-mated comparison exceeds the threshold independently with probability FMR, the chance that
a search of someone who is not enrolled returns any candidate is

    FPIR(N) = 1 - (1 - FMR)^N   (~ N x FMR when N x FMR is small),

so a target FPIR at gallery size N needs the per-comparison rate FMR = 1 - (1 - FPIR)^(1/N).
(Real comparisons are not independent: some probes resemble many people. ``identify``
measures FPIR directly where a dataset is large enough.)

The threshold for an FMR is read from every cross-identity pair of the dataset (n(n-1)/2 minus
the mated pairs; 86 million for LFW), scored in blocks: with M non-mated comparisons at most
k = floor(FMR x M) may reach the threshold, so it lies just above the (k+1)-th highest non-mated
score. Fewer than ~10 such errors make the estimate noise, so an FMR below 10 / M is refused
(or, on request, clamped to 10 / M).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from faceledger.errors import ValidationError
from faceledger.eval import metrics

if TYPE_CHECKING:
    from faceledger.eval.embedset import EmbedSet

MIN_ERRORS = 10
HIST_EDGES = np.linspace(-1.0, 1.0, 801)
FMR_TABLE = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
FNMR_TABLE = (0.005, 0.01, 0.02, 0.05)  # recall-side rows: the opt-out withholding threshold


@dataclass
class Scan:
    """Everything kept from an all-pairs scan."""

    n_nonmate: int
    top: metrics.Floats  # highest non-mate scores, descending
    top_pairs: npt.NDArray[np.int64]  # (len(top), 2) image indices of those scores
    mate: metrics.Floats  # every mated score
    nonmate_hist: npt.NDArray[np.int64]  # counts over HIST_EDGES
    mate_hist: npt.NDArray[np.int64]


def nonmate_count(identities: npt.ArrayLike) -> int:
    counts = np.unique(np.asarray(identities), return_counts=True)[1].astype(np.int64)
    n = int(counts.sum())
    return n * (n - 1) // 2 - int((counts * (counts - 1) // 2).sum())


def scan_pairs(vectors: npt.ArrayLike, identities: npt.ArrayLike, keep: int,
               block: int = 1024, progress: Callable[[int, int], None] | None = None) -> Scan:
    """Score every pair i < j once; keep the ``keep`` highest non-mate scores."""
    v = np.asarray(vectors, dtype=np.float32)
    ids = np.unique(np.asarray(identities), return_inverse=True)[1]
    n = v.shape[0]
    keep = max(1, keep)
    top = np.empty(0)
    top_pairs = np.empty((0, 2), dtype=np.int64)
    mates: list[npt.NDArray[np.float64]] = []
    nh = np.zeros(HIST_EDGES.size - 1, dtype=np.int64)
    mh = np.zeros_like(nh)
    floor = -np.inf
    for s in range(0, n, block):
        e = min(n, s + block)
        sims = v[s:e] @ v[s:].T
        upper = np.arange(s, n)[None, :] > np.arange(s, e)[:, None]
        same = ids[s:e, None] == ids[None, s:]
        m = sims[upper & same].astype(np.float64)
        mates.append(m)
        mh += np.histogram(m, HIST_EDGES)[0]
        nonmask = upper & ~same
        vals = sims[nonmask]
        nh += np.histogram(vals, HIST_EDGES)[0]
        if vals.size > keep:
            floor = max(floor, float(np.partition(vals, vals.size - keep)[vals.size - keep]))
        r, c = np.nonzero(nonmask & (sims >= floor))
        top = np.concatenate([top, sims[r, c].astype(np.float64)])
        top_pairs = np.concatenate([top_pairs, np.stack([r + s, c + s], axis=1)])
        if top.size > keep:
            part = np.argpartition(-top, keep - 1)[:keep]
            top, top_pairs = top[part], top_pairs[part]
            floor = float(top.min())
        if progress:
            progress(e * n - e * (e + 1) // 2, n * (n - 1) // 2)  # pairs scored so far
    order = np.argsort(-top, kind="mergesort")
    return Scan(nonmate_count(identities), top[order], top_pairs[order],
                np.concatenate(mates) if mates else np.empty(0), nh, mh)


def threshold_for_fmr(scan: Scan, fmr: float) -> tuple[float, int]:
    """(threshold, false matches allowed) for a per-comparison FMR."""
    k = math.floor(fmr * scan.n_nonmate * (1 + 1e-12))
    if k >= scan.n_nonmate:
        return -math.inf, k
    if k >= scan.top.size:
        raise ValueError(f"the scan kept {scan.top.size} scores; FMR {fmr:g} needs {k + 1}")
    return float(np.nextafter(scan.top[k], math.inf)), k


def false_matches(scan: Scan, threshold: float) -> int:
    return int((scan.top >= threshold).sum())


def keep_for(fmrs: list[float], n_nonmate: int) -> int:
    return min(n_nonmate, max(math.floor(f * n_nonmate) for f in fmrs) + 1) if fmrs else 1


def fmr_table(scan: Scan, fmrs: tuple[float, ...] = FMR_TABLE) -> list[dict[str, Any]]:
    rows = []
    for f in fmrs:
        if f * scan.n_nonmate < MIN_ERRORS or math.floor(f * scan.n_nonmate) >= scan.top.size:
            continue
        t, _ = threshold_for_fmr(scan, f)
        rows.append({"fmr": f, "threshold": t,
                     "fnmr": float((scan.mate < t).mean()) if scan.mate.size else None})
    return rows


def fnmr_table(scan: Scan, fnmrs: tuple[float, ...] = FNMR_TABLE) -> list[dict[str, Any]]:
    """Threshold per false non-match rate, read from the mated scores: at most floor(f x M) of
    the M mated pairs fall below it (rounded down to 1e-6: never more misses). ``fmr`` is the
    non-mated rate at that threshold where the scan kept enough scores to count it."""
    if not scan.mate.size:
        return []
    mate = np.sort(scan.mate)
    rows = []
    for f in fnmrs:
        k = math.floor(f * mate.size)
        if k < MIN_ERRORS or k >= mate.size:
            continue
        t = math.floor(float(mate[k]) * 1e6) / 1e6
        covered = scan.top.size > 0 and (t > float(scan.top[-1]) or scan.top.size >= scan.n_nonmate)
        rows.append({"fnmr": f, "threshold": t, "achieved_fnmr": float((mate < t).mean()),
                     "fmr": false_matches(scan, t) / scan.n_nonmate if covered else None})
    return rows


def _table(scan: Scan, rates: tuple[float, ...], fmr: float, threshold: float,
           fnmr: float | None) -> list[dict[str, Any]]:
    """The FMR table with the target rate's row at the (rounded-up) operating threshold."""
    rows = [r for r in fmr_table(scan, rates) if not math.isclose(r["fmr"], fmr)]
    rows.append({"fmr": fmr, "threshold": threshold, "fnmr": fnmr})
    return sorted(rows, key=lambda r: -float(r["fmr"]))


@dataclass
class CalibrationResult:
    threshold: float
    target_fmr: float
    gallery_size: int | None
    details: dict[str, Any]
    warnings: list[str]
    scan: Scan


def _target(target_fmr: float | None, target_fpir: float | None,
            gallery_size: int | None) -> float:
    """The per-comparison FMR asked for (an FPIR is turned into one at the gallery size)."""
    if (target_fmr is None) == (target_fpir is None):
        raise ValidationError("give exactly one of --target-fmr (per comparison) or "
                              "--target-fpir (per search, with --gallery-size)")
    if target_fpir is not None and not gallery_size:
        raise ValidationError("--target-fpir needs --gallery-size N")
    rate = target_fmr if target_fmr is not None else target_fpir
    assert rate is not None
    if not 0 < rate < 1:
        raise ValidationError(f"target rates lie strictly between 0 and 1, not {rate:g}")
    if gallery_size is not None and gallery_size < 1:
        raise ValidationError("--gallery-size must be at least 1")
    return target_fmr if target_fmr is not None else metrics.fmr_for_fpir(rate, gallery_size or 1)


def calibrate(es: EmbedSet, *, target_fmr: float | None = None, target_fpir: float | None = None,
              gallery_size: int | None = None, clamp: bool = False,
              min_errors: int = MIN_ERRORS, band_fmrs: tuple[float, ...] = (),
              progress: Callable[[int, int], None] | None = None) -> CalibrationResult:
    """Derive the threshold; ``es`` should hold only images with a detected face.

    ``details["table"]`` (threshold and FNMR per FMR) is what result bands read
    (faceledger/search/bands.py): it holds the standard rates, the target rate and ``band_fmrs``
    (the rates the bands are configured with), each where the data supports it."""
    fmr = _target(target_fmr, target_fpir, gallery_size)
    n_nm = nonmate_count(es.identities)
    warnings: list[str] = []
    lowest = min_errors / n_nm if n_nm else math.inf
    if fmr < lowest:
        implied = (f" (FPIR {metrics.fpir_for_fmr(lowest, gallery_size):.3g} at gallery size "
                   f"{gallery_size:,})" if gallery_size and lowest < 1 else "")
        msg = (f"FMR {fmr:.3g} needs >= {min_errors / fmr:,.0f} non-mate comparisons "
               f"({min_errors} expected false matches); the dataset has {n_nm:,}: the lowest "
               f"FMR it supports is {lowest:.3g}{implied}")
        if not clamp or lowest >= 1:
            raise ValidationError(msg + "; ask for a higher rate or use more data",
                                  lowest_supported_fmr=lowest, nonmate_comparisons=n_nm)
        warnings.append(msg + f"; clamped to FMR {lowest:.3g}")
        fmr = lowest
    rates = tuple(sorted({*FMR_TABLE, fmr, *(f for f in band_fmrs if 0 < f < 1)},
                         reverse=True))
    scan = scan_pairs(es.vectors, es.identities, keep_for(list(rates), n_nm),
                      progress=progress)
    exact, k = threshold_for_fmr(scan, fmr)
    threshold = math.ceil(exact * 1e6) / 1e6  # rounded up: never more false matches
    fm = false_matches(scan, threshold)
    achieved = fm / n_nm
    fnmr = float((scan.mate < threshold).mean()) if scan.mate.size else None
    top = [{"a": es.paths[i], "b": es.paths[j], "score": round(float(s), 6)}
           for (i, j), s in zip(scan.top_pairs[:10].tolist(), scan.top[:10].tolist(), strict=True)]
    details: dict[str, Any] = {
        "method": "empirical non-mate distribution over all cross-identity pairs",
        "images": len(es.paths), "identities": len(set(es.identities.tolist())),
        "nonmate_comparisons": n_nm, "mate_comparisons": int(scan.mate.size),
        "requested": {"target_fmr": target_fmr, "target_fpir": target_fpir,
                      "gallery_size": gallery_size},
        "target_fmr": fmr, "false_matches_allowed": k, "exact_threshold": exact,
        "false_matches_at_threshold": fm, "achieved_fmr": achieved, "fnmr": fnmr,
        "lowest_supported_fmr": lowest,
        "expected_fpir": metrics.fpir_for_fmr(fmr, gallery_size) if gallery_size else None,
        "table": _table(scan, rates, fmr, threshold, fnmr), "fnmr_table": fnmr_table(scan),
        "top_nonmate_pairs": top,
        "warnings": warnings,
    }
    missing = [f for f in band_fmrs if not any(math.isclose(f, r["fmr"]) for r in
                                              details["table"])]
    if missing:
        warnings.append("no table row for band FMR(s) " + ", ".join(f"{f:g}" for f in missing)
                        + f" (fewer than {min_errors} expected false matches in the data): "
                        "results cannot be banded at that rate")
    return CalibrationResult(threshold, fmr, gallery_size, details, warnings, scan)


def describe(res: CalibrationResult) -> list[str]:
    d = res.details
    out = [f"{d['images']:,} images, {d['identities']:,} identities: {d['nonmate_comparisons']:,} "
           f"non-mate and {d['mate_comparisons']:,} mate comparisons"]
    req = d["requested"]
    if req["target_fpir"] is not None:
        out.append(f"target FPIR {req['target_fpir']:g} at gallery size {res.gallery_size:,} -> "
                   f"per-comparison FMR = 1-(1-FPIR)^(1/N) = {res.target_fmr:.4g}")
    out.append(f"threshold {res.threshold:.6f} (exact {d['exact_threshold']:.6f}): "
               f"{d['false_matches_at_threshold']} of {d['nonmate_comparisons']:,} non-mate "
               f"comparisons at or above it (FMR {d['achieved_fmr']:.3g}, at most "
               f"{d['false_matches_allowed']} allowed)"
               + (f"; FNMR {100 * d['fnmr']:.2f}%" if d["fnmr"] is not None else ""))
    if d["expected_fpir"] is not None:
        out.append(f"expected FPIR at gallery size {res.gallery_size:,}: 1-(1-FMR)^N = "
                   f"{d['expected_fpir']:.3g}")
    out.extend(f"threshold at FNMR {100 * r['fnmr']:g}% (opt-out withholding): {r['threshold']:.6f}"
               + (f" (FMR {r['fmr']:.3g})" if r["fmr"] is not None else "")
               for r in d.get("fnmr_table", []))
    out.extend(f"warning: {w}" for w in res.warnings)
    return out
