"""Ingest's face pipeline on a Ray cluster (``faceledger ingest --engine ray [--address ADDR]``).

One Ray actor per worker loads the face models once and runs decode, detect, align and embed
(``ingest.process_bytes``, the local workers' function). Everything else stays in the ingest's
own process, exactly as with the local process pool: reading and hashing the files, dedup,
opt-out blocking, the commits with their ledger entries and the index adds. So both engines
write the same rows through the same code, and a re-run resumes the same way (committed images
are recognised by content hash).

Ray is optional (``pip install 'faceledger[ray]'``) and imported only when this engine runs.
Without an address a private local Ray is started for the ingest (``workers`` CPUs, bound to
127.0.0.1, no dashboard) and stopped after it; with one, the ingest connects to that cluster,
whose nodes need faceledger installed and the same models available."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from faceledger.errors import ConfigError, ValidationError
from faceledger.settings import Settings

if TYPE_CHECKING:
    from faceledger.faces.pipeline import FacePipeline, ImageResult
    from faceledger.gallery.sources import SourceItem

ENGINES = ("local", "ray")
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # Ray's own setting
IN_FLIGHT_PER_ACTOR = 4  # images queued on each actor, as the local pool keeps per worker
Job = tuple["SourceItem", bytes, str]  # the item, its bytes, their sha256
Outcome = tuple["SourceItem", Any, "bytes | None", str]
MapFn = Callable[[list["SourceItem"], Callable[..., Any], list[Job], int, Callable[[str], None]],
                 Iterator[Outcome]]


def engine_settings(settings: Settings, engine: str | None, address: str | None) -> Settings:
    """The settings an ingest runs with: ``engine`` and ``address`` (None: the settings' own).
    ValidationError for an unknown engine or an address without the ray engine; ConfigError
    when the ray engine is chosen and Ray is not installed."""
    chosen = engine if engine is not None else settings.ingest_engine
    if chosen not in ENGINES:
        raise ValidationError(f"choose the ingest engine: {' or '.join(ENGINES)} (not {chosen!r})")
    if address is not None and chosen != "ray":
        raise ValidationError("a Ray address is for the ray engine: add --engine ray")
    if address is not None and not address.strip():
        raise ValidationError("name the Ray cluster's address (host:port or ray://host:port)")
    if chosen == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("the ray ingest engine needs Ray: pip install 'faceledger[ray]'")
    if engine is None and address is None:
        return settings
    return settings.model_copy(update={"ingest_engine": chosen,
                                       "ray_address": address or settings.ray_address})


class PipelineActor:
    """A Ray actor's state: the face pipeline, loaded once when the actor starts."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from faceledger.faces.pipeline import FacePipeline

        self.pipeline: FacePipeline = FacePipeline.from_settings(Settings.model_validate(settings))

    def process(self, data: bytes) -> ImageResult | tuple[str, str]:
        from faceledger.gallery.ingest import process_bytes  # ingest imports this module

        return process_bytes(data, self.pipeline)


@contextmanager
def _loopback_only() -> Iterator[None]:
    """While a local Ray starts: its servers (GCS, raylet, workers) listen on 127.0.0.1 only.
    On Linux Ray swaps a loopback node address for the host's reachable one and listens on
    every interface; its cluster switch off (read by the processes it starts, and by the
    already imported driver) keeps it on loopback."""
    import ray._private.ray_constants as constants

    before_env = os.environ.get(_CLUSTER_SWITCH)
    before = getattr(constants, "ENABLE_RAY_CLUSTER", True)
    os.environ[_CLUSTER_SWITCH] = "0"
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = before
        if before_env is None:
            os.environ.pop(_CLUSTER_SWITCH, None)
        else:
            os.environ[_CLUSTER_SWITCH] = before_env


def _connect(settings: Settings, n_workers: int) -> bool:
    """Join the configured cluster or start a local Ray; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                             "configure_logging": False}
    try:
        if settings.ray_address:
            ray.init(address=settings.ray_address, **quiet)
        else:
            with _loopback_only():
                ray.init(num_cpus=n_workers, _node_ip_address="127.0.0.1", **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = settings.ray_address or "a local Ray"
        raise ConfigError(f"cannot start the ray ingest engine on {where}: {exc}") from exc
    return True


def ray_map(settings: Settings) -> MapFn:
    """The ray engine in the shape of the local pool (``Ingest._pooled``): for each item,
    ``classify`` answers at once (rejected, duplicate) or queues its job in ``todo``; queued
    jobs go to the actors and come back as (item, result, bytes, sha) in completion order."""

    def run(items: list[SourceItem], classify: Callable[..., Any], todo: list[Job],
            n_workers: int, stage: Callable[[str], None]) -> Iterator[Outcome]:
        import ray

        started = _connect(settings, n_workers)
        remote = ray.remote(num_cpus=1, max_restarts=-1)(PipelineActor)
        dumped = settings.model_dump()
        actors: list[Any] = [remote.remote(dumped) for _ in range(n_workers)]
        try:
            yield from _drive(actors, items, classify, todo, stage)
        finally:  # done, stopped by a signal, or the consumer gave up: no waiting
            for actor in actors:
                ray.kill(actor, no_restart=True)
            if started:
                ray.shutdown()

    return run


def _drive(actors: list[Any], items: list[SourceItem], classify: Callable[..., Any],
           todo: list[Job], stage: Callable[[str], None]) -> Iterator[Outcome]:
    import ray
    from ray.exceptions import RayActorError

    inflight: dict[Any, tuple[Job, int]] = {}
    load = [0] * len(actors)
    retried: set[str] = set()

    def submit(job: Job) -> None:
        k = load.index(min(load))  # the least busy actor: a slow image holds up only its own
        load[k] += 1
        inflight[actors[k].process.remote(job[1])] = (job, k)

    it = iter(items)
    exhausted, ready = False, False
    while True:
        while not exhausted and len(inflight) < len(actors) * IN_FLIGHT_PER_ACTOR:
            nxt = next(it, None)
            if nxt is None:
                exhausted = True
                break
            early = classify(nxt)
            if early:
                yield early
            while todo:
                submit(todo.pop())
        if not inflight:
            return
        done, _ = ray.wait(list(inflight), num_returns=1)
        if not ready:  # the first result: the actors have loaded their models
            ready = True
            stage("processing")
        for ref in done:
            job, k = inflight.pop(ref)
            load[k] -= 1
            try:
                result = ray.get(ref)
            except RayActorError:  # the actor died (e.g. a native crash); Ray restarts it
                if job[2] in retried:
                    yield job[0], ("worker_crashed", "the face pipeline crashed on this file"), \
                        None, job[2]
                else:  # retry each affected file once, then reject it, as the local pool does
                    retried.add(job[2])
                    submit(job)
                continue
            yield job[0], result, job[1], job[2]
