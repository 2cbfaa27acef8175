"""The application context: settings, database, files, indexes and (loaded on demand) models.

Nothing heavy happens in the constructor; ``pipeline()`` loads the face models explicitly."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from faceledger.accounts import users as accounts
from faceledger.accounts.passwords import hash_password
from faceledger.accounts.users import Principal
from faceledger.db.engine import Database
from faceledger.db.schema import User
from faceledger.errors import ConflictError
from faceledger.faces.pipeline import FacePipeline
from faceledger.gallery.index.milvus_backend import MilvusConfig
from faceledger.gallery.indexstore import IndexStore
from faceledger.gallery.milvus_store import MilvusStore
from faceledger.gallery.reembed_store import stored_active_model
from faceledger.gallery.storage import FileStore, private_umask, secure_home
from faceledger.governance import ledger
from faceledger.governance.calibration import seed_calibrations
from faceledger.governance.checkpoints import maybe_checkpoint
from faceledger.governance.policy import LoadedPolicy, Policy, load_policy, policy_path, record_if_changed
from faceledger.governance.signing_key import create_key, key_path
from faceledger.settings import Settings

log = logging.getLogger("faceledger")
# How long a process trusts the active model it last read from the database. A switch made by
# this process is seen at once; one made by another process (a CLI re-embedding beside the
# server) within this many seconds. Until then the old model's complete index still serves.
ACTIVE_MODEL_TTL_S = 2.0


class Faceledger:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        private_umask()  # every file faceledger makes from here on: 0600 (folders 0700)
        repaired = secure_home(settings.home)
        if repaired:
            log.warning("faceledger: repaired loose permissions in the data home %s (only its "
                        "owner may read it): %s", settings.home, "; ".join(repaired[:20]))
        self.db = Database(settings.db_url)
        self.files = FileStore(settings.home)
        self.indexes: IndexStore = MilvusStore(
            MilvusConfig.from_settings(settings), self.db, settings.index_dir,
        ) if settings.vector_uri else IndexStore(
            settings.index_dir, self.db, exact_max=settings.index_exact_max,
            nprobe=settings.index_nprobe, approximate=settings.index_approximate,
            ef_search=settings.index_ef_search,
        )
        self._pipeline: FacePipeline | None = None
        self._policy: LoadedPolicy | None = None
        self.configured_model = settings.model  # used while the database names none
        self._active: str | None = None
        self._active_read = 0.0
        self._model_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """The ACTIVE face model: the one the database names (``app_settings.active_model``,
        written by a finished re-embedding), else ``settings.model``. Searches and ingest use
        it; ``settings.model`` is kept equal to it so ingest workers load the same model."""
        with self._model_lock:
            if self._active is None or time.monotonic() - self._active_read > ACTIVE_MODEL_TTL_S:
                self._note_active(self._read_active_model())
            assert self._active is not None
            return self._active

    def _read_active_model(self) -> str:
        try:
            with self.db.read() as s:
                return stored_active_model(s) or self.configured_model
        except SQLAlchemyError:  # not initialised yet, or a schema before the setting existed
            return self.configured_model

    def _note_active(self, model_id: str) -> None:
        self._active, self._active_read = model_id, time.monotonic()
        self.settings.model = model_id

    def model_switched(self, model_id: str) -> None:
        """Called after a committed switch of the active model: this process uses it now."""
        with self._model_lock:
            self._note_active(model_id)

    def pipeline(self) -> FacePipeline:
        """The face pipeline of the active model (loaded once per model and process)."""
        model_id = self.model_id
        pipe = self._pipeline
        if pipe is None or pipe.model_id != model_id:
            pipe = FacePipeline.from_settings(self.settings.model_copy(update={"model": model_id}))
            self._pipeline = pipe
        return pipe

    def policy(self) -> Policy:
        """The policy in force (loaded once per process; ledgered when it changed)."""
        if self._policy is None:
            loaded = load_policy(policy_path(self.settings.home, self.settings.policy_file))
            if self.db.is_initialised():
                with self.db.write() as s:
                    record_if_changed(s, loaded)
            self._policy = loaded
        return self._policy.policy

    def initialise(self, admin_name: str, password: str | None = None) -> tuple[User, str]:
        """Create the data home, the schema and the first admin; returns the admin's token.
        ``password`` (optional) lets the admin sign in to the web UI."""
        self.settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.settings.home, 0o700)
        for sub in ("images", "thumbs", "index"):
            (self.settings.home / sub).mkdir(exist_ok=True, mode=0o700)
        self.db.migrate()
        with self.db.write() as s:
            ledger.initialise(s)
            if s.execute(select(User).limit(1)).first() is not None:
                raise ConflictError(
                    f"faceledger is already initialised in {self.settings.home}; "
                    "ask an admin for a token (`faceledger users add`)"
                )
            ledger.append(s, "system.initialised",
                          {"home": str(self.settings.home), "model": self.model_id,
                           "at": datetime.now(UTC).isoformat()})
            seed_calibrations(s)
            user, token = accounts.create_user(
                s, admin_name, "admin", actor=None,
                password_hash=hash_password(password) if password else None)
        if not key_path(self.settings).exists():  # the log's key, outside the database
            create_key(key_path(self.settings))
        return user, token

    def authenticate(self, token: str | None) -> Principal:
        self.db.require_initialised()
        with self.db.read() as s:
            return accounts.authenticate(s, token)

    def close(self) -> None:
        self.indexes.close()  # flushes; a Milvus Lite file is released for the next process
        maybe_checkpoint(self)  # a CLI run that made a checkpoint due signs it as it exits
        self.db.dispose()
