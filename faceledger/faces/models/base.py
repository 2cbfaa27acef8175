"""The model registry. Nothing loads at import time: ``load_model`` does it, once per process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from faceledger.errors import ConfigError

if TYPE_CHECKING:
    from faceledger.faces.align import Aligner
    from faceledger.faces.detect import Detector
    from faceledger.faces.embed import Embedder
    from faceledger.faces.models.pack import LoadedPack
    from faceledger.settings import Settings


@dataclass(frozen=True)
class ModelCapabilities:
    model_id: str
    dim: int
    chip_size: int
    landmarks: int
    detectors: tuple[str, ...]
    published_accuracy: str
    source: str


class FaceModel(Protocol):
    """A detector, an aligner and an embedder that belong together."""

    capabilities: ModelCapabilities
    detector: Detector
    aligner: Aligner
    embedder: Embedder


@dataclass(frozen=True)
class ModelOptions:
    detector: str = "hog"
    upsample: int = 1
    min_score: float = 0.0
    jitters: int = 0
    embed_runtime: str = "onnx"  # "onnx" (ONNX Runtime, the default) or "dlib" (dlib-bin)
    onnx_threads: int = 1  # ONNX Runtime intra-op threads per process
    detector_runtime: str = "onnx"  # runs the "cnn" detector: "onnx" (ONNX Runtime) or "dlib"
    # The accurate detector run where ``detector`` finds no face (None: no second pass).
    fallback_detector: str | None = None
    # Where the built ONNX graph is cached (None: built in memory). Not part of the model's
    # identity: it changes no output, so one loaded model serves every data home in a process.
    cache_dir: str | None = field(default=None, compare=False)


Factory = Callable[[ModelOptions], FaceModel]
_REGISTRY: dict[str, tuple[ModelCapabilities, Factory]] = {}
_LOADED: dict[tuple[str, ModelOptions], FaceModel] = {}
_LOCK = threading.Lock()


def register_model(capabilities: ModelCapabilities, factory: Factory) -> None:
    _REGISTRY[capabilities.model_id] = (capabilities, factory)


def _ensure_builtin() -> None:
    if "dlib-resnet-v1" not in _REGISTRY:
        from faceledger.faces.models import dlib_backend

        register_model(dlib_backend.CAPABILITIES, dlib_backend.load)


def available_models() -> dict[str, ModelCapabilities]:
    _ensure_builtin()
    return {k: v[0] for k, v in _REGISTRY.items()}


def model_dim(model_id: str, default: int = 128) -> int:
    """The embedding size of ``model_id`` (``default``, dlib's, for one not registered here)."""
    caps = available_models().get(model_id)
    return caps.dim if caps is not None else default


def load_model(model_id: str, options: ModelOptions | None = None) -> FaceModel:
    """Load (once per process and option set) and return the model bundle."""
    _ensure_builtin()
    options = options or ModelOptions()
    key = (model_id, options)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        if model_id not in _REGISTRY:
            raise ConfigError(
                f"unknown face model {model_id!r}; available: {', '.join(sorted(_REGISTRY))}"
            )
        caps, factory = _REGISTRY[model_id]
        if options.detector not in caps.detectors:
            raise ConfigError(
                f"model {model_id!r} has no detector {options.detector!r}; "
                f"choose one of {', '.join(caps.detectors)}"
            )
        model = factory(options)
        _LOADED[key] = model
        return model


def register_packs(settings: Settings) -> list[LoadedPack]:
    """Register the model packs ``settings.model_packs`` names (folders, or http(s) URLs with
    ``#sha256=``, downloaded once into ``<home>/models/packs/``), so ``load_model`` finds them by
    ``<name>-<version>``. Call it before loading a pack's model; calling it again is harmless.
    Their files' SHA-256 are checked when the model loads."""
    from faceledger.faces.models import onnx_pack, pack

    _ensure_builtin()
    loaded = []
    for entry in settings.model_packs:
        found = pack.resolve(entry, settings.home)
        known = _REGISTRY.get(found.model_id)
        if known is not None and not known[0].source.startswith("model pack "):
            raise ConfigError(f"model pack {found.model_id!r} has the id of a built-in model; "
                              "rename the pack")
        register_model(onnx_pack.capabilities_of(found), onnx_pack.factory(found))
        loaded.append(found)
    return loaded
