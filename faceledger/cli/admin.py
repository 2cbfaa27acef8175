"""init, users."""

from __future__ import annotations

import getpass
import secrets
import sys
from typing import Any

import typer

from faceledger import accounts
from faceledger.cli.common import emit_json, login, open_app
from faceledger.passwords import hash_password

users = typer.Typer(help="Manage users and their API tokens (admins only).", no_args_is_help=True)


def init(
    admin: str = typer.Option("admin", help="Name of the first admin."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create the data home, the database and the first admin; print its token once."""
    password = secrets.token_urlsafe(12)
    with open_app() as app:
        user, token = app.initialise(admin, password)
        if as_json:
            emit_json({"user": user.name, "role": user.role, "token": token,
                       "password": password})
            return
        typer.echo(f"Initialised faceledger in {app.settings.home.resolve()}")
        typer.echo(f"Web sign-in: user {user.name}, password {password} (shown once)")
        typer.echo(f"First admin: {user.name}. Its API token is shown once; keep it safe "
                   "(export FACELEDGER_TOKEN=...):")
        typer.echo(token)


@users.command("add")
def users_add(
    name: str,
    role: str = typer.Option(..., help="investigator | supervisor | auditor | admin"),
    password: bool = typer.Option(False, "--password", help="Also set a web sign-in password "
                                  "(asked on the terminal, or read from stdin)."),
    unit: str | None = typer.Option(None, "--unit", help="Team or unit (shown in subject "
                                    "access answers)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Add a user and print a new API token (stored only as a hash)."""
    with open_app() as app:
        actor = login(app, "users.manage")
        pw_hash = hash_password(_read_password()) if password else None
        with app.db.write() as s:
            user, token = accounts.create_user(s, name, role, actor=actor,
                                               password_hash=pw_hash, unit=unit)
        if as_json:
            emit_json({"user": user.name, "role": user.role, "token": token})
            return
        typer.echo(f"Added {user.role} {user.name}. API token (shown once):")
        typer.echo(token)


def _read_password() -> str:
    if sys.stdin.isatty():
        pw = getpass.getpass("Password: ")
        if pw != getpass.getpass("Again: "):
            raise typer.BadParameter("passwords differ")
    else:
        pw = sys.stdin.readline().rstrip("\n")
    if len(pw) < 10:
        raise typer.BadParameter("password must be at least 10 characters")
    return pw


@users.command("list")
def users_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List users and roles."""
    with open_app() as app:
        login(app, "users.read")
        with app.db.read() as s:
            rows: list[dict[str, Any]] = [{"name": u.name, "role": u.role, "disabled": u.disabled,
                     "created_at": u.created_at.isoformat()} for u in accounts.list_users(s)]
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        flag = " (disabled)" if r["disabled"] else ""
        typer.echo(f"{r['name']:<24} {r['role']:<13} {r['created_at'][:19]}{flag}")


@users.command("disable")
def users_disable(name: str) -> None:
    """Disable a user and revoke their tokens."""
    with open_app() as app:
        actor = login(app, "users.manage")
        with app.db.write() as s:
            accounts.disable_user(s, name, actor=actor)
    typer.echo(f"Disabled {name}; their tokens are revoked.")


@users.command("token")
def users_token(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Revoke a user's tokens and print a new one."""
    with open_app() as app:
        actor = login(app, "users.manage")
        with app.db.write() as s:
            token = accounts.rotate_token(s, name, actor=actor)
    if as_json:
        emit_json({"user": name, "token": token})
        return
    typer.echo(f"New API token for {name} (shown once; older tokens are revoked):")
    typer.echo(token)


def serve(
    host: str | None = typer.Option(None, help="Default: FACELEDGER_HOST (127.0.0.1)."),
    port: int | None = typer.Option(None, help="Default: FACELEDGER_PORT (8000)."),
) -> None:
    """Run the REST API and web UI (models load once at start-up)."""
    import uvicorn

    from faceledger.api.app import create_app
    from faceledger.settings import get_settings

    settings = get_settings()
    settings = settings.model_copy(update={"host": host or settings.host,
                                           "port": port or settings.port})
    with open_app() as app:
        app.db.require_initialised()
    url = f"http://{settings.host}:{settings.port}/"
    typer.echo(f"faceledger on {url}  (API docs {url}docs). Sign in with the admin name and "
               "password `faceledger init` printed; API clients send 'Authorization: Bearer "
               "<token>'.")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="info", proxy_headers=False)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.add_typer(users, name="users")
