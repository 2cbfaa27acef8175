"""Local on-disk vector indexes of face embeddings, each labelled with the model that made them.

``import faceledger.gallery.index`` does not import faiss; the backend imports it on first use.
"""

from __future__ import annotations

from faceledger.gallery.index.base import (
    IdArray,
    IndexCapabilities,
    IndexFileError,
    ScoreArray,
    VectorArray,
    VectorIndex,
    sidecar_path,
)
from faceledger.gallery.index.faiss_backend import (
    DEFAULT_EXACT_MAX,
    DEFAULT_NPROBE,
    FlatIndex,
    IvfIndex,
    build_index,
    nlist_for,
)
from faceledger.gallery.index.faiss_hnsw import HnswIndex
from faceledger.gallery.index.faiss_ivfpq import IvfPqIndex
from faceledger.gallery.index.registry import (
    available_kinds,
    create_index,
    load_index,
    register_index,
)

register_index(FlatIndex.kind, FlatIndex, FlatIndex.load)
register_index(IvfIndex.kind, IvfIndex, IvfIndex.load)
register_index(HnswIndex.kind, HnswIndex, HnswIndex.load)
register_index(IvfPqIndex.kind, IvfPqIndex, IvfPqIndex.load)

__all__ = [
    "DEFAULT_EXACT_MAX",
    "DEFAULT_NPROBE",
    "FlatIndex",
    "HnswIndex",
    "IdArray",
    "IndexCapabilities",
    "IndexFileError",
    "IvfIndex",
    "IvfPqIndex",
    "ScoreArray",
    "VectorArray",
    "VectorIndex",
    "available_kinds",
    "build_index",
    "create_index",
    "load_index",
    "nlist_for",
    "register_index",
    "sidecar_path",
]
