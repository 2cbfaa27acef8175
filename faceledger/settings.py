"""The one typed settings object. Every knob reads ``FACELEDGER_<NAME>`` from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACELEDGER_", extra="ignore")

    home: Path = Field(default=Path("faceledger-data"), description="Data home: database, images, index.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite in the data home."
    )
    token: str | None = Field(default=None, description="API token the CLI authenticates with.")

    # Face pipeline
    model: str = Field(default="dlib-resnet-v1", description="Face model backend id.")
    detector: Literal["hog", "cnn"] = Field(default="hog", description="dlib HOG or MMOD CNN detector.")
    upsample: int = Field(default=1, ge=0, le=3, description="Detector upsampling passes.")
    min_detector_score: float = Field(default=0.0, description="Drop detections below this score.")
    jitters: int = Field(default=0, ge=0, le=100, description="Embed the average of N jittered "
                         "copies of each face (slower by N; dlib's published LFW figure uses 100).")
    max_pixels: int = Field(default=40_000_000, gt=0, description="Decompression-bomb cap (pixels).")
    max_upload_bytes: int = Field(default=30 * 1024 * 1024, gt=0, description="Largest accepted file.")
    max_faces_per_image: int = Field(default=64, gt=0)
    thumbnail_size: int = Field(default=112, ge=32, le=512)

    # Subject rights
    optout_threshold: float | None = Field(
        default=None, description="Similarity at which a face counts as an opted-out person "
        "(default: the identify threshold minus optout_margin).")
    optout_margin: float = Field(default=0.02, ge=0, le=0.5)

    # Result bands (faceledger/bands.py): thresholds come from the calibration's FMR table
    band_possible_fmr: float = Field(
        default=1e-3, gt=0, lt=1, description="Per-comparison FMR of the 'possible' band's "
        "threshold (looked up, or interpolated, in the active calibration's table; the closest "
        "row, said so in the result, when the table lacks it).")
    band_likely_fmr: float | None = Field(
        default=None, gt=0, lt=1, description="FMR of the 'likely same person' band (default: "
        "the identify threshold's own FMR).")
    score_floor: float = Field(default=0.8, ge=-1, lt=1, description="Where score bars start "
                               "(the scale runs from here to 1.0).")
    policy_file: Path | None = Field(default=None, description="Policy TOML (default: "
                                     "<home>/policy.toml, else the packaged default).")

    # Vector index
    index_exact_max: int = Field(
        default=50_000, description="Collections up to this many faces use exact search."
    )
    index_approximate: Literal["hnsw", "ivf"] = Field(
        default="hnsw", description="Index for collections past index_exact_max faces.")
    index_nprobe: int = Field(default=64, ge=1, description="IVF lists probed per query.")
    index_ef_search: int = Field(
        default=128, ge=2, le=10_000,
        description="HNSW candidates examined per query: recall against latency. Measured "
        "(bench/search_bench.py, 2 cores): 128 gives recall@10 0.995 at 1M faces (1.0 ms) but "
        "0.937 at 10M (2.2 ms); 256 gives 0.970, 512 0.986 (7.4 ms), "
        "1024 0.992 (16 ms) at 10M. Raise it for large galleries.")

    # Ingest
    workers: int = Field(default_factory=_default_workers, ge=1)
    commit_every: int = Field(default=64, ge=1, description="Images per ingest transaction.")

    # Service
    host: str = "127.0.0.1"
    port: int = 8000
    cookie_secure: bool = Field(default=True, description="Send the session cookie over HTTPS "
                                "only (browsers also allow it on http://localhost).")
    session_hours: float = Field(default=8.0, gt=0, description="Web sign-in lifetime.")
    max_upload_files: int = Field(default=2000, ge=1, description="Files in one ingest upload.")
    max_request_bytes: int = Field(default=512 * 1024 * 1024, gt=0,
                                   description="Largest request body (ingest uploads).")

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'faceledger.db').resolve()}"

    @property
    def images_dir(self) -> Path:
        return self.home / "images"

    @property
    def thumbs_dir(self) -> Path:
        return self.home / "thumbs"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


def get_settings() -> Settings:
    """Read settings from the environment now (no caching: tests change the environment)."""
    return Settings()
