"""The relational schema. SQLite by default, portable to PostgreSQL (no SQLite-only types)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user: Mapped[User] = relationship()


class Collection(Base):
    __tablename__ = "collections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Bumped whenever the collection's faces change, so other processes' indexes notice.
    faces_version: Mapped[int] = mapped_column(BigInteger, default=0)
    owner: Mapped[User] = relationship()


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("collection_id", "sha256", name="uq_image_collection_sha"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    stored_path: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(16))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_jobs.id"), nullable=True)
    collection: Mapped[Collection] = relationship()
    sources: Mapped[list[ImageSource]] = relationship(
        back_populates="image", cascade="all, delete-orphan", order_by="ImageSource.id"
    )
    faces: Mapped[list[Face]] = relationship(back_populates="image", cascade="all, delete-orphan")


class ImageSource(Base):
    """Provenance: one row per distinct place the same bytes came from."""

    __tablename__ = "image_sources"
    __table_args__ = (UniqueConstraint("image_id", "source_key", name="uq_source"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    source_key: Mapped[str] = mapped_column(String(64))  # sha256 of source_url (or original path)
    original_path: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    page_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    image: Mapped[Image] = relationship(back_populates="sources")


class Face(Base):
    __tablename__ = "faces"
    # Face ids are vector-index ids: never reuse one (SQLite would, after deleting the last row).
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    face_index: Mapped[int] = mapped_column(Integer)
    box: Mapped[list[int]] = mapped_column(JSON)
    landmarks: Mapped[list[list[int]]] = mapped_column(JSON)
    quality: Mapped[dict[str, float]] = mapped_column(JSON)
    model_id: Mapped[str] = mapped_column(String(64), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    thumbnail_path: Mapped[str] = mapped_column(Text)
    image: Mapped[Image] = relationship(back_populates="faces")


class IngestJob(Base):
    __tablename__ = "ingest_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20))  # running | done | interrupted
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sources: Mapped[list[str]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    faces: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Rejection(Base):
    __tablename__ = "ingest_rejections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("ingest_jobs.id"), index=True)
    path: Mapped[str] = mapped_column(Text)
    code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)


class Search(Base):
    __tablename__ = "searches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    case_ref: Mapped[str] = mapped_column(String(200), index=True)
    purpose: Mapped[str] = mapped_column(String(200))
    offence: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(20))
    model_id: Mapped[str] = mapped_column(String(64))
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    top_k: Mapped[int] = mapped_column(Integer)
    probe_sha256: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ledger_seq: Mapped[int] = mapped_column(BigInteger)  # the entry holding the result set
    result_count: Mapped[int] = mapped_column(Integer)
    face_index: Mapped[int] = mapped_column(Integer, default=0)
    probe_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    probe_box: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    # done | pending (awaiting a supervisor) | refused (approval refused)
    status: Mapped[str] = mapped_column(String(20), default="done", index=True)
    collections: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    approval_rules: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    authorisation_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    auth_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    probe_embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    probe_face_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    probe_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)
    results_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                               nullable=True)
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    approver: Mapped[User | None] = relationship(foreign_keys=[approver_id])


class Outcome(Base):
    """What a search led to, as recorded by the investigator (latest row counts)."""

    __tablename__ = "outcomes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    result: Mapped[str] = mapped_column(String(40))
    outcome_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ledger_seq: Mapped[int] = mapped_column(BigInteger)


class BlockedSubject(Base):
    """An opted-out person: a protected (encrypted) template, never stored in plain text."""

    __tablename__ = "blocklist"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(64))
    template: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM(nonce || ciphertext)
    reference: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ledger_seq: Mapped[int] = mapped_column(BigInteger)


class Review(Base):
    """One person's verdict on one candidate of one search. Two different people must confirm
    before a candidate counts as confirmed."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id"), index=True)
    face_id: Mapped[int] = mapped_column(Integer, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(20))  # confirmed | rejected
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    user: Mapped[User] = relationship()


class WebSession(Base):
    """A signed-in browser. The cookie holds a random id; only its hash is stored."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SigninThrottle(Base):
    """Failed sign-ins (web passwords, API tokens) per account name (``user:<name>``) or client
    address (``addr:<ip>``): the back-off and lock-out state, and the failures not yet written
    to the ledger (one aggregated entry per key and window)."""

    __tablename__ = "signin_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    window_count: Mapped[int] = mapped_column(Integer, default=0)


class Calibration(Base):
    """Per-model identify thresholds: data, not code."""

    __tablename__ = "calibrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(64), index=True)
    threshold: Mapped[float] = mapped_column(Float)
    target_fmr: Mapped[float] = mapped_column(Float)
    gallery_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dataset: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class LedgerEntry(Base):
    __tablename__ = "ledger"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, part of the hash
    kind: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str | None] = mapped_column(String(120), index=True, nullable=True)
    case_ref: Mapped[str | None] = mapped_column(String(200), index=True, nullable=True)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)  # canonical JSON
    payload_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Set when the payload was purged: the seq of the "ledger.redacted" entry (not hashed).
    redacted_by: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class LedgerHead(Base):
    """One row: the last sequence number and hash. Locking it serialises writers."""

    __tablename__ = "ledger_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class LedgerTree(Base):
    """The RFC 9162 Merkle tree over the ledger, in tiles (``governance/tree.py``): the complete
    aligned subtrees at level ``tree.TILE`` (6) and up; the levels below are recomputed from the
    entries. Node (level, idx) is the root of leaves [idx * 2**level, (idx + 1) * 2**level);
    leaf i is entry i + 1."""

    __tablename__ = "ledger_tree"
    # one B-tree keyed by (level, idx) on SQLite: each append's commit writes fewer pages
    __table_args__ = ({"sqlite_with_rowid": False},)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerCheckpoint(Base):
    """A signed checkpoint of the Merkle log (C2SP tlog-checkpoint note)."""

    __tablename__ = "ledger_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(40))
    # When a verify run last proved the entries hash to this root (incremental verify's start).
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LedgerCosignature(Base):
    """A witness's cosignature (C2SP tlog-cosignature) of one of the log's checkpoints."""

    __tablename__ = "ledger_cosignatures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("ledger_checkpoints.id"), index=True)
    witness: Mapped[str] = mapped_column(String(200), index=True)
    key_id: Mapped[str] = mapped_column(String(8))
    vkey: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    posted_by: Mapped[str] = mapped_column(String(120))


class AppSetting(Base):
    """Settings kept in the database, one row per key: ``active_model`` is the face model that
    searches and ingest use (switched atomically by a finished re-embedding)."""

    __tablename__ = "app_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReembedJob(Base):
    """A re-embedding of the gallery (or of one collection) with another model."""

    __tablename__ = "reembed_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(64))  # the model embedded with
    from_model: Mapped[str] = mapped_column(String(64))  # the active model when it started
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id"), nullable=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20))  # running | done | interrupted | failed
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)  # images to embed when it started
    processed: Mapped[int] = mapped_column(Integer, default=0)
    faces: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)  # originals unreadable or refused
    withheld: Mapped[int] = mapped_column(Integer, default=0)  # faces of opted-out people
    switched: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ImageEmbedding(Base):
    """An image a re-embedding has embedded with a model (whatever number of faces it found):
    what makes a re-embedding resumable image by image."""

    __tablename__ = "image_embeddings"
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"),
                                          primary_key=True)
    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("reembed_jobs.id"), nullable=True)
    faces: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="done")  # done | failed
    embedded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


Index("ix_ledger_kind_seq", LedgerEntry.kind, LedgerEntry.seq)
