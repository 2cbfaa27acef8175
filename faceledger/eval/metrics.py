"""Biometric accuracy metrics, pure numpy.

Conventions (used everywhere in ``faceledger.eval``):

* A *score* is a similarity: higher means "more likely the same person".
* A comparison is a *match* when ``score >= threshold`` (the product's identify mode keeps
  candidates with ``similarity >= threshold``).
* Verification: FAR = FMR = fraction of non-mated (different-person) comparisons that match;
  TAR = 1 - FNMR = fraction of mated comparisons that match.
* Identification (NIST FRTE): FPIR = fraction of non-mated searches (the probe's identity is not
  enrolled) returning any candidate at or above the threshold; FNIR = fraction of mated searches
  whose mate is not returned at rank <= R with a score at or above the threshold (R = 1 in
  identification mode; R = 50 with no threshold in "investigation" mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def _scores(x: npt.ArrayLike) -> Floats:
    return np.asarray(x, dtype=np.float64).ravel()


def _split(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[Floats, Floats]:
    s = _scores(scores)
    lab = np.asarray(labels).astype(bool).ravel()
    if s.shape != lab.shape:
        raise ValueError(f"{s.size} scores but {lab.size} labels")
    pos, neg = s[lab], s[~lab]
    if pos.size == 0 or neg.size == 0:
        raise ValueError("need at least one mated and one non-mated score")
    return pos, neg


# ---------------------------------------------------------------- verification


@dataclass(frozen=True)
class Roc:
    """ROC points for every distinct threshold, from (0, 0) at +inf to (1, 1)."""

    fpr: Floats
    tpr: Floats
    thresholds: Floats


def roc_curve(scores: npt.ArrayLike, labels: npt.ArrayLike) -> Roc:
    pos, neg = _split(scores, labels)
    s = np.concatenate([pos, neg])
    lab = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    order = np.argsort(-s, kind="mergesort")
    s, lab = s[order], lab[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each score value
    tps = np.cumsum(lab)[last]
    fps = np.cumsum(1 - lab)[last]
    return Roc(np.r_[0.0, fps / neg.size], np.r_[0.0, tps / pos.size], np.r_[np.inf, s[last]])


def auc(roc: Roc) -> float:
    """Area under the ROC (trapezoids; equals the Mann-Whitney statistic, ties counting half)."""
    return float(np.trapezoid(roc.tpr, roc.fpr))


def eer(roc: Roc) -> tuple[float, float]:
    """Equal error rate and the threshold where it is reached.

    FNR = 1 - TPR falls and FPR rises as the threshold falls; the EER is where they cross,
    interpolated linearly between the two ROC points that straddle the crossing. The threshold
    returned is that of the first ROC point with FPR >= FNR."""
    fnr = 1.0 - roc.tpr
    gap = fnr - roc.fpr
    gap[np.abs(gap) < 1e-12] = 0.0  # 1 - 2/3 is not exactly 1/3
    i = int(np.argmax(gap <= 0))
    if gap[i] == 0 or i == 0:
        return float(roc.fpr[i]), float(roc.thresholds[i])
    a = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(roc.fpr[i - 1] + a * (roc.fpr[i] - roc.fpr[i - 1])), float(roc.thresholds[i])


def threshold_at_rate(negatives: npt.ArrayLike, rate: float) -> float:
    """The lowest threshold t with fraction(negatives >= t) <= rate.

    With n negatives at most k = floor(rate * n) may be accepted, so t lies just above the
    (k+1)-th largest negative (ties at that value are all rejected)."""
    neg = _scores(negatives)
    if neg.size == 0:
        raise ValueError("no non-mated scores")
    k = math.floor(rate * neg.size * (1 + 1e-12))
    if k >= neg.size:
        return -math.inf
    kth = float(np.partition(neg, neg.size - k - 1)[neg.size - k - 1])
    return float(np.nextafter(kth, math.inf))


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    tar: float  # or 1 - FNIR in identification
    far: float  # actual FAR / FMR / FPIR at the threshold (<= the target)

    def as_dict(self) -> dict[str, float]:
        return {"threshold": self.threshold, "tar": self.tar, "far": self.far}


def tar_at_far(scores: npt.ArrayLike, labels: npt.ArrayLike, far: float) -> OperatingPoint:
    """The highest TAR whose FAR does not exceed ``far`` (no interpolation)."""
    pos, neg = _split(scores, labels)
    t = threshold_at_rate(neg, far)
    return OperatingPoint(t, float((pos >= t).mean()), float((neg >= t).mean()))


def rates_at(scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at a fixed threshold."""
    pos, neg = _split(scores, labels)
    return float((neg >= threshold).mean()), float((pos < threshold).mean())


