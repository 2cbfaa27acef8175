"""The search-domain services called directly with every role: each checks its own permission
first, so a refused role is refused there (PermissionDeniedError, or for a search itself the
ledgered PolicyRefusal of the rule ``roles.search``) and an allowed role gets past the check to the
real work or to the input rule it breaks. Real SQLite, real models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from faceledger.accounts import users as accounts
from faceledger.accounts.users import Principal
from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError, PermissionDeniedError, PolicyRefusal
from faceledger.roles import Role, allowed
from faceledger.search import approval, outcomes, results, review_queue, view
from faceledger.search import service as search
from faceledger.search.service import SearchRequest
from tests.conftest import World
from tests.photos import noise_image

Call = Callable[[Faceledger, Principal], Any]
NOISE = noise_image()
MISSING = 987_654  # no such search: an allowed role gets past the check to "not found"
REQ = SearchRequest(case_ref="OP-1", purpose="criminal investigation", offence="robbery",
                    legal_basis="PACE 1984 s.1")
CALLS: list[tuple[str, str, Call]] = [
    ("search.detect_faces", "search", lambda a, p: search.detect_faces(a, p, NOISE)),
    ("search.form_options", "search", search.form_options),
    ("results.list_searches", "searches.read", results.list_searches),
    ("results.search_detail", "searches.read", lambda a, p: results.search_detail(a, p, MISSING)),
    ("results.review", "reviews.write",
     lambda a, p: results.review(a, p, MISSING, 1, "confirmed", "")),
    ("view.search_page", "searches.read", lambda a, p: view.search_page(a, p, MISSING)),
    ("view.probe_photo", "searches.read", lambda a, p: view.probe_photo(a, p, MISSING)),
    ("review_queue.waiting", "reviews.write", review_queue.waiting),
    ("approval.pending", "searches.approve", approval.pending),
    ("approval.approvals_page", "searches.approve", approval.approvals_page),
    ("approval.decide", "searches.approve",
     lambda a, p: approval.decide(a, p, MISSING, False, "role test")),
    ("outcomes.record_outcome", "outcomes.write",
     lambda a, p: outcomes.record_outcome(a, p, MISSING, "no_match")),
]


@pytest.fixture
def everyone(world: World) -> dict[Role, Principal]:
    with world.app.db.write() as s:
        sue, _ = accounts.create_user(s, "sue", "supervisor", actor=world.admin)
        sup = Principal(sue.id, sue.name, sue.role)
    return {Role.admin: world.admin, Role.investigator: world.investigator,
            Role.auditor: world.auditor, Role.supervisor: sup}


@pytest.mark.parametrize(("name", "permission", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_every_role_against_every_search_service(
        world: World, everyone: dict[Role, Principal], name: str, permission: str,
        call: Call) -> None:
    for role, principal in everyone.items():
        if allowed(role, permission):
            try:
                call(world.app, principal)
            except PermissionDeniedError as denied:
                pytest.fail(f"{name}: {role} holds {permission} but was refused: {denied}")
            except FaceledgerError:
                pass  # past the check: no such search, no face in the noise photo, …
        else:
            with pytest.raises(PermissionDeniedError) as refused:
                call(world.app, principal)
            assert refused.value.details["permission"] == permission, name


def test_run_search_refuses_roles_without_search_as_a_ledgered_rule(
        world: World, everyone: dict[Role, Principal]) -> None:
    for role, principal in everyone.items():
        if allowed(role, "search"):
            with pytest.raises(FaceledgerError) as past:  # no face in the noise photo
                search.run_search(world.app, principal, NOISE, REQ)
            assert not isinstance(past.value, PolicyRefusal), role
        else:
            with pytest.raises(PolicyRefusal, match=r"rule roles\.search"):
                search.run_search(world.app, principal, NOISE, REQ)
