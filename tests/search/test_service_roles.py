"""The search-domain services called directly with every role: each checks its own permission
first, so a refused role is refused there (PermissionDeniedError, or for a search itself the
ledgered PolicyRefusal of the rule ``roles.search``) and an allowed role gets past the check to the
real work or to the input rule it breaks. Real SQLite, real models."""

from __future__ import annotations

import pytest

from faceledger.accounts.users import Principal
from faceledger.errors import FaceledgerError, PolicyRefusal
from faceledger.roles import Role, allowed
from faceledger.search import approval, face_access, outcomes, results, review_queue, view
from faceledger.search import service as search
from faceledger.search.service import SearchRequest
from tests.conftest import World
from tests.photos import noise_image
from tests.service_gate import Call, assert_gated, everyone

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
    ("face_access.probe_photo", "searches.read",
     lambda a, p: face_access.probe_photo(a, p, MISSING)),
    ("review_queue.waiting", "reviews.write", review_queue.waiting),
    ("approval.pending", "searches.approve", approval.pending),
    ("approval.approvals_page", "searches.approve", approval.approvals_page),
    ("approval.decide", "searches.approve",
     lambda a, p: approval.decide(a, p, MISSING, False, "role test")),
    ("outcomes.record_outcome", "outcomes.write",
     lambda a, p: outcomes.record_outcome(a, p, MISSING, "no_match")),
]


@pytest.fixture
def principals(world: World) -> dict[Role, Principal]:
    return everyone(world)


@pytest.mark.parametrize(("name", "permission", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_every_role_against_every_search_service(
        world: World, principals: dict[Role, Principal], name: str, permission: str,
        call: Call) -> None:
    assert_gated(world.app, principals, name, permission, call)


def test_run_search_refuses_roles_without_search_as_a_ledgered_rule(
        world: World, principals: dict[Role, Principal]) -> None:
    for role, principal in principals.items():
        if allowed(role, "search"):
            with pytest.raises(FaceledgerError) as past:  # no face in the noise photo
                search.run_search(world.app, principal, NOISE, REQ)
            assert not isinstance(past.value, PolicyRefusal), role
        else:
            with pytest.raises(PolicyRefusal, match=r"rule roles\.search"):
                search.run_search(world.app, principal, NOISE, REQ)
