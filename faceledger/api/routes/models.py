"""Face models in use, their capabilities, calibration and model card."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from faceledger.api.schemas_gallery import ModelsOut
from faceledger.governance import models_service
from faceledger.http.deps import Caller, Core, need

router = APIRouter(tags=["models"])
SignedIn = Annotated[Caller, Depends(need("signed_in"))]


@router.get("/models", response_model=ModelsOut)
def models(core: Core, caller: SignedIn) -> dict[str, Any]:
    return models_service.models_overview(core, caller.principal)


@router.get("/models/card", response_class=FileResponse)
def model_card(core: Core, caller: SignedIn, format: str = "html") -> FileResponse:
    """The model card (HTML or Markdown) of the model in use, from `faceledger eval card`."""
    path = models_service.model_card(core, caller.principal, format)
    return FileResponse(path, media_type="text/html" if format == "html" else "text/markdown")
