"""Collections: named, lawfully held sets of images, each with its legal basis and owner."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger import ledger
from faceledger.accounts import Principal
from faceledger.db.schema import Collection, Face, Image
from faceledger.errors import ConflictError, NotFoundError, ValidationError
from faceledger.roles import require


def add_collection(
    session: Session, name: str, legal_basis: str, description: str, *, actor: Principal
) -> Collection:
    require(actor.role, "collections.manage", actor.name)
    name = name.strip()
    if not name or len(name) > 120:
        raise ValidationError("collection name must be 1-120 characters")
    if not legal_basis.strip():
        raise ValidationError("a collection needs a legal basis (--legal-basis)")
    if session.execute(select(Collection).where(Collection.name == name)).first():
        raise ConflictError(f"collection {name!r} already exists")
    col = Collection(name=name, legal_basis=legal_basis.strip(), description=description,
                     owner_id=actor.user_id, created_at=datetime.now(UTC))
    session.add(col)
    session.flush()
    ledger.append(session, "collection.created",
                  {"collection": name, "legal_basis": col.legal_basis,
                   "description": description}, actor=actor.name)
    return col


def get_collection(session: Session, name: str) -> Collection:
    col = session.execute(select(Collection).where(Collection.name == name)).scalar_one_or_none()
    if col is None:
        known = session.execute(select(Collection.name).order_by(Collection.name)).scalars().all()
        hint = (f"known collections: {', '.join(known)}" if known else "there are none yet")
        raise NotFoundError(
            f"unknown collection {name!r} ({hint}); create it first with "
            f"`faceledger collections add {name} --legal-basis \"...\"`"
        )
    return col


def list_collections(session: Session) -> list[dict[str, Any]]:
    images = dict(session.execute(
        select(Image.collection_id, func.count(Image.id)).group_by(Image.collection_id)).all())
    faces = dict(session.execute(
        select(Face.collection_id, func.count(Face.id)).group_by(Face.collection_id)).all())
    out = []
    for c in session.execute(select(Collection).order_by(Collection.name)).scalars():
        out.append({
            "id": c.id, "name": c.name, "description": c.description,
            "legal_basis": c.legal_basis, "owner": c.owner.name,
            "created_at": c.created_at.isoformat(), "images": images.get(c.id, 0),
            "faces": faces.get(c.id, 0),
        })
    return out
