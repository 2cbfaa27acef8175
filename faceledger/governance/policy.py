"""Policy as data: a TOML file, validated on load, its hash ledgered when it changes.

Every refusal names the rule that refused it."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.db.schema import LedgerEntry, Search
from faceledger.errors import ConfigError, PolicyRefusal
from faceledger.governance import ledger
from faceledger.roles import Role, allowed

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.search.service import SearchRequest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalRule(_Strict):
    name: str
    purposes: list[str] | None = None
    offences: list[str] | None = None
    modes: list[str] | None = None
    collections: list[str] | None = None
    roles: list[Role] | None = None


class Approval(_Strict):
    rules: list[ApprovalRule] = Field(default_factory=list)


class Authorisation(_Strict):
    required_for_purposes: list[str] = Field(default_factory=list)
    urgent_window_hours: float = Field(default=48, gt=0)


class Quota(_Strict):
    searches_per_user_per_day: int | None = Field(default=None, ge=1)


class Retention(_Strict):
    probe_images_days: float | None = Field(default=None, gt=0)
    result_sets_days: float | None = Field(default=None, gt=0)


class Oversight(_Strict):
    working_hours: tuple[int, int] = (7, 19)
    working_days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    timezone: str = "UTC"


class Policy(_Strict):
    version: int = 1
    purposes: list[str] = Field(min_length=1)
    offences: list[str] = Field(min_length=1)
    roles: dict[str, list[Role]] = Field(default_factory=lambda: {"*": [Role.investigator,
                                                                        Role.supervisor]})
    approval: Approval = Field(default_factory=Approval)
    authorisation: Authorisation = Field(default_factory=Authorisation)
    quota: Quota = Field(default_factory=Quota)
    retention: Retention = Field(default_factory=Retention)
    oversight: Oversight = Field(default_factory=Oversight)

    @field_validator("roles")
    @classmethod
    def _has_default(cls, v: dict[str, list[Role]]) -> dict[str, list[Role]]:
        if "*" not in v:
            raise ValueError('roles needs a "*" entry for collections not listed')
        return v

    def roles_for(self, collection: str) -> list[Role]:
        return self.roles.get(collection, self.roles["*"])


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    sha256: str
    source: str
    text: str


def policy_path(home: Path, explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    candidate = home / "policy.toml"
    return candidate if candidate.exists() else None


def load_policy(path: Path | None) -> LoadedPolicy:
    if path is None:
        text = files("faceledger.data").joinpath("policy.toml").read_text("utf-8")
        source = "packaged default"
    else:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read policy file {path}: {exc.strerror}") from None
        source = str(path)
    try:
        data = tomllib.loads(text)
        policy = Policy.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"policy {source} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"policy {source} is invalid: {problems}") from None
    return LoadedPolicy(policy, hashlib.sha256(text.encode("utf-8")).hexdigest(), source, text)


def record_if_changed(session: Session, loaded: LoadedPolicy, actor: str | None = None) -> bool:
    """Ledger the policy (hash and text) when it differs from the last one ledgered."""
    last = session.execute(
        select(LedgerEntry).where(LedgerEntry.kind == "policy.loaded")
        .order_by(LedgerEntry.seq.desc()).limit(1)).scalar_one_or_none()
    if last is not None and last.payload and f'"sha256":"{loaded.sha256}"' in last.payload:
        return False
    ledger.append(session, "policy.loaded", {"sha256": loaded.sha256, "source": loaded.source,
                                             "text": loaded.text}, actor=actor)
    return True


def _refuse(rule: str, message: str) -> PolicyRefusal:
    return PolicyRefusal(f"refused by rule {rule}: {message}", rule=rule)


def check_search(session: Session, policy: Policy, principal: Principal, req: SearchRequest,
                 collections: list[str]) -> list[str]:
    """Raise PolicyRefusal, or return the names of approval rules the search must pass.

    The search service runs this inside the write transaction that records the search (and
    once before, in a read, to refuse early): the quota count and the row it guards commit
    together, so concurrent searches cannot all pass a quota."""
    if not allowed(principal.role, "search"):
        raise _refuse("roles.search", f"role {principal.role!r} may not search faces")
    if req.purpose not in policy.purposes:
        raise _refuse("purposes", f"purpose {req.purpose!r} is not one of: "
                      + ", ".join(policy.purposes))
    if req.offence not in policy.offences:
        raise _refuse("offences", f"offence type {req.offence!r} is not one of: "
                      + ", ".join(policy.offences))
    barred = [c for c in collections if Role(principal.role) not in policy.roles_for(c)]
    if barred:
        raise _refuse("roles.collections", f"role {principal.role!r} may not search "
                      + ", ".join(barred))
    if (req.purpose in policy.authorisation.required_for_purposes
            and not req.authorisation_ref and not req.urgent):
        raise _refuse("authorisation.required",
                      f"purpose {req.purpose!r} needs an authorisation reference "
                      "(or mark the search urgent and add it within "
                      f"{policy.authorisation.urgent_window_hours:g} hours)")
    quota = policy.quota.searches_per_user_per_day
    if quota is not None:
        since = datetime.now(UTC) - timedelta(days=1)
        used = session.execute(select(func.count(Search.id)).where(
            Search.user_id == principal.user_id, Search.started_at >= since)).scalar_one()
        if used >= quota:
            raise _refuse("quota.searches_per_user_per_day",
                          f"{used} searches in the last 24 hours; the quota is {quota}")
    return [r.name for r in policy.approval.rules if _matches(r, principal, req, collections)]


def _matches(rule: ApprovalRule, principal: Principal, req: SearchRequest,
             collections: list[str]) -> bool:
    checks: list[bool] = []
    if rule.purposes is not None:
        checks.append(req.purpose in rule.purposes)
    if rule.offences is not None:
        checks.append(req.offence in rule.offences)
    if rule.modes is not None:
        checks.append(req.mode in rule.modes)
    if rule.collections is not None:
        checks.append(any(c in rule.collections for c in collections))
    if rule.roles is not None:
        checks.append(Role(principal.role) in rule.roles)
    return bool(checks) and all(checks)


def describe(policy: Policy) -> dict[str, Any]:
    return policy.model_dump(mode="json")
