"""Response models of the gallery routes: collections, ingest jobs, faces and images, models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CollectionOut(BaseModel):
    id: int
    name: str
    description: str
    legal_basis: str
    owner: str
    created_at: str = Field(description="ISO 8601 UTC")
    images: int
    faces: int


class JobNoteOut(BaseModel):
    path: str
    code: str
    reason: str


class JobOut(BaseModel):
    id: int
    collection: str | None
    status: str = Field(description="running, done, interrupted or failed")
    stage: str = Field(description="waiting, loading models, processing, indexing, done, ...")
    total: int
    processed: int
    added: int
    duplicates: int
    rejected: int
    faces: int
    images_no_face: int | None = Field(description="null in the job listing of finished jobs")
    images_one_face: int | None
    images_several_faces: int | None
    no_face_images: list[str] | None = Field(description="up to 1,000, in ingest order")
    started_at: str
    finished_at: str | None
    rejections: list[JobNoteOut]
    warnings: list[JobNoteOut]


class SourceOut(BaseModel):
    source_url: str | None
    page_url: str | None
    title: str | None
    captured_at: str | None
    original_path: str | None


class ImageOut(BaseModel):
    id: int
    sha256: str
    collection: str
    width: int
    height: int
    bytes: int
    format: str
    ingested_at: str
    sources: list[SourceOut]
    faces: list[int]


class FaceOut(BaseModel):
    id: int
    image_id: int
    face_index: int
    box: list[int]
    landmarks: Any
    quality: dict[str, Any]
    model_id: str
    image: ImageOut


class CalibrationOut(BaseModel):
    id: int
    model_id: str
    threshold: float
    target_fmr: float
    gallery_size: int | None
    dataset: str


class ModelOut(BaseModel):
    model_id: str
    dim: int
    chip_size: int
    landmarks: int
    detectors: list[str]
    published_accuracy: str
    source: str
    calibration: CalibrationOut | None


class ModelsOut(BaseModel):
    in_use: str
    models: dict[str, ModelOut]


class HealthOut(BaseModel):
    status: str
    version: str


class ReadyOut(BaseModel):
    ready: bool
    model: str | None = None
    models_loaded: bool | None = None
