"""Face models in use, their capabilities, calibration and model card."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from faceledger.api.deps import Caller, Core, need
from faceledger.calibration import active_calibration
from faceledger.errors import NotFoundError
from faceledger.facemodels import available_models

router = APIRouter(tags=["models"])


@router.get("/models")
def models(core: Core, _: Annotated[Caller, Depends(need("collections.read"))]
           ) -> dict[str, Any]:
    out: dict[str, Any] = {"in_use": core.model_id, "models": {}}
    for model_id, caps in available_models().items():
        entry: dict[str, Any] = asdict(caps)
        with core.db.read() as s:
            try:
                entry["calibration"] = active_calibration(s, model_id).as_dict()
            except NotFoundError:
                entry["calibration"] = None
        out["models"][model_id] = entry
    return out


@router.get("/models/card", response_class=FileResponse)
def model_card(core: Core, _: Annotated[Caller, Depends(need("collections.read"))],
               format: str = "html") -> FileResponse:
    """The model card (HTML or Markdown) of the model in use, from `faceledger eval card`."""
    from faceledger.eval.card import latest_card

    card = latest_card(core.settings.home, core.model_id)
    if card is None:
        raise NotFoundError("no model card yet: run `faceledger eval card --lfw DIR`")
    path = card if format == "html" else card.with_suffix(".md")
    if not path.is_file():
        raise NotFoundError(f"no {format} model card")
    return FileResponse(path, media_type="text/html" if format == "html" else "text/markdown")
