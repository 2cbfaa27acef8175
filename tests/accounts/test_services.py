"""Account, collection, gallery and index services: each checks its own permission (every role
tried), applies its input rules, and returns plain data."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from faceledger.accounts import service as account_services
from faceledger.accounts import websessions
from faceledger.accounts.users import Principal
from faceledger.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from faceledger.gallery import collections, indexstore
from faceledger.gallery.jobs import JobRunner
from faceledger.governance import models_service
from faceledger.roles import PERMISSIONS, Role
from faceledger.search import face_access
from tests.conftest import World

Call = Callable[[World, Principal, str], Any]

# (service, permission it needs, a call that is valid for a permitted caller; ``tag`` keeps
# the names each role creates apart)
CALLS: list[tuple[str, str, Call]] = [
    ("create_collection", "collections.manage",
     lambda w, p, tag: collections.create_collection(w.app, p, f"c-{tag}", "basis", "d")),
    ("collection_list", "collections.read",
     lambda w, p, tag: collections.collection_list(w.app, p)),
    ("collection_detail", "collections.read",
     lambda w, p, tag: collections.collection_detail(w.app, p, "gallery")),
    ("user_list", "users.read", lambda w, p, tag: account_services.user_list(w.app, p)),
    ("add_user", "users.manage",
     lambda w, p, tag: account_services.add_user(w.app, p, f"u-{tag}", "auditor")),
    ("disable_user", "users.manage",
     lambda w, p, tag: account_services.disable_user(w.app, p, f"victim-{tag}")),
    ("rotate_token", "users.manage",
     lambda w, p, tag: account_services.rotate_token(w.app, p, f"victim-{tag}")),
    ("set_password", "users.manage",
     lambda w, p, tag: account_services.set_password(w.app, p, f"victim-{tag}", None, "cli")),
    ("face_detail", "faces.read",  # (within a search that does not exist: not found)
     lambda w, p, tag: face_access.face_detail(w.app, p, 10**6, 10**6)),
    ("image_detail", "faces.read",
     lambda w, p, tag: face_access.image_detail(w.app, p, 10**6, 10**6)),
    ("face_thumbnail", "faces.read",
     lambda w, p, tag: face_access.face_thumbnail(w.app, p, 10**6, 10**6)),
    ("image_file", "faces.read",
     lambda w, p, tag: face_access.image_file(w.app, p, 10**6, 10**6)),
    ("index_status", "collections.read",
     lambda w, p, tag: indexstore.index_status(w.app, p)),
    ("index_rebuild", "index.manage",
     lambda w, p, tag: indexstore.index_rebuild(w.app, p, "gallery")),
    ("models_overview", "signed_in",
     lambda w, p, tag: models_service.models_overview(w.app, p)),
    ("close_session", "signed_in",
     lambda w, p, tag: websessions.close_session(w.app, p, "no-such-session")),
    ("job_status", "jobs.read", lambda w, p, tag: _runner(w).status(p, 10**6)),
    ("job_list", "jobs.read", lambda w, p, tag: _runner(w).recent(p)),
]


def _runner(world: World) -> JobRunner:
    runner = JobRunner(world.app)
    runner.shutdown()  # no job is submitted: only its reads are used
    return runner


@pytest.fixture
def principals(world: World) -> Iterator[dict[Role, Principal]]:
    made = account_services.add_user(world.app, world.admin, "sue", "supervisor")
    sue = account_services.authenticate_token(world.app, made["token"])
    for role in Role:
        account_services.add_user(world.app, world.admin, f"victim-{role.value}", "auditor")
    yield {Role.admin: world.admin, Role.investigator: world.investigator,
           Role.supervisor: sue, Role.auditor: world.auditor}


@pytest.mark.parametrize("name,perm,call", CALLS, ids=[c[0] for c in CALLS])
def test_every_service_checks_its_permission_for_every_role(
        world: World, principals: dict[Role, Principal], name: str, perm: str,
        call: Call) -> None:
    for role, who in principals.items():
        if role in PERMISSIONS[perm]:
            with contextlib.suppress(NotFoundError):  # allowed; told it does not exist
                call(world, who, role.value)
        else:
            with pytest.raises(PermissionDeniedError) as refused:
                call(world, who, role.value)
            assert refused.value.details["permission"] == perm


def test_collection_input_rules_are_the_service_s(world: World) -> None:
    for name, basis, description, words in [
            ("x" * 121, "b", "", "1-120 characters"), ("  ", "b", "", "1-120 characters"),
            ("ok", "  ", "", "legal basis"), ("ok", "b" * 2001, "", "at most 2000"),
            ("ok", "b", "d" * 4001, "at most 4000")]:
        with pytest.raises(ValidationError, match=words):
            collections.create_collection(world.app, world.admin, name, basis, description)
    made = collections.create_collection(world.app, world.admin, "  press ", "basis", "news")
    assert (made["name"], made["owner"], made["images"], made["faces"]) == ("press", "root", 0, 0)
    assert collections.collection_detail(world.app, world.investigator, "press") == made
    with pytest.raises(NotFoundError, match="known collections: gallery, press"):
        collections.collection_detail(world.app, world.admin, "nowhere")


def test_account_services_return_plain_data_and_apply_password_rules(world: World) -> None:
    with pytest.raises(ValidationError, match="at least 10 characters"):
        account_services.add_user(world.app, world.admin, "pat", "auditor", password="short")
    with pytest.raises(ValidationError, match="unknown role"):
        account_services.add_user(world.app, world.admin, "pat", "boss")
    made = account_services.add_user(world.app, world.admin, "pat", "auditor",
                                     password="pat-password-1", unit="Unit 7")
    assert set(made) == {"user", "role", "token"} and made["token"].startswith("flk_")
    pat = account_services.authenticate_token(world.app, made["token"])
    assert (pat.name, pat.role) == ("pat", "auditor")
    listed = {u["name"]: u for u in account_services.user_list(world.app, world.auditor)}
    assert listed["pat"]["has_password"] and listed["pat"]["unit"] == "Unit 7"
    assert isinstance(listed["pat"]["created_at"], str) and not listed["ivy"]["has_password"]

    sid, _csrf = websessions.open_session(world.app, " pat ", "pat-password-1")
    assert websessions.session_of(world.app, sid) is not None
    reset = account_services.set_password(world.app, world.admin, "pat", None, "web")
    assert reset["generated"] and len(reset["password"]) >= 10
    assert websessions.session_of(world.app, sid) is None  # a reset ends her web sessions
    with pytest.raises(AuthenticationError):
        websessions.open_session(world.app, "pat", "pat-password-1")
    sid2, _ = websessions.open_session(world.app, "pat", reset["password"])
    websessions.close_session(world.app, pat, sid2)
    assert websessions.session_of(world.app, sid2) is None

    rotated = account_services.rotate_token(world.app, world.admin, "pat")
    with pytest.raises(AuthenticationError):
        account_services.authenticate_token(world.app, made["token"])
    assert account_services.authenticate_token(world.app, rotated["token"]).name == "pat"
    with pytest.raises(ValidationError, match="cannot disable yourself"):
        account_services.disable_user(world.app, world.admin, "root")
    assert account_services.disable_user(world.app, world.admin, "pat") == {
        "user": "pat", "disabled": True}


def test_local_recovery_services_need_no_principal(world: World) -> None:
    issued = account_services.local_admin_token(world.app, "local:tester", None)
    assert issued["user"] == "root"
    assert account_services.authenticate_token(world.app, issued["token"]).role == "admin"
    done = account_services.local_set_password(world.app, "local:tester", "ivy",
                                               "ivy-password-1")
    assert done == {"user": "ivy", "password": None, "generated": False}
    sid, _ = websessions.open_session(world.app, "ivy", "ivy-password-1")
    assert websessions.session_of(world.app, sid) is not None
    with pytest.raises(ValidationError, match="at least 10"):
        account_services.local_set_password(world.app, "local:tester", "ivy", "short")
