"""Each misuse flag fires on the pattern it looks for, with its evidence, and stays silent just
below its threshold."""

from __future__ import annotations

from faceledger.governance.policy import Oversight
from faceledger.oversight.flags import Flag, FlagConfig, HoursThresholds, SameFaceThresholds
from faceledger.oversight.report import OversightReport
from tests.oversight.conftest import Builder, at

PERIOD = ("2025-03-01 00:00", "2025-04-01 00:00")
# Mondays to Fridays in working hours: 2025-03-03 is a Monday
MON, TUE, WED, THU, FRI, SAT = (f"2025-03-{d:02d}" for d in (3, 4, 5, 6, 7, 8))


def named(rep: OversightReport, flag: str, user: str | None = None) -> list[Flag]:
    return [f for f in rep.flags if f.flag == flag and (user is None or f.user == user)]


# (a) the same face, one user, several cases / repeatedly with no outcome

def test_same_face_across_cases_fires_with_evidence(build: Builder) -> None:
    person = build.faces.person()
    a = build.search("ivy", f"{MON} 09:00", "C-1", emb=build.faces.photo(person),
                     outcome="no_match")
    b = build.search("ivy", f"{WED} 10:00", "C-2", emb=build.faces.photo(person),
                     outcome="no_match")
    build.search("ivy", f"{WED} 11:00", "C-2")  # someone else
    rep = build.report(*PERIOD)
    [f] = named(rep, "same_face_across_cases")
    assert f.user == "ivy" and f.severity == "medium"
    assert f.search_ids() == [a, b]
    assert [e["case"] for e in f.evidence] == ["C-1", "C-2"]
    assert f.evidence[0]["similarity"] == 1.0 and f.evidence[1]["similarity"] > 0.95
    assert f.evidence[0]["started_at"] == "2025-03-03T09:00:00+00:00"
    assert "2 times across 2 cases (C-1, C-2)" in f.summary
    assert not named(rep, "same_face_repeated_no_outcome")


def test_same_face_does_not_fire_for_one_case_other_people_or_other_users(
        build: Builder) -> None:
    person = build.faces.person()
    build.user("olga")
    build.search("ivy", f"{MON} 09:00", "C-1", emb=build.faces.photo(person), outcome="no_match")
    build.search("ivy", f"{MON} 10:00", "C-1", emb=build.faces.photo(person), outcome="no_match")
    build.search("olga", f"{MON} 11:00", "C-2", emb=build.faces.photo(person), outcome="arrest")
    build.search("ivy", f"{TUE} 10:00", "C-3", outcome="no_match")  # a different person
    rep = build.report(*PERIOD)
    assert rep.flags == []


def test_same_person_threshold_is_a_cosine_boundary(build: Builder) -> None:
    person = build.faces.person()
    build.search("ivy", f"{MON} 09:00", "C-1", emb=person, outcome="no_match")
    build.search("ivy", f"{MON} 10:00", "C-2", emb=build.faces.at_cosine(person, 0.935),
                 outcome="no_match")
    other = build.faces.person()
    build.search("ivy", f"{MON} 11:00", "C-3", emb=other, outcome="no_match")
    build.search("ivy", f"{MON} 12:00", "C-4", emb=build.faces.at_cosine(other, 0.925),
                 outcome="no_match")
    [f] = named(build.report(*PERIOD), "same_face_across_cases")
    assert [e["case"] for e in f.evidence] == ["C-1", "C-2"]
    assert f.evidence[1]["similarity"] == 0.935
    # a stricter threshold separates them; a looser one joins the second pair too
    strict = FlagConfig(same_face=SameFaceThresholds(same_person_cosine=0.94))
    assert named(build.report(*PERIOD, config=strict), "same_face_across_cases") == []
    loose = FlagConfig(same_face=SameFaceThresholds(same_person_cosine=0.92))
    assert len(named(build.report(*PERIOD, config=loose), "same_face_across_cases")) == 2


