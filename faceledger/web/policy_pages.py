"""What governs the searches, for every signed-in user: the policy in force (and its SHA-256, as
ledgered) and the model card of the model in use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from faceledger.core import Faceledger
from faceledger.errors import NotFoundError
from faceledger.faces.models.pack import describe
from faceledger.http.deps import Caller, Core, need
from faceledger.oversight import policy_service
from faceledger.oversight.service import log_key
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Anyone = Annotated[Caller, Depends(need("signed_in"))]  # every role holds it
# A card is shown in the page only when it cannot run anything.
ACTIVE = re.compile(r"<\s*(script|iframe|object|embed|form|base|meta\s+http-equiv)\b|\son[a-z]+\s*="
                    r"|javascript:", re.I)
CARD_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox")


@router.get("/policy")
def policy_page(request: Request, core: Core, caller: Anyone) -> Response:
    view = policy_service.policy_view(core, caller.principal)
    return render(request, "policy.html", caller, p=view.policy, ledgered=view.ledgered,
                  changed=view.changed, working_days=view.working_days)


def _card(core: Faceledger) -> Path | None:
    try:
        from faceledger.eval.card import latest_card
    except ImportError:
        return None
    try:
        return latest_card(core.settings.home, core.model_id)
    except OSError:
        return None


def _safe(html: str) -> bool:
    return ACTIVE.search(html) is None


@router.get("/model")
def model_page(request: Request, core: Core, caller: Anyone) -> Response:
    card = _card(core)
    info: dict[str, Any] | None = None
    if card is not None:
        html = card.read_text("utf-8", errors="replace")
        md = card.with_suffix(".md")
        info = {"stamp": card.parent.name, "embedded": _safe(html), "has_md": md.is_file()}
    # The ledger's public key: `faceledger eval card` runs without a data home, so the card
    # itself cannot carry it; the page that serves the card shows it.
    # The model packs offered (their licence binds whoever uses them), read from their
    # manifests: nothing is downloaded or hashed for the page.
    packs = describe(core.settings.model_packs, core.settings.home)
    return render(request, "model.html", caller, card=info, model_id=core.model_id,
                  log_key=log_key(core, caller.principal), packs=packs)


@router.get("/model/card")
def model_card(core: Core, caller: Anyone, format: str = "html", download: bool = False
               ) -> Response:
    card = _card(core)
    if card is None:
        raise NotFoundError("no model card has been published for the model in use")
    stamp = card.parent.name
    if format == "md":
        md = card.with_suffix(".md")
        if not md.is_file():
            raise NotFoundError("this model card has no Markdown version")
        return Response(md.read_bytes(), media_type="text/markdown; charset=utf-8", headers={
            "content-disposition": f'attachment; filename="model-card-{stamp}.md"'})
    html = card.read_text("utf-8", errors="replace")
    if download or not _safe(html):
        return Response(html.encode("utf-8"), media_type="application/octet-stream", headers={
            "content-disposition": f'attachment; filename="model-card-{stamp}.html"',
            "content-security-policy": CARD_CSP})
    # Framed by /model only: its own CSP (inline styles, data: images, nothing that runs).
    return Response(html.encode("utf-8"), media_type="text/html; charset=utf-8", headers={
        "content-security-policy": CARD_CSP, "x-frame-options": "SAMEORIGIN"})
