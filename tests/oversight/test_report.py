"""The report's figures, checked exactly against a known set of searches, outcomes and ledger
entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from faceledger.errors import NotFoundError, ValidationError
from faceledger.oversight.report import OversightReport
from tests.oversight.conftest import Builder, at

MARCH = ("2025-03-01 00:00", "2025-04-01 00:00")


def scenario(b: Builder) -> dict[str, int]:
    """Eight searches in March 2025 (all in working hours, all different people: no flags), one
    before and one exactly at the end of the period."""
    b.user("ivy", unit=None)
    b.user("olga", unit="Unit B")
    b.user("pete", unit="Unit A")
    b.user("quinn", unit="Unit A")
    ids = {
        "before": b.search("ivy", "2025-02-20 10:00", "C-0", outcome="no_match"),
        "s1": b.search("ivy", "2025-03-03 09:00", "C-1", outcome="charge"),
        "s2": b.search("ivy", "2025-03-03 10:00", "C-1", outcome="no_match"),
        "s3": b.search("ivy", "2025-03-04 11:00", "C-2", purpose="missing person",
                       offence="other", outcome="identification_confirmed"),
        "s4": b.search("olga", "2025-03-04 12:00", "C-3", offence="assault", outcome="arrest"),
        "s5": b.search("olga", "2025-03-05 13:00", "C-3", purpose="victim identification",
                       offence="assault", results=7),
        "s6": b.search("pete", "2025-03-05 14:00", "C-4", purpose="intelligence",
                       offence="terrorism", status="pending",
                       rules=["intelligence-needs-approval"]),
        "s7": b.search("pete", "2025-03-06 15:00", "C-4", purpose="intelligence",
                       offence="terrorism", status="refused",
                       rules=["intelligence-needs-approval"]),
        "s8": b.search("quinn", "2025-03-07 08:00", "C-5", offence="fraud",
                       outcome="lead_pursued"),
        "after": b.search("ivy", "2025-04-01 00:00", "C-9", outcome="charge"),
    }
    # a later outcome replaces the earlier one: the latest row counts
    b.outcome(ids["s8"], "no_further_action", at("2025-03-20 10:00"))
    b.ledger("search.approval_refused", {"search_id": ids["s7"], "by": "root",
                                         "reason": "no authority given",
                                         "requested_by": "pete", "rules": ["x"]}, actor="root")
    b.ledger("search.refused", {"user": "ivy", "case": "C-1", "purpose": "shopping",
                                "offence": "robbery", "code": "policy_refused",
                                "reason": "purpose 'shopping' is not allowed",
                                "rule": "purposes"}, actor="ivy", case="C-1")
    b.ledger("search.refused", {"user": "pete", "case": "C-4", "purpose": "intelligence",
                                "offence": "terrorism", "code": "policy_refused",
                                "reason": "needs an authorisation reference",
                                "rule": "authorisation.required"}, actor="pete", case="C-4")
    b.ledger("signin.failed", {"user": "ivy"})
    return ids


@pytest.fixture
def march(build: Builder) -> tuple[Builder, dict[str, int], OversightReport]:
    ids = scenario(build)
    return build, ids, build.report(*MARCH)


def test_usage_since_when_and_by_whom(march: tuple[Builder, dict[str, int], OversightReport]
                                      ) -> None:
    _, ids, rep = march
    assert rep.total == 8
    assert [r.id for r in rep.searches] == [ids[f"s{i}"] for i in range(1, 9)]
    assert rep.first_search_ever == at("2025-02-20 10:00")
    assert rep.first_search_ever_by == "ivy"
    assert rep.first_search_in_period == at("2025-03-03 09:00")
    assert rep.last_search_in_period == at("2025-03-07 08:00")
    users = {u.name: u for u in rep.users}
    assert set(users) == {"ivy", "olga", "pete", "quinn"}
    ivy = users["ivy"]
    assert (ivy.role, ivy.unit, ivy.searches, ivy.cases, ivy.searches_per_case) == (
        "investigator", None, 3, 2, 1.5)
    assert (ivy.first_search, ivy.last_search) == (at("2025-03-03 09:00"), at("2025-03-04 11:00"))
    assert (users["olga"].unit, users["olga"].searches, users["olga"].cases) == ("Unit B", 2, 1)
    assert users["olga"].searches_per_case == 2.0
    assert (users["pete"].searches, users["quinn"].searches) == (2, 1)


def test_counts_per_day_purpose_offence_case(
        march: tuple[Builder, dict[str, int], OversightReport]) -> None:
    rep = march[2]
    assert rep.per_day == {"2025-03-03": 2, "2025-03-04": 2, "2025-03-05": 2, "2025-03-06": 1,
                           "2025-03-07": 1}
    assert rep.per_purpose == {"criminal investigation": 4, "intelligence": 2,
                               "missing person": 1, "victim identification": 1}
    assert rep.per_offence == {"assault": 2, "robbery": 2, "terrorism": 2, "fraud": 1,
                               "other": 1}
    assert rep.per_case == {"C-1": 2, "C-3": 2, "C-4": 2, "C-2": 1, "C-5": 1}
    assert rep.per_status == {"done": 6, "pending": 1, "refused": 1}
    assert sum(rep.per_hour.values()) == 8
    assert rep.per_hour[9] == 1 and rep.per_hour[8] == 1 and rep.per_hour[0] == 0


def test_outcome_rates_charged_and_no_outcome(
        march: tuple[Builder, dict[str, int], OversightReport]) -> None:
    _, ids, rep = march
    assert rep.completed == 6
    assert rep.outcomes == {"no_match": 1, "lead_pursued": 0, "identification_confirmed": 1,
                            "arrest": 1, "charge": 1, "no_further_action": 1, "none": 1}
    assert rep.outcome_rates["charge"] == round(1 / 6, 4)
    assert rep.outcome_rates["lead_pursued"] == 0.0  # replaced by the later no_further_action
    assert rep.no_outcome_share == round(1 / 6, 4)
    assert [(c["search_id"], c["case"], c["result"]) for c in rep.charged] == [
        (ids["s1"], "C-1", "charge"), (ids["s4"], "C-3", "arrest")]
    assert [(n["search_id"], n["case"], n["result_count"]) for n in rep.no_outcome] == [
        (ids["s5"], "C-3", 7)]
    role = rep.role_played
    assert (role["positive"], role["negative"], role["lead_pursued"], role["no_outcome"]) == (
        3, 2, 0, 1)
    assert role["positive_share"] == 0.5
    assert role["negative_share"] == round(2 / 6, 4)
    assert role["positive_share_of_recorded"] == 0.6


def test_approvals_and_refusals_within_the_period(
        march: tuple[Builder, dict[str, int], OversightReport]) -> None:
    b, ids, rep = march
    assert [a["search_id"] for a in rep.approvals["pending"]] == [ids["s6"]]
    refused = rep.approvals["refused"]
    assert [(a["search_id"], a["refused_by"], a["reason"]) for a in refused] == [
        (ids["s7"], "root", "no authority given")]
    # ledger entries written now are outside March 2025
    assert rep.refused_attempts == [] and rep.signin_failures == []
    assert rep.approvals["decisions"] == []
    assert rep.flags == []
    wide = b.report("2025-03-01 00:00", datetime.now(UTC) + timedelta(days=1))
    assert wide.total == 9  # the search at exactly 2025-04-01 00:00 now falls inside
    got = [(x["user"], x["case"], x["rule"], x["reason"]) for x in wide.refused_attempts]
    assert got == [("ivy", "C-1", "purposes", "purpose 'shopping' is not allowed"),
                   ("pete", "C-4", "authorisation.required", "needs an authorisation reference")]
    assert wide.refused_by_rule == {"authorisation.required": 1, "purposes": 1}
    assert [x["user"] for x in wide.signin_failures] == ["ivy"]
    assert [(d["kind"], d["search_id"]) for d in wide.approvals["decisions"]] == [
        ("search.approval_refused", ids["s7"])]


def test_one_user(march: tuple[Builder, dict[str, int], OversightReport]) -> None:
    b, ids, _ = march
    rep = b.report(*MARCH, user="ivy")
    assert rep.total == 3 and [u.name for u in rep.users] == ["ivy"]
    assert rep.per_case == {"C-1": 2, "C-2": 1}
    assert rep.first_search_ever == at("2025-02-20 10:00")
    assert [c["search_id"] for c in rep.charged] == [ids["s1"]]
    assert rep.answers()[0].startswith("ivy first used the system on 2025-02-20 10:00")
    assert rep.answers()[1].startswith("3 searches were made by 1 user: ivy")
    assert rep.no_outcome == [] and rep.approvals["pending"] == []
    wide = b.report("2025-03-01 00:00", datetime.now(UTC) + timedelta(days=1), user="pete")
    assert [x["rule"] for x in wide.refused_attempts] == ["authorisation.required"]
    assert wide.signin_failures == []
    with pytest.raises(NotFoundError):
        b.report(*MARCH, user="nobody")
    assert b.report(*MARCH, user="root").answers()[0] == (
        "No search by root has ever been recorded.")


def test_answers_and_json(march: tuple[Builder, dict[str, int], OversightReport]) -> None:
    rep = march[2]
    since, whom, role, charged, flagged = rep.answers()
    assert "first used on 2025-02-20 10:00" in since and "by ivy" in since
    assert "first search was on 2025-03-03 09:00 and the last on 2025-03-07 08:00" in since
    assert whom.startswith("8 searches were made by 4 users: ivy (investigator): 3 searches "
                           "on 2 cases")
    assert "olga (investigator, Unit B): 2 searches on 1 case" in whom
    assert role.startswith("Of 6 completed searches, 3 (50%) led to an identification, "
                           "arrest or charge; 2 (33%)")
    assert charged.startswith("Yes: 1 search led to a charge: search")
    assert "1 search led to an arrest" in charged
    assert flagged.startswith("No misuse flags were raised.")
    data = json.loads(rep.to_json())
    assert data["per_case"] == rep.per_case
    assert data["usage"]["first_search_ever"] == "2025-02-20T10:00:00+00:00"
    assert data["outcomes"]["counts"]["none"] == 1
    assert len(data["searches"]) == 8 and data["answers"] == rep.answers()


def test_empty_period_and_bad_period(build: Builder) -> None:
    rep = build.report(*MARCH)
    assert rep.total == 0 and rep.users == [] and rep.per_day == {}
    assert rep.first_search_ever is None and rep.completed == 0
    assert rep.no_outcome_share == 0.0
    assert "has not been used" in rep.answers()[0]
    assert "Nobody" in rep.answers()[3]
    with pytest.raises(ValidationError):
        build.report("2025-03-02 00:00", "2025-03-01 00:00")


def test_days_follow_the_policy_timezone(build: Builder) -> None:
    from faceledger.governance.policy import Oversight

    build.search("ivy", "2025-07-07 23:30", "C-1")  # 00:30 on 8 July in London (BST)
    policy = build.world.app.policy()
    london = policy.model_copy(update={"oversight": Oversight(timezone="Europe/London")})
    assert build.report("2025-07-01 00:00", "2025-08-01 00:00").per_day == {"2025-07-07": 1}
    rep = build.report("2025-07-01 00:00", "2025-08-01 00:00", policy=london)
    assert rep.per_day == {"2025-07-08": 1} and rep.per_hour[0] == 1
