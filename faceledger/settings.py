"""The one typed settings object. Every knob reads ``FACELEDGER_<NAME>`` from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

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
    model_packs: list[str] = Field(
        default=[], description="Model packs to offer (faceledger/faces/models/pack.py): pack "
        "folders, or http(s) URLs of a pack's zip pinned with #sha256=<hex> (downloaded once "
        "into <home>/models/packs/). A pack's model id is <name>-<version>; its licence binds.")
    detector: Literal["hog", "cnn"] = Field(default="hog", description="dlib HOG or MMOD CNN detector.")
    upsample: Annotated[int, Field(ge=0, le=3)] | Literal["auto"] = Field(
        default="auto", description="Detector upsampling passes (0-3), or 'auto': 0 (faces from "
        "~80 px), and 1 (from ~40 px) only on images where 0 finds no face or finds faces "
        "covering under 1/12 of the frame (group photos); then the fallback. A quarter of the "
        "detection CPU on LFW photos, the same faces found; but a face under ~80 px beside "
        "faces that fill the frame is missed at ingest and in probes; 1 keeps it.")
    min_detector_score: float = Field(default=0.0, description="Drop detections below this score.")
    jitters: int = Field(default=0, ge=0, le=100, description="Embed the average of N jittered "
                         "copies of each face (slower by N; dlib's published LFW figure uses 100).")
    embed_runtime: Literal["onnx", "dlib"] = Field(
        default="onnx", description="Runs dlib's face-recognition ResNet: 'onnx' (ONNX Runtime, "
        "graph built from the installed weights and cached in <home>/models; same descriptors, "
        "about 10x faster) or 'dlib' (dlib-bin). jitters > 1 always uses dlib.")
    onnx_threads: int = Field(default=1, ge=1, description="ONNX Runtime threads per process "
                              "(ingest already runs one process per worker).")
    max_pixels: int = Field(default=40_000_000, gt=0, description="Decompression-bomb cap (pixels).")
    detect_max_pixels: int = Field(
        default=8_000_000, gt=0, description="Largest image the face detector sees: bigger photos "
        "are detected on a copy scaled down to this many pixels (boxes mapped back), which "
        "bounds a worker's peak memory (README, Security).")
    detect_pad: int = Field(
        default=16, ge=0, le=256, description="Border (pixels, repeating the edge) added around "
        "the image the detector sees, so faces whose forehead or chin touch the frame are found; "
        "boxes are mapped back and clipped. 0 turns it off.")
    detect_fallback: bool = Field(
        default=True, description="Where the detector finds no face, run the accurate one (dlib's "
        "MMOD CNN) on the image: at ingest and for probes alike. Only with detector 'hog'.")
    detect_fallback_max_pixels: int = Field(
        default=2_000_000, gt=0, description="Largest image the fallback detector sees (bigger "
        "ones are scaled down, boxes mapped back): its time and memory grow with the pixels "
        "(about 1 s and 200 MB per million on one core).")
    detector_runtime: Literal["onnx", "dlib"] = Field(
        default="onnx", description="Runs the CNN detector (detector 'cnn' and the fallback): "
        "'onnx' (ONNX Runtime, graph built from the installed weights and cached in "
        "<home>/models; dlib's exact boxes, about 10x faster) or 'dlib' (dlib-bin).")
    max_upload_bytes: int = Field(default=30 * 1024 * 1024, gt=0, description="Largest accepted file.")
    max_faces_per_image: int = Field(default=64, gt=0)
    thumbnail_size: int = Field(default=112, ge=32, le=512)

    # Subject rights
    optout_threshold: float | None = Field(
        default=None, description="Similarity at which a face counts as an opted-out person "
        "(default: the active calibration's threshold at a false non-match rate of optout_fnmr).")
    optout_fnmr: float = Field(
        default=0.01, gt=0, lt=0.5, description="False non-match rate on genuine pairs at which "
        "opt-outs withhold (chosen for recall: a lower rate withholds more of the person and more "
        "look-alikes); read from the calibration's FNMR table (`faceledger calibrate`).")

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
    face_open_window_s: int = Field(
        default=900, ge=1, le=86_400, description="Opening a face (gallery image, thumbnail, "
        "probe) within a search is ledgered once per user and search in this many seconds: the "
        "entry covers the search's faces for that long (search/face_access.py).")
    policy_file: Path | None = Field(default=None, description="Policy TOML (default: "
                                     "<home>/policy.toml, else the packaged default).")

    # Signed checkpoints of the ledger (governance/notes.py, governance/signing_key.py)
    ledger_key_file: Path | None = Field(
        default=None, description="The ledger's Ed25519 signing key (default: "
        "<home>/keys/ledger-signing.key); point it at another volume to keep the key apart "
        "from the data. The file must be mode 0600.")
    ledger_origin: str | None = Field(
        default=None, description="Origin line of the signed checkpoints, a schema-less URL "
        "such as example.org/faceledger (default: faceledger.invalid/log/<16 hex of the "
        "public key's SHA-256>).")
    checkpoint_every_entries: int = Field(default=1000, ge=1, description="Sign a new "
                                          "checkpoint after this many new ledger entries.")
    checkpoint_every_minutes: float = Field(default=10, gt=0, description="Sign a new "
                                            "checkpoint at least this often while entries arrive.")

    # Vector index
    index_exact_max: int = Field(
        default=50_000, description="Collections up to this many faces use exact search."
    )
    index_approximate: Literal["hnsw", "ivf", "ivfpq"] = Field(
        default="hnsw", description="Index for collections past index_exact_max faces: 'hnsw', "
        "'ivf' (IVF-Flat) or 'ivfpq' (IVF + 4-bit PQ fast scan re-ranked exactly from the float "
        "vectors; parameters by size in faceledger/data/index_params.json).")
    index_nprobe: int = Field(default=64, ge=1, description="IVF lists probed per query.")
    index_ef_search: int = Field(
        default=128, ge=2, le=10_000,
        description="HNSW candidates examined per query: recall against latency. Measured "
        "(bench/search_bench.py, 2 cores): 128 gives recall@10 0.995 at 1M faces (1.0 ms) but "
        "0.937 at 10M (2.2 ms); 256 gives 0.970, 512 0.986 (7.4 ms), "
        "1024 0.992 (16 ms) at 10M. A floor: graphs search at least the width the size table "
        "(faceledger/data/index_params.json) gives for their face count, 1024 past 5M.")

    # Ingest
    workers: int = Field(default_factory=_default_workers, ge=1)
    ingest_engine: Literal["local", "ray"] = Field(
        default="local", description="Where ingest runs the face pipeline: 'local' (a process pool "
        "here) or 'ray' (actors on a Ray cluster, `pip install 'faceledger[ray]'`).")
    ray_address: str | None = Field(default=None, description="The Ray cluster of the 'ray' "
                                    "engine (ray.init(address=...)); unset: a local Ray on "
                                    "127.0.0.1 with `workers` CPUs.")
    commit_every: int = Field(default=64, ge=1, description="Images per ingest transaction.")
    max_zip_members: int = Field(default=10_000, ge=1, description="Members one zip archive may "
                                 "hold; an ingest naming a bigger archive is refused.")
    max_ingest_files: int = Field(default=100_000, ge=1, description="Files (zip members "
                                  "included) in one ingest; an ingest of more is refused.")

    # Service
    host: str = "127.0.0.1"
    port: int = 8000
    cookie_secure: bool = Field(default=True, description="Send the session cookie over HTTPS "
                                "only (browsers also allow it on http://localhost).")
    session_hours: float = Field(default=8.0, gt=0, description="Web sign-in lifetime.")
    # Sign-in throttling (faceledger/accounts/throttle.py): failed web sign-ins and bad bearer
    # tokens, counted per account name and per client address in the database.
    signin_free_failures: int = Field(default=5, ge=1, description="Failures of one account "
                                      "before its exponential back-off starts.")
    signin_address_free_failures: int = Field(default=30, ge=1, description="Failures from one "
                                              "address (any name, bad tokens) before back-off.")
    signin_backoff_s: float = Field(default=1.0, gt=0, description="First back-off; it doubles "
                                    "with each further failure.")
    signin_backoff_max_s: float = Field(default=900.0, gt=0, description="Longest back-off.")
    signin_lockout_after: int = Field(default=30, ge=0, description="Account failures in a row "
                                      "that lock it until an admin unlocks it (0: never).")
    signin_forget_s: float = Field(default=3600.0, gt=0, description="A key's failure count "
                                   "is forgotten after this long without failures.")
    signin_window_s: float = Field(default=900.0, gt=0, description="Failed sign-ins are "
                                   "ledgered as one entry per account/address per window.")
    max_upload_files: int = Field(default=2000, ge=1, description="Files in one ingest upload.")
    max_request_bytes: int = Field(default=512 * 1024 * 1024, gt=0,
                                   description="Largest request body (ingest uploads).")
    # Vector engine: Milvus instead of the faiss files (faceledger/gallery/index/milvus_backend.py)
    vector_uri: str | None = Field(default=None, description="Milvus server or cluster URI "
                                   "(http://host:19530), or a local file ending in .db for Milvus "
                                   "Lite; unset: faiss index files in the data home.")
    vector_token: str | None = Field(default=None, description="Milvus token (user:password or "
                                     "API key); none for Milvus Lite.")
    vector_prefix: str = Field(default="faceledger", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
                               description="Prefix of the Milvus collections (one per model).")
    vector_index: str = Field(default="HNSW", description="Milvus index type (HNSW, IVF_FLAT, "
                              "DISKANN, GPU_CAGRA, ... where the cluster has them; Milvus Lite: "
                              "FLAT, HNSW, HNSW_SQ, IVF_FLAT, IVF_SQ8, AUTOINDEX).")
    vector_index_params: dict[str, int | float | str | bool] = Field(
        default_factory=dict, description="Index build parameters as JSON (HNSW default: "
        '{"M": 32, "efConstruction": 128}); read when a model\'s Milvus collection is created.')
    vector_search_params: dict[str, int | float | str | bool] = Field(
        default_factory=dict, description="Search parameters as JSON (HNSW default: "
        '{"ef": index_ef_search}, raised to k when smaller; IVF: {"nprobe": index_nprobe}).')

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
