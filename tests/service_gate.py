"""Every-role checks for services: each service checks its own permission first, so a role
without it is refused there, and a role with it gets past the check (to the real work, or to a
later refusal such as "not found" or "no face")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from faceledger.accounts import users as accounts
from faceledger.accounts.users import Principal
from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError, PermissionDeniedError
from faceledger.roles import Role, allowed
from tests.conftest import World

Call = Callable[[Faceledger, Principal], Any]


def everyone(world: World) -> dict[Role, Principal]:
    """A principal of every role (adds the supervisor ``sue``)."""
    with world.app.db.write() as s:
        sue, _ = accounts.create_user(s, "sue", "supervisor", actor=world.admin)
        sup = Principal(sue.id, sue.name, sue.role)
    return {Role.admin: world.admin, Role.investigator: world.investigator,
            Role.auditor: world.auditor, Role.supervisor: sup}


def assert_gated(app: Faceledger, principals: dict[Role, Principal], name: str,
                 permission: str, call: Call) -> None:
    for role, principal in principals.items():
        if allowed(role, permission):
            try:
                call(app, principal)
            except PermissionDeniedError as denied:
                pytest.fail(f"{name}: {role} holds {permission} but was refused: {denied}")
            except FaceledgerError:
                pass  # past the check
        else:
            with pytest.raises(PermissionDeniedError) as refused:
                call(app, principal)
            assert refused.value.details["permission"] == permission, name
