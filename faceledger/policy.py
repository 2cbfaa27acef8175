"""Policy: may this principal run this search? Every refusal names the rule that refused it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faceledger.accounts import Principal
from faceledger.errors import PolicyRefusal
from faceledger.roles import allowed

if TYPE_CHECKING:
    from faceledger.search import SearchRequest


def check_search(principal: Principal, req: SearchRequest) -> None:
    if not allowed(principal.role, "search"):
        raise PolicyRefusal(
            f"rule roles.search: role {principal.role!r} may not search faces",
            rule="roles.search")
