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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

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
    extra: dict[str, int] = field(default_factory=dict)  # failures, identical pairs, ...
    without_identical: SizeResult | None = None  # the figures with identical probes left out

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
            **self.extra,
        }
        if self.threshold is not None:
            d["operating_threshold"] = {
                "threshold": self.threshold, "source": self.threshold_source,
                "fpir": metrics.fpir(n.top1, self.threshold) if nm else None,
                "fnir": metrics.fnir(m.mate_score, m.mate_rank, self.threshold),
                f"fnir_rank{p.candidates}": metrics.fnir(m.mate_score, m.mate_rank,
                                                         self.threshold, p.candidates)}
        if self.without_identical is not None:
            w = self.without_identical.as_dict()
            d["without_identical_pairs"] = {k: w[k] for k in (
                "mated_searches", "nonmated_searches", "rank1", "rank5", "fnir_at_fpir",
                "operating_threshold") if k in w}
        return d

    def lines(self, max_rank: int) -> list[str]:
        d, x = self.as_dict(), self.extra
        failed = x.get("enrolment_failures", 0)
        size = f"{d['gallery']}" + (f" ({self.gallery:,} faces enrolled, {failed} failed to "
                                    "enrol)" if failed else "")
        from_d = x.get("nonmated_from_distractors", 0)
        out = [f"gallery {size}: {d['mated_searches']} mated / {d['nonmated_searches']} non-mated "
               "searches" + (f" ({from_d:,} of them distractors)" if from_d else "")
               + f"; rank-1 {100 * d['rank1']:.2f}%, rank-5 {100 * d['rank5']:.2f}%; mate in top "
               f"{max_rank} {100 * d['investigation']['mate_in_top']:.2f}%"]
        if x.get("mated_probes_no_face"):
            out.append(f"    {x['mated_probes_no_face']} mated probe images with no face "
                       "counted as misses")
        for t, v in d["fnir_at_fpir"].items():
            warn = "" if v["supported"] else f"  [weak: {v['note']}]"
            out.append(f"    FNIR {100 * v['fnir']:.2f}% at FPIR {t} (threshold "
                       f"{v['threshold']:.4f}, actual FPIR {v['fpir']:.4g}){warn}")
        if "operating_threshold" in d:
            o = d["operating_threshold"]
            fp = "n/a" if o["fpir"] is None else f"{o['fpir']:.4g}"
            out.append(f"    at the operating threshold {o['threshold']:.4f} ({o['source']}):"
                       f" FPIR {fp}, FNIR {100 * o['fnir']:.2f}%")
        if "without_identical_pairs" in d:
            w = d["without_identical_pairs"]
            out.append(f"    {x['identical_pairs']} probes byte-identical to a gallery image "
                       f"(SHA-256): without them rank-1 {100 * w['rank1']:.2f}% over "
                       f"{w['mated_searches']} mated searches"
                       + "".join(f", FNIR {100 * v['fnir']:.2f}% at FPIR {t}"
                                 for t, v in w["fnir_at_fpir"].items()))
        return out


@dataclass
class IdentifyReport:
    dataset: str
    model_id: str
    protocol: Protocol
    counts: dict[str, int]
    sizes: list[SizeResult] = field(default_factory=list)
    all_images: IdentifyReport | None = None  # images with no face counted as failures
    distractors: dict[str, Any] | None = None  # what --distractors added, and what it left out

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "dataset": self.dataset, "model_id": self.model_id, "figures": "faces detected only",
            "protocol": self.protocol.describe() + (DISTRACTOR_RULE if self.distractors else ""),
            "counts": self.counts, "galleries": [s.as_dict() for s in self.sizes],
            "distractors": self.distractors}
        if self.all_images is not None:
            a = self.all_images
            d["all_images"] = {"figures": "all images", "rule": ALL_IMAGES_RULE,
                               "counts": a.counts, "galleries": [s.as_dict() for s in a.sizes]}
        return d

    def lines(self) -> list[str]:
        c = self.counts
        out = [f"{self.dataset}: {c['images']} usable images, {c['identities']} identities "
               f"({c['enrolled_identities']} enrolled, {c['unenrolled_identities']} unenrolled, "
               f"{c['distractors']} single-image distractors); model {self.model_id}",
               f"protocol: {self.protocol.describe()}"]
        if self.distractors:
            out.append(distractor_line(self.distractors))
        out.append("figures on faces detected only:")
        for s in self.sizes:
            out += s.lines(self.protocol.max_rank)
        if self.all_images is not None:
            a = self.all_images.counts
            out.append(f"figures on all images ({ALL_IMAGES_RULE}): {a['images_no_face']} of "
                       f"{a['images']} images had no detected face")
            for s in self.all_images.sizes:
                out += s.lines(self.protocol.max_rank)
        return out


