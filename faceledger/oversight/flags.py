"""Misuse flags, each with the evidence behind it and its thresholds in a small dataclass.

Flags are signals for a human reviewer, not findings: every one names the searches (ids, times,
cases) and the measurements (similarities, ratios, local times) that raised it."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from faceledger.oversight.records import SearchRecord, iso

if TYPE_CHECKING:
    from faceledger.governance.policy import Oversight

SMALL_PRODUCT = 256  # rows up to which similarity products are computed without BLAS
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class SameFaceThresholds:
    """(a) One user searching the same person: across cases, or repeatedly with no outcome."""
    same_person_cosine: float = 0.93  # probe embeddings at least this similar = same person
    min_cases: int = 2
    min_repeats_no_outcome: int = 3


@dataclass(frozen=True)
class VolumeThresholds:
    """(b) Search volume out of line with the cases a user works."""
    ratio_to_peer_median: float = 3.0  # searches per case / peers' median; fires at >=
    min_searches: int = 5  # ignore users with fewer searches in the period
    min_peers: int = 2  # users needed to compare with
    max_searches_one_case: int = 10  # fires at >= this many searches by one user on one case


@dataclass(frozen=True)
class HoursThresholds:
    """(c) Searches outside the policy's working hours/days (in its timezone)."""
    min_searches: int = 1
    medium_at: int = 3
    high_at: int = 10


@dataclass(frozen=True)
class SelfieThresholds:
    """(d) Selfie-like probes (large face in the frame) of one person, searched repeatedly."""
    min_face_ratio: float = 0.12  # face box / image area strictly above this looks like a selfie
    min_searches: int = 2


@dataclass(frozen=True)
class FlagConfig:
    same_face: SameFaceThresholds = field(default_factory=SameFaceThresholds)
    volume: VolumeThresholds = field(default_factory=VolumeThresholds)
    hours: HoursThresholds = field(default_factory=HoursThresholds)
    selfie: SelfieThresholds = field(default_factory=SelfieThresholds)


@dataclass(frozen=True)
class Flag:
    flag: str
    user: str
    severity: str  # low | medium | high
    summary: str
    evidence: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)

    def search_ids(self) -> list[int]:
        ids: list[int] = []
        for e in self.evidence:
            if "search_ids" in e:
                ids.extend(e["search_ids"])
            elif "search_id" in e:
                ids.append(e["search_id"])
        return ids

    def as_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "user": self.user, "severity": self.severity,
                "summary": self.summary, "evidence": self.evidence, "metrics": self.metrics}


def _severity(value: float, threshold: float) -> str:
    return "high" if value >= 2 * threshold else "medium"


def _day(dt: datetime) -> str:
    return dt.date().isoformat()


