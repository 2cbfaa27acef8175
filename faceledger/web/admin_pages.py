"""Administration: users (add, disable, rotate tokens) and collections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from faceledger.accounts import service as account_services
from faceledger.accounts.passwords import MIN_PASSWORD
from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError
from faceledger.gallery.collections import collection_list, create_collection
from faceledger.gallery.reembed import reembed_overview
from faceledger.http.deps import Caller, Core, need
from faceledger.http.jobs import job_runner
from faceledger.roles import Role
from faceledger.web.pages import render

router = APIRouter(include_in_schema=False)
Admin = Annotated[Caller, Depends(need("users.manage"))]
CollectionAdmin = Annotated[Caller, Depends(need("collections.manage"))]
IndexAdmin = Annotated[Caller, Depends(need("index.manage"))]
NOTICES = {"collection": "Collection added.", "disabled": "User disabled; their tokens and "
           "web sessions no longer work.", "password": "Web password set. A reset ends the user's "
           "web sessions; they sign in with the new password.",
           "unlocked": "User unlocked; they can sign in again.",
           "not-locked": "That user was not locked out.",
           "reembed": "Re-embedding started; searches keep the current model until it is done."}


def _admin_page(request: Request, core: Faceledger, caller: Caller, *, status: int = 200,
                error: str | None = None, token: dict[str, str] | None = None,
                notice: str | None = None, form: dict[str, str] | None = None,
                password: dict[str, str] | None = None) -> Response:
    users = account_services.user_list(core, caller.principal)
    collections = collection_list(core, caller.principal)
    return render(request, "admin.html", caller, status=status, users=users,
                  collections=collections, roles=[r.value for r in Role], error=error,
                  token=token, notice=notice, form=form or {}, me=caller.principal.name,
                  min_password=MIN_PASSWORD, password=password,
                  reembed=reembed_overview(core, caller.principal))


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
        made = account_services.add_user(core, caller.principal, name, role, password or None)
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc, form)
    # Rendered, not redirected: the token must never travel in a URL. Shown this once.
    return _admin_page(request, core, caller, status=201,
                       token={"user": made["user"], "token": made["token"], "why": "created"})


@router.post("/admin/users/{name}/disable")
def disable_user(request: Request, core: Core, caller: Admin, name: str) -> Response:
    try:
        account_services.disable_user(core, caller.principal, name)
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc)
    return RedirectResponse("/admin?done=disabled", status_code=303)


@router.post("/admin/users/{name}/unlock")
def unlock_user(request: Request, core: Core, caller: Admin, name: str) -> Response:
    """Lift a lock-out after failed sign-ins (ledgered)."""
    try:
        done = account_services.unlock_user(core, caller.principal, name)
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc)
    return RedirectResponse(f"/admin?done={'unlocked' if done['unlocked'] else 'not-locked'}",
                            status_code=303)


@router.post("/admin/users/{name}/token")
def rotate_token(request: Request, core: Core, caller: Admin, name: str) -> Response:
    try:
        rotated = account_services.rotate_token(core, caller.principal, name)
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc)
    return _admin_page(request, core, caller, token={**rotated, "why": "rotated"})


@router.post("/admin/users/password")
def set_password(request: Request, core: Core, caller: Admin, name: Annotated[str, Form()] = "",
                 password: Annotated[str, Form()] = "") -> Response:
    """Set or reset a web password; empty: generate one and show it this once."""
    form = {"pw_user": name}
    try:
        done = account_services.set_password(core, caller.principal, name, password or None,
                                             how="web")
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc, form)
    if done["generated"]:  # rendered, never redirected: the password must not travel in a URL
        return _admin_page(request, core, caller,
                           password={"user": name, "password": done["password"]})
    return RedirectResponse("/admin?done=password", status_code=303)


@router.post("/admin/collections")
def add_collection_page(request: Request, core: Core, caller: CollectionAdmin,
                        name: Annotated[str, Form()] = "",
                        legal_basis: Annotated[str, Form()] = "",
                        description: Annotated[str, Form()] = "") -> Response:
    form: dict[str, Any] = {"col_name": name, "legal_basis": legal_basis,
                            "description": description}
    try:
        create_collection(core, caller.principal, name, legal_basis, description.strip())
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc, form)
    return RedirectResponse("/admin?done=collection#collections", status_code=303)


@router.post("/admin/reembed")
def start_reembed_page(request: Request, core: Core, caller: IndexAdmin,
                       model: Annotated[str, Form()] = "",
                       collection: Annotated[str, Form()] = "") -> Response:
    """Re-embed the gallery with another model in the background (ledgered)."""
    form = {"re_model": model, "re_collection": collection}
    try:
        job_runner(request).submit_reembed(caller.principal, model, collection or None)
    except FaceledgerError as exc:
        return _failed(request, core, caller, exc, form)
    return RedirectResponse("/admin?done=reembed#reembed", status_code=303)
