"""init, serve, admin-token, users (add, password, list, disable, unlock, token)."""

from __future__ import annotations

import getpass
import sys
import threading
import time
from typing import Any

import typer

from faceledger.accounts import service as account_services
from faceledger.accounts.passwords import (
    INITIAL_FILE,
    check_password,
    forget_initial,
    generate_password,
    load_initial,
)
from faceledger.cli.common import emit_json, login, open_app
from faceledger.errors import ConflictError, ValidationError

users = typer.Typer(help="Manage users and their API tokens (admins only).", no_args_is_help=True)


def init(
    admin: str = typer.Option("admin", help="Name of the first admin."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    if_needed: bool = typer.Option(False, "--if-needed", help="Do nothing (exit 0) when the data "
                                   "home is already initialised, e.g. by `make run`."),
) -> None:
    """Create the data home, the database and the first admin; print its token once."""
    password = generate_password()
    with open_app() as app:
        home = app.settings.home.resolve()
        try:
            made = account_services.initialise(app, admin, password)
        except ConflictError:
            msg = (f"faceledger is already initialised in {home}. Whoever holds this data home "
                   "gets an admin API token with `faceledger admin-token` and sets a web "
                   "password with `faceledger users password NAME --local`.")
            if not if_needed:
                raise ConflictError(msg) from None
            if as_json:
                emit_json({"already_initialised": True, "home": str(home)})
            else:
                typer.echo(msg)
            return
    if as_json:
        emit_json({"user": made["user"], "role": made["role"], "token": made["token"],
                   "password": password})
        return
    typer.echo(f"Initialised faceledger in {home}")
    typer.echo(f"Web sign-in: user {made['user']}, password {password} (also kept in "
               f"{made['kept']}, mode 0600, and shown by `faceledger serve` until you change it)")
    typer.echo(f"First admin: {made['user']}. Its API token is shown once; keep it safe "
               "(export FACELEDGER_TOKEN=...):")
    typer.echo(made["token"])


def admin_token(
    admin: str | None = typer.Option(None, "--admin", help="Admin to issue it for "
                                     "(default: the first active admin)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Issue a new admin API token locally, for whoever holds the data home (no token needed;
    ledgered with your OS user name; the admin's other tokens keep working)."""
    with open_app() as app:
        issued = account_services.local_admin_token(app, local_actor(), admin)
    if as_json:
        emit_json(issued)
        return
    typer.echo(f"New API token for admin {issued['user']} (shown once; export "
               "FACELEDGER_TOKEN=...):")
    typer.echo(issued["token"])


def local_actor() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return "local"


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
        actor = login(app, "users.manage")  # coarse gate: before asking for a password
        made = account_services.add_user(app, actor, name, role,
                                         _read_password() if password else None, unit)
    if as_json:
        emit_json(made)
        return
    typer.echo(f"Added {made['role']} {made['user']}. API token (shown once):")
    typer.echo(made["token"])


def _read_password() -> str:
    if sys.stdin.isatty():
        pw = getpass.getpass("Password: ")
        if pw != getpass.getpass("Again: "):
            raise typer.BadParameter("passwords differ")
    else:
        pw = sys.stdin.readline().rstrip("\n")
    try:
        return check_password(pw)
    except ValidationError as exc:
        raise typer.BadParameter(exc.message) from None


@users.command("password")
def users_password(
    name: str,
    generate: bool = typer.Option(False, "--generate", help="Generate one and print it once."),
    local: bool = typer.Option(False, "--local", help="Recovery for whoever holds the data "
                               "home: no FACELEDGER_TOKEN needed (ledgered with your OS user)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Set or reset a user's web sign-in password (asked twice on the terminal, read from
    stdin, or --generate). Ledgered, never the password; a reset ends the user's web sessions."""
    with open_app() as app:
        if local:
            app.db.require_initialised()
            done = account_services.local_set_password(
                app, local_actor(), name, None if generate else _read_password())
        else:
            principal = login(app, "users.manage")  # coarse gate: before asking
            done = account_services.set_password(
                app, principal, name, None if generate else _read_password(), how="cli")
    if as_json:
        emit_json({"user": name, "password": done["password"]})
        return
    if generate:
        typer.echo(f"Web password for {name} set. It is shown once:")
        typer.echo(done["password"])
    else:
        typer.echo(f"Web password for {name} set.")


@users.command("list")
def users_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List users and roles."""
    with open_app() as app:
        rows: list[dict[str, Any]] = [
            {k: u[k] for k in ("name", "role", "disabled", "created_at")}
            for u in account_services.user_list(app, login(app))]
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
        account_services.disable_user(app, login(app), name)
    typer.echo(f"Disabled {name}; their tokens are revoked.")


@users.command("unlock")
def users_unlock(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Lift a sign-in lock-out (or back-off) after failed sign-ins; ledgered."""
    with open_app() as app:
        done = account_services.unlock_user(app, login(app), name)
    if as_json:
        emit_json(done)
        return
    typer.echo(f"Unlocked {name}; they can sign in again." if done["unlocked"]
               else f"{name} was not locked out; nothing to do.")


@users.command("token")
def users_token(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Revoke a user's tokens and print a new one."""
    with open_app() as app:
        rotated = account_services.rotate_token(app, login(app), name)
    if as_json:
        emit_json(rotated)
        return
    typer.echo(f"New API token for {name} (shown once; older tokens are revoked):")
    typer.echo(rotated["token"])


def serve(
    host: str | None = typer.Option(None, help="Default: FACELEDGER_HOST (127.0.0.1)."),
    port: int | None = typer.Option(None, help="Default: FACELEDGER_PORT (8000)."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="API processes (each loads "
                                "the models); more than 1 needs PostgreSQL (FACELEDGER_DATABASE_URL)."),
) -> None:
    """Run the REST API and web UI (models load once at start-up)."""
    import uvicorn

    from faceledger.server import create_app
    from faceledger.settings import get_settings

    settings = get_settings()
    settings = settings.model_copy(update={"host": host or settings.host,
                                           "port": port or settings.port})
    with open_app() as app:
        app.db.require_initialised()
        if workers > 1 and not app.db.is_postgres:
            raise ValidationError(
                f"serve --workers {workers} needs PostgreSQL: set FACELEDGER_DATABASE_URL="
                "postgresql+psycopg://USER@HOST/DB (see README); on the embedded SQLite "
                "database run one API process (leave out --workers)", field="workers")
    url = f"http://{settings.host}:{settings.port}/"
    if workers > 1:
        _serve_workers(settings.host, settings.port, workers, url)
        return
    typer.echo(f"Starting faceledger on {url} (loading the face models)...")
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=settings.host,
                                           port=settings.port, log_level="info",
                                           proxy_headers=False))
    threading.Thread(target=_banner_when_started, args=(server, url), daemon=True).start()
    server.run()


def _serve_workers(host: str, port: int, workers: int, url: str) -> None:
    """``workers`` uvicorn processes on one socket, each building the app from the
    environment (FACELEDGER_HOST and FACELEDGER_PORT set to what this command was given)."""
    import os

    import uvicorn

    os.environ.update(FACELEDGER_HOST=host, FACELEDGER_PORT=str(port))
    typer.echo(f"Starting faceledger on {url} with {workers} API processes "
               "(each loads the face models)...")
    typer.echo("\n".join(banner_lines(url, sys.stdout.isatty())))
    uvicorn.run("faceledger.server:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="info", proxy_headers=False)


def _banner_when_started(server: Any, url: str) -> None:
    """Print the sign-in banner as the last lines, after uvicorn's start-up output."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.1)
    time.sleep(0.2)  # let uvicorn's own "running on" line go first
    typer.echo("\n".join(banner_lines(url, sys.stdout.isatty())), nl=True)
    sys.stdout.flush()


def banner_lines(url: str, show_password: bool) -> list[str]:
    """Where to sign in, and the first admin's password while it is still the initial one
    (on a terminal only; a log gets the file's path instead)."""
    from faceledger.settings import get_settings

    home = get_settings().home
    lines = [f"faceledger is ready: {url}  (API docs: {url}docs)"]
    found = load_initial(home)
    if found is not None and not _still_valid(*found):
        forget_initial(home)
        found = None
    if found is None:
        lines.append("Sign in with your web password. Lost it? Whoever holds the data home: "
                     "`faceledger users password NAME --local`.")
    else:
        user, password = found
        shown = password if show_password else f"in {(home / INITIAL_FILE).resolve()}"
        lines.append(f"First sign-in: user {user}, password {shown}")
        lines.append("(shown until you change it: Admin page or `faceledger users password "
                     f"{user}`)")
    lines.append("API token for the CLI: `export FACELEDGER_TOKEN=$(faceledger admin-token | "
                 "tail -1)`")
    rule = "-" * min(100, max(len(line) for line in lines))
    return [rule, *lines, rule]


def _still_valid(user: str, password: str) -> bool:
    with open_app() as app:
        return account_services.initial_password_valid(app, user, password)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("admin-token")(admin_token)
    app.add_typer(users, name="users")
