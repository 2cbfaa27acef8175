"""Real rows for the oversight tests: users, searches with fabricated probe embeddings, outcomes
and ledger entries, written through the ORM into the `world` fixture's database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import select

from faceledger.db.schema import Outcome, Search, User
from faceledger.governance import ledger
from faceledger.governance.policy import Policy
from faceledger.oversight.flags import FlagConfig
from faceledger.oversight.report import OversightReport, build_report
from tests.conftest import World

Vec = npt.NDArray[np.float32]
DIM = 128


def unit(v: npt.NDArray[Any]) -> Vec:
    return (v / np.linalg.norm(v)).astype(np.float32)


def at(text: str) -> datetime:
    """'2025-03-03 09:00' as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Faces:
    """Fabricated probe embeddings: a person is a random unit vector; their photos add a
    little noise (cosine > 0.95); different persons are independent random unit vectors."""

    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))

    def person(self) -> Vec:
        return unit(self.rng.normal(size=DIM))

    def photo(self, person: Vec, noise: float = 0.01) -> Vec:
        v = unit(person + self.rng.normal(scale=noise, size=DIM))
        assert float(v @ person) > 0.95
        return v

    def at_cosine(self, person: Vec, cosine: float) -> Vec:
        """A unit vector with exactly this cosine to ``person``."""
        r = self.rng.normal(size=DIM)
        orth = unit(r - (r @ person) * person)
        return unit(cosine * person + np.sqrt(1 - cosine**2) * orth)


class Builder:
    def __init__(self, world: World) -> None:
        self.world = world
        self.faces = Faces()
        self._n = 0

    def user(self, name: str, role: str = "investigator", unit: str | None = None) -> str:
        with self.world.app.db.write() as s:
            u = s.execute(select(User).where(User.name == name)).scalar_one_or_none()
            if u is None:
                s.add(User(name=name, role=role, unit=unit, created_at=datetime.now(UTC)))
            else:
                u.unit = unit
        return name

    def search(self, user: str, when: str | datetime, case: str, *,
               purpose: str = "criminal investigation", offence: str = "robbery",
               emb: Vec | None = None, ratio: float | None = 0.05, status: str = "done",
               outcome: str | None = None, sha: str | None = None, results: int = 3,
               mode: str = "investigate", rules: list[str] | None = None) -> int:
        self._n += 1
        started = at(when) if isinstance(when, str) else when
        vec = emb if emb is not None else self.faces.person()
        with self.world.app.db.write() as s:
            uid = s.execute(select(User.id).where(User.name == user)).scalar_one()
            row = Search(
                user_id=uid, case_ref=case, purpose=purpose, offence=offence,
                legal_basis="PACE s.1", mode=mode, model_id="dlib-resnet-v1", top_k=20,
                probe_sha256=sha or hashlib.sha256(f"probe{self._n}".encode()).hexdigest(),
                started_at=started, finished_at=started, ledger_seq=0,
                result_count=results if status == "done" else 0, status=status,
                approval_rules=rules, probe_embedding=vec.astype("<f4").tobytes()
                if status != "refused" else None, probe_face_ratio=ratio)
            s.add(row)
            s.flush()
            sid = row.id
        if outcome is not None:
            self.outcome(sid, outcome, started + timedelta(days=1))
        return sid

    def outcome(self, search_id: int, result: str, created: datetime, note: str = "") -> None:
        with self.world.app.db.write() as s:
            uid = s.execute(select(Search.user_id).where(Search.id == search_id)).scalar_one()
            s.add(Outcome(search_id=search_id, user_id=uid, result=result, outcome_date=created,
                          note=note, created_at=created, ledger_seq=0))

    def ledger(self, kind: str, payload: dict[str, Any], actor: str | None = None,
               case: str | None = None) -> int:
        with self.world.app.db.write() as s:
            return ledger.append(s, kind, payload, actor=actor, case_ref=case).seq

    def report(self, start: str | datetime, end: str | datetime, user: str | None = None,
               policy: Policy | None = None, config: FlagConfig | None = None
               ) -> OversightReport:
        with self.world.app.db.read() as s:
            return build_report(
                s, start=at(start) if isinstance(start, str) else start,
                end=at(end) if isinstance(end, str) else end, user=user,
                policy=policy or self.world.app.policy(), flag_config=config)


@pytest.fixture
def build(world: World) -> Iterator[Builder]:
    yield Builder(world)
