"""Collections: named, lawfully held sets of images, each with its legal basis and owner.

Services (``app, principal`` first; each opens its own transaction and checks its own
permission): ``create_collection``, ``collection_list``, ``collection_detail``. The functions
taking a ``Session`` are the repository the other services build on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.db.schema import Collection, Face, Image
from faceledger.errors import ConflictError, NotFoundError, ValidationError
from faceledger.gallery.reembed_store import active_model_in
from faceledger.governance import ledger
from faceledger.roles import require

if TYPE_CHECKING:
    from faceledger.accounts.users import Principal
    from faceledger.core import Faceledger

MAX_NAME = 120
MAX_LEGAL_BASIS = 2000
MAX_DESCRIPTION = 4000


def check_collection_input(name: str, legal_basis: str, description: str) -> tuple[str, str, str]:
    """The input rules for a new collection (the same for the CLI, the API and the web)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValidationError(f"collection name must be 1-{MAX_NAME} characters")
    if not legal_basis.strip():
        raise ValidationError("a collection needs a legal basis (--legal-basis)")
    if len(legal_basis.strip()) > MAX_LEGAL_BASIS:
        raise ValidationError(f"the legal basis must be at most {MAX_LEGAL_BASIS} characters")
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(f"the description must be at most {MAX_DESCRIPTION} characters")
    return name, legal_basis.strip(), description


def add_collection(
    session: Session, name: str, legal_basis: str, description: str, *, actor: Principal
) -> Collection:
    """Repository: insert a collection owned by ``actor`` (ledgered). The caller checks the
    permission (``create_collection`` does)."""
    name, legal_basis, description = check_collection_input(name, legal_basis, description)
    if session.execute(select(Collection).where(Collection.name == name)).first():
        raise ConflictError(f"collection {name!r} already exists")
    col = Collection(name=name, legal_basis=legal_basis, description=description,
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


def list_collections(session: Session, model_id: str | None = None) -> list[dict[str, Any]]:
    """Every collection with its images and its faces in the gallery: those of the active
    model (``model_id``, or as the database names it), not those a re-embedding keeps or
    adds beside them."""
    images = dict(session.execute(
        select(Image.collection_id, func.count(Image.id)).group_by(Image.collection_id)).all())
    model_id = model_id or active_model_in(session)
    q = select(Face.collection_id, func.count(Face.id)).group_by(Face.collection_id)
    faces = dict(session.execute(q if model_id is None else q.where(Face.model_id == model_id))
                 .all())
    out = []
    for c in session.execute(select(Collection).order_by(Collection.name)).scalars():
        out.append({
            "id": c.id, "name": c.name, "description": c.description,
            "legal_basis": c.legal_basis, "owner": c.owner.name,
            "created_at": c.created_at.isoformat(), "images": images.get(c.id, 0),
            "faces": faces.get(c.id, 0),
        })
    return out


def _detail(session: Session, name: str, model_id: str) -> dict[str, Any]:
    get_collection(session, name)  # NotFound with a hint
    return next(c for c in list_collections(session, model_id) if c["name"] == name)


# --- services -----------------------------------------------------------------------------

def create_collection(app: Faceledger, principal: Principal, name: str, legal_basis: str,
                      description: str = "") -> dict[str, Any]:
    """Create a collection (admins); returns it as ``collection_detail`` shows it."""
    require(principal.role, "collections.manage", principal.name)
    with app.db.write() as s:
        created = add_collection(s, name, legal_basis, description, actor=principal).name
    model_id = app.model_id
    with app.db.read() as s:  # as stored (and as every later read shows it)
        return _detail(s, created, model_id)


def collection_list(app: Faceledger, principal: Principal) -> list[dict[str, Any]]:
    """Every collection with its image and face counts."""
    require(principal.role, "collections.read", principal.name)
    model_id = app.model_id
    with app.db.read() as s:
        return list_collections(s, model_id)


def collection_detail(app: Faceledger, principal: Principal, name: str) -> dict[str, Any]:
    require(principal.role, "collections.read", principal.name)
    model_id = app.model_id
    with app.db.read() as s:
        return _detail(s, name, model_id)
