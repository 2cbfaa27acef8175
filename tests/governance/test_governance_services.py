"""The governance services (ledger, oversight, policy, retention, calibration, subject rights)
called directly with every role: each checks its own permission first, so a refused role gets
PermissionDeniedError and an allowed one gets past the check (to the real work, or to the
input rule it breaks). Also their input rules and plain-data results. Real SQLite, real models."""

from __future__ import annotations

import pytest

from faceledger.accounts.users import Principal
from faceledger.errors import NotFoundError, ValidationError
from faceledger.governance import calibration, ledger_service
from faceledger.governance.ledger_service import Filters
from faceledger.oversight import policy_service, retention, subjects
from faceledger.oversight import service as oversight
from faceledger.roles import Role
from tests.conftest import World
from tests.photos import noise_image
from tests.service_gate import Call, assert_gated, everyone

NOISE = noise_image()
CALLS: list[tuple[str, str, Call]] = [
    ("ledger.read_entries", "ledger.read",
     lambda a, p: ledger_service.read_entries(a, p, Filters())),
    ("ledger.verify_chain", "ledger.verify", ledger_service.verify_chain),
    ("ledger.ledger_view", "ledger.read", lambda a, p: ledger_service.ledger_view(a, p, Filters())),
    ("oversight.report", "reports.read",
     lambda a, p: oversight.oversight_report(a, p, None, None)),
    ("oversight.dashboard", "reports.read", lambda a, p: oversight.dashboard(a, p, "", "", "")),
    ("policy.show", "signed_in", policy_service.show_policy),
    ("policy.view", "signed_in", policy_service.policy_view),
    ("retention.run", "retention.run", retention.run_retention),
    ("calibration.set", "calibration.manage", lambda a, p: calibration.set_calibration(
        a, p, a.model_id, 0.5, 1e-3, None, "role test", {})),
    ("subjects.photo_faces", "subjects.manage", lambda a, p: subjects.photo_faces(a, p, NOISE)),
    ("subjects.optout", "subjects.manage", lambda a, p: subjects.optout(a, p, NOISE, "R-1")),
    ("subjects.erase_preview", "subjects.manage",
     lambda a, p: subjects.erase_preview(a, p, NOISE)),
    ("subjects.erase", "subjects.manage", lambda a, p: subjects.erase(a, p, [], "R-1")),
    ("subjects.access", "subjects.manage", lambda a, p: subjects.access(a, p, NOISE)),
]


@pytest.fixture
def principals(world: World) -> dict[Role, Principal]:
    return everyone(world)


@pytest.mark.parametrize(("name", "permission", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_every_role_against_every_governance_service(
        world: World, principals: dict[Role, Principal], name: str, permission: str,
        call: Call) -> None:
    assert_gated(world.app, principals, name, permission, call)


@pytest.mark.parametrize("call", [
    lambda a, p: subjects.optout(a, p, NOISE, "R-1", 0),
    lambda a, p: subjects.access(a, p, NOISE, 0),
    lambda a, p: subjects.erase_preview(a, p, NOISE, 0),
])
def test_face_number_rule_is_the_service_s(world: World, call: Call) -> None:
    with pytest.raises(ValidationError, match="face numbers start at 1") as exc:
        call(world.app, world.admin)  # refused before the photo is even decoded
    assert exc.value.code == "invalid_request" and exc.value.details["field"] == "face"


def test_reference_rule_is_the_service_s(world: World) -> None:
    long = "R" * 201
    for call in (lambda: subjects.optout(world.app, world.admin, NOISE, long),
                 lambda: subjects.erase(world.app, world.admin, [1], long),
                 lambda: subjects.erase_preview(world.app, world.admin, NOISE,
                                                reference=long)):
        with pytest.raises(ValidationError, match="200 characters at most") as exc:
            call()
        assert exc.value.details["field"] == "reference"
    assert subjects.check_reference("  REQ-1  ") == "REQ-1"
    assert subjects.check_reference("R" * 200) == "R" * 200


def test_oversight_report_period_and_user_rules(world: World) -> None:
    with pytest.raises(ValidationError, match="before") as exc:
        oversight.oversight_report(world.app, world.auditor, "2025-03-02", "2025-03-01")
    assert exc.value.details["field"] == "to"
    with pytest.raises(NotFoundError, match="no user"):
        oversight.oversight_report(world.app, world.auditor, None, None, "nobody")
    with pytest.raises(ValidationError, match="too long"):
        oversight.oversight_report(world.app, world.auditor, None, None, "u" * 121)
    done = oversight.oversight_report(world.app, world.auditor, "2025-03-01", "2025-03-31")
    assert (done.period.first.isoformat(), done.period.last.isoformat()) == (
        "2025-03-01", "2025-03-31")
    assert done.report.total == 0 and done.period.label is None


def test_dashboard_returns_the_refusal_with_the_users(world: World) -> None:
    board = oversight.dashboard(world.app, world.auditor, "March", "", "")
    assert board.result is None and board.error is not None
    assert board.error.status == 422 and "must be a date" in board.error.message
    assert {"root", "ivy", "audrey"} <= set(board.users)
    good = oversight.dashboard(world.app, world.auditor, "", "", "ivy")
    assert good.error is None and good.result is not None
    assert good.result.report.user == "ivy" and good.result.period.label is not None


def test_policy_view_says_when_the_file_changed(world: World) -> None:
    view = policy_service.policy_view(world.app, world.investigator)
    assert view.ledgered is not None and view.ledgered["seq"] is not None
    assert not view.changed and view.policy == policy_service.show_policy(
        world.app, world.auditor)
    assert view.working_days.startswith("Mon")
    text = str(view.ledgered["text"])
    (world.app.settings.home / "policy.toml").write_text(text + "\n# edited\n", "utf-8")
    assert policy_service.policy_view(world.app, world.admin).changed


def test_calibration_services(world: World) -> None:
    model = world.app.model_id
    before = calibration.current_calibration(world.app, model)
    made = calibration.set_calibration(world.app, world.admin, model, 0.61, 1e-4, 1000,
                                       "test set", {"k": 1})
    now = calibration.current_calibration(world.app, model)
    assert now is not None and now.id == made.id != (before.id if before else None)
    assert (now.threshold, now.target_fmr, now.gallery_size) == (0.61, 1e-4, 1000)
    with pytest.raises(ValidationError, match="target FMR"):
        calibration.set_calibration(world.app, world.admin, model, 0.6, 0.0, None, "x", {})
    with pytest.raises(ValidationError, match="gallery size"):
        calibration.set_calibration(world.app, world.admin, model, 0.6, 1e-3, 0, "x", {})
    assert calibration.current_calibration(world.app, model) == now  # refusals wrote nothing