def test_same_photo_counts_even_when_embeddings_were_purged(build: Builder) -> None:
    build.search("ivy", f"{MON} 09:00", "C-1", sha="ab" * 32, status="refused")
    build.search("ivy", f"{MON} 10:00", "C-2", sha="ab" * 32, status="refused")
    [f] = named(build.report(*PERIOD), "same_face_across_cases")
    assert [e["similarity"] for e in f.evidence] == [1.0, 1.0]


def test_repeated_no_outcome_fires_at_three_not_two(build: Builder) -> None:
    person = build.faces.person()
    ids = [build.search("ivy", f"{day} 10:00", "C-1", emb=build.faces.photo(person))
           for day in (MON, TUE, WED)]
    rep = build.report(*PERIOD)
    [f] = named(rep, "same_face_repeated_no_outcome")
    assert f.search_ids() == ids and f.severity == "medium"
    assert "3 times with no recorded outcome" in f.summary
    assert named(rep, "same_face_across_cases") == []
    build.outcome(ids[1], "no_match", at("2025-03-10 09:00"))
    assert named(build.report(*PERIOD), "same_face_repeated_no_outcome") == []


# (b) volume out of line with the cases worked

def _peers(build: Builder) -> None:
    for name in ("olga", "pete", "quinn"):
        build.user(name)
        build.search(name, f"{MON} 09:00", f"{name}-1", outcome="no_match")
        build.search(name, f"{MON} 10:00", f"{name}-2", outcome="no_match")


def _ivy(build: Builder, per_case: list[int]) -> None:
    for c, n in enumerate(per_case):
        for i in range(n):
            build.search("ivy", f"{TUE} {8 + i:02d}:00", f"V-{c}", outcome="no_match")


def test_volume_fires_at_three_times_the_peer_median(build: Builder) -> None:
    _peers(build)
    _ivy(build, [3, 3])  # 6 searches on 2 cases: 3.0 per case, peers 1.0
    rep = build.report(*PERIOD)
    [f] = named(rep, "volume_out_of_line")
    assert f.user == "ivy" and f.metrics["ratio"] == 3.0 and f.metrics["peer_median"] == 1.0
    assert f.metrics["searches"] == 6 and f.metrics["cases"] == 2
    assert {e["case"] for e in f.evidence} == {"V-0", "V-1"}
    assert len(f.search_ids()) == 6
    assert named(rep, "many_searches_one_case") == []


def test_volume_does_not_fire_below_ratio_or_minimum(build: Builder) -> None:
    _peers(build)
    _ivy(build, [3, 2])  # 2.5 per case
    assert named(build.report(*PERIOD), "volume_out_of_line") == []


def test_volume_needs_enough_searches_and_peers(build: Builder) -> None:
    _ivy(build, [4])  # 4 per case, but only 4 searches
    _peers(build)
    assert named(build.report(*PERIOD), "volume_out_of_line") == []


def test_volume_needs_peers(build: Builder) -> None:
    build.user("olga")
    build.search("olga", f"{MON} 09:00", "O-1", outcome="no_match")
    _ivy(build, [6])  # 6 per case, one peer only
    assert named(build.report(*PERIOD), "volume_out_of_line") == []


def test_many_searches_on_one_case_boundary(build: Builder) -> None:
    for i in range(9):
        build.search("ivy", f"{MON} {8 + i:02d}:00", "C-9", outcome="no_match")
    assert named(build.report(*PERIOD), "many_searches_one_case") == []
    last = build.search("ivy", f"{TUE} 09:00", "C-9", outcome="no_match")
    [f] = named(build.report(*PERIOD), "many_searches_one_case")
    assert f.evidence[0]["case"] == "C-9" and f.evidence[0]["searches"] == 10
    assert f.search_ids()[-1] == last and "10 searches on case C-9" in f.summary


# (c) outside working hours