DISTRACTOR_RULE = ("; every face of the --distractors folder joins every gallery as a non-mate "
                   "(after the dataset's own single-image identities) and is also searched as a "
                   "non-mated probe against the gallery without its own identity's faces")
ALL_IMAGES_RULE = ("a mated probe with no detected face is a miss, a gallery image with none is a "
                   "failure to enrol (its identity's probes are then misses), a non-mated probe "
                   "with none returns no candidate")


def distractor_line(d: dict[str, Any]) -> str:
    kind = ("labelled by sub-folder: " + (f"{d['excluded_identities']} identities named like a "
            f"dataset identity left out ({d['excluded_images']} images)")
            if d["labelled"] else "unlabelled: one identity per image")
    return (f"distractors: {d['faces']:,} faces from {d['path']} ({kind}; {d['images']:,} images "
            f"embedded, {d['no_face']} without a face, {d['identical_to_dataset']} byte-identical "
            f"to a dataset image and {d['duplicates']} duplicate files left out)")


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


@dataclass(frozen=True)
class _Pool:
    """What is searched: the dataset's rows, then the external distractors' rows (``ext``)."""

    vectors: npt.NDArray[np.float32]
    codes: metrics.Ints
    face: metrics.Bools  # False: no detected face (never searched, never enrolled)
    ext: metrics.Ints
    digests: npt.NDArray[np.str_]  # SHA-256 of each dataset row's file ("" = unknown)


def _pool(es: EmbedSet, distractors: EmbedSet | None, has_face: metrics.Bools | None,
          digests: Sequence[str] | None) -> _Pool:
    n = len(es.paths)
    codes = np.unique(es.identities, return_inverse=True)[1].astype(np.int64)
    face = np.ones(n, dtype=bool) if has_face is None else np.asarray(has_face, dtype=bool)
    dig = np.array(list(digests) if digests is not None else [""] * n, dtype=str)
    if distractors is None or not distractors.paths:
        return _Pool(es.vectors, codes, face, np.zeros(0, dtype=np.int64), dig)
    m = len(distractors.paths)
    dcodes = np.unique(distractors.identities, return_inverse=True)[1].astype(np.int64)
    return _Pool(np.concatenate([es.vectors, distractors.vectors]),
                 np.concatenate([codes, dcodes + codes.max(initial=-1) + 1]),
                 np.concatenate([face, np.ones(m, dtype=bool)]),
                 np.arange(n, n + m, dtype=np.int64), dig)


def _spread(st: metrics.SearchStats, f: metrics.Bools) -> metrics.SearchStats:
    """Stats of every probe: those with no face (``~f``) found nothing."""
    top1, mate = np.full(f.size, -np.inf), np.full(f.size, -np.inf)
    rank = np.zeros(f.size, dtype=np.int64)
    top1[f], mate[f], rank[f] = st.top1, st.mate_score, st.mate_rank
    return metrics.SearchStats(top1, mate, rank, np.isfinite(mate))


def _take(st: metrics.SearchStats, keep: metrics.Bools) -> metrics.SearchStats:
    return metrics.SearchStats(st.top1[keep], st.mate_score[keep], st.mate_rank[keep],
                               st.has_mate[keep])


def _searched(pool: _Pool, probes: metrics.Ints, gallery: metrics.Ints) -> metrics.SearchStats:
    f = pool.face[probes]
    v, c = pool.vectors, pool.codes
    return _spread(metrics.search(v[probes[f]], c[probes[f]], v[gallery], c[gallery]), f)


def _nonmated(pool: _Pool, nonmated: metrics.Ints, gallery: metrics.Ints) -> metrics.SearchStats:
    """The dataset's non-mated probes, then every external distractor searched against the
    gallery without its own identity."""
    v, c, x = pool.vectors, pool.codes, pool.ext
    top1 = np.concatenate([_searched(pool, nonmated, gallery).top1,
                           metrics.top_other(v[x], c[x], v[gallery], c[gallery])])
    return metrics.SearchStats(top1, np.full(top1.size, -np.inf),
                               np.zeros(top1.size, dtype=np.int64), np.zeros(top1.size, dtype=bool))