def best_accuracy_threshold(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, float]:
    """The threshold that maximises accuracy on these scores, and that accuracy.

    Candidate thresholds are the midpoints between consecutive distinct sorted scores (and the
    two ends); when several cuts tie, the middle one (lower median) is taken."""
    pos, neg = _split(scores, labels)
    s = np.concatenate([pos, neg])
    lab = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    order = np.argsort(s, kind="mergesort")
    s, lab = s[order], lab[order]
    n = s.size
    # cut i: scores s[i:] are called matches
    neg_below = np.r_[0.0, np.cumsum(1 - lab)]
    pos_from = pos.size - np.r_[0.0, np.cumsum(lab)]
    correct = neg_below + pos_from
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = s[1:] != s[:-1]
    correct[~valid] = -1
    best = np.flatnonzero(correct == correct.max())
    i = int(best[(best.size - 1) // 2])
    if i == 0:
        t = float(s[0])
    elif i == n:
        t = float(np.nextafter(s[-1], math.inf))
    else:
        t = float((s[i - 1] + s[i]) / 2)
    return t, float(correct[i] / n)


@dataclass(frozen=True)
class KFold:
    accuracies: list[float]
    thresholds: list[float]
    mean: float
    std: float  # sample standard deviation over the folds
    sem: float  # standard error of the mean (std / sqrt(folds)), as LFW asks

    def as_dict(self) -> dict[str, object]:
        return {"mean": self.mean, "std": self.std, "sem": self.sem,
                "fold_accuracies": self.accuracies, "fold_thresholds": self.thresholds}


def kfold_accuracy(scores: npt.ArrayLike, labels: npt.ArrayLike, folds: npt.ArrayLike) -> KFold:
    """For each fold: choose the threshold on the other folds, measure accuracy on this one."""
    s = _scores(scores)
    lab = np.asarray(labels).astype(bool).ravel()
    f = np.asarray(folds).ravel()
    ids = np.unique(f)
    if ids.size < 2:
        raise ValueError("k-fold accuracy needs at least two folds")
    accs, thrs = [], []
    for k in ids:
        test = f == k
        if not test.any():
            continue
        t, _ = best_accuracy_threshold(s[~test], lab[~test])
        accs.append(float(((s[test] >= t) == lab[test]).mean()))
        thrs.append(t)
    arr = np.array(accs)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return KFold(accs, thrs, float(arr.mean()), std, std / math.sqrt(arr.size))


# ---------------------------------------------------------------- identification


@dataclass(frozen=True)
class SearchStats:
    """Per probe, against one gallery: the best score, the best mate score and the mate's rank."""

    top1: Floats  # best score over the whole gallery
    mate_score: Floats  # best score over the probe's mates; -inf when none is enrolled
    mate_rank: Ints  # 1 + gallery entries of other identities scoring above the mate; 0 if none
    has_mate: Bools


def search(probes: npt.ArrayLike, probe_ids: npt.ArrayLike, gallery: npt.ArrayLike,
           gallery_ids: npt.ArrayLike, *, block: int = 2048) -> SearchStats:
    """Exhaustive search of every probe against the gallery (cosine = dot of unit vectors).

    Rank ties are resolved in the mate's favour (only strictly higher scores push it down)."""
    p = np.asarray(probes, dtype=np.float32)
    g = np.asarray(gallery, dtype=np.float32)
    pid, gid = np.asarray(probe_ids), np.asarray(gallery_ids)
    n = p.shape[0]
    top1 = np.full(n, -np.inf)
    mate = np.full(n, -np.inf)
    rank = np.zeros(n, dtype=np.int64)
    for start in range(0, n, block):
        end = min(n, start + block)
        sims = (p[start:end] @ g.T).astype(np.float64)
        same = pid[start:end, None] == gid[None, :]
        if sims.shape[1]:
            top1[start:end] = sims.max(axis=1)
        m = np.where(same, sims, -np.inf).max(axis=1, initial=-np.inf)
        mate[start:end] = m
        above = (np.where(same, -np.inf, sims) > m[:, None]).sum(axis=1)
        rank[start:end] = np.where(np.isfinite(m), above + 1, 0)
    return SearchStats(top1, mate, rank, np.isfinite(mate))


def top_other(probes: npt.ArrayLike, probe_ids: npt.ArrayLike, gallery: npt.ArrayLike,
              gallery_ids: npt.ArrayLike, *, block: int = 2048) -> Floats:
    """Per probe, the best score over gallery entries of *other* identities (-inf if none): the
    top score of a non-mated search that leaves the probe's own identity out of the gallery."""
    p = np.asarray(probes, dtype=np.float32)
    g = np.asarray(gallery, dtype=np.float32)
    pid, gid = np.asarray(probe_ids), np.asarray(gallery_ids)
    out = np.full(p.shape[0], -np.inf)
    for start in range(0, p.shape[0], block):
        end = min(p.shape[0], start + block)
        sims = (p[start:end] @ g.T).astype(np.float64)
        same = pid[start:end, None] == gid[None, :]
        out[start:end] = np.where(same, -np.inf, sims).max(axis=1, initial=-np.inf)
    return out


def cmc(ranks: npt.ArrayLike, max_rank: int) -> Floats:
    """CMC[r - 1] = fraction of mated searches with the mate at rank <= r (rank 0 = absent)."""
    r = np.asarray(ranks, dtype=np.int64)
    if r.size == 0:
        return np.zeros(max_rank)
    found = r[r > 0]
    counts = np.bincount(np.minimum(found, max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    return np.cumsum(counts) / r.size


def fnir(mate_scores: npt.ArrayLike, ranks: npt.ArrayLike, threshold: float,
         max_rank: int = 1) -> float:
    """Fraction of mated searches whose mate is not at rank <= max_rank with score >= threshold."""
    s, r = _scores(mate_scores), np.asarray(ranks, dtype=np.int64)
    if s.size == 0:
        return math.nan
    hit = (r >= 1) & (r <= max_rank) & (s >= threshold)
    return float(1.0 - hit.mean())


def fpir(nonmated_top1: npt.ArrayLike, threshold: float) -> float:
    """Fraction of non-mated searches returning any candidate at or above the threshold."""
    s = _scores(nonmated_top1)
    return float((s >= threshold).mean()) if s.size else math.nan


def fnir_at_fpir(mate_scores: npt.ArrayLike, ranks: npt.ArrayLike, nonmated_top1: npt.ArrayLike,
                 target: float, max_rank: int = 1) -> OperatingPoint:
    """FNIR at the lowest threshold whose FPIR does not exceed ``target`` (tar = 1 - FNIR)."""
    t = threshold_at_rate(nonmated_top1, target)
    return OperatingPoint(t, 1.0 - fnir(mate_scores, ranks, t, max_rank), fpir(nonmated_top1, t))


def fnir_fpir_curve(mate_scores: npt.ArrayLike, ranks: npt.ArrayLike,
                    nonmated_top1: npt.ArrayLike) -> tuple[Floats, Floats]:
    """(FPIR, FNIR at rank 1) at every distinct non-mated top score, for a DET-style plot."""
    s, r = _scores(mate_scores), np.asarray(ranks, dtype=np.int64)
    nm = np.sort(_scores(nonmated_top1))[::-1]
    thr = np.unique(nm)[::-1]
    fp = np.searchsorted(-nm, -thr, side="right") / nm.size
    hit_scores = np.sort(np.where(r == 1, s, -np.inf))
    fn = np.searchsorted(hit_scores, thr, side="left") / max(1, s.size)
    return fp.astype(np.float64), fn.astype(np.float64)


# ---------------------------------------------------------------- FMR <-> FPIR


def fpir_for_fmr(fmr: float, gallery_size: int) -> float:
    """Per-search false positive rate if each of N independent comparisons matches with prob FMR:
    FPIR = 1 - (1 - FMR)^N."""
    return float(-math.expm1(gallery_size * math.log1p(-fmr)))


def fmr_for_fpir(fpir_target: float, gallery_size: int) -> float:
    """The per-comparison FMR giving FPIR at gallery size N: FMR = 1 - (1 - FPIR)^(1/N)."""
    return float(-math.expm1(math.log1p(-fpir_target) / gallery_size))
