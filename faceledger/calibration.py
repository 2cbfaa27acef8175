"""Identify thresholds per model, kept as data (a table seeded from ``data/calibration.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from faceledger import ledger
from faceledger.db.schema import Calibration
from faceledger.errors import NotFoundError


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


def _info(cal: Calibration) -> CalibrationInfo:
    return CalibrationInfo(cal.id, cal.model_id, cal.threshold, cal.target_fmr,
                           cal.gallery_size, cal.dataset, dict(cal.details or {}))
