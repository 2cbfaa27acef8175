"""Administration: users (add, disable, rotate tokens) and collections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from faceledger import accounts
from faceledger.api.deps import Caller, Core, need
from faceledger.collections import add_collection, list_collections
from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError, ValidationError
from faceledger.passwords import (
    MIN_PASSWORD,
    check_password,
    forget_initial,
    generate_password,
    hash_password,
)
from faceledger.roles import Role
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Admin = Annotated[Caller, Depends(need("users.manage"))]
CollectionAdmin = Annotated[Caller, Depends(need("collections.manage"))]
NOTICES = {"collection": "Collection added.", "disabled": "User disabled; their tokens and "
           "web sessions no longer work.", "password": "Web password set. A reset ends the user's "
           "web sessions; they sign in with the new password."}


def _admin_page(request: Request, core: Faceledger, caller: Caller, *, status: int = 200,
                error: str | None = None, token: dict[str, str] | None = None,
                notice: str | None = None, form: dict[str, str] | None = None,
                password: dict[str, str] | None = None) -> Response:
    with core.db.read() as s:
        users = [{"name": u.name, "role": u.role, "disabled": u.disabled,
                  "created_at": u.created_at, "has_password": bool(u.password_hash)}
                 for u in accounts.list_users(s)]
        collections = list_collections(s)
    return render(request, "admin.html", caller, status=status, users=users,
                  collections=collections, roles=[r.value for r in Role], error=error,
                  token=token, notice=notice, form=form or {}, me=caller.principal.name,
                  min_password=MIN_PASSWORD, password=password)


def _failed(request: Request, core: Faceledger, caller: Caller, exc: FaceledgerError,
            form: dict[str, str] | None = None) -> Response:
    return _admin_page(request, core, caller, status=exc.status, error=exc.message, form=form)


@router.get("/admin")
def admin(request: Request, core: Core, caller: Admin, done: str = "") -> Response:
    return _admin_page(request, core, caller, notice=NOTICES.get(done))


@router.post("/admin/users")
def add_user(request: Request, core: Core, caller: Admin, name: Annotated[str, Form()] = "",
             role: Annotated[str, Form()] = "", password: Annotated[str, Form()] = ""
             ) -> Response:
    form = {"name": name, "role": role}
    try:
        if password and len(password) < MIN_PASSWORD:
            raise ValidationError(f"the password must be at least {MIN_PASSWORD} characters "
                                  "(or leave it empty for an API-only user)")
        pw_hash = hash_password(password) if password else None
        with core.db.write() as s:
            user, token = accounts.create_user(s, name, role, actor=caller.principal,
                                               password_hash=pw_hash)
            shown = {"user": user.name, "token": token, "why": "created"}
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc, form)
    # Rendered, not redirected: the token must never travel in a URL. Shown this once.
    return _admin_page(request, core, caller, status=201, token=shown)


@router.post("/admin/users/{name}/disable")
def disable_user(request: Request, core: Core, caller: Admin, name: str) -> Response:
    try:
        with core.db.write() as s:
            accounts.disable_user(s, name, actor=caller.principal)
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc)
    return RedirectResponse("/admin?done=disabled", status_code=303)


@router.post("/admin/users/{name}/token")
def rotate_token(request: Request, core: Core, caller: Admin, name: str) -> Response:
    try:
        with core.db.write() as s:
            token = accounts.rotate_token(s, name, actor=caller.principal)
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc)
    return _admin_page(request, core, caller, token={"user": name, "token": token,
                                                    "why": "rotated"})


@router.post("/admin/users/password")
def set_password(request: Request, core: Core, caller: Admin, name: Annotated[str, Form()] = "",
                 password: Annotated[str, Form()] = "") -> Response:
    """Set or reset a web password; empty: generate one and show it this once."""
    form = {"pw_user": name}
    generated = not password
    try:
        new = generate_password() if generated else check_password(password)
        with core.db.write() as s:
            accounts.set_password(s, name, hash_password(new), actor=caller.principal.name,
                                  how="web", generated=generated)
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc, form)
    forget_initial(core.settings.home, name)
    if generated:  # rendered, never redirected: the password must not travel in a URL
        return _admin_page(request, core, caller, password={"user": name, "password": new})
    return RedirectResponse("/admin?done=password", status_code=303)


@router.post("/admin/collections")
def add_collection_page(request: Request, core: Core, caller: CollectionAdmin,
                        name: Annotated[str, Form()] = "",
                        legal_basis: Annotated[str, Form()] = "",
                        description: Annotated[str, Form()] = "") -> Response:
    form: dict[str, Any] = {"col_name": name, "legal_basis": legal_basis,
                            "description": description}
    try:
        with core.db.write() as s:
            add_collection(s, name, legal_basis, description.strip(), actor=caller.principal)
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc, form)
    return RedirectResponse("/admin?done=collection#collections", status_code=303)
