"""Oversight reporting: who used face search, when, for what, with what result, and misuse flags.

``build_report`` reads searches, outcomes and the ledger for a period; ``flags`` holds the misuse
checks; ``render`` writes JSON, CSV and HTML (with matplotlib plots)."""

from faceledger.oversight.flags import (
    Flag,
    FlagConfig,
    HoursThresholds,
    SameFaceThresholds,
    SelfieThresholds,
    VolumeThresholds,
    compute_flags,
)
from faceledger.oversight.records import SearchRecord, load_searches
from faceledger.oversight.report import OversightReport, UserUsage, build_report

__all__ = [
    "Flag",
    "FlagConfig",
    "HoursThresholds",
    "OversightReport",
    "SameFaceThresholds",
    "SearchRecord",
    "SelfieThresholds",
    "UserUsage",
    "VolumeThresholds",
    "build_report",
    "compute_flags",
    "load_searches",
]
