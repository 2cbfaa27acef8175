"""Demographic differentials: FMR and FNMR per group at one operating threshold.

``--groups FILE.csv`` has a header with (at least) the columns ``identity`` and ``group``. Every
image of an identity belongs to that identity's group; identities not in the file are left out.

Per group, over all the images evaluated (every pair i < j, scored exhaustively):

* FNMR: mated pairs (same identity) scoring below the threshold;
* FMR: non-mated pairs of two *different identities of the same group* at or above it. As in
  NIST's demographic studies, cross-group non-mated pairs (which score low, and would flatter
  every group) are reported separately, as ``(cross-group)``.

The differential is the ratio of the worst to the best group's rate (undefined when the best is
0: then compare the counts, which are given).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceledger.errors import ValidationError

if TYPE_CHECKING:
    from faceledger.eval.embedset import EmbedSet

CROSS = "(cross-group)"


def load_groups(path: Path) -> dict[str, str]:
    try:
        text = path.read_text("utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"cannot read groups file {path}: {exc.strerror}") from None
    return parse_groups(text, path.name)


def parse_groups(text: str, source: str = "groups") -> dict[str, str]:
    reader = csv.DictReader(text.splitlines())
    cols = {c.strip().lower(): c for c in reader.fieldnames or []}
    if "identity" not in cols or "group" not in cols:
        raise ValidationError(f"{source}: needs a header with the columns identity,group "
                              f"(found: {', '.join(reader.fieldnames or []) or 'nothing'})")
    out: dict[str, str] = {}
    for n, row in enumerate(reader, start=2):
        ident = (row.get(cols["identity"]) or "").strip()
        group = (row.get(cols["group"]) or "").strip()
        if not ident or not group:
            raise ValidationError(f"{source} line {n}: identity and group must not be empty")
        if out.get(ident, group) != group:
            raise ValidationError(f"{source} line {n}: {ident!r} is in group {out[ident]!r} "
                                  f"and in group {group!r}")
        out[ident] = group
    if not out:
        raise ValidationError(f"{source}: no rows")
    return out


@dataclass
class GroupRow:
    group: str
    identities: int
    images: int
    mate_pairs: int
    false_non_matches: int
    nonmate_pairs: int
    false_matches: int

    @property
    def fnmr(self) -> float | None:
        return self.false_non_matches / self.mate_pairs if self.mate_pairs else None

    @property
    def fmr(self) -> float | None:
        return self.false_matches / self.nonmate_pairs if self.nonmate_pairs else None

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "fmr": self.fmr, "fnmr": self.fnmr}


def _ratio(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    if max(vals) == 0:
        return 1.0
    return None if min(vals) == 0 else max(vals) / min(vals)


@dataclass
class GroupReport:
    threshold: float
    threshold_source: str
    rows: list[GroupRow]
    cross: GroupRow
    unassigned_identities: int

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "threshold_source": self.threshold_source,
                "groups": [r.as_dict() for r in self.rows], "cross_group": self.cross.as_dict(),
                "unassigned_identities": self.unassigned_identities,
                "fmr_ratio_worst_best": _ratio([r.fmr for r in self.rows]),
                "fnmr_ratio_worst_best": _ratio([r.fnmr for r in self.rows])}

    def lines(self) -> list[str]:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3g}"

        d = self.as_dict()
        out = [f"demographic differentials at threshold {self.threshold:.4f} "
               f"({self.threshold_source}); {self.unassigned_identities} identities not in the "
               "groups file left out"]
        for r in [*self.rows, self.cross]:
            out.append(f"  {r.group:<20} {r.identities:>6} ids {r.images:>7} images  FMR "
                       f"{pct(r.fmr)} ({r.false_matches}/{r.nonmate_pairs:,})  FNMR "
                       f"{pct(r.fnmr)} ({r.false_non_matches}/{r.mate_pairs:,})")
        for key, name in (("fmr_ratio_worst_best", "FMR"), ("fnmr_ratio_worst_best", "FNMR")):
            v = d[key]
            out.append(f"  {name} worst/best group: "
                       + ("undefined (the best group has no errors; compare the counts)"
                          if v is None else f"{v:.2f}"))
        return out


def group_report(es: EmbedSet, groups: dict[str, str], threshold: float, *,
                 threshold_source: str = "", block: int = 1024) -> GroupReport:
    if not math.isfinite(threshold):
        raise ValidationError("the groups report needs a finite threshold")
    ident = es.identities.tolist()
    assigned = np.array([i in groups for i in ident], dtype=bool)
    names = sorted(set(groups.values()))
    sub = es.subset(assigned)
    gcode = np.array([names.index(groups[i]) for i in sub.identities.tolist()], dtype=np.int64)
    icode = np.unique(sub.identities, return_inverse=True)[1]
    v = sub.vectors.astype(np.float32)
    n, k = v.shape[0], len(names)
    mate_n, mate_fn = np.zeros(k, np.int64), np.zeros(k, np.int64)
    non_n, non_fm = np.zeros(k, np.int64), np.zeros(k, np.int64)
    cross_n = cross_fm = 0
    for s in range(0, n, block):
        e = min(n, s + block)
        sims = v[s:e] @ v[s:].T
        upper = np.arange(s, n)[None, :] > np.arange(s, e)[:, None]
        same_id = icode[s:e, None] == icode[None, s:]
        same_g = gcode[s:e, None] == gcode[None, s:]
        rowg = np.broadcast_to(gcode[s:e, None], sims.shape)
        mate = upper & same_id
        mate_n += np.bincount(rowg[mate], minlength=k)
        mate_fn += np.bincount(rowg[mate & (sims < threshold)], minlength=k)
        non = upper & ~same_id & same_g
        non_n += np.bincount(rowg[non], minlength=k)
        non_fm += np.bincount(rowg[non & (sims >= threshold)], minlength=k)
        cross = upper & ~same_g
        cross_n += int(cross.sum())
        cross_fm += int((cross & (sims >= threshold)).sum())
    rows = []
    for g, name in enumerate(names):
        members = gcode == g
        rows.append(GroupRow(name, len(set(sub.identities[members].tolist())),
                             int(members.sum()), int(mate_n[g]), int(mate_fn[g]),
                             int(non_n[g]), int(non_fm[g])))
    cross_row = GroupRow(CROSS, 0, 0, 0, 0, cross_n, cross_fm)
    unassigned = len(set(ident)) - len(set(sub.identities.tolist()))
    return GroupReport(threshold, threshold_source, rows, cross_row, unassigned)
