"""Response models of the search routes: searches, probe faces, reviews, the review queue,
approvals and outcomes. They document the JSON the services' plain data already has."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ProbeFaceOut(BaseModel):
    face: int = Field(description="The face's number: 1, 2, … left to right")
    box: list[int] = Field(description="[left, top, right, bottom] in pixels")
    detector_score: float
    face_px: int


class ProbeFacesOut(BaseModel):
    width: int
    height: int
    faces: list[ProbeFaceOut]
    preview: str | None = Field(description="A PNG data: URI where browsers cannot show the "
                                "photo's format (Netpbm, TIFF); else null")


class SourceOut(BaseModel):
    source_url: str | None
    page_url: str | None
    title: str | None
    original_path: str | None


class CandidateOut(BaseModel):
    rank: int
    similarity: float
    face_id: int
    image_id: int
    image_path: str
    thumbnail_path: str
    source_url: str | None
    page_url: str | None
    title: str | None
    captured_at: str | None
    collection: str
    box: list[int]
    sources: list[SourceOut]
    image_sha256: str
    band: str | None = Field(description="likely | possible | unlikely (null: no calibration)")
    probe_image: bool = Field(description="The gallery image is the probe photo itself")
    duplicate_of: dict[str, Any] | None = Field(description='{"rank", "why": "same_bytes"}')


class SearchReceiptOut(BaseModel):
    """A search's ledger receipt: its entry, the signed checkpoint holding it (or when one is
    due) and the RFC 9162 inclusion proof to that checkpoint's root. Check it offline with
    `faceledger ledger check-receipt FILE --key VKEY` (the key: GET /api/v1/ledger/key).
    Fields the log adds later are passed through unchanged."""

    model_config = ConfigDict(extra="allow")

    search_id: int
    seq: int = Field(description="The entry's number: the search's result entry, or its "
                     "request's while it waits for approval (or was refused)")
    leaf_index: int = Field(description="seq - 1")
    tree_size: int = Field(description="The log size the proof leads to: the first checkpoint "
                           "holding the entry, else the log as it stands")
    leaf: dict[str, Any] = Field(description="The fields the leaf hashes (treat as opaque)")
    leaf_hash: str
    entry_hash: str
    root_hash: str = Field(description="The root at tree_size, hex")
    path: list[str] = Field(description="RFC 9162 inclusion path, hex, leaf to root")
    checkpoint: str | None = Field(description="The signed checkpoint (C2SP note) of tree_size; "
                                   "null until one covers the entry")
    checkpoint_at: str | None = Field(default=None, description="When that checkpoint was "
                                      "signed (ISO 8601; not part of the signed note)")
    checkpoint_due: str | None = Field(default=None, description="Without a checkpoint: when "
                                       "the next one is due (fetch the receipt again then)")


class SearchResultOut(BaseModel):
    """A search's result (schema_version 2)."""

    schema_version: int
    search_id: int
    ledger_seq: int
    status: str = Field(description='"done", or "pending" (held for approval: no candidates)')
    user: str
    case: str
    mode: str
    model_id: str
    threshold: float | None
    calibration: dict[str, Any] | None
    top_k: int
    probe_sha256: str
    probe_faces: list[ProbeFaceOut]
    face: int
    collections: list[dict[str, Any]] = Field(description='[{"collection", "faces"}] searched')
    candidates: list[CandidateOut]
    started_at: str
    finished_at: str | None
    approval_rules: list[str]
    bands: dict[str, Any] | None = Field(description="thresholds and FMRs of the bands")
    receipt: SearchReceiptOut | None = Field(default=None, description="The ledger receipt of "
                                             "the search's entry (of its request while held)")


class ReviewStateOut(BaseModel):
    status: str = Field(description="unreviewed | confirmed_once | confirmed | rejected | "
                        "disputed")
    confirmed_by: list[str]
    rejected_by: list[str]
    history: list[dict[str, str]]


class StoredCandidateOut(BaseModel):
    """A candidate as stored; an erased one keeps only its rank, face, score and review."""

    rank: int
    face_id: int
    similarity: float
    erased: bool
    band: str | None
    probe_image: bool
    duplicate_of: dict[str, Any] | None
    review: ReviewStateOut
    image_id: int | None = None
    image_sha256: str | None = None
    collection: str | None = None
    box: list[int] | None = None
    image_size: list[int] | None = None
    source_url: str | None = None
    page_url: str | None = None
    title: str | None = None
    captured_at: str | None = None
    sources: list[SourceOut] | None = None


class SearchDetailOut(BaseModel):
    search_id: int
    user: str
    case: str
    purpose: str
    offence: str
    legal_basis: str
    mode: str
    threshold: float | None
    model_id: str
    top_k: int
    started_at: str
    ledger_seq: int
    probe_box: list[int] | None
    face: int
    probe_sha256: str
    bands: dict[str, Any] | None
    candidates: list[StoredCandidateOut]


class ReviewOut(BaseModel):
    search_id: int
    face_id: int
    status: str
    confirmed_by: list[str]
    rejected_by: list[str]
    recorded: bool = Field(description="false when the verdict repeated the caller's own "
                           "latest one (nothing ledgered)")


class WaitingOut(BaseModel):
    search_id: int
    face_id: int
    case: str
    searcher: str
    confirmed_by: str
    confirmed_at: str
    note: str
    rank: int | None
    similarity: float | None
    yours: bool = Field(description="the caller gave that confirmation")


class PendingOut(BaseModel):
    search_id: int
    user: str
    case: str
    purpose: str
    offence: str
    mode: str
    rules: list[str]
    requested_at: str


class DecisionOut(BaseModel):
    search_id: int
    status: str = Field(description="done (approved and run) or refused")
    candidates: int


class OutcomeOut(BaseModel):
    search_id: int
    result: str
    date: str
    ledger_seq: int


class AuthorisationOut(BaseModel):
    search_id: int
    authorisation_ref: str


class SearchListItem(BaseModel):
    """One search in GET /searches (``results.SearchSummary`` without the web's ``status``)."""

    id: int
    user: str
    case: str
    purpose: str
    offence: str
    mode: str
    results: int
    started_at: str = Field(description="ISO 8601")
    ledger_seq: int
