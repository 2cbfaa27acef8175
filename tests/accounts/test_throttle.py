"""Sign-in throttling (issue 12, parts 3-6): per-account and per-address exponential back-off
(429 with a retry time), an admin-lifted lock-out (both ledgered), no timing difference between
a wrong name and a wrong password, aggregated failure entries, and the last active admin."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from faceledger.accounts import service as account_services
from faceledger.accounts import users as accounts
from faceledger.accounts import websessions
from faceledger.accounts.passwords import hash_password
from faceledger.errors import (
    AuthenticationError,
    ConflictError,
    PermissionDeniedError,
    TooManyAttemptsError,
)
from faceledger.governance import ledger
from tests.conftest import World

PW = "ivy-password-1"


def _entries(w: World, kind: str) -> list[dict[str, Any]]:
    with w.app.db.read() as s:
        return [ledger.entry_dict(e)["payload"] for e in ledger.read(s, kind=kind, limit=10_000)
                if e.kind == kind]


def _give_password(w: World, name: str = "ivy", pw: str = PW) -> None:
    with w.app.db.write() as s:
        accounts.set_password(s, name, hash_password(pw), actor="root", how="cli")


def _tune(w: World, **kw: Any) -> None:
    for k, v in kw.items():
        setattr(w.app.settings, k, v)


def _fail(w: World, name: str, address: str | None = "10.0.0.1") -> None:
    with pytest.raises(AuthenticationError):
        websessions.open_session(w.app, name, "wrong-password!", address)


def test_backoff_doubles_and_is_capped() -> None:
    from faceledger.accounts.throttle import backoff_seconds

    waits = [backoff_seconds(n, free=3, base=2.0, cap=60.0) for n in range(1, 10)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2:6] == [2.0, 4.0, 8.0, 16.0]
    assert waits[-1] == 60.0


def test_account_backoff_refuses_even_the_right_password(world: World) -> None:
    _give_password(world)
    _tune(world, signin_free_failures=3, signin_backoff_s=30.0)
    for _ in range(3):
        _fail(world, "ivy", address=None)  # no address: only the account counts
    with pytest.raises(TooManyAttemptsError) as refused:
        websessions.open_session(world.app, "ivy", PW, None)
    assert refused.value.status == 429
    assert 1 <= refused.value.details["retry_after"] <= 30
    # Another account is not held back.
    _give_password(world, "audrey", "audrey-password-1")
    sid, _ = websessions.open_session(world.app, "audrey", "audrey-password-1", None)
    assert sid


def test_parallel_guesses_cannot_slip_past_the_count(world: World) -> None:
    """Eight wrong passwords at once: each is counted before its password is checked, so only
    the free three reach argon2 and the rest wait (429)."""
    _give_password(world)
    _tune(world, signin_free_failures=3, signin_backoff_s=30.0)

    def attempt(_: int) -> str:
        try:
            websessions.open_session(world.app, "ivy", "wrong-password!", None)
        except (AuthenticationError, TooManyAttemptsError) as exc:
            return exc.code
        return "signed in"

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(attempt, range(8)))
    assert codes == ["too_many_attempts"] * 5 + ["unauthenticated"] * 3


def test_address_backoff_covers_every_name_and_bearer_tokens(world: World) -> None:
    _give_password(world)
    _tune(world, signin_address_free_failures=4, signin_backoff_s=30.0)
    for i in range(4):
        _fail(world, f"nobody-{i}", address="10.0.0.9")
    with pytest.raises(TooManyAttemptsError):
        websessions.open_session(world.app, "ivy", PW, "10.0.0.9")
    assert websessions.open_session(world.app, "ivy", PW, "10.0.0.10")[0]
    # Bad bearer tokens count per address too; a good token from there then waits as well.
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            account_services.authenticate_token(world.app, "flk_not-a-token", "10.0.0.7")
    with pytest.raises(TooManyAttemptsError) as refused:
        account_services.authenticate_token(world.app, world.investigator_token, "10.0.0.7")
    assert refused.value.details["retry_after"] >= 1
    assert account_services.authenticate_token(world.app, world.investigator_token,
                                               "10.0.0.8").name == "ivy"


def test_lockout_until_an_admin_lifts_it_both_ledgered(world: World) -> None:
    _give_password(world)
    _tune(world, signin_free_failures=100, signin_lockout_after=4)
    for _ in range(4):
        _fail(world, "ivy")
    with pytest.raises(TooManyAttemptsError) as refused:
        websessions.open_session(world.app, "ivy", PW, "10.0.0.2")
    assert "admin" in refused.value.message
    locked = _entries(world, "signin.locked")
    assert locked == [{"user": "ivy", "failures": 4}]
    with pytest.raises(PermissionDeniedError):
        account_services.unlock_user(world.app, world.investigator, "ivy")
    done = account_services.unlock_user(world.app, world.admin, "ivy")
    assert done == {"user": "ivy", "unlocked": True}
    assert _entries(world, "signin.unlocked") == [{"user": "ivy", "by": "root"}]
    assert websessions.open_session(world.app, "ivy", PW, "10.0.0.2")[0]


def test_failed_signins_are_aggregated_per_window(world: World) -> None:
    """Five failures: no entry each, but one per account and one per address, with a count."""
    _give_password(world)
    _tune(world, signin_free_failures=100, signin_address_free_failures=100,
          signin_window_s=6.0)
    t0 = time.monotonic()
    for _ in range(5):
        _fail(world, "ivy", address="10.0.0.3")
    assert time.monotonic() - t0 < 6.0, "five sign-ins took longer than the window"
    assert _entries(world, "signin.failed") == []  # not yet: the window is still open
    time.sleep(max(0.0, t0 + 6.2 - time.monotonic()))
    _give_password(world, "audrey", "audrey-password-1")
    websessions.open_session(world.app, "audrey", "audrey-password-1", "10.0.0.4")
    failed = _entries(world, "signin.failed")
    assert sorted((p.get("user", ""), p.get("address", ""), p["count"]) for p in failed) == [
        ("", "10.0.0.3", 5), ("ivy", "", 5)]


def test_unknown_name_takes_as_long_as_a_wrong_password(world: World) -> None:
    _give_password(world)
    _tune(world, signin_free_failures=1000, signin_address_free_failures=1000)
    known, unknown = [], []
    for i in range(7):
        for name, times in (("ivy", known), (f"ghost-{i}", unknown)):
            t0 = time.perf_counter()
            _fail(world, name, address=None)
            times.append(time.perf_counter() - t0)
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 <= ratio <= 2.0, (statistics.median(known), statistics.median(unknown))


def test_repeated_disable_is_a_no_op(world: World) -> None:
    account_services.disable_user(world.app, world.admin, "ivy")
    account_services.disable_user(world.app, world.admin, "ivy")
    assert _entries(world, "user.disabled") == [{"user": "ivy", "by": "root"}]


def test_the_last_active_admin_cannot_be_disabled(world: World) -> None:
    """Two admins disabling each other (the second with a principal taken before the first
    disable landed) must leave one active admin."""
    account_services.add_user(world.app, world.admin, "ada", "admin")
    with world.app.db.read() as s:
        ada = accounts.get_user(s, "ada")
    ada_principal = accounts.Principal(ada.id, ada.name, ada.role)
    account_services.disable_user(world.app, world.admin, "ada")
    with pytest.raises(ConflictError, match="last active admin"):
        account_services.disable_user(world.app, ada_principal, "root")
    users = {u["name"]: u["disabled"] for u in account_services.user_list(world.app, world.admin)}
    assert users["root"] is False
