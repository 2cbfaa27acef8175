"""The face models: which is in use, their capabilities and calibration, and the model card.

Services for any signed-in user ("signed_in"); one read transaction each."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faceledger.errors import NotFoundError
from faceledger.faces.models import available_models
from faceledger.faces.models.base import register_packs
from faceledger.governance.calibration import active_calibration
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

def models_overview(app: Faceledger, principal: Principal) -> dict[str, Any]:
    """{in_use, models: {model_id: capabilities + calibration (or None)}}."""
    require(principal.role, "signed_in", principal.name)
    if app.settings.model_packs:
        register_packs(app.settings)  # list the configured packs too (no download: resolved)
    out: dict[str, Any] = {"in_use": app.model_id, "models": {}}
    with app.db.read() as s:
        for model_id, caps in available_models().items():
            entry: dict[str, Any] = asdict(caps)
            try:
                entry["calibration"] = active_calibration(s, model_id).as_dict()
            except NotFoundError:
                entry["calibration"] = None
            out["models"][model_id] = entry
    return out


def model_card(app: Faceledger, principal: Principal, fmt: str = "html") -> Path:
    """The model card file (HTML, or Markdown for any other ``fmt``) of the model in use, from
    `faceledger eval card`."""
    from faceledger.eval.card import latest_card

    require(principal.role, "signed_in", principal.name)
    card = latest_card(app.settings.home, app.model_id)
    if card is None:
        raise NotFoundError("no model card yet: run `faceledger eval card --lfw DIR`")
    path = card if fmt == "html" else card.with_suffix(".md")
    if not path.is_file():
        raise NotFoundError(f"no {fmt} model card")
    return path

