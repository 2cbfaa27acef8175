"""Dates typed into forms and query strings: YYYY-MM-DD, or empty for none."""

from __future__ import annotations

from datetime import date

from faceledger.errors import ValidationError

EXAMPLE = "2024-05-31"


def parse_day(raw: str, label: str) -> date:
    """``raw`` as a date; ValidationError naming ``label`` (and what was sent) otherwise."""
    value = raw.strip()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{label} must be a date like {EXAMPLE}, not {value[:20]!r}"
                              ) from None


def optional_day(raw: str | None, label: str) -> date | None:
    """None for a missing or blank value, else :func:`parse_day`."""
    if raw is None or not raw.strip():
        return None
    return parse_day(raw, label)
