"""One error hierarchy for the whole product.

Every error carries a stable machine-readable ``code`` and an HTTP-ish ``status``
so the CLI and the REST API map them in exactly one place each.
"""

from __future__ import annotations

from typing import Any


class FaceledgerError(Exception):
    """Base class of every error faceledger raises on purpose."""

    code = "error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class ConfigError(FaceledgerError):
    code = "config_error"
    status = 500


class NotInitialisedError(FaceledgerError):
    code = "not_initialised"
    status = 503


class AuthenticationError(FaceledgerError):
    code = "unauthenticated"
    status = 401


class TooManyAttemptsError(FaceledgerError):
    """Sign-in or token attempts held back (throttled or locked out); ``retry_after`` seconds
    go out as the Retry-After header."""

    code = "too_many_attempts"
    status = 429


class PermissionDeniedError(FaceledgerError):
    code = "forbidden"
    status = 403


class NotFoundError(FaceledgerError):
    code = "not_found"
    status = 404


class ConflictError(FaceledgerError):
    code = "conflict"
    status = 409


class ValidationError(FaceledgerError):
    code = "invalid_request"
    status = 422


class PolicyRefusal(FaceledgerError):
    """A search (or other action) refused by policy; names the rule."""

    code = "policy_refused"
    status = 403


class ImageError(FaceledgerError):
    """The bytes are not an image we can safely decode."""

    code = "bad_image"
    status = 422


class ImageTooLargeError(ImageError):
    code = "image_too_large"
    status = 413


class NoFaceError(FaceledgerError):
    code = "no_face"
    status = 422


class FaceChoiceRequired(FaceledgerError):
    """The probe holds several faces and the caller did not pick one."""

    code = "face_choice_required"
    status = 409


class ModelMismatchError(FaceledgerError):
    """Two embeddings made by different models were about to be compared."""

    code = "model_mismatch"
    status = 409


class LedgerIntegrityError(FaceledgerError):
    code = "ledger_integrity"
    status = 500


class CheckpointError(LedgerIntegrityError):
    """A signed note, checkpoint or cosignature that is malformed or does not verify
    (``governance/notes.py``). Maps like every ledger integrity failure."""

    code = "checkpoint_invalid"
