"""A second process for tests/test_quota_race.py: runs several searches at once against a data
home another process is searching too, and prints what happened to each, as JSON.

    python -m tests.search.quota_worker HOME TOKEN THREADS START_AT PROBE_FILE
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from faceledger.core import Faceledger
from faceledger.errors import FaceledgerError
from faceledger.search.service import SearchRequest, run_search
from faceledger.settings import Settings


def slow_detector(app: Faceledger, delay: float = 0.3) -> None:
    """Widen the gap between a search's checks and its write, as a slow model would."""
    pipe = app.pipeline()
    detect = pipe.detect

    def slow(image: Any) -> Any:
        time.sleep(delay)
        return detect(image)

    pipe.detect = slow  # type: ignore[method-assign]


def attempt(app: Faceledger, token: str, probe: bytes, case: str) -> str:
    """'ok', or the rule (else the error code) that refused the search."""
    principal = app.authenticate(token)
    req = SearchRequest(case, "criminal investigation", "robbery", "basis")
    try:
        run_search(app, principal, probe, req)
    except FaceledgerError as exc:
        return str(exc.details.get("rule") or exc.code)
    return "ok"


def run_many(app: Faceledger, token: str, probe: bytes, threads: int, start_at: float,
             tag: str) -> list[str]:
    outcomes: list[str] = [""] * threads

    def one(i: int) -> None:
        time.sleep(max(0.0, start_at - time.time()))
        outcomes[i] = attempt(app, token, probe, f"RACE-{tag}-{i}")

    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return outcomes


def main(argv: list[str]) -> None:
    home, token, threads, start_at, probe_file = argv
    app = Faceledger(Settings(home=Path(home), workers=1))
    slow_detector(app)
    app.policy()  # load (and ledger) the policy before the race starts
    try:
        print(json.dumps(run_many(app, token, Path(probe_file).read_bytes(), int(threads),
                                  float(start_at), "proc")))
    finally:
        app.close()


if __name__ == "__main__":
    main(sys.argv[1:])
