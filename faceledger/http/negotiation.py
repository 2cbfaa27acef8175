"""Content negotiation: does this request want an HTML page or a JSON problem?"""

from __future__ import annotations

from fastapi import Request

API_PREFIX = "/api/"


def wants_html(request: Request) -> bool:
    """A browser asking for a page (not an API path, and ``Accept`` names text/html)."""
    return (not request.url.path.startswith(API_PREFIX)
            and "text/html" in request.headers.get("accept", ""))