def test_outside_working_hours_boundaries(build: Builder) -> None:
    inside = [build.search("ivy", f"{MON} 07:00", "C-1", outcome="no_match"),
              build.search("ivy", f"{MON} 18:59", "C-2", outcome="no_match"),
              build.search("ivy", f"{FRI} 12:00", "C-3", outcome="no_match")]
    outside = [build.search("ivy", f"{TUE} 06:59", "C-4", outcome="no_match"),
               build.search("ivy", f"{TUE} 19:00", "C-5", outcome="no_match"),
               build.search("ivy", f"{SAT} 12:00", "C-6", outcome="no_match")]
    [f] = named(build.report(*PERIOD), "outside_working_hours")
    assert f.search_ids() == outside and not set(inside) & set(f.search_ids())
    assert [e["weekday"] for e in f.evidence] == ["Tuesday", "Tuesday", "Saturday"]
    assert f.severity == "medium" and "3 of 6 searches" in f.summary
    cfg = FlagConfig(hours=HoursThresholds(min_searches=4))
    assert named(build.report(*PERIOD, config=cfg), "outside_working_hours") == []


def test_outside_working_hours_uses_the_policy_timezone(build: Builder) -> None:
    # Monday 7 July 2025; London is UTC+1
    a = build.search("ivy", "2025-07-07 06:30", "C-1", outcome="no_match")  # 07:30 local
    b = build.search("ivy", "2025-07-07 18:30", "C-2", outcome="no_match")  # 19:30 local
    period = ("2025-07-01 00:00", "2025-08-01 00:00")
    utc = named(build.report(*period), "outside_working_hours")
    assert [f.search_ids() for f in utc] == [[a]]
    policy = build.world.app.policy()
    london = policy.model_copy(update={"oversight": Oversight(timezone="Europe/London")})
    [f] = named(build.report(*period, policy=london), "outside_working_hours")
    assert f.search_ids() == [b] and f.evidence[0]["local_time"].startswith(
        "2025-07-07T19:30:00+01:00")
    assert f.severity == "low"


# (d) selfie-like probes of the same person

def test_selfies_of_one_person_fire(build: Builder) -> None:
    person = build.faces.person()
    ids = [build.search("ivy", f"{MON} {h:02d}:00", "C-1", emb=build.faces.photo(person),
                        ratio=r, outcome="no_match") for h, r in ((9, 0.2), (10, 0.31))]
    rep = build.report(*PERIOD)
    [f] = named(rep, "selfie_probes_same_person")
    assert f.search_ids() == ids
    assert [e["probe_face_ratio"] for e in f.evidence] == [0.2, 0.31]
    assert named(rep, "same_face_across_cases") == []


def test_selfies_do_not_fire_at_the_threshold_other_people_or_unknown_ratio(
        build: Builder) -> None:
    person = build.faces.person()
    build.search("ivy", f"{MON} 09:00", "C-1", emb=build.faces.photo(person), ratio=0.12,
                 outcome="no_match")  # not above 0.12
    build.search("ivy", f"{MON} 10:00", "C-1", emb=build.faces.photo(person), ratio=0.4,
                 outcome="no_match")
    build.search("ivy", f"{MON} 11:00", "C-2", ratio=0.5, outcome="no_match")  # other people
    build.search("ivy", f"{MON} 12:00", "C-3", ratio=0.5, outcome="no_match")
    build.search("ivy", f"{MON} 13:00", "C-1", emb=build.faces.photo(person), ratio=None,
                 outcome="no_match")
    assert named(build.report(*PERIOD), "selfie_probes_same_person") == []


def test_user_report_keeps_only_that_users_flags(build: Builder) -> None:
    build.user("olga")
    build.search("olga", f"{SAT} 10:00", "C-1", outcome="no_match")
    build.search("ivy", f"{SAT} 10:00", "C-2", outcome="no_match")
    assert {f.user for f in build.report(*PERIOD).flags} == {"olga", "ivy"}
    assert {f.user for f in build.report(*PERIOD, user="ivy").flags} == {"ivy"}
