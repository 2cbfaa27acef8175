"""Row ids in paths, queries, request bodies and forms, range-checked once, here.

Every row id is an SQLite INTEGER: a signed 64-bit number, and ids start at 1. A number outside
1..ID_MAX names no row, and handed to SQLite it raises OverflowError (a server error), so every
route, page and request model declares its ids with :data:`Id` and FastAPI answers 422 before
any service runs. Web forms that take ids as text (a list of ticked faces) use :func:`parse_id`,
which refuses the same numbers with a ValidationError that names the field."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from faceledger.errors import ValidationError

ID_MAX = 2**63 - 1  # SQLite's largest INTEGER

# A row id (search, face, image, job ...): a path or query parameter, a form field or a field of
# a pydantic request model. Optional ids: ``Id | None``.
Id = Annotated[int, Field(ge=1, le=ID_MAX)]


def parse_id(raw: str, label: str) -> int:
    """``raw`` (text from a form) as an id; ValidationError naming ``label`` otherwise."""
    value = raw.strip()
    try:
        number = int(value)
    except ValueError:
        raise ValidationError(f"{label} must be a whole number, not {value[:20]!r}") from None
    if not 1 <= number <= ID_MAX:
        raise ValidationError(f"{label} must be a number from 1 to {ID_MAX}, not {value[:20]!r}")
    return number
