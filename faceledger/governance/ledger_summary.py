"""One readable line per ledger entry, for people: the CLI's ``ledger show`` and the web ledger.

The full payload stays one step away (``--json``, the API, the page's expandable details); a
summary never prints more than a line, nor any field that is long by nature (policy text)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MAX_CHARS = 160
_LONG_FIELDS = frozenset({"text", "candidates", "sources", "collections_searched", "rejected",
                          "new_sources", "manifest_unmatched"})


def _n(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _note(p: dict[str, Any]) -> str:
    return f" — “{p['note']}”" if p.get("note") else ""


def _search(p: dict[str, Any]) -> str:
    n = len(p.get("candidates") or [])
    return (f"{p.get('mode')} search {p.get('search_id')}, {p.get('purpose')} / "
            f"{p.get('offence')}, top-{p.get('top_k')} → {_n(n, 'candidate')}; "
            f"basis: {p.get('legal_basis')}")


def _requested(p: dict[str, Any]) -> str:
    rules = ", ".join(p.get("approval_rules") or [])
    return (f"{p.get('mode')} search {p.get('search_id')}, {p.get('purpose')} / "
            f"{p.get('offence')} → held for approval ({rules})")


def _decided(verb: str) -> Callable[[dict[str, Any]], str]:
    def text(p: dict[str, Any]) -> str:
        return (f"search {p.get('search_id')} of {p.get('requested_by')} {verb} by "
                f"{p.get('by')}: “{p.get('reason')}”")
    return text


def _ingest_batch(p: dict[str, Any]) -> str:
    images = p.get("images")
    n = len(images) if isinstance(images, list) else images or 0
    rejected = len(p.get("rejected") or [])
    return (f"job {p.get('job')}: {_n(int(n), 'image')}, {_n(int(p.get('faces') or 0), 'face')}"
            f", {p.get('duplicates', 0)} duplicate(s), {rejected} rejected")


def _first(what: Any) -> str:
    """A faces.opened entry's first opening, e.g. {"thumbnail": 5} -> 'thumbnail 5'."""
    if isinstance(what, dict) and len(what) == 1:
        ((kind, ident),) = what.items()
        return f"{str(kind).replace('_', ' ')} {ident}"
    return "?"


def _redacted(p: dict[str, Any]) -> str:
    fields = ", ".join(p.get("fields") or [])
    return f"entry {p.get('target_seq')}: purged {fields} ({p.get('reason')})"


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "search": _search,
    "search.requested": _requested,
    "search.approved": _decided("approved"),
    "search.approval_refused": _decided("refused"),
    "search.refused": lambda p: f"refused ({p.get('rule') or p.get('code')}): {p.get('reason')}",
    "search.viewed": lambda p: (f"{p.get('by')} opened search {p.get('search_id')} of "
                                f"{p.get('searcher')}"),
    "faces.opened": lambda p: (f"{p.get('by')} opened faces of search {p.get('search_id')} "
                               f"of {p.get('searcher')} ({p.get('task')}; first "
                               f"{_first(p.get('first'))}; covers {_n(len(p.get('faces') or []), 'face')}"
                               f"{' and the probe' if p.get('probe') else ''} for "
                               f"{p.get('window_s')} s)"),
    "subject.erase_preview": lambda p: (f"erasure preview showed {_n(int(p.get('faces_shown') or 0), 'face')}"
                                        f" (ref {p.get('reference') or '—'}) to {p.get('by')}"),
    "search.authorised": lambda p: (f"search {p.get('search_id')}: authorisation "
                                    f"{p.get('authorisation_ref')} added by {p.get('by')}"),
    "outcome": lambda p: (f"search {p.get('search_id')}: {p.get('result')} on {p.get('date')}"
                          + _note(p)),
    "review": lambda p: (f"{p.get('decision')} face {p.get('face_id')} of search "
                         f"{p.get('search')}" + _note(p)),
    "signin": lambda p: f"user {p.get('user')} signed in",
    "signin.failed": lambda p: (f"{p.get('count', 1)} failed sign-in(s) "
                                + (f"as {p['user']}" if "user" in p
                                   else f"from {p.get('address')}")),
    "signin.locked": lambda p: f"user {p.get('user')} locked out after {p.get('failures')} "
                               "failed sign-ins",
    "signin.unlocked": lambda p: f"user {p.get('user')} unlocked by {p.get('by')}",
    "user.created": lambda p: (f"user {p.get('user')} ({p.get('role')}) created by "
                               f"{p.get('by') or 'system'}"),
    "user.disabled": lambda p: f"user {p.get('user')} disabled by {p.get('by')}",
    "token.rotated": lambda p: f"new API token for {p.get('user')} by {p.get('by')}",
    "collection.created": lambda p: (f"collection {p.get('collection')} "
                                     f"(basis: {p.get('legal_basis')})"),
    "ingest.started": lambda p: (f"job {p.get('job')}: {_n(int(p.get('files') or 0), 'file')} "
                                 f"into {p.get('collection')}"),
    "ingest.batch": _ingest_batch,
    "ledger.redacted": _redacted,
    "user.password_set": lambda p: (f"web password of {p.get('user')} "
                                    f"{'reset' if p.get('replaced') else 'set'} by "
                                    f"{p.get('by')}" + (" (generated)" if p.get("generated")
                                                        else "")),
    "token.issued_locally": lambda p: (f"admin API token for {p.get('user')} issued locally "
                                       f"by {p.get('by')}"),
    "system.initialised": lambda p: f"data home initialised, model {p.get('model')}",
    "calibration.set": lambda p: (f"{p.get('model_id')} threshold {p.get('threshold')} at FMR "
                                  f"{p.get('target_fmr')}, gallery {p.get('gallery_size')}"),
    "ingest.interrupted": lambda p: (f"job {p.get('job')} interrupted after "
                                     f"{p.get('processed')} file(s)"),
    "policy.loaded": lambda p: f"policy {str(p.get('sha256'))[:12]}… from {p.get('source')}",
    "retention.probe_purged": lambda p: (f"probe of search {p.get('search_id')} purged "
                                         f"({p.get('reason')})"),
    "subject.erased": lambda p: (f"erased {_n(int(p.get('images') or 0), 'image')}, "
                                 f"{_n(int(p.get('faces') or 0), 'face')} (ref "
                                 f"{p.get('reference') or '—'}) by {p.get('by')}"),
    "subject.optout": lambda p: f"opt-out stored (ref {p.get('reference') or '—'}) by {p.get('by')}",
    "subject.access": lambda p: ("access request: "
                                 f"{_n(int(p.get('searches_found') or 0), 'search', 'searches')}"
                                 f" found, by {p.get('by')}"),
}


def _generic(p: dict[str, Any], skip_long: bool = True) -> str:
    parts = []
    for key, value in p.items():
        if (skip_long and key in _LONG_FIELDS) or key == "__redacted__":
            continue
        if isinstance(value, list | dict):
            value = json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def summary(kind: str, payload: dict[str, Any] | None) -> str:
    """One line a person can read; the full payload is one click (or ``--json``) away."""
    if not isinstance(payload, dict):
        return "(payload unreadable)"
    try:
        text = SUMMARIES.get(kind, _generic)(payload)
    except (TypeError, ValueError):  # a payload of an unexpected shape still gets a line
        text = _generic(payload, skip_long=False)
    purged = sorted(payload.get("__redacted__") or {})
    if purged:
        text += f" [purged: {', '.join(purged)}]"
    text = " ".join(text.split()) or "(no details)"
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"
