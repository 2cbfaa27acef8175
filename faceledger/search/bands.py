"""Calibrated bands: where on the score scale matches end.

Every candidate is put in one of three bands, from thresholds that are data (the model's
calibration row, ``details.table``: thresholds per false match rate), never code:

* ``likely``   — likely the same person: at or above the *identify* threshold (the calibration's
  own threshold and FMR, unless ``FACELEDGER_BAND_LIKELY_FMR`` names another rate);
* ``possible`` — at or above a second, lower threshold at a looser FMR
  (``FACELEDGER_BAND_POSSIBLE_FMR``, default 1e-4);
* ``unlikely`` — below both.

An FMR between two rows of the table is interpolated linearly in log10(FMR) (thresholds fall
smoothly as the rate loosens); an FMR outside the table is refused, not extrapolated: run
``faceledger calibrate`` (which writes rows for the band rates) or choose a rate in the table.

Also here: marks for candidates that are the probe image itself (same bytes) and for
candidates that duplicate an earlier one (the same bytes held as another image).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from faceledger.errors import ValidationError
from faceledger.governance.calibration import CalibrationInfo, calibration_at

if TYPE_CHECKING:
    from faceledger.settings import Settings

LABELS = {"likely": "likely same person", "possible": "possible", "unlikely": "unlikely"}
BAND_NAMES = ("likely", "possible", "unlikely")


@dataclass(frozen=True)
class Edge:
    threshold: float
    fmr: float
    how: str  # "calibration threshold" | "table" | "interpolated"

    def as_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "fmr": self.fmr, "how": self.how}


@dataclass(frozen=True)
class Bands:
    calibration_id: int
    model_id: str
    dataset: str
    likely: Edge
    possible: Edge
    floor: float  # where score bars start (the scale is floor..1.0)

    def band(self, score: float) -> str:
        if score >= self.likely.threshold:
            return "likely"
        if score >= self.possible.threshold:
            return "possible"
        return "unlikely"

    def as_dict(self) -> dict[str, Any]:
        return {"calibration_id": self.calibration_id, "model_id": self.model_id,
                "dataset": self.dataset, "likely": self.likely.as_dict(),
                "possible": self.possible.as_dict(), "scale": [self.floor, 1.0],
                "labels": dict(LABELS)}


def table_rows(details: dict[str, Any] | None) -> list[tuple[float, float]]:
    """(fmr, threshold) rows of a calibration's table, loosest rate first."""
    raw = (details or {}).get("table") or []
    rows = []
    for r in raw:
        try:
            fmr, thr = float(r["fmr"]), float(r["threshold"])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 < fmr < 1 and math.isfinite(thr):
            rows.append((fmr, thr))
    return sorted(set(rows), reverse=True)


def threshold_at(rows: Sequence[tuple[float, float]], fmr: float) -> tuple[float, str]:
    """The threshold for a per-comparison FMR: a row of the table, or log-linear between two."""
    for f, t in rows:
        if math.isclose(f, fmr, rel_tol=1e-9):
            return t, "table"
    for (f_hi, t_hi), (f_lo, t_lo) in itertools.pairwise(rows):
        if f_lo < fmr < f_hi:
            w = (math.log10(f_hi) - math.log10(fmr)) / (math.log10(f_hi) - math.log10(f_lo))
            return round(t_hi + w * (t_lo - t_hi), 6), "interpolated"
    span = (f"{rows[-1][0]:g}-{rows[0][0]:g}" if rows else "none")
    raise ValidationError(
        f"no calibrated threshold for FMR {fmr:g}: the calibration's table covers FMR {span}; "
        "run `faceledger calibrate` (it writes rows for the band rates) or set "
        "FACELEDGER_BAND_POSSIBLE_FMR / FACELEDGER_BAND_LIKELY_FMR within the table",
        fmr=fmr, table_fmrs=[f for f, _ in rows])


def make_bands(cal: CalibrationInfo, possible_fmr: float, likely_fmr: float | None = None,
               floor: float = 0.8) -> Bands:
    """Bands from a calibration row and the configured rates."""
    rows = table_rows(cal.details)
    if likely_fmr is None or math.isclose(likely_fmr, cal.target_fmr, rel_tol=1e-9):
        likely = Edge(cal.threshold, cal.target_fmr, "calibration threshold")
    else:
        t, how = threshold_at(rows, likely_fmr)
        likely = Edge(t, likely_fmr, how)
    if possible_fmr <= likely.fmr:
        raise ValidationError(f"the 'possible' band's FMR ({possible_fmr:g}) must be looser "
                              f"(higher) than the 'likely' band's ({likely.fmr:g})")
    try:
        t, how = threshold_at(rows, possible_fmr)
    except ValidationError:
        # A rate outside this calibration's table (e.g. a data home calibrated before the
        # table had it): use the closest row and say so, rather than refuse every search.
        if not rows:
            raise
        fmr_used, t = min(rows, key=lambda r: abs(math.log10(r[0]) - math.log10(possible_fmr)))
        how = (f"closest table row: FMR {possible_fmr:g} is outside this calibration's table; "
               "run `faceledger calibrate` to add it")
        possible_fmr = fmr_used
    possible = Edge(min(t, likely.threshold), possible_fmr, how)
    return Bands(cal.id, cal.model_id, cal.dataset, likely, possible,
                 min(floor, possible.threshold))


def duplicate_marks(probe_sha256: str, images: Sequence[tuple[int, int, str]]
                    ) -> list[tuple[bool, dict[str, Any] | None]]:
    """For (rank, image id, image sha256) in rank order: (is the probe image itself,
    the earlier candidate it duplicates: {"rank", "why": "same_bytes"} or None).

    A duplicate is the same image bytes held as another image (e.g. in another collection).
    Another face of the same photo is a different person's face, not a duplicate."""
    first_by_sha: dict[str, tuple[int, int]] = {}
    out: list[tuple[bool, dict[str, Any] | None]] = []
    for rank, image_id, sha in images:
        dup: dict[str, Any] | None = None
        if sha:
            first = first_by_sha.setdefault(sha, (rank, image_id))
            if first[1] != image_id:
                dup = {"rank": first[0], "why": "same_bytes"}
        out.append((bool(probe_sha256) and sha == probe_sha256, dup))
    return out


def bands_at(session: Session, model_id: str, when: datetime, settings: Settings
             ) -> Bands | None:
    """The bands a search made at ``when`` was shown with (None: no calibration, or the band
    rates now configured are outside that calibration's table: reading a past search back
    never fails for it)."""
    cal = calibration_at(session, model_id, when)
    if cal is None:
        return None
    try:
        return make_bands(cal, settings.band_possible_fmr, settings.band_likely_fmr,
                          settings.score_floor)
    except ValidationError:
        return None
