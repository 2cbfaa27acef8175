"""1:N identification on a folder-per-identity dataset: closed-set CMC, open-set FNIR at FPIR.

Protocol (deterministic for a given seed):

1. Identities with two or more usable images are shuffled and split: a fraction
   (``unenrolled_fraction``, default one half) is *unenrolled*, the rest *enrolled*.
2. Each enrolled identity enrols its first image (sorted by file name) in the gallery; its other
   images are *mated probes*.
3. Every image of an unenrolled identity is a *non-mated probe* (its identity is in no gallery).
4. Identities with a single image are *distractors*: enrolled, never searched.
5. A gallery of size N holds N enrolled identities (a seeded random subset) when N is at most
   the number of enrolled identities; beyond that all of them plus N - E distractors; ``all`` is
   every enrolled identity and every distractor. Mated probes are those of the identities in it.

Every probe is searched exhaustively against the gallery (cosine similarity). Closed-set
figures (rank-1, rank-5, CMC) use the mated probes; open-set figures follow NIST FRTE: at the
threshold giving the target FPIR on the non-mated probes, FNIR is the fraction of mated probes
whose mate is not at rank 1 with a score at or above the threshold. "Investigation" mode is
rank <= 50 with no threshold (FNIR = 1 - CMC(50)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.errors import ValidationError
from faceledger.eval import metrics

if TYPE_CHECKING:
    from faceledger.eval.embedset import EmbedSet

MIN_ERRORS = 10  # an FPIR estimate needs >= MIN_ERRORS / FPIR non-mated searches


@dataclass(frozen=True)
class Protocol:
    seed: int = 0
    unenrolled_fraction: float = 0.5
    gallery_sizes: tuple[int | None, ...] = (100, 1000, None)  # None = all
    fpir_targets: tuple[float, ...] = (1e-2, 1e-3)
    max_rank: int = 50
    candidates: int = 20  # the product's default top-k

    def describe(self) -> str:
        return (f"seed {self.seed}; {self.unenrolled_fraction:.0%} of the identities with >= 2 "
                "images unenrolled (all their images are non-mated probes); the others enrol "
                "their first image, their other images are mated probes; single-image "
                "identities are distractors in the gallery")


@dataclass
class SizeResult:
    label: str
    gallery: int
    enrolled: int
    distractors: int
    mated: metrics.SearchStats
    nonmated: metrics.SearchStats
    cmc: metrics.Floats
    protocol: Protocol
    threshold: float | None = None
    threshold_source: str = ""

    def as_dict(self) -> dict[str, Any]:
        p, m, n = self.protocol, self.mated, self.nonmated
        nm = int(n.top1.size)
        at: dict[str, Any] = {}
        for t in p.fpir_targets if nm else ():
            op = metrics.fnir_at_fpir(m.mate_score, m.mate_rank, n.top1, t)
            at[f"{t:g}"] = {
                "fnir": 1 - op.tar, "threshold": op.threshold, "fpir": op.far,
                f"fnir_rank{p.candidates}": metrics.fnir(m.mate_score, m.mate_rank, op.threshold,
                                                         p.candidates),
                "supported": nm * t >= MIN_ERRORS,
                "note": "" if nm * t >= MIN_ERRORS else
                f"only {nm} non-mated searches: the threshold rests on {int(nm * t)} false "
                f"positives (need >= {MIN_ERRORS / t:,.0f} searches for {MIN_ERRORS})"}
        d: dict[str, Any] = {
            "gallery": self.label, "gallery_size": self.gallery,
            "enrolled_identities": self.enrolled, "distractors": self.distractors,
            "mated_searches": int(m.top1.size), "nonmated_searches": nm,
            "rank1": float(self.cmc[0]), "rank5": float(self.cmc[min(4, self.cmc.size - 1)]),
            "cmc": [round(float(x), 6) for x in self.cmc],
            "fnir_at_fpir": at,
            "investigation": {"rank": p.max_rank,
                              "fnir": metrics.fnir(m.mate_score, m.mate_rank, -np.inf, p.max_rank),
                              "mate_in_top": float(self.cmc[-1])},
        }
        if self.threshold is not None:
            d["operating_threshold"] = {
                "threshold": self.threshold, "source": self.threshold_source,
                "fpir": metrics.fpir(n.top1, self.threshold) if nm else None,
                "fnir": metrics.fnir(m.mate_score, m.mate_rank, self.threshold),
                f"fnir_rank{p.candidates}": metrics.fnir(m.mate_score, m.mate_rank,
                                                         self.threshold, p.candidates)}
        return d


@dataclass
class IdentifyReport:
    dataset: str
    model_id: str
    protocol: Protocol
    counts: dict[str, int]
    sizes: list[SizeResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "model_id": self.model_id,
                "protocol": self.protocol.describe(), "counts": self.counts,
                "galleries": [s.as_dict() for s in self.sizes]}

    def lines(self) -> list[str]:
        c = self.counts
        out = [f"{self.dataset}: {c['images']} usable images, {c['identities']} identities "
               f"({c['enrolled_identities']} enrolled, {c['unenrolled_identities']} unenrolled, "
               f"{c['distractors']} single-image distractors); model {self.model_id}",
               f"protocol: {self.protocol.describe()}"]
        for s in self.sizes:
            d = s.as_dict()
            out.append(f"gallery {d['gallery']}: {d['mated_searches']} mated / "
                       f"{d['nonmated_searches']} non-mated searches; rank-1 "
                       f"{100 * d['rank1']:.2f}%, rank-5 {100 * d['rank5']:.2f}%; mate in top "
                       f"{self.protocol.max_rank} {100 * d['investigation']['mate_in_top']:.2f}%")
            for t, v in d["fnir_at_fpir"].items():
                warn = "" if v["supported"] else f"  [weak: {v['note']}]"
                out.append(f"    FNIR {100 * v['fnir']:.2f}% at FPIR {t} (threshold "
                           f"{v['threshold']:.4f}, actual FPIR {v['fpir']:.4g}){warn}")
            if "operating_threshold" in d:
                o = d["operating_threshold"]
                fp = "n/a" if o["fpir"] is None else f"{o['fpir']:.4g}"
                out.append(f"    at the operating threshold {o['threshold']:.4f} ({o['source']}):"
                           f" FPIR {fp}, FNIR {100 * o['fnir']:.2f}%")
        return out


def split(es: EmbedSet, protocol: Protocol) -> dict[str, Any]:
    """Indices of gallery mates, mated probes, non-mated probes and distractors."""
    by_id: dict[str, list[int]] = {}
    for i, ident in enumerate(es.identities.tolist()):
        by_id.setdefault(ident, []).append(i)
    multi = sorted(k for k, v in by_id.items() if len(v) >= 2)
    singles = sorted(k for k, v in by_id.items() if len(v) == 1)
    rng = np.random.default_rng(protocol.seed)
    order = [multi[i] for i in rng.permutation(len(multi))]
    n_un = round(protocol.unenrolled_fraction * len(order))
    unenrolled, enrolled = order[:n_un], order[n_un:]
    if not enrolled:
        raise ValidationError("no enrolled identity: the dataset needs identities with >= 2 "
                              "images (or a smaller --unenrolled-fraction)")
    first = {k: min(by_id[k], key=lambda i: es.paths[i]) for k in enrolled}
    return {
        "enrolled": enrolled,  # random order: a prefix is a random subset
        "mate": first,
        "probes": {k: [i for i in by_id[k] if i != first[k]] for k in enrolled},
        "nonmated": [i for k in unenrolled for i in by_id[k]],
        "distractors": [by_id[k][0] for k in (singles[i] for i in rng.permutation(len(singles)))],
        "unenrolled": unenrolled,
    }


def evaluate_identification(es: EmbedSet, protocol: Protocol, *, dataset: str = "",
                            threshold: float | None = None,
                            threshold_source: str = "") -> IdentifyReport:
    parts = split(es, protocol)
    codes = np.unique(es.identities, return_inverse=True)[1].astype(np.int64)
    v = es.vectors
    n_e, n_d = len(parts["enrolled"]), len(parts["distractors"])
    nonmated = np.array(parts["nonmated"], dtype=np.int64)
    counts = {"images": len(es.paths), "identities": int(codes.max(initial=-1) + 1),
              "enrolled_identities": n_e, "unenrolled_identities": len(parts["unenrolled"]),
              "distractors": n_d, "nonmated_probes": int(nonmated.size),
              "mated_probes": sum(len(x) for x in parts["probes"].values())}
    report = IdentifyReport(dataset or str(es.root), es.model_id, protocol, counts)
    seen: set[int] = set()
    for size in protocol.gallery_sizes:
        full = size is None or size >= n_e + n_d
        if size is None or full:
            ids, dis, label = parts["enrolled"], parts["distractors"], "all"
        elif size <= n_e:
            ids, dis, label = parts["enrolled"][:size], [], str(size)
        else:
            ids, dis, label = parts["enrolled"], parts["distractors"][: size - n_e], str(size)
        gallery = np.array([parts["mate"][k] for k in ids] + dis, dtype=np.int64)
        if gallery.size in seen:
            continue
        seen.add(int(gallery.size))
        probes = np.array([i for k in ids for i in parts["probes"][k]], dtype=np.int64)
        mated = metrics.search(v[probes], codes[probes], v[gallery], codes[gallery])
        non = metrics.search(v[nonmated], codes[nonmated], v[gallery], codes[gallery])
        rank = min(protocol.max_rank, int(gallery.size))
        report.sizes.append(SizeResult(
            f"{label} ({gallery.size})" if full else label, int(gallery.size), len(ids), len(dis),
            mated, non, metrics.cmc(mated.mate_rank, rank), protocol, threshold,
            threshold_source))
    return report