def same_person_clusters(records: list[SearchRecord], cosine: float
                         ) -> list[tuple[list[SearchRecord], list[float | None]]]:
    """Group one user's searches by person: probe embeddings (same model) with cosine >= the
    threshold, or the very same probe photo, are linked (single linkage). Returns clusters of
    two or more, each with every member's similarity to the cluster's first search."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    by_photo: dict[str, int] = {}
    for i, r in enumerate(records):
        if r.probe_sha256:
            union(i, by_photo.setdefault(r.probe_sha256, i))
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        if r.embedding is not None:
            groups[(r.model_id, r.embedding.shape[0])].append(i)
    for idx in groups.values():
        mat = np.stack([records[i].embedding for i in idx])  # type: ignore[misc]
        for lo in range(0, len(idx), 1024):
            block = mat[lo:lo + 1024]
            # Small products skip BLAS: its thread pool costs more than the product on a busy
            # machine (measured 150x slower for 80 x 128 x 80 under load).
            sims = (np.einsum("ij,kj->ik", block, mat) if len(idx) <= SMALL_PRODUCT
                    else block @ mat.T)
            rows, cols = np.nonzero(np.triu(sims >= cosine, k=lo + 1))
            for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
                union(idx[lo + a], idx[b])
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(records)):
        members[find(i)].append(i)
    out = []
    for ids in members.values():
        if len(ids) < 2:
            continue
        group = [records[i] for i in ids]
        anchor = group[0]
        scores: list[float | None] = []
        for r in group:
            if r.probe_sha256 and r.probe_sha256 == anchor.probe_sha256:
                scores.append(1.0)
            elif r.embedding is not None and anchor.embedding is not None \
                    and r.embedding.shape == anchor.embedding.shape:
                scores.append(round(float(r.embedding @ anchor.embedding), 4))
            else:
                scores.append(None)
        out.append((group, scores))
    return out


def _ev(r: SearchRecord, score: float | None = None, **extra: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"search_id": r.id, "started_at": iso(r.started_at), "case": r.case,
                         "purpose": r.purpose, "outcome": r.outcome}
    if score is not None:
        e["similarity"] = score
    e.update(extra)
    return e


def _same_face(user: str, clusters: Iterable[tuple[list[SearchRecord], list[float | None]]],
               t: SameFaceThresholds, sel: SelfieThresholds) -> list[Flag]:
    flags: list[Flag] = []
    for group, scores in clusters:
        cases = sorted({r.case for r in group})
        span = f"between {_day(group[0].started_at)} and {_day(group[-1].started_at)}"
        metrics = {"searches": len(group), "cases": cases,
                   "min_similarity": min((s for s in scores if s is not None), default=None)}
        if len(cases) >= t.min_cases:
            flags.append(Flag(
                "same_face_across_cases", user, _severity(len(cases), t.min_cases),
                f"{user} searched the same face {len(group)} times across {len(cases)} cases "
                f"({', '.join(cases)}) {span}.",
                [_ev(r, s) for r, s in zip(group, scores, strict=True)], metrics))
        open_ = [(r, s) for r, s in zip(group, scores, strict=True) if r.outcome is None]
        if len(open_) >= t.min_repeats_no_outcome:
            flags.append(Flag(
                "same_face_repeated_no_outcome", user,
                _severity(len(open_), t.min_repeats_no_outcome),
                f"{user} searched the same face {len(open_)} times with no recorded outcome "
                f"{span}.", [_ev(r, s) for r, s in open_], metrics))
        selfies = [(r, s) for r, s in zip(group, scores, strict=True)
                   if r.probe_face_ratio is not None and r.probe_face_ratio > sel.min_face_ratio]
        if len(selfies) >= sel.min_searches:
            flags.append(Flag(
                "selfie_probes_same_person", user, _severity(len(selfies), sel.min_searches),
                f"{user} searched {len(selfies)} selfie-like probe photos (face over "
                f"{sel.min_face_ratio:.0%} of the frame) of the same person {span}.",
                [_ev(r, s, probe_face_ratio=r.probe_face_ratio) for r, s in selfies],
                {**metrics, "selfies": len(selfies)}))
    return flags


def _volume(by_user: dict[str, list[SearchRecord]], t: VolumeThresholds) -> list[Flag]:
    spc = {u: len(rs) / len({r.case for r in rs}) for u, rs in by_user.items()}
    values = list(spc.values())
    med_all = statistics.median(values) if values else 0.0
    mad = statistics.median(abs(v - med_all) for v in values) if values else 0.0
    flags: list[Flag] = []
    for u, rs in by_user.items():
        per_case: dict[str, list[SearchRecord]] = defaultdict(list)
        for r in rs:
            per_case[r.case].append(r)
        case_ev: list[dict[str, Any]] = [{"case": c, "searches": len(v), "search_ids": [r.id for r in v],
                    "first": iso(v[0].started_at), "last": iso(v[-1].started_at)}
                   for c, v in sorted(per_case.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
        peers = {p: round(v, 4) for p, v in spc.items() if p != u}
        if len(peers) >= t.min_peers and len(rs) >= t.min_searches:
            peer_median = statistics.median(peers.values())
            ratio = spc[u] / peer_median if peer_median else float("inf")
            z = round((spc[u] - med_all) / (1.4826 * mad), 2) if mad else None
            if ratio >= t.ratio_to_peer_median:
                flags.append(Flag(
                    "volume_out_of_line", u, _severity(ratio, t.ratio_to_peer_median),
                    f"{u} made {len(rs)} searches on {len(per_case)} cases "
                    f"({spc[u]:.2f} per case), {ratio:.1f} times the median of "
                    f"{len(peers)} peers ({peer_median:.2f} per case).", case_ev,
                    {"searches": len(rs), "cases": len(per_case),
                     "searches_per_case": round(spc[u], 4), "peer_median": round(peer_median, 4),
                     "ratio": round(ratio, 4), "robust_z": z, "peers": peers}))
        heavy = [e for e in case_ev if e["searches"] >= t.max_searches_one_case]
        if heavy:
            flags.append(Flag(
                "many_searches_one_case", u,
                _severity(max(e["searches"] for e in heavy), t.max_searches_one_case),
                f"{u} made " + "; ".join(f"{e['searches']} searches on case {e['case']}"
                                         for e in heavy)
                + f" (flagged at {t.max_searches_one_case}).", heavy,
                {"limit": t.max_searches_one_case}))
    return flags


def _hours(by_user: dict[str, list[SearchRecord]], oversight: Oversight,
           t: HoursThresholds) -> list[Flag]:
    tz = ZoneInfo(oversight.timezone)
    start_h, end_h = oversight.working_hours
    days = set(oversight.working_days)
    hours_text = (f"{start_h:02d}:00-{end_h:02d}:00 "
                  f"{', '.join(WEEKDAYS[d][:3] for d in sorted(days))} ({oversight.timezone})")
    flags: list[Flag] = []
    for u, rs in by_user.items():
        outside = []
        for r in rs:
            local = r.started_at.astimezone(tz)
            if local.weekday() not in days or not start_h <= local.hour < end_h:
                outside.append(_ev(r, local_time=local.isoformat(),
                                   weekday=WEEKDAYS[local.weekday()]))
        if len(outside) >= t.min_searches:
            n = len(outside)
            sev = "high" if n >= t.high_at else "medium" if n >= t.medium_at else "low"
            flags.append(Flag(
                "outside_working_hours", u, sev,
                f"{u} made {n} of {len(rs)} searches outside working hours ({hours_text}).",
                outside, {"outside": n, "searches": len(rs), "working_hours": hours_text}))
    return flags


_ORDER = {"high": 0, "medium": 1, "low": 2}


def compute_flags(records: list[SearchRecord], oversight: Oversight,
                  config: FlagConfig | None = None) -> list[Flag]:
    """Every flag over ``records`` (all users, so that peers compare), most severe first."""
    cfg = config or FlagConfig()
    by_user: dict[str, list[SearchRecord]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.started_at, r.id)):
        by_user[r.user].append(r)
    flags: list[Flag] = []
    for u, rs in by_user.items():
        clusters = same_person_clusters(rs, cfg.same_face.same_person_cosine)
        flags.extend(_same_face(u, clusters, cfg.same_face, cfg.selfie))
    flags.extend(_volume(by_user, cfg.volume))
    flags.extend(_hours(by_user, oversight, cfg.hours))
    return sorted(flags, key=lambda f: (_ORDER.get(f.severity, 3), f.user, f.flag))


def flags_by_search(flags: Iterable[Flag]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for f in flags:
        for sid in f.search_ids():
            if f.flag not in out[sid]:
                out[sid].append(f.flag)
    return dict(out)
