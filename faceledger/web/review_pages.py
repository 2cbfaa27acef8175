"""The review queue page: candidates confirmed once, waiting for a second, different reviewer,
with links to their compare views; and the count shown next to "Reviews" in the navigation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.exc import SQLAlchemyError

from faceledger import review_queue
from faceledger.accounts import Principal
from faceledger.api.deps import Caller, Core, need
from faceledger.errors import FaceledgerError
from faceledger.web.pages import NAV_COUNTS, render

router = APIRouter(include_in_schema=False)
Reviewer = Annotated[Caller, Depends(need("reviews.write"))]


@router.get("/reviews")
def review_queue_page(request: Request, core: Core, caller: Reviewer) -> Response:
    with core.db.read() as s:
        items = review_queue.waiting(s, caller.principal)
    review_queue.note_views(core.db, caller.principal, items)
    return render(request, "reviews.html", caller,
                  waiting=[w for w in items if not w.yours],
                  yours=[w for w in items if w.yours])


def nav_count(request: Request, principal: Principal) -> int | None:
    """The navigation's "Reviews (n)": candidates waiting for this user's confirmation."""
    core = getattr(request.app.state, "core", None)
    if core is None:
        return None
    try:
        with core.db.read() as s:
            return review_queue.waiting_count(s, principal)
    except (SQLAlchemyError, FaceledgerError):
        return None  # a count is a hint; the page itself still renders


NAV_COUNTS["/reviews"] = nav_count
