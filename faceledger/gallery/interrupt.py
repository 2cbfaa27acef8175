"""Stopping an ingest cleanly: SIGTERM (``kill PID``) or SIGINT (Ctrl-C) on a CLI ingest stops its
worker processes, marks the job ``interrupted`` (ledgered) and lets the command exit, instead of
leaving workers and multiprocessing's resource tracker running."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from types import FrameType


class IngestInterrupted(BaseException):
    """Raised in the main thread when a stop signal arrives; the ingest fills in the job."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signame = signal.Signals(signum).name
        self.job_id: int | None = None
        self.processed = 0
        self.total = 0
        super().__init__(f"stopped by {self.signame}")


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside, the first SIGTERM or SIGINT raises :class:`IngestInterrupted`; later ones
    are ignored while the ingest cleans up. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired:
            return
        fired.append(signum)
        raise IngestInterrupted(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def stop_workers(pool: ProcessPoolExecutor, timeout: float = 10.0) -> None:
    """Terminate the pool's worker processes now (a worker may be minutes into a large image),
    and wait for them to exit."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout)
