"""LFW-style 1:1 verification over a pairs file: k-fold accuracy, ROC/AUC, EER, TAR@FAR."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.errors import ValidationError
from faceledger.eval import metrics

if TYPE_CHECKING:
    from faceledger.eval.embedset import EmbedSet
    from faceledger.eval.pairs import PairSet

FAR_TARGETS = (1e-2, 1e-3)


def published_accuracy(text: str) -> float | None:
    """The percentage in a capabilities string such as 'LFW 99.38% (dlib ...)', as a fraction."""
    m = re.search(r"(\d+(?:\.\d+)?)\s*%", text)
    return float(m.group(1)) / 100 if m else None


@dataclass
class VerifyReport:
    protocol: str
    model_id: str
    scores: metrics.Floats
    labels: metrics.Bools
    folds: metrics.Ints
    fallback_pair: metrics.Bools
    kfold: metrics.KFold
    kfold_excl_fallback: metrics.KFold | None
    roc: metrics.Roc
    auc: float
    eer: float
    eer_threshold: float
    tar: dict[float, metrics.OperatingPoint]
    images: int
    fallback_images: int  # distinct pair images the configured detector found no face in
    fallback_image_uses: int  # pair slots (of 2 x pairs) filled by such an image
    rescued: dict[str, int] = field(default_factory=dict)  # of those: how they were embedded
    skipped_pairs: list[tuple[str, str, str]] = field(default_factory=list)
    published: float | None = None
    operating: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "protocol": self.protocol, "model_id": self.model_id,
            "pairs": int(self.scores.size), "matched": int(self.labels.sum()),
            "mismatched": int((~self.labels).sum()), "folds": int(np.unique(self.folds).size),
            "accuracy": self.kfold.as_dict(),
            "fallback": {
                "pair_images": self.images, "pair_images_with_fallback": self.fallback_images,
                "pair_image_uses_with_fallback": self.fallback_image_uses,
                "pair_images_by_rescue": self.rescued,
                "pairs_with_fallback": int(self.fallback_pair.sum()),
                "accuracy_excluding_fallback_pairs":
                    self.kfold_excl_fallback.as_dict() if self.kfold_excl_fallback else None,
            },
            "auc": self.auc, "eer": self.eer, "eer_threshold": self.eer_threshold,
            "tar_at_far": {f"{k:g}": {**v.as_dict(), "false_accepts_allowed": self._allowed(k)}
                           for k, v in self.tar.items()},
            "roc": {"fpr": _thin(self.roc.fpr), "tpr": _thin(self.roc.tpr)},
            "skipped_pairs": [{"a": a, "b": b, "reason": r} for a, b, r in self.skipped_pairs],
            "published_accuracy": self.published,
            "difference_from_published_points":
                round(100 * (self.kfold.mean - self.published), 3) if self.published else None,
        }
        if self.operating:
            d["operating_threshold"] = self.operating
        return d

    def _allowed(self, far: float) -> int:
        return math.floor(far * int((~self.labels).sum()) * (1 + 1e-12))

    def _rescue_text(self) -> str:
        if not self.rescued:
            return ""
        parts = [f"{n} by the central box" if how == "centre" else f"{n} by the {how} detector"
                 for how, n in sorted(self.rescued.items())]
        return " (rescued: " + ", ".join(parts) + ")"

    def lines(self) -> list[str]:
        k = self.kfold

        def pts(x: float) -> str:
            return f"{100 * x:.2f}%"

        out = [self.protocol,
               f"model {self.model_id}: {self.scores.size} pairs over {self.images} images; "
               f"{self.fallback_images} pair images had no face found by the configured "
               f"detector{self._rescue_text()} ({int(self.fallback_pair.sum())} pairs involve "
               "one)",
               f"accuracy {pts(k.mean)} ± {100 * k.std:.2f} (std over {len(k.accuracies)} folds; "
               f"standard error {100 * k.sem:.2f}); mean fold threshold "
               f"{float(np.mean(k.thresholds)):.4f}"]
        if self.kfold_excl_fallback:
            e = self.kfold_excl_fallback
            out.append(f"accuracy excluding pairs with a fallback image: {pts(e.mean)} ± "
                       f"{100 * e.std:.2f}")
        out.append(f"ROC AUC {self.auc:.5f}; EER {pts(self.eer)} (threshold "
                   f"{self.eer_threshold:.4f})")
        n_neg = int((~self.labels).sum())
        for far, op in self.tar.items():
            out.append(f"TAR {pts(op.tar)} at FAR {far:g} (threshold {op.threshold:.4f}, "
                       f"actual FAR {op.far:.4g}; at most {self._allowed(far)} of {n_neg} "
                       "mismatched pairs accepted)")
        if self.published:
            out.append(f"published: {pts(self.published)}; difference "
                       f"{100 * (k.mean - self.published):+.2f} points")
        if self.operating:
            o = self.operating
            out.append(f"at the operating threshold {o['threshold']:.4f} ({o['source']}): "
                       f"FMR {o['fmr']:.4g}, FNMR {o['fnmr']:.4g} on these pairs")
        if self.skipped_pairs:
            out.append(f"{len(self.skipped_pairs)} pairs skipped (image could not be embedded)")
        return out


def _thin(x: np.ndarray, n: int = 400) -> list[float]:
    """At most ~n points of a curve, for JSON."""
    idx = np.unique(np.linspace(0, x.size - 1, min(n, x.size)).astype(int))
    return [round(float(v), 6) for v in x[idx]]


def evaluate_pairs(es: EmbedSet, pairs: PairSet, *, published: float | None = None,
                   threshold: float | None = None, threshold_source: str = "") -> VerifyReport:
    idx = es.index()
    missing = sorted({p for p in pairs.images() if p not in idx})
    if missing:
        raise ValidationError(
            f"{len(missing)} images named in {pairs.source} are not in the dataset, e.g. "
            f"{', '.join(missing[:3])}", missing=missing[:20])
    a_idx, b_idx, labels, folds, skipped = [], [], [], [], []
    for p in pairs.pairs:
        bad = es.errors.get(p.a) or es.errors.get(p.b)
        if bad:
            skipped.append((p.a, p.b, bad))
            continue
        a_idx.append(idx[p.a])
        b_idx.append(idx[p.b])
        labels.append(p.same)
        folds.append(p.fold)
    a, b = np.array(a_idx, dtype=np.int64), np.array(b_idx, dtype=np.int64)
    lab, fold = np.array(labels, dtype=bool), np.array(folds, dtype=np.int64)
    v = es.vectors.astype(np.float64)
    scores = np.einsum("ij,ij->i", v[a], v[b])
    fb = ~es.detected[a] | ~es.detected[b]
    kf = metrics.kfold_accuracy(scores, lab, fold)
    kf_ex = metrics.kfold_accuracy(scores[~fb], lab[~fb], fold[~fb]) if fb.any() else kf
    roc = metrics.roc_curve(scores, lab)
    eer, eer_t = metrics.eer(roc)
    used = np.unique(np.concatenate([a, b]))
    how, count = np.unique(es.rescue[used][~es.detected[used]], return_counts=True)
    operating = None
    if threshold is not None:
        fmr, fnmr = metrics.rates_at(scores, lab, threshold)
        operating = {"threshold": threshold, "source": threshold_source, "fmr": fmr, "fnmr": fnmr}
    return VerifyReport(
        pairs.protocol, es.model_id, scores, lab, fold, fb, kf, kf_ex, roc, metrics.auc(roc),
        eer, eer_t, {f: metrics.tar_at_far(scores, lab, f) for f in FAR_TARGETS},
        int(used.size), int((~es.detected[used]).sum()),
        int((~es.detected[a]).sum() + (~es.detected[b]).sum()),
        {str(h): int(c) for h, c in zip(how, count, strict=True)}, skipped, published, operating)
