"""Who may do what: the role x permission matrix, as data. Routes and commands only name a
permission; this table decides."""

from __future__ import annotations

from enum import StrEnum

from faceledger.errors import PermissionDeniedError


class Role(StrEnum):
    investigator = "investigator"
    supervisor = "supervisor"
    auditor = "auditor"
    admin = "admin"


PERMISSIONS: dict[str, frozenset[Role]] = {
    "search": frozenset({Role.investigator, Role.supervisor}),
    "faces.read": frozenset({Role.investigator, Role.supervisor}),
    "searches.read": frozenset({Role.investigator, Role.supervisor}),  # own; supervisors: all
    "reviews.write": frozenset({Role.investigator, Role.supervisor}),
    "jobs.read": frozenset({Role.admin}),
    "searches.approve": frozenset({Role.supervisor}),
    "outcomes.write": frozenset({Role.investigator, Role.supervisor}),
    "subjects.manage": frozenset({Role.admin}),
    "retention.run": frozenset({Role.admin}),
    "reports.read": frozenset({Role.auditor, Role.admin}),
    "collections.read": frozenset(Role),
    "collections.manage": frozenset({Role.admin}),
    "ingest": frozenset({Role.admin}),
    "index.manage": frozenset({Role.admin}),
    "ledger.read": frozenset({Role.auditor, Role.admin}),
    "ledger.verify": frozenset({Role.auditor, Role.admin}),
    "users.read": frozenset({Role.admin, Role.auditor}),
    "users.manage": frozenset({Role.admin}),
    "calibration.manage": frozenset({Role.admin}),
}


def allowed(role: str, permission: str) -> bool:
    return permission in PERMISSIONS and Role(role) in PERMISSIONS[permission]


def require(role: str, permission: str, user: str = "") -> None:
    if not allowed(role, permission):
        who = f"user {user!r} " if user else ""
        roles = ", ".join(sorted(PERMISSIONS.get(permission, frozenset())))
        raise PermissionDeniedError(
            f"{who}with role {role!r} may not {permission} (needs one of: {roles or 'nobody'})",
            permission=permission,
        )
