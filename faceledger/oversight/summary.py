"""The report's direct answers, in sentences: since when the system was used, by whom, what role
it played, whether anyone was charged, and what was flagged."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from faceledger.oversight.report import OversightReport

MAX_USERS_NAMED = 10


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def when(dt: datetime, tz: str) -> str:
    return dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def period_text(rep: OversightReport) -> str:
    label = f"; {rep.period_label}" if rep.period_label else ""
    return (f"from {when(rep.start, rep.timezone)} to {when(rep.end, rep.timezone)} "
            f"({rep.timezone}, end excluded{label})")


def since(rep: OversightReport) -> str:
    if rep.first_search_ever is None:
        if rep.user:
            return f"No search by {rep.user} has ever been recorded."
        return "No search has ever been recorded: the system has not been used."
    first_at = when(rep.first_search_ever, rep.timezone)
    first = (f"{rep.user} first used the system on {first_at} (their first search ever)"
             if rep.user else
             f"The system was first used on {first_at} (the first search ever, by "
             f"{rep.first_search_ever_by})")
    if rep.first_search_in_period is None or rep.last_search_in_period is None:
        by = f" by {rep.user}" if rep.user else ""
        return f"{first}. No search was made{by} in the period {period_text(rep)}."
    return (f"{first}. In the period {period_text(rep)} the first search was on "
            f"{when(rep.first_search_in_period, rep.timezone)} and the last on "
            f"{when(rep.last_search_in_period, rep.timezone)}.")


def by_whom(rep: OversightReport) -> str:
    if not rep.users:
        return "Nobody searched in this period."
    parts = []
    for u in rep.users[:MAX_USERS_NAMED]:
        unit = f", {u.unit}" if u.unit else ""
        parts.append(f"{u.name} ({u.role}{unit}): {_plural(u.searches, 'search', 'searches')} "
                     f"on {_plural(u.cases, 'case')}")
    more = len(rep.users) - MAX_USERS_NAMED
    tail = f"; and {_plural(more, 'more user')}" if more > 0 else ""
    return (f"{_plural(rep.total, 'search was', 'searches were')} made by "
            f"{_plural(len(rep.users), 'user')}: " + "; ".join(parts) + tail + ".")


def role_played(rep: OversightReport) -> str:
    r = rep.role_played
    done = r["completed"]
    if not done:
        return "No search was completed in this period, so face search played no part in any outcome."
    none_share = rep.no_outcome_share
    return (f"Of {_plural(done, 'completed search', 'completed searches')}, "
            f"{r['positive']} ({_pct(r['positive_share'])}) led to an identification, arrest or "
            f"charge; {r['negative']} ({_pct(r['negative_share'])}) found no match or led to no "
            f"further action; {r['lead_pursued']} ({_pct(r['lead_pursued_share'])}) gave a lead "
            f"that was pursued; and {r['no_outcome']} ({_pct(none_share)}) have no recorded "
            "outcome.")


def charged(rep: OversightReport) -> str:
    by = Counter(c["result"] for c in rep.charged)
    if not rep.charged:
        return "Nobody is recorded as arrested or charged following a search in this period."
    lists = {k: ", ".join(f"search {c['search_id']} (case {c['case']})"
                          for c in rep.charged if c["result"] == k) for k in ("charge", "arrest")}
    parts = []
    if by["charge"]:
        parts.append(f"{_plural(by['charge'], 'search')} led to a charge: {lists['charge']}")
    if by["arrest"]:
        parts.append(f"{_plural(by['arrest'], 'search')} led to an arrest: {lists['arrest']}")
    head = "Yes: " if by["charge"] else "No search is recorded as leading to a charge, but "
    return head + "; ".join(parts) + "."


def flagged(rep: OversightReport) -> str:
    refused = (f"{_plural(len(rep.refused_attempts), 'search attempt was', 'search attempts were')}"
               f" refused by policy; {len(rep.approvals['pending'])} awaiting approval; "
               f"{len(rep.approvals['refused'])} refused approval.")
    if not rep.flags:
        return "No misuse flags were raised. " + refused
    kinds = Counter(f.flag.replace("_", " ") for f in rep.flags)
    return (f"{_plural(len(rep.flags), 'misuse flag was', 'misuse flags were')} raised for review ("
            + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + "). " + refused)


def answers(rep: OversightReport) -> list[str]:
    return [since(rep), by_whom(rep), role_played(rep), charged(rep), flagged(rep)]
