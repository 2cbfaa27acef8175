"""Face model backends: a small Protocol, a registry, capabilities stated up front."""

from faceledger.faces.models.base import (
    FaceModel,
    ModelCapabilities,
    available_models,
    load_model,
    register_model,
)

__all__ = ["FaceModel", "ModelCapabilities", "available_models", "load_model", "register_model"]