def _identical(pool: _Pool, probes: metrics.Ints, gallery: metrics.Ints) -> metrics.Bools:
    """Probes whose file is byte-identical (same SHA-256) to a file enrolled in the gallery."""
    known = set(pool.digests[gallery[gallery < pool.digests.size]].tolist()) - {""}
    inside = probes[probes < pool.digests.size]
    flags = np.zeros(probes.size, dtype=bool)
    flags[: inside.size] = [pool.digests[i] in known for i in inside]
    return flags


def _gallery_rows(parts: dict[str, Any], size: int | None,
                  pool: _Pool) -> tuple[list[str], list[int], str, bool]:
    enrolled, dis = parts["enrolled"], [*parts["distractors"], *pool.ext.tolist()]
    n_e, n_d = len(enrolled), len(dis)
    full = size is None or size >= n_e + n_d
    if size is None or full:
        return enrolled, dis, "all", True
    if size <= n_e:
        return enrolled[:size], [], str(size), False
    return enrolled, dis[: size - n_e], str(size), False


def _size_result(pool: _Pool, parts: dict[str, Any], size: int | None, protocol: Protocol,
                 threshold: float | None, source: str) -> SizeResult:
    ids, dis, label, full = _gallery_rows(parts, size, pool)
    rows = np.array([parts["mate"][k] for k in ids] + dis, dtype=np.int64)
    gallery = rows[pool.face[rows]]
    probes = np.array([i for k in ids for i in parts["probes"][k]], dtype=np.int64)
    nonmated = np.array(parts["nonmated"], dtype=np.int64)
    mated, non = _searched(pool, probes, gallery), _nonmated(pool, nonmated, gallery)
    rank = max(1, min(protocol.max_rank, int(gallery.size)))
    same_m, same_n = _identical(pool, probes, gallery), _identical(pool, nonmated, gallery)
    same_n = np.concatenate([same_n, np.zeros(pool.ext.size, dtype=bool)])
    extra = {"enrolment_failures": int(rows.size - gallery.size),
             "mated_probes_no_face": int((~pool.face[probes]).sum()),
             "nonmated_probes_no_face": int((~pool.face[nonmated]).sum()),
             "nonmated_from_distractors": int(pool.ext.size),
             "identical_pairs": int(same_m.sum() + same_n.sum())}
    lab = f"{label} ({gallery.size})" if full else label
    res = SizeResult(lab, int(gallery.size), len(ids), len(dis), mated, non,
                     metrics.cmc(mated.mate_rank, rank), protocol, threshold, source, extra)
    if extra["identical_pairs"]:
        m2 = _take(mated, ~same_m)
        res.without_identical = SizeResult(lab, int(gallery.size), len(ids), len(dis), m2,
                                           _take(non, ~same_n), metrics.cmc(m2.mate_rank, rank),
                                           protocol, threshold, source)
    return res


def evaluate_identification(es: EmbedSet, protocol: Protocol, *, dataset: str = "",
                            threshold: float | None = None, threshold_source: str = "",
                            distractors: EmbedSet | None = None,
                            digests: Sequence[str] | None = None,
                            has_face: metrics.Bools | None = None) -> IdentifyReport:
    """Figures per gallery size. ``distractors``: faces added to every gallery as non-mates
    (their identities must not be the dataset's); ``digests``: SHA-256 of each image of ``es``
    (flags byte-identical probe/gallery pairs); ``has_face``: False for images of ``es`` with no
    detected face (counted as failures instead of being left out)."""
    parts = split(es, protocol)
    pool = _pool(es, distractors, has_face, digests)
    n_e, n_d = len(parts["enrolled"]), len(parts["distractors"])
    counts = {"images": len(es.paths), "identities": len(set(es.identities.tolist())),
              "enrolled_identities": n_e, "unenrolled_identities": len(parts["unenrolled"]),
              "distractors": n_d, "nonmated_probes": len(parts["nonmated"]),
              "mated_probes": sum(len(x) for x in parts["probes"].values()),
              "external_distractors": int(pool.ext.size),
              "images_no_face": int((~pool.face[: len(es.paths)]).sum())}
    report = IdentifyReport(dataset or str(es.root), es.model_id, protocol, counts)
    seen: set[int] = set()
    for size in protocol.gallery_sizes:
        res = _size_result(pool, parts, size, protocol, threshold, threshold_source)
        if res.gallery not in seen:
            seen.add(res.gallery)
            report.sizes.append(res)
    return report
