"""Identify thresholds per model, kept as data (a table seeded from ``data/calibration.json``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from faceledger.db.schema import Calibration
from faceledger.errors import FaceledgerError, NotFoundError, ValidationError
from faceledger.governance import ledger
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger


@dataclass(frozen=True)
class CalibrationInfo:
    id: int
    model_id: str
    threshold: float
    target_fmr: float
    gallery_size: int | None
    dataset: str
    details: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model_id": self.model_id, "threshold": self.threshold,
                "target_fmr": self.target_fmr, "gallery_size": self.gallery_size,
                "dataset": self.dataset}


def packaged_defaults() -> list[dict[str, Any]]:
    text = files("faceledger.data").joinpath("calibration.json").read_text("utf-8")
    data: list[dict[str, Any]] = json.loads(text)["calibrations"]
    return data


def seed_calibrations(session: Session) -> None:
    for row in packaged_defaults():
        exists = session.execute(
            select(Calibration).where(Calibration.model_id == row["model_id"])
        ).first()
        if exists is None:
            add_calibration(session, row["model_id"], row["threshold"], row["target_fmr"],
                            row.get("gallery_size"), row["dataset"], row.get("details", {}),
                            actor=None)


def add_calibration(
    session: Session, model_id: str, threshold: float, target_fmr: float,
    gallery_size: int | None, dataset: str, details: dict[str, Any], *, actor: str | None,
) -> Calibration:
    session.execute(update(Calibration).where(Calibration.model_id == model_id)
                    .values(active=False))
    cal = Calibration(model_id=model_id, threshold=threshold, target_fmr=target_fmr,
                      gallery_size=gallery_size, dataset=dataset, details=details,
                      created_at=datetime.now(UTC), active=True)
    session.add(cal)
    session.flush()
    ledger.append(session, "calibration.set",
                  {"id": cal.id, "model_id": model_id, "threshold": threshold,
                   "target_fmr": target_fmr, "gallery_size": gallery_size, "dataset": dataset},
                  actor=actor)
    return cal


def active_calibration(session: Session, model_id: str) -> CalibrationInfo:
    cal = session.execute(
        select(Calibration).where(Calibration.model_id == model_id, Calibration.active)
        .order_by(Calibration.id.desc())
    ).scalars().first()
    if cal is None:
        raise NotFoundError(
            f"no calibrated threshold for model {model_id!r}; run `faceledger calibrate` "
            "or use --mode investigate"
        )
    return _info(cal)


def calibration_at(session: Session, model_id: str, when: datetime) -> CalibrationInfo | None:
    """The calibration that was active for a model at a moment (the latest one made by then;
    else the active one): a search read back later keeps the bands it was shown with."""
    moment = when if when.tzinfo else when.replace(tzinfo=UTC)
    rows = session.execute(select(Calibration).where(Calibration.model_id == model_id)
                           .order_by(Calibration.id.desc())).scalars().all()
    for cal in rows:
        made = cal.created_at if cal.created_at.tzinfo else cal.created_at.replace(tzinfo=UTC)
        if made <= moment:
            return _info(cal)
    active = [c for c in rows if c.active]
    return _info(active[0]) if active else None


def threshold_for_fnmr(info: CalibrationInfo, fnmr: float) -> float | None:
    """The threshold at which at most ``fnmr`` of genuine pairs fall below (the opt-out's
    recall-side rule), from the calibration's ``fnmr_table``; else from its FMR table, the
    highest threshold whose measured FNMR is within ``fnmr``. None: the tables cannot say."""
    rows = [r for r in info.details.get("fnmr_table", []) if r.get("threshold") is not None]
    exact = [r for r in rows if math.isclose(float(r["fnmr"]), fnmr, rel_tol=1e-9)]
    if exact:
        return float(exact[0]["threshold"])
    rows += [r for r in info.details.get("table", []) if r.get("fnmr") is not None]
    within = [float(r["threshold"]) for r in rows
              if r.get("threshold") is not None and float(r["fnmr"]) <= fnmr]
    return max(within) if within else None


def _info(cal: Calibration) -> CalibrationInfo:
    return CalibrationInfo(cal.id, cal.model_id, cal.threshold, cal.target_fmr,
                           cal.gallery_size, cal.dataset, dict(cal.details or {}))


def current_calibration(app: Faceledger, model_id: str) -> CalibrationInfo | None:
    """The model's active calibration in this data home, if it is initialised and has one.
    Needs no principal: the threshold in use is shown to anyone evaluating the model."""
    if not app.db.is_initialised():
        return None
    with app.db.read() as s:
        try:
            return active_calibration(s, model_id)
        except FaceledgerError:
            return None


def set_calibration(app: Faceledger, principal: Principal, model_id: str, threshold: float,
                    target_fmr: float, gallery_size: int | None, dataset: str,
                    details: dict[str, Any]) -> CalibrationInfo:
    """Make a new calibration the model's active one (admins); ledgered."""
    require(principal.role, "calibration.manage", principal.name)
    if not 0 < target_fmr < 1:
        raise ValidationError("the target FMR must be between 0 and 1", field="target_fmr")
    if gallery_size is not None and gallery_size < 1:
        raise ValidationError("the gallery size must be 1 or more", field="gallery_size")
    with app.db.write() as s:
        return _info(add_calibration(s, model_id, threshold, target_fmr, gallery_size,
                                     dataset, details, actor=principal.name))
