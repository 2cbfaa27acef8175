"""faceledger: accountable face search."""

__version__ = "0.1.0"
