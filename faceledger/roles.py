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
    "signed_in": frozenset(Role),  # any signed-in user: own account, sign-out, models in use
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
    # signed checkpoints, the log's public key and consistency proofs: hashes only, published
    "ledger.checkpoint.read": frozenset(Role),
    "ledger.checkpoint.create": frozenset({Role.auditor, Role.admin}),
    "ledger.witness": frozenset({Role.auditor}),  # post a witness's cosignature
    "users.read": frozenset({Role.admin, Role.auditor}),
    "users.manage": frozenset({Role.admin}),
    "calibration.manage": frozenset({Role.admin}),
}


# What each permission lets a person do, in plain words ("Only admins can <this>."). Error pages,
# API problems and CLI messages explain a refusal with these, never with the permission's name.
ACTIONS: dict[str, str] = {
    "signed_in": "use faceledger while signed in",
    "search": "run face searches",
    "faces.read": "see faces and photos",
    "searches.read": "see searches and their results",
    "reviews.write": "review search candidates",
    "jobs.read": "follow ingest jobs",
    "searches.approve": "approve or refuse searches held for approval",
    "outcomes.write": "record what a search led to",
    "subjects.manage": "handle subject rights requests (opt-out, erasure, access)",
    "retention.run": "purge data past its retention period",
    "reports.read": "read oversight reports",
    "collections.read": "list collections",
    "collections.manage": "add or change collections",
    "ingest": "ingest photos",
    "index.manage": "rebuild the search indexes",
    "ledger.read": "read the ledger",
    "ledger.verify": "verify the ledger",
    "ledger.checkpoint.read": "read the ledger's signed checkpoints",
    "ledger.checkpoint.create": "sign a ledger checkpoint",
    "ledger.witness": "co-sign ledger checkpoints as a witness",
    "users.read": "list users",
    "users.manage": "manage users, passwords and API tokens",
    "calibration.manage": "change the score calibration",
}
ROLE_PLURALS: dict[Role, str] = {Role.investigator: "investigators", Role.supervisor: "supervisors",
                                 Role.auditor: "auditors", Role.admin: "admins"}
ROLE_ARTICLES: dict[Role, str] = {Role.investigator: "an investigator",
                                  Role.supervisor: "a supervisor", Role.auditor: "an auditor",
                                  Role.admin: "an admin"}


def allowed(role: str, permission: str) -> bool:
    return permission in PERMISSIONS and Role(role) in PERMISSIONS[permission]


def who_may(permission: str) -> str:
    """The roles holding ``permission`` in words, e.g. 'auditors and admins' ('' for nobody)."""
    names = [ROLE_PLURALS[r] for r in Role if r in PERMISSIONS.get(permission, frozenset())]
    if len(names) > 1:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return names[0] if names else ""


def explain(permission: str, role: str | None = None, user: str = "") -> str:
    """Why a caller may not do something, in plain words (the one place that says it).

    ``explain("ledger.read", "investigator", "ivy")`` -> "Only auditors and admins can read the
    ledger. You are signed in as ivy (investigator)."
    """
    action = ACTIONS.get(permission, f"do that ({permission})")
    holders = who_may(permission)
    text = f"Only {holders} can {action}." if holders else f"Nobody can {action}."
    if user and role:
        text += f" You are signed in as {user} ({role})."
    elif role in ROLE_ARTICLES:
        text += f" You are signed in as {ROLE_ARTICLES[Role(role)]}."
    return text


def require(role: str, permission: str, user: str = "") -> None:
    if not allowed(role, permission):
        raise PermissionDeniedError(
            explain(permission, role, user), permission=permission, role=role,
            allowed_roles=[r.value for r in Role if r in PERMISSIONS.get(permission, frozenset())],
        )
