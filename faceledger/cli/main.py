"""Entry point: ``faceledger [init|users|collections|ingest|search|ledger|index|models]``."""

from __future__ import annotations

import sys

import typer

from faceledger.cli import (
    admin,
    evaluate,
    gallery,
    ledger,
    reembed,
    report,
    rights,
    searching,
)
from faceledger.cli.common import fail
from faceledger.errors import FaceledgerError

app = typer.Typer(
    name="faceledger",
    help="Accountable face search: every search is named, justified and ledgered.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
admin.register(app)
gallery.register(app)
searching.register(app)
ledger.register(app)
rights.register(app)
report.register(app)
evaluate.register(app)
reembed.register(app)


def main() -> None:
    as_json = "--json" in sys.argv
    try:
        app()
    except FaceledgerError as exc:
        fail(exc, as_json)
