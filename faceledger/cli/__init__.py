"""The ``faceledger`` command line."""

from faceledger.cli.main import app, main

__all__ = ["app", "main"]
