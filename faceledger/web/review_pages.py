"""The review queue page: candidates confirmed once, waiting for a second, different reviewer,
with links to their compare views; and the count shown next to "Reviews" in the navigation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from faceledger.accounts.users import Principal
from faceledger.http.deps import Caller, Core, need
from faceledger.search import review_queue
from faceledger.web.pages import NAV_COUNTS, render

router = APIRouter(include_in_schema=False)
Reviewer = Annotated[Caller, Depends(need("reviews.write"))]


@router.get("/reviews")
def review_queue_page(request: Request, core: Core, caller: Reviewer) -> Response:
    items = review_queue.waiting(core, caller.principal)
    return render(request, "reviews.html", caller,
                  waiting=[w for w in items if not w.yours],
                  yours=[w for w in items if w.yours])


def nav_count(request: Request, principal: Principal) -> int | None:
    """The navigation's "Reviews (n)": candidates waiting for this user's confirmation."""
    core = getattr(request.app.state, "core", None)
    if core is None:
        return None
    return review_queue.nav_count(core, principal)


NAV_COUNTS["/reviews"] = nav_count
