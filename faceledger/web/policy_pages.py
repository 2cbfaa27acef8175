"""What governs the searches, for every signed-in user: the policy in force (and its SHA-256, as
ledgered) and the model card of the model in use."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select

from faceledger.api.deps import Caller, Core, need
from faceledger.core import Faceledger
from faceledger.db.schema import LedgerEntry
from faceledger.errors import FaceledgerError, NotFoundError
from faceledger.oversight.flags import WEEKDAYS
from faceledger.policy import describe, load_policy, policy_path
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Anyone = Annotated[Caller, Depends(need("collections.read"))]  # every role holds it
# A card is shown in the page only when it cannot run anything.
ACTIVE = re.compile(r"<\s*(script|iframe|object|embed|form|base|meta\s+http-equiv)\b|\son[a-z]+\s*="
                    r"|javascript:", re.I)
CARD_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox")


def _ledgered(core: Faceledger) -> dict[str, Any] | None:
    """The latest "policy.loaded" ledger entry: the policy's hash, source and text."""
    with core.db.read() as s:
        entry = s.execute(select(LedgerEntry).where(LedgerEntry.kind == "policy.loaded")
                          .order_by(LedgerEntry.seq.desc()).limit(1)).scalar_one_or_none()
        if entry is None or not entry.payload:
            return None
        payload = json.loads(entry.payload)
        return {"sha256": payload.get("sha256"), "source": payload.get("source"),
                "text": payload.get("text"), "seq": entry.seq, "ts": entry.ts}


@router.get("/policy")
def policy_page(request: Request, core: Core, caller: Anyone) -> Response:
    policy = core.policy()  # loads (and ledgers) it if this process has not yet
    ledgered = _ledgered(core)
    on_disk: str | None = None
    try:
        current = load_policy(policy_path(core.settings.home, core.settings.policy_file))
        on_disk = current.sha256
        if ledgered is None:
            ledgered = {"sha256": current.sha256, "source": current.source,
                        "text": current.text, "seq": None, "ts": None}
    except FaceledgerError:
        on_disk = None
    days = ", ".join(WEEKDAYS[d] for d in sorted(policy.oversight.working_days))
    return render(request, "policy.html", caller, p=describe(policy), ledgered=ledgered,
                  changed=bool(ledgered and on_disk and on_disk != ledgered["sha256"]),
                  working_days=days)


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
    return render(request, "model.html", caller, card=info, model_id=core.model_id)


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
